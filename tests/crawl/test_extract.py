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


@pytest.mark.parametrize("parser", ["scan", "selectolax", "bs4"])
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


@pytest.fixture(scope="module")
def real_pages() -> list[tuple[str, str, tuple]]:
    """(text, url, bs4 reference extraction) of every real page."""
    out = []
    for _, data, url in _pages():
        text, _ = decode_html(data)
        out.append((text, url, extract(text, url, "bs4")))
    return out


@pytest.mark.parametrize("parser", ["scan", "selectolax"])
def test_fast_parsers_agree_with_bs4_reference_on_real_pages(parser: str, real_pages: list) -> None:
    agree = links = 0
    for text, url, reference in real_pages:
        ours = extract(text, url, parser)
        agree += ours[0] == reference[0] and ours[1] == reference[1]
        links += ours[2].links == reference[2].links
    assert agree / len(real_pages) >= 0.99, f"{agree}/{len(real_pages)} pages give the same candidates and drops"
    assert links / len(real_pages) >= 0.99, f"{links}/{len(real_pages)} pages give the same links"


# Markup where a naive scanner and the HTML5 tokenizer (libxml2 2.14, under bs4) part ways.
TRICKY = [
    "<noscript><img src=a.jpg alt=n></noscript>",  # no scripting: noscript content is markup
    "<iframe><img src=b.jpg alt=i></iframe><title><img src=c alt=t></title><textarea><img src=d alt=x></textarea>",
    '<script>x="</div>"; <img src=e alt=s></script><img src=f alt=ok>',
    "<script><!-- <script>x</script> <img src=a alt=b> --></script><img src=c alt=d>",  # double-escaped
    "<script><!--> <img src=a alt=b></script><script><!---></script><img src=c alt=d>",
    '<img alt="a&ampx &amp;y &copy=z &copy z &#65 &#x41; &notit; &notin; &lt &ltx" src=q>',
    "<IMG SRC=Q ALT=up alt=dup>", "<img alt=x\"y src=r>", "<img/src=s/alt=t>", '<img alt="a" src="k"id=3>',
    "<!-- <img src=g alt=c> --><img src=h alt=d><!--><img src=h2 alt=e><!----><img src=h3 alt=f>",
    "<!x <img src=m alt=b> ><img src=n alt=c><?php <img src=o alt=p> ?><img src=p alt=q>",
    "</ <img src=a alt=b>><img src=c alt=d></><img src=e alt=f>",
    '<img src=o alt="x\r\ny">', "<img src=a alt=b", "<style><img src=j alt=x></style ><xmp><img src=i alt=x></xmp>",
    '<meta content="x" name="ROBOTS" content="noimageai"><img src=a alt=b>',
    '<html lang=en><body><html lang=fr><img src=l alt=a>', '<base href=""><base href=/x/><img src=b alt=c>',
    "<picture><source srcset='a.webp 2x'><img src=x alt=y></picture><picture><img src=z alt=w><source srcset=q>",
]


@pytest.mark.parametrize("html", TRICKY)
def test_scanner_tokenizes_like_the_reference(html: str) -> None:
    ours, reference = extract(html, "http://e.com/p/", "scan"), extract(html, "http://e.com/p/", "bs4")
    assert ours[0] == reference[0]
    assert ours[1] == reference[1] and ours[2].imgs == reference[2].imgs


def test_scanner_survives_hostile_markup_in_linear_time() -> None:
    import time

    nasty = ["<meta " * 20_000, "<img alt='" * 20_000, "<!--" * 20_000, "<script>" * 20_000,
             "<style " * 20_000, "<a href=" * 20_000, "<" * 50_000, "&" * 50_000, "<img alt=&amp" * 10_000]
    for text in nasty:
        started = time.perf_counter()
        extract(text, "http://e.com/", "scan")
        assert time.perf_counter() - started < 5, text[:20]  # quadratic would take minutes here


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
        page = extract(text, url)[2]
        got = [" ".join((t.attrs.get("alt") or "").split()) for t in page.imgs]
        got = [g for g in got if g]
        total += 1
        matched += got == expected.get(name, [])
    assert matched / total >= 0.99, f"{matched}/{total}"


def test_lying_meta_charset_falls_back_to_utf8() -> None:
    data = gzip.decompress((shared_data("html") / "readability-qq.html.gz").read_bytes())
    text, codec = decode_html(data)
    assert codec == "utf-8"
    assert extract(text, "http://qq.com/")[2].imgs


def test_charset_order() -> None:
    body = "<meta charset='windows-1252'><p>café</p>".encode("cp1252")
    assert "café" in decode_html(body)[0]
    assert "café" in decode_html("<p>café</p>".encode("latin-1"), "text/html; charset=iso-8859-1")[0]
    assert decode_html(b"\xef\xbb\xbf<p>\xc3\xa9</p>")[0] == "<p>é</p>"


def test_absolute_url_fast_path_equals_urljoin() -> None:
    from urllib.parse import urljoin

    from webclip.crawl.urls import Resolver

    urls = ["HTTP://X.com/a", "https://x/./a", "http://x/a/../b", "https:x", "http:/x", "http://x/?", "http://x/#",
            "http://x?a#", "https://cdn.example.com/img/a.jpg?w=200", "//cdn.example.com/a.jpg", "a.jpg", "/b.png"]
    for u in urls:
        assert Resolver("http://e.com/dir/p.html")(u) == urljoin("http://e.com/dir/p.html", u), u


def test_resolver_equals_urljoin_on_every_url_of_the_real_pages(real_pages: list) -> None:
    from urllib.parse import urljoin

    from webclip.crawl.extract import srcset_candidates
    from webclip.crawl.urls import Resolver

    checked = 0
    for _, url, reference in real_pages:
        page = reference[2]
        resolve = Resolver(url)
        urls = list(page.links)
        for tag in page.imgs:
            urls += [v for k, v in tag.attrs.items() if k in ("src", "data-src", "data-original", "data-lazy-src") and v]
            urls += [u for s in [tag.attrs.get("srcset") or "", *tag.sources] for u, _ in srcset_candidates(s)]
        for u in urls:
            u = u.strip()
            if not u or u[:5].lower() == "data:":
                continue
            try:
                expected = urljoin(url, u)
            except ValueError:
                expected = None
            assert resolve(u) == expected, (url, u)
            checked += 1
    assert checked > 10_000

"""Sitemap parsing and URL normalisation and scope."""

from __future__ import annotations

import gzip

from webclip.crawl.sitemaps import parse_sitemap, sitemap_urls
from webclip.crawl.urls import in_scope
from webclip.dedupe.urls import normalise_url, registered_domain


def test_sitemap_index_is_followed() -> None:
    files = {
        "http://h/sitemap.xml": b"<sitemapindex><sitemap><loc>http://h/a.xml.gz</loc></sitemap></sitemapindex>",
        "http://h/a.xml.gz": gzip.compress(b"<urlset><url><loc>http://h/p1</loc></url><url><loc> /p2 </loc></url></urlset>"),
    }
    assert sitemap_urls("http://h/index.html", [], files.get) == ["http://h/p1", "http://h/p2"]
    assert parse_sitemap(b"<urlset><url><loc>a?x=1&amp;y=2</loc></url></urlset>") == (["a?x=1&y=2"], False)


def test_url_normalisation() -> None:
    assert normalise_url("HTTP://Example.COM:80/a?utm_source=x&b=2&a=1#frag") == "http://example.com/a?a=1&b=2"
    assert normalise_url("https://example.com:443") == "https://example.com/"
    assert normalise_url("mailto:x@y") is None
    assert registered_domain("http://a.b.example.co.uk/x") == "example.co.uk"


def test_scope_rules() -> None:
    seeds = ["http://www.example.com/"]
    assert in_scope("http://www.example.com/a", seeds, "host", [])
    assert not in_scope("http://img.example.com/a", seeds, "host", [])
    assert in_scope("http://img.example.com/a", seeds, "domain", [])
    assert in_scope("http://other.org/a", seeds, "hosts", ["other.org"])


def test_gzip_bomb_sitemap_is_skipped_in_bounded_memory() -> None:
    """189 KB of gzip that inflates to 200 MB: skipped as sitemap/too_large, never held in memory."""
    import tracemalloc
    import zlib
    from collections import Counter

    import pytest

    from webclip.crawl.sitemaps import SitemapSkipped

    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    bomb = b"".join([c.compress(b"<urlset><url><loc>http://h/p</loc></url>"), *(c.compress(zeros) for _ in range(200)),
                     c.flush()])
    assert len(bomb) < 210_000
    tracemalloc.start()
    try:
        with pytest.raises(SitemapSkipped) as skipped:
            parse_sitemap(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert skipped.value.reason == "sitemap/too_large" and peak < 16 << 20, peak
    files = {"http://h/robots-a.xml": bomb, "http://h/b.xml": b"<urlset><url><loc>/ok</loc></url></urlset>",
             "http://h/c.xml.gz": b"\x1f\x8b\x08\0\0\0\0\0\0\x03" + b"\xff" * 20}
    drops: Counter = Counter()
    urls = sitemap_urls("http://h/", ["/robots-a.xml", "/b.xml", "/c.xml.gz"], files.get, drops=drops)
    assert urls == ["http://h/ok"] and drops == {"sitemap/too_large": 1, "sitemap/bad_gzip": 1}


def test_streamed_sitemap_equals_an_xml_parser_and_is_capped_at_the_protocol_limit() -> None:
    """Locations read chunk by chunk (some straddle chunk edges) equal ElementTree's reading of the file."""
    import gzip
    import xml.etree.ElementTree as ET

    urls = [f"http://example.com/{'d' * (i % 97)}/page-{i}?a={i}&amp;b=2" for i in range(60_000)]
    xml = ('<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
           + "".join(f"<url><loc>{u}</loc></url>" for u in urls) + "</urlset>").encode()
    assert len(xml) > 3 << 20  # several inflate chunks
    reference = [e.text for e in ET.fromstring(xml).iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
    locs, is_index = parse_sitemap(gzip.compress(xml), max_locs=len(urls))
    assert locs == reference and not is_index
    assert parse_sitemap(gzip.compress(xml))[0] == reference[:50_000]
    truncated = gzip.compress(xml)[:100_000]  # a cut download keeps the locations it holds
    assert parse_sitemap(truncated)[0] == reference[:len(parse_sitemap(truncated)[0])]

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

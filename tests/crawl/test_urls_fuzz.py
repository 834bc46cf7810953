"""Fuzz: the per-page URL resolver equals urllib's urljoin on generated bases and links, and never raises."""

from __future__ import annotations

import os
from urllib.parse import urljoin

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webclip.crawl.urls import Resolver

EXAMPLES = int(os.environ.get("WEBCLIP_FUZZ_EXAMPLES", "400"))
PIECES = ["http://", "https://", "HTTP://", "//", "/", "./", "../", ".", "..", "?", "#", ";", "&", "=", "a", "B",
          "x.com", "[", "]", "[::1]", "[bad", ":", ":80", "@", "\\", " ", "\t", "\n", "%", "%2e", "é", "\x00",
          "data:", "javascript:", "img.jpg", "?q=1", "#f", "//cdn.example.com", "mailto:x@y"]
urlish = st.lists(st.sampled_from(PIECES) | st.text(max_size=3), max_size=8).map("".join)
bases = st.sampled_from(["http://e.com/dir/p.html", "https://e.com", "http://e.com:8080/a/b/?q#f",
                         "http://[::1]:81/x", "http://e.com/a;p?q", "ftp://e.com/x", "http://[bad/x"]) | urlish


def _reference(base: str, url: str | None) -> str | None:
    """What the resolver promises: urljoin of the stripped URL; data: URIs as they are; None if urljoin refuses."""
    if url is None or not url.strip():
        return None
    url = url.strip()
    if url[:5].lower() == "data:":
        return url
    try:
        return urljoin(base, url)
    except ValueError:
        return None


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=bases, url=urlish)
def test_fuzz_resolver_equals_urljoin(base: str, url: str) -> None:
    try:
        resolve = Resolver(base)
    except ValueError:  # a base urllib cannot split is refused where the page is read, not here
        return
    assert resolve(url) == _reference(base, url)

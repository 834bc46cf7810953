"""Sitemaps: page URLs from robots.txt ``Sitemap:`` lines and ``/sitemap.xml`` (indexes followed)."""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

LOC = re.compile(rb"<loc>\s*([^<\s]+)\s*</loc>", re.IGNORECASE)
INDEX = re.compile(rb"<sitemapindex", re.IGNORECASE)


def parse_sitemap(data: bytes) -> tuple[list[str], bool]:
    """(locations, is_index) of a sitemap or sitemap index (gzip allowed)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except OSError:
            return [], False
    locs = [m.group(1).decode("utf-8", "replace").replace("&amp;", "&") for m in LOC.finditer(data)]
    return locs, bool(INDEX.search(data[:2048]))


def sitemap_urls(seed: str, declared: list[str], fetch: Callable[[str], bytes | None],
                 max_sitemaps: int = 50, max_urls: int = 100_000) -> list[str]:
    """Page URLs listed by the seed host's sitemaps, breadth first, bounded in files and URLs."""
    root = f"{urlsplit(seed).scheme}://{urlsplit(seed).netloc}/"
    queue = [urljoin(root, s) for s in declared] or [urljoin(root, "sitemap.xml")]
    seen, pages = set(queue), []
    while queue and len(seen) <= max_sitemaps and len(pages) < max_urls:
        url = queue.pop(0)
        data = fetch(url)
        if not data:
            continue
        locs, is_index = parse_sitemap(data)
        for loc in (urljoin(url, x) for x in locs):  # lenient: relative locations resolve
            if is_index:
                if loc not in seen:
                    seen.add(loc)
                    queue.append(loc)
            else:
                pages.append(loc)
    return pages[:max_urls]

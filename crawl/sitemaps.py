"""Sitemaps: page URLs from robots.txt ``Sitemap:`` lines and ``/sitemap.xml`` (indexes followed).

A sitemap is read in bounded memory whatever it claims: gzip is inflated chunk by chunk and a sitemap
that inflates past ``max_bytes`` (the protocol's 50 MiB by default) is skipped as ``sitemap/too_large``;
at most ``max_locs`` (the protocol's 50,000) locations are kept from one file. A location no URL function
can read (``http://[bad/x``, a port out of range) is dropped alone as ``sitemap/bad_loc``.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from urllib.parse import urljoin, urlsplit

log = logging.getLogger(__name__)

LOC = re.compile(rb"<loc>\s*([^<\s]+)\s*</loc>", re.IGNORECASE)
INDEX = re.compile(rb"<sitemapindex", re.IGNORECASE)
MAX_SITEMAP_BYTES = 50 * 1024 * 1024  # sitemaps.org: at most 50 MiB uncompressed
MAX_LOCS = 50_000  # sitemaps.org: at most 50,000 URLs per file
CHUNK = 1 << 20
LONGEST_LOC = 1 << 16  # a <loc> split across chunks is kept whole up to this many bytes


class SitemapSkipped(ValueError):
    """A sitemap that is not read: ``reason`` is ``sitemap/too_large`` or ``sitemap/bad_gzip``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def xml_chunks(data: bytes, max_bytes: int = MAX_SITEMAP_BYTES) -> Iterator[bytes]:
    """The sitemap's XML in pieces (gzip members inflated); raises ``SitemapSkipped`` past ``max_bytes``."""
    if data[:2] != b"\x1f\x8b":
        if len(data) > max_bytes:
            raise SitemapSkipped("sitemap/too_large")
        yield data
        return
    size = 0
    while data[:2] == b"\x1f\x8b":
        d = zlib.decompressobj(31)
        try:
            while data and not d.eof:
                piece = d.decompress(data, CHUNK)
                data = d.unconsumed_tail
                size += len(piece)
                if size > max_bytes:
                    raise SitemapSkipped("sitemap/too_large")
                yield piece
        except zlib.error:
            raise SitemapSkipped("sitemap/bad_gzip") from None
        data = d.unused_data  # further members; a truncated one keeps what inflated


def parse_sitemap(data: bytes, max_bytes: int = MAX_SITEMAP_BYTES,
                  max_locs: int = MAX_LOCS) -> tuple[list[str], bool]:
    """(locations, is_index) of a sitemap or sitemap index (gzip allowed); raises ``SitemapSkipped``."""
    locs: list[str] = []
    carry, head = b"", b""
    for piece in xml_chunks(data, max_bytes):
        buf = carry + piece
        if len(head) < 2048:
            head = (head + piece)[:2048]
        end = 0
        for m in LOC.finditer(buf):
            if len(locs) < max_locs:
                locs.append(m.group(1).decode("utf-8", "replace").replace("&amp;", "&"))
            end = m.end()
        carry = buf[end:][-LONGEST_LOC:]
    return locs, bool(INDEX.search(head))


def resolve_loc(base: str, loc: str) -> str | None:
    """The absolute URL of a ``<loc>`` or ``Sitemap:`` value against ``base``; None if it is no URL at all."""
    try:
        url = urljoin(base, loc)  # lenient: relative locations resolve
        urlsplit(url).port  # noqa: B018  (raises on a bad port or an unclosed bracketed host)
    except ValueError:
        return None
    return url


def sitemap_urls(seed: str, declared: list[str], fetch: Callable[[str], bytes | None],
                 max_sitemaps: int = 50, max_urls: int = 100_000, max_bytes: int = MAX_SITEMAP_BYTES,
                 drops: Counter | None = None) -> list[str]:
    """Page URLs listed by the seed host's sitemaps, breadth first, bounded in files, URLs and bytes.

    Sitemaps that are skipped, locations that are no URL and URLs past ``max_urls`` are counted into
    ``drops`` by reason (``sitemap/bad_loc``...), when given; skipped sitemaps are logged too.
    """
    drops = Counter() if drops is None else drops
    root = f"{urlsplit(seed).scheme}://{urlsplit(seed).netloc}/"
    queue = list(dict.fromkeys(_resolved(root, declared, drops))) or [urljoin(root, "sitemap.xml")]
    seen, pages = set(queue), []
    while queue and len(seen) <= max_sitemaps and len(pages) < max_urls:
        url = queue.pop(0)
        data = fetch(url)
        if not data:
            continue
        try:
            locs, is_index = parse_sitemap(data, max_bytes)
        except SitemapSkipped as e:
            log.warning("%s: %s skipped", e.reason, url)
            drops[e.reason] += 1
            continue
        for loc in _resolved(url, locs, drops):
            if is_index:
                if loc not in seen:
                    seen.add(loc)
                    queue.append(loc)
            else:
                pages.append(loc)
    if len(pages) > max_urls:
        drops["sitemap/url_budget"] += len(pages) - max_urls
    return pages[:max_urls]


def _resolved(base: str, locs: list[str], drops: Counter) -> Iterator[str]:
    """The locations that resolve against ``base``; each one that does not is a ``sitemap/bad_loc`` drop."""
    for loc in locs:
        url = resolve_loc(base, loc)
        if url is None:
            drops["sitemap/bad_loc"] += 1
        else:
            yield url

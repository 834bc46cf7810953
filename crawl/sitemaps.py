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
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from webclip.fetch import is_transient

if TYPE_CHECKING:
    from webclip.fetch import Fetcher
    from webclip.robots import RobotsCache

log = logging.getLogger(__name__)

LOC = re.compile(rb"<loc>\s*([^<\s]+)\s*</loc>", re.IGNORECASE)
INDEX = re.compile(rb"<sitemapindex", re.IGNORECASE)
MAX_SITEMAP_BYTES = 50 * 1024 * 1024  # sitemaps.org: at most 50 MiB uncompressed
MAX_LOCS = 50_000  # sitemaps.org: at most 50,000 URLs per file
CHUNK = 1 << 20
LONGEST_LOC = 1 << 16  # a <loc> split across chunks is kept whole up to this many bytes
SITEMAP_ENTRY = "sitemaps:"  # the crawl journal's entry holding the URLs the seeds' sitemaps listed


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
    seen, pages = set(queue), list[str]()
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


def discover_sitemaps(seeds: list[str], fetcher: Fetcher, robots: RobotsCache | None) -> tuple[list[str], dict[str, int]]:
    """Page URLs from each seed host's sitemaps (declared in robots.txt, else /sitemap.xml), and the drops by reason.

    A sitemap that cannot be fetched is ``sitemap/<reason>`` (a missing one, 404 or 410, is no drop); a bad
    ``<loc>`` loses only itself (``sitemap/bad_loc``); a host whose sitemaps raise loses only its own URLs
    (``sitemap/error``, logged).
    """
    drops: Counter[str] = Counter()

    def fetch(url: str) -> bytes | None:
        reason = robots.check(url) if robots is not None else None
        if reason is None:
            r = fetcher.get(url, check=robots.check if robots is not None else None)
            if r.ok and not r.error:
                return r.body
            reason = r.error or (None if r.status in (404, 410) else f"http_{r.status}")
        if reason:
            drops[f"sitemap/{reason}"] += 1
        return None

    out: list[str] = []
    for host in dict.fromkeys(f"{urlsplit(s).scheme}://{urlsplit(s).netloc}/" for s in seeds):
        try:
            declared = list(robots.rules(host).sitemaps) if robots is not None else []
            out += sitemap_urls(host, declared, fetch, drops=drops)
        except Exception:  # a hostile sitemap loses only its own host's URLs
            drops["sitemap/error"] += 1
            log.exception("crawl/sitemap_error on %s (its sitemaps are skipped; the crawl goes on)", host)
    return out, dict(sorted(drops.items()))


def sitemaps_due(entries: list[dict[str, Any]]) -> bool:
    """Whether the seeds' sitemaps are still to be read: never read, or the last reading met a transient failure."""
    last = next((e for e in reversed(entries) if e["url"] == SITEMAP_ENTRY), None)
    return last is None or any(is_transient(reason) for reason in last.get("sitemap_drops", {}))

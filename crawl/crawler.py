"""The live crawler: a frontier of pages fetched politely by a thread pool, checkpointed to a journal."""

from __future__ import annotations

import time
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from tqdm import tqdm

from webclip.crawl.charset import decode_html
from webclip.crawl.config import CrawlConfig
from webclip.crawl.extract import extract
from webclip.crawl.journal import Journal, read_journal
from webclip.crawl.page import robots_tokens
from webclip.crawl.urls import in_scope
from webclip.dedupe.urls import normalise_url
from webclip.fetch import Fetcher
from webclip.robots import RobotsCache

HTML_TYPES = ("text/html", "application/xhtml+xml")
SITEMAP_ENTRY = "sitemaps:"  # journal entry holding the URLs the seeds' sitemaps listed


def discover_sitemaps(seeds: list[str], fetcher: Fetcher, robots: RobotsCache | None) -> list[str]:
    """Page URLs from each seed host's sitemaps (declared in robots.txt, else /sitemap.xml)."""
    from webclip.crawl.sitemaps import sitemap_urls

    def fetch(url: str) -> bytes | None:
        if robots is not None and not robots.allowed(url):
            return None
        r = fetcher.get(url)
        return r.body if r.ok else None

    out: list[str] = []
    for host in dict.fromkeys(f"{urlsplit(s).scheme}://{urlsplit(s).netloc}/" for s in seeds):
        declared = list(robots.rules(host).sitemaps) if robots is not None else []
        out += sitemap_urls(host, declared, fetch)
    return out


@dataclass
class PageResult:
    """One finished page: its outcome, its candidates and the links it offers."""

    url: str
    depth: int
    outcome: str  # "ok" or a drop reason such as "robots_disallowed"
    candidates: list[dict[str, Any]] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    imgs: int = 0
    img_drops: dict[str, int] = field(default_factory=dict)


def process_page(url: str, depth: int, cfg: CrawlConfig, fetcher: Fetcher, robots: RobotsCache | None) -> PageResult:
    """Fetch and extract one page; every outcome is a named reason, never an exception."""
    if robots is not None and not robots.allowed(url):
        return PageResult(url, depth, "robots_disallowed")
    r = fetcher.get(url)
    if r.error:
        return PageResult(url, depth, r.error)
    if not r.ok:
        return PageResult(url, depth, f"http_{r.status}")
    ctype = r.headers.get("content-type", "")
    if ctype and ctype.split(";")[0].strip().lower() not in HTML_TYPES:
        return PageResult(url, depth, "not_html")
    text, _ = decode_html(r.body, ctype)
    header_robots = r.headers.get("x-robots-tag")
    try:
        cands, drops, page = extract(text, r.url, cfg.parser, "crawl", header_robots)
    except Exception:  # a parser crash on hostile HTML loses only this page, with a reason
        return PageResult(url, depth, "parse_error")
    directives = page.robots | robots_tokens([header_robots or ""])
    links = [] if "nofollow" in directives or "none" in directives else page.links
    base = urljoin(r.url, page.base_href) if page.base_href else r.url
    return PageResult(url, depth, "ok", [asdict(c) for c in cands], [urljoin(base, h) for h in links if h],
                      len(page.imgs), dict(drops))


class Frontier:
    """Admitted URLs and the queue still to fetch; replaying a journal rebuilds it exactly."""

    def __init__(self, cfg: CrawlConfig, seeds: list[str]):
        self.cfg = cfg
        self.seeds = seeds
        self.admitted: dict[str, int] = {}
        self.done: set[str] = set()
        self.queue: deque[tuple[str, int]] = deque()
        for s in seeds:
            self.admit(s, 0)

    def admit(self, url: str, depth: int) -> None:
        """Add a normalised, in-scope, unseen URL if depth and page budget allow."""
        norm = normalise_url(url, strip_tracking=self.cfg.strip_tracking_params)
        if norm is None or norm in self.admitted or depth > self.cfg.max_depth:
            return
        if len(self.admitted) >= self.cfg.max_pages:
            return
        if depth > 0 and not in_scope(norm, self.seeds, self.cfg.scope, self.cfg.hosts):
            return
        self.admitted[norm] = depth
        self.queue.append((norm, depth))

    def finish(self, entry: dict[str, Any]) -> None:
        """Mark a page done and admit its links, in the order they appear."""
        self.done.add(entry["url"])
        for link in entry["links"]:
            self.admit(link, entry["depth"] + 1)

    def next(self) -> tuple[str, int] | None:
        """The next URL not yet done."""
        while self.queue:
            url, depth = self.queue.popleft()
            if url not in self.done:
                return url, depth
        return None


def crawl(cfg: CrawlConfig, seeds: list[str], work: Path) -> list[dict[str, Any]]:
    """Crawl until the frontier is empty; return the journal entries (resuming from ``work``)."""
    journal_path = work / "journal.jsonl"
    frontier = Frontier(cfg, seeds)
    entries = []
    for entry in read_journal(journal_path):
        frontier.finish(entry)
        entries.append(entry)
    fetcher = Fetcher(cfg.fetch_config())
    robots = RobotsCache(fetcher, cfg.robots_agent) if cfg.respect_robots else None
    journal = Journal(journal_path)
    if cfg.use_sitemaps and not any(e["url"] == SITEMAP_ENTRY for e in entries):
        entry = {"url": SITEMAP_ENTRY, "depth": 0, "outcome": "sitemaps", "candidates": [], "imgs": 0,
                 "img_drops": {}, "links": discover_sitemaps(seeds, fetcher, robots)}
        journal.append(entry)
        frontier.finish(entry)
        entries.append(entry)
    errors = Counter(e["outcome"] for e in entries if e["outcome"] != "ok")
    n_cands = sum(len(e["candidates"]) for e in entries)
    bar = tqdm(total=len(frontier.admitted), initial=len(entries), unit="page", desc="crawl",
               disable=not cfg.progress, mininterval=0.5)
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(cfg.concurrency, thread_name_prefix="crawl") as pool:
            running: dict[Future, str] = {}
            while True:
                while len(running) < cfg.concurrency * 2:
                    nxt = frontier.next()
                    if nxt is None:
                        break
                    frontier.done.add(nxt[0])  # in flight: never hand it out twice
                    running[pool.submit(process_page, nxt[0], nxt[1], cfg, fetcher, robots)] = nxt[0]
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    del running[fut]
                    entry = asdict(fut.result())
                    journal.append(entry)
                    frontier.finish(entry)
                    entries.append(entry)
                    n_cands += len(entry["candidates"])
                    if entry["outcome"] != "ok":
                        errors[entry["outcome"]] += 1
                    bar.total = len(frontier.admitted)
                    bar.update(1)
                    rate = (len(entries)) / max(1e-6, time.monotonic() - started)
                    bar.set_postfix(candidates=n_cands, errors=sum(errors.values()), pages_s=f"{rate:.0f}", refresh=False)
    finally:
        journal.close()
        bar.close()
    return entries

"""The live crawler: one failure boundary per page, pages from the frontier fetched by a thread pool, journaled."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from webclip.crawl.charset import decode_html
from webclip.crawl.config import CrawlConfig
from webclip.crawl.extract import extract
from webclip.crawl.frontier import Frontier, PacerView, Task
from webclip.crawl.journal import Entries, Journal, kept_on_replay, read_journal
from webclip.crawl.sitemaps import SITEMAP_ENTRY, discover_sitemaps, sitemaps_due
from webclip.crawl.tally import CrawlTally
from webclip.crawl.urls import Resolver
from webclip.denylist import Denylist
from webclip.fetch import Fetcher, is_transient
from webclip.robots import RobotsCache, xrobots_forbids

log = logging.getLogger(__name__)

HTML_TYPES = ("text/html", "application/xhtml+xml")
MAX_URL_CHARS = 4096  # longer links are hostile or broken; they would also bloat the journal
LOG_FIRST_FAILURES = 5  # tracebacks logged per crawl; the rest are only counted
FAILURE_REASONS: dict[type[BaseException], str] = {UnicodeError: "bad_encoding", RecursionError: "parse_error"}
WAIT_FOR_HOST = "wait_for_host"  # a redirect whose target host is not ready: the frontier hands it out when it is
MAX_SLEEP = 0.05  # seconds a worker may sleep for a host's turn; a longer wait goes back to the frontier


class PageError(Exception):
    """An exception while handling one page, named after the step that raised it (``parse_error``)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


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
    link_drops: dict[str, int] = field(default_factory=dict)  # links never offered to the frontier, by reason


def page_links(hrefs: list[str], base: str) -> tuple[list[str], dict[str, int]]:
    """Absolute forms of a page's hrefs, and the count of those that cannot be links, by reason."""
    resolve, out, dropped = Resolver(base), [], Counter[str]()
    for href in hrefs:
        if not href.strip():
            dropped["empty_link"] += 1
        elif len(href) > MAX_URL_CHARS:
            dropped["url_too_long"] += 1
        elif (url := resolve(href)) is None:
            dropped["bad_link"] += 1
        elif len(url) > MAX_URL_CHARS:
            dropped["url_too_long"] += 1
        else:
            out.append(url)
    return out, dict(dropped)


@dataclass
class Deferred:
    """A task whose next request would wait for its host's turn; the frontier hands it out again then."""

    task: Task
    depth: int


class Follow:
    """The fetcher's redirect check for one task: the same decisions as following inline, minus the sleeping.

    Per target, in the order the fetcher follows a redirect: a loop over the whole chain, robots.txt, the
    redirect budget; a target whose host is not ready (``WAIT_FOR_HOST``) stops the fetch there, and the
    frontier hands the target out as a continuation of the same page when its host is ready.
    """

    def __init__(self, task: Task, cfg: CrawlConfig, robots: RobotsCache | None, pacer: PacerView):
        self.chain = [*task.chain, task.fetch]
        self.cfg, self.robots, self.pacer = cfg, robots, pacer

    def __call__(self, target: str) -> str | None:
        """None to follow ``target`` now, else the reason the fetch stops there."""
        if target in self.chain:
            return "redirect_loop"
        refused = hold(target, len(self.chain), self.cfg, self.robots, self.pacer)
        if refused is None:
            self.chain.append(target)
        return refused


def hold(url: str, requested: int, cfg: CrawlConfig, robots: RobotsCache | None, pacer: PacerView) -> str | None:
    """Why ``url`` is not requested now (``requested``: URLs this page already asked for); None to go ahead.

    Host not ready (robots.txt is not fetched then either: it would sleep too), robots.txt, the redirect budget,
    then the host once more (fetching its robots.txt took the host's turn).
    """
    if pacer.wait(url) > MAX_SLEEP:
        return WAIT_FOR_HOST
    if robots is not None and (refused := robots.check(url)) is not None:
        return refused
    if requested > cfg.max_redirects:
        return "too_many_redirects"
    return WAIT_FOR_HOST if pacer.wait(url) > MAX_SLEEP else None


def process_page(task: Task, depth: int, cfg: CrawlConfig, fetcher: Fetcher, robots: RobotsCache | None,
                 pacer: PacerView) -> PageResult | Deferred:
    """Fetch and extract one page; expected outcomes are named reasons (``Contained`` catches the rest).

    A request that would sleep for its host's turn is handed back (``Deferred``): no worker thread waits on a host.
    """
    url = task.page
    follow = Follow(task, cfg, robots, pacer)
    refused = hold(task.fetch, len(task.chain), cfg, robots, pacer)
    if refused == WAIT_FOR_HOST:
        return Deferred(task, depth)
    if refused is not None:
        return PageResult(url, depth, refused)
    r = fetcher.get(task.fetch, check=follow)  # robots.txt of every redirect target too
    if r.error == WAIT_FOR_HOST:
        return Deferred(Task(url, r.url, tuple(follow.chain)), depth)
    if r.error:
        return PageResult(url, depth, r.error)
    if not r.ok:
        return PageResult(url, depth, f"http_{r.status}")
    return extract_page(url, depth, r.url, r.headers, r.body, cfg)


def content_type(value: str) -> str:
    """The MIME type a Content-Type value names: of repeated headers (joined by commas), the last valid one.

    WHATWG Fetch's "extract a MIME type": servers and proxies that send the header twice are read as browsers do.
    """
    for part in reversed(value.split(",")):
        essence = part.split(";")[0].strip()
        if "/" in essence and essence != "*/*":
            return part.strip()
    return value.strip()


def extract_page(url: str, depth: int, final_url: str, headers: dict[str, str], body: bytes,
                 cfg: CrawlConfig) -> PageResult:
    """The candidates and links of one fetched page (``final_url``: where its redirects ended)."""
    ctype = content_type(headers.get("content-type", ""))
    if ctype and ctype.split(";")[0].strip().lower() not in HTML_TYPES:
        return PageResult(url, depth, "not_html")
    text, _ = decode_html(body, ctype)
    header_robots = headers.get("x-robots-tag")
    try:
        cands, drops, page = extract(text, final_url, cfg.parser, "crawl", header_robots, robots_agent=cfg.robots_agent)
    except Exception as e:  # named for the step; Contained counts it and logs the traceback
        raise PageError("parse_error") from e
    links: list[str] = []  # X-Robots-Tag by its grammar: "googlebot: nofollow" is not addressed to us
    if page.robots & {"nofollow", "none"} or xrobots_forbids(header_robots, ("nofollow",), cfg.robots_agent):
        link_drops = {"nofollow": len(page.links)} if page.links else {}
    else:
        base = (Resolver(final_url)(page.base_href) if page.base_href else None) or final_url
        links, link_drops = page_links(page.links, base)
    return PageResult(url, depth, "ok", [asdict(c) for c in cands], links, len(page.imgs), dict(drops), link_drops)


class Contained:
    """The crawl's failure boundary: any exception while handling one page is a drop, the first few logged."""

    def __init__(self, handle: Callable[..., PageResult | Deferred], log_first: int = LOG_FIRST_FAILURES):
        self.handle = handle
        self.log_first = log_first
        self.failures = 0
        self.lock = threading.Lock()

    def __call__(self, task: Task, depth: int, *args: Any) -> PageResult | Deferred:
        """``handle(task, depth, *args)``, or a PageResult named after the exception it raised."""
        try:
            return self.handle(task, depth, *args)
        except Exception as e:
            reason = e.reason if isinstance(e, PageError) else next(
                (r for kind, r in FAILURE_REASONS.items() if isinstance(e, kind)), "error")
            with self.lock:
                self.failures += 1
                first = self.failures <= self.log_first
            if first:
                log.exception("crawl/%s on %s (this page is dropped; the crawl goes on)", reason, task.page)
            return PageResult(task.page, depth, reason)


class Crawler:
    """One crawl into ``work/journal.jsonl``: replay what is there, then fetch the rest.

    Memory per page is the frontier's (``Frontier``); entries go to the journal and only their counts
    (``CrawlTally``) stay, so ``run`` hands back the entries as a view that reads the journal again.
    """

    def __init__(self, cfg: CrawlConfig, seeds: list[str], work: Path, deny: Denylist | None = None):
        self.cfg = cfg
        self.seeds = seeds
        self.journal_path = work / "journal.jsonl"
        self.fetcher = Fetcher(cfg.fetch_config())
        self.robots = RobotsCache(self.fetcher, cfg.robots_agent) if cfg.respect_robots else None
        self.frontier = Frontier(cfg, seeds, self.fetcher.pacer, deny)
        self.tally = CrawlTally()
        self.handle = Contained(process_page)
        self.resumed_at = 0  # journal bytes replayed: entries past it are this run's

    def replay(self) -> None:
        """Rebuild the frontier from the journal; transient outcomes are not kept: those pages are tried again."""
        for entry in filter(kept_on_replay, read_journal(self.journal_path)):
            self.keep(entry)
        self.resumed_at = self.journal_path.stat().st_size if self.journal_path.exists() else 0

    def keep(self, entry: dict[str, Any]) -> None:
        """A final entry: its links to the frontier, its counts to the tally."""
        self.frontier.finish(entry)
        self.tally.add(entry)

    def record(self, journal: Journal, result: PageResult) -> bool:
        """Keep a final result (journal, then frontier); put a transient one back for later. True if final."""
        if is_transient(result.outcome) and self.frontier.tries[result.url] < self.cfg.transient_retries:
            self.frontier.retry_later(result.url, time.monotonic() + self.retry_delay(result.outcome))
            return False
        entry = asdict(result)
        journal.append(entry)
        self.keep(entry)
        return True

    def retry_delay(self, outcome: str) -> float:
        """Seconds before a transient drop is tried again: an unreachable robots.txt is not asked again sooner."""
        waits = {"robots_unreachable": self.cfg.robots_retry_interval}
        return max(self.cfg.transient_retry_delay, waits.get(outcome, 0.0))

    def run(self) -> Entries:
        """Crawl until nothing is left; return the journal entries in order (resuming any journal)."""
        self.replay()
        journal = Journal(self.journal_path)
        if self.cfg.use_sitemaps and sitemaps_due(self.tally.sitemap_entries()):  # transient: read again on a rerun
            links, drops = discover_sitemaps(self.seeds, self.fetcher, self.robots)
            entry = {**asdict(PageResult(SITEMAP_ENTRY, 0, "sitemaps", links=links)), "sitemap_drops": drops}
            journal.append(entry)
            self.keep(entry)
        bar = tqdm(total=len(self.frontier.admitted), initial=self.tally.entries, unit="page", desc="crawl",
                   disable=not self.cfg.progress, mininterval=0.5)
        try:
            self.drive(journal, bar)
        finally:
            journal.close()
            bar.close()
        return Entries(self.journal_path, self.resumed_at, self.tally.entries)

    def drive(self, journal: Journal, bar: tqdm) -> None:
        """Keep up to ``concurrency`` ready tasks in flight until the frontier is empty."""
        started, cfg, frontier = time.monotonic(), self.cfg, self.frontier
        with ThreadPoolExecutor(cfg.concurrency, thread_name_prefix="crawl") as pool:
            running: dict[Future, str] = {}  # -> the host whose slot the task holds
            while True:
                while len(running) < cfg.concurrency and (nxt := frontier.next(time.monotonic())) is not None:
                    task, depth, host = nxt
                    running[pool.submit(self.handle, task, depth, cfg, self.fetcher, self.robots, frontier.pacer)] = host
                wake = frontier.wake_at()
                if not running and wake is None:
                    return
                timeout = None if len(running) >= cfg.concurrency or wake is None else max(0.0, wake - time.monotonic())
                if not running:
                    time.sleep(timeout or 0.0)
                    continue
                finished, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
                for fut in finished:
                    frontier.release(running.pop(fut))
                    result = fut.result()
                    if isinstance(result, Deferred):
                        frontier.defer(result.task)
                    elif self.record(journal, result):
                        bar.total = len(frontier.admitted)
                        bar.update(1)
                rate = self.tally.entries / max(1e-6, time.monotonic() - started)
                bar.set_postfix(candidates=self.tally.candidates, errors=self.tally.errors, pages_s=f"{rate:.0f}",
                                refresh=False)


def crawl(cfg: CrawlConfig, seeds: list[str], work: Path) -> Entries:
    """Crawl until the frontier is empty; return the journal entries (resuming from ``work``)."""
    return Crawler(cfg, seeds, work).run()

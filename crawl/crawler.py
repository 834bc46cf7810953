"""The live crawler: per-host queues handed out as hosts become ready, fetched by a thread pool, journaled."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tqdm import tqdm

from webclip.crawl.charset import decode_html
from webclip.crawl.config import CrawlConfig
from webclip.crawl.extract import extract
from webclip.crawl.journal import Journal, read_journal
from webclip.crawl.page import robots_tokens
from webclip.crawl.urls import Resolver, in_scope
from webclip.dedupe.urls import normalise_url
from webclip.fetch import Fetcher, HostPacer, host_key, is_transient
from webclip.robots import RobotsCache
from webclip.stats import Tally

log = logging.getLogger(__name__)

HTML_TYPES = ("text/html", "application/xhtml+xml")
SITEMAP_ENTRY = "sitemaps:"  # journal entry holding the URLs the seeds' sitemaps listed
MAX_URL_CHARS = 4096  # longer links are hostile or broken; they would also bloat the journal
LOG_FIRST_FAILURES = 5  # tracebacks logged per crawl; the rest are only counted
FAILURE_REASONS: dict[type[BaseException], str] = {UnicodeError: "bad_encoding", RecursionError: "parse_error"}


def discover_sitemaps(seeds: list[str], fetcher: Fetcher, robots: RobotsCache | None) -> list[str]:
    """Page URLs from each seed host's sitemaps (declared in robots.txt, else /sitemap.xml); a failing host gives none."""
    from webclip.crawl.sitemaps import sitemap_urls

    def fetch(url: str) -> bytes | None:
        if robots is not None and robots.check(url) is not None:
            return None
        r = fetcher.get(url, check=robots.check if robots is not None else None)
        return r.body if r.ok else None

    out: list[str] = []
    for host in dict.fromkeys(f"{urlsplit(s).scheme}://{urlsplit(s).netloc}/" for s in seeds):
        try:
            declared = list(robots.rules(host).sitemaps) if robots is not None else []
            out += sitemap_urls(host, declared, fetch)
        except Exception:  # a hostile sitemap loses only its own URLs
            log.exception("crawl/sitemap_error on %s (its sitemaps are skipped; the crawl goes on)", host)
    return out


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


def process_page(url: str, depth: int, cfg: CrawlConfig, fetcher: Fetcher, robots: RobotsCache | None) -> PageResult:
    """Fetch and extract one page; expected outcomes are named reasons (``guarded_page`` catches the rest)."""
    if robots is not None and (refused := robots.check(url)) is not None:
        return PageResult(url, depth, refused)
    r = fetcher.get(url, check=robots.check if robots is not None else None)  # robots of every redirect target
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
    except Exception as e:  # named for the step; Contained counts it and logs the traceback
        raise PageError("parse_error") from e
    directives = page.robots | robots_tokens([header_robots or ""])
    links: list[str] = []
    if "nofollow" in directives or "none" in directives:
        link_drops = {"nofollow": len(page.links)} if page.links else {}
    else:
        base = (Resolver(r.url)(page.base_href) if page.base_href else None) or r.url
        links, link_drops = page_links(page.links, base)
    return PageResult(url, depth, "ok", [asdict(c) for c in cands], links, len(page.imgs), dict(drops), link_drops)


class Contained:
    """The crawl's failure boundary: any exception while handling one page is a drop, the first few logged."""

    def __init__(self, handle: Callable[..., PageResult], log_first: int = LOG_FIRST_FAILURES):
        self.handle = handle
        self.log_first = log_first
        self.failures = 0
        self.lock = threading.Lock()

    def __call__(self, url: str, depth: int, *args: Any) -> PageResult:
        """``handle(url, depth, *args)``, or a PageResult named after the exception it raised."""
        try:
            return self.handle(url, depth, *args)
        except Exception as e:
            reason = e.reason if isinstance(e, PageError) else next(
                (r for kind, r in FAILURE_REASONS.items() if isinstance(e, kind)), "error")
            with self.lock:
                self.failures += 1
                first = self.failures <= self.log_first
            if first:
                log.exception("crawl/%s on %s (this page is dropped; the crawl goes on)", reason, url)
            return PageResult(url, depth, reason)


def pacing_key(url: str) -> str:
    """The host key the fetcher paces by (``fetch.host_key``), so the frontier reads the same pacer entry."""
    try:
        return host_key(url)
    except ValueError:  # admitted URLs are normalised; this is only a guard
        return urlsplit(url).netloc


class PacerView:
    """What the frontier reads from the fetcher's pacer: when a host may start next, and its delay."""

    def __init__(self, pacer: HostPacer | None):
        self.pacer = pacer

    def ready_at(self, host: str) -> float:
        """Monotonic time before which the pacer holds ``host`` (Retry-After pushes it back)."""
        return self.pacer.next_start.get(host, 0.0) if self.pacer is not None else 0.0

    def delay(self, host: str) -> float:
        """Seconds between request starts to ``host`` (robots.txt Crawl-delay, capped, or the default)."""
        return self.pacer.delays.get(host, self.pacer.delay) if self.pacer is not None else 0.0


class Frontier:
    """Admitted URLs in per-host queues, handed out only when their host is ready and has a free slot.

    A host waiting for its delay never blocks the others, and no host holds more than
    ``per_host_concurrency`` pages in flight. Replaying a journal through ``finish`` rebuilds the
    admissions (and the link accounting) exactly.
    """

    def __init__(self, cfg: CrawlConfig, seeds: list[str], pacer: HostPacer | None = None):
        self.cfg = cfg
        self.seeds = seeds
        self.pacer = PacerView(pacer)
        self.admitted: dict[str, int] = {}  # normalised URL -> depth
        self.done: set[str] = set()
        self.queues: dict[str, deque[str]] = defaultdict(deque)
        self.in_flight: Counter[str] = Counter()
        self.not_before: dict[str, float] = {}
        self.heap: list[tuple[float, int, str]] = []  # (time, tie, host): hosts with work and a free slot
        self.scheduled: set[str] = set()
        self.later: list[tuple[float, int, str]] = []  # (due, tie, url): transient drops tried again
        self.tries: Counter[str] = Counter()
        self.tick = itertools.count()
        self.links = Tally("links")  # every URL offered: seeds, sitemap entries, page links
        for s in seeds:
            self.admit(s, 0)

    def admission(self, url: str, depth: int) -> str | None:
        """Why ``url`` is not admitted at ``depth``, or None after admitting it."""
        try:
            if urlsplit(url).scheme.lower() not in ("http", "https"):
                return "not_http"
            norm = normalise_url(url, strip_tracking=self.cfg.strip_tracking_params)
            if norm is None:
                return "bad_link"
            if norm in self.admitted:
                return "duplicate"
            if depth > self.cfg.max_depth:
                return "too_deep"
            if depth > 0 and not in_scope(norm, self.seeds, self.cfg.scope, self.cfg.hosts):
                return "out_of_scope"
        except Exception:  # a link no URL function can read (hostile netloc, port, IDNA...)
            return "bad_link"
        if len(self.admitted) >= self.cfg.max_pages:
            return "page_budget"
        self.admitted[norm] = depth
        self.enqueue(norm)
        return None

    def admit(self, url: str, depth: int) -> None:
        """Offer one URL: admitted, or counted as a dropped link with its reason."""
        self.links.n_in += 1
        reason = self.admission(url, depth)
        if reason is None:
            self.links.kept += 1
        else:
            self.links.drop(f"crawl/{reason}")

    def finish(self, entry: dict[str, Any]) -> None:
        """Mark a page done for good and admit its links, in the order they appear."""
        self.done.add(entry["url"])
        for reason, n in entry.get("link_drops", {}).items():
            self.links.n_in += n
            self.links.drop(f"crawl/{reason}", n)
        for link in entry["links"]:
            self.admit(link, entry["depth"] + 1)

    def enqueue(self, url: str) -> None:
        """Put ``url`` at the back of its host's queue."""
        host = pacing_key(url)
        self.queues[host].append(url)
        self.schedule(host)

    def schedule(self, host: str, at: float | None = None) -> None:
        """Put ``host`` on the heap if it has work and a free slot and is not there already."""
        if host in self.scheduled or not self.queues[host] or self.in_flight[host] >= self.cfg.per_host_concurrency:
            return
        self.scheduled.add(host)
        heapq.heappush(self.heap, (self.not_before.get(host, 0.0) if at is None else at, next(self.tick), host))

    def next(self, now: float) -> tuple[str, int] | None:
        """A ready (url, depth) not yet done, reserving its host's delay; None if nothing is ready now."""
        while self.later and self.later[0][0] <= now:
            self.enqueue(heapq.heappop(self.later)[2])
        while self.heap and self.heap[0][0] <= now:
            host = heapq.heappop(self.heap)[2]
            self.scheduled.discard(host)
            queue = self.queues[host]
            while queue and queue[0] in self.done:
                queue.popleft()
            if not queue or self.in_flight[host] >= self.cfg.per_host_concurrency:
                continue
            ready = max(self.not_before.get(host, 0.0), self.pacer.ready_at(host))
            if ready > now:
                self.schedule(host, ready)
                continue
            url = queue.popleft()
            self.in_flight[host] += 1
            self.not_before[host] = now + self.pacer.delay(host)
            self.schedule(host)
            return url, self.admitted[url]
        return None

    def release(self, url: str) -> None:
        """A page handed out by ``next`` came back: free its host's slot."""
        host = pacing_key(url)
        self.in_flight[host] -= 1
        self.schedule(host)

    def retry_later(self, url: str, at: float) -> None:
        """Hand ``url`` out again at ``at`` (a transient drop: timeout, 5xx, unreachable robots.txt)."""
        self.tries[url] += 1
        heapq.heappush(self.later, (at, next(self.tick), url))

    def wake_at(self) -> float | None:
        """The earliest time something may become ready; None when nothing is waiting."""
        times = [q[0][0] for q in (self.heap, self.later) if q]
        return min(times) if times else None


class Crawler:
    """One crawl into ``work/journal.jsonl``: replay what is there, then fetch the rest."""

    def __init__(self, cfg: CrawlConfig, seeds: list[str], work: Path):
        self.cfg = cfg
        self.seeds = seeds
        self.journal_path = work / "journal.jsonl"
        self.fetcher = Fetcher(cfg.fetch_config())
        self.robots = RobotsCache(self.fetcher, cfg.robots_agent) if cfg.respect_robots else None
        self.frontier = Frontier(cfg, seeds, self.fetcher.pacer)
        self.entries: list[dict[str, Any]] = []
        self.handle = Contained(process_page)
        self.errors: Counter[str] = Counter()
        self.candidates = 0

    def replay(self) -> None:
        """Rebuild the frontier from the journal; transient outcomes are not kept: those pages are tried again."""
        for entry in read_journal(self.journal_path):
            if entry["outcome"] != "sitemaps" and is_transient(entry["outcome"]):
                continue
            self.frontier.finish(entry)
            self.entries.append(entry)
            self.count(entry)

    def count(self, entry: dict[str, Any]) -> None:
        """Progress counters."""
        self.candidates += len(entry["candidates"])
        if entry["outcome"] not in ("ok", "sitemaps"):
            self.errors[entry["outcome"]] += 1

    def record(self, journal: Journal, result: PageResult) -> bool:
        """Keep a final result (journal, then frontier); put a transient one back for later. True if final."""
        self.frontier.release(result.url)
        if is_transient(result.outcome) and self.frontier.tries[result.url] < self.cfg.transient_retries:
            self.frontier.retry_later(result.url, time.monotonic() + self.retry_delay(result.outcome))
            return False
        entry = asdict(result)
        journal.append(entry)
        self.frontier.finish(entry)
        self.entries.append(entry)
        self.count(entry)
        return True

    def retry_delay(self, outcome: str) -> float:
        """Seconds before a transient drop is tried again: an unreachable robots.txt is not asked again sooner."""
        waits = {"robots_unreachable": self.cfg.robots_retry_interval}
        return max(self.cfg.transient_retry_delay, waits.get(outcome, 0.0))

    def run(self) -> list[dict[str, Any]]:
        """Crawl until nothing is left; return the journal entries in order (resuming any journal)."""
        self.replay()
        journal = Journal(self.journal_path)
        if self.cfg.use_sitemaps and not any(e["url"] == SITEMAP_ENTRY for e in self.entries):
            entry = asdict(PageResult(SITEMAP_ENTRY, 0, "sitemaps",
                                      links=discover_sitemaps(self.seeds, self.fetcher, self.robots)))
            journal.append(entry)
            self.frontier.finish(entry)
            self.entries.append(entry)
        bar = tqdm(total=len(self.frontier.admitted), initial=len(self.entries), unit="page", desc="crawl",
                   disable=not self.cfg.progress, mininterval=0.5)
        try:
            self.drive(journal, bar)
        finally:
            journal.close()
            bar.close()
        return self.entries

    def drive(self, journal: Journal, bar: tqdm) -> None:
        """Keep up to ``concurrency`` ready pages in flight until the frontier is empty."""
        started, cfg, frontier = time.monotonic(), self.cfg, self.frontier
        with ThreadPoolExecutor(cfg.concurrency, thread_name_prefix="crawl") as pool:
            running: dict[Future, str] = {}
            while True:
                while len(running) < cfg.concurrency and (nxt := frontier.next(time.monotonic())) is not None:
                    running[pool.submit(self.handle, *nxt, cfg, self.fetcher, self.robots)] = nxt[0]
                wake = frontier.wake_at()
                if not running and wake is None:
                    return
                timeout = None if len(running) >= cfg.concurrency or wake is None else max(0.0, wake - time.monotonic())
                if not running:
                    time.sleep(timeout or 0.0)
                    continue
                finished, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
                for fut in finished:
                    del running[fut]
                    if self.record(journal, fut.result()):
                        bar.total = len(frontier.admitted)
                        bar.update(1)
                rate = len(self.entries) / max(1e-6, time.monotonic() - started)
                bar.set_postfix(candidates=self.candidates, errors=sum(self.errors.values()), pages_s=f"{rate:.0f}",
                                refresh=False)


def crawl(cfg: CrawlConfig, seeds: list[str], work: Path) -> list[dict[str, Any]]:
    """Crawl until the frontier is empty; return the journal entries (resuming from ``work``)."""
    return Crawler(cfg, seeds, work).run()

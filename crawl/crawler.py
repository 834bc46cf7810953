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
from webclip.crawl.urls import Resolver, in_scope
from webclip.dedupe.urls import normalise_url
from webclip.fetch import Fetcher, HostPacer, host_key, is_transient
from webclip.robots import RobotsCache, xrobots_forbids
from webclip.stats import Tally

log = logging.getLogger(__name__)

HTML_TYPES = ("text/html", "application/xhtml+xml")
SITEMAP_ENTRY = "sitemaps:"  # journal entry holding the URLs the seeds' sitemaps listed
MAX_URL_CHARS = 4096  # longer links are hostile or broken; they would also bloat the journal
LOG_FIRST_FAILURES = 5  # tracebacks logged per crawl; the rest are only counted
FAILURE_REASONS: dict[type[BaseException], str] = {UnicodeError: "bad_encoding", RecursionError: "parse_error"}
WAIT_FOR_HOST = "wait_for_host"  # a redirect whose target host is not ready: the frontier hands it out when it is
MAX_SLEEP = 0.05  # seconds a worker may sleep for a host's turn; a longer wait goes back to the frontier


def discover_sitemaps(seeds: list[str], fetcher: Fetcher, robots: RobotsCache | None) -> tuple[list[str], dict[str, int]]:
    """Page URLs from each seed host's sitemaps (declared in robots.txt, else /sitemap.xml), and the drops by reason.

    A sitemap that cannot be fetched is ``sitemap/<reason>`` (a missing one, 404 or 410, is no drop); a bad
    ``<loc>`` loses only itself (``sitemap/bad_loc``); a host whose sitemaps raise loses only its own URLs
    (``sitemap/error``, logged).
    """
    from webclip.crawl.sitemaps import sitemap_urls

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


@dataclass(frozen=True)
class Task:
    """One request for an admitted page: the page itself, or a redirect target it waits to follow."""

    page: str  # the admitted URL the result is recorded under
    fetch: str  # the URL to request now
    chain: tuple[str, ...] = ()  # URLs already requested for this page (redirect loops, the hop budget)


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
        cands, drops, page = extract(text, final_url, cfg.parser, "crawl", header_robots)
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


def pacing_key(url: str) -> str:
    """The host key the fetcher paces by (``fetch.host_key``), so the frontier reads the same pacer entry."""
    try:
        return host_key(url)
    except ValueError:  # admitted URLs are normalised and redirect targets parsed; this is only a guard
        return url


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

    def wait(self, url: str) -> float:
        """Seconds a request to ``url`` would sleep in the pacer before it may start (0 when ready)."""
        return max(0.0, self.ready_at(pacing_key(url)) - time.monotonic())


class Frontier:
    """Admitted URLs in per-host queues, handed out only when their host is ready and has a free slot.

    A host waiting for its delay never blocks the others, and no host holds more than
    ``per_host_concurrency`` requests in flight. A page waiting to follow a redirect goes to the front
    of its target host's queue (``defer``). Replaying a journal through ``finish`` rebuilds the
    admissions (and the link accounting) exactly.

    Links are admitted in the order pages finish, so when ``max_pages`` or ``max_depth`` binds, which pages
    make the cut depends on timing (hosts' speed, delays, concurrency), as in any concurrent crawler: a
    resume continues the journal's admissions, but two fresh crawls may admit different pages.
    """

    def __init__(self, cfg: CrawlConfig, seeds: list[str], pacer: HostPacer | None = None):
        self.cfg = cfg
        self.seeds = seeds
        self.pacer = PacerView(pacer)
        self.admitted: dict[str, int] = {}  # normalised URL -> depth
        self.done: set[str] = set()
        self.queues: dict[str, deque[Task]] = defaultdict(deque)
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
        self.queues[host].append(Task(url, url))
        self.schedule(host)

    def defer(self, task: Task) -> None:
        """Put a started page at the front of the queue of the host it waits for."""
        host = pacing_key(task.fetch)
        self.queues[host].appendleft(task)
        self.schedule(host)

    def schedule(self, host: str, at: float | None = None) -> None:
        """Put ``host`` on the heap if it has work and a free slot and is not there already."""
        if host in self.scheduled or not self.queues[host] or self.in_flight[host] >= self.cfg.per_host_concurrency:
            return
        self.scheduled.add(host)
        heapq.heappush(self.heap, (self.not_before.get(host, 0.0) if at is None else at, next(self.tick), host))

    def next(self, now: float) -> tuple[Task, int, str] | None:
        """A ready (task, depth, host) whose page is not done, reserving the host's delay; None if none is ready."""
        while self.later and self.later[0][0] <= now:
            self.enqueue(heapq.heappop(self.later)[2])
        while self.heap and self.heap[0][0] <= now:
            host = heapq.heappop(self.heap)[2]
            self.scheduled.discard(host)
            queue = self.queues[host]
            while queue and queue[0].page in self.done:
                queue.popleft()
            if not queue or self.in_flight[host] >= self.cfg.per_host_concurrency:
                continue
            ready = max(self.not_before.get(host, 0.0), self.pacer.ready_at(host))
            if ready > now:
                self.schedule(host, ready)
                continue
            task = queue.popleft()
            self.in_flight[host] += 1
            self.not_before[host] = now + self.pacer.delay(host)
            self.schedule(host)
            return task, self.admitted[task.page], host
        return None

    def release(self, host: str) -> None:
        """A task handed out by ``next`` came back: free its host's slot."""
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
        if self.cfg.use_sitemaps and sitemaps_due(self.entries):  # a transient failure is read again on a rerun
            links, drops = discover_sitemaps(self.seeds, self.fetcher, self.robots)
            entry = {**asdict(PageResult(SITEMAP_ENTRY, 0, "sitemaps", links=links)), "sitemap_drops": drops}
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
                rate = len(self.entries) / max(1e-6, time.monotonic() - started)
                bar.set_postfix(candidates=self.candidates, errors=sum(self.errors.values()), pages_s=f"{rate:.0f}",
                                refresh=False)


def crawl(cfg: CrawlConfig, seeds: list[str], work: Path) -> list[dict[str, Any]]:
    """Crawl until the frontier is empty; return the journal entries (resuming from ``work``)."""
    return Crawler(cfg, seeds, work).run()

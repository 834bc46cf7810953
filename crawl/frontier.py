"""The crawl frontier: admitted URLs in per-host queues, handed out only when their host is ready."""

from __future__ import annotations

import hashlib
import heapq
import itertools
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from webclip.crawl.config import CrawlConfig
from webclip.crawl.urls import in_scope
from webclip.dedupe.urls import normalise_url
from webclip.denylist import Denylist, url_admitted
from webclip.fetch import HostPacer, host_key
from webclip.stats import Tally

DONE = -1  # ``Frontier.admitted`` value of a page finished for good
URL_KEY_BYTES = 16


def url_key(url: str) -> int:
    """What the frontier remembers of an admitted URL: 128 bits of its blake2b.

    An int of 16 bytes costs less than half the URL string it stands for (44 bytes, against 49 plus the URL's
    length). Two URLs share a key with odds about n^2 / 2^129 for n URLs (1.5e-21 at a billion); the later one
    would count as a ``duplicate`` link and not be fetched.
    """
    return int.from_bytes(hashlib.blake2b(url.encode("utf-8", "surrogatepass"), digest_size=URL_KEY_BYTES).digest())


@dataclass(frozen=True, slots=True)
class Task:
    """One request for an admitted page: the page itself, or a redirect target it waits to follow."""

    page: str  # the admitted URL the result is recorded under
    fetch: str  # the URL to request now
    chain: tuple[str, ...] = ()  # URLs already requested for this page (redirect loops, the hop budget)


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

    def __init__(self, cfg: CrawlConfig, seeds: list[str], pacer: HostPacer | None = None, deny: Denylist | None = None):
        self.cfg = cfg
        self.deny = deny or Denylist()  # the run's denylist: a denied page is never fetched (crawl/denylisted)
        self.seeds = seeds
        self.pacer = PacerView(pacer)
        self.admitted: dict[int, int] = {}  # url_key(normalised URL) -> depth, DONE once finished for good
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
            key = url_key(norm)
            if key in self.admitted:
                return "duplicate"
            if not url_admitted(self.deny, norm):
                return "denylisted"
            if depth > self.cfg.max_depth:
                return "too_deep"
            if depth > 0 and not in_scope(norm, self.seeds, self.cfg.scope, self.cfg.hosts):
                return "out_of_scope"
        except Exception:  # a link no URL function can read (hostile netloc, port, IDNA...)
            return "bad_link"
        if len(self.admitted) >= self.cfg.max_pages:
            return "page_budget"
        self.admitted[key] = depth
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
        if (key := url_key(entry["url"])) in self.admitted:  # the sitemap reading is no page
            self.admitted[key] = DONE
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
            while queue and self.admitted[url_key(queue[0].page)] == DONE:
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
            return task, self.admitted[url_key(task.page)], host
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

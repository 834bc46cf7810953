"""A job's rows downloaded on a thread pool, host by host: a host waiting for its turn never holds a thread.

Rows queue per image host (``fetch.host_key``, as the fetcher paces them). A row is handed to a thread only
when its host's delay has passed (robots.txt Crawl-delay or Retry-After included) and the host has a free
slot, so one slow host cannot put every thread to sleep in the fetcher's pacer while other hosts wait.
Transient drops are queued again ``transient_retry_delay`` seconds later, up to ``transient_retries`` times.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from webclip.fetch import HostPacer, host_key, is_transient
from webclip.shards.config import ShardsConfig
from webclip.shards.download import Downloaded


def host_of(url: str) -> str:
    """The pacing key of ``url``; a URL no parser reads gets a queue of its own (its fetch names the fault)."""
    try:
        return host_key(url)
    except ValueError:
        return url


class HostQueues:
    """Row numbers queued per host; ``take`` hands out one whose host is ready and has a free slot."""

    def __init__(self, pacer: HostPacer | None, per_host: int):
        self.pacer = pacer
        self.per_host = per_host
        self.queues: dict[str, deque[int]] = defaultdict(deque)
        self.in_flight: Counter[str] = Counter()
        self.not_before: dict[str, float] = {}
        self.heap: list[tuple[float, int, str]] = []  # (time, tie, host): hosts with rows and a free slot
        self.scheduled: set[str] = set()
        self.later: list[tuple[float, int, int, str]] = []  # (due, tie, row, host): transient drops
        self.tick = itertools.count()

    def add(self, row: int, host: str) -> None:
        """Queue ``row`` at the back of its host's queue."""
        self.queues[host].append(row)
        self.schedule(host)

    def retry(self, row: int, host: str, at: float) -> None:
        """Queue ``row`` again at monotonic time ``at``."""
        heapq.heappush(self.later, (at, next(self.tick), row, host))

    def schedule(self, host: str, at: float | None = None) -> None:
        """Put ``host`` on the heap if it has rows and a free slot and is not there already."""
        if host in self.scheduled or not self.queues[host] or self.in_flight[host] >= self.per_host:
            return
        self.scheduled.add(host)
        heapq.heappush(self.heap, (self.not_before.get(host, 0.0) if at is None else at, next(self.tick), host))

    def ready_at(self, host: str) -> float:
        """When the fetcher's pacer lets the next request to ``host`` start (a shared host: its next own slot)."""
        if self.pacer is None:
            return 0.0
        ready_time = getattr(self.pacer, "ready_time", None)  # shards.hostshare.SharedHostPacer
        return ready_time(host) if ready_time is not None else self.pacer.next_start.get(host, 0.0)

    def take(self, now: float) -> tuple[int, str] | None:
        """A (row, host) ready now, reserving the host's delay; None if no host is ready."""
        while self.later and self.later[0][0] <= now:
            _, _, row, host = heapq.heappop(self.later)
            self.add(row, host)
        while self.heap and self.heap[0][0] <= now:
            host = heapq.heappop(self.heap)[2]
            self.scheduled.discard(host)
            if not self.queues[host] or self.in_flight[host] >= self.per_host:
                continue
            ready = max(self.not_before.get(host, 0.0), self.ready_at(host))
            if ready > now:
                self.schedule(host, ready)
                continue
            self.in_flight[host] += 1
            delay = self.pacer.delays.get(host, self.pacer.delay) if self.pacer is not None else 0.0
            self.not_before[host] = now + delay
            row = self.queues[host].popleft()
            self.schedule(host)
            return row, host
        return None

    def release(self, host: str) -> None:
        """A row handed out by ``take`` came back: free its host's slot."""
        self.in_flight[host] -= 1
        self.schedule(host)

    def wake_at(self) -> float | None:
        """The earliest time a row may become ready; None when nothing waits."""
        times = [q[0][0] for q in (self.heap, self.later) if q]
        return min(times) if times else None


def download_rows(rows: list[dict[str, Any]], fetch_one: Callable[[dict[str, Any]], Downloaded], cfg: ShardsConfig,
                  pacer: HostPacer | None = None, note: Callable[[int], None] | None = None) -> list[Downloaded]:
    """Every row once, host by host as hosts become ready, and transient drops again later (see the module doc).

    ``note(n)`` hears how many rows have had their first try.
    """
    results: list[Downloaded | None] = [None] * len(rows)
    queues, tries, first = HostQueues(pacer, cfg.per_host_concurrency), Counter[int](), 0
    for i, r in enumerate(rows):
        queues.add(i, host_of(r["image_url"]))
    with ThreadPoolExecutor(cfg.threads, thread_name_prefix="download") as pool:
        running: dict[Future, tuple[int, str]] = {}
        while True:
            while len(running) < cfg.threads and (got := queues.take(time.monotonic())) is not None:
                running[pool.submit(fetch_one, rows[got[0]])] = got
            wake = queues.wake_at()
            if not running and wake is None:
                break
            timeout = None if len(running) >= cfg.threads or wake is None else max(0.0, wake - time.monotonic())
            if not running:
                time.sleep(timeout or 0.0)
                continue
            finished, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
            for fut in finished:
                i, host = running.pop(fut)
                queues.release(host)
                is_first = results[i] is None
                results[i] = result = fut.result()
                if is_transient(result.reason) and tries[i] < cfg.transient_retries:
                    tries[i] += 1
                    queues.retry(i, host, time.monotonic() + cfg.transient_retry_delay)
                first += is_first
                if note and is_first and (first % 50 == 0 or first == len(rows)):
                    note(first)
    return results  # type: ignore[return-value]

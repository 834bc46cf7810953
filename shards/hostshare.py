"""One host's rate shared run-wide by the jobs it was cut over: time slots on the wall clock.

A host with more pairs than fit in a job's room is cut over ``k`` jobs (``shards.jobs``), which may run at
once on different workers, each with its own pacer. Wall-clock time is cut into slots as long as the
host's delay ``d`` (``per_host_delay``, or its robots.txt Crawl-delay); slot ``s`` belongs to piece
``s mod k``. A job starts a request to the host only in the first half of one of its own slots, one per slot
(robots.txt included). So the whole run starts at most one request to the host per slot: in any window of
``W`` seconds at most ``ceil(W / d) + 1``, the bound one unsplit job keeps, with no burst of ``k`` when the
jobs start together, provided the workers' clocks agree to within ``d / 2``. A job's requests to the host
in flight are at most ``max(1, per_host_concurrency // k)``. Jobs that do not all run at once only leave
slots unused: the host never gets more than its rate, and a host of ``N`` pairs takes about ``N * d``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from webclip.fetch import HostPacer
from webclip.shards.jobs import keys_of
from webclip.shards.pool import host_of

SLOT_USE = 0.5  # the part of its slot in which a job may start a request: the rest is margin for clocks and threads


class SharedHostPacer(HostPacer):
    """A ``HostPacer`` whose shared hosts (``share``) start requests only in this job's own wall-clock slots."""

    def __init__(self, delay: float, concurrency: int):
        super().__init__(delay, concurrency)
        self.shares: dict[str, tuple[int, Counter[int]]] = {}  # host -> (k, pieces held here)
        self.slot_end: dict[str, float] = {}  # host -> wall time the last slot used here ends
        self.offset = time.time() - time.monotonic()  # slots live on the wall clock, which every worker shares

    def share(self, host: str, k: int, piece: int) -> None:
        """``host`` is in ``k`` jobs; this pacer serves piece ``piece`` of them (several when jobs share a worker)."""
        with self.lock:
            held = self.shares.setdefault(host, (k, Counter()))[1]
            held[piece] += 1
            self.sems.setdefault(host, threading.BoundedSemaphore(max(1, self.concurrency // k)))
            self.next_start[host] = max(self.next_start[host], self._allowed(host, time.monotonic()))

    def unshare(self, host: str, piece: int) -> None:
        """A job that called ``share`` is done with ``host``."""
        with self.lock:
            held = self.shares[host][1]
            held[piece] -= 1
            if held[piece] <= 0:
                del held[piece]
            if not held:
                del self.shares[host]

    def _allowed(self, host: str, mono: float) -> float:
        """When this pacer may start a request to ``host`` (monotonic; not after ``mono`` if it may now); lock held."""
        if host not in self.shares or self.delays.get(host, self.delay) <= 0:
            return self.next_start[host]
        k, held = self.shares[host]
        d = self.delays.get(host, self.delay)
        wall = max(mono, self.next_start[host]) + self.offset
        s = math.floor(wall / d)
        if wall - s * d > SLOT_USE * d:
            s += 1
        if host in self.slot_end:  # one request per slot: the next one after the slot used last
            s = max(s, math.ceil(self.slot_end[host] / d - 1e-9))
        while s % k not in held:
            s += 1
        return max(self.next_start[host], s * d - self.offset)  # at or before ``mono`` when this slot is open now

    def ready_time(self, host: str) -> float:
        """When the next request to ``host`` may start (monotonic), for queues that hand rows out."""
        with self.lock:
            return self._allowed(host, time.monotonic())

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        """As ``HostPacer.slot``; a shared host waits for this job's next own slot, and uses it up."""
        if host not in self.shares:
            with super().slot(host):
                yield
            return
        with self.lock:
            sem = self.sems[host]
        with sem:
            while True:
                with self.lock:
                    now = time.monotonic()
                    start = self._allowed(host, now)
                    if start <= now:
                        d = self.delays.get(host, self.delay)
                        self.slot_end[host] = (math.floor((now + self.offset) / d) + 1) * d if d > 0 else 0.0
                        self.next_start[host] = self._allowed(host, now)
                        break
                time.sleep(min(start - now, 1.0))
            yield


def job_pieces(shared: dict[str, list[str]], job: str, urls: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Pacing host -> (k, piece) for the job's hosts that the plan cut over k jobs."""
    pieces = {h: (len(jobs), jobs.index(job)) for h, jobs in shared.items() if job in jobs}
    return {host_of(u): pieces[h] for u in urls if (h := keys_of(u)[1]) in pieces} if pieces else {}


@contextmanager
def job_shares(pacer: Any, shared: dict[str, list[str]], job: str, urls: Iterable[str]) -> Iterator[None]:
    """While a job runs, its pacer (a ``SharedHostPacer``; any other is left alone) shares the split hosts."""
    hosts = job_pieces(shared, job, urls) if hasattr(pacer, "share") else {}
    for host, (k, piece) in hosts.items():
        pacer.share(host, k, piece)
    try:
        yield
    finally:
        for host, (_, piece) in hosts.items():
            pacer.unshare(host, piece)

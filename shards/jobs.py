"""Split curated pairs into download jobs, streamed: launcher memory bounded whatever the number of rows.

Rows are paced per host (``fetch.host_key``), so the plan's unit is the host, kept whole unless it is big;
small registered domains stay whole too (one robots.txt per host, one host's rows together). Passes over
the curated parts (the first three read only ``image_url``):

1. Misra-Gries summaries with ``ceil(n / T)`` counters of registered domains and of hosts hold every one
   with more than ``T = samples_per_job // 8`` rows, whatever the row order;
2. those candidates are counted exactly: *large* domains and *big* hosts have more than ``T`` rows;
3. every other row goes to a fine hash-bucket histogram (64 buckets per job): by its registered domain's
   hash, or by its host's hash when the domain is large (a domain of many small hosts spreads);
4. rows are routed to their job through a bounded external partition on local disk, and every job is
   written sorted by uid.

There are ``n_jobs = ceil(n / samples_per_job)`` jobs of ``n / n_jobs`` rows each. Big hosts, largest first,
are laid end to end over the jobs in index order and cut at every job boundary: a host a cut goes through
is split between the jobs on both sides by uid hash (an end piece under ``SLIVER`` of a job stays with its
neighbour), so a registered domain with more than ``samples_per_job`` rows always spreads over several
jobs, and a host over at least ``rows // samples_per_job``. The jobs of a cut host share its rate run-wide
(``shards.hostshare``: each may start a request to it only in its own wall-clock slots). The histogram's
buckets, in hash order, fill the rest of the jobs, each bucket going where its middle falls. Everything is
a function of the rows as a set (counts, hashes): the same rows give the same jobs and the same bytes,
whatever their order or parts. Memory: O(jobs) integers, one Arrow batch per spill partition and
``GROUP_ROWS`` rows.
"""

from __future__ import annotations

import itertools
import re
import shutil
import tempfile
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from webclip import storage
from webclip.dedupe.urls import registered_domain
from webclip.hashing import bucket_of, unit_draw
from webclip.parquet import count_rows, iter_rows, row_sort_key, table_bytes
from webclip.records import CURATED_SCHEMA, table_from_rows
from webclip.shards.pool import host_of

BUCKETS_PER_JOB = 64  # fine hash buckets per job: small domains fill jobs to within one bucket
LARGE_SHARE = 8  # a host of more than samples_per_job // 8 rows is laid out by name (largest first, cut at job ends)
SLIVER = 0.1  # a big host's end piece under this share of a job goes whole to its neighbouring piece
GROUP_ROWS = 40_000  # rows loaded at once to sort jobs (at least one job)
SPILL_FANOUT = 16  # partitions one spill pass writes
CACHED_HOSTS = 16_384  # origins whose (domain, host) and hashes are kept: rows repeat hosts (a fixed few MB)
SHARED_FILE = "_shared.json"  # {host: [job ids]} of the hosts cut over several jobs
_JOB = "_job"


def job_id(i: int) -> str:
    """Name of job ``i``."""
    return f"{i:05d}"


_ORIGIN = re.compile(r"[^:/?#]*://[^/?#\\]*")


@lru_cache(maxsize=CACHED_HOSTS)
def _keys_of_origin(origin: str) -> tuple[str, str]:
    try:
        domain = registered_domain(urlsplit(origin).hostname or "")
    except ValueError:
        domain = origin
    return domain, host_of(origin)


def keys_of(url: str) -> tuple[str, str]:
    """(registered domain, pacing host) of an image URL, cached per scheme and authority: rows repeat hosts."""
    m = _ORIGIN.match(url)
    return _keys_of_origin(m.group(0)) if m else (url, host_of(url))


@lru_cache(maxsize=CACHED_HOSTS)
def _hash64(key: str) -> int:
    return bucket_of(key, 2**64, salt="job:")


@dataclass
class JobPlan:
    """Which job each row goes to: big hosts by name (cut into pieces), the rest by hash bucket range."""

    n_jobs: int
    buckets: int
    large_domains: set[str] = field(default_factory=set)  # their small hosts fill by host hash, not domain hash
    large: dict[str, list[int]] = field(default_factory=dict)  # big host -> its job(s); several when cut
    cuts: dict[str, list[float]] = field(default_factory=dict)  # cut host -> where its pieces end in [0, 1)
    ends: list[int] = field(default_factory=list)  # the rest: first bucket of every range but the first
    fill: list[int] = field(default_factory=list)  # the job of each range

    def job_of(self, url: str, uid: str) -> int:
        """The job of the row with ``url`` and ``uid``."""
        domain, host = keys_of(url)
        jobs = self.large.get(host)
        if jobs is not None:
            return jobs[0] if len(jobs) == 1 else jobs[bisect_right(self.cuts[host], unit_draw(0, f"piece:{uid}"))]
        return self.fill[bisect_right(self.ends, self.bucket(domain, host))]

    def bucket(self, domain: str, host: str) -> int:
        """The fine hash bucket of a small host: by its domain's hash (whole), or its own in a large domain."""
        return _hash64(host if domain in self.large_domains else domain) * self.buckets >> 64

    def shared(self) -> dict[str, list[str]]:
        """Hosts cut over several jobs -> their job ids (in piece order)."""
        return {h: [job_id(j) for j in js] for h, js in sorted(self.large.items()) if len(js) > 1}


def _count_heavy(counts: dict[str, int], key: str, capacity: int) -> None:
    """One Misra-Gries step: count ``key``, or when ``capacity`` keys are held, take one from each."""
    if key in counts:
        counts[key] += 1
    elif len(counts) < capacity:
        counts[key] = 1
    else:  # amortised O(1): each decrement pays for one earlier increment
        for k in list(counts):
            counts[k] -= 1
            if not counts[k]:
                del counts[k]


def misra_gries(items: Iterable[str], capacity: int) -> dict[str, int]:
    """Candidates that include every item seen more than ``n / (capacity + 1)`` times (counts are lower bounds)."""
    counts: dict[str, int] = {}
    for x in items:
        _count_heavy(counts, x, capacity)
    return counts


def _url_keys(paths: list[Path] | list[str]) -> Iterator[tuple[str, str]]:
    for r in iter_rows(paths, columns=["image_url"]):
        yield keys_of(r["image_url"])


def _heavy(paths: list[Path] | list[str], capacity: int, threshold: int) -> tuple[dict[str, int], dict[str, int]]:
    """Exact row counts of the domains and of the hosts with more than ``threshold`` rows (two streamed passes)."""
    domains: dict[str, int] = {}
    hosts: dict[str, int] = {}
    for d, h in _url_keys(paths):  # Misra-Gries on both: every key above n / (capacity + 1) rows survives
        _count_heavy(domains, d, capacity)
        _count_heavy(hosts, h, capacity)
    domains, hosts = dict.fromkeys(domains, 0), dict.fromkeys(hosts, 0)
    for d, h in _url_keys(paths):
        if d in domains:
            domains[d] += 1
        if h in hosts:
            hosts[h] += 1
    return ({d: c for d, c in domains.items() if c > threshold}, {h: c for h, c in hosts.items() if c > threshold})


def plan_jobs(paths: list[Path] | list[str], samples_per_job: int) -> JobPlan:
    """Plan the jobs of the curated parts ``paths`` in three streamed passes over their URLs (see the module doc)."""
    n = count_rows(paths)
    n_jobs = max(1, -(-n // samples_per_job))
    plan = JobPlan(n_jobs, BUCKETS_PER_JOB * n_jobs)
    threshold = max(1, samples_per_job // LARGE_SHARE)
    domains, hosts = _heavy(paths, max(1, -(-n // threshold)), threshold)
    plan.large_domains = set(domains)
    hist = array("q", bytes(8 * plan.buckets))
    for d, h in _url_keys(paths):
        if h not in hosts:
            hist[plan.bucket(d, h)] += 1
    load = _place_large(plan, hosts, n)
    _fill_small(plan, hist, load, n / n_jobs)
    return plan


def _place_large(plan: JobPlan, large: dict[str, int], n: int) -> list[float]:
    """Big hosts, largest first, laid end to end over the jobs in index order and cut every ``n / n_jobs`` rows."""
    load = [0.0] * plan.n_jobs
    at = 0
    for d in sorted(large, key=lambda d: (-large[d], _hash64(d), d)):
        pieces = _cut(at, large[d], n, plan.n_jobs)
        plan.large[d] = [j for j, _ in pieces]
        if len(pieces) > 1:
            ends = list(itertools.accumulate(r for _, r in pieces))
            plan.cuts[d] = [x / ends[-1] for x in ends[:-1]]
        for j, r in pieces:
            load[j] += r / plan.n_jobs
        at += large[d]
    return load


def _cut(start: int, rows: int, n: int, n_jobs: int) -> list[tuple[int, int]]:
    """The jobs that rows ``start..start+rows`` fall in, with their rows times ``n_jobs`` (exact integers).

    Job ``j`` holds positions ``j * n / n_jobs`` up to the next job's; an end piece under ``SLIVER`` of a job
    joins its neighbour.
    """
    pieces: list[list[int]] = []
    a, end = start * n_jobs, (start + rows) * n_jobs  # positions scaled by n_jobs: job j starts at j * n
    while a < end:
        j = min(n_jobs - 1, a // n)
        b = end if j == n_jobs - 1 else min(end, (j + 1) * n)
        pieces.append([j, b - a])
        a = b
    while len(pieces) > 1 and pieces[0][1] < SLIVER * n:
        pieces[1][1] += pieces.pop(0)[1]
    while len(pieces) > 1 and pieces[-1][1] < SLIVER * n:
        pieces[-2][1] += pieces.pop()[1]
    return [(j, r) for j, r in pieces]


def _fill_small(plan: JobPlan, hist: array, load: list[float], target: float) -> None:
    """Bucket ranges, in hash order, onto the jobs under ``target`` in index order, each bucket where its middle falls.

    Each job's quota is its room scaled so the quotas add up to the small domains' rows: rows a sliver moved
    past a cut never leave the last job short.
    """
    room = [j for j in range(plan.n_jobs) if load[j] < target] or [min(range(plan.n_jobs), key=lambda j: (load[j], j))]
    free = sum(max(0.0, target - load[j]) for j in room)
    scale = sum(hist) / free if free else 1.0
    quota = [(target - load[j]) * scale for j in room]
    got = [0.0] * len(room)
    at = 0
    for b, count in enumerate(hist):
        if not count:
            continue
        while at < len(room) - 1 and got[at] + count / 2 > quota[at]:
            at += 1
        got[at] += count
        if plan.fill and plan.fill[-1] == room[at]:
            continue
        if plan.fill:
            plan.ends.append(b)  # range i is [ends[i-1], ends[i])
        plan.fill.append(room[at])
    plan.fill = plan.fill or [0]


def job_bytes(rows: pa.Table) -> bytes:
    """A job's input as ``write_rows`` writes it (sorted by uid, ties by the whole row), sorted by Arrow when uids are unique."""
    rows = rows.select(CURATED_SCHEMA.names).cast(CURATED_SCHEMA)
    if pc.count_distinct(rows.column("uid")).as_py() < rows.num_rows:
        return table_bytes(table_from_rows(sorted(rows.to_pylist(), key=lambda r: row_sort_key(r, ("uid",))),
                                           CURATED_SCHEMA))
    return table_bytes(rows.take(pc.sort_indices(rows, sort_keys=[("uid", "ascending")])).combine_chunks())


def _routed(paths: list[Path] | list[str], plan: JobPlan) -> Iterator[pa.RecordBatch]:
    """The curated rows as Arrow batches with their job in a ``_job`` column (no row becomes a dict here)."""
    for p in paths:
        with storage.open_read(p) as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=10_000):
                urls, uids = batch.column("image_url").to_pylist(), batch.column("uid").to_pylist()
                jobs = pa.array([plan.job_of(u, uid) for u, uid in zip(urls, uids, strict=True)], pa.int32())
                yield pa.RecordBatch.from_arrays([*batch.columns, jobs], names=[*batch.schema.names, _JOB])


def _spill(batches: Iterable[pa.RecordBatch], folder: Path, lo: int, hi: int) -> list[tuple[Path, int, int, int]]:
    """Stream batches of jobs ``lo..hi-1`` into ``SPILL_FANOUT`` job-range files; returns (file, rows, lo, hi)."""
    step = max(1, -(-(hi - lo) // SPILL_FANOUT))
    folder.mkdir(parents=True, exist_ok=True)
    writers: dict[int, Any] = {}
    rows: dict[int, int] = {}
    for batch in batches:
        part = pc.divide(pc.subtract(batch.column(_JOB), pa.scalar(lo, pa.int32())), pa.scalar(step, pa.int32()))
        for i in pc.unique(part).to_pylist():
            chunk = batch.filter(pc.equal(part, i))
            if i not in writers:
                sink = pa.output_stream(str(folder / f"{i:03d}.arrow"), buffer_size=1 << 20)
                writers[i] = (sink, pa.ipc.new_stream(sink, batch.schema))
            writers[i][1].write_batch(chunk)
            rows[i] = rows.get(i, 0) + chunk.num_rows
    for sink, writer in writers.values():
        writer.close()
        sink.close()
    return [(folder / f"{i:03d}.arrow", rows[i], lo + i * step, min(hi, lo + (i + 1) * step)) for i in sorted(writers)]


def _read_spill(path: Path) -> Iterator[pa.RecordBatch]:
    with pa.input_stream(str(path), buffer_size=1 << 20) as source:  # read, not mapped: mapped pages count as resident
        yield from pa.ipc.open_stream(source)


def _write_jobs(batches: Iterable[pa.RecordBatch], n_rows: int, lo: int, hi: int, scratch: Path,
                jobs_dir: str) -> list[int]:
    """Write the jobs ``lo..hi-1`` of ``batches``, partitioning further on disk while they are too many to hold."""
    if n_rows <= GROUP_ROWS or hi - lo == 1:
        held = list(batches)
        if not held:
            return []
        table = pa.Table.from_batches(held)
        jobs = sorted(pc.unique(table.column(_JOB)).to_pylist())
        for j in jobs:
            target = storage.join(jobs_dir, "_inputs", f"{job_id(j)}.parquet")
            if not storage.exists(target):
                storage.write_bytes(target, job_bytes(table.filter(pc.equal(table.column(_JOB), j))))
        return jobs
    written = []
    for spill, rows, a, b in _spill(batches, scratch / f"{lo}-{hi}", lo, hi):
        written += _write_jobs(_read_spill(spill), rows, a, b, scratch, jobs_dir)
        spill.unlink()
    return written


def write_job_inputs(curated_parts: list[Path] | list[str], jobs_dir: str, samples_per_job: int) -> list[str]:
    """Write ``_inputs/{job}.parquet`` (sorted by uid) for every job, local or remote; returns the job ids.

    Also ``_inputs/_shared.json``: the hosts cut over several jobs and their jobs, in piece order.
    """
    plan = plan_jobs(curated_parts, samples_per_job)
    scratch = Path(tempfile.mkdtemp(prefix="webclip-jobs-"))
    try:
        jobs = _write_jobs(_routed(curated_parts, plan), count_rows(curated_parts), 0, plan.n_jobs, scratch, jobs_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    storage.write_json(storage.join(jobs_dir, "_inputs", SHARED_FILE), plan.shared())
    return [job_id(j) for j in jobs]


def shared_hosts(jobs_dir: str) -> dict[str, list[str]]:
    """The hosts cut over several jobs and their jobs (empty for job folders written before hosts were cut)."""
    path = storage.join(jobs_dir, "_inputs", SHARED_FILE)
    return storage.read_json(path) if storage.exists(path) else {}

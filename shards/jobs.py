"""Split curated pairs into download jobs: deterministic ids, one registered domain per job."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from webclip import storage
from webclip.dedupe.urls import registered_domain
from webclip.hashing import bucket_of
from webclip.parquet import iter_rows, write_rows
from webclip.records import CURATED_SCHEMA


def job_id(i: int) -> str:
    """Name of job ``i``."""
    return f"{i:05d}"


def assign_jobs(rows: list[dict[str, Any]], samples_per_job: int) -> dict[str, list[dict[str, Any]]]:
    """Group rows into about ``ceil(n / samples_per_job)`` jobs, every registered domain whole in one job.

    Domains go largest first to the least loaded job (ties: lowest job, then the domain's hash), so jobs
    are balanced and the same input always gives the same jobs. One domain per job keeps each host's
    traffic in one worker, where its rate limit holds.
    """
    n_jobs = max(1, -(-len(rows) // samples_per_job))
    by_domain: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_domain[registered_domain(r["image_url"])].append(r)
    load = [0] * n_jobs
    jobs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for domain in sorted(by_domain, key=lambda d: (-len(by_domain[d]), bucket_of(d, 2**32, salt="job:"), d)):
        target = min(range(n_jobs), key=lambda j: (load[j], j))
        load[target] += len(by_domain[domain])
        jobs[job_id(target)] += by_domain[domain]
    return dict(sorted(jobs.items()))


def write_job_inputs(curated_parts: list[Path] | list[str], jobs_dir: str, samples_per_job: int) -> list[str]:
    """Write ``_inputs/{job}.parquet`` (sorted by uid) for every job, local or remote; returns the job ids."""
    rows = list(iter_rows(curated_parts))
    jobs = assign_jobs(rows, samples_per_job)
    for jid, members in jobs.items():
        path = storage.join(jobs_dir, "_inputs", f"{jid}.parquet")
        if not storage.exists(path):
            write_rows(path, members, CURATED_SCHEMA)
    return list(jobs)

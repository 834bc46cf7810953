"""Split curated pairs into download jobs: deterministic ids, one registered domain per job."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from webclip.dedupe.urls import registered_domain
from webclip.hashing import bucket_of
from webclip.parquet import iter_rows, write_rows
from webclip.records import CURATED_SCHEMA


def job_id(i: int) -> str:
    """Name of job ``i``."""
    return f"{i:05d}"


def assign_jobs(rows: list[dict[str, Any]], samples_per_job: int) -> dict[str, list[dict[str, Any]]]:
    """Group rows into ``ceil(n / samples_per_job)`` jobs by a hash of the image's registered domain."""
    n_jobs = max(1, -(-len(rows) // samples_per_job))
    jobs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        jobs[job_id(bucket_of(registered_domain(r["image_url"]), n_jobs, salt="job:"))].append(r)
    return dict(sorted(jobs.items()))


def write_job_inputs(curated_parts: list[Path], jobs_dir: Path, samples_per_job: int) -> list[str]:
    """Write ``_inputs/{job}.parquet`` (sorted by uid) for every job; returns the job ids."""
    rows = list(iter_rows(curated_parts))
    jobs = assign_jobs(rows, samples_per_job)
    inputs = jobs_dir / "_inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    for jid, members in jobs.items():
        path = inputs / f"{jid}.parquet"
        if not path.exists():
            write_rows(path, members, CURATED_SCHEMA)
    return list(jobs)

"""Launcher memory: peak RSS of the shards launcher's job split and of a part-writing worker at several sizes.

A synthetic curated table (written with pyarrow, no crawl: a Zipf spread of registered domains, one CDN
domain holding 5% of the pairs, parts sorted by uid as curate writes them) of each size goes to two child
processes, each measured by the kernel (``os.wait4``'s ``ru_maxrss``):

- ``launcher``: ``shards.jobs.write_job_inputs`` (plan, route, write every job's input);
- ``writer``: one Beam worker of ``WriteParts``: uid-range buckets as ``GroupByKey`` hands them over,
  written by ``WritePartFn`` (buckets sized from the row count: at most ``MAX_PART_ROWS`` rows, about;
  the first two are written, all are counted).

One JSON line; the anchor is the smallest size's peak: flat memory means every size within +-20% of it.

    python -m bench.launcher_memory                    # 0.25M, 1M and 4M rows (about 4 min on 2 cores)
    python -m bench.launcher_memory --rows 50000 200000  # a quick look
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

TOLERANCE = 0.2
SIZES = (250_000, 1_000_000, 4_000_000)
PART_ROWS = 250_000  # rows per synthetic curated part
SAMPLES_PER_JOB = 2000  # the shards default


def synthetic_curated(folder: Path, n: int, seed: int = 0, part_rows: int = PART_ROWS) -> list[Path]:
    """``n`` curated rows in uid-range parts sorted by uid, written with pyarrow; returns the part paths."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from webclip.records import CURATED_SCHEMA

    rng = np.random.default_rng(seed)
    n_domains = max(10, n // 25)
    domain = np.minimum(rng.zipf(1.3, n), n_domains) - 1
    domain[rng.random(n) < 0.05] = n_domains  # the big CDN domain: 5% of the pairs on 8 hosts
    host = rng.integers(0, 8, n)
    uids = np.array([hashlib.sha256(f"{seed}:{i}".encode()).hexdigest() for i in range(n)])
    order = np.argsort(uids, kind="stable")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for p, start in enumerate(range(0, n, part_rows)):
        idx = order[start:start + part_rows]
        urls = [f"https://img{host[i]}.{'cdn.net' if domain[i] == n_domains else f'site{domain[i]}.com'}/{i}.jpg"
                for i in idx]
        texts = [f"a photo of thing {i % 997} in place {i % 89}" for i in idx]
        cols = {"uid": uids[idx].tolist(), "image_url": urls, "alt": texts,
                "page_url": [f"https://site{domain[i]}.com/page/{i // 7}" for i in idx],
                "page_lang": ["en"] * len(idx), "width": [640] * len(idx), "height": [480] * len(idx),
                "srcset_url": [None] * len(idx), "source": ["img"] * len(idx), "opt_out": [False] * len(idx),
                "caption": texts, "lang": ["en"] * len(idx), "entry_ids": [[int(i % 500)] for i in idx],
                "keep_prob": [1.0] * len(idx)}
        path = folder / f"part-{p:05d}.parquet"
        pq.write_table(pa.table(cols, schema=CURATED_SCHEMA), path, row_group_size=50_000)
        paths.append(path)
    return paths


def run_launcher(curated: Path, jobs: Path) -> dict[str, Any]:
    """The child: split the curated parts into job inputs."""
    from webclip.parquet import parts
    from webclip.shards.jobs import shared_hosts, write_job_inputs

    ids = write_job_inputs(parts(curated), str(jobs), SAMPLES_PER_JOB)
    shared = shared_hosts(str(jobs))
    return {"jobs": len(ids), "hosts_cut": len(shared), "most_jobs_per_host": max(map(len, shared.values()), default=1),
            "vm_hwm_mb": vm_hwm_mb()}


def run_writer(curated: Path, out: Path) -> dict[str, Any]:
    """The child: write uid-range buckets as a Beam worker is handed them after GroupByKey (the first two:
    every bucket is as large, about; sizes of all of them from the uid column)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from webclip.beamio import MAX_PART_ROWS, WritePartFn, parts_for, range_bucket
    from webclip.parquet import count_rows, iter_rows, parts

    paths = parts(curated)
    n_parts = parts_for(count_rows(paths), 4, MAX_PART_ROWS)
    sizes: Counter[int] = Counter()
    for p in paths:  # one batch of uids at a time: the bench's own bookkeeping stays out of the peak
        for batch in pq.ParquetFile(p).iter_batches(batch_size=50_000, columns=["uid"]):
            sizes.update(range_bucket(u, n_parts) for u in pc.utf8_slice_codeunits(batch.column(0), 0, 8).to_pylist())
    largest = max(sizes.values())
    fn = WritePartFn(str(out), "curated", ("uid",))
    bucket: list[dict[str, Any]] = []
    written = []
    for row in iter_rows(paths):  # parts sorted by uid: buckets come one after another
        if bucket and range_bucket(row["uid"], n_parts) != range_bucket(bucket[0]["uid"], n_parts):
            written += list(fn.process((range_bucket(bucket[0]["uid"], n_parts), bucket)))
            bucket = []
            if len(written) == 2:
                break
        bucket.append(row)
    return {"parts": n_parts, "largest_part_rows": largest, "written_rows": written, "vm_hwm_mb": vm_hwm_mb()}


def vm_hwm_mb() -> float:
    """This process's peak resident memory (VmHWM, MiB): counted from its exec, unlike ``ru_maxrss``."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def child(kind: str, *args: str) -> dict[str, Any]:
    """Run one child; its result, with its peak RSS (MiB, its own VmHWM) and seconds."""
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "bench.launcher_memory", "--child", kind, *args],
                         stdout=subprocess.PIPE, check=True).stdout
    result = json.loads(out)
    peak = result.pop("vm_hwm_mb")
    return {**result, "peak_mb": peak, "seconds": round(time.monotonic() - started, 1)}


def measure(n: int, work: Path) -> dict[str, Any]:
    """Both children on a synthetic table of ``n`` rows."""
    curated = work / f"curated-{n}"
    started = time.monotonic()
    synthetic_curated(curated, n)
    made = round(time.monotonic() - started, 1)
    launcher = child("launcher", str(curated), str(work / f"jobs-{n}"))
    writer = child("writer", str(curated), str(work / f"parts-{n}"))
    for d in (curated, work / f"jobs-{n}", work / f"parts-{n}"):
        shutil.rmtree(d, ignore_errors=True)
    return {"rows": n, "synthetic_seconds": made, "launcher": launcher, "writer": writer}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure each size, print one JSON line: peaks per size and whether they stay within TOLERANCE."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--child", nargs=3, metavar=("KIND", "IN", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, src, dst = args.child
        result = {"launcher": run_launcher, "writer": run_writer}[kind](Path(src), Path(dst))
        print(json.dumps(result))
        return result
    with tempfile.TemporaryDirectory(prefix="webclip-bench-") as tmp:
        sizes = []
        for n in args.rows:
            sizes.append(measure(n, Path(tmp)))
            print(json.dumps(sizes[-1]), file=sys.stderr)  # each size as it is done
    anchor = {k: sizes[0][k]["peak_mb"] for k in ("launcher", "writer")}
    flat = {k: all(abs(s[k]["peak_mb"] - anchor[k]) <= TOLERANCE * anchor[k] for s in sizes) for k in anchor}
    result = {"bench": "launcher_memory", "sizes": sizes, "anchor_peak_mb": anchor, "tolerance": TOLERANCE,
              "flat": flat}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])

"""Data loader samples/s decoding the demo's shards with 0, 1 and 2 workers (beside the trainer's rate)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from webclip.model.data import ShardLoader, read_manifest
from webclip.runfolder import shards_final

RUN = Path(__file__).resolve().parents[1] / "runs" / "demo"


def main(run: Path = RUN, batches: int = 40, batch_size: int = 128) -> list[dict]:
    """Time ``batches`` batches per worker count; print one JSON line each."""
    final = Path(shards_final(run))
    if not (final / "manifest.json").exists():
        out = {"bench": "loader", "skipped": f"no shards in {final}: run `make demo` first"}
        print(json.dumps(out))
        return [out]
    tars = read_manifest(final)
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}
    rows = []
    for workers in (0, 1, 2):
        it = ShardLoader(tars, 32, batch_size, seed=0, buffer=1000, workers=workers).batches()
        next(it)
        started = time.perf_counter()
        n = sum(len(next(it).keys) for _ in range(batches))
        row = {"bench": "loader", "workers": workers, "image_size": 32, "samples_s": round(n / (time.perf_counter() - started), 1),
               "demo_trainer_samples_s": summary.get("train_samples_per_s")}
        print(json.dumps(row), flush=True)  # before forked loader workers inherit an unflushed buffer
        rows.append(row)
    return rows


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else RUN)

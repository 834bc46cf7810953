"""Whole curation pipeline: candidates/s on DirectRunner (2 worker processes) against a 500k-entry list,
with the peak memory of the largest process; langdetect's rate beside it on a slice."""

from __future__ import annotations

import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.match import ALTS, query_list
from webclip.hashing import candidate_uid
from webclip.layout import table_path
from webclip.parquet import part_name, write_rows
from webclip.records import CANDIDATE_SCHEMA
from webclip.runfolder import StageDir, atomic_write_json

WORDS = ("red", "small", "old", "new", "blue", "happy", "wooden", "green", "vintage", "modern", "big", "bright")


def make_candidates(run: Path, n: int, seed: int = 0, per_part: int = 100_000) -> None:
    """``n`` candidates built from the real alts (varied with extra words), URLs over 5,000 hosts."""
    alts = [r["alt"] for r in map(json.loads, ALTS.read_text().splitlines()) if r["alt"] and r["alt"].strip()]
    rng = random.Random(seed)
    folder = Path(table_path(run, "candidates"))
    for part in range(-(-n // per_part)):
        rows = []
        for i in range(part * per_part, min(n, (part + 1) * per_part)):
            alt = f"{rng.choice(alts)} {rng.choice(WORDS)} {rng.choice(WORDS)}"
            url = f"http://host{rng.randrange(5000)}.example.com/img/{i}.jpg"
            rows.append({"uid": candidate_uid(url, alt), "image_url": url, "alt": alt, "page_url": f"http://host/{i}",
                         "page_lang": "en", "width": None, "height": None, "srcset_url": None, "source": "crawl",
                         "opt_out": False})
        write_rows(folder / part_name(part), rows, CANDIDATE_SCHEMA)
    StageDir(run, "candidates").finish({"unit": "image candidates", "in": n, "kept": n, "dropped": {}})


def run_curate(run: Path, cfg: dict) -> tuple[float, dict]:
    """Seconds and stats of one ``webclip curate`` run."""
    (run / "cfg.json").write_text(json.dumps({"curate": cfg}))
    started = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "webclip.cli", "curate", "--run", str(run), "--config",
                        str(run / "cfg.json"), "--force"], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    return seconds, json.loads((run / "curated" / "stats.json").read_text())


def main(n: int = 1_000_000, detector: str = "fasttext", slice_n: int = 5_000) -> dict:
    """Measure and print one JSON line."""
    tmp = Path(tempfile.mkdtemp(prefix="webclip-bench-curate-"))
    try:
        atomic_write_json(tmp / "queries.json", query_list())
        make_candidates(tmp / "big", n)
        cfg = {"queries": str(tmp / "queries.json"), "languages": ["en"], "lang_detector": detector,
               "num_parts": 8, "progress": False}
        seconds, stats = run_curate(tmp / "big", cfg)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        make_candidates(tmp / "small", slice_n, seed=1)
        small_s, _ = run_curate(tmp / "small", {**cfg, "lang_detector": "langdetect"})
        fast_s, _ = run_curate(tmp / "small", {**cfg, "lang_detector": detector})
        out = {"bench": "curate_scale", "candidates": n, "lang_detector": detector, "seconds": round(seconds, 1),
               "candidates_s": round(n / seconds), "curated": stats["kept"], "matched": stats["matched"],
               "peak_rss_mb_largest_process": round(peak_mb), "slice": slice_n,
               "slice_seconds_langdetect": round(small_s, 1), f"slice_seconds_{detector}": round(fast_s, 1)}
        print(json.dumps(out))
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)

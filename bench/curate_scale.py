"""Whole curation pipeline against a 500k-entry list with the default config: candidates per CPU-second
(per core, whatever else shares the machine) and per wall second on DirectRunner, the peak memory of
the largest process, a per-step profile, and langdetect's rate beside it on a slice.

``python -m bench.curate_scale [N] [WORKERS]`` (default 1,000,000 candidates, 2 workers)."""

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


def children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_curate(run: Path, cfg: dict) -> tuple[float, dict, float]:
    """Wall seconds, stats and CPU seconds (all processes) of one ``webclip curate`` run."""
    (run / "cfg.json").write_text(json.dumps({"curate": cfg}))
    started, cpu = time.perf_counter(), children_cpu()
    r = subprocess.run([sys.executable, "-m", "webclip.cli", "curate", "--run", str(run), "--config",
                        str(run / "cfg.json"), "--force"], capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - started, children_cpu() - cpu
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    return seconds, json.loads((run / "curated" / "stats.json").read_text()), cpu


def profile(queries: Path, n: int = 20_000) -> dict[str, float]:
    """Microseconds per candidate of each curation step's pure function, in this process (one core)."""
    from webclip.dedupe.urls import image_url_key
    from webclip.pipelines.config import CurateConfig
    from webclip.pipelines.filters import filter_reason
    from webclip.pipelines.langid import best_language, get_detector
    from webclip.pipelines.match import match_ids, shared_automaton
    from webclip.pipelines.normalise import normalise_caption

    alts = [r["alt"] for r in map(json.loads, ALTS.read_text().splitlines()) if r["alt"] and r["alt"].strip()]
    rng = random.Random(2)
    rows = [{"alt": f"{rng.choice(alts)} {rng.choice(WORDS)}", "image_url": f"http://h{i % 97}.example.com/{i}.jpg",
             "page_url": "http://h.example.com/", "opt_out": False, "width": None, "height": None} for i in range(n)]
    cfg = CurateConfig(queries=str(queries))
    detect = get_detector(cfg.lang_detector, 0)
    auto = shared_automaton(str(queries), cfg.match_mode, cfg.matcher, cfg.match_inflections, cfg.match_accents)
    for r in rows:
        r["caption"] = normalise_caption(r["alt"])
    for r in rows[:500]:  # warm-up: lingua loads its models on first use
        detect(r["caption"])
    steps = {"normalise": lambda r: normalise_caption(r["alt"]), "filter": lambda r: filter_reason(r, cfg),
             "dedupe_key": lambda r: image_url_key(r["image_url"]),
             "language": lambda r: best_language(detect(r["caption"])), "match": lambda r: match_ids(auto, r["caption"])}
    out = {}
    for name, step in steps.items():
        started = time.process_time()
        for r in rows:
            step(r)
        out[name] = round((time.process_time() - started) / n * 1e6, 1)
    return out


def cache_hit_share(run: Path, workers: int) -> float:
    """Share of language detections the per-bundle cache would answer on these candidates (the bench's repeats).

    An estimate: each worker is taken to see a contiguous share of the parts as one bundle, with the cache's bound.
    """
    import pyarrow.parquet as pq

    from webclip.pipelines.curate import LanguageMatchFn
    from webclip.pipelines.normalise import normalise_caption

    alts = pq.read_table(table_path(run, "candidates"), columns=["alt"]).column("alt").to_pylist()
    hits, share = 0, -(-len(alts) // workers)
    for start in range(0, len(alts), share):
        seen: set[str] = set()
        for alt in alts[start:start + share]:
            caption = normalise_caption(alt)
            if caption in seen:
                hits += 1
                continue
            if len(seen) >= LanguageMatchFn.CACHE_TEXTS:
                seen.clear()
            seen.add(caption)
    return round(hits / len(alts), 4)


def main(n: int = 1_000_000, workers: int = 2, slice_n: int = 5_000) -> dict:
    """Measure and print one JSON line."""
    from webclip.pipelines.langid import DEFAULT_DETECTOR

    tmp = Path(tempfile.mkdtemp(prefix="webclip-bench-curate-"))
    try:
        atomic_write_json(tmp / "queries.json", query_list())
        make_candidates(tmp / "big", n)
        cfg = {"queries": str(tmp / "queries.json"), "languages": ["en"], "num_parts": 8, "progress": False,
               "direct_num_workers": workers}
        seconds, stats, cpu = run_curate(tmp / "big", cfg)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        make_candidates(tmp / "small", slice_n, seed=1)
        small_s, _, small_cpu = run_curate(tmp / "small", {**cfg, "lang_detector": "langdetect"})
        fast_s, _, fast_cpu = run_curate(tmp / "small", cfg)
        out = {"bench": "curate_scale", "candidates": n, "workers": workers, "lang_detector": DEFAULT_DETECTOR,
               "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1), "candidates_s": round(n / seconds),
               "candidates_per_cpu_s": round(n / cpu), "curated": stats["kept"], "matched": stats["matched"],
               "peak_rss_mb_largest_process": round(peak_mb), "slice": slice_n,
               "slice_cpu_s_langdetect": round(small_cpu, 1), "slice_cpu_s_default": round(fast_cpu, 1),
               "lang_cache_hit_share_est": cache_hit_share(tmp / "big", workers),
               "step_us_per_candidate": profile(tmp / "queries.json")}
        print(json.dumps(out))
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))

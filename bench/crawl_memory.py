"""Crawl memory: the crawl stage's resident memory at several crawl sizes over the hostile web on loopback.

Each size is one ``webclip crawl`` process; a thread samples its VmRSS and VmHWM (/proc/PID/status) and the
pages journaled so far. One JSON line: per size, the peak while crawling, the RSS at page checkpoints, and the
peak of the whole stage (crawl plus the final sort and write of the candidates); the anchor is the smallest
size's peak (flat memory: every size within +-20% of it).

    python -m bench.crawl_memory                           # 10k, 25k and 50k pages (about 8 min on 2 cores)
    python -m bench.crawl_memory --pages 3000 6000         # a quick look (about 1 min)
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.soak import FULL, stage_configs, start_web, stop_web, with_optional_knobs
from webclip.sampleweb.concepts import concept_names
from webclip.sampleweb.hostile import HostileWebConfig

SAMPLE_EVERY = 0.2  # seconds between samples
TOLERANCE = 0.2  # flat: every size's peak within this share of the smallest size's


def status_kb(pid: int, *names: str) -> list[int]:
    """Fields of /proc/PID/status in KiB (0 once the process is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return [0] * len(names)
    values = {ln.split(":")[0]: int(ln.split()[1]) for ln in lines if ln.startswith(names)}
    return [values.get(n, 0) for n in names]


class LineCounter:
    """Lines of a growing file, read incrementally (only the new bytes each time)."""

    def __init__(self, path: Path):
        self.path, self.offset, self.lines = path, 0, 0

    def __call__(self) -> int:
        """Complete lines so far."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return self.lines
        self.offset += len(chunk)
        self.lines += chunk.count(b"\n")
        return self.lines


@dataclass
class Sampler:
    """Samples (seconds, pages journaled, RSS MiB, HWM MiB) of one process on a thread until it exits."""

    pid: int
    journal: Path
    samples: list[tuple[float, int, float, float]] = field(default_factory=list)

    def run(self) -> None:
        """Sample until /proc says the process is gone."""
        started, count = time.monotonic(), LineCounter(self.journal)
        while True:
            rss, hwm = status_kb(self.pid, "VmRSS", "VmHWM")
            if not rss:
                return
            self.samples.append((time.monotonic() - started, count(), rss / 1024, hwm / 1024))
            time.sleep(SAMPLE_EVERY)


def web_config(pages: int) -> HostileWebConfig:
    """The hostile web scaled to about ``pages`` pages (the full soak's 64 hosts, fewer pages per host)."""
    per_host = max(1, round(FULL.pages_per_host * pages / 52_100))
    return HostileWebConfig(**{**asdict(FULL), "pages_per_host": per_host, "bomb_mib": 64})


def summary(samples: list[tuple[float, int, float, float]], checkpoints: list[int]) -> dict[str, Any]:
    """Peak RSS while crawling, RSS at each checkpoint reached, and the whole stage's peak (VmHWM)."""
    pages = max((s[1] for s in samples), default=0)
    crawling = [s for s in samples if s[1] < pages] or samples
    at = {str(c): round(next(s[2] for s in samples if s[1] >= c), 1) for c in checkpoints if c <= pages}
    step = max(1, len(samples) // 24)
    return {"pages_journaled": pages, "peak_crawl_mb": round(max(s[2] for s in crawling), 1),
            "rss_at_pages_mb": at, "peak_stage_mb": round(max(s[3] for s in samples), 1),
            "samples": len(samples), "series_s_pages_mb": [[round(t), n, round(m)] for t, n, m, _ in samples[::step]]}


def crawl_once(pages: int, out: Path, cli: list[str], overrides: dict[str, Any]) -> dict[str, Any]:
    """Serve a web of about ``pages`` pages, crawl it in one process and sample that process."""
    logs, run = out / "logs", out / "run"
    logs.mkdir(parents=True, exist_ok=True)
    web, info = start_web(web_config(pages), logs)
    try:
        queries = out / "queries.json"
        queries.write_text(json.dumps(concept_names()))
        config, _ = with_optional_knobs(stage_configs(info["seeds"], queries, max(50_000, 2 * info["pages"])))
        config["crawl"].update(overrides)
        (out / "config.json").write_text(json.dumps({"crawl": config["crawl"]}))
        started = time.monotonic()
        with open(logs / "crawl.stderr", "wb") as err:
            proc = subprocess.Popen([*cli, "crawl", "--run", str(run), "--config", str(out / "config.json")],
                                    stdout=subprocess.DEVNULL, stderr=err)
            sampler = Sampler(proc.pid, run / "candidates" / "_work" / "journal.jsonl")
            thread = threading.Thread(target=sampler.run, daemon=True)
            thread.start()
            rc = proc.wait()
            thread.join()
        seconds = time.monotonic() - started
    finally:
        stop_web(web)
    stats_path = run / "candidates" / "stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    checkpoints = [c for c in (1_000, 5_000, 10_000, 25_000, 50_000) if c <= pages]
    return {"pages_asked": pages, "rc": rc, "seconds": round(seconds, 1), "pages": stats.get("pages", {}).get("in"),
            "candidates": stats.get("kept"), **summary(sampler.samples, checkpoints)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Crawl each size, print one JSON line: peaks per size and whether they stay within TOLERANCE."""
    p = argparse.ArgumentParser(prog="python -m bench.crawl_memory", description=__doc__.splitlines()[0])
    p.add_argument("--pages", type=int, nargs="+", default=[10_000, 25_000, 50_000], help="crawl sizes")
    p.add_argument("--out", help="keep the runs here (default: a temporary folder, removed)")
    p.add_argument("--crawl", action="append", default=[], metavar="FIELD=JSON",
                   help="override a crawl config field, e.g. sort_rows_per_run=5000 or use_sitemaps=false")
    p.add_argument("--cli", default=f"{shlex.quote(sys.executable)} -m webclip.cli",
                   help="command that runs webclip (another checkout's launcher measures that code)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="crawl-memory-") as tmp:
        root = Path(args.out) if args.out else Path(tmp)
        overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.crawl)}
        sizes = [crawl_once(n, root / f"p{n}", shlex.split(args.cli), overrides) for n in args.pages]
    anchor = sizes[0]["peak_stage_mb"]
    spread = max(abs(s["peak_stage_mb"] / anchor - 1) for s in sizes) if anchor else None
    out = {"bench": "crawl_memory", "anchor_peak_stage_mb": anchor, "max_deviation": round(spread or 0, 3),
           "flat": spread is not None and spread <= TOLERANCE and all(s["rc"] == 0 for s in sizes), "sizes": sizes}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()

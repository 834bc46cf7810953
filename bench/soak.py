"""Soak: crawl, curate and download a generated hostile web on loopback end to end, each stage a real
``webclip`` process; one JSON line with crashes, every stage's accounting identity, the drop table,
pages/s, images/s and the stages' resident memory sampled every second.

    python -m bench.soak                      # the full soak: 64 hosts, >= 50,000 pages plus their images
    python -m bench.soak --hosts 16 --pages-per-host 150 --bomb-mib 64 --out runs/soak-small   # ~1,600 URLs, ~80 s
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from webclip.layout import table_path
from webclip.parquet import parts
from webclip.sampleweb.concepts import concept_names
from webclip.sampleweb.hostile import (
    KEEPABLE_IMAGES,
    NO_CANDIDATE_PAGES,
    NO_PAGES_HOSTS,
    NOT_IMAGES,
    HostileWebConfig,
    url_kind,
)

STAGES = ("crawl", "curate", "shards")
# page kinds whose images a careful crawler still finds (odd markup or encoding, scoped or lazy directives)
YIELDING_PAGES = ("good", "lazy", "charset_utf16", "invalid_utf8", "huge_srcset", "nested_picture", "markup_attrs",
                  "bad_links", "bad_base", "xrobots_googlebot", "meta_nofollow")
FULL = HostileWebConfig()  # 64 hosts, 52,100 pages, two images each
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
REPO_DIRS = ("webclip/", "crawl/", "shards/", "pipelines/", "dedupe/", "model/", "bench/")
# Knobs set only when the stage's config has the field (they keep a soak's waits short, not its checks).
OPTIONAL = {"max_crawl_delay": 2.0, "transient_retry_delay": 1.0, "robots_retry_interval": 2.0}


# ---------------------------------------------------------------- configs

def stage_configs(seeds: list[str], queries: Path, page_budget: int, beam_mode: str | None = None) -> dict[str, Any]:
    """The run's config file: live crawl of every host's index, curate with the web's concepts, download.

    ``beam_mode`` sets curate's and shards' DirectRunner mode (their default, multi_processing, when None).
    """
    beam = {"direct_running_mode": beam_mode} if beam_mode else {}
    loopback = ["127.0.0.0/8"]  # for this run only: the hostile web lives on many loopback addresses
    polite = {"allow_private": loopback, "timeout": 1.0, "retries": 1, "per_host_delay": 0.0,
              "per_host_concurrency": 4, "progress": False}
    return {
        "crawl": {**polite, "seeds": seeds, "scope": "host", "concurrency": 16, "max_pages": page_budget,
                  "max_depth": 10, "backoff": 0.05, "max_retry_wait": 2.0},
        "curate": {**beam, "queries": str(queries), "languages": ["en"], "num_parts": 2, "progress": False},
        "shards": {**polite, **beam, "threads": 16, "samples_per_job": 2000, "shard_size": 1000, "image_size": 64,
                   "decontaminate": [], "val_fraction": 0.02},
    }


def with_optional_knobs(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Add OPTIONAL knobs to the stages whose config dataclass has them; returns (config, what was set)."""
    from webclip.cli import STAGES as SPECS
    from webclip.cli import _load

    applied: dict[str, list[str]] = {}
    for stage in STAGES:
        fields = {f.name for f in dataclasses.fields(_load(SPECS[stage].config))}
        for name, value in OPTIONAL.items():
            if name in fields:
                config[stage][name] = value
                applied.setdefault(stage, []).append(f"{name}={value}")
    return config, applied


# ---------------------------------------------------------------- memory of a process tree

def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def tree_rss(pid: int) -> tuple[int, int]:
    """(resident bytes, processes) of ``pid`` and all its descendants, read from /proc."""
    kids, todo, total, n = _children(), [pid], 0, 0
    while todo:
        p = todo.pop()
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE_SIZE
            n += 1
        except (OSError, IndexError, ValueError):
            continue
        todo += kids.get(p, [])
    return total, n


def rss_summary(samples: list[tuple[float, int, int]]) -> dict[str, Any]:
    """Peak, the value at each quarter of the run and a short series (MB) of (seconds, RSS, processes)."""
    if not samples:
        return {}
    mb = [s[1] / 2**20 for s in samples]
    quarter = [round(mb[min(len(mb) - 1, int(q * len(mb)))], 1) for q in (0.25, 0.5, 0.75)] + [round(mb[-1], 1)]
    step = max(1, len(samples) // 30)
    return {"peak_mb": round(max(mb), 1), "quarters_mb": quarter, "max_procs": max(s[2] for s in samples),
            "series": [[round(t, 1), round(m / 2**20, 1)] for t, m, _ in samples[::step]]}


# ---------------------------------------------------------------- one stage as a process

def run_stage(stage: str, run: Path, config: Path, timeout: float, logs: Path) -> dict[str, Any]:
    """Run ``webclip STAGE`` in its own process group, sampling its tree's RSS every second.

    Past ``timeout`` the stage gets SIGABRT (Python's fault handler prints every thread's stack: where it
    hangs), then its whole group is killed.
    """
    err_path, out_path = logs / f"{stage}.stderr", logs / f"{stage}.stdout"
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    cmd = [sys.executable, "-m", "webclip.cli", stage, "--run", str(run), "--config", str(config)]
    started, wall, samples, timed_out = time.monotonic(), time.time(), [], False
    with open(err_path, "wb") as err, open(out_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, start_new_session=True)
        while proc.poll() is None:
            rss, procs = tree_rss(proc.pid)
            samples.append((time.monotonic() - started, rss, procs))
            if time.monotonic() - started > timeout:
                timed_out = True
                os.kill(proc.pid, signal.SIGABRT)
                time.sleep(3)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
            time.sleep(1.0)
    seconds = time.monotonic() - started
    return {"stage": stage, "rc": proc.returncode, "seconds": round(seconds, 1), "timed_out": timed_out,
            "wall": (wall, wall + seconds),
            "rss": rss_summary(samples), "stderr": err_path.read_text(errors="replace"),
            "stdout": out_path.read_text(errors="replace")}


TRACEBACK = re.compile(r"(?:^(.*)\n)?Traceback \(most recent call last\):\n((?:[ \t].*\n)+)(\S.*)", re.MULTILINE)
LOG_RECORD = re.compile(r"^(?:ERROR|WARNING|CRITICAL) \S+: ")  # cli.py's logging format: a handler logged it
FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def tracebacks(stderr: str) -> list[dict[str, Any]]:
    """Distinct tracebacks in a stage's stderr: the exception, the innermost repo frame, a count and whether a
    containment handler logged it (the stage went on) or it escaped."""
    found: Counter = Counter()
    for before, body, exc in TRACEBACK.findall(stderr):
        frames = FRAME.findall(body)
        ours = [f for f in frames if any(d in f[0] for d in REPO_DIRS) and "site-packages" not in f[0]]
        where = ours[-1] if ours else (frames[-1] if frames else ("?", "0", "?"))
        module = re.sub(r"^.*?/((?:webclip|crawl|shards|pipelines|dedupe|model|bench)/)", r"\1", where[0])
        found[(exc.strip()[:300], f"{module}:{where[1]} in {where[2]}", bool(LOG_RECORD.match(before)),
               before.strip()[:300])] += 1
    return [{"exception": e, "where": w, "contained": c, "logged_as": b if c else None, "count": n}
            for (e, w, c, b), n in found.most_common()]


def hang_stacks(stderr: str, limit: int = 12) -> list[str]:
    """Repo frames of the fault handler's dump (where a timed-out stage was)."""
    dump = stderr[stderr.rfind("Fatal Python error"):] if "Fatal Python error" in stderr else ""
    lines = [ln.strip() for ln in dump.splitlines() if "File" in ln and any(d in ln for d in REPO_DIRS)]
    return list(dict.fromkeys(lines))[:limit]


def crashes_of(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Non-zero exits, hangs and tracebacks of one stage run."""
    stage, err = result["stage"], result["stderr"]
    out = [{"stage": stage, "kind": "traceback", **t} for t in tracebacks(err)]
    if result["timed_out"]:
        out.append({"stage": stage, "kind": "hang", "after_s": result["seconds"], "stacks": hang_stacks(err)})
    elif result["rc"] != 0:
        last = [ln for ln in err.splitlines() if ln.strip()][-3:]
        out.append({"stage": stage, "kind": "exit", "rc": result["rc"], "last_lines": last})
    return out


def request_timeline(log: Path, wall: tuple[float, float], idle_gap: float = 2.0) -> dict[str, Any]:
    """Requests the web answered during a stage, and how long it heard nothing (gaps over ``idle_gap`` s)."""
    times = []
    if log.is_file():
        with open(log) as f:
            times = [t for t in (float(line.split("\t", 1)[0]) for line in f) if wall[0] <= t <= wall[1]]
    edges = [wall[0], *times, wall[1]]
    gaps = [b - a for a, b in zip(edges, edges[1:], strict=False)]
    return {"requests": len(times), "idle_s": round(sum(g for g in gaps if g > idle_gap), 1),
            "longest_gap_s": round(max(gaps), 1)}


# ---------------------------------------------------------------- what the stages wrote

def identities(stats: dict[str, Any], path: str = "") -> dict[str, dict[str, Any]]:
    """Every block of a stats.json holding in/kept/dropped, with whether in == kept + Σdropped."""
    out: dict[str, dict[str, Any]] = {}
    if {"in", "kept", "dropped"} <= stats.keys() and isinstance(stats["dropped"], dict):
        dropped = sum(stats["dropped"].values())
        out[path or "."] = {"in": stats["in"], "kept": stats["kept"], "dropped": dropped,
                            "ok": stats["in"] == stats["kept"] + dropped}
    for key, value in stats.items():
        if isinstance(value, dict):
            out |= identities(value, f"{path}.{key}" if path else key)
    return out


def drop_tables(stats: dict[str, Any], path: str = "") -> dict[str, dict[str, int]]:
    """Every ``dropped`` table of a stats.json, keyed by its block."""
    out: dict[str, dict[str, int]] = {}
    if isinstance(stats.get("dropped"), dict):
        out[path or "."] = dict(sorted(stats["dropped"].items(), key=lambda kv: -kv[1]))
    for key, value in stats.items():
        if isinstance(value, dict) and key != "dropped":
            out |= drop_tables(value, f"{path}.{key}" if path else key)
    return out


def _column_rows(paths: list[Path] | list[str], columns: list[str]) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for p in paths:
        rows += pq.read_table(p, columns=columns).to_pylist()
    return rows


def candidate_kinds(run: Path, hosts: dict[str, str]) -> dict[str, Any]:
    """Candidates by image kind, and candidates that must not exist (forbidden hosts, /private/, noindex pages)."""
    rows = _column_rows(parts(table_path(run, "candidates")), ["image_url", "page_url"])
    by_kind = Counter(url_kind(r["image_url"])[1] or url_kind(r["image_url"])[0] for r in rows)
    leaks: Counter = Counter()
    for r in rows:
        page_host = hosts.get(urlsplit(r["page_url"]).hostname or "", "")
        section, kind = url_kind(r["page_url"])
        if page_host in NO_PAGES_HOSTS:
            leaks[f"page_on_{page_host}_host"] += 1
        if section == "private":
            leaks["page_under_private"] += 1
        if kind in NO_CANDIDATE_PAGES:
            leaks[f"page_{kind}"] += 1
        leaks.update(f"img{name[:-1]}" for name in NOT_IMAGES if name in r["image_url"])
    by_page = Counter(url_kind(r["page_url"])[1] or url_kind(r["page_url"])[0] for r in rows)
    missing = sorted(k for k in YIELDING_PAGES if not by_page[k])
    return {"rows": len(rows), "by_image_kind": dict(by_kind.most_common()), "by_page_kind": dict(by_page.most_common()),
            "leaks": dict(leaks), "page_kinds_without_candidates": missing}


def sample_kinds(run: Path) -> dict[str, Any]:
    """Downloaded samples by image kind, and the kinds a correct downloader would have dropped."""
    rows = _column_rows(parts(table_path(run, "samples")), ["image_url"])
    by_kind = Counter(url_kind(r["image_url"])[1] or url_kind(r["image_url"])[0] for r in rows)
    leaks = {k: n for k, n in by_kind.items() if k not in KEEPABLE_IMAGES}
    return {"rows": len(rows), "by_image_kind": dict(by_kind.most_common()), "leaks": leaks}


# ---------------------------------------------------------------- the web as a process

def start_web(cfg: HostileWebConfig, logs: Path) -> tuple[subprocess.Popen, dict[str, Any]]:
    """Serve the hostile web from its own process; returns it and its ready line (port, seeds, hosts)."""
    flags = [x for k, v in dataclasses.asdict(cfg).items() for x in (f"--{k.replace('_', '-')}", str(v))]
    flags += ["--log", str(logs / "requests.tsv")]
    proc = subprocess.Popen([sys.executable, "-m", "webclip.sampleweb.hostile", *flags], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=open(logs / "web.stderr", "wb"), text=True)  # noqa: SIM115
    line = proc.stdout.readline() if proc.stdout else ""
    if not line:
        proc.wait(10)
        raise RuntimeError(f"the hostile web did not start: {(logs / 'web.stderr').read_text()[-2000:]}")
    return proc, json.loads(line)


def stop_web(proc: subprocess.Popen) -> dict[str, Any]:
    """Close the web's stdin (it prints its request counts and exits); kill it if it does not."""
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    lines = [ln for ln in (out or "").splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


# ---------------------------------------------------------------- the soak

def soak(cfg: HostileWebConfig, out: Path, stage_timeout: float = 3600.0, beam_mode: str | None = None) -> dict[str, Any]:
    """Serve the web, run crawl -> curate -> shards as processes over it, and report (see module doc)."""
    from webclip.cli import STAGES as SPECS

    logs, run = out / "logs", out / "run"
    logs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    web, info = start_web(cfg, logs)
    results: list[dict[str, Any]] = []
    try:
        queries = out / "queries.json"
        queries.write_text(json.dumps(concept_names()))
        budget = max(50_000, 2 * info["pages"])
        config, knobs = with_optional_knobs(stage_configs(info["seeds"], queries, budget, beam_mode))
        (out / "config.json").write_text(json.dumps(config, indent=1))
        for stage in STAGES:
            results.append(run_stage(stage, run, out / "config.json", stage_timeout, logs))
            if results[-1]["rc"] != 0:
                break
    finally:
        served = stop_web(web)
    stats = {r["stage"]: _stats(run / SPECS[r["stage"]].folder) for r in results}
    report = summarise(results, stats, info, served)
    for r in results:
        report["stages"][r["stage"]]["web"] = request_timeline(logs / "requests.tsv", r["wall"])
    report |= {"knobs": knobs, "seconds_total": round(time.monotonic() - started, 1), "out": str(out)}
    if (run / "candidates").is_dir():
        report["candidates"] = candidate_kinds(run, info["hosts"])
    report["samples"] = sample_kinds(run)
    return report


def _stats(folder: Path) -> dict[str, Any]:
    path = folder / "stats.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def summarise(results: list[dict[str, Any]], stats: dict[str, dict[str, Any]], info: dict[str, Any],
              served: dict[str, Any]) -> dict[str, Any]:
    """The one-line report: counts, rates, crashes, identities, drop tables and memory per stage."""
    seconds = {r["stage"]: r["seconds"] for r in results}
    pages = stats.get("crawl", {}).get("pages", {}).get("in", 0)
    images = stats.get("shards", {}).get("in", 0)
    crashes = [c for r in results for c in crashes_of(r)]
    ids = {s: identities(st) for s, st in stats.items()}
    return {
        "bench": "soak", "hosts": len(info["hosts"]), "pages_in_graph": info["pages"],
        "urls": pages + images, "pages": pages, "images": images,
        "pages_s": round(pages / seconds["crawl"], 1) if seconds.get("crawl") else None,
        "images_s": round(images / seconds["shards"], 1) if seconds.get("shards") else None,
        "crashes": len(crashes), "uncontained_crashes": sum(not c.get("contained") for c in crashes),
        "crash_list": crashes,
        "identity_ok": bool(ids) and all(b["ok"] for blocks in ids.values() for b in blocks.values())
        and len(stats) == len(STAGES) and all(stats.values()),
        "stages": {r["stage"]: {"rc": r["rc"], "seconds": r["seconds"], "identity": ids.get(r["stage"], {}),
                                "rss": r["rss"]} for r in results},
        "drop_table": {s: drop_tables(st) for s, st in stats.items()},
        "requests_served": served.get("requests"),
    }


def main(argv: list[str] | None = None) -> int:
    """Run a soak and print its JSON line; exit 1 on any crash or broken identity."""
    from webclip.config import add_flags, build, flag_overrides

    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    p.add_argument("--out", help="keep the run here (default: a temporary folder, removed)")
    p.add_argument("--stage-timeout", type=float, default=3600.0, help="seconds before a stage counts as hung")
    p.add_argument("--beam-mode", choices=("multi_processing", "multi_threading", "in_memory"),
                   help="DirectRunner mode for curate and shards (default: theirs)")
    add_flags(p, HostileWebConfig)
    args = p.parse_args(argv)
    cfg = build(HostileWebConfig, dataclasses.asdict(FULL), flag_overrides(args, HostileWebConfig))
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        report = soak(cfg, Path(args.out) if args.out else Path(tmp), args.stage_timeout, args.beam_mode)
    print(json.dumps(report))
    return 0 if report["crashes"] == 0 and report["identity_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

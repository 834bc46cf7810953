"""``webclip ablation``: balanced curation vs equally large unbalanced samples of the pool, several seeds each.

Arms. *balanced*: the run's curated set (its shards), trained with seeds 0..n-1. *unbalanced*: for seed s,
as many pool rows (matched, before balancing) as the curated set holds, drawn by hash with seed s and
downloaded by the shards stage, trained with seed s. Every trial trains on the same number of samples
(steps x batch size, no wall-clock cut-off) and is evaluated zero-shot on the held-out images.

Head and tail come from the training data: the eval classes ranked by their matched pairs in the pool
(the data before balancing, ``curated/query_counts/``); the top ``head_fraction`` of classes is the
head, the bottom ``head_fraction`` the tail (ties by class order).

Statistics: per arm, the mean over seeds with a Student-t interval; per seed, the balanced minus
unbalanced difference (pairs share the seed: model init and data order), its mean and t-interval. A
difference is *resolved* when its interval excludes 0.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webclip import denylist
from webclip.config import build, to_dict
from webclip.hashing import unit_draw
from webclip.layout import part_name, table_in, table_path
from webclip.parquet import count_rows, iter_rows, parts, write_rows
from webclip.records import CURATED_SCHEMA
from webclip.runfolder import StageDir, atomic_write_json, stage

ARMS = ("balanced", "unbalanced")
METRICS = ("all", "head", "tail")
LAYOUT = "webclip-ablation/3"  # one folder per arm and seed, each unbalanced seed with its own sample; a folder per table


@dataclass
class AblationConfig:
    """The ``ablation`` config section."""

    seeds: int = 5  # trials per arm; seed s trains both arms and draws the unbalanced sample
    head_fraction: float = 1 / 3  # share of the eval classes called head (most pairs) and tail (fewest)
    confidence: float = 0.95
    parallel: int = 2  # trials trained at once, each with train.threads // parallel threads (2 cores: 2 x 1)

    def validate(self) -> None:
        """Reject settings that give no interval."""
        if self.seeds < 2:
            raise ValueError("seeds must be at least 2 (an interval needs two runs)")
        if not 0 < self.head_fraction <= 0.5:
            raise ValueError("head_fraction must be in (0, 0.5]")
        if not 0.5 < self.confidence < 1:
            raise ValueError("confidence must be in (0.5, 1)")
        if self.parallel < 1:
            raise ValueError("parallel must be at least 1")


# ---------------------------------------------------------------- statistics (pure)

def t_pdf(x: float, df: int) -> float:
    """Student's t density."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    return c * (1 + x * x / df) ** (-(df + 1) / 2)


def t_cdf(x: float, df: int, steps: int = 2000) -> float:
    """Student's t distribution function, the density integrated by Simpson's rule from 0."""
    h = x / steps
    inner = sum((4 if i % 2 else 2) * t_pdf(i * h, df) for i in range(1, steps))
    return 0.5 + h / 3 * (t_pdf(0.0, df) + inner + t_pdf(x, df))


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile (p > 0.5) of Student's t: Newton's method on the CDF from the normal quantile.

    The CDF is concave right of 0, so steps from below never overshoot and the iteration climbs to the root.
    """
    x = statistics.NormalDist().inv_cdf(p)
    for _ in range(100):
        step = (p - t_cdf(x, df)) / t_pdf(x, df)
        x += step
        if abs(step) < 1e-10:
            break
    return x


def interval(values: list[float], confidence: float) -> dict[str, Any]:
    """Mean, standard deviation and the two-sided t-interval of the mean."""
    n = len(values)
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if n > 1 else 0.0
    half = t_quantile(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n) if n > 1 else math.inf
    return {"mean": mean, "sd": sd, "n": n, "low": mean - half, "high": mean + half, "half_width": half}


def verdict(iv: dict[str, Any], metric: str) -> str:
    """In words: does the interval of a paired difference exclude 0?"""
    if iv["low"] > 0:
        return f"resolved: balancing raises {metric} top-1"
    if iv["high"] < 0:
        return f"resolved: balancing lowers {metric} top-1"
    return "not resolved: the interval includes 0"


def head_tail_classes(classnames: list[str], counts: dict[str, int], fraction: float) -> tuple[list[str], list[str]]:
    """Head and tail classes by training pairs per entry (a class's count is its entry's; ties by class order)."""
    k = max(1, int(len(classnames) * fraction))
    ranked = sorted(range(len(classnames)), key=lambda i: (-counts.get(classnames[i].lower(), 0), i))
    return [classnames[i] for i in ranked[:k]], [classnames[i] for i in ranked[-k:]]


def group_top1(confusion: list[list[int]], members: list[int]) -> float:
    """Top-1 over the images of some classes, from the confusion matrix (rows: true class)."""
    total = sum(sum(confusion[i]) for i in members)
    return sum(confusion[i][i] for i in members) / total if total else float("nan")


def trial_scores(confusion: list[list[int]], classnames: list[str], head: list[str], tail: list[str]) -> dict[str, float]:
    """Top-1 on all, head and tail images."""
    index = {c: i for i, c in enumerate(classnames)}
    return {"all": group_top1(confusion, list(range(len(classnames)))),
            "head": group_top1(confusion, [index[c] for c in head]),
            "tail": group_top1(confusion, [index[c] for c in tail])}


def compare(runs: dict[str, list[dict[str, Any]]], confidence: float) -> dict[str, Any]:
    """Per-arm intervals and the paired (by seed) balanced minus unbalanced differences."""
    arms = {arm: {m: interval([r[m] for r in rows], confidence) for m in METRICS} | {"runs": rows}
            for arm, rows in runs.items()}
    by_seed = {arm: {r["seed"]: r for r in rows} for arm, rows in runs.items()}
    seeds = sorted(set(by_seed["balanced"]) & set(by_seed["unbalanced"]))
    diffs = {}
    for m in METRICS:
        d = [by_seed["balanced"][s][m] - by_seed["unbalanced"][s][m] for s in seeds]
        iv = interval(d, confidence)
        diffs[m] = iv | {"per_seed": d, "resolved": iv["low"] > 0 or iv["high"] < 0, "verdict": verdict(iv, m)}
    return {"arms": arms, "paired_difference": diffs, "paired_seeds": seeds}


# ---------------------------------------------------------------- the arms (IO)

def unbalanced_sample(run: Path, seed: int) -> list[dict[str, Any]]:
    """As many pool rows (matched, before balancing) as the curated set holds, chosen by hash with ``seed``."""
    n = count_rows(parts(table_path(run, "curated")))
    pool = list(denylist.drop_denied(iter_rows(parts(table_path(run, "pool"))), denylist.for_run(run)))
    pool.sort(key=lambda r: (unit_draw(seed, f"ablation:{r['uid']}"), r["uid"]))
    return [{k: v for k, v in r.items() if k != "kept"} for r in pool[:n]]


def pool_counts(run: Path) -> dict[str, int]:
    """Matched pairs per query entry before balancing (lower-cased entry -> count, summed over groups)."""
    counts: dict[str, int] = {}
    for row in iter_rows(parts(table_path(run, "query_counts")), columns=["entry", "count_before"]):
        key = row["entry"].lower()
        counts[key] = counts.get(key, 0) + int(row["count_before"])
    return counts


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        dst.symlink_to(src.resolve())


def ensure_upstream(run: Path, config_file: dict[str, Any]) -> None:
    """Curate and shard the run first when a sample web is configured (the demo's stages); else require them."""
    if all(stage(run, name).done for name in ("curated", "shards")):
        return
    if "sample_web" not in config_file:
        raise FileNotFoundError(f"{run} has no finished curated and shards stages: run `make demo` (or curate and shards) first")
    from webclip.cli import run_stage, stage_config
    from webclip.sampleweb.context import SampleWebSection, ensure_sample_web

    section = build(SampleWebSection, config_file["sample_web"])
    gen = section.generator_config()
    print(f"ablation: building {run}: a sample web of {gen.images} images and {gen.concepts} concepts, "
          "then crawl, curate and shards (once; later runs reuse them)", flush=True)
    ensure_sample_web(run, gen)
    redo = False
    for name in ("crawl", "curate", "shards"):  # a stage that ran gives the later ones new inputs
        redo = run_stage(name, run, config_file, stage_config(name, config_file), force=redo) is not None or redo


def ensure_layout(base: Path) -> None:
    """An ablation folder from an older layout holds trials this one cannot reuse: remove it."""
    marker = base / "layout.json"
    if base.exists() and not (marker.exists() and json.loads(marker.read_text()).get("layout") == LAYOUT):
        print(f"ablation: {base} was made by an older webclip; starting it over")
        shutil.rmtree(base)
    if not marker.exists():
        atomic_write_json(marker, {"layout": LAYOUT})


def prepare_trial(run: Path, arm: str, seed: int, config_file: dict[str, Any], force: bool) -> Path:
    """The trial's run folder: the balanced shards linked, or the seed's unbalanced sample curated and sharded."""
    from webclip.cli import run_stage, stage_config

    trial = run / "ablation" / f"{arm}-seed{seed}"
    _link(run / "sampleweb", trial / "sampleweb")
    denylist.folder(run).mkdir(parents=True, exist_ok=True)  # the trial's downloads honour the run's denylist
    _link(denylist.folder(run), denylist.folder(trial))
    if arm == "balanced":
        _link(run / "shards", trial / "shards")
        return trial
    cur = StageDir(trial, "curated")
    if not cur.done or force:
        rows = unbalanced_sample(run, seed)
        cur.prepare({"ablation_of": str(run.resolve()), "seed": seed, "rows": len(rows)}, force=force)
        write_rows(Path(table_in(cur.path, "curated")) / part_name(0), rows, CURATED_SCHEMA)
        cur.finish({"unit": "candidates", "in": len(rows), "kept": len(rows), "dropped": {}})
    shards_cfg = stage_config("shards", config_file, {"progress": False})
    run_stage("shards", trial, config_file, shards_cfg, force=force)
    return trial


def trial_configs(seed: int, config_file: dict[str, Any], parallel: int) -> tuple[Any, Any]:
    """Train and eval configs of one trial: the run's, with the trial's seed and a share of the threads."""
    from webclip.cli import stage_config

    train_cfg = stage_config("train", config_file, {"seed": seed, "progress": False})
    # Every trial sees the same number of samples: no wall-clock cut-off, whatever the machine's load.
    train_cfg.max_seconds = None
    eval_cfg = stage_config("eval", config_file)
    train_cfg.threads = max(1, train_cfg.threads // parallel)
    eval_cfg.threads = max(1, eval_cfg.threads // parallel)
    return train_cfg, eval_cfg


def run_trial(trial: Path, seed: int, config_file: dict[str, Any], force: bool, parallel: int) -> dict[str, Any]:
    """Train and evaluate one trial (finished stages are kept, a killed training resumes); the eval results."""
    from webclip.cli import run_stage

    train_cfg, eval_cfg = trial_configs(seed, config_file, parallel)
    run_stage("train", trial, config_file, train_cfg, force=force)
    run_stage("eval", trial, config_file, eval_cfg, force=force)
    return json.loads((trial / "eval" / "results.json").read_text())


def steps_done(trial: Path, steps: int) -> int:
    """Training steps a trial has logged (all of them once its train stage is done)."""
    if (trial / "train" / "_SUCCESS").exists():
        return steps
    lines = (trial / "train" / "metrics.jsonl").read_text().splitlines() if (trial / "train" / "metrics.jsonl").exists() else []
    return json.loads(lines[-1])["step"] if lines and lines[-1].strip() else 0


def run_trials(jobs: list[tuple[Path, int]], config_file: dict[str, Any], force: bool, parallel: int,
               steps: int, show: bool) -> list[dict[str, Any]]:
    """Every trial, ``parallel`` at a time in worker processes, under one progress bar of training steps."""
    from webclip.progress import watch

    def poll() -> int:
        return sum(steps_done(t, steps) for t, _ in jobs)

    with watch("ablation training", len(jobs) * steps, poll, enabled=show, unit="step", interval=2.0):
        if parallel == 1:
            return [run_trial(t, s, config_file, force, 1) for t, s in jobs]
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(parallel, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(run_trial, t, s, config_file, force, parallel) for t, s in jobs]
            return [f.result() for f in futures]


def run_ablation(run: Path, config_file: dict[str, Any], force: bool = False) -> dict[str, Any]:
    """Train and evaluate every arm and seed; write ``ablation/ablation.json`` and ``ablation.png``."""
    from webclip.cli import stage_config

    cfg = build(AblationConfig, config_file.get("ablation", {}))
    started = time.monotonic()
    ensure_upstream(run, config_file)
    base = run / "ablation"
    ensure_layout(base)
    classnames = json.loads(_in_run(run, stage_config("eval", config_file).classnames).read_text())
    counts = pool_counts(run)
    head, tail = head_tail_classes(classnames, counts, cfg.head_fraction)
    trials = [(arm, seed) for seed in range(cfg.seeds) for arm in ARMS]
    print(f"ablation: {len(trials)} trials ({len(ARMS)} arms x {cfg.seeds} seeds), {cfg.parallel} at a time", flush=True)
    jobs = [(prepare_trial(run, arm, seed, config_file, force), seed) for arm, seed in trials]
    print(f"ablation: samples ready after {(time.monotonic() - started) / 60:.1f} min; training", flush=True)
    train = stage_config("train", config_file)
    results = run_trials(jobs, config_file, force, cfg.parallel, train.steps, train.progress)
    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
    for (arm, seed), res in zip(trials, results, strict=True):
        runs[arm].append({"seed": seed, **trial_scores(res["zero_shot"]["confusion"], classnames, head, tail)})
    report = build_report(run, cfg, runs, classnames, counts, head, tail, config_file)
    report["seconds"] = round(time.monotonic() - started, 1)
    atomic_write_json(base / "ablation.json", report)
    plot(report, base / "ablation.png")
    print_report(report, base)
    return report


def _in_run(run: Path, p: str) -> Path:
    return Path(p) if Path(p).is_absolute() else run / p


def build_report(run: Path, cfg: AblationConfig, runs: dict[str, list[dict[str, Any]]], classnames: list[str],
                 counts: dict[str, int], head: list[str], tail: list[str], config_file: dict[str, Any]) -> dict[str, Any]:
    """``ablation.json``: intervals, paired differences, the head/tail definition and what was trained."""

    report = compare(runs, cfg.confidence)
    trials = sorted(p for p in (run / "ablation").glob("*-seed*") if p.is_dir())
    trained = {p.name: json.loads((p / "train" / "stats.json").read_text())["kept"] for p in trials}
    shards = {p.name: json.loads((p / "shards" / "stats.json").read_text())["shards"] for p in trials}
    report |= {
        "config": to_dict(cfg),
        "chance_top1": 1 / len(classnames),
        "head_tail": {"rule": f"eval classes ranked by matched pairs per entry in the pool before balancing; "
                              f"head = top {len(head)}, tail = bottom {len(tail)} of {len(classnames)}",
                      "head": {c: counts.get(c.lower(), 0) for c in head},
                      "tail": {c: counts.get(c.lower(), 0) for c in tail}},
        "train": to_dict(trial_configs(0, config_file, cfg.parallel)[0]) | {"seed": "per trial"},
        "samples_trained": trained, "shard_samples": shards,
        "tail_gain_points": round(100 * report["paired_difference"]["tail"]["mean"], 2),
        "head_change_points": round(100 * report["paired_difference"]["head"]["mean"], 2),
    }
    return report


def _fmt(iv: dict[str, Any], scale: float = 1.0, sign: bool = False) -> str:
    f = "+.1f" if sign else ".3f"
    return f"{scale * iv['mean']:{f}} [{scale * iv['low']:{f}}, {scale * iv['high']:{f}}]"


def print_report(report: dict[str, Any], base: Path) -> None:
    """The table: per-arm means with intervals, then the paired differences in words."""
    cfg = report["config"]
    pct = round(100 * cfg["confidence"])
    print(f"\n== balancing ablation: zero-shot top-1, mean of {cfg['seeds']} seeds [{pct}% t-interval] ==")
    print(f"  {'arm':<12}" + "".join(f"{m:>24}" for m in METRICS))
    for arm, row in report["arms"].items():
        print(f"  {arm:<12}" + "".join(f"{_fmt(row[m]):>24}" for m in METRICS))
    n = len(report["paired_seeds"])
    print(f"  balanced - unbalanced, paired by seed ({n} pairs), in points:")
    for m in METRICS:
        d = report["paired_difference"][m]
        print(f"    {m:<5} {_fmt(d, 100, sign=True):>22}   {d['verdict']}")
    ht = report["head_tail"]
    print(f"  head: {', '.join(ht['head'])}\n  tail: {', '.join(ht['tail'])}\n  ({ht['rule']})")
    print(f"  -> {base / 'ablation.json'}, {base / 'ablation.png'}")


def plot(report: dict[str, Any], out: Path) -> None:
    """Left: top-1 per arm with intervals and every seed; right: paired differences with intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9.5, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    for i, (arm, row) in enumerate(report["arms"].items()):
        xs = [k + 0.38 * i for k in range(len(METRICS))]
        means = [row[m]["mean"] for m in METRICS]
        errs = [[row[m]["mean"] - row[m]["low"] for m in METRICS], [row[m]["high"] - row[m]["mean"] for m in METRICS]]
        ax.bar(xs, means, width=0.38, yerr=errs, capsize=3, label=arm, alpha=0.8)
        for x, m in zip(xs, METRICS, strict=True):
            ax.plot([x] * len(row["runs"]), [r[m] for r in row["runs"]], "k.", markersize=3)
    ax.axhline(report["chance_top1"], color="k", linestyle=":", linewidth=0.8, label="chance")
    ax.set_xticks([k + 0.19 for k in range(len(METRICS))], list(METRICS))
    pct = round(100 * report["config"]["confidence"])
    ax.set(ylabel="zero-shot top-1", title=f"mean of {report['config']['seeds']} seeds, {pct}% interval")
    ax.legend(fontsize=8)
    diffs = report["paired_difference"]
    for k, m in enumerate(METRICS):
        d = diffs[m]
        bx.errorbar([k], [100 * d["mean"]], yerr=[[100 * (d["mean"] - d["low"])], [100 * (d["high"] - d["mean"])]],
                    fmt="o", capsize=4, color="C2" if d["resolved"] else "C7")
        bx.plot([k] * len(d["per_seed"]), [100 * v for v in d["per_seed"]], "k.", markersize=3)
    bx.axhline(0, color="k", linewidth=0.8)
    bx.set_xticks(range(len(METRICS)), [f"{m}\n{'resolved' if diffs[m]['resolved'] else 'not resolved'}" for m in METRICS])
    bx.set(ylabel="balanced - unbalanced (points)", title="paired by seed")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)

"""``webclip demo``: every stage on the sample web, a summary table, summary.json and report plots."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from webclip.cli import STAGES, run_stage, stage_config
from webclip.layout import OldLayout, table_path
from webclip.parquet import iter_rows, parts
from webclip.runfolder import StageConflict, atomic_write_json
from webclip.stats import check_identity, top_reasons

DEMO_STAGES = ("crawl", "curate", "shards", "train", "eval")  # the demo's query list is the sample web's


def plot_report(run: Path, report: Path) -> list[str]:
    """PNG plots: per-query counts before/after balancing, drop reasons per stage, the loss curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report.mkdir(parents=True, exist_ok=True)
    written = []
    qc = list(iter_rows(parts(table_path(run, "query_counts"))))
    qc.sort(key=lambda r: -r["count_before"])
    fig, ax = plt.subplots(figsize=(8, 3.5))
    xs = range(len(qc))
    ax.bar([x - 0.2 for x in xs], [r["count_before"] for r in qc], width=0.4, label="matched (before)")
    ax.bar([x + 0.2 for x in xs], [r["count_after"] for r in qc], width=0.4, label="kept (after balancing)")
    ax.set_xticks(list(xs), [r["entry"] for r in qc], rotation=60, fontsize=7)
    ax.set(ylabel="pairs", title="pairs per query entry")
    ax.legend()
    fig.tight_layout()
    fig.savefig(report / "query_counts.png", dpi=90)
    plt.close(fig)
    written.append("query_counts.png")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    for ax, folder in zip(axes, ("candidates", "curated", "shards"), strict=True):
        reasons = top_reasons(json.loads((run / folder / "stats.json").read_text()), 8)
        ax.barh([r for r, _ in reasons][::-1], [n for _, n in reasons][::-1])
        ax.set_title(f"{folder}: top drop reasons", fontsize=9)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(report / "drop_reasons.png", dpi=90)
    plt.close(fig)
    written.append("drop_reasons.png")
    curves = run / "train" / "curves.png"
    if curves.exists():
        (report / "loss_curve.png").write_bytes(curves.read_bytes())
        written.append("loss_curve.png")
    return written


def summarise(run: Path, seconds: dict[str, float]) -> dict[str, Any]:
    """``summary.json``: counts per stage, training speed, zero-shot results and timings."""
    stats = {name: json.loads((run / STAGES[name].folder / "stats.json").read_text()) for name in DEMO_STAGES}
    for s in stats.values():
        check_identity(s)
    check_identity(stats["crawl"]["pages"])
    return {
        "pages": stats["crawl"]["pages"]["kept"],
        "candidates": stats["crawl"]["kept"],
        "curated": stats["curate"]["kept"],
        "matched": stats["curate"]["matched"],
        "shard_samples": stats["shards"]["kept"],
        "train_steps": stats["train"]["steps"],
        "train_samples_per_s": stats["train"]["samples_per_s"],
        "zero_shot_top1": stats["eval"]["zero_shot_top1"],
        "zero_shot_top5": stats["eval"]["zero_shot_top5"],
        "zero_shot_top1_head": stats["eval"]["zero_shot_top1_head"],
        "zero_shot_top1_tail": stats["eval"]["zero_shot_top1_tail"],
        "chance_top1": stats["eval"]["chance_top1"],
        "stage_seconds": seconds,
        "top_drop_reasons": {name: top_reasons(s, 3) for name, s in stats.items()},
    }


def print_table(summary: dict[str, Any], run: Path) -> None:
    """The short table the demo ends with."""
    rows = [("pages crawled", summary["pages"]), ("candidates", summary["candidates"]),
            ("matched pairs", summary["matched"]), ("curated (balanced)", summary["curated"]),
            ("shard samples", summary["shard_samples"]), ("train steps", summary["train_steps"]),
            ("train samples/s", summary["train_samples_per_s"]),
            ("zero-shot top-1", f"{summary['zero_shot_top1']:.3f} (chance {summary['chance_top1']:.3f}, "
                                f"{summary['zero_shot_top1'] / summary['chance_top1']:.1f}x)"),
            ("zero-shot top-1 head / tail", " / ".join("n/a" if summary[k] is None else f"{summary[k]:.3f}"
                                                        for k in ("zero_shot_top1_head", "zero_shot_top1_tail")))]
    print("\n== webclip demo ==")
    for k, v in rows:
        print(f"  {k:<28} {v}")
    for name, reasons in summary["top_drop_reasons"].items():
        if reasons:
            print(f"  {name + ' drops':<28} " + ", ".join(f"{r} {n}" for r, n in reasons))
    print("  stage seconds               " + ", ".join(f"{k} {v:.0f}" for k, v in summary["stage_seconds"].items()))
    print(f"\nresults: {run}/summary.json, plots: {run}/report/, shards: {run}/shards/final/, "
          f"checkpoint: {run}/train/checkpoints/last.pt")


def run_demo(run: Path, config_file: dict[str, Any], force: bool = False) -> dict[str, Any]:
    """Run every stage into ``run`` (skipping finished ones), then summarise."""
    from webclip.config import build
    from webclip.sampleweb.context import SampleWebSection, ensure_sample_web

    seconds: dict[str, float] = {}
    started = time.monotonic()
    ensure_sample_web(run, build(SampleWebSection, config_file.get("sample_web", {})).generator_config())
    seconds["sample_web"] = round(time.monotonic() - started, 1)
    redo = force
    for name in DEMO_STAGES:
        started = time.monotonic()
        cfg = stage_config(name, config_file)
        try:
            ran = run_stage(name, run, config_file, cfg, force=redo)
        except StageConflict as e:  # the demo owns its run folder: an older webclip or a changed preset made this
            why = "written by webclip < 0.2" if isinstance(e, OldLayout) else "made with another config"
            print(f"{name}: {why}; the demo redoes it and every stage after it")
            ran = run_stage(name, run, config_file, cfg, force=True)
        redo = redo or ran is not None  # a stage that ran gives later stages new inputs
        seconds[name] = round(time.monotonic() - started, 1)
    summary = summarise(run, seconds)
    summary["report"] = plot_report(run, run / "report")
    atomic_write_json(run / "summary.json", summary)
    print_table(summary, run)
    return summary

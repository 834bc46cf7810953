"""``webclip ablation``: balanced curation vs an equally large unbalanced sample of the pool, two seeds each.

Every arm trains the same model for the same number of samples and is evaluated zero-shot on the
held-out images; the report gives top-1 on all, head and tail concepts.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from webclip.config import to_dict
from webclip.hashing import unit_draw
from webclip.parquet import count_rows, iter_rows, parts, write_rows
from webclip.records import CURATED_SCHEMA
from webclip.runfolder import StageDir, atomic_write_json, stage

SEEDS = (0, 1)


def unbalanced_sample(run: Path, seed: int) -> list[dict[str, Any]]:
    """As many pool rows (matched, before balancing) as the curated set holds, chosen by hash."""
    n = count_rows(parts(run / "curated"))
    pool = list(iter_rows(parts(run / "curated" / "pool")))
    pool.sort(key=lambda r: unit_draw(seed, f"ablation:{r['uid']}"))
    return [{k: v for k, v in r.items() if k != "kept"} for r in pool[:n]]


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        dst.symlink_to(src.resolve())


def prepare_arms(run: Path, config_file: dict[str, Any], force: bool) -> dict[str, Path]:
    """Sub-runs whose shards stage holds the balanced set and the unbalanced sample."""
    from webclip.cli import run_stage, stage_config

    base = run / "ablation"
    balanced, unbalanced = base / "balanced", base / "unbalanced"
    _link(run / "shards", balanced / "shards")
    _link(run / "sampleweb", unbalanced / "sampleweb")
    cur = StageDir(unbalanced, "curated")
    rows = unbalanced_sample(run, seed=0)
    if not cur.done:
        cur.prepare({"ablation_of": str(run.resolve()), "rows": len(rows)})
        write_rows(cur.path / "part-00000.parquet", rows, CURATED_SCHEMA)
        cur.finish({"unit": "candidates", "in": len(rows), "kept": len(rows), "dropped": {}})
    run_stage("shards", unbalanced, config_file, stage_config("shards", config_file), force=force)
    return {"balanced": balanced, "unbalanced": unbalanced}


def run_ablation(run: Path, config_file: dict[str, Any], force: bool = False) -> dict[str, Any]:
    """Train and evaluate every arm and seed; write ``ablation/ablation.json`` and a PNG."""
    from webclip.cli import run_stage, stage_config

    for name in ("curated", "shards"):
        if not stage(run, name).done:
            raise FileNotFoundError(f"{run / name} is not finished: run `make demo` (or curate and shards) first")
    arms = prepare_arms(run, config_file, force)
    results: dict[str, list[dict[str, float]]] = {}
    for arm, arm_dir in arms.items():
        for seed in SEEDS:
            trial = arm_dir.parent / f"{arm}-seed{seed}"
            _link(arm_dir / "shards", trial / "shards")
            _link(run / "sampleweb", trial / "sampleweb")
            # Every arm sees the same number of samples: no wall-clock cut-off, whatever the machine's load.
            train_cfg = stage_config("train", config_file, {"seed": seed})
            train_cfg.max_seconds = None
            run_stage("train", trial, config_file, train_cfg, force=force)
            run_stage("eval", trial, config_file, stage_config("eval", config_file), force=force)
            s = json.loads((trial / "eval" / "stats.json").read_text())
            results.setdefault(arm, []).append({"seed": seed, "top1": s["zero_shot_top1"],
                                                "head": s["zero_shot_top1_head"], "tail": s["zero_shot_top1_tail"]})
    table: dict[str, dict[str, Any]] = {
        arm: {k: statistics.mean(r[k] for r in rows) for k in ("top1", "head", "tail")} | {"runs": rows}
        for arm, rows in results.items()}
    samples = {arm: json.loads((d / "shards" / "stats.json").read_text())["shards"] for arm, d in arms.items()}
    report = {"arms": table, "shard_samples": samples, "seeds": list(SEEDS),
              "train": to_dict(stage_config("train", config_file)),
              "tail_gain_points": round(100 * (table["balanced"]["tail"] - table["unbalanced"]["tail"]), 2),
              "head_change_points": round(100 * (table["balanced"]["head"] - table["unbalanced"]["head"]), 2)}
    atomic_write_json(run / "ablation" / "ablation.json", report)
    plot(table, run / "ablation" / "ablation.png")
    print("\n== balancing ablation (zero-shot top-1, mean of seeds) ==")
    print(f"  {'arm':<12}{'all':>8}{'head':>8}{'tail':>8}")
    for arm, row in table.items():
        print(f"  {arm:<12}{row['top1']:>8.3f}{row['head']:>8.3f}{row['tail']:>8.3f}")
    print(f"  tail gain {report['tail_gain_points']:+.1f} points, head change {report['head_change_points']:+.1f} points"
          f" -> {run / 'ablation' / 'ablation.json'}")
    return report


def plot(table: dict[str, dict[str, Any]], out: Path) -> None:
    """Grouped bars: all / head / tail top-1 per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    keys = ("top1", "head", "tail")
    for i, (arm, row) in enumerate(table.items()):
        ax.bar([k + 0.38 * i for k in range(3)], [row[k] for k in keys], width=0.38, label=arm)
    ax.set_xticks([k + 0.19 for k in range(3)], ["all", "head", "tail"])
    ax.set(ylabel="zero-shot top-1", title="balanced vs unbalanced curation")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)

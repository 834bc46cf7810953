"""The dataset card: ``<run>/shards/DATASET.md`` with counts per stage, entries, languages, sizes and plots."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from webclip import storage
from webclip.parquet import iter_rows


def _plots(card_dir: Path, rows: list[dict[str, Any]], counts: list[dict[str, Any]]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    fig, ax = plt.subplots(figsize=(5, 3))
    sides = [max(r["original_width"], r["original_height"]) for r in rows]
    ax.hist(sides, bins=20)
    ax.set(title="original image size (longest side, px)", xlabel="px", ylabel="samples")
    fig.tight_layout()
    fig.savefig(card_dir / "image_sizes.png", dpi=90)
    plt.close(fig)
    out.append("image_sizes.png")
    if counts:
        fig, ax = plt.subplots(figsize=(6, 3))
        after = sorted((c["count_after"] for c in counts), reverse=True)
        before = sorted((c["count_before"] for c in counts), reverse=True)
        ax.plot(before, label="matched")
        ax.plot(after, label="after balancing")
        ax.set(yscale="log", title="pairs per query entry (rank order)", xlabel="entry rank", ylabel="pairs")
        ax.legend()
        fig.tight_layout()
        fig.savefig(card_dir / "entry_counts.png", dpi=90)
        plt.close(fig)
        out.append("entry_counts.png")
    return out


def write_card(run: Path, shards_stats: dict[str, Any], manifest: dict[str, Any], final: str) -> Path:
    """Write the card and its plots into ``<run>/shards`` (the final shards may be remote); returns its path."""
    shards_dir = run / "shards"
    rows = list(iter_rows([storage.join(final, "samples.parquet")]))
    qc_path = run / "curated" / "query_counts.parquet"
    counts = pq.read_table(qc_path).to_pylist() if qc_path.exists() else []
    card_dir = shards_dir / "card"
    card_dir.mkdir(exist_ok=True)
    plots = _plots(card_dir, rows, counts)
    lines = ["# Dataset card", "", "## Counts at each stage", "", "| stage | in | kept |", "|---|---|---|"]
    for folder in ("candidates", "curated", "shards"):
        p = run / folder / "stats.json"
        s = shards_stats if folder == "shards" else json.loads(p.read_text()) if p.exists() else None
        if s is not None:
            lines.append(f"| {folder} ({s.get('unit', 'records')}) | {s['in']} | {s['kept']} |")
    lines += ["", f"Final shards: {manifest['totals']['train']} train samples in {len(manifest['train'])} tars, "
              f"{manifest['totals']['val']} val samples in {len(manifest['val'])} tars.", ""]
    dup = sum(n for r, n in shards_stats["dropped"].items() if r.startswith("dedupe/"))
    downloaded = shards_stats.get("downloaded", 0)
    lines += [f"Duplicate rate among downloaded images: {dup / max(1, downloaded):.1%} "
              f"({dup} of {downloaded}); removed as evaluation overlap: "
              f"{sum(n for r, n in shards_stats['dropped'].items() if r.startswith('decontam/'))}.", ""]
    if counts:
        by_after = sorted(counts, key=lambda c: (-c["count_after"], c["entry"]))
        lines += ["## Entries after balancing", "", "Top: " + ", ".join(f"{c['entry']} ({c['count_after']})" for c in by_after[:10]),
                  "", "Tail: " + ", ".join(f"{c['entry']} ({c['count_after']})" for c in by_after[-10:]), ""]
    langs = Counter(r["lang"] for r in rows)
    lines += ["## Languages", "", ", ".join(f"{k}: {v}" for k, v in langs.most_common()), "", "## Drops", ""]
    lines += [f"- `{k}`: {v}" for k, v in sorted(shards_stats["dropped"].items(), key=lambda kv: (-kv[1], kv[0]))]
    lines += ["", "## Plots", ""] + [f"![{p}](card/{p})" for p in plots]
    path = shards_dir / "DATASET.md"
    path.write_text("\n".join(lines) + "\n")
    return path

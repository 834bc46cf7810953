"""The dataset cards: ``<run>/shards/DATASET.md`` (counts per stage, entries, languages, sizes, plots, the
open_clip command) and ``final/README.md``, the Hugging Face card whose YAML header names each split's tars."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from webclip import storage
from webclip.layout import SPLIT_NAMES, brace_pattern, table_path, tar_glob
from webclip.parquet import iter_rows, parts

LICENCE_NOTE = ("Images and alt texts were collected from public web pages and remain under their owners' terms; "
                "this dataset grants no licence to them. Each sample's `json` names its `page_url` and `image_url`. "
                "Opt-out signals (robots.txt, X-Robots-Tag, `<meta name=robots>`) were honoured when collecting; "
                "remove samples on request with `webclip takedown`.")


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


def open_clip_command(final: str, manifest: dict[str, Any]) -> str:
    """The ``open_clip_train.main`` command line that trains on these shards (sizes from the manifest)."""
    n_train, n_val = len(manifest["train"]), len(manifest["val"])
    args = [f"--train-data '{brace_pattern(final, 'train', n_train)}'",
            f"--train-num-samples {manifest['totals']['train']}", "--dataset-type webdataset"]
    if n_val:
        args += [f"--val-data '{brace_pattern(final, 'val', n_val)}'", f"--val-num-samples {manifest['totals']['val']}"]
    args += [f"--workers {min(4, max(1, n_train))}", "--batch-size 64", "--epochs 10", "--model ViT-B-32"]
    return "python -m open_clip_train.main \\\n    " + " \\\n    ".join(args)


def hf_card(manifest: dict[str, Any], shards_stats: dict[str, Any]) -> str:
    """``final/README.md``: the Hugging Face YAML header (a split per tar pattern, counts) and a short card."""
    splits = [s for s in ("train", "val") if manifest[s]]
    header = ["---", "license: other", "license_name: web-crawl-mixed", "tags:", "- webdataset", "- image-text",
              "- clip", "configs:", "- config_name: default", "  data_files:"]
    for s in splits:
        header += [f"  - split: {SPLIT_NAMES[s]}", f"    path: \"{tar_glob(s)}\""]
    header += ["dataset_info:", "  splits:"]
    for s in splits:
        header += [f"  - name: {SPLIT_NAMES[s]}", f"    num_bytes: {sum(t['bytes'] for t in manifest[s])}",
                   f"    num_examples: {manifest['totals'][s]}"]
    header.append("---")
    counts = ", ".join(f"{SPLIT_NAMES[s]}: {manifest['totals'][s]} samples in {len(manifest[s])} tars" for s in splits)
    body = ["# webclip image-text shards", "",
            f"WebDataset tars (`{{key}}.jpg`, `{{key}}.txt`, `{{key}}.json`): {counts}. "
            f"{shards_stats['in']} curated pairs went in; every drop reason is counted in the run's `shards/stats.json`.",
            "", "`sizes.json` gives each tar's sample count (open_clip reads it), `manifest.json` the tars of each "
            "split with their sha256. Load with `datasets.load_dataset(\"webdataset\", data_dir=THIS_FOLDER)`.",
            "", "## Licence", "", LICENCE_NOTE, ""]
    return "\n".join(header + [""] + body)


def write_card(run: Path, shards_stats: dict[str, Any], manifest: dict[str, Any], final: str,
               samples_table: str) -> Path:
    """Write ``DATASET.md`` and its plots into ``<run>/shards`` and ``README.md`` beside the final tars
    (which may be remote); returns the path of ``DATASET.md``."""
    shards_dir = run / "shards"
    rows = list(iter_rows(parts(samples_table)))
    counts = list(iter_rows(parts(table_path(run, "query_counts"))))
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
    lines += ["## Train with open_clip", "", "```sh", open_clip_command(final, manifest), "```", ""]
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
    storage.write_bytes(storage.join(final, "README.md"), hf_card(manifest, shards_stats).encode())
    return path

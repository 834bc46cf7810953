"""What the explorer shows, read from a run folder through ``webclip.layout``, as plain JSON-ready dicts."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from webclip import storage
from webclip.layout import check_layout, jobs_in, stage_base, stage_path, table_path
from webclip.parquet import iter_rows, parts

from .tars import TarIndex

# (command, stage folder) in pipeline order: the funnel's rows
STAGES = (("crawl", "candidates"), ("curate", "curated"), ("shards", "shards"), ("train", "train"), ("eval", "eval"))
FOLDERS = {folder for _, folder in STAGES}
SAMPLE_COLUMNS = ["uid", "caption", "image_url", "page_url", "lang", "entry_ids", "split", "shard", "width", "height"]
UID = re.compile(r"[0-9a-f]{64}")


def read_json(path: str | Path) -> Any:
    """A JSON file's content, or None when it is absent."""
    return storage.read_json(path) if storage.exists(path) else None


def read_table(run: Path, table: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """Every row of a run's table (empty when the stage has not written it)."""
    return list(iter_rows(parts(table_path(run, table)), columns))


def stage_block(run: Path, command: str, folder: str) -> dict[str, Any]:
    """One funnel row: the stage's counts, drop reasons by count, and how many examples each reason kept."""
    path = stage_path(run, folder)
    stats = read_json(storage.join(path, "stats.json"))
    block: dict[str, Any] = {"stage": folder, "command": command, "done": storage.exists(storage.join(path, "_SUCCESS"))}
    if stats is None:
        return block
    examples = (read_json(storage.join(path, "drop_examples.json")) or {}).get("examples", {})
    block.update(unit=stats.get("unit"), n_in=stats.get("in"), kept=stats.get("kept"),
                 dropped=[{"reason": r, "n": n, "examples": len(examples.get(r, []))}
                          for r, n in sorted(stats.get("dropped", {}).items(), key=lambda kv: (-kv[1], kv[0]))],
                 blocks={name: {**sub, "examples": {r: len(examples.get(r, [])) for r in sub["dropped"]}}
                         for name, sub in stats.items() if isinstance(sub, dict) and "dropped" in sub})
    return block


def drop_count(stats: dict[str, Any] | None, reason: str) -> int:
    """How many units a stage dropped for ``reason``, in its main count or a block (crawl's ``pages``)."""
    blocks = [stats or {}, *(v for v in (stats or {}).values() if isinstance(v, dict) and "dropped" in v)]
    return next((b["dropped"][reason] for b in blocks if reason in b.get("dropped", {})), 0)


def head_or_tail(count_before: int, threshold: float | None) -> str | None:
    """``head`` when balancing capped the entry (its count is over the cap), else ``tail``."""
    if threshold is None:
        return None
    return "head" if count_before > threshold else "tail"


def balance_cap(curated_stats: dict[str, Any] | None) -> float | None:
    """The pooled cap (``*``), else the smallest per-language cap: an entry above it was capped somewhere."""
    caps = (curated_stats or {}).get("balance_thresholds") or {}
    return caps.get("*", min(caps.values()) if caps else None)


def entry_rows(counts: list[dict[str, Any]], final: Counter, cap: float | None) -> list[dict[str, Any]]:
    """Per entry: counts before and after balancing, samples in the final shards, head or tail; largest first."""
    rows = [{**c, "final": final.get(c["entry_id"], 0), "group": head_or_tail(c["count_before"], cap)} for c in counts]
    return sorted(rows, key=lambda r: (-r["count_before"], r["entry_id"]))


def find_samples(rows: list[dict[str, Any]], entry: int | None, query: str, offset: int, limit: int) -> dict[str, Any]:
    """Samples of one entry and/or whose caption holds every word of ``query`` (case-insensitive)."""
    words = query.casefold().split()
    hits = [r for r in rows if (entry is None or entry in r["entry_ids"])
            and all(w in r["caption"].casefold() for w in words)]
    return {"total": len(hits), "offset": offset, "rows": hits[offset:offset + limit]}


def takedown_text(by_uid: dict[str, dict[str, Any]], uids: list[str]) -> str:
    """A list ``webclip takedown --urls`` reads: each selected sample's image URL, its uid and caption as comment."""
    lines = [f"# webclip takedown list: {len(uids)} samples selected in webclip explore",
             "# one image URL per line; '#' starts a comment"]
    for uid in sorted(set(uids)):
        row = by_uid[uid]
        caption = " ".join(row["caption"].split())
        lines += [f"# {uid} {caption}", row["image_url"]]
    return "\n".join(lines) + "\n"


def per_class(zero_shot: dict[str, Any], classnames: list[str]) -> list[dict[str, Any]]:
    """Zero-shot top-1 per class in label order, each marked head, tail or neither."""
    head, tail = set(zero_shot.get("head_classes", [])), set(zero_shot.get("tail_classes", []))
    return [{"class": c, "top1": zero_shot.get("per_class", {}).get(c),
             "group": "head" if c in head else "tail" if c in tail else None} for c in classnames]


def read_metrics(path: str) -> list[dict[str, Any]]:
    """Training log lines (``train/metrics.jsonl``)."""
    if not storage.exists(path):
        return []
    return [json.loads(line) for line in storage.read_bytes(path).decode().splitlines() if line.strip()]


class RunView:
    """A run folder opened read-only; tables are read once, on first use, and kept in memory."""

    def __init__(self, run: str | Path):
        self.run = Path(run)
        if not self.run.is_dir():
            raise FileNotFoundError(f"run folder not found: {self.run}")
        for _, folder in STAGES:
            check_layout(self.run / folder)
        shards_base = stage_base(self.run, "shards")
        local = [] if storage.is_remote(shards_base) else [Path(table_path(self.run, "final")), Path(jobs_in(shards_base))]
        self.tars = TarIndex(local)
        self._cache: dict[str, Any] = {}
        self._lock = threading.RLock()  # loaders call one another

    def _cached(self, name: str, load: Any) -> Any:
        with self._lock:
            if name not in self._cache:
                self._cache[name] = load()
            return self._cache[name]

    def stats(self, folder: str) -> dict[str, Any] | None:
        """A stage's ``stats.json``."""
        return read_json(storage.join(stage_path(self.run, folder), "stats.json"))

    def samples(self) -> list[dict[str, Any]]:
        """The final samples table, in uid order."""
        return self._cached("samples", lambda: read_table(self.run, "samples", SAMPLE_COLUMNS))

    def samples_by_uid(self) -> dict[str, dict[str, Any]]:
        """Final samples by uid."""
        return self._cached("samples_by_uid", lambda: {r["uid"]: r for r in self.samples()})

    def pool_by_uid(self) -> dict[str, dict[str, Any]]:
        """Every matched pair by uid (captions and URLs for examples that name only a uid)."""
        cols = ["uid", "caption", "image_url", "page_url", "entry_ids", "kept"]
        return self._cached("pool", lambda: {r["uid"]: r for r in read_table(self.run, "pool", cols)})

    def funnel(self) -> dict[str, Any]:
        """Every stage's counts and drop reasons, in pipeline order."""
        return {"run": str(self.run), "stages": [stage_block(self.run, c, f) for c, f in STAGES]}

    def entries(self) -> dict[str, Any]:
        """The per-entry table before and after balancing, with the cap that marks head and tail."""
        cap = balance_cap(self.stats("curated"))
        final = Counter(q for r in self.samples() for q in r["entry_ids"])
        return {"cap": cap, "rows": entry_rows(read_table(self.run, "query_counts"), final, cap)}

    def find(self, entry: int | None, query: str, offset: int, limit: int) -> dict[str, Any]:
        """Final samples by entry and caption words."""
        return find_samples(self.samples(), entry, query, offset, limit)

    def describe(self, item: dict[str, Any]) -> dict[str, Any]:
        """An example or group member with what the pool knows of it and whether its image is at hand."""
        uid = item.get("uid", "")
        known = self.pool_by_uid().get(uid, {}) if "caption" not in item else {}
        return {**known, **item, "has_image": self.tars.has(uid), "in_final": uid in self.samples_by_uid()}

    def drop_examples(self, folder: str, reason: str) -> dict[str, Any]:
        """The examples a stage kept for one drop reason."""
        if folder not in FOLDERS:
            raise KeyError(folder)
        record = read_json(storage.join(stage_path(self.run, folder), "drop_examples.json")) or {}
        count = drop_count(self.stats(folder), reason)
        examples = [self.describe(e) for e in record.get("examples", {}).get(reason, [])]
        return {"stage": folder, "reason": reason, "count": count, "k": record.get("k"), "examples": examples}

    def duplicates(self) -> dict[str, Any]:
        """The recorded sample of near/exact duplicate groups, each member described."""
        record = read_json(storage.join(stage_path(self.run, "shards"), "duplicate_groups.json")) or {}
        groups = [{**g, "kept": self.describe({"uid": g["kept"]}),
                   "members": [self.describe(m) for m in g["members"]]} for g in record.get("groups", [])]
        return {"recorded": bool(record), "total_groups": record.get("total_groups", 0), "groups": groups}

    def evaluation(self) -> dict[str, Any]:
        """Zero-shot per class, confusion matrix, retrieval, linear probe and the training curve."""
        ev = stage_path(self.run, "eval")
        results = read_json(storage.join(ev, "results.json")) or {}
        zs = results.get("zero_shot", {})
        cfg = (read_json(storage.join(ev, "config.json")) or {}).get("config", {})
        names_path = Path(cfg.get("classnames", "sampleweb/classnames.json"))
        names_path = names_path if names_path.is_absolute() else self.run / names_path
        classnames = read_json(names_path) or sorted(zs.get("per_class", {}))
        summary = {k: v for k, v in zs.items() if isinstance(v, int | float)}
        return {"zero_shot": summary, "classes": per_class(zs, classnames), "confusion": zs.get("confusion", []),
                "retrieval": results.get("retrieval"), "linear_probe": results.get("linear_probe"),
                "curve": read_metrics(storage.join(stage_path(self.run, "train"), "metrics.jsonl")),
                "confusion_png": storage.exists(storage.join(ev, "confusion.png"))}

    def takedown(self, uids: list[str]) -> str:
        """The takedown list for selected final samples; unknown uids are a ValueError."""
        by_uid = self.samples_by_uid()
        unknown = [u for u in uids if u not in by_uid]
        if unknown or not uids:
            raise ValueError(f"not final samples of this run: {unknown[:3]}" if unknown else "no samples selected")
        return takedown_text(by_uid, uids)

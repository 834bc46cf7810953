"""Takedown: remove samples by image URL, page URL or domain; rewrite only the tars that held them."""

from __future__ import annotations

import datetime
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from webclip import storage
from webclip.dedupe.urls import normalise_url, registered_domain
from webclip.hashing import sha256_hex
from webclip.parquet import iter_rows, table_bytes
from webclip.records import FINAL_SAMPLE_SCHEMA, table_from_rows
from webclip.runfolder import atomic_write_json
from webclip.shards.tarwrite import read_tar, tar_bytes
from webclip.stats import check_identity


@dataclass(frozen=True)
class Rules:
    """What a takedown request names."""

    urls: frozenset[str]
    domains: frozenset[str]

    @classmethod
    def parse(cls, lines: list[str]) -> Rules:
        """URLs (normalised) and bare domains from request lines; ``#`` starts a comment."""
        urls, domains = set(), set()
        for raw in lines:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if "://" in line:
                urls.add(normalise_url(line) or line)
            else:
                domains.add(line.lower().strip("."))
        return cls(frozenset(urls), frozenset(domains))


def takedown_reason(sample: dict[str, Any], rules: Rules) -> str | None:
    """Why a sample must go (``takedown/image_url``, ``page_url`` or ``domain``), or None."""
    if (normalise_url(sample["image_url"]) or sample["image_url"]) in rules.urls:
        return "takedown/image_url"
    if (normalise_url(sample["page_url"]) or sample["page_url"]) in rules.urls:
        return "takedown/page_url"
    for url in (sample["image_url"], sample["page_url"]):
        host = (urlsplit(url).hostname or "").lower()
        if host in rules.domains or registered_domain(host) in rules.domains or any(host.endswith("." + d) for d in rules.domains):
            return "takedown/domain"
    return None


def apply_takedown(shards_dir: Path, lines: list[str], final: str | None = None) -> dict[str, Any]:
    """Remove matching samples from the final shards (``shards/final`` unless given, local or remote);
    returns the record also appended to ``takedowns.jsonl``."""
    final = final or str(shards_dir / "final")
    rules = Rules.parse(lines)
    rows = list(iter_rows([storage.join(final, "samples.parquet")]))
    removed = {r["uid"]: (reason, r["shard"]) for r in rows if (reason := takedown_reason(r, rules))}
    manifest = storage.read_json(storage.join(final, "manifest.json"))
    for shard in sorted({s for _, s in removed.values()}):
        kept = [s for s in read_tar(storage.join(final, shard)) if s["key"] not in removed]
        data = tar_bytes({"key": s["key"], "jpg": s["jpg"], "txt": s["txt"], "json": s["json"]} for s in kept)
        storage.write_bytes(storage.join(final, shard), data)
        for entry in manifest["train"] + manifest["val"]:
            if entry["name"] == shard:
                entry.update(samples=len(kept), sha256=sha256_hex(data), bytes=len(data))
    manifest["totals"] = {split: sum(e["samples"] for e in manifest[split]) for split in ("train", "val")}
    storage.write_bytes(storage.join(final, "samples.parquet"),
                        table_bytes(table_from_rows([r for r in rows if r["uid"] not in removed], FINAL_SAMPLE_SCHEMA)))
    storage.write_json(storage.join(final, "manifest.json"), manifest)
    storage.write_json(storage.join(final, "sizes.json"), {e["name"]: e["samples"] for e in manifest["train"] + manifest["val"]})
    reasons = Counter(reason for reason, _ in removed.values())
    stats_path = shards_dir / "stats.json"
    stats = json.loads(stats_path.read_text())
    stats["kept"] -= len(removed)
    for reason, n in reasons.items():
        stats["dropped"][reason] = stats["dropped"].get(reason, 0) + n
    check_identity(stats)
    atomic_write_json(stats_path, stats)
    record = {"time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "request": sorted(set(lines)),
              "removed": len(removed), "reasons": dict(reasons), "uids": sorted(removed),
              "shards_rewritten": sorted({s for _, s in removed.values()})}
    with open(shards_dir / "takedowns.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    return record

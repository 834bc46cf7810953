"""Takedown: deny image URLs, page URLs, domains or image sha256 run-wide, and purge what the run holds of them.

A request's entries join the run's denylist (and the shared files it points at), so no stage takes the items
again. The purge then rewrites, wherever a denied item is, the final tars with their manifest, sizes and card,
the ``samples`` table, the download jobs' tars, sample and attempt tables and stats, and the ``pool`` table
(which the ablation samples); the same for each ablation trial with shards of its own.

Journal: the plan (what goes, every stats file as it was before) is written to ``shards/_takedown.json``
before anything changes, each step then writes outputs computed from that plan alone, and the journal is
removed last. A takedown killed midway is finished by the next ``webclip takedown`` call, and the stats come
out the same as if it had not been killed: ``in == kept + sum(dropped)`` with ``takedown/<rule>`` drops.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from webclip import denylist, storage
from webclip.dedupe.urls import image_url_key
from webclip.hashing import sha256_hex
from webclip.layout import jobs_in, stage_base, table_in, table_path
from webclip.parquet import iter_rows, parts, table_bytes
from webclip.runfolder import atomic_write_json
from webclip.shards.card import hf_card
from webclip.shards.download import attempts_path
from webclip.shards.tarwrite import read_tar, tar_bytes
from webclip.stats import check_identity

JOURNAL = "_takedown.json"


def drop_reason(row: dict[str, Any], request: denylist.Denylist, full: denylist.Denylist) -> str | None:
    """``takedown/<rule>`` for what the request names, ``optout/denylisted`` for older entries; None: it stays."""
    rule = denylist.row_denied(request, row)
    if rule:
        return f"takedown/{rule}"
    return denylist.REASON if denylist.row_denied(full, row) else None


def stats_after(before: dict[str, Any], removed: dict[str, str]) -> dict[str, Any]:
    """A stats block with the removed items moved from ``kept`` to their drop reasons (checked)."""
    after = json.loads(json.dumps(before))
    after["kept"] -= len(removed)
    for reason, n in sorted(Counter(removed.values()).items()):
        after["dropped"][reason] = after["dropped"].get(reason, 0) + n
    after["dropped"] = dict(sorted(after["dropped"].items()))
    check_identity(after)
    return after


# ---------------------------------------------------------------- the plan (reads only)

def shards_runs(run: Path) -> list[Path]:
    """The run and every ablation trial holding shards of its own (a trial linking the run's shards is the run's)."""
    trials = sorted(p for p in (run / "ablation").glob("*-seed*") if (p / "shards").is_dir()
                    and not (p / "shards").is_symlink()) if (run / "ablation").is_dir() else []
    return [run, *trials]


def plan_shards(run: Path, request: denylist.Denylist, full: denylist.Denylist) -> dict[str, Any] | None:
    """What leaves one run's shards: final samples (uid -> reason, tar) and job samples, with the stats before."""
    stats_path = run / "shards" / "stats.json"
    if not stats_path.exists():
        return None
    base = stage_base(run, "shards")
    samples = parts(table_in(base, "samples"))
    final = {r["uid"]: [reason, r["shard"]] for r in iter_rows(samples)
             if (reason := drop_reason(r, request, full))}
    jobs_dir = jobs_in(base)
    jobs = {}
    for stats_file in storage.glob(jobs_dir, "*_stats.json"):
        job = Path(stats_file).name.removesuffix("_stats.json")
        gone = {r["uid"]: reason for r in iter_rows([storage.join(jobs_dir, f"{job}.parquet")])
                if (reason := drop_reason(r, request, full))}
        if gone:
            jobs[job] = {"removed": gone, "stats": storage.read_json(stats_file)}
    return {"run": str(run), "base": base, "final": final, "jobs": jobs, "stats": json.loads(stats_path.read_text())}


def url_entries_of_hashes(run: Path, entries: list[denylist.Entry]) -> list[denylist.Entry]:
    """The image URLs of the run's samples whose sha256 the request names: denied too, so never fetched again."""
    hashes = {e.value for e in entries if e.kind == "sha256"}
    if not hashes or not (run / "shards" / "stats.json").exists():
        return []
    base = stage_base(run, "shards")
    rows = iter_rows([*parts(table_in(base, "samples")), *storage.glob(jobs_in(base), "*.parquet")],
                     columns=["image_url", "sha256"])
    return sorted({denylist.Entry("image_url", image_url_key(r["image_url"]), "takedown/sha256")
                   for r in rows if r["sha256"] in hashes})


def make_plan(run: Path, lines: list[str], shared: bool) -> dict[str, Any]:
    """The journal: the request's entries and, for the run and each trial, what leaves and the stats before."""
    asked = denylist.parse_lines(lines)
    entries = sorted({*asked, *url_entries_of_hashes(run, asked)})
    request = denylist.build(asked)  # drops are named by the rule the request gave
    full = denylist.build([*entries, *(e for p in denylist.run_files(run) for e in denylist.read_entries(p))])
    ident = sha256_hex(denylist.entries_bytes(entries))[:16]
    return {"id": ident, "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "request": sorted({line.strip() for line in lines if line.strip()}), "shared": shared,
            "entries": [dataclasses.asdict(e) for e in entries],
            "shards": [p for r in shards_runs(run) if (p := plan_shards(r, request, full))],
            "pool": plan_pool(run, full)}


# ---------------------------------------------------------------- the steps (each idempotent)

def filter_tar(path: str, gone: set[str]) -> bytes | None:
    """The tar without the samples in ``gone``; None if it held none of them (nothing to write)."""
    samples = list(read_tar(path))
    if not any(s["key"] in gone for s in samples):
        return None
    return tar_bytes({"key": s["key"], "jpg": s["jpg"], "txt": s["txt"], "json": s["json"]}
                     for s in samples if s["key"] not in gone)


def filter_parquet(path: str, gone: set[str]) -> None:
    """Rewrite a Parquet file without the rows whose uid is in ``gone`` (order and schema kept)."""
    if not storage.exists(path):
        return
    table = pq.read_table(io.BytesIO(storage.read_bytes(path)))
    kept = table.filter(pc.invert(pc.is_in(table["uid"], value_set=pa.array(sorted(gone), type=pa.string()))))
    if kept.num_rows != table.num_rows:
        storage.write_bytes(path, table_bytes(kept))


def purge_final(plan: dict[str, Any]) -> dict[str, Any]:
    """Rewrite the final tars that held removed samples, the manifest, sizes, samples table and card."""
    base, removed = plan["base"], plan["final"]
    final = table_in(base, "final")
    manifest = storage.read_json(storage.join(final, "manifest.json"))
    gone = set(removed)
    for shard in sorted({s for _, s in removed.values()}):
        data = filter_tar(storage.join(final, shard), gone)
        if data is None:
            continue  # rewritten before a crash: its manifest entry is set below from the tar as it is
        storage.write_bytes(storage.join(final, shard), data)
    for entry in manifest["train"] + manifest["val"]:
        if entry["name"] in {s for _, s in removed.values()}:
            data = storage.read_bytes(storage.join(final, entry["name"]))
            entry.update(samples=sum(1 for _ in read_tar(storage.join(final, entry["name"]))),
                         sha256=sha256_hex(data), bytes=len(data))
    manifest["totals"] = {split: sum(e["samples"] for e in manifest[split]) for split in ("train", "val")}
    for p in parts(table_in(base, "samples")):
        filter_parquet(str(p), gone)
    storage.write_json(storage.join(final, "manifest.json"), manifest)
    storage.write_json(storage.join(final, "sizes.json"), {e["name"]: e["samples"] for e in manifest["train"] + manifest["val"]})
    return manifest


def purge_jobs(plan: dict[str, Any]) -> None:
    """Rewrite each job's tar, sample and attempt tables and stats without its removed samples."""
    jobs_dir = jobs_in(plan["base"])
    for job, part in sorted(plan["jobs"].items()):
        gone = set(part["removed"])
        data = filter_tar(storage.join(jobs_dir, f"{job}.tar"), gone)
        if data is not None:
            storage.write_bytes(storage.join(jobs_dir, f"{job}.tar"), data)
        filter_parquet(storage.join(jobs_dir, f"{job}.parquet"), gone)
        filter_parquet(attempts_path(jobs_dir, job), gone)
        storage.write_json(storage.join(jobs_dir, f"{job}_stats.json"), stats_after(part["stats"], part["removed"]))


def plan_pool(run: Path, full: denylist.Denylist) -> dict[str, Any] | None:
    """The pool rows that leave (part -> uids) and curate's stats before, or None without a pool."""
    pool = table_path(run, "pool")
    stats_path = run / "curated" / "stats.json"
    if not stats_path.exists() or not storage.exists(pool):
        return None
    gone = {str(p): sorted(uids) for p in parts(pool)
            if (uids := {r["uid"] for r in iter_rows([str(p)], columns=["uid", "image_url", "page_url"])
                         if denylist.row_denied(full, r)})}
    return {"run": str(run), "parts": gone, "stats": json.loads(stats_path.read_text())}


def purge_pool(plan: dict[str, Any]) -> int:
    """Rewrite the pool parts (every matched pair: the ablation samples them) without the planned rows.

    Curate's stats count the pool (``matched``, ``tables.pool.rows``): they are set from the plan, and the
    shards stage, made from the same curation, is told so (its recorded fingerprint of curate's stats follows).
    """
    run, n = Path(plan["run"]), sum(len(u) for u in plan["parts"].values())
    for path, uids in sorted(plan["parts"].items()):
        filter_parquet(path, set(uids))
    stats = json.loads(json.dumps(plan["stats"]))
    if "matched" in stats:
        stats["matched"] -= n
    if "pool" in stats.get("tables", {}):
        stats["tables"]["pool"]["rows"] -= n
    atomic_write_json(run / "curated" / "stats.json", stats)
    shards_config = run / "shards" / "config.json"
    if shards_config.exists():
        record = json.loads(shards_config.read_text())
        if "curated" in record.get("inputs", {}):
            record["inputs"]["curated"] = sha256_hex((run / "curated" / "stats.json").read_bytes())
            atomic_write_json(shards_config, record)
    return n


def scrub(doc: Any, deny: denylist.Denylist) -> Any:
    """A JSON document without the records (dicts in its lists: drop examples) that the denylist names."""
    if isinstance(doc, list):
        return [scrub(x, deny) for x in doc if not (isinstance(x, dict) and denylist.row_denied(deny, x))]
    if isinstance(doc, dict):
        return {k: scrub(v, deny) for k, v in doc.items()}
    return doc


def scrub_examples(run: Path, deny: denylist.Denylist) -> None:
    """Remove denied items from every stage's ``drop_examples.json`` (what the explorer shows) and the jobs' stats."""
    files = [str(p) for r in shards_runs(run) for p in r.glob("*/drop_examples.json")]
    for r in shards_runs(run):
        if (r / "shards" / "stats.json").exists():
            files += storage.glob(jobs_in(stage_base(r, "shards")), "*_stats.json")
    for path in files:
        doc = storage.read_json(path)
        clean = scrub(doc, deny)
        if clean != doc:
            storage.write_json(path, clean)


def finish_shards(plan: dict[str, Any]) -> None:
    """Purge one run's shards and write its stats from the plan."""
    purge_jobs(plan)
    manifest = purge_final(plan)
    run = Path(plan["run"])
    stats = stats_after(plan["stats"], {uid: reason for uid, (reason, _) in plan["final"].items()})
    stats["shards"] = manifest["totals"]
    if "samples" in stats.get("tables", {}):
        stats["tables"]["samples"]["rows"] = stats["kept"]
    storage.write_bytes(storage.join(table_in(plan["base"], "final"), "README.md"), hf_card(manifest, stats).encode())
    atomic_write_json(run / "shards" / "stats.json", stats)


def carry_out(run: Path, plan: dict[str, Any]) -> dict[str, Any]:
    """Every step of a journalled takedown, then its record in ``shards/takedowns.jsonl``; returns the record."""
    entries = [denylist.Entry(e["kind"], e["value"], e["source"]) for e in plan["entries"]]
    denylist.record(run, f"takedown-{plan['id']}", entries, shared=plan["shared"])
    for part in plan["shards"]:
        finish_shards(part)
    pool_rows = purge_pool(plan["pool"]) if plan["pool"] else 0
    scrub_examples(run, denylist.for_run(run))
    own = [part["final"] for part in plan["shards"] if part["run"] == str(run)]
    removed = {uid: reason for final in own for uid, (reason, _) in final.items()}
    record = {"id": plan["id"], "time": plan["time"], "request": plan["request"], "removed": len(removed),
              "reasons": dict(sorted(Counter(removed.values()).items())), "uids": sorted(removed),
              "shards_rewritten": sorted({s for final in own for _, s in final.values()}),
              "pool_rows_removed": pool_rows, "entries": len(entries)}
    log = run / "shards" / "takedowns.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    done = log.read_text().splitlines() if log.exists() else []
    if not any(json.loads(line).get("id") == plan["id"] and json.loads(line).get("time") == plan["time"] for line in done):
        with open(log, "a") as f:
            f.write(json.dumps(record) + "\n")
    (run / "shards" / JOURNAL).unlink(missing_ok=True)
    return record


def finish_pending(run: Path) -> dict[str, Any] | None:
    """Finish a takedown that was killed midway (its journal is still there); its record, or None."""
    journal = run / "shards" / JOURNAL
    return carry_out(run, json.loads(journal.read_text())) if journal.exists() else None


def apply_takedown(run: Path, lines: list[str], shared: bool = True) -> dict[str, Any]:
    """Deny what ``lines`` name and purge it from the run (see the module doc); returns the record.

    ``shared``: also add the entries to the shared denylist files the run points at.
    """
    run = Path(run)
    finish_pending(run)
    plan = make_plan(run, lines, shared)
    (run / "shards").mkdir(parents=True, exist_ok=True)
    atomic_write_json(run / "shards" / JOURNAL, plan)
    return carry_out(run, plan)

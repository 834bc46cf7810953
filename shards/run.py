"""The shards stage: download jobs on Beam, then dedupe, decontaminate and reshard into final/."""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import apache_beam as beam
from tqdm import tqdm

from webclip import storage
from webclip.dedupe.images import HashIndex, duplicate_groups, image_sha256, phash_hex
from webclip.hashing import sha256_hex, unit_draw
from webclip.parquet import count_rows, iter_rows, parts, table_bytes, write_rows
from webclip.progress import watch
from webclip.records import FINAL_SAMPLE_SCHEMA, SAMPLE_SCHEMA, table_from_rows
from webclip.runfolder import StageDir, stage
from webclip.shards.card import write_card
from webclip.shards.config import ShardsConfig
from webclip.shards.download import check_image, download_one, make_resizer
from webclip.shards.jobs import write_job_inputs
from webclip.shards.neardup import duplicate_groups_beam
from webclip.shards.tarwrite import read_tar, tar_bytes
from webclip.stats import Tally, check_identity

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"}


class DownloadJobFn(beam.DoFn):
    """Runs whole download jobs with one long-lived fetcher, robots cache and resizer per worker."""

    def __init__(self, cfg: ShardsConfig, jobs_dir: str, progress_dir: str | None):
        self.cfg = cfg
        self.jobs_dir = jobs_dir
        self.progress_dir = progress_dir

    def setup(self) -> None:
        from webclip.fetch import Fetcher
        from webclip.robots import RobotsCache

        self.fetcher = Fetcher(self.cfg.fetch_config())
        self.robots = RobotsCache(self.fetcher, self.cfg.robots_agent) if self.cfg.respect_robots else None
        self.resizer = make_resizer(self.cfg)

    def process(self, job: str):
        progress = Path(self.progress_dir) if self.progress_dir else None
        yield run_job(job, self.jobs_dir, self.cfg, self.fetcher, self.robots, self.resizer, progress)


def run_job(job: str, jobs_dir: str, cfg: ShardsConfig, fetcher: Any, robots: Any, resizer: Any,
            progress_dir: Path | None = None) -> str:
    """Download one job into ``{job}.tar`` + ``{job}.parquet``; ``{job}_stats.json`` marks it done.

    ``jobs_dir`` may be local or remote; progress (URLs finished) goes to a local file when asked.
    """
    done = storage.join(jobs_dir, f"{job}_stats.json")
    if storage.exists(done):
        return job
    rows = list(iter_rows([storage.join(jobs_dir, "_inputs", f"{job}.parquet")]))
    started = time.monotonic()
    progress = progress_dir / job if progress_dir else None
    if progress:
        progress.parent.mkdir(parents=True, exist_ok=True)
    results = []
    with ThreadPoolExecutor(cfg.threads, thread_name_prefix=f"job{job}") as pool:
        for r in pool.map(lambda r: download_one(r, fetcher, robots, resizer, cfg), rows):
            results.append(r)
            if progress and (len(results) % 50 == 0 or len(results) == len(rows)):
                _note_progress(progress, len(results))
    samples = sorted((r.sample for r in results if r.sample), key=lambda s: s["key"])
    storage.write_bytes(storage.join(jobs_dir, f"{job}.tar"), tar_bytes(samples))
    write_rows(storage.join(jobs_dir, f"{job}.parquet"), [s["json"] for s in samples], SAMPLE_SCHEMA)
    dropped = Counter(r.reason for r in results if r.reason)
    stats = {"job": job, "in": len(rows), "kept": len(samples), "dropped": dict(sorted(dropped.items())),
             "seconds": round(time.monotonic() - started, 3)}
    check_identity(stats)
    storage.write_json(done, stats)
    return job


def _note_progress(path: Path, n: int) -> None:
    """Replace the progress file whole, so a reader never sees it empty."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(str(n))
    os.replace(tmp, path)


def _downloaded(progress_dir: Path, jobs: list[str]) -> int:
    """URLs finished so far across running jobs (read from their local progress files)."""
    total = 0
    for j in jobs:
        with contextlib.suppress(FileNotFoundError, ValueError):
            total += int((progress_dir / j).read_text() or 0)
    return total


def eval_index(folders: list[str], threshold: int) -> HashIndex:
    """Hash every image under the evaluation folders, local or remote (and inside their WebDataset tars)."""
    index = HashIndex(threshold)
    for folder in folders:
        for p in storage.files_under(folder):
            suffix = Path(p).suffix.lower()
            datas = []
            if suffix in IMAGE_EXTS:
                datas = [storage.read_bytes(p)]
            elif suffix == ".tar":
                datas = [s["jpg"] for s in read_tar(p) if "jpg" in s]
            for data in datas:
                image, _ = check_image(data, 100_000_000)
                if image is not None:
                    index.add(image_sha256(data), phash_hex(image))
    return index


def merged_samples(jobs_dir: str, jobs: list[str]) -> Iterator[dict[str, Any]]:
    """Every downloaded sample in uid order (a k-way merge of the sorted job tars, streamed)."""
    streams = [read_tar(storage.join(jobs_dir, f"{j}.tar")) for j in jobs]
    yield from heapq.merge(*streams, key=lambda s: s["key"])


def write_final(samples: Iterator[dict[str, Any]], drop: dict[str, str], final: str, cfg: ShardsConfig) -> dict[str, Any]:
    """Reshard kept samples into uniform train tars plus a val split (local or remote); returns the manifest."""
    buffers: dict[str, list[dict[str, Any]]] = {"train": [], "val": []}
    written: dict[str, list[dict[str, Any]]] = {"train": [], "val": []}
    rows: list[dict[str, Any]] = []

    def flush(split: str) -> None:
        buf = buffers[split]
        if not buf:
            return
        name = f"{'' if split == 'train' else 'val-'}{len(written[split]):05d}.tar"
        data = tar_bytes(buf)
        storage.write_bytes(storage.join(final, name), data)
        written[split].append({"name": name, "samples": len(buf), "sha256": sha256_hex(data), "bytes": len(data)})
        buffers[split] = []

    for s in samples:
        if s["key"] in drop:
            continue
        split = "val" if unit_draw(cfg.seed, f"val:{s['key']}") < cfg.val_fraction else "train"
        buffers[split].append(s)
        shard = f"{'' if split == 'train' else 'val-'}{len(written[split]):05d}.tar"
        rows.append({**s["json"], "split": split, "shard": shard})
        if len(buffers[split]) >= cfg.shard_size:
            flush(split)
    flush("train")
    flush("val")
    schema = FINAL_SAMPLE_SCHEMA
    storage.write_bytes(storage.join(final, "samples.parquet"), table_bytes(table_from_rows(rows, schema)))
    manifest = {"train": written["train"], "val": written["val"],
                "totals": {"train": sum(s["samples"] for s in written["train"]),
                           "val": sum(s["samples"] for s in written["val"])}}
    storage.write_json(storage.join(final, "manifest.json"), manifest)
    storage.write_json(storage.join(final, "sizes.json"), {s["name"]: s["samples"] for s in written["train"] + written["val"]})
    return manifest


def _absolute(path: str) -> str:
    """A path workers in other folders can use."""
    return path if storage.is_remote(path) else str(Path(path).resolve())


def claim_remote_output(base: str, config: dict[str, Any], force: bool = False) -> None:
    """Record the config beside remote output; output left by another config (or any, when forced) is removed."""
    record = storage.join(base, "config.json")
    if storage.exists(record) and (force or storage.read_json(record) != json.loads(json.dumps(config))):
        print(f"shards: removing earlier output in {base} ({'--force' if force else 'another config'})")
        storage.remove_tree(base)
    storage.write_json(record, config)


def run_shards(cfg: ShardsConfig, out_stage: StageDir, run: Path) -> dict[str, Any]:
    """Download every curated pair, then dedupe, decontaminate and write ``shards/final/``."""
    curated = stage(run, "curated")
    if cfg.curated_path is None and not curated.done:
        raise FileNotFoundError(f"no finished curation in {curated.path}: run `webclip curate` first")
    curated_parts = parts(cfg.curated_path or curated.path)
    if not curated_parts:
        raise FileNotFoundError(f"no curated parts in {cfg.curated_path or curated.path}")
    base = cfg.output_path or str(out_stage.path)
    if storage.is_remote(base):
        claim_remote_output(base, asdict(cfg), out_stage.forced)
    jobs_dir, final = storage.join(base, "jobs"), storage.join(base, "final")
    progress_dir = out_stage.path / "_progress" if cfg.runner == "DirectRunner" else None
    clock = time.monotonic()
    seconds: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal clock
        seconds[name] = round(time.monotonic() - clock, 2)
        clock = time.monotonic()

    jobs = write_job_inputs(curated_parts, jobs_dir, cfg.samples_per_job)
    lap("split_jobs")
    todo = [j for j in jobs if not storage.exists(storage.join(jobs_dir, f"{j}_stats.json"))]
    print(f"shards: {len(jobs)} download jobs, {len(todo)} to run")
    if todo:
        n_todo = count_rows([storage.join(jobs_dir, "_inputs", f"{j}.parquet") for j in todo])
        if progress_dir is not None:
            shutil.rmtree(progress_dir, ignore_errors=True)
        with watch("download", n_todo, lambda: _downloaded(progress_dir, todo) if progress_dir else 0,
                   cfg.progress, unit="url"), beam.Pipeline(options=cfg.beam_options()) as p:
            (p | "Jobs" >> beam.Create(todo) | "Spread" >> beam.Reshuffle()
             | "Download" >> beam.ParDo(DownloadJobFn(cfg, _absolute(jobs_dir), progress_dir and str(progress_dir.resolve()))))
    lap("download")
    job_stats = [storage.read_json(storage.join(jobs_dir, f"{j}_stats.json")) for j in jobs]
    tally = Tally("curated pairs", n_in=count_rows(curated_parts))
    for js in job_stats:
        for reason, n in js["dropped"].items():
            tally.drop(reason, n)
    meta = list(iter_rows([storage.join(jobs_dir, f"{j}.parquet") for j in jobs], columns=["uid", "sha256", "phash"]))
    items = [(m["uid"], m["sha256"], m["phash"]) for m in meta]
    if len(items) >= cfg.dedupe_on_beam_from:
        groups = duplicate_groups_beam(items, cfg.phash_threshold, cfg)
    else:  # small sets: the same functions in-process beat a pipeline's start-up
        groups = duplicate_groups(items, cfg.phash_threshold)
    drop = {uid: reason for uid, (_, reason) in groups.items()}
    lap("dedupe")
    # Relative folders are inside the run (the sample web's held-out images by default); URLs are buckets.
    folders = [f if storage.is_remote(f) or Path(f).is_absolute() else str(Path(run) / f) for f in cfg.decontaminate]
    index = eval_index(folders, cfg.phash_threshold)
    for m in meta:
        if m["uid"] not in drop:
            hit = index.match(m["sha256"], m["phash"])
            if hit:
                drop[m["uid"]] = f"decontam/{hit}_eval_overlap"
    for reason in drop.values():
        tally.drop(reason)
    lap("decontaminate")
    samples = tqdm(merged_samples(jobs_dir, jobs), total=len(meta), desc="reshard", unit="sample",
                   disable=not cfg.progress, mininterval=0.5)
    manifest = write_final(samples, drop, final, cfg)
    lap("reshard")
    tally.kept = count_rows([storage.join(final, "samples.parquet")])
    stats = tally.as_dict()
    stats["downloaded"] = len(meta)
    stats["eval_images_indexed"] = len(index)
    stats["shards"] = manifest["totals"]
    stats["phase_seconds"] = seconds
    if storage.is_remote(base):
        stats["final_path"] = final  # where train and eval find the shards (see runfolder.shards_final)
    check_identity(stats)
    write_card(run, stats, manifest, final)
    out_stage.finish(stats)
    return stats

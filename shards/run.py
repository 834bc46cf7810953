"""The shards stage: download jobs on Beam, then dedupe, decontaminate and reshard into final/."""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import apache_beam as beam
from tqdm import tqdm

from webclip import storage
from webclip.beamio import is_local_runner, table_summary
from webclip.config import runtime_fields
from webclip.dedupe.images import HashIndex, duplicate_groups, image_sha256, phash_hex
from webclip.fetch import is_transient
from webclip.hashing import sha256_hex, unit_draw
from webclip.layout import jobs_in, part_name, table_in, table_path, tar_name
from webclip.parquet import count_rows, iter_rows, parts, table_bytes, write_rows
from webclip.progress import watch
from webclip.records import FINAL_SAMPLE_SCHEMA, SAMPLE_SCHEMA, table_from_rows
from webclip.runfolder import StageDir, StageIncomplete, output_part, stage
from webclip.shards.card import write_card
from webclip.shards.config import ShardsConfig
from webclip.shards.download import (
    check_image,
    denied_in_jobs,
    download_contained,
    job_denylist,
    make_resizer,
    record_optouts,
    snapshot_denylist,
    write_attempts,
)
from webclip.shards.hostshare import SharedHostPacer, job_shares
from webclip.shards.jobs import shared_hosts, write_job_inputs
from webclip.shards.neardup import duplicate_groups_beam
from webclip.shards.pool import download_rows
from webclip.shards.tarwrite import read_tar, tar_bytes
from webclip.stats import DropExamples, Tally, check_identity, duplicate_group_sample

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"}
_WATCHED: set[tuple[int, str | None]] = set()  # launchers this process already watches: one watchdog thread each
_WATCHED_LOCK = threading.Lock()


class LauncherWatch:
    """Stops a local Beam worker process once the process that launched the pipeline is gone.

    A worker that outlives a SIGKILLed launcher (and the sample web it served) would otherwise go on
    and write jobs full of unreachable-host drops. A worker that is the launcher's direct child gets
    Linux's parent-death signal; DirectRunner starts its workers through ``/bin/sh``, so a watchdog
    thread (5 checks a second) ends them, and ``check`` runs once more right before a job is committed.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.identity = _proc_identity(self.pid)

    def alive(self) -> bool:
        """Whether the launcher still runs (a zombie or a reused pid is not it)."""
        if os.getpid() == self.pid:
            return True
        if self.identity is None:  # no /proc: ask the kernel whether the pid exists
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        return _proc_identity(self.pid) == self.identity

    def arm(self) -> None:
        """In a worker process: die with the launcher (parent-death signal, watchdog thread)."""
        if os.getpid() == self.pid:
            return
        if os.getppid() == self.pid:
            _die_with_parent()
        self.check()
        with _WATCHED_LOCK:  # Beam calls setup once per DoFn instance, and a worker may hold several
            if (self.pid, self.identity) in _WATCHED:
                return
            _WATCHED.add((self.pid, self.identity))
        threading.Thread(target=self._watch, name="launcher-watch", daemon=True).start()

    def check(self) -> None:
        """End this worker process now, without writing, if the launcher is gone."""
        if not self.alive():
            os._exit(1)

    def _watch(self) -> None:
        while True:
            time.sleep(0.2)
            self.check()


def _proc_identity(pid: int) -> str | None:
    """A running process's start time from /proc; None if it is gone, a zombie, or /proc is absent."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]  # field 3: state; field 22: start time


def _die_with_parent() -> None:
    """PR_SET_PDEATHSIG: the kernel SIGKILLs this process when its parent exits (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG


class DownloadJobFn(beam.DoFn):
    """Runs whole download jobs with one long-lived fetcher, robots cache and resizer per worker."""

    def __init__(self, cfg: ShardsConfig, jobs_dir: str, progress_dir: str | None, watch: LauncherWatch | None = None):
        self.cfg = cfg
        self.jobs_dir = jobs_dir
        self.progress_dir = progress_dir
        self.watch = watch

    def setup(self) -> None:
        from webclip.fetch import Fetcher
        from webclip.robots import RobotsCache

        if self.watch is not None:
            self.watch.arm()
        # hosts cut over several jobs paced in wall-clock slots shared with their other jobs (shards.hostshare)
        self.fetcher = Fetcher(self.cfg.fetch_config(), SharedHostPacer(self.cfg.per_host_delay,
                                                                         self.cfg.per_host_concurrency))
        self.robots = (RobotsCache(self.fetcher, self.cfg.robots_agent, retry_interval=self.cfg.transient_retry_delay)
                       if self.cfg.respect_robots else None)
        self.resizer = make_resizer(self.cfg)

    def process(self, job: str):
        progress = Path(self.progress_dir) if self.progress_dir else None
        guard = self.watch.check if self.watch is not None else None
        yield run_job(job, self.jobs_dir, self.cfg, self.fetcher, self.robots, self.resizer, progress, guard)


def job_finished(stats: dict[str, Any] | None) -> bool:
    """A job is finished when its ``_stats.json`` exists and lists no pair left to retry."""
    return stats is not None and not stats.get("retry")


def run_job(job: str, jobs_dir: str, cfg: ShardsConfig, fetcher: Any, robots: Any, resizer: Any,
            progress_dir: Path | None = None, before_commit: Callable[[], None] | None = None) -> str:
    """Download one job into ``{job}.tar`` + ``{job}.parquet`` + ``{job}_stats.json``.

    Transient drops are tried again later in the job; those still transient are listed in the stats
    (``transient``, ``retry``) and the job stays unfinished: a rerun keeps its samples and final drops
    and fetches only the ``retry`` pairs again. ``before_commit`` runs before the outputs and again before
    the ``_stats.json`` marker (a worker whose launcher died ends there).
    """
    stats_path = storage.join(jobs_dir, f"{job}_stats.json")
    earlier = storage.read_json(stats_path) if storage.exists(stats_path) else None
    if job_finished(earlier):
        return job
    rows = list(iter_rows([storage.join(jobs_dir, "_inputs", f"{job}.parquet")]))
    started = time.monotonic()
    samples, dropped = _resumed(jobs_dir, job, earlier)
    retry = set(earlier["retry"]) if earlier else None
    todo = [r for r in rows if retry is None or r["uid"] in retry]
    progress = progress_dir / job if progress_dir else None
    if progress:
        progress.parent.mkdir(parents=True, exist_ok=True)
    deny = job_denylist(jobs_dir)  # never fetched: a pair the run's denylist names (optout/denylisted)
    pacer = getattr(fetcher, "pacer", None)
    with job_shares(pacer, shared_hosts(jobs_dir), job, (r["image_url"] for r in todo)):
        results = download_rows(todo, lambda r: download_contained(r, fetcher, robots, resizer, cfg, deny), cfg,
                                pacer, (lambda n: _note_progress(progress, n)) if progress else None)
    samples.update((r.sample["key"], r.sample) for r in results if r.sample)
    dropped.update(r.reason for r in results if r.reason)
    transient = Counter(r.reason for r in results if is_transient(r.reason))
    examples = DropExamples.from_dict((earlier or {}).get("drop_examples", {}), skip=retry or ())
    for r in results:
        if r.reason:
            examples.add(r.reason, {"uid": r.uid, "error": r.error} if r.error else {"uid": r.uid})
    kept = [samples[k] for k in sorted(samples)]
    stats = {"job": job, "in": len(rows), "kept": len(kept), "dropped": dict(sorted(dropped.items())),
             "transient": dict(sorted(transient.items())),
             "retry": sorted(r.uid for r in results if is_transient(r.reason)),
             "errors": [{"uid": r.uid, "error": r.error} for r in results if r.error][:3],  # examples of download/error
             "drop_examples": examples.as_dict(),
             "seconds": round(time.monotonic() - started + (earlier or {}).get("seconds", 0), 3)}
    check_identity(stats)
    commit = before_commit or (lambda: None)
    commit()
    storage.write_bytes(storage.join(jobs_dir, f"{job}.tar"), tar_bytes(kept))
    write_rows(storage.join(jobs_dir, f"{job}.parquet"), [s["json"] for s in kept], SAMPLE_SCHEMA)
    write_attempts(jobs_dir, job, todo, results, earlier is not None)  # every pair tried, as img2dataset keeps
    commit()  # once more right before the marker: the tar and Parquet alone never make a job done
    storage.write_json(stats_path, stats)
    return job


def _resumed(jobs_dir: str, job: str, earlier: dict[str, Any] | None) -> tuple[dict[str, Any], Counter]:
    """An unfinished job's samples (by key) and final drops; its ``retry`` pairs are left out of both."""
    if earlier is None:
        return {}, Counter()
    retry = set(earlier["retry"])
    samples = {s["key"]: s for s in read_tar(storage.join(jobs_dir, f"{job}.tar")) if s["key"] not in retry}
    return samples, Counter(earlier["dropped"]) - Counter(earlier["transient"])


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


def _job_stats(jobs_dir: str, job: str) -> dict[str, Any] | None:
    path = storage.join(jobs_dir, f"{job}_stats.json")
    return storage.read_json(path) if storage.exists(path) else None


def _pairs_to_fetch(jobs_dir: str, job: str, stats: dict[str, Any] | None) -> int:
    """How many pairs an unfinished job will fetch: all of them, or those left to retry."""
    return len(stats["retry"]) if stats else count_rows([storage.join(jobs_dir, "_inputs", f"{job}.parquet")])


def check_download_health(tally: Tally, downloaded: int, transient: Counter, max_share: float, jobs_dir: str) -> None:
    """Refuse to finish a stage that downloaded nothing, or whose pairs mostly failed transiently."""
    n_transient = sum(transient.values())
    if downloaded and n_transient <= max_share * tally.n_in:
        return
    top = ", ".join(f"{r} {n}" for r, n in sorted((transient or tally.dropped).items(), key=lambda kv: -kv[1])[:4])
    if n_transient:
        raise StageIncomplete(
            f"shards not finished: {n_transient} of {tally.n_in} pairs failed transiently ({top}) and {downloaded} "
            f"were downloaded; check that the image hosts and their robots.txt are reachable, then rerun the same "
            f"command: only those pairs are fetched again (per job: 'retry' in {jobs_dir}/*_stats.json)")
    raise StageIncomplete(f"shards not finished: none of {tally.n_in} pairs was downloaded ({top}); check the "
                           f"curated image URLs and the drop reasons in {jobs_dir}/*_stats.json")


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


def duplicate_drops(meta: list[dict[str, Any]], cfg: ShardsConfig, scratch_under: str, record: str | None = None) -> dict[str, str]:
    """uid -> drop reason of every exact or near duplicate among the downloaded images (on Beam when many)."""
    items = [(m["uid"], m["sha256"], m["phash"]) for m in meta]
    if len(items) >= cfg.dedupe_on_beam_from:
        groups = duplicate_groups_beam(items, cfg.phash_threshold, cfg, scratch_under)
    else:  # small sets: the same functions in-process beat a pipeline's start-up
        groups = duplicate_groups(items, cfg.phash_threshold)
    if record:  # a deterministic sample of the groups, for webclip explore
        storage.write_json(record, duplicate_group_sample(groups))
    return {uid: reason for uid, (_, reason) in groups.items()}


def eval_overlap_drops(meta: list[dict[str, Any]], cfg: ShardsConfig, run: Path) -> tuple[dict[str, str], int]:
    """uid -> ``decontam/<kind>_eval_overlap`` of the images matching an evaluation image; and how many were indexed."""
    # Relative folders are inside the run (the sample web's held-out images by default); URLs are buckets.
    folders = [f if storage.is_remote(f) or Path(f).is_absolute() else str(Path(run) / f) for f in cfg.decontaminate]
    index = eval_index(folders, cfg.phash_threshold)
    hits = {m["uid"]: index.match(m["sha256"], m["phash"]) for m in meta}
    return {uid: f"decontam/{hit}_eval_overlap" for uid, hit in hits.items() if hit}, len(index)


def merged_samples(jobs_dir: str, jobs: list[str]) -> Iterator[dict[str, Any]]:
    """Every downloaded sample in uid order (a k-way merge of the sorted job tars, streamed)."""
    streams = [read_tar(storage.join(jobs_dir, f"{j}.tar")) for j in jobs]
    yield from heapq.merge(*streams, key=lambda s: s["key"])


def split_of(key: str, cfg: ShardsConfig) -> str:
    """``val`` for the share ``val_fraction`` of keys (by hash), else ``train``."""
    return "val" if unit_draw(cfg.seed, f"val:{key}") < cfg.val_fraction else "train"


def train_shard_size(n_train: int, cfg: ShardsConfig) -> int:
    """Samples per train tar: ``shard_size``, smaller when needed for at least ``min_shards`` tars."""
    return max(1, min(cfg.shard_size, -(-n_train // max(1, cfg.min_shards))))


def write_final(samples: Iterator[dict[str, Any]], drop: dict[str, str], final: str, cfg: ShardsConfig,
                samples_table: str, train_size: int | None = None) -> dict[str, Any]:
    """Reshard kept samples into uniform train tars plus a val split (local or remote); returns the manifest.

    Tars are ``train-NNNNN.tar`` / ``validation-NNNNN.tar`` of ``train_size`` (default ``shard_size``) and
    ``shard_size`` samples; ``sizes.json`` and ``manifest.json`` go beside them, the per-sample table to
    ``samples_table``.
    """
    sizes = {"train": train_size or cfg.shard_size, "val": cfg.shard_size}
    buffers: dict[str, list[dict[str, Any]]] = {"train": [], "val": []}
    written: dict[str, list[dict[str, Any]]] = {"train": [], "val": []}
    rows: list[dict[str, Any]] = []

    def flush(split: str) -> None:
        buf = buffers[split]
        if not buf:
            return
        name = tar_name(split, len(written[split]))
        data = tar_bytes(buf)
        storage.write_bytes(storage.join(final, name), data)
        written[split].append({"name": name, "samples": len(buf), "sha256": sha256_hex(data), "bytes": len(data)})
        buffers[split] = []

    for s in samples:
        if s["key"] in drop:
            continue
        split = split_of(s["key"], cfg)
        buffers[split].append(s)
        rows.append({**s["json"], "split": split, "shard": tar_name(split, len(written[split]))})
        if len(buffers[split]) >= sizes[split]:
            flush(split)
    flush("train")
    flush("val")
    storage.write_bytes(storage.join(samples_table, part_name(0)), table_bytes(table_from_rows(rows, FINAL_SAMPLE_SCHEMA)))
    manifest = {"train": written["train"], "val": written["val"],
                "totals": {"train": sum(s["samples"] for s in written["train"]),
                           "val": sum(s["samples"] for s in written["val"])}}
    storage.write_json(storage.join(final, "manifest.json"), manifest)
    storage.write_json(storage.join(final, "sizes.json"), {s["name"]: s["samples"] for s in written["train"] + written["val"]})
    return manifest


def _absolute(path: str) -> str:
    """A path workers in other folders can use."""
    return path if storage.is_remote(path) else str(Path(path).resolve())


def claim_remote_output(base: str, config: dict[str, Any], force: bool = False, runtime: Collection[str] = ()) -> None:
    """Record the config beside remote output; output left by another config (or any, when forced) is removed.

    Run-time knobs (``runtime``: threads, progress, runner...) may differ: their output is kept.
    """
    record = storage.join(base, "config.json")
    config = json.loads(json.dumps(config))
    if storage.exists(record) and (force or output_part(storage.read_json(record), runtime) != output_part(config, runtime)):
        print(f"shards: removing earlier output in {base} ({'--force' if force else 'another config'})")
        storage.remove_tree(base)
    storage.write_json(record, config)


def download_jobs(cfg: ShardsConfig, jobs_dir: str, jobs: list[str], progress_dir: Path | None) -> list[dict[str, Any]]:
    """Run every unfinished download job on Beam (finished ones are kept); returns every job's stats."""
    earlier = {j: _job_stats(jobs_dir, j) for j in jobs}
    todo = [j for j in jobs if not job_finished(earlier[j])]
    print(f"shards: {len(jobs)} download jobs, {len(todo)} to run")
    if todo:
        n_todo = sum(_pairs_to_fetch(jobs_dir, j, earlier[j]) for j in todo)
        if progress_dir is not None:
            shutil.rmtree(progress_dir, ignore_errors=True)
        fn = DownloadJobFn(cfg, _absolute(jobs_dir), str(progress_dir.resolve()) if progress_dir else None,
                           LauncherWatch() if is_local_runner(cfg.runner) else None)
        with watch("download", n_todo, lambda: _downloaded(progress_dir, todo) if progress_dir else 0,
                   cfg.progress, unit="url"), beam.Pipeline(options=cfg.beam_options()) as p:
            p | "Jobs" >> beam.Create(todo) | "Spread" >> beam.Reshuffle() | "Download" >> beam.ParDo(fn)
    return [storage.read_json(storage.join(jobs_dir, f"{j}_stats.json")) for j in jobs]


class Laps:
    """Seconds per phase of the stage, for ``stats.json``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._clock = time.monotonic()

    def __call__(self, name: str) -> None:
        self.seconds[name] = round(time.monotonic() - self._clock, 2)
        self._clock = time.monotonic()


def shards_input(cfg: ShardsConfig, out_stage: StageDir, run: Path) -> tuple[list[str], str]:
    """The curated parts to download and the output base (claimed when remote); a clear error when missing."""
    curated = stage(run, "curated")
    if cfg.curated_path is None and not curated.done:
        raise FileNotFoundError(f"no finished curation in {curated.path}: run `webclip curate` first")
    curated_table = table_in(cfg.curated_path, "curated") if cfg.curated_path else table_path(run, "curated")
    curated_parts = parts(curated_table)
    if not curated_parts:
        raise FileNotFoundError(f"no curated parts in {curated_table}")
    base = cfg.output_path or str(out_stage.path)
    if storage.is_remote(base):
        claim_remote_output(base, asdict(cfg), out_stage.forced, runtime_fields(ShardsConfig))
    return curated_parts, base


def download_tally(cfg: ShardsConfig, job_stats: list[dict], n_in: int, jobs_dir: str) -> tuple[Tally, Counter]:
    """The jobs' drops and examples in one tally, and transient failures; stops on an unhealthy download."""
    tally = Tally("curated pairs", n_in=n_in)
    for js in job_stats:
        for reason, n in js["dropped"].items():
            tally.drop(reason, n)
        tally.examples.merge(DropExamples.from_dict(js.get("drop_examples", {})))
    transient = sum((Counter(js.get("transient", {})) for js in job_stats), Counter())
    check_download_health(tally, sum(js["kept"] for js in job_stats), transient, cfg.max_transient_share, jobs_dir)
    return tally, transient


def removals(cfg: ShardsConfig, run: Path, out_stage: StageDir, base: str, jobs_dir: str, jobs: list[str],
             meta: list[dict], laps: Laps) -> tuple[dict[str, str], int]:
    """uid -> drop reason for denied, duplicate and eval-overlapping images; and the eval images indexed."""
    denied = denied_in_jobs(jobs_dir, jobs)  # kept by jobs finished before the denylist named them
    drop = duplicate_drops([m for m in meta if m["uid"] not in denied], cfg, _absolute(base),
                           record=str(out_stage.path / "duplicate_groups.json")) | denied
    laps("dedupe")
    overlaps, indexed = eval_overlap_drops([m for m in meta if m["uid"] not in drop], cfg, run)
    drop.update(overlaps)
    laps("decontaminate")
    return drop, indexed


def reshard(cfg: ShardsConfig, jobs_dir: str, jobs: list[str], meta: list[dict], drop: dict[str, str],
            final: str, samples_table: str) -> dict[str, Any]:
    """Write the final tars and ``samples/`` from the jobs' samples, without the dropped ones; the manifest."""
    samples = tqdm(merged_samples(jobs_dir, jobs), total=len(meta), desc="reshard", unit="sample",
                   disable=not cfg.progress, mininterval=0.5)
    n_train = sum(split_of(m["uid"], cfg) == "train" for m in meta if m["uid"] not in drop)
    for folder in (final, samples_table):  # an earlier try's tars past the new count would stay readable by glob
        storage.remove_tree(folder)
    return write_final(samples, drop, final, cfg, samples_table, train_shard_size(n_train, cfg))


def run_shards(cfg: ShardsConfig, out_stage: StageDir, run: Path) -> dict[str, Any]:
    """Download every curated pair, then dedupe, decontaminate and write ``shards/final/`` and ``shards/samples/``."""
    curated_parts, base = shards_input(cfg, out_stage, run)
    jobs_dir, final, samples_table = jobs_in(base), table_in(base, "final"), table_in(base, "samples")
    progress_dir = out_stage.path / "_progress" if is_local_runner(cfg.runner) else None
    laps = Laps()
    jobs = write_job_inputs(curated_parts, jobs_dir, cfg.samples_per_job)
    laps("split_jobs")
    snapshot_denylist(run, jobs_dir)
    job_stats = download_jobs(cfg, jobs_dir, jobs, progress_dir)
    record_optouts(run, jobs_dir, jobs)  # X-Robots-Tag opt-outs join the run's denylist
    laps("download")
    tally, transient = download_tally(cfg, job_stats, count_rows(curated_parts), jobs_dir)
    meta = list(iter_rows([storage.join(jobs_dir, f"{j}.parquet") for j in jobs], columns=["uid", "sha256", "phash"]))
    drop, indexed = removals(cfg, run, out_stage, base, jobs_dir, jobs, meta, laps)
    for uid, reason in drop.items():
        tally.drop(reason, example={"uid": uid})
    manifest = reshard(cfg, jobs_dir, jobs, meta, drop, final, samples_table)
    laps("reshard")
    tally.kept = count_rows(parts(samples_table))
    if not tally.kept:
        top = ", ".join(f"{r} {n}" for r, n in Counter(drop.values()).most_common(3))
        raise StageIncomplete(f"shards not finished: all {len(meta)} downloaded images were dropped ({top}); "
                              f"check the decontaminate folders and the curated pairs")
    stats = tally.as_dict()
    stats.update({"downloaded": len(meta), "transient": dict(sorted(transient.items())),  # transient: part of dropped
                  "eval_images_indexed": indexed, "shards": manifest["totals"],
                  "tables": {"samples": table_summary(samples_table)}, "phase_seconds": laps.seconds})
    if storage.is_remote(base):
        stats["output"] = base  # where layout.table_path finds final/ and samples/
        stats["final_path"] = final  # where train and eval find the shards (see runfolder.shards_final)
    check_identity(stats)
    write_card(run, stats, manifest, final, samples_table)
    storage.write_json(str(out_stage.path / "drop_examples.json"), tally.examples_record())
    out_stage.finish(stats)
    return stats

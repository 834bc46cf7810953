"""The curation pipeline in Beam: a PTransform per step, one composite, one ``run_curate`` entry."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from webclip import denylist
from webclip.beamio import (
    CountingDoFn,
    CountKeys,
    DropExampleSink,
    WriteParts,
    collect_counters,
    count_rows_any,
    list_parts,
    reachable_copy,
    table_summary,
    write_atomically,
)
from webclip.dedupe.urls import image_url_key
from webclip.denylist import Denylist
from webclip.hashing import candidate_uid
from webclip.layout import part_name, table_in, table_path
from webclip.parquet import iter_rows, table_bytes
from webclip.pipelines.balance import balance_group, group_thresholds, keep, keep_probability
from webclip.pipelines.config import CurateConfig
from webclip.pipelines.filters import filter_reason, optout_entries
from webclip.pipelines.langid import best_language, get_detector
from webclip.pipelines.match import key_report, load_queries, match_ids, shared_automaton
from webclip.pipelines.normalise import normalise_caption
from webclip.progress import watch
from webclip.runfolder import StageDir, stage
from webclip.stats import Tally, check_identity


class PrepareFn(CountingDoFn):
    """Add ``caption`` (the normalised alt text), then drop opt-outs, junk alts and unusable image URLs."""

    def __init__(self, cfg: CurateConfig, deny: Denylist | None = None):
        super().__init__()
        self.cfg, self.deny = cfg, deny

    def process(self, row: dict[str, Any]):
        row = {**row, "caption": normalise_caption(row["alt"])}
        # Dedupe's one shuffle by URL relies on the uid contract (a uid's rows share their URL): check it.
        uid_ok = row["uid"] == candidate_uid(row["image_url"] or "", row["alt"] or "")
        reason = filter_reason(row, self.cfg, self.deny) if uid_ok else "input/uid_not_contract"
        if reason:
            yield from self.drop(reason, example=row)
        else:
            yield row


def first_of(rows: list[dict[str, Any]], order: tuple[str, ...]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The smallest row by ``order`` (missing values first) and the others."""
    rows = sorted(rows, key=lambda r: tuple(r[k] or "" for k in order))
    return rows[0], rows[1:]


class DedupeFn(CountingDoFn):
    """One image URL's rows: one row per uid (smallest page URL), then one in all (smallest uid).

    The uid contract (``webclip.hashing.candidate_uid``) makes rows sharing a uid share their image URL,
    so a group keyed by URL holds each of its uids whole: one shuffle does both steps.
    """

    def process(self, kv: tuple[str, Any]):
        by_uid: dict[str, list[dict[str, Any]]] = {}
        for r in kv[1]:
            by_uid.setdefault(r["uid"], []).append(r)
        firsts = []
        for rows in by_uid.values():
            first, rest = first_of(rows, ("page_url",))
            firsts.append(first)
            yield from self.drop_all("dedupe/duplicate_uid", rest, first)
        first, rest = first_of(firsts, ("uid",))
        yield from self.drop_all("dedupe/duplicate_url", rest, first)
        yield first

    def drop_all(self, reason: str, rows: list[dict[str, Any]], kept: dict[str, Any]):
        """Count each of ``rows`` dropped for ``kept``."""
        instead = {k: kept[k] for k in ("uid", "page_url")}
        for r in rows:
            yield from self.drop(reason, example={**r, "kept_instead": instead})


class Dedupe(beam.PTransform):
    """One row per uid (smallest page URL), then one per normalised image URL (smallest uid)."""

    def __init__(self, sink: DropExampleSink | None = None):
        super().__init__()
        self.sink = sink or DropExampleSink()

    def expand(self, rows):
        return (rows | "KeyByUrl" >> beam.Map(lambda r: (image_url_key(r["image_url"]), r))
                | "GroupUrl" >> beam.GroupByKey() | "OnePerUrl" >> self.sink.counted(DedupeFn()))


class LanguageMatchFn(CountingDoFn):
    """Detect the caption's language and keep the configured ones, then attach ``entry_ids`` (or drop).

    The detector (seeded) and the automaton are built once per worker process. Detection is deterministic,
    so a caption met again within a bundle reuses its answer (at most ``CACHE_TEXTS`` remembered).
    """

    CACHE_TEXTS = 100_000

    def __init__(self, queries_path: str, cfg: CurateConfig):
        super().__init__()
        self.queries_path = queries_path
        self.cfg = cfg

    def setup(self) -> None:
        cfg = self.cfg
        self.detect = get_detector(cfg.lang_detector, cfg.seed)
        self.auto = shared_automaton(self.queries_path, cfg.match_mode, cfg.matcher, cfg.match_inflections,
                                     cfg.match_accents)

    def start_bundle(self) -> None:
        self.langs: dict[str, str] = {}

    def language(self, caption: str) -> str:
        """The caption's best language, remembered for the bundle."""
        lang = self.langs.get(caption)
        if lang is None:
            if len(self.langs) >= self.CACHE_TEXTS:
                self.langs.clear()
            lang = self.langs[caption] = best_language(self.detect(caption))
        return lang

    def process(self, row: dict[str, Any]):
        lang = self.language(row["caption"])
        row = {**row, "lang": lang}
        if self.cfg.languages and lang not in self.cfg.languages:
            yield from self.drop("lang/not_kept", example=row)
            return
        ids = match_ids(self.auto, row["caption"])
        if not ids:
            yield from self.drop("match/no_query", example=row)
            return
        yield {**row, "entry_ids": ids}


class BalanceFn(CountingDoFn):
    """Decide each matched pair by hash: kept with probability 1 - prod(1 - min(1, t_g / c_gq)).

    ``g`` is the pair's counting group: its language under ``balance_by="entry_lang"``, else one pooled group.
    """

    def __init__(self, cfg: CurateConfig):
        super().__init__()
        self.cfg = cfg

    def process(self, row: dict[str, Any], counts: dict[tuple[str, int], int], thresholds: dict[str, float]):
        group = balance_group(row.get("lang"), self.cfg.balance_by)
        p = keep_probability([(group, q) for q in row["entry_ids"]], counts, thresholds[group])
        kept = keep(row["uid"], self.cfg.seed, p)
        if not kept:
            yield from self.drop("balance/over_cap", example={**row, "keep_prob": p})
        yield {**row, "keep_prob": p, "kept": kept}


def thresholds_of(counts: list[tuple[tuple[str, int], int]], pairs: dict[str, int], cfg: CurateConfig) -> dict[str, float]:
    """Each counting group's cap (see ``balance.group_thresholds``)."""
    return group_thresholds(dict(counts), pairs, cfg.balance_t, cfg.balance_fraction, cfg.balance_anchor_lang)


def write_thresholds(thresholds: dict[str, float], path: str) -> dict[str, float]:
    """``balance_thresholds.json``: the cap used for each counting group (read into stats.json)."""
    import json

    write_atomically(path, json.dumps(thresholds, sort_keys=True).encode())
    return thresholds


def write_query_counts(kv_lists: list[tuple[int, dict[str, list[int]]]], path: str, queries_path: str) -> None:
    """The ``query_counts`` table: each matched entry's count before and after balancing."""
    import pyarrow as pa

    entries = load_queries(queries_path)
    rows = sorted((eid, sum(v["before"]), sum(v["after"])) for eid, v in kv_lists)
    table = pa.table({"entry_id": pa.array([r[0] for r in rows], pa.int32()),
                      "entry": pa.array([entries[r[0]] for r in rows], pa.string()),
                      "count_before": pa.array([r[1] for r in rows], pa.int64()),
                      "count_after": pa.array([r[2] for r in rows], pa.int64())})
    write_atomically(path, table_bytes(table))


class Balance(beam.PTransform):
    """Matched rows -> rows with ``keep_prob`` and ``kept``: counts per (group, entry), a cap per group written
    to ``<out>/balance_thresholds.json``, then a hash-decided keep per row."""

    def __init__(self, cfg: CurateConfig, out: str, sink: DropExampleSink | None = None):
        super().__init__()
        self.cfg, self.out, self.sink = cfg, out, sink or DropExampleSink()

    def expand(self, rows):
        cfg, by = self.cfg, self.cfg.balance_by
        per_group = rows | "CountPerGroupEntry" >> CountKeys(
            lambda r: [(balance_group(r.get("lang"), by), q) for q in r["entry_ids"]])
        pairs = rows | "CountPerGroup" >> CountKeys(lambda r: (balance_group(r.get("lang"), by),))
        thresholds = (per_group | "AllGroupCounts" >> beam.combiners.ToList()
                      | "Thresholds" >> beam.Map(thresholds_of, beam.pvalue.AsDict(pairs), cfg)
                      | "WriteThresholds" >> beam.Map(write_thresholds,
                                                      FileSystems.join(self.out, "balance_thresholds.json")))
        return rows | "Decide" >> self.sink.counted(BalanceFn(cfg), counts=beam.pvalue.AsDict(per_group),
                                             thresholds=beam.pvalue.AsSingleton(thresholds))


class Curate(beam.PTransform):
    """Candidates -> curated pairs, pool and per-entry counts, written under ``out``."""

    def __init__(self, cfg: CurateConfig, queries_path: str, out: str, deny: Denylist | None = None):
        super().__init__()
        self.cfg, self.queries_path, self.out, self.deny = cfg, queries_path, out, deny

    def expand(self, candidates):
        cfg, sink = self.cfg, DropExampleSink()
        rows = (candidates | "Prepare" >> sink.counted(PrepareFn(cfg, self.deny))
                | "Dedupe" >> Dedupe(sink) | "LanguageMatch" >> sink.counted(LanguageMatchFn(self.queries_path, cfg)))
        decided = rows | "Balance" >> Balance(cfg, self.out, sink)
        sink.write(candidates.pipeline, FileSystems.join(self.out, "drop_examples.json"), "candidates")
        kept = decided | "Kept" >> beam.Filter(lambda r: r["kept"])
        kept | "WriteCurated" >> WriteParts(table_in(self.out, "curated"), "curated", cfg.num_parts)
        decided | "WritePool" >> WriteParts(table_in(self.out, "pool"), "pool", cfg.num_parts)
        per_entry = rows | "CountPerEntry" >> CountKeys(lambda r: r["entry_ids"])
        after = kept | "CountAfter" >> CountKeys(lambda r: r["entry_ids"])
        path, qpath = FileSystems.join(table_in(self.out, "query_counts"), part_name(0)), self.queries_path
        return ({"before": per_entry, "after": after} | "JoinCounts" >> beam.CoGroupByKey()
                | "AllCounts" >> beam.combiners.ToList()
                | "WriteCounts" >> beam.Map(write_query_counts, path, qpath))


def read_parquet_rows(path: str):
    """Rows of one Parquet file, through Beam's filesystems."""
    with FileSystems.open(path) as f:
        data = f.read()
    yield from pq.read_table(io.BytesIO(data)).to_pylist()


def build_pipeline(p: beam.Pipeline, inputs: list[str], cfg: CurateConfig, queries_path: str, out: str,
                   deny: Denylist | None = None) -> None:
    """Wire the pipeline onto ``p``."""
    (p | "Inputs" >> beam.Create(inputs) | "Reshuffle" >> beam.Reshuffle()
     | "Read" >> beam.FlatMap(read_parquet_rows) | "Curate" >> Curate(cfg, queries_path, out, deny))


def resolve_queries(cfg: CurateConfig, run: Path) -> str:
    """The query list path: absolute, remote, or relative to the run folder (then to the cwd)."""
    if "://" in cfg.queries or Path(cfg.queries).is_absolute():
        return cfg.queries
    inside = Path(run) / cfg.queries
    if inside.exists():
        return str(inside.resolve())
    if Path(cfg.queries).exists():
        return str(Path(cfg.queries).resolve())
    raise FileNotFoundError(f"query list not found: {cfg.queries} (looked in {run} and the working directory)")


def read_thresholds(path: str) -> dict[str, float]:
    """The caps written by the pipeline ({} when nothing was matched)."""
    import json

    if not FileSystems.exists(path):
        return {}
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode())


def run_curate(cfg: CurateConfig, out_stage: StageDir, run: Path) -> dict[str, Any]:
    """Run the curation pipeline on the run's candidates table and finish ``<run>/curated``."""
    if cfg.candidates_path is None:
        cands = stage(run, "candidates")
        if not cands.done:
            raise FileNotFoundError(f"no finished crawl in {cands.path}: run `webclip crawl` first")
    cands_table = table_in(cfg.candidates_path, "candidates") if cfg.candidates_path else table_path(run.resolve(), "candidates")
    options = cfg.beam_options()  # first: it gives FileSystems the options the launcher's listings need (s3://)
    inputs = list_parts(cands_table)
    if not inputs:
        raise FileNotFoundError(f"no candidate parts in {cands_table}")
    queries_path = resolve_queries(cfg, run)
    out = cfg.output_path or str(out_stage.path.resolve())
    for_workers = reachable_copy(queries_path, options, out)  # a local query list, copied where remote workers read
    stale = [p for t in ("curated", "pool", "query_counts") for p in list_parts(table_in(out, t))]
    if stale:
        FileSystems.delete(stale)
    with watch("curate (Beam)", None, None, cfg.progress, unit="s"), beam.Pipeline(options=options) as p:
        build_pipeline(p, inputs, cfg, for_workers, out, denylist.for_run(run))
    if for_workers != queries_path:
        FileSystems.delete([for_workers])
    denylist.record(run, "optout-curate", optout_entries(iter_rows(inputs, columns=["page_url", "opt_out"])))
    result = p.result if hasattr(p, "result") else None
    counters = collect_counters(result) if result is not None else {}
    tally = Tally("candidates", n_in=count_rows_any(inputs), kept=count_rows_any(list_parts(table_in(out, "curated"))))
    for reason, n in counters.items():
        tally.drop(reason, n)
    stats = tally.as_dict()
    stats["matched"] = count_rows_any(list_parts(table_in(out, "pool")))
    stats["output"] = out
    stats["tables"] = {t: table_summary(table_in(out, t)) for t in ("curated", "pool", "query_counts")}
    entries = load_queries(queries_path)
    stats["queries"] = len(entries)
    stats["match"] = {"mode": cfg.match_mode, **key_report(entries, cfg.match_mode, cfg.match_inflections)}
    stats["balance_thresholds"] = read_thresholds(FileSystems.join(out, "balance_thresholds.json"))
    check_identity(stats)
    out_stage.finish(stats)
    return stats

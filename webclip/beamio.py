"""Beam plumbing shared by the stages: runner options, counters, deterministic Parquet parts."""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.window import GlobalWindows

from webclip.directrunner import guard_direct_runner
from webclip.parquet import PART_GLOB, part_name, row_sort_key, table_bytes
from webclip.records import CANDIDATE_SCHEMA, CURATED_SCHEMA, POOL_SCHEMA, table_from_rows
from webclip.stats import EXAMPLES_PER_REASON, DropExamples, drop_examples_record, example_rank

NAMESPACE = "webclip"
SCHEMAS = {"candidates": CANDIDATE_SCHEMA, "curated": CURATED_SCHEMA, "pool": POOL_SCHEMA}


def worker_requirements(extras: tuple[str, ...]) -> list[str]:
    """webclip's pinned requirements for the given extras, read from the installed package's metadata."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    out = []
    for line in requires("webclip") or []:
        req = Requirement(line)
        if req.name == "webclip" or req.marker is None:
            continue
        if any(req.marker.evaluate({"extra": e}) for e in extras):
            req.marker = None
            out.append(str(req))
    return sorted(set(out))


def is_local_runner(runner: str) -> bool:
    """Whether a runner name means Beam's DirectRunner (``DirectRunner``, ``direct``, any case): workers in this machine."""
    return runner.lower().removesuffix("runner") == "direct"


def pipeline_options(runner: str, num_workers: int, running_mode: str, extra: list[str],
                     worker_extras: tuple[str, ...] = ()) -> PipelineOptions:
    """DirectRunner with worker processes locally; any other runner takes its flags from ``extra``.

    Remote workers build webclip from ``--setup_file`` with its core dependencies only; a stage that
    needs an extra there (img2dataset for shards, fastwarc for archives) gets a ``--requirements_file``
    with those pins, unless one was given.
    """
    guard_direct_runner()  # this process's FnApiRunner only; harmless where another runner is used
    local = is_local_runner(runner)
    args = [f"--runner={'webclip.directrunner.LocalRunner' if local else runner}", *extra]
    if local:
        args += [f"--direct_num_workers={num_workers}", f"--direct_running_mode={running_mode}",
                 "--default_sdk_harness_log_level=WARNING"]
    elif worker_extras and not any(a.startswith("--requirements_file") for a in extra):
        path = Path(tempfile.mkdtemp(prefix="webclip-workers-")) / "requirements.txt"
        path.write_text("\n".join(worker_requirements(worker_extras)) + "\n")
        args.append(f"--requirements_file={path}")
    options = PipelineOptions(args)
    FileSystems.set_options(options)  # the launcher's own reads and listings use the workers' filesystem options
    return options


DROP_EXAMPLES = "drop_examples"  # the tagged output carrying (reason, (rank, example))


class CountingDoFn(beam.DoFn):
    """A DoFn that counts drops as Beam counters named ``<step>/<reason>``.

    ``drop(..., example=row)`` also returns a ``DROP_EXAMPLES`` tagged output for the DoFn to yield
    (``yield from self.drop(reason, example=row)``); ``Counted`` collects them into a ``DropExampleSink``.
    """

    def __init__(self) -> None:
        self._counters: dict[str, Any] = {}

    def drop(self, reason: str, n: int = 1, example: dict[str, Any] | None = None) -> list[Any]:
        """Count ``n`` dropped records; the example, if any, as a tagged output to yield."""
        if reason not in self._counters:
            self._counters[reason] = Metrics.counter(NAMESPACE, reason)
        self._counters[reason].inc(n)
        if example is None:
            return []
        return [beam.pvalue.TaggedOutput(DROP_EXAMPLES, (reason, (example_rank(example), example)))]


class DropExamplesFn(beam.CombineFn):
    """(reason, (rank, example)) -> ``DropExamples``: per reason the k smallest ranks (lifted before the shuffle)."""

    def __init__(self, k: int):
        self.k = k

    def create_accumulator(self) -> DropExamples:
        return DropExamples(self.k)

    def add_input(self, acc: DropExamples, item: tuple[str, tuple[str, dict[str, Any]]]) -> DropExamples:
        reason, (rank, example) = item
        acc.add(reason, example, rank)
        return acc

    def merge_accumulators(self, accs) -> DropExamples:
        out = DropExamples(self.k)
        for acc in accs:
            out.merge(acc)
        return out

    def extract_output(self, acc: DropExamples) -> DropExamples:
        return acc


class DropExampleSink:
    """Collects the drop examples of several counted steps, then writes them as one JSON file."""

    def __init__(self) -> None:
        self.parts: list[Any] = []

    def counted(self, fn: CountingDoFn, *args: Any, **kwargs: Any) -> Counted:
        """``beam.ParDo(fn, ...)`` whose drop examples come here."""
        return Counted(self, fn, *args, **kwargs)

    def write(self, pipeline: Any, path: str, unit: str, k: int = EXAMPLES_PER_REASON) -> None:
        """Combine every example offered into ``path`` (``drop_examples.json``), written atomically."""
        import json

        def dump(examples: DropExamples) -> None:
            write_atomically(path, json.dumps(drop_examples_record(examples, unit), sort_keys=True, indent=1,
                                              ensure_ascii=False, default=str).encode())

        (tuple(self.parts) | "FlattenDropExamples" >> beam.Flatten(pipeline=pipeline)
         | "TopDropExamples" >> beam.CombineGlobally(DropExamplesFn(k))
         | "WriteDropExamples" >> beam.Map(dump))


class Counted(beam.PTransform):
    """A ParDo of a ``CountingDoFn``: returns its kept rows, hands its drop examples to the sink."""

    def __init__(self, sink: DropExampleSink, fn: CountingDoFn, *args: Any, **kwargs: Any):
        super().__init__()
        self.sink, self.fn, self.args, self.kwargs = sink, fn, args, kwargs

    def expand(self, rows):
        out = rows | beam.ParDo(self.fn, *self.args, **self.kwargs).with_outputs(DROP_EXAMPLES, main="kept")
        self.sink.parts.append(out[DROP_EXAMPLES])
        return out.kept


class CountKeysFn(beam.DoFn):
    """Count the keys ``keys_of(element)`` returns within a bundle; emit each ``(key, count)`` when it ends.

    Memory: one int per distinct key of the bundle.
    """

    def __init__(self, keys_of: Callable[[Any], Iterable[Any]]):
        self.keys_of = keys_of

    def start_bundle(self) -> None:
        self.counts: dict[Any, int] = {}

    def process(self, element: Any):
        counts = self.counts
        for key in self.keys_of(element):
            counts[key] = counts.get(key, 0) + 1
        return ()

    def finish_bundle(self):
        for kv in self.counts.items():
            yield GlobalWindows.windowed_value(kv)
        self.counts = {}


class CountKeys(beam.PTransform):
    """``(key, count)`` of every key ``keys_of`` gives over the collection (global window).

    Counted per bundle first: a row with 20 matched entries costs one dict update each, not 20 Beam elements,
    and a hot key reaches the shuffle once per bundle (no hot-key fan-out needed).
    """

    def __init__(self, keys_of: Callable[[Any], Iterable[Any]]):
        super().__init__()
        self.keys_of = keys_of

    def expand(self, elements):
        return (elements | "CountInBundle" >> beam.ParDo(CountKeysFn(self.keys_of))
                | "Sum" >> beam.CombinePerKey(sum))


def collect_counters(result: Any) -> dict[str, int]:
    """The pipeline's ``<step>/<reason>`` counters."""
    from apache_beam.metrics.metric import MetricsFilter

    out: dict[str, int] = {}
    for c in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + int(c.committed or c.attempted or 0)
    return out


def range_bucket(uid: str, parts_n: int) -> int:
    """Part index by uid range, so parts read in order are globally sorted by uid."""
    return int(uid[:8], 16) * parts_n // 2**32


def write_atomically(path: str, data: bytes) -> None:
    """Write through Beam's filesystems to a temporary name, then rename (local, gs://, s3://)."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with FileSystems.create(tmp) as f:
        f.write(data)
    FileSystems.rename([tmp], [path])


def scratch_path(options: PipelineOptions, under: str, name: str) -> str:
    """A fresh path for one pipeline's intermediate file, which its workers and the launcher both reach.

    Under the pipeline's ``--temp_location`` when given, else under ``under`` (the stage's output folder),
    on any Beam filesystem; never the launcher's temporary directory, which remote workers cannot see.
    """
    temp = options.get_all_options().get("temp_location")
    return FileSystems.join(temp or under, f"_scratch-{name}-{uuid.uuid4().hex}.json")


def reachable_copy(path: str, options: PipelineOptions, under: str) -> str:
    """``path`` as remote workers can read it: a local file goes to a scratch path (the caller deletes it)
    when the pipeline's ``--temp_location`` or ``under`` is remote; otherwise the path itself."""
    if "://" in path or "://" not in (options.get_all_options().get("temp_location") or under):
        return path
    copy = scratch_path(options, under, Path(path).stem)
    write_atomically(copy, Path(path).read_bytes())
    return copy


def write_json(value: Any, path: str) -> None:
    """Write ``value`` as JSON to ``path`` (any Beam filesystem), atomically: a worker's side of a scratch file."""
    write_atomically(path, json.dumps(value).encode())


def take_json(path: str) -> Any:
    """Read a JSON scratch file the workers wrote, then delete it: the launcher's side."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        value = json.loads(f.read().decode())
    FileSystems.delete([path])
    return value


MAX_PART_ROWS = 50_000  # rows per Parquet part, about: what one worker sorts in memory (about 0.4 GB for curated rows)


def parts_for(n_rows: int, parts_n: int, max_part_rows: int = MAX_PART_ROWS) -> int:
    """How many uid-range parts ``n_rows`` rows go to: ``parts_n``, more when a part would pass ``max_part_rows``."""
    return max(parts_n, -(-n_rows // max_part_rows))


class WritePartFn(beam.DoFn):
    """Write one uid-range bucket as a sorted Parquet part (a bucket holds about ``MAX_PART_ROWS`` rows at most)."""

    def __init__(self, folder: str, schema_name: str, sort_by: tuple[str, ...]):
        self.folder, self.schema_name, self.sort_by = folder, schema_name, sort_by

    def process(self, kv: tuple[int, Any]):
        rows = sorted(kv[1], key=lambda r: row_sort_key(r, self.sort_by))
        data = table_bytes(table_from_rows(rows, SCHEMAS[self.schema_name]))
        write_atomically(FileSystems.join(self.folder, part_name(kv[0])), data)
        yield len(rows)


class WriteParts(beam.PTransform):
    """Range-partition rows by uid and write each part sorted (same rows -> same bytes).

    ``parts_n`` parts, or more when the rows are many: the row count (a side input) sizes the buckets so
    that no worker holds more than about ``max_part_rows`` rows; parts read in order are sorted by uid.
    """

    def __init__(self, folder: str, schema_name: str, parts_n: int, sort_by: tuple[str, ...] = ("uid",),
                 max_part_rows: int = MAX_PART_ROWS):
        super().__init__()
        self.folder, self.schema_name, self.parts_n, self.sort_by = folder, schema_name, parts_n, sort_by
        self.max_part_rows = max_part_rows

    def expand(self, rows):
        n, most = self.parts_n, self.max_part_rows
        total = rows | "CountRows" >> beam.combiners.Count.Globally()
        return (rows | "Bucket" >> beam.Map(lambda r, t: (range_bucket(r["uid"], parts_for(t, n, most)), r),
                                            t=beam.pvalue.AsSingleton(total))
                | "GroupPart" >> beam.GroupByKey()
                | "Write" >> beam.ParDo(WritePartFn(self.folder, self.schema_name, self.sort_by)))


def list_parts(folder: str) -> list[str]:
    """``part-*.parquet`` under a folder on any Beam filesystem, sorted."""
    pattern = FileSystems.join(str(folder), PART_GLOB)
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


def count_rows_any(paths: list[str]) -> int:
    """Rows of Parquet files on any Beam filesystem, from their footers."""
    import pyarrow.parquet as pq

    total = 0
    for p in paths:
        with FileSystems.open(p) as f:
            total += pq.ParquetFile(f).metadata.num_rows
    return total


def table_summary(folder: str) -> dict[str, Any]:
    """``stats.json``'s note on one table folder: its rows and columns, read from the part footers (any filesystem)."""
    import pyarrow.parquet as pq

    paths = list_parts(folder)
    columns: list[str] = []
    if paths:
        with FileSystems.open(paths[0]) as f:
            columns = pq.ParquetFile(f).schema_arrow.names
    return {"folder": folder.rstrip("/").rsplit("/", 1)[-1], "rows": count_rows_any(paths), "columns": columns}

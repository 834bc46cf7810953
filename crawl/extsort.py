"""Candidates to sorted Parquet parts in bounded memory: an external merge sort through runs on disk.

Rows are cut into sorted runs of at most ``rows_per_run`` (JSON lines in a work folder), the runs merged
(``heapq.merge``, at most ``fan_in`` files open at once, more passes if there are more runs) and the merged
stream written part by part, row group by row group. The order and the bytes are those of sorting every row in
memory and writing each part with ``webclip.parquet.write_rows``: by (uid, page_url), ties by the whole row.

Memory: one run (``rows_per_run`` rows) while cutting runs; while writing, ``fan_in`` buffered readers plus one
row group as Arrow columns (``ROW_GROUP_SIZE`` rows) and ``batch_rows`` rows as Python dicts.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Iterable, Iterator
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from webclip.parquet import ROW_GROUP_SIZE, part_name, parts, row_sort_key, write_rows
from webclip.runfolder import atomic_file

SORT_BY = ("uid", "page_url")
FAN_IN = 64  # runs merged at once: open files and read buffers
BATCH_ROWS = 4096  # rows turned from dicts into Arrow at a time
# webclip.parquet.table_bytes's writer settings (the tests hold the two writers to the same bytes)
WRITER_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 3, "use_dictionary": True,
                                  "write_statistics": True, "store_schema": True}


def arrow_pool() -> pa.MemoryPool:
    """Arrow buffers from the C allocator: with the crawl's pinned mmap threshold (``allocator.py``) a freed row
    group goes back to the system; pyarrow's default mimalloc pool kept 15 to 30 MB more at the write's peak."""
    return pa.system_memory_pool()


Keyed = tuple[tuple[Any, ...], dict[str, Any]]  # (row_sort_key, row)


def cut_runs(rows: Iterable[dict[str, Any]], folder: Path, rows_per_run: int) -> list[Path]:
    """Sorted runs of at most ``rows_per_run`` rows each, written to ``folder``; returns their paths in order.

    A run line is the JSON that ends the row's sort key (plain ASCII: newlines inside values are escaped).
    """
    folder.mkdir(parents=True, exist_ok=True)
    runs: list[Path] = []
    it = iter(rows)
    while keys := sorted(row_sort_key(r, SORT_BY) for r in islice(it, rows_per_run)):
        runs.append(write_run(folder / f"run-{len(runs):06d}.jsonl", (k[-1] for k in keys)))
    return runs


def write_run(path: Path, lines: Iterable[str]) -> Path:
    """Write run lines (plain ASCII JSON: newlines inside values are escaped) to ``path``."""
    with open(path, "w", encoding="ascii") as f:
        for line in lines:
            f.write(line)
            f.write("\n")
    return path


def read_run(path: Path) -> Iterator[Keyed]:
    """The (sort key, row) pairs of one run, in its order."""
    with open(path, encoding="ascii") as f:
        for line in f:
            line = line[:-1]
            row = json.loads(line)
            yield (row["uid"], row["page_url"], line), row


def merged(runs: list[Path], fan_in: int = FAN_IN) -> Iterator[dict[str, Any]]:
    """Rows of every run in sort order; with more than ``fan_in`` runs, earlier passes merge them in groups."""
    runs = list(runs)
    for n in itertools.count():
        if len(runs) <= fan_in:
            break
        group, runs = runs[:fan_in], runs[fan_in:]
        out = group[0].with_name(f"run-m{n:06d}.jsonl")
        runs.append(write_run(out, (k[-1] for k, _ in heapq.merge(*map(read_run, group), key=itemgetter(0)))))
        for p in group:
            p.unlink()
    for _, row in heapq.merge(*map(read_run, runs), key=itemgetter(0)):
        yield row


def row_group(rows: Iterator[dict[str, Any]], schema: pa.Schema, size: int, batch_rows: int) -> pa.Table | None:
    """The next ``size`` rows as a table of one-chunk columns (the writer's bytes depend on chunking); None when done.

    Converted ``batch_rows`` dicts at a time, then joined column by column: one column's copy at a time.
    """
    pool, n = arrow_pool(), 0
    chunks: dict[str, list[pa.Array]] = {f.name: [] for f in schema}
    while n < size and (batch := list(islice(rows, min(batch_rows, size - n)))):
        for f in schema:
            chunks[f.name].append(pa.array([r.get(f.name) for r in batch], f.type, memory_pool=pool))
        n += len(batch)
    if not n:
        return None
    return pa.Table.from_arrays([pa.concat_arrays(chunks.pop(f.name), memory_pool=pool) for f in schema],
                                schema=schema)


def write_part(path: Path, rows: Iterator[dict[str, Any]], schema: pa.Schema, row_group_size: int,
               batch_rows: int) -> int:
    """Write the rows (already sorted) to one Parquet file atomically; returns the rows written."""
    n = 0
    with atomic_file(path) as f, pq.ParquetWriter(f, schema, memory_pool=arrow_pool(), **WRITER_OPTIONS) as writer:
        while (table := row_group(rows, schema, row_group_size, batch_rows)) is not None:
            writer.write_table(table, row_group_size=row_group_size)
            n += table.num_rows
    return n


def clear_parts(folder: Path) -> None:
    """Remove the parts (and half-written temporary parts) of an earlier attempt."""
    for old in [*parts(folder), *folder.glob(".part-*.tmp")]:
        Path(old).unlink()


def write_sorted_parts(rows: Iterable[dict[str, Any]], folder: Path, work: Path, schema: pa.Schema,
                       rows_per_part: int, rows_per_run: int, fan_in: int = FAN_IN,
                       row_group_size: int = ROW_GROUP_SIZE, batch_rows: int = BATCH_ROWS) -> int:
    """Sort ``rows`` through runs in ``work`` (cleared first and after) into ``folder``'s parts; returns rows."""
    for old in work.glob("run-*.jsonl") if work.is_dir() else ():
        old.unlink()
    runs = cut_runs(rows, work, rows_per_run)
    folder.mkdir(parents=True, exist_ok=True)
    clear_parts(folder)
    stream, written, i = merged(runs, fan_in), 0, 0
    while True:
        part = islice(stream, rows_per_part)
        first = next(part, None)
        if first is None:
            break
        written += write_part(folder / part_name(i), _chain(first, part), schema, row_group_size, batch_rows)
        i += 1
    if i == 0:  # no rows: one empty part, as writing them all in memory makes
        write_rows(folder / part_name(0), [], schema, SORT_BY, row_group_size)
    for p in work.glob("run-*.jsonl"):
        p.unlink()
    return written


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest

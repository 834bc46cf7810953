"""Deterministic Parquet: fixed schema, sort order, row groups and compression; atomic writes."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from webclip import storage
from webclip.layout import PART_GLOB, part_name  # noqa: F401  (part_name: re-exported for writers)
from webclip.records import table_from_rows

ROW_GROUP_SIZE = 50_000


def table_bytes(table: pa.Table, row_group_size: int = ROW_GROUP_SIZE) -> bytes:
    """Serialise a table to Parquet bytes with fixed settings (same table -> same bytes)."""
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=row_group_size, compression="zstd", compression_level=3,
                   use_dictionary=True, write_statistics=True, store_schema=True)
    return buf.getvalue()


def row_sort_key(row: dict[str, Any], sort_by: tuple[str, ...]) -> tuple:
    """Sort by ``sort_by``, then by the whole row, so ties never depend on arrival order."""
    return (*(row[k] for k in sort_by), json.dumps(row, sort_keys=True, default=str))


def write_rows(path: str | Path, rows: list[dict[str, Any]], schema: pa.Schema,
               sort_by: tuple[str, ...] = ("uid",), row_group_size: int = ROW_GROUP_SIZE) -> int:
    """Sort ``rows`` by ``sort_by`` and write them atomically; returns the row count."""
    rows = sorted(rows, key=lambda r: row_sort_key(r, sort_by))
    storage.write_bytes(path, table_bytes(table_from_rows(rows, schema), row_group_size))
    return len(rows)


def parts(folder: str | Path) -> list[Path] | list[str]:
    """The Parquet parts of a folder (or object-store prefix), in order."""
    if storage.is_remote(folder):
        return storage.glob(folder, PART_GLOB)
    return sorted(Path(folder).glob(PART_GLOB))


def count_rows(paths: list[Path] | list[str]) -> int:
    """Rows in Parquet files, read from their footers."""
    total = 0
    for p in paths:
        with storage.open_read(p) as f:
            total += pq.ParquetFile(f).metadata.num_rows
    return total


def iter_rows(paths: list[Path] | list[str], columns: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Stream rows of Parquet files (local or remote) one batch at a time."""
    for p in paths:
        with storage.open_read(p) as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=10_000, columns=columns):
                yield from batch.to_pylist()

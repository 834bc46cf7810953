"""Where every table of a run lives: the one place that maps a table name to its folder.

A stage folder ``<run>/<stage>/`` keeps bookkeeping only (``config.json``, ``stats.json``, ``_SUCCESS``,
``_progress``, ``_work``, small side files such as ``balance_thresholds.json``, ``DATASET.md``, ``card/``).
Each table has a folder of its own holding only Parquet parts of one schema, so pandas, pyarrow.dataset,
duckdb and Hugging Face ``datasets`` open the folder as it is; the final tars have theirs, named so that
``load_dataset("webdataset", data_dir=final)`` finds a ``train`` and a ``validation`` split.

A stage may keep its tables at a remote ``output_path`` (``gs://``, ``s3://``); it records that base as
``output`` in its ``stats.json`` and ``table_path`` follows it. Paths are strings: local paths or URLs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from webclip import storage
from webclip.runfolder import StageConflict

LAYOUT_VERSION = 2  # 1: webclip 0.1, tables inside the stage folder; 2: a folder per table
PART_GLOB = "part-*.parquet"


@dataclass(frozen=True)
class Table:
    """A data folder: the stage that writes it, its folder inside the stage's base, what it holds."""

    stage: str
    folder: str
    kind: str = "parquet"  # "parquet": only part-*.parquet of one schema; "tar": WebDataset shards


TABLES: dict[str, Table] = {
    "candidates": Table("candidates", "data"),
    "curated": Table("curated", "data"),
    "pool": Table("curated", "pool"),  # every matched pair with its balancing decision (``kept``)
    "query_counts": Table("curated", "query_counts"),  # per entry: count before and after balancing
    "samples": Table("shards", "samples"),  # one row per final sample: its split and tar
    "final": Table("shards", "final", "tar"),  # train-NNNNN.tar, validation-NNNNN.tar, sizes.json, manifest.json
}
JOBS = "jobs"  # shards' download jobs (work folder beside final/, not a table)

# manifest.json split -> the split name Hugging Face reads from tar file names
SPLIT_NAMES = {"train": "train", "val": "validation"}


class OldLayout(StageConflict):
    """A stage folder written by webclip 0.1, with its tables inside it (the CLI prints it as one line)."""


def part_name(i: int) -> str:
    """File name of Parquet part ``i`` of a table."""
    return f"part-{i:05d}.parquet"


def tar_name(split: str, i: int) -> str:
    """File name of final shard ``i`` of a manifest split (``train`` / ``val``): ``train-00000.tar``."""
    return f"{SPLIT_NAMES[split]}-{i:05d}.tar"


def tar_glob(split: str) -> str:
    """The glob matching one split's final tars."""
    return f"{SPLIT_NAMES[split]}-*.tar"


def brace_pattern(folder: str, split: str, n: int) -> str:
    """The webdataset/open_clip brace pattern for ``n`` tars of a split: ``.../train-{00000..00007}.tar``."""
    name = SPLIT_NAMES[split]
    if n == 1:
        return storage.join(folder, f"{name}-00000.tar")
    return storage.join(folder, f"{name}-{{00000..{n - 1:05d}}}.tar")


def stage_path(run: str | Path, stage: str) -> str:
    """The bookkeeping folder of a stage: ``<run>/<stage>``."""
    return storage.join(run, stage)


def stage_base(run: str | Path, stage: str) -> str:
    """Where a stage's tables are: its folder, or the remote ``output`` its ``stats.json`` recorded."""
    stats = Path(run) / stage / "stats.json"
    if not storage.is_remote(run) and stats.exists():
        recorded = json.loads(stats.read_text()).get("output")
        if recorded and storage.is_remote(recorded):
            return str(recorded)
    return stage_path(run, stage)


def table_in(base: str | Path, table: str) -> str:
    """A table's folder under a stage base (the stage folder or a remote ``output_path``)."""
    return storage.join(base, TABLES[table].folder)


def table_path(run: str | Path, table: str) -> str:
    """A table's folder in a run, e.g. ``table_path(run, "pool")`` -> ``<run>/curated/pool``."""
    return table_in(stage_base(run, TABLES[table].stage), table)


def jobs_in(base: str | Path) -> str:
    """The shards stage's download jobs folder under its base."""
    return storage.join(base, JOBS)


def old_layout_files(stage_folder: str | Path) -> list[str]:
    """Files that only a webclip 0.1 run folder has in this stage folder (empty: current layout or absent)."""
    folder = Path(stage_folder)
    if storage.is_remote(stage_folder) or not folder.is_dir():
        return []
    found = [*folder.glob(PART_GLOB), *folder.glob("query_counts.parquet"), *(folder / "final").glob("[0-9]*.tar"),
             *(folder / "final").glob("val-*.tar"), *(folder / "final").glob("samples.parquet")]
    return sorted(str(p) for p in found)


def check_layout(stage_folder: str | Path) -> None:
    """Refuse a stage folder written by webclip 0.1 with a one-line message naming the fix."""
    old = old_layout_files(stage_folder)
    if old:
        raise OldLayout(f"{stage_folder} was written by webclip < 0.2 (tables inside the stage folder, e.g. "
                        f"{Path(old[0]).name}): redo that stage with --force, or use a new --run")

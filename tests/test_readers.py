"""Every data folder of a real run opens as it is in pandas, pyarrow.dataset, duckdb and Hugging Face datasets.

The readers are the reference: a folder passes when each of them reads it without options and finds the
rows and columns the stage's ``stats.json`` reports (and the record schemas of ``webclip/records.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from tests.conftest import REPO
from webclip.layout import TABLES, table_path
from webclip.records import CANDIDATE_SCHEMA, CURATED_SCHEMA, FINAL_SAMPLE_SCHEMA, POOL_SCHEMA

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local folders only: never ask the Hub
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

PARQUET_TABLES = [name for name, t in TABLES.items() if t.kind == "parquet"]
RECORD_SCHEMAS = {"candidates": CANDIDATE_SCHEMA, "curated": CURATED_SCHEMA, "pool": POOL_SCHEMA,
                  "samples": FINAL_SAMPLE_SCHEMA}


@pytest.fixture(scope="module")
def run(preset_run: Path) -> Path:
    """A small real run: every stage of the test sample web (configs/test.json)."""
    return preset_run


def expected(run: Path, table: str) -> tuple[int, list[str]]:
    """Rows and columns of a table as its stage's stats.json reports them."""
    stage = TABLES[table].stage
    stats = json.loads((run / stage / "stats.json").read_text())
    note = stats.get("tables", {}).get(table)
    if note is None:  # the crawl reports its rows as ``kept``; its columns are the Candidate record's
        return stats["kept"], CANDIDATE_SCHEMA.names
    return note["rows"], note["columns"]


def test_stats_agree_with_the_record_schemas_and_the_accounting(run: Path) -> None:
    curated = json.loads((run / "curated" / "stats.json").read_text())
    shards = json.loads((run / "shards" / "stats.json").read_text())
    assert curated["tables"]["curated"]["rows"] == curated["kept"] > 0
    assert curated["tables"]["pool"]["rows"] == curated["matched"] >= curated["kept"]
    assert shards["tables"]["samples"]["rows"] == shards["kept"] > 0
    for table, schema in RECORD_SCHEMAS.items():
        assert expected(run, table)[1] == schema.names, table
    assert curated["tables"]["query_counts"]["columns"] == ["entry_id", "entry", "count_before", "count_after"]


@pytest.mark.parametrize("table", PARQUET_TABLES)
def test_pandas_reads_the_folder(run: Path, table: str) -> None:
    import pandas as pd

    rows, columns = expected(run, table)
    df = pd.read_parquet(table_path(run, table))
    assert len(df) == rows and list(df.columns) == columns


@pytest.mark.parametrize("table", PARQUET_TABLES)
def test_pyarrow_dataset_reads_the_folder(run: Path, table: str) -> None:
    import pyarrow.dataset as ds

    rows, columns = expected(run, table)
    data = ds.dataset(table_path(run, table), format="parquet")
    assert data.count_rows() == rows and data.schema.names == columns
    if table in RECORD_SCHEMAS:
        assert data.schema.remove_metadata().equals(RECORD_SCHEMAS[table]), table


@pytest.mark.parametrize("table", PARQUET_TABLES)
def test_duckdb_reads_the_folder(run: Path, table: str) -> None:
    import duckdb

    rows, columns = expected(run, table)
    source = f"read_parquet('{table_path(run, table)}/*.parquet')"
    con = duckdb.connect()
    assert con.execute(f"SELECT count(*) FROM {source}").fetchone() == (rows,)
    assert [d[0] for d in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()] == columns


@pytest.mark.parametrize("table", PARQUET_TABLES)
def test_hugging_face_reads_the_folder(run: Path, table: str, tmp_path: Path) -> None:
    import datasets

    rows, columns = expected(run, table)
    data = datasets.load_dataset("parquet", data_dir=table_path(run, table), cache_dir=str(tmp_path))
    assert list(data) == ["train"]
    assert data["train"].num_rows == rows and data["train"].column_names == columns


def test_hugging_face_finds_train_and_validation_in_the_final_shards(run: Path, tmp_path: Path) -> None:
    import datasets

    final = table_path(run, "final")
    manifest = json.loads((Path(final) / "manifest.json").read_text())
    counts = {"train": manifest["totals"]["train"], "validation": manifest["totals"]["val"]}
    assert counts["train"] > 0 and counts["validation"] > 0
    by_builder = datasets.load_dataset("webdataset", data_dir=final, cache_dir=str(tmp_path / "a"))
    by_card = datasets.load_dataset(final, cache_dir=str(tmp_path / "b"))  # README.md's configs; counts verified
    for data in (by_builder, by_card):
        assert {split: d.num_rows for split, d in data.items()} == counts
        assert {"jpg", "txt", "json", "__key__"} <= set(data["train"].column_names)
    keys = set(by_builder["train"]["__key__"]) | set(by_builder["validation"]["__key__"])
    samples = Path(table_path(run, "samples"))
    import pyarrow.parquet as pq

    assert keys == set(pq.read_table(samples, columns=["key"])["key"].to_pylist())


def test_final_shards_suit_open_clip(run: Path) -> None:
    from braceexpand import braceexpand

    final = Path(table_path(run, "final"))
    manifest = json.loads((final / "manifest.json").read_text())
    assert len(manifest["train"]) >= 8  # min_shards (default 8): open_clip's 4 workers on 2 GPUs
    sizes = json.loads((final / "sizes.json").read_text())
    assert sizes == {e["name"]: e["samples"] for e in manifest["train"] + manifest["val"]}
    card = (run / "shards" / "DATASET.md").read_text()
    command = card.split("```sh\n", 1)[1].split("```", 1)[0]
    args = command.replace("\\\n", " ").split()
    assert args[:3] == ["python", "-m", "open_clip_train.main"]
    value = {a: args[i + 1].strip("'") for i, a in enumerate(args) if a.startswith("--") and i + 1 < len(args)}
    assert [Path(p) for p in braceexpand(value["--train-data"])] == [final / e["name"] for e in manifest["train"]]
    assert [Path(p) for p in braceexpand(value["--val-data"])] == [final / e["name"] for e in manifest["val"]]
    assert int(value["--train-num-samples"]) == manifest["totals"]["train"]
    assert int(value["--val-num-samples"]) == manifest["totals"]["val"]
    assert value["--dataset-type"] == "webdataset" and int(value["--workers"]) <= len(manifest["train"])
    # open_clip sizes a webdataset split from sizes.json in the tars' folder, by tar base name; then it streams them.
    import webdataset as wds

    shards = list(braceexpand(value["--train-data"]))
    assert sum(sizes[Path(p).name] for p in shards) == int(value["--train-num-samples"])
    assert sum(1 for _ in wds.WebDataset(shards, shardshuffle=False)) == manifest["totals"]["train"]
    readme = (final / "README.md").read_text()
    assert readme.startswith("---\n") and "license: other" in readme


def test_a_run_folder_from_webclip_0_1_is_refused_in_one_line(tmp_path: Path) -> None:
    old = tmp_path / "old"
    (old / "candidates").mkdir(parents=True)
    pa_table = pa.table({"uid": ["a"]})
    import pyarrow.parquet as pq

    pq.write_table(pa_table, old / "candidates" / "part-00000.parquet")
    (old / "candidates" / "stats.json").write_text('{"in": 1, "kept": 1, "dropped": {}}')
    (old / "candidates" / "_SUCCESS").write_text("")
    r = subprocess.run([sys.executable, "-m", "webclip.cli", "curate", "--run", str(old)], capture_output=True,
                       text=True, timeout=120, cwd=REPO)
    assert r.returncode == 2
    [line] = r.stderr.strip().splitlines()
    assert "webclip < 0.2" in line and "--force" in line and "candidates" in line
    assert not (old / "curated").exists()


def test_every_webclip_0_1_table_file_is_recognised_and_the_current_layout_has_none(run: Path, tmp_path: Path) -> None:
    from webclip.layout import old_layout_files

    for stage in ("candidates", "curated", "shards"):
        assert old_layout_files(run / stage) == [], stage
    for name in ("part-00003.parquet", "query_counts.parquet", "final/00000.tar", "final/val-00000.tar",
                 "final/samples.parquet"):
        folder = tmp_path / name.replace("/", "_")
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")
        assert old_layout_files(folder) == [str(folder / name)], name

"""Smoke run of every stage on a reduced sample web, with the accounting identity and determinism."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_webclip
from webclip.layout import table_path
from webclip.stats import check_identity


def _digests(folder: Path, pattern: str) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob(pattern))}


@pytest.mark.slow
def test_every_stage_end_to_end_and_deterministic(preset_run: Path, tmp_path: Path) -> None:
    run, cfg = preset_run, preset_run.parent / "test.json"  # crawl to eval, run by the fixture
    for folder in ("candidates", "curated", "shards", "train", "eval"):
        assert (run / folder / "_SUCCESS").exists(), folder
        check_identity(json.loads((run / folder / "stats.json").read_text()))
    manifest = json.loads((run / "shards" / "final" / "manifest.json").read_text())
    assert manifest["totals"]["train"] > 50 and manifest["totals"]["val"] > 0
    assert len(manifest["train"]) >= 8  # min_shards: enough for open_clip's 4 loader workers on 2 GPUs
    shards = json.loads((run / "shards" / "stats.json").read_text())
    assert shards["dropped"].get("decontam/exact_eval_overlap", 0) >= 1  # the planted held-out leaks
    results = json.loads((run / "eval" / "results.json").read_text())
    assert 0 <= results["zero_shot"]["top1"] <= 1 and results["retrieval"]["n"] == manifest["totals"]["val"]
    # A done stage with the same config is skipped.
    run_webclip("curate", "--run", str(run), "--config", str(cfg))
    # The balancing ablation: both arms, two seeds, same number of training samples.
    run_webclip("ablation", "--run", str(run), "--config", str(cfg))
    ablation = json.loads((run / "ablation" / "ablation.json").read_text())
    assert set(ablation["arms"]) == {"balanced", "unbalanced"} and all(len(a["runs"]) == 2 for a in ablation["arms"].values())
    unbalanced = json.loads((run / "ablation" / "unbalanced-seed0" / "curated" / "stats.json").read_text())
    assert unbalanced["kept"] == json.loads((run / "curated" / "stats.json").read_text())["kept"]
    trained = {json.loads((run / "ablation" / f"{arm}-seed0" / "train" / "stats.json").read_text())["kept"]
               for arm in ("balanced", "unbalanced")}
    assert len(trained) == 1
    # Same inputs + config + seed, in a fresh process with another hash seed and another DirectRunner
    # mode (one in-memory worker instead of two processes) -> identical bytes.
    again = tmp_path / "again"
    shutil.copytree(run / "candidates", again / "candidates")
    shutil.copytree(run / "sampleweb", again / "sampleweb")
    run_webclip("curate", "--run", str(again), "--config", str(cfg), "--direct-running-mode", "in_memory",
             "--direct-num-workers", "1", seed="123")
    run_webclip("shards", "--run", str(again), "--config", str(cfg), seed="123")
    for table in ("curated", "pool", "query_counts", "samples", "final"):
        first = _digests(Path(table_path(run, table)), "*")
        assert first and first == _digests(Path(table_path(again, table)), "*"), table

"""Dataflow readiness: the curation pipeline translates for DataflowRunner, and the shipped sdist is complete."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

import apache_beam as beam
import pytest

from tests.conftest import REPO
from webclip.beamio import pipeline_options
from webclip.pipelines.config import CurateConfig
from webclip.pipelines.curate import build_pipeline

pytest.importorskip("apache_beam.runners.dataflow.dataflow_runner", reason="apache-beam[gcp] is not installed")


def test_curate_translates_for_dataflow_without_submitting() -> None:
    cfg = CurateConfig(runner="DataflowRunner", pipeline_args=[
        "--project=webclip-test", "--region=us-central1", "--temp_location=gs://webclip-test/tmp",
        f"--setup_file={REPO / 'setup.py'}", "--dry_run=True"])
    p = beam.Pipeline(options=pipeline_options(cfg.runner, 2, "multi_processing", cfg.pipeline_args))
    build_pipeline(p, ["gs://webclip-test/run/candidates/part-00000.parquet"], cfg,
                   "gs://webclip-test/run/queries/queries.json", "gs://webclip-test/run/curated")
    result = p.run()
    job = result.job.proto
    names = {t.name for t in job.steps} if job.steps else set()
    assert result.state == "DONE"
    assert job is not None and (names or result.job.proto_pipeline is not None)


def test_sdist_ships_every_module_and_preset_and_no_torch(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(tmp_path), str(REPO)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (sdist,) = tmp_path.glob("webclip-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        pkg_info = tar.extractfile(next(m for m in tar.getmembers() if m.name.endswith("/PKG-INFO"))).read().decode()
    for module in sorted((REPO / "pipelines").glob("*.py")) + sorted((REPO / "webclip").glob("*.py")):
        assert str(module.relative_to(REPO)) in names, module
    assert "setup.py" in names and "configs/demo.json" in names and "configs/model/demo.json" in names
    requires = [line for line in pkg_info.splitlines() if line.startswith("Requires-Dist:")]
    core = [line for line in requires if "extra ==" not in line]
    assert not any(re.search(r"\btorch\b", line) for line in core), core
    assert any("apache-beam" in line for line in core)


def test_remote_workers_get_the_pinned_extras_their_stage_needs() -> None:
    from webclip.crawl.config import CrawlConfig
    from webclip.shards.config import ShardsConfig

    def requirements(cfg) -> list[str]:  # noqa: ANN001
        path = cfg.beam_options().get_all_options()["requirements_file"]
        return Path(path).read_text().split() if path else []

    shards = requirements(ShardsConfig(runner="DataflowRunner", output_path="gs://bucket/run/shards"))
    assert "img2dataset==1.47.0" in shards and any(r.startswith("gcsfs==") for r in shards)
    assert not any(r.startswith("torch") for r in shards)  # the train extra stays off the workers
    assert any(r.startswith("fastwarc==") for r in requirements(CrawlConfig(source="cc", runner="DataflowRunner")))
    assert requirements(CurateConfig(runner="DataflowRunner")) == []  # core dependencies suffice
    assert requirements(ShardsConfig()) == []  # local runs install nothing
    mine = ShardsConfig(runner="DataflowRunner", pipeline_args=["--requirements_file=mine.txt"])
    assert mine.beam_options().get_all_options()["requirements_file"] == "mine.txt"

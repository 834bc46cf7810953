"""Config dataclasses, flag overrides and the CLI's error contract."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from webclip.config import ConfigError, build
from webclip.crawl.config import CrawlConfig


def test_file_section_then_flags_override() -> None:
    cfg = build(CrawlConfig, {"max_pages": 10, "seeds": ["http://a/"]}, {"max_pages": 3})
    assert cfg.max_pages == 3 and cfg.seeds == ["http://a/"]


@pytest.mark.parametrize("section", [{"max_pagez": 1}, {"max_pages": "ten"}, {"respect_robots": 1}, {"scope": "planet"}])
def test_bad_config_is_refused(section: dict) -> None:
    with pytest.raises(ConfigError):
        build(CrawlConfig, section)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "webclip.cli", *args], capture_output=True, text=True, timeout=120)


def test_cli_errors_are_one_line_exit_2(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"crawl": {"nope": 1}}))
    for args in (["crawl", "--run", str(tmp_path / "r"), "--config", str(bad)],
                 ["curate", "--run", str(tmp_path / "r")],
                 ["crawl", "--run", str(tmp_path / "r"), "--config", str(tmp_path / "missing.json")],
                 ["frobnicate"]):
        r = _cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_installed_namespace_only() -> None:
    r = subprocess.run([sys.executable, "-c", "import model"], capture_output=True, text=True, cwd="/")
    assert r.returncode != 0
    r = subprocess.run([sys.executable, "-c", "import webclip.model.clip, webclip.crawl.extract"], capture_output=True, text=True, cwd="/")
    assert r.returncode == 0, r.stderr


def test_every_stage_declares_its_run_time_knobs() -> None:
    import dataclasses

    from webclip.cli import STAGES, _load
    from webclip.config import runtime_fields

    for name, spec in STAGES.items():
        cls = _load(spec.config)
        knobs = runtime_fields(cls)
        assert knobs <= {f.name for f in dataclasses.fields(cls)}, (name, knobs)
        if "progress" in {f.name for f in dataclasses.fields(cls)}:
            assert "progress" in knobs, name
        if hasattr(cls, "beam_options"):
            assert {"runner", "direct_num_workers", "pipeline_args"} <= knobs, name
    assert {"threads", "per_host_concurrency", "progress"} <= runtime_fields(_load(STAGES["shards"].config))
    assert {"concurrency", "per_host_concurrency", "progress"} <= runtime_fields(_load(STAGES["crawl"].config))
    assert "seeds" not in runtime_fields(_load(STAGES["crawl"].config))


def test_a_seed_that_is_not_a_url_is_a_one_line_error(tmp_path) -> None:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("http://127.0.0.1:9/\n")
    for seed, says in ((str(seeds), f"--seeds-file {seeds}"), ("seeds.txt", "--seeds-file seeds.txt"),
                       ("ftp://example.org/", "not an http(s) URL"), ("example.org", "not an http(s) URL"),
                       ("http://[x/", "not an http(s) URL")):
        r = _cli("crawl", "--run", str(tmp_path / "r"), "--seeds", seed)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and says in r.stderr, r.stderr
        assert not (tmp_path / "r" / "candidates").exists()  # refused before the stage folder is made


@pytest.mark.parametrize("stage", ["queries", "crawl", "curate", "shards", "train", "eval"])
def test_every_flag_says_what_it_does_and_its_default(stage: str) -> None:
    import argparse
    import dataclasses

    from webclip.cli import STAGES, _load
    from webclip.config import add_flags, field_docs

    cls = _load(STAGES[stage].config)
    docs = field_docs(cls)
    undocumented = [f.name for f in dataclasses.fields(cls) if not docs.get(f.name)]
    assert not undocumented, f"{cls.__name__} fields without a comment: {undocumented}"
    parser = argparse.ArgumentParser()
    add_flags(parser, cls)
    for action in parser._actions[1:]:
        what, _, default = (action.help or "").partition("(default: ")
        assert what.strip() and default, (action.option_strings, action.help)
    r = subprocess.run([sys.executable, "-m", "webclip.cli", stage, "--help"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "(default:" in r.stdout, r.stderr

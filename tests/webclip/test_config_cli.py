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

"""Shared fixtures: the real test data beside the repo, a small sample web served on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from webclip.sampleweb.generate import SampleWebConfig, generate
from webclip.sampleweb.serve import start, stop

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
SMALL_WEB = SampleWebConfig(seed=0, pages=120, images=300, concepts=6, heldout_per_concept=6, sections=4,
                            private_pages=3, slow_seconds=1.5)


def shared_data(sub: str) -> Path:
    """A folder of ../shared/data, or skip the test with the reason."""
    p = SHARED_DATA / sub
    if not p.exists():
        pytest.skip(f"real test data not found at {p} (../shared/data is absent)")
    return p


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def small_web(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated sample web (generated once per session)."""
    out = tmp_path_factory.mktemp("web") / "sampleweb"
    generate(SMALL_WEB, out)
    return out


@pytest.fixture()
def served_web(small_web: Path, tmp_path: Path):
    """The small sample web served on a free loopback port: (folder, base URL, port, request log)."""
    port = free_port()
    log = tmp_path / "requests.log"
    server = start(small_web, port, log)
    yield small_web, f"http://127.0.0.1:{port}/", port, log
    stop(server)


def preset_config(folder: Path, port: int) -> Path:
    """The test preset (configs/test.json) with its sample web on ``port``, written as ``folder / "test.json"``."""
    cfg = json.loads((REPO / "configs" / "test.json").read_text())
    path = folder / "test.json"
    path.write_text(json.dumps(cfg).replace("8766", str(port)))
    return path


def run_webclip(*args: str, seed: str = "0") -> None:
    """``webclip`` in a fresh process with the hash seed ``seed``; fails the test on a non-zero exit."""
    env = {**os.environ, "PYTHONHASHSEED": seed}
    r = subprocess.run([sys.executable, "-m", "webclip.cli", *args], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]


@pytest.fixture(scope="session")
def preset_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every stage, crawl to eval, of the test preset on its small sample web, built once per session (about a
    minute on 2 cores); its config is ``run.parent / "test.json"``. The tests read it; ``test_end_to_end`` also
    runs the ablation into it."""
    tmp = tmp_path_factory.mktemp("preset")
    cfg = preset_config(tmp, free_port())
    run = tmp / "run"
    for stage in ("crawl", "curate", "shards", "train", "eval"):
        run_webclip(stage, "--run", str(run), "--config", str(cfg))
    return run

"""Killed and resumed shards runs: workers die with their launcher; transient drops are retried, never sealed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.conftest import SMALL_WEB, free_port
from tests.shards.test_download import curated_run, serve, shards_config, webclip
from webclip.parquet import iter_rows

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the run's processes")


def digest(run: Path) -> dict[str, str]:
    """sha256 of every file of the stage's final output."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((run / "shards" / "final").iterdir())}


def session_members(sid: int) -> list[int]:
    """Live (not zombie) processes of session ``sid``: a launcher started with start_new_session and its workers."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            out.append(int(d.name))
    return out


def job_urls(jobs: Path, job: str) -> set[str]:
    """The image URLs of one download job."""
    return {r["image_url"] for r in iter_rows([jobs / "_inputs" / f"{job}.parquet"])}


def with_sample_web(cfg: Path, port: int) -> Path:
    """The shards config plus a sample web (SMALL_WEB) that the launcher serves on ``port`` while the stage runs."""
    data = json.loads(cfg.read_text())
    data["sample_web"] = {"serve": True, "port": port, "generate": asdict(SMALL_WEB)}
    cfg.write_text(json.dumps(data))
    return cfg


@linux_only
def test_workers_die_with_a_killed_launcher_and_a_resume_with_other_knobs_is_byte_identical(tmp_path, small_web) -> None:
    """SIGKILL only the launcher (it also serves the sample web), mid-job; resume with other threads and progress."""
    servers = [serve(f"127.0.0.{i}") for i in (31, 32, 33)]
    port = free_port()
    try:
        web = [f"http://127.0.0.1:{port}/img/{p.name}" for p in sorted((small_web / "site" / "img").glob("*.jpg"))[:20]]
        urls = web + [f"{base}/good/{h * 100 + i}.jpg" for h, (_, base) in enumerate(servers) for i in range(20)]
        full, killed = tmp_path / "full", tmp_path / "killed"
        for run in (full, killed):
            curated_run(run, urls)
            shutil.copytree(small_web, run / "sampleweb")
        cfg = with_sample_web(shards_config(tmp_path, per_host_delay=0.05, threads=2, samples_per_job=20,
                                            respect_robots=True, progress=True), port)
        r = webclip("shards", "--run", str(full), "--config", str(cfg))
        assert r.returncode == 0, r.stderr[-3000:]
        p = subprocess.Popen([sys.executable, "-m", "webclip.cli", "shards", "--run", str(killed), "--config", str(cfg)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        jobs = killed / "shards" / "jobs"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(jobs.glob("*_stats.json")):
            time.sleep(0.02)
        os.kill(p.pid, signal.SIGKILL)  # the launcher only: its Beam workers are left to notice on their own
        p.wait()
        dead_at = time.time()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and session_members(p.pid):
            time.sleep(0.05)
        left = session_members(p.pid)
        for pid in left:  # clean up what this test started before failing on it
            os.kill(pid, signal.SIGKILL)
        assert not left, f"Beam workers outlived their launcher: {left}"
        finished = sorted(s.name for s in jobs.glob("*_stats.json"))
        assert 1 <= len(finished) < 4, finished
        late = [s.name for s in jobs.glob("*_stats.json") if s.stat().st_mtime > dead_at]
        assert not late, f"jobs written after the launcher died: {late}"
        for tar in jobs.glob("*.tar"):  # only complete tars are ever visible under their final name
            with tarfile.open(tar) as t:
                assert len(t.getmembers()) % 3 == 0

        resumed_at = time.time()
        r = webclip("shards", "--run", str(killed), "--config", str(cfg), "--threads", "3", "--no-progress")
        assert r.returncode == 0, r.stderr[-3000:]
        assert digest(full) == digest(killed)
        done_before = set().union(*(job_urls(jobs, name.removesuffix("_stats.json")) for name in finished))
        fetched_again = {base + path for server, base in servers for t, path in server.log
                         if t >= resumed_at and base + path in done_before}
        assert not fetched_again, f"finished jobs fetched again on resume: {sorted(fetched_again)[:3]}"
        assert all(json.loads(s.read_text())["retry"] == [] for s in jobs.glob("*_stats.json"))
    finally:
        for server, _ in servers:
            server.shutdown()


def test_unreachable_hosts_are_retried_on_rerun_never_sealed(tmp_path) -> None:
    """A host that is down (robots.txt refused) leaves its pairs transient; the stage fails; the rerun fetches only them."""
    up_a, up_b = serve("127.0.0.41"), serve("127.0.0.42")
    port = free_port()
    gone = f"http://127.0.0.43:{port}"
    servers = [up_a, up_b]
    try:
        urls = ([f"{up_a[1]}/good/{i}.jpg" for i in range(20)] + [f"{up_b[1]}/good/{i}.jpg" for i in range(20, 30)]
                + [f"{gone}/good/{i}.jpg" for i in range(30, 40)])
        full, broken = tmp_path / "full", tmp_path / "broken"
        for run in (full, broken):
            curated_run(run, urls)
        cfg = shards_config(tmp_path, samples_per_job=20, respect_robots=True, max_transient_share=0.2,
                            direct_running_mode="in_memory")
        r = webclip("shards", "--run", str(broken), "--config", str(cfg))
        assert r.returncode == 1 and "10 of 40 pairs failed transiently" in r.stderr, r.stderr[-3000:]
        assert "download/robots_unreachable 10" in r.stderr
        assert not (broken / "shards" / "_SUCCESS").exists()
        jobs = broken / "shards" / "jobs"
        stats = {s.name: json.loads(s.read_text()) for s in sorted(jobs.glob("*_stats.json"))}
        [partial] = [s for s in stats.values() if s["retry"]]
        assert partial["transient"] == {"download/robots_unreachable": 10} and partial["kept"] == 10

        servers.append(serve("127.0.0.43", port=port))  # the host comes back
        rerun_at = time.time()
        r = webclip("shards", "--run", str(broken), "--config", str(cfg))
        assert r.returncode == 0, r.stderr[-3000:]
        assert [path for t, path in up_a[0].log + up_b[0].log if t >= rerun_at] == []
        assert sorted(path for t, path in servers[2][0].log if t >= rerun_at and path != "/robots.txt") == sorted(
            f"/good/{i}.jpg" for i in range(30, 40))
        assert webclip("shards", "--run", str(full), "--config", str(cfg)).returncode == 0
        assert digest(full) == digest(broken)
        stats = json.loads((broken / "shards" / "stats.json").read_text())
        assert stats["kept"] == 40 and stats["transient"] == {}
    finally:
        for server, _ in servers:
            server.shutdown()


def test_a_stage_that_downloads_nothing_is_not_finished(hostile_free_port_url, tmp_path) -> None:
    run = tmp_path / "run"
    curated_run(run, [f"{hostile_free_port_url}/missing/{i}.jpg" for i in range(5)])
    r = webclip("shards", "--run", str(run), "--config", str(shards_config(tmp_path, direct_running_mode="in_memory")))
    assert r.returncode == 1 and "none of 5 pairs was downloaded (download/http_404 5)" in r.stderr, r.stderr[-3000:]
    assert not (run / "shards" / "_SUCCESS").exists()


@pytest.fixture()
def hostile_free_port_url():
    server, base = serve("127.0.0.44")
    yield base
    server.shutdown()


def test_remote_output_is_kept_when_only_run_time_knobs_change(tmp_path) -> None:
    from webclip.config import runtime_fields
    from webclip.shards.config import ShardsConfig
    from webclip.shards.run import claim_remote_output

    base = str(tmp_path / "out")
    cfg = ShardsConfig()
    claim_remote_output(base, asdict(cfg), runtime=runtime_fields(ShardsConfig))
    (tmp_path / "out" / "jobs").mkdir()
    claim_remote_output(base, asdict(ShardsConfig(threads=3, progress=False, direct_num_workers=4)),
                        runtime=runtime_fields(ShardsConfig))
    assert (tmp_path / "out" / "jobs").is_dir()
    claim_remote_output(base, asdict(ShardsConfig(image_size=64)), runtime=runtime_fields(ShardsConfig))
    assert not (tmp_path / "out" / "jobs").exists()

"""Review of the shards download: hosts paced without holding threads, the launcher watchdog, on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.shards.test_download import in_process, job_dir, job_stats, serve
from webclip.fetch import HostPacer
from webclip.shards.pool import HostQueues

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the watchdog reads /proc")


def test_a_host_waiting_for_its_crawl_delay_never_holds_the_threads(tmp_path) -> None:
    """Rows went to threads in uid order: a row of a host with Crawl-delay put its thread to sleep in the pacer,
    and soon every thread slept there while a fast host's rows waited (done at 2.1 s; now 0.45 s)."""
    from webclip.shards.run import run_job

    paced, fast = serve("127.0.0.71", robots=b"User-agent: *\nCrawl-delay: 1\n"), serve("127.0.0.72")
    try:
        urls = [f"{paced[1]}/good/{i}.jpg" for i in range(6)] + [f"{fast[1]}/good/{i}.jpg" for i in range(100, 130)]
        jobs_dir, job = job_dir(tmp_path, urls)
        run_job(job, jobs_dir, *in_process(respect_robots=True, threads=4))
        assert job_stats(jobs_dir, job)["kept"] == 36
        slow = sorted(t for t, path in paced[0].log if path.startswith("/good/"))
        assert min(b - a for a, b in zip(slow, slow[1:], strict=False)) >= 0.9  # Crawl-delay still holds
        fast_done = max(t for t, _ in fast[0].log)
        assert fast_done < slow[2], [round(t - slow[0], 2) for t in (fast_done, *slow)]
    finally:
        for server, _ in (paced, fast):
            server.shutdown()


def test_host_queues_hand_out_only_ready_hosts_and_retry_later() -> None:
    pacer = HostPacer(delay=10.0, concurrency=1)
    queues = HostQueues(pacer, per_host=1)
    for row, host in enumerate(["a", "a", "b", "a", "b"]):
        queues.add(row, host)
    now = time.monotonic()
    assert [queues.take(now), queues.take(now), queues.take(now)] == [(0, "a"), (2, "b"), None]
    queues.release("a")
    assert queues.take(now) is None  # a's delay holds even with its slot free
    assert queues.take(now + 10) == (1, "a")
    queues.retry(0, "a", now + 5)
    queues.release("b")
    assert queues.take(now + 10) == (4, "b") and queues.take(now + 11) is None
    queues.release("a")
    assert queues.take(now + 20) == (3, "a")  # the retried row went to the back of its host's queue
    queues.release("a")
    assert queues.take(now + 29) is None and queues.take(now + 30) == (0, "a") and queues.wake_at() is None


WORKER = textwrap.dedent("""
    import os, sys, threading, time
    from webclip.shards import run
    watch = run.LauncherWatch()
    watch.pid, watch.identity = int(sys.argv[1]), sys.argv[2] or None
    for _ in range(3):  # Beam calls setup once per DoFn instance
        watch.arm()
    print(sum(t.name == "launcher-watch" for t in threading.enumerate()), flush=True)
    time.sleep(20)
    open(sys.argv[3], "w").write("written after the launcher died")
""")


def _worker(launcher: int, identity: str, marker) -> subprocess.Popen:  # noqa: ANN001
    return subprocess.Popen([sys.executable, "-c", WORKER, str(launcher), identity, str(marker)],
                            stdout=subprocess.PIPE, text=True)


@linux_only
def test_one_watchdog_per_worker_and_it_ends_the_worker_when_the_launcher_dies(tmp_path) -> None:
    from webclip.shards.run import _proc_identity

    launcher = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        worker = _worker(launcher.pid, _proc_identity(launcher.pid) or "", tmp_path / "marker")
        assert worker.stdout.readline().strip() == "1"  # three DoFn setups, one watchdog thread
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait()
        assert worker.wait(timeout=15) == 1 and not (tmp_path / "marker").exists()  # well before its 20 s sleep
    finally:
        launcher.kill()


@linux_only
def test_a_reused_launcher_pid_is_not_the_launcher(tmp_path) -> None:
    """A live process under the launcher's pid, started at another time, does not keep a worker going."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        worker = _worker(other.pid, "1", tmp_path / "marker")  # start time 1: not this process
        worker.stdout.readline()  # imports done (under load they take seconds), or the watchdog already ended it
        assert worker.wait(timeout=15) == 1 and not (tmp_path / "marker").exists()  # well before its 20 s sleep
    finally:
        other.kill()


def test_a_stage_whose_every_image_is_dropped_is_not_finished(tmp_path) -> None:
    """Every downloaded image overlapped the evaluation set: the stage wrote an empty final/ and _SUCCESS."""
    from tests.shards.test_download import _image, curated_run, shards_config, webclip

    server, base = serve("127.0.0.73")
    try:
        run = tmp_path / "run"
        curated_run(run, [f"{base}/good/{i}.jpg" for i in range(3)])
        heldout = tmp_path / "heldout"
        heldout.mkdir()
        for i in range(3):
            (heldout / f"{i}.jpg").write_bytes(_image(i))
        cfg = shards_config(tmp_path, direct_running_mode="in_memory", decontaminate=[str(heldout)])
        r = webclip("shards", "--run", str(run), "--config", str(cfg))
        assert r.returncode == 1 and "all 3 downloaded images were dropped" in r.stderr, r.stderr[-2000:]
        assert "decontam/exact_eval_overlap 3" in r.stderr and not (run / "shards" / "_SUCCESS").exists()
    finally:
        server.shutdown()


RESIZE_IN_THREADS = textwrap.dedent("""
    import io, sys
    from concurrent.futures import ThreadPoolExecutor
    import numpy as np
    from PIL import Image
    from webclip.shards.config import ShardsConfig
    from webclip.shards.download import make_resizer
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(buf, "JPEG")
    resizer = make_resizer(ShardsConfig(image_size=32, min_image_size=16))
    with ThreadPoolExecutor(8) as pool:
        assert all(r[0] is not None for r in pool.map(lambda _: resizer(io.BytesIO(buf.getvalue())), range(400)))
    print("stdout still here", flush=True)
    print("stderr still here", file=sys.stderr, flush=True)
""")


def test_resizing_in_threads_leaves_stdout_and_stderr_alone() -> None:
    """img2dataset's resizer points fds 1 and 2 at /dev/null around cv2 per call; threads interleaving left them
    there for good, and the stage's one-line error (and every later message) was lost."""
    r = subprocess.run([sys.executable, "-c", RESIZE_IN_THREADS], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "stdout still here" in r.stdout and "stderr still here" in r.stderr, (r.stdout[-500:], r.stderr[-500:])


def test_a_rerun_with_a_longer_timeout_keeps_the_finished_jobs(tmp_path) -> None:
    """timeout/retries only turn transient drops into samples: changing them on the rerun cleared every job."""
    from tests.conftest import free_port
    from tests.shards.test_download import curated_run, shards_config, webclip

    up, port = serve("127.0.0.74"), free_port()
    servers = [up]
    try:
        run = tmp_path / "run"
        curated_run(run, [f"{up[1]}/good/{i}.jpg" for i in range(10)]
                    + [f"http://127.0.0.75:{port}/good/{i}.jpg" for i in range(10, 20)])
        cfg = shards_config(tmp_path, samples_per_job=10, direct_running_mode="in_memory", max_transient_share=0.2)
        r = webclip("shards", "--run", str(run), "--config", str(cfg))
        assert r.returncode == 1 and "10 of 20 pairs failed transiently" in r.stderr, r.stderr[-2000:]
        servers.append(serve("127.0.0.75", port=port))  # the host comes back
        rerun_at = time.time()
        r = webclip("shards", "--run", str(run), "--config", str(cfg), "--timeout", "5", "--retries", "2",
                    "--transient-retries", "2")
        assert r.returncode == 0, r.stderr[-2000:]
        assert [path for t, path in up[0].log if t >= rerun_at] == []
        assert sorted(path for _, path in servers[1][0].log) == sorted(f"/good/{i}.jpg" for i in range(10, 20))
    finally:
        for server, _ in servers:
            server.shutdown()

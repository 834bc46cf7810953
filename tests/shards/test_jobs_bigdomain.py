"""A big registered domain is split over jobs that share its host's rate run-wide (real servers on loopback)."""

from __future__ import annotations

import io
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from webclip.hashing import candidate_uid
from webclip.parquet import write_rows
from webclip.records import CURATED_SCHEMA

DELAY = 0.1  # the big host's per_host_delay: at most 10 request starts a second


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (48, 48), (200, 40, 90)).save(buf, "JPEG")
    return buf.getvalue()


class CountingHandler(BaseHTTPRequestHandler):
    """Any path: a small JPEG (robots.txt: 404, all allowed); every request's arrival time is logged."""

    protocol_version = "HTTP/1.1"
    body = _jpeg()

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass

    def do_GET(self) -> None:  # noqa: N802
        with self.server.lock:
            self.server.log.append((time.time(), self.path))
        if self.path == "/robots.txt":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


@pytest.fixture
def servers():  # noqa: ANN201
    """Four image hosts, each its own registered domain: 127.0.0.2 .. 127.0.0.5."""
    started = []
    for i in range(2, 6):
        server = ThreadingHTTPServer((f"127.0.0.{i}", 0), CountingHandler)
        server.daemon_threads = True
        server.lock, server.log = threading.Lock(), []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
    yield started
    for server in started:
        server.shutdown()
        server.server_close()


def _origin(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"


def curated_part(path: Path, urls: list[str]) -> None:
    rows = [{"uid": candidate_uid(u, f"picture {i}"), "image_url": u, "alt": f"picture {i}", "page_url": "http://example.com/",
             "page_lang": "en", "width": None, "height": None, "srcset_url": None, "source": "crawl", "opt_out": False,
             "caption": f"picture {i}", "lang": "en", "entry_ids": [0], "keep_prob": 1.0} for i, u in enumerate(urls)]
    write_rows(path, rows, CURATED_SCHEMA)


def peak_in_window(times: list[float], window: float) -> int:
    """The most request starts in any ``window`` seconds."""
    times = sorted(times)
    return max(sum(1 for u in times[i:] if u < t + window) for i, t in enumerate(times))


def run_all_jobs_at_once(jobs_dir: str, jobs: list[str], shared_pacer: bool, **over) -> float:
    """Every job on its own thread as its own worker (fetcher, pacer, robots cache); returns the seconds taken."""
    from webclip.fetch import Fetcher
    from webclip.robots import RobotsCache
    from webclip.shards.config import ShardsConfig
    from webclip.shards.download import make_resizer
    from webclip.shards.hostshare import SharedHostPacer
    from webclip.shards.run import run_job

    cfg = ShardsConfig(**{"image_size": 32, "min_image_size": 16, "allow_private": ["127.0.0.0/8"], "timeout": 2.0,
                          "per_host_delay": DELAY, "per_host_concurrency": 4, "threads": 4, "respect_robots": True, **over})

    def work(job: str) -> None:
        pacer = SharedHostPacer(cfg.per_host_delay, cfg.per_host_concurrency) if shared_pacer else None
        fetcher = Fetcher(cfg.fetch_config(), pacer)
        run_job(job, jobs_dir, cfg, fetcher, RobotsCache(fetcher, cfg.robots_agent), make_resizer(cfg))

    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - started


@pytest.mark.parametrize("shared_pacer", [True, False])
def test_a_big_domain_spreads_over_jobs_and_its_host_never_passes_its_rate(servers, tmp_path, shared_pacer) -> None:
    from webclip.shards.jobs import shared_hosts, write_job_inputs

    big, small = servers[0], servers[1:]
    urls = [f"{_origin(big)}/big/{i}.jpg" for i in range(30)]  # half of the pairs on one host
    urls += [f"{_origin(s)}/small/{i}.jpg" for s in small for i in range(10)]
    curated_part(tmp_path / "part-00000.parquet", urls)
    jobs_dir = str(tmp_path / "jobs")
    jobs = write_job_inputs([tmp_path / "part-00000.parquet"], jobs_dir, samples_per_job=10)
    split = shared_hosts(jobs_dir)
    assert list(split) == [_origin(big).removeprefix("http://")] and len(split[list(split)[0]]) >= 3  # 30 pairs, jobs of 10

    seconds = run_all_jobs_at_once(jobs_dir, jobs, shared_pacer)
    starts = [t for t, _ in big.log]
    images = [p for _, p in big.log if p != "/robots.txt"]
    assert sorted(images) == sorted(f"/big/{i}.jpg" for i in range(30))
    bound = {w: math.ceil(w / DELAY) + 1 for w in (0.25, 0.5, 1.0)}  # what one job pacing the host alone allows
    peaks = {w: peak_in_window(starts, w) for w in bound}
    if not shared_pacer:  # the control: each job pacing the host on its own overruns it, so the check can fail
        assert any(peaks[w] > bound[w] for w in bound), peaks
        return
    assert all(peaks[w] <= bound[w] for w in bound), (peaks, bound)
    # the host's rate sets the pace: 30 images and a robots.txt per job, one a DELAY at most, and not much slower
    span = max(starts) - min(starts)
    assert (len(starts) - 1) * DELAY * 0.9 <= span <= len(starts) * DELAY * 3 + 1.0, (span, seconds)


def test_jobs_sharing_a_host_start_requests_only_in_their_own_slots_one_per_slot() -> None:
    from webclip.shards.hostshare import SLOT_USE, SharedHostPacer

    d, k = 0.04, 3
    pacers = [SharedHostPacer(d, 4) for _ in range(k)]  # three workers' pacers, one piece each
    for piece, pacer in enumerate(pacers):
        pacer.share("cdn.example", k, piece)
    starts: list[tuple[int, float]] = []
    lock = threading.Lock()

    def requests(piece: int) -> None:
        for _ in range(6):
            with pacers[piece].slot("cdn.example"), lock:
                starts.append((piece, time.time()))

    threads = [threading.Thread(target=requests, args=(p,)) for p in range(k) for _ in range(2)]  # 2 threads a job
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    slots = [(piece, math.floor(t / d), t / d % 1) for piece, t in starts]
    assert all(s % k == piece for piece, s, _ in slots)  # each job only in its own slots
    assert len({s for _, s, _ in slots}) == len(slots) == 36  # never two starts in one slot
    assert all(into <= SLOT_USE + 0.2 for _, _, into in slots)  # early in the slot (0.2: thread wake-up margin)
    for pacer in pacers:
        pacer.unshare("cdn.example", pacers.index(pacer))
        assert "cdn.example" not in pacer.shares

"""Big host: a run where one host holds half the pairs, its rate shared by the jobs it is cut over, on loopback.

Four image hosts on 127.0.0.2-5 answer every request after ``LATENCY`` seconds. Half the pairs are on the
first one. Every job runs at once, each with ``THREADS`` threads and its own fetcher and pacer (as separate
workers do). Two runs per host delay ``d``:

- ``cut``: the shards split (``write_job_inputs``): the big host is cut over several jobs that share its rate
  in wall-clock slots (``shards.hostshare``);
- ``one_job`` (the anchor, the rule before): the big host's pairs all in one job.

The figure is the big host's span (first to last request, seen by the server) and its peak request starts in
any 1 s window. Cut, the span follows the host's allowed rate (about pairs x ``d``); in one job it stays at
what one job's threads can do (pairs x ``LATENCY`` / ``THREADS``), whatever the rate allowed.

    python -m bench.big_domain        # about 30 s
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

LATENCY = 0.1  # seconds each answer takes
THREADS = 2  # download threads per job
BIG, SMALL = 120, 40  # pairs on the big host; on each of the three others
SAMPLES_PER_JOB = 20
DELAYS = (0.02, 0.04)  # the big host's per_host_delay: 50 and 25 request starts a second allowed


class SlowHandler(BaseHTTPRequestHandler):
    """Any path: a small JPEG after ``LATENCY`` seconds (robots.txt: 404); arrival times logged."""

    protocol_version = "HTTP/1.1"
    body = b""

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.log.append(time.time())  # type: ignore[attr-defined]
        time.sleep(LATENCY)
        status, body = (404, b"") if self.path == "/robots.txt" else (200, self.body)
        self.send_response(status)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _jpeg() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (48, 48), (30, 120, 200)).save(buf, "JPEG")
    return buf.getvalue()


def serve() -> list[ThreadingHTTPServer]:
    """The four hosts, started."""
    SlowHandler.body = _jpeg()
    servers = []
    for i in range(2, 6):
        s = ThreadingHTTPServer((f"127.0.0.{i}", 0), SlowHandler)
        s.daemon_threads, s.lock, s.log = True, threading.Lock(), []  # type: ignore[attr-defined]
        threading.Thread(target=s.serve_forever, daemon=True).start()
        servers.append(s)
    return servers


def rows_for(urls: list[str]) -> list[dict[str, Any]]:
    """Curated rows, one per URL."""
    from webclip.hashing import candidate_uid

    return [{"uid": candidate_uid(u, f"picture {i}"), "image_url": u, "alt": f"picture {i}", "page_url": "http://example.com/",
             "page_lang": "en", "width": None, "height": None, "srcset_url": None, "source": "crawl", "opt_out": False,
             "caption": f"picture {i}", "lang": "en", "entry_ids": [0], "keep_prob": 1.0} for i, u in enumerate(urls)]


def job_inputs(work: Path, big: list[str], small: list[str], cut: bool) -> tuple[str, list[str]]:
    """The jobs folder and job ids: the shards split, or the big host whole in one job and the rest split."""
    from webclip.parquet import write_rows
    from webclip.records import CURATED_SCHEMA
    from webclip.shards.jobs import write_job_inputs

    jobs_dir = work / "jobs"
    write_rows(work / "part-00000.parquet", rows_for(big + small if cut else small), CURATED_SCHEMA)
    jobs = write_job_inputs([work / "part-00000.parquet"], str(jobs_dir), SAMPLES_PER_JOB)
    if not cut:
        write_rows(jobs_dir / "_inputs" / "big.parquet", rows_for(big), CURATED_SCHEMA)
        jobs.append("big")
    return str(jobs_dir), jobs


def run_jobs(jobs_dir: str, jobs: list[str], delay: float) -> None:
    """Every job at once, each with its own fetcher and pacer."""
    from webclip.fetch import Fetcher
    from webclip.robots import RobotsCache
    from webclip.shards.config import ShardsConfig
    from webclip.shards.download import make_resizer
    from webclip.shards.hostshare import SharedHostPacer
    from webclip.shards.run import run_job

    cfg = ShardsConfig(image_size=32, min_image_size=16, allow_private=["127.0.0.0/8"], timeout=5.0, threads=THREADS,
                       per_host_delay=delay, per_host_concurrency=8)

    def work(job: str) -> None:
        fetcher = Fetcher(cfg.fetch_config(), SharedHostPacer(cfg.per_host_delay, cfg.per_host_concurrency))
        run_job(job, jobs_dir, cfg, fetcher, RobotsCache(fetcher, cfg.robots_agent), make_resizer(cfg))

    threads = [threading.Thread(target=work, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def once(delay: float, cut: bool) -> dict[str, Any]:
    """One run; the big host's span and peak 1 s window."""
    servers = serve()
    try:
        origins = [f"http://{s.server_address[0]}:{s.server_address[1]}" for s in servers]
        big = [f"{origins[0]}/big/{i}.jpg" for i in range(BIG)]
        small = [f"{o}/small/{i}.jpg" for o in origins[1:] for i in range(SMALL)]
        with tempfile.TemporaryDirectory(prefix="webclip-bigdomain-") as tmp:
            jobs_dir, jobs = job_inputs(Path(tmp), big, small, cut)
            from webclip.shards.jobs import shared_hosts

            jobs_of_big = len(next(iter(shared_hosts(jobs_dir).values()), [None])) if cut else 1
            started = time.monotonic()
            run_jobs(jobs_dir, jobs, delay)
            seconds = time.monotonic() - started
        log = sorted(servers[0].log)  # type: ignore[attr-defined]
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
    peak = max(sum(1 for u in log[i:] if u < t + 1.0) for i, t in enumerate(log))
    return {"delay": delay, "jobs_of_big_host": jobs_of_big, "requests": len(log),
            "span_s": round(log[-1] - log[0], 2), "allowed_span_s": round((len(log) - 1) * delay, 2),
            "peak_per_1s": peak, "allowed_per_1s": int(1 / delay) + 1, "run_s": round(seconds, 2)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Both runs at each delay; one JSON line."""
    cut = [once(d, True) for d in DELAYS]
    one_job = [once(d, False) for d in DELAYS]
    result = {"bench": "big_domain", "threads_per_job": THREADS, "latency_s": LATENCY, "cut": cut,
              "anchor_one_job": one_job,
              "span_ratio_cut": round(cut[1]["span_s"] / cut[0]["span_s"], 2),
              "span_ratio_one_job": round(one_job[1]["span_s"] / one_job[0]["span_s"], 2)}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])

"""Download throughput: webclip's shards stage vs the plain img2dataset CLI on the same loopback URLs."""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from webclip.hashing import candidate_uid
from webclip.layout import part_name, table_path
from webclip.parquet import write_rows
from webclip.records import CURATED_SCHEMA
from webclip.runfolder import StageDir

HOSTS = [f"127.0.0.{i}" for i in range(1, 9)]
ENV = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}


def images(n: int = 500) -> list[bytes]:
    """Distinct JPEGs of 64-160 px."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        side = int(rng.integers(64, 161))
        arr = (rng.random((side // 8, side // 8, 3)) * 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).resize((side, side)).save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def serve(host: str, blobs: list[bytes]) -> ThreadingHTTPServer:
    """A fast in-memory image server: ``/img/N.jpg`` returns blob N mod len(blobs)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # as a production server would: no delayed-ACK stall per response

        def log_message(self, *args) -> None:  # noqa: ANN002
            pass

        def do_GET(self) -> None:  # noqa: N802
            body = blobs[int(self.path.split("/")[-1].split(".")[0]) % len(blobs)]
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 1024
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process so far (the loopback servers run here)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(n_urls: int = 10_000, processes: int = 2, threads: int = 16) -> dict:
    """Time both tools on the same URL list and print one JSON line."""
    blobs = images()
    servers = [serve(h, blobs) for h in HOSTS]
    urls = [f"http://{s.server_address[0]}:{s.server_address[1]}/img/{i}.jpg" for i, s in
            ((i, servers[i % len(servers)]) for i in range(n_urls))]
    tmp = Path(tempfile.mkdtemp(prefix="webclip-bench-dl-"))
    try:
        pq.write_table(pa.table({"url": urls, "caption": [f"picture {i}" for i in range(n_urls)]}), tmp / "urls.parquet")
        started, cpu = time.perf_counter(), children_cpu()
        r = subprocess.run([sys.executable, "-m", "img2dataset.main", "--url_list", str(tmp / "urls.parquet"),
                            "--input_format", "parquet", "--url_col", "url", "--caption_col", "caption",
                            "--output_format", "webdataset", "--output_folder", str(tmp / "i2d"),
                            "--processes_count", str(processes), "--thread_count", str(threads), "--image_size", "64",
                            "--resize_mode", "center_crop", "--number_sample_per_shard", "1000", "--timeout", "10",
                            "--retries", "0", "--disallowed_header_directives", "[]", "--enable_wandb", "False"],
                           capture_output=True, text=True, env=ENV)
        i2d_s, i2d_cpu = time.perf_counter() - started, children_cpu() - cpu
        if r.returncode != 0:
            raise RuntimeError(r.stderr[-2000:])
        i2d_ok = sum(json.loads(p.read_text())["successes"] for p in (tmp / "i2d").glob("*_stats.json"))
        run = tmp / "run"
        rows = [{"uid": candidate_uid(u, f"picture {i}"), "image_url": u, "alt": f"picture {i}", "page_url": "http://x/",
                 "page_lang": "en", "width": None, "height": None, "srcset_url": None, "source": "crawl", "opt_out": False,
                 "caption": f"picture {i}", "lang": "en", "entry_ids": [0], "keep_prob": 1.0} for i, u in enumerate(urls)]
        write_rows(Path(table_path(run, "curated")) / part_name(0), rows, CURATED_SCHEMA)
        StageDir(run, "curated").finish({"in": n_urls, "kept": n_urls, "dropped": {}})
        cfg = {"shards": {"image_size": 64, "allow_private": ["127.0.0.0/8"], "per_host_delay": 0.0,
                          "per_host_concurrency": threads, "threads": threads, "direct_num_workers": processes,
                          "respect_robots": False, "retries": 0, "samples_per_job": n_urls // len(HOSTS),
                          "decontaminate": [], "progress": False, "phash_threshold": -1}}
        (tmp / "cfg.json").write_text(json.dumps(cfg))
        started, cpu = time.perf_counter(), children_cpu()
        r = subprocess.run([sys.executable, "-m", "webclip.cli", "shards", "--run", str(run), "--config", str(tmp / "cfg.json")],
                           capture_output=True, text=True, env=ENV)
        ours_s, ours_cpu = time.perf_counter() - started, children_cpu() - cpu
        if r.returncode != 0:
            raise RuntimeError(r.stderr[-2000:])
        ours_ok = json.loads((run / "shards" / "stats.json").read_text())["downloaded"]
        job_s = sum(json.loads(p.read_text())["seconds"] for p in (run / "shards" / "jobs").glob("*_stats.json"))
        phases = json.loads((run / "shards" / "stats.json").read_text())["phase_seconds"]
        out = {"bench": "download", "urls": n_urls, "processes": processes, "threads": threads,
               "img2dataset_s": round(i2d_s, 1), "img2dataset_ok": i2d_ok, "img2dataset_urls_s": round(n_urls / i2d_s, 1),
               "webclip_s": round(ours_s, 1), "webclip_ok": ours_ok, "webclip_urls_s": round(n_urls / ours_s, 1),
               "webclip_job_seconds_sum": round(job_s, 1), "webclip_phase_seconds": phases, "ratio": round(i2d_s / ours_s, 3),
               "img2dataset_cpu_s": round(i2d_cpu, 1), "webclip_cpu_s": round(ours_cpu, 1),
               "webclip_images_per_cpu_s": round(ours_ok / max(ours_cpu, 1e-9), 1)}
        print(json.dumps(out))
        return out
    finally:
        for s in servers:
            s.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)

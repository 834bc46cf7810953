"""The shards stage against hostile image servers on loopback: every pair accounted for, resumable."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import free_port
from webclip.hashing import candidate_uid
from webclip.parquet import write_rows
from webclip.records import CURATED_SCHEMA
from webclip.runfolder import StageDir


def _image(seed: int, size: int = 96, fmt: str = "JPEG") -> bytes:
    rng = np.random.default_rng(seed)
    arr = (rng.random((size // 8, size // 8, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).resize((size, size), Image.Resampling.NEAREST).save(buf, fmt)
    return buf.getvalue()


def _bomb() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, "PNG")  # 400 Mpx, a few KB on the wire
    return buf.getvalue()


class ImageHandler(BaseHTTPRequestHandler):
    """``/good/N.jpg``, ``/corrupt.jpg``, ``/bomb.png``, ``/page.jpg`` (HTML), ``/slow.jpg``, ``/stall.jpg``, ``/busy.jpg``."""

    protocol_version = "HTTP/1.1"
    bomb = _bomb()

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass

    def do_GET(self) -> None:  # noqa: N802
        path = self.path
        if path.startswith("/good/"):
            n = int(path.split("/")[2].split(".")[0])
            return self._reply(200, _image(n), "image/jpeg")
        if path == "/tiny.png":
            return self._reply(200, _image(1, size=8, fmt="PNG"), "image/png")
        if path == "/corrupt.jpg":
            return self._reply(200, b"\xff\xd8\xff\xe0" + b"\x00garbage" * 50, "image/jpeg")
        if path == "/truncated.jpg":
            return self._reply(200, _image(7)[:300], "image/jpeg")
        if path == "/bomb.png":
            return self._reply(200, self.bomb, "image/png")
        if path == "/page.jpg":
            return self._reply(200, b"<html><body>hello</body></html>", "text/html")
        if path == "/slow.jpg":
            time.sleep(1.5)
            return self._reply(200, _image(2), "image/jpeg")
        if path == "/stall.jpg":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(30):
                    self.wfile.write(b"\xff")
                    self.wfile.flush()
                    time.sleep(0.2)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return None
        if path == "/busy.jpg":
            return self._reply(429, b"slow down", "text/plain", {"Retry-After": "0"})
        if path == "/noai.jpg":
            return self._reply(200, _image(3), "image/jpeg", {"X-Robots-Tag": "noimageai"})
        return self._reply(404, b"missing", "text/plain")

    def _reply(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(host: str) -> tuple[ThreadingHTTPServer, str]:
    """A hostile image server on ``host`` (any 127.x address) and a free port."""
    server = ThreadingHTTPServer((host, free_port()), ImageHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}"


def curated_run(run: Path, urls: list[str]) -> None:
    """A run whose curate stage is finished with one pair per URL."""
    rows = []
    for i, url in enumerate(urls):
        alt = f"a test picture number {i}"
        rows.append({"uid": candidate_uid(url, alt), "image_url": url, "alt": alt, "page_url": "http://example.com/",
                     "page_lang": "en", "width": None, "height": None, "srcset_url": None, "source": "crawl",
                     "opt_out": False, "caption": alt, "lang": "en", "entry_ids": [i % 3], "keep_prob": 1.0})
    write_rows(run / "curated" / "part-00000.parquet", rows, CURATED_SCHEMA)
    StageDir(run, "curated").finish({"in": len(rows), "kept": len(rows), "dropped": {}})


def shards_config(tmp: Path, **over) -> Path:
    cfg = {"shards": {"image_size": 32, "allow_private": ["127.0.0.0/8"], "per_host_delay": 0.0, "timeout": 1.0,
                      "retries": 1, "threads": 8, "samples_per_job": 40, "shard_size": 20, "val_fraction": 0.1,
                      "progress": False, "decontaminate": [], "respect_robots": False, "min_image_size": 16, **over}}
    p = tmp / f"shards{len(list(tmp.glob('shards*.json')))}.json"
    p.write_text(json.dumps(cfg))
    return p


def webclip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "webclip.cli", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def hostile():
    server, base = serve("127.0.0.1")
    yield base
    server.shutdown()


def test_every_hostile_response_is_dropped_with_its_reason(hostile, tmp_path) -> None:
    bad = {"corrupt.jpg": "download/corrupt_image", "truncated.jpg": "download/corrupt_image",
           "bomb.png": "download/bomb", "page.jpg": "download/not_image", "missing.jpg": "download/http_404",
           "slow.jpg": "download/timeout", "stall.jpg": "download/timeout", "busy.jpg": "download/http_429",
           "noai.jpg": "download/opt_out", "tiny.png": "download/too_small"}
    urls = [f"{hostile}/good/{i}.jpg" for i in range(30)] + [f"{hostile}/{name}" for name in bad]
    run = tmp_path / "run"
    curated_run(run, urls)
    r = webclip("shards", "--run", str(run), "--config", str(shards_config(tmp_path)))
    assert r.returncode == 0, r.stderr[-3000:]
    stats = json.loads((run / "shards" / "stats.json").read_text())
    expected: dict[str, int] = {}
    for reason in bad.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert stats["dropped"] == expected
    assert stats["in"] == 40 and stats["kept"] == 30
    import webdataset as wds

    manifest = json.loads((run / "shards" / "final" / "manifest.json").read_text())
    tars = [str(run / "shards" / "final" / s["name"]) for s in manifest["train"] + manifest["val"]]
    samples = list(wds.WebDataset(tars, shardshuffle=False))
    assert len(samples) == 30 and all({"jpg", "txt", "json"} <= set(s) for s in samples)
    keys = [s["__key__"] for s in samples]
    assert len(set(keys)) == 30
    assert json.loads((run / "shards" / "final" / "sizes.json").read_text()) == {s["name"]: s["samples"] for s in manifest["train"] + manifest["val"]}


def test_killed_run_resumes_without_loss_or_duplicates_and_byte_identical(tmp_path) -> None:
    servers = [serve(f"127.0.0.{i}") for i in (1, 2, 3, 4)]
    try:
        urls = [f"{base}/good/{h * 100 + i}.jpg" for h, (_, base) in enumerate(servers) for i in range(25)]
        full, killed = tmp_path / "full", tmp_path / "killed"
        curated_run(full, urls)
        curated_run(killed, urls)
        cfg = shards_config(tmp_path, per_host_delay=0.05, threads=2, samples_per_job=25)
        assert webclip("shards", "--run", str(full), "--config", str(cfg)).returncode == 0
        p = subprocess.Popen([sys.executable, "-m", "webclip.cli", "shards", "--run", str(killed), "--config", str(cfg)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        jobs = killed / "shards" / "jobs"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list(jobs.glob("*_stats.json"))) < 1:
            time.sleep(0.05)
        os.killpg(p.pid, signal.SIGKILL)  # the launcher and its Beam worker processes
        p.wait()
        done = len(list(jobs.glob("*_stats.json")))
        assert 1 <= done < 4, done
        import tarfile

        for tar in jobs.glob("*.tar"):  # only complete tars are ever visible under their final name
            with tarfile.open(tar) as t:
                assert len(t.getmembers()) % 3 == 0
        r = webclip("shards", "--run", str(killed), "--config", str(cfg))
        assert r.returncode == 0, r.stderr[-3000:]

        def digest(run: Path) -> dict[str, str]:
            return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((run / "shards" / "final").iterdir())}

        assert digest(full) == digest(killed)
        stats = json.loads((killed / "shards" / "stats.json").read_text())
        assert stats["kept"] == 100 and stats["in"] == 100
    finally:
        for server, _ in servers:
            server.shutdown()


def test_takedown_rewrites_only_affected_tars(tmp_path) -> None:
    servers = [serve(f"127.0.0.{i}") for i in (5, 6)]
    try:
        urls = [f"{base}/good/{h * 100 + i}.jpg" for h, (_, base) in enumerate(servers) for i in range(20)]
        run = tmp_path / "run"
        curated_run(run, urls)
        assert webclip("shards", "--run", str(run), "--config", str(shards_config(tmp_path, val_fraction=0.0))).returncode == 0
        final = run / "shards" / "final"
        before = {p.name: p.read_bytes() for p in final.glob("*.tar")}
        request = tmp_path / "takedown.txt"
        request.write_text(f"# owner of host 6\n127.0.0.6\n{urls[0]}\n")
        r = webclip("takedown", "--run", str(run), "--urls", str(request))
        assert r.returncode == 0, r.stderr
        import webdataset as wds

        manifest = json.loads((final / "manifest.json").read_text())
        samples = list(wds.WebDataset([str(final / s["name"]) for s in manifest["train"]], shardshuffle=False))
        left = {json.loads(s["json"])["image_url"] for s in samples}
        assert left == set(urls[1:20]) and manifest["totals"]["train"] == 19
        changed = {p.name for p in final.glob("*.tar") if p.read_bytes() != before[p.name]}
        record = json.loads((run / "shards" / "takedowns.jsonl").read_text().splitlines()[-1])
        assert changed == set(record["shards_rewritten"]) and record["removed"] == 21
        assert record["reasons"] == {"takedown/domain": 20, "takedown/image_url": 1}
        stats = json.loads((run / "shards" / "stats.json").read_text())
        assert stats["kept"] == 19 and stats["in"] == stats["kept"] + sum(stats["dropped"].values())
    finally:
        for server, _ in servers:
            server.shutdown()

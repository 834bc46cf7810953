"""The shards stage against hostile image servers on loopback: every pair accounted for, resumable."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
import pytest
from PIL import Image

from tests.conftest import free_port
from webclip.hashing import candidate_uid
from webclip.layout import part_name, table_path
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
    """``/good/N.jpg``, ``/corrupt.jpg``, ``/bomb.png``, ``/page.jpg`` (HTML), ``/slow.jpg``, ``/stall.jpg``, ``/busy.jpg``,
    X-Robots-Tag opt-outs, ``/to?u=URL`` (a redirect), ``/flaky/N.jpg`` (503 twice, then the image), ``/error/N.jpg`` (500),
    and ``/robots.txt`` as the server's ``robots`` says (None: 404; bytes: that file; an int: that status).

    Every request is logged on the server (``log``: (time, path)).
    """

    protocol_version = "HTTP/1.1"
    bomb = _bomb()

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass

    def do_GET(self) -> None:  # noqa: N802
        path = self.path
        with self.server.lock:
            self.server.log.append((time.time(), path))
            self.server.hits[path] += 1
            hits = self.server.hits[path]
        if path == "/robots.txt":
            robots = self.server.robots
            if robots is None or isinstance(robots, int):
                return self._reply(robots or 404, b"", "text/plain")
            return self._reply(200, robots, "text/plain")
        if path.startswith("/to?u="):
            return self._reply(302, b"", "text/plain", {"Location": unquote(path[len("/to?u="):])})
        if path.startswith("/flaky/"):
            if hits <= 2:
                return self._reply(503, b"busy", "text/plain", {"Retry-After": "0"})
            return self._reply(200, _image(500 + int(path.split("/")[2].split(".")[0])), "image/jpeg")
        if path.startswith("/error/"):
            return self._reply(500, b"oops", "text/plain")
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
        if path == "/noindex.jpg":  # img2dataset drops noimageindex by default too
            return self._reply(200, _image(4), "image/jpeg", {"X-Robots-Tag": "noimageindex"})
        if path == "/agent-noai.jpg":  # scoped to our agent
            return self._reply(200, _image(5), "image/jpeg", {"X-Robots-Tag": "webclip: noai"})
        if path == "/otherbot.jpg":  # scoped to another agent: not for us
            return self._reply(200, _image(706), "image/jpeg", {"X-Robots-Tag": "otherbot: noimageindex, noai"})
        return self._reply(404, b"missing", "text/plain")

    def _reply(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class ImageServer(ThreadingHTTPServer):
    """The hostile server, rebindable to the port of one that was shut down (a host that comes back)."""

    allow_reuse_address = True
    daemon_threads = True


def serve(host: str, robots: bytes | int | None = None, port: int | None = None) -> tuple[ThreadingHTTPServer, str]:
    """A hostile image server on ``host`` (any 127.x address) and a free port (or ``port``)."""
    server = ImageServer((host, port or free_port()), ImageHandler)
    server.robots, server.lock, server.log, server.hits = robots, threading.Lock(), [], Counter()
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
    write_rows(Path(table_path(run, "curated")) / part_name(0), rows, CURATED_SCHEMA)
    StageDir(run, "curated").finish({"in": len(rows), "kept": len(rows), "dropped": {}})


def shards_config(tmp: Path, **over) -> Path:
    cfg = {"shards": {"image_size": 32, "allow_private": ["127.0.0.0/8"], "per_host_delay": 0.0, "timeout": 1.0,
                      "retries": 1, "threads": 8, "samples_per_job": 40, "shard_size": 20, "val_fraction": 0.1,
                      "progress": False, "decontaminate": [], "respect_robots": False, "min_image_size": 16,
                      "transient_retry_delay": 0.2, **over}}
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
           "error/1.jpg": "download/http_500", "noai.jpg": "download/opt_out", "noindex.jpg": "download/opt_out",
           "agent-noai.jpg": "download/opt_out", "tiny.png": "download/too_small"}
    transient = {"download/timeout": 2, "download/http_429": 1, "download/http_500": 1}
    good = [f"{hostile}/good/{i}.jpg" for i in range(30)] + [f"{hostile}/otherbot.jpg", f"{hostile}/flaky/1.jpg"]
    urls = good + [f"{hostile}/{name}" for name in bad]
    run = tmp_path / "run"
    curated_run(run, urls)
    r = webclip("shards", "--run", str(run), "--config", str(shards_config(tmp_path, samples_per_job=100)))
    assert r.returncode == 0, r.stderr[-3000:]
    stats = json.loads((run / "shards" / "stats.json").read_text())
    expected: dict[str, int] = {}
    for reason in bad.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert stats["dropped"] == expected
    assert stats["in"] == len(urls) and stats["kept"] == len(good)
    # Transient drops were retried in a second pass (the flaky image came back) and the rest are recorded as
    # transient, below the stage's threshold: the stage finished, the job stays open for a rerun.
    assert stats["transient"] == transient
    [job] = [json.loads(p.read_text()) for p in (run / "shards" / "jobs").glob("*_stats.json")]
    assert job["transient"] == transient and len(job["retry"]) == sum(transient.values())
    import webdataset as wds

    manifest = json.loads((run / "shards" / "final" / "manifest.json").read_text())
    tars = [str(run / "shards" / "final" / s["name"]) for s in manifest["train"] + manifest["val"]]
    samples = list(wds.WebDataset(tars, shardshuffle=False))
    assert len(samples) == len(good) and all({"jpg", "txt", "json"} <= set(s) for s in samples)
    keys = [s["__key__"] for s in samples]
    assert len(set(keys)) == len(good)
    assert json.loads((run / "shards" / "final" / "sizes.json").read_text()) == {s["name"]: s["samples"] for s in manifest["train"] + manifest["val"]}


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


def job_dir(tmp_path: Path, urls: list[str]) -> tuple[str, str]:
    """One download job's inputs for ``urls``: (jobs folder, job id)."""
    from webclip.parquet import parts
    from webclip.shards.jobs import write_job_inputs

    run = tmp_path / "run"
    curated_run(run, urls)
    jobs_dir = str(tmp_path / "jobs")
    [job] = write_job_inputs(parts(table_path(run, "curated")), jobs_dir, len(urls))
    return jobs_dir, job


def in_process(**over):  # noqa: ANN201
    """A small-image ShardsConfig for loopback servers, with what run_job needs."""
    from webclip.fetch import Fetcher
    from webclip.robots import RobotsCache
    from webclip.shards.config import ShardsConfig
    from webclip.shards.download import make_resizer

    cfg = ShardsConfig(**{"image_size": 32, "min_image_size": 16, "allow_private": ["127.0.0.0/8"], "per_host_delay": 0.0,
                          "timeout": 1.0, "retries": 1, "threads": 4, "transient_retry_delay": 0.2, **over})
    fetcher = Fetcher(cfg.fetch_config())
    robots = RobotsCache(fetcher, cfg.robots_agent, retry_interval=cfg.transient_retry_delay) if cfg.respect_robots else None
    return cfg, fetcher, robots, make_resizer(cfg)


def job_stats(jobs_dir: str, job: str) -> dict:
    return json.loads((Path(jobs_dir) / f"{job}_stats.json").read_text())


def test_an_exception_on_one_pair_is_a_counted_drop_and_the_job_goes_on(hostile, tmp_path, caplog) -> None:
    from webclip.shards.run import run_job

    urls = [f"{hostile}/good/{i}.jpg" for i in range(900, 906)]
    jobs_dir, job = job_dir(tmp_path, urls)
    cfg, fetcher, robots, real = in_process(respect_robots=False)
    poison = _image(903)

    def resizer(stream: io.BytesIO):  # noqa: ANN202 -- stands in for a genuine bug: the resizer raising on one image
        if stream.getvalue() == poison:
            raise RuntimeError("resizer bug")
        return real(stream)

    with caplog.at_level("ERROR", logger="webclip.shards"):
        run_job(job, jobs_dir, cfg, fetcher, robots, resizer)
    stats = job_stats(jobs_dir, job)
    assert stats["kept"] == 5 and stats["dropped"] == {"download/error": 1} and stats["retry"] == []
    [record] = [r for r in caplog.records if "download/error" in r.getMessage()]
    text = record.getMessage()
    assert urls[3] in text and "RuntimeError: resizer bug" in text and "Traceback" in text
    uid = candidate_uid(urls[3], "a test picture number 3")
    assert uid in text
    [example] = stats["errors"]  # the first few also kept with the job, whatever the runner does with logs
    assert example["uid"] == uid and urls[3] in example["error"] and "RuntimeError: resizer bug" in example["error"]


def test_robots_of_redirect_targets_and_unreachable_robots_are_transient(tmp_path) -> None:
    from webclip.shards.run import run_job

    open_, closed = serve("127.0.0.21"), serve("127.0.0.22", robots=b"User-agent: *\nDisallow: /good/\n")
    down = serve("127.0.0.23", robots=503)
    try:
        (_, a), (_, b), (down_server, c) = open_, closed, down
        urls = [f"{a}/to?u={quote(f'{b}/good/1.jpg')}", f"{a}/to?u={quote(f'{a}/good/2.jpg')}", f"{b}/good/3.jpg",
                f"{c}/good/4.jpg", f"{a}/good/5.jpg"]
        jobs_dir, job = job_dir(tmp_path, urls)
        run_job(job, jobs_dir, *in_process(respect_robots=True))
        stats = job_stats(jobs_dir, job)
        assert stats["kept"] == 2
        assert stats["dropped"] == {"download/robots_disallowed": 2, "download/robots_unreachable": 1}
        assert stats["transient"] == {"download/robots_unreachable": 1}
        assert stats["retry"] == [candidate_uid(urls[3], "a test picture number 3")]
        # RFC 9309's "assume disallow" holds for one attempt: robots.txt was asked again in the second pass.
        assert down_server.hits["/robots.txt"] >= 2 and down_server.hits["/good/4.jpg"] == 0
        assert closed[0].hits["/good/1.jpg"] == 0 and closed[0].hits["/good/3.jpg"] == 0
    finally:
        for server, _ in (open_, closed, down):
            server.shutdown()

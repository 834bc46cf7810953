"""img2dataset-shaped metadata: ``url``/``status``/``error_message``/``exif`` per sample, a table of every attempt.

The reference is img2dataset itself, run on the same loopback server: its status, EXIF string, sha256 and
sizes per URL are what ours must be.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from tests.conftest import free_port
from tests.shards.test_download import ImageHandler, ImageServer, in_process, job_dir
from webclip.hashing import candidate_uid
from webclip.shards.download import attempts_path, compute_exif, download_status
from webclip.shards.tarwrite import read_tar

MAKE, MODEL, WHEN = "WebclipCam", "Model 7", "2024:01:02 03:04:05"


def exif_jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    """A JPEG carrying EXIF Make, Model and DateTime (tags 0x010F, 0x0110, 0x0132 of the EXIF 2.3 spec)."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0132] = MAKE, MODEL, WHEN
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


class ExifHandler(ImageHandler):
    """The hostile server plus ``/exif.jpg``."""

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/exif.jpg":
            return self._reply(200, exif_jpeg(), "image/jpeg")
        return super().do_GET()


@pytest.fixture(scope="module")
def server():
    from collections import Counter

    srv = ImageServer(("127.0.0.61", free_port()), ExifHandler)
    srv.robots, srv.lock, srv.log, srv.hits = None, threading.Lock(), [], Counter()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.61:{srv.server_address[1]}"
    srv.shutdown()


PATHS = {"good/1.jpg": "success", "exif.jpg": "success", "missing.jpg": "failed_to_download",
         "corrupt.jpg": "failed_to_resize", "tiny.png": "failed_to_resize", "noai.jpg": "download/opt_out"}


def _job(server: str, tmp: Path, name: str) -> tuple[Path, str, list[str]]:
    from webclip.shards.run import run_job

    urls = [f"{server}/{p}" for p in PATHS]
    jobs_dir, job = job_dir(tmp / name, urls)
    run_job(job, jobs_dir, *in_process(respect_robots=False))
    return Path(jobs_dir), job, urls


def test_samples_and_attempts_carry_img2dataset_fields(server, tmp_path) -> None:
    jobs, job, urls = _job(server, tmp_path, "a")
    samples = {s["json"]["url"]: s["json"] for s in read_tar(jobs / f"{job}.tar")}
    assert set(samples) == {urls[0], urls[1]}
    for url, meta in samples.items():
        assert meta["image_url"] == url and meta["status"] == "success" and meta["error_message"] is None
    exif = json.loads(samples[urls[1]]["exif"])
    assert exif["Image Make"] == MAKE and exif["Image Model"] == MODEL and exif["Image DateTime"] == WHEN
    assert samples[urls[0]]["exif"] == "{}"  # img2dataset's value for an image without EXIF
    table = pq.read_table(jobs / f"{job}.parquet").to_pylist()
    assert {r["url"]: r["exif"] for r in table} == {u: m["exif"] for u, m in samples.items()}

    attempts = pq.read_table(attempts_path(str(jobs), job)).to_pylist()
    assert [a["uid"] for a in attempts] == sorted(a["uid"] for a in attempts)  # one row per pair, by uid
    by_url = {a["url"]: a for a in attempts}
    assert {u: by_url[u]["status"] for u in urls} == dict(zip(urls, PATHS.values(), strict=True))
    assert by_url[urls[2]]["error_message"] == "download/http_404" and by_url[urls[0]]["error_message"] is None
    assert all(a["key"] == a["uid"] == candidate_uid(a["url"], a["caption"]) for a in attempts)
    assert by_url[urls[1]]["exif"] == samples[urls[1]]["exif"] and by_url[urls[2]]["exif"] is None
    stats = json.loads((jobs / f"{job}_stats.json").read_text())
    assert stats["in"] == len(attempts) and stats["kept"] == sum(a["status"] == "success" for a in attempts)


def test_job_outputs_are_byte_identical_and_follow_the_umask(server, tmp_path) -> None:
    one, job, _ = _job(server, tmp_path, "one")
    two, _, _ = _job(server, tmp_path, "two")
    for name in (f"{job}.tar", f"{job}.parquet", f"attempts/{job}.parquet"):
        assert hashlib.sha256((one / name).read_bytes()).digest() == hashlib.sha256((two / name).read_bytes()).digest(), name
    umask = os.umask(0o022)
    os.umask(umask)
    for p in [p for p in one.rglob("*") if p.is_file()]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask, p


def test_a_resumed_job_keeps_its_earlier_attempts(server, tmp_path) -> None:
    """A rerun fetches only the retry pairs: the attempts of the rest stay as they were."""
    from webclip.shards.run import run_job

    jobs, job, urls = _job(server, tmp_path, "r")
    before = pq.read_table(attempts_path(str(jobs), job)).to_pylist()
    stats_path = jobs / f"{job}_stats.json"
    stats = json.loads(stats_path.read_text())
    retry = candidate_uid(urls[2], "a test picture number 2")  # pretend the 404 was transient
    stats.update(retry=[retry], transient={"download/http_404": 1})
    stats_path.write_text(json.dumps(stats))
    run_job(job, str(jobs), *in_process(respect_robots=False))
    after = pq.read_table(attempts_path(str(jobs), job)).to_pylist()
    assert after == before


def test_status_table() -> None:
    assert [download_status(r) for r in (None, "download/http_503", "download/bomb", "download/robots_disallowed",
                                         "optout/denylisted")] == [
        "success", "failed_to_download", "failed_to_resize", "download/robots_disallowed", "optout/denylisted"]
    assert compute_exif(b"not an image at all") in ("{}", None)


I2D = textwrap.dedent("""
    import json, sys
    from img2dataset import download
    if __name__ == "__main__":
        download(url_list=sys.argv[1], input_format="parquet", url_col="url", caption_col="caption",
                 output_folder=sys.argv[2], output_format="parquet", processes_count=1, thread_count=2,
                 image_size=32, resize_mode="center_crop", min_image_size=16, max_aspect_ratio=3.0,
                 encode_quality=90, disallowed_header_directives=[], timeout=2, retries=0,
                 distributor="multiprocessing")
""")


@pytest.mark.slow
def test_img2dataset_itself_gives_the_same_status_exif_hash_and_sizes(server, tmp_path) -> None:
    import pandas as pd

    jobs, job, urls = _job(server, tmp_path, "ours")
    ours = {a["url"]: a for a in pq.read_table(attempts_path(str(jobs), job)).to_pylist()}
    peer_urls = [u for u in urls if not u.endswith("noai.jpg")]  # told to ignore X-Robots-Tag: not comparable
    pd.DataFrame({"url": peer_urls, "caption": ["c"] * len(peer_urls)}).to_parquet(tmp_path / "in.parquet")
    script = tmp_path / "i2d.py"
    script.write_text(I2D)
    r = subprocess.run([sys.executable, str(script), str(tmp_path / "in.parquet"), str(tmp_path / "peer")],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    peer = {row["url"]: row for row in pd.read_parquet(tmp_path / "peer" / "00000.parquet").to_dict("records")}
    assert set(peer) == set(peer_urls)
    columns = set(pq.read_schema(tmp_path / "peer" / "00000.parquet").names) - {"jpg"}
    assert columns <= set(pq.read_schema(attempts_path(str(jobs), job)).names)
    for url in peer_urls:
        assert ours[url]["status"] == peer[url]["status"], url
        assert ours[url]["exif"] == peer[url]["exif"], url
        assert ours[url]["sha256"] == peer[url]["sha256"], url
        if peer[url]["status"] == "success":
            assert [ours[url][k] for k in ("width", "height", "original_width", "original_height")] == [
                int(peer[url][k]) for k in ("width", "height", "original_width", "original_height")]

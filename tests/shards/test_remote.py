"""The shards stage reading and writing object stores: S3 and GCS API servers on loopback."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.shards.test_download import _image, curated_run, serve, shards_config, webclip
from webclip.layout import table_path


def _s3(monkeypatch: pytest.MonkeyPatch):
    server_mod = pytest.importorskip("moto.server", reason="moto[s3] (a dev dependency) is not installed")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for key, value in {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "test",
                       "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    return server.stop


class MetadataHandler(BaseHTTPRequestHandler):
    """Google's compute metadata server as google.auth reads it: the GCE ping, the project, the default service
    account and a token (which the storage emulator ignores)."""

    ANSWERS = {"project/project-id": "test", "universe/universe-domain": "googleapis.com",
               "instance/service-accounts/default/": json.dumps({"email": "test@test.iam.gserviceaccount.com",
                                                                 "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
                                                                 "aliases": ["default"]}),
               "instance/service-accounts/default/token": json.dumps({"access_token": "loopback", "expires_in": 3600,
                                                                      "token_type": "Bearer"})}

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?")[0].removeprefix("/computeMetadata/v1/")
        body = self.ANSWERS.get(path, "").encode() if path != "/" else b""
        self.send_response(200)
        self.send_header("Metadata-Flavor", "Google")
        self.send_header("Content-Type", "application/json" if body[:1] == b"{" else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass


def _gs(monkeypatch: pytest.MonkeyPatch):
    emulator = pytest.importorskip("gcp_storage_emulator.server", reason="gcp-storage-emulator (dev) is not installed")
    port = free_port()
    server = emulator.create_server("127.0.0.1", port, in_memory=True, default_bucket="webclip")
    server.start()
    metadata = ThreadingHTTPServer(("127.0.0.1", free_port()), MetadataHandler)
    threading.Thread(target=metadata.serve_forever, daemon=True).start()
    mds = f"127.0.0.1:{metadata.server_address[1]}"
    # gcsfs honours the emulator; its bucket-layout probe (a gRPC API the emulator lacks) is turned off. Beam's GCS
    # client asks google.auth for credentials: from the metadata server on loopback (the real one's address is not
    # loopback; without one, Beam retries google.auth for 24 s).
    for key, value in {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}", "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
                       "FSSPEC_GS_TOKEN": "anon", "FSSPEC_GS_PROJECT": "test", "GCE_METADATA_HOST": mds,
                       "GCE_METADATA_IP": mds}.items():
        monkeypatch.setenv(key, value)

    def stop() -> None:
        server.stop()
        metadata.shutdown()

    return stop


@pytest.fixture(params=["s3", "gs"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """An object store API server on 127.0.0.1 with bucket ``webclip``; the environment points clients at it.

    ``s3``: moto's S3 server; ``gs``: gcp-storage-emulator. Yields (fsspec filesystem, protocol).
    """
    stop = {"s3": _s3, "gs": _gs}[request.param](monkeypatch)
    import fsspec

    fs = fsspec.filesystem(request.param, skip_instance_cache=True)
    if request.param == "s3":
        fs.mkdir("webclip")
    yield fs, request.param
    stop()


def test_shards_read_curated_from_a_bucket_and_write_final_shards_there(store, tmp_path: Path) -> None:
    fs, proto = store
    server, base = serve("127.0.0.7")
    try:
        _shards_on_a_bucket(fs, proto, base, tmp_path)
    finally:
        server.shutdown()


def _shards_on_a_bucket(fs, proto: str, base: str, tmp_path: Path) -> None:  # noqa: ANN001
    urls = [f"{base}/good/{i}.jpg" for i in range(24)] + [f"{base}/missing.jpg"]
    local, remote = tmp_path / "local", tmp_path / "remote"
    curated_run(local, urls)
    curated_run(remote, urls)
    fs.put(table_path(remote, "curated") + "/part-00000.parquet", "webclip/curated/data/part-00000.parquet")
    # An evaluation image equal to one served image: in a local folder for one run, in the bucket for the other.
    (tmp_path / "heldout").mkdir()
    (tmp_path / "heldout" / "eval-3.jpg").write_bytes(_image(3))
    fs.pipe_file("webclip/heldout/eval-3.jpg", _image(3))
    local_cfg = shards_config(tmp_path, samples_per_job=10, decontaminate=[str(tmp_path / "heldout")])
    cfg = shards_config(tmp_path, samples_per_job=10, decontaminate=[f"{proto}://webclip/heldout"])
    bucket_args = ["--curated-path", f"{proto}://webclip/curated", "--output-path", f"{proto}://webclip/run1/shards"]
    assert webclip("shards", "--run", str(local), "--config", str(local_cfg)).returncode == 0
    r = webclip("shards", "--run", str(remote), "--config", str(cfg), *bucket_args)
    assert r.returncode == 0, r.stderr[-3000:]
    stats = json.loads((remote / "shards" / "stats.json").read_text())
    assert stats["final_path"] == f"{proto}://webclip/run1/shards/final"
    assert stats["in"] == 25 and stats["kept"] == 23
    assert stats["dropped"] == {"download/http_404": 1, "decontam/exact_eval_overlap": 1}
    assert not (remote / "shards" / "final").exists() and not (remote / "shards" / "jobs").exists()
    # Same bytes whichever storage they went to.
    local_manifest = json.loads((local / "shards" / "final" / "manifest.json").read_text())
    remote_manifest = json.loads(fs.cat_file("webclip/run1/shards/final/manifest.json"))
    assert remote_manifest == local_manifest
    for entry in remote_manifest["train"] + remote_manifest["val"]:
        assert hashlib.sha256(fs.cat_file(f"webclip/run1/shards/final/{entry['name']}")).hexdigest() == entry["sha256"]
    assert fs.exists("webclip/run1/shards/jobs/00000_stats.json")
    assert fs.exists("webclip/run1/shards/samples/part-00000.parquet") and not (remote / "shards" / "samples").exists()
    # The trainer's reader finds and streams them through the same path the run recorded.
    from webclip.model.data import iter_tar, read_manifest
    from webclip.runfolder import shards_final

    tars = read_manifest(shards_final(remote), "train")
    assert tars[0].startswith(f"{proto}://webclip/run1/shards/final/")
    assert sum(1 for _ in iter_tar(tars[0])) == remote_manifest["train"][0]["samples"]
    # A takedown rewrites the remote shards.
    request = tmp_path / "takedown.txt"
    request.write_text(urls[0] + "\n")
    assert webclip("takedown", "--run", str(remote), "--urls", str(request)).returncode == 0
    after = json.loads(fs.cat_file("webclip/run1/shards/final/manifest.json"))
    assert after["totals"]["train"] + after["totals"]["val"] == 22
    # --force redoes the remote output too: nothing of the earlier run survives, and the taken-down sample stays
    # out (the run's denylist holds it).
    fs.pipe_file("webclip/run1/shards/jobs/stray.txt", b"left by an earlier run")
    r = webclip("shards", "--run", str(remote), "--config", str(cfg), *bucket_args, "--force")
    assert r.returncode == 0, r.stderr[-3000:]
    assert not fs.exists("webclip/run1/shards/jobs/stray.txt")
    redone = json.loads(fs.cat_file("webclip/run1/shards/final/manifest.json"))
    assert redone["totals"]["train"] + redone["totals"]["val"] == 22

"""Every Beam stage on SDK workers that cannot see the launcher's temporary files, output on loopback S3.

The workers come from Beam's worker pool (``worker_pool_main``) started inside a private mount namespace
(``unshare --mount``) with a fresh tmpfs over the launcher's temporary directory: a file the launcher makes
there does not exist for them, as on a cluster. Only the test's ``shared`` folder (a network disk, as it
were) is bound back. Pipelines run on PortableRunner with an embedded job service and an EXTERNAL
environment; each worker is first set up as a runner's boot sets one up (its pipeline's options from the
provision service, handed to FileSystems). Every stage's output is compared byte for byte with a
DirectRunner run on local disk. Skipped, with the reason, where ``unshare --mount`` is not permitted.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port
from tests.shards.test_download import curated_run, serve, shards_config

pytestmark = [pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mount namespaces are Linux only"),
              pytest.mark.timeout(300)]  # a worker that never dials back would leave the runner waiting

BUCKET = "webclip-isolation"  # moto keeps buckets process-wide: other tests' buckets must not collide
# Beam's worker pool, each SDK worker a thread of this one process (imports stay warm between pipelines), set
# up first as a runner's boot sets a worker up: its pipeline's options from the provision service, so that
# FileSystems (s3://, gs://) gets them, as ``sdk_worker_main`` does.
POOL = '''
import sys

import grpc
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability.api import beam_provision_api_pb2 as pb, beam_provision_api_pb2_grpc as pb_grpc
from apache_beam.runners.worker.sdk_worker_main import _load_pipeline_options
from apache_beam.runners.worker.worker_pool_main import BeamFnExternalWorkerPoolServicer
from google.protobuf import json_format


class Pool(BeamFnExternalWorkerPoolServicer):
    def StartWorker(self, request, context):
        with grpc.insecure_channel(request.provision_endpoint.url) as channel:
            info = pb_grpc.ProvisionServiceStub(channel).GetProvisionInfo(
                pb.GetProvisionInfoRequest(), metadata=[("worker_id", request.worker_id)]).info
        options = _load_pipeline_options(json_format.MessageToJson(info.pipeline_options))
        FileSystems.set_options(PipelineOptions.from_dictionary(options))
        return super().StartWorker(request, context)


_, server = Pool.start(use_process=False, port=int(sys.argv[1]))
server.wait_for_termination()
'''
# The namespace's setup: keep a handle on the shared folder, cover the launcher's temp dir, bind the folder back.
NAMESPACE = '''set -e
exec 3<"$SHARED"
mount -t tmpfs webclip-worker-tmp "$HIDDEN"
mkdir -p "$SHARED"
mount --no-canonicalize --bind "/proc/$$/fd/3" "$SHARED"
exec 3<&-
export TMPDIR="$HIDDEN"
exec python "$POOL" "$PORT"
'''


def _unshare_refused() -> str | None:
    """Why a private mount namespace with its own tmpfs cannot be made here (None: it can)."""
    if not shutil.which("unshare"):
        return "unshare (util-linux) is not installed"
    probe = ["unshare", "--mount", "--propagation", "private", "mount", "-t", "tmpfs", "t", tempfile.gettempdir()]
    r = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    return None if r.returncode == 0 else f"unshare --mount is not permitted here: {r.stderr.strip()[:200]}"


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server on 127.0.0.1 with bucket ``webclip-isolation``; the environment (launcher and workers) points at it."""
    server_mod = pytest.importorskip("moto.server", reason="moto[s3] (a dev dependency) is not installed")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "test",
                           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
            mp.setenv(key, value)
        import fsspec
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()  # a cached client of an earlier module's server would be reused
        fs = fsspec.filesystem("s3", skip_instance_cache=True)
        if not fs.exists(BUCKET):  # moto's state outlives a server in the same process
            fs.mkdir(BUCKET)
        yield fs
        s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder both sides see (inputs and local outputs of the isolated runs)."""
    return tmp_path_factory.mktemp("shared")


@pytest.fixture(scope="module")
def pool(s3, shared: Path):
    """Beam's worker pool in a private mount namespace; yields its port."""
    why = _unshare_refused()
    if why:
        pytest.skip(why)
    pool_main = shared / "worker_pool.py"
    pool_main.write_text(POOL)
    port = free_port()
    env = {**os.environ, "SHARED": str(shared), "HIDDEN": os.path.realpath(tempfile.gettempdir()), "PORT": str(port),
           "POOL": str(pool_main), "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(REPO)}
    log = open(shared / "pool.log", "wb")  # noqa: SIM115 (open for the pool's whole life)
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "bash", "-c", NAMESPACE], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_port(port, proc, shared / "pool.log")
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the pool and the SDK workers it started: its own session
        proc.wait(timeout=30)
        log.close()


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker pool exited: {log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("worker pool did not listen within 60 s")


@pytest.fixture()
def isolated(pool: int, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Runner fields that send a stage's pipelines to the isolated workers."""
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    # Workers dial back to the runner at this host; Beam would use getfqdn(), which need not be loopback.
    monkeypatch.setattr(worker_handlers.ExternalWorkerHandler, "host_from_worker", lambda self: "127.0.0.1")
    monkeypatch.setattr(FileSystems, "_pipeline_options", None)  # each stage starts as a fresh launcher does
    return {"runner": "PortableRunner", "pipeline_args": [
        "--job_endpoint=embed", "--environment_type=EXTERNAL", f"--environment_config=127.0.0.1:{pool}",
        "--requirements_cache=skip", "--sdk_location=container"]}


LOCAL = {"direct_running_mode": "in_memory", "direct_num_workers": 1}
STAGE_FOLDERS = {"crawl": "candidates", "queries": "queries", "curate": "curated", "shards": "shards"}


def _stage(name: str, run: Path, section: dict) -> dict:
    """Run one stage through the CLI's entry point, in this process (the launcher)."""
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.value_provider import RuntimeValueProvider

    from webclip.cli import main

    FileSystems._pipeline_options = None  # as in a fresh launcher process: no filesystem options yet
    RuntimeValueProvider.runtime_options = None
    cfg = run.parent / f"{run.name}-{name}.json"
    cfg.write_text(json.dumps({name: section}))
    assert main([name, "--run", str(run), "--config", str(cfg)]) == 0
    return json.loads((run / STAGE_FOLDERS[name] / "stats.json").read_text())


def test_workers_do_not_see_the_launchers_temporary_files(isolated: dict, shared: Path) -> None:
    import apache_beam as beam
    from apache_beam.metrics import Metrics

    from webclip.beamio import collect_counters, pipeline_options

    fd, launcher_file = tempfile.mkstemp(prefix="launcher-only-")
    os.close(fd)
    shared_file = shared / "seen-by-both"
    shared_file.write_text("x")
    launcher_pid = os.getpid()

    def probe(path: str) -> None:
        seen = "seen" if os.path.exists(path) else "unseen"
        Metrics.counter("webclip", f"probe/{Path(path).name.split('-')[0]}_{seen}").inc()
        Metrics.counter("webclip", "probe/other_process" if os.getpid() != launcher_pid else "probe/launcher").inc()

    def counters(runner: str, args: list[str]) -> dict[str, int]:
        with beam.Pipeline(options=pipeline_options(runner, 1, "in_memory", args)) as p:
            p | beam.Create([launcher_file, str(shared_file)]) | beam.Map(probe)
        return collect_counters(p.result)

    try:
        assert counters(isolated["runner"], isolated["pipeline_args"]) == {
            "probe/launcher_unseen": 1, "probe/seen_seen": 1, "probe/other_process": 2}
        # The same probe run by the launcher itself sees its file: the probe can fail.
        assert counters("DirectRunner", []) == {"probe/launcher_seen": 1, "probe/seen_seen": 1, "probe/launcher": 2}
    finally:
        os.unlink(launcher_file)


def _warc(path: Path, pages: int = 24) -> None:
    """A small WARC of HTML pages with captioned images (image URLs are never fetched)."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    words = ["red", "car", "hot", "dog", "new", "york", "city", "street", "small", "cat", "on", "a", "sofa"]
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        for i in range(pages):
            imgs = "".join(f'<img src="/img/{i}-{j}.jpg" alt="{words[(i + j) % 13]} {words[(i * j + 1) % 13]} '
                           f'{words[(i + 2 * j) % 13]} photo {j}">' for j in range(6))
            body = f"<html lang=en><head><title>p{i}</title></head><body>{imgs}</body></html>".encode()
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(f"http://site{i % 4}.example/page{i}.html", "response",
                                                          payload=io.BytesIO(body), http_headers=headers))


def _same_files(fs, remote: str, local: Path, pattern: str = "part-*.parquet") -> int:  # noqa: ANN001
    """Assert the remote folder holds the local folder's files, byte for byte; returns how many."""
    names = sorted(p.name for p in local.glob(pattern))
    assert names and sorted(Path(p).name for p in fs.glob(f"{remote}/{pattern}")) == names, remote
    for name in names:
        assert fs.cat_file(f"{remote}/{name}") == (local / name).read_bytes(), name
    return len(names)


def test_crawl_cc_queries_and_curate_on_isolated_workers_with_s3(isolated: dict, s3, shared: Path) -> None:
    from webclip.layout import table_path

    archive = shared / "site.warc.gz"
    _warc(archive)
    s3.put(str(archive), f"{BUCKET}/in/site.warc.gz")
    crawl = {"source": "cc", "num_parts": 2, "progress": False}
    local, remote = shared / "local", shared / "remote"
    ref = _stage("crawl", local, {**crawl, **LOCAL, "paths": [str(archive)]})
    out = _stage("crawl", remote, {**crawl, **isolated, "paths": [f"s3://{BUCKET}/in/site.warc.gz"],
                                   "output_path": f"s3://{BUCKET}/run/candidates"})
    assert out.pop("output") == f"s3://{BUCKET}/run/candidates" and out == ref and ref["kept"] == 24 * 6
    _same_files(s3, f"{BUCKET}/run/candidates/data", Path(table_path(local, "candidates")))
    assert table_path(remote, "candidates") == f"s3://{BUCKET}/run/candidates/data"  # curate finds them there
    assert not (remote / "candidates" / "data").exists()

    # The bigram job reads the candidates' alt texts from S3; its scratch files go to --temp_location.
    titles = shared / "titles.txt"
    titles.write_text("hot dog\nsofa\n")
    queries = {"titles_file": str(titles), "wordfreq_max": 60, "bigram_min_count": 2, "bigram_min_pmi": 0.0}
    _stage("queries", local, {**queries, **LOCAL, "bigram_corpus": [str(Path(table_path(local, "candidates")))]})
    temp = f"s3://{BUCKET}/tmp"
    _stage("queries", remote, {**queries, "runner": isolated["runner"],
                               "pipeline_args": [*isolated["pipeline_args"], f"--temp_location={temp}"],
                               "bigram_corpus": [f"s3://{BUCKET}/run/candidates/data"]})
    for name in ("queries.json", "queries.parquet", "stats.json"):
        assert (remote / "queries" / name).read_bytes() == (local / "queries" / name).read_bytes(), name
    assert json.loads((local / "queries" / "stats.json").read_text())["per_source"]["bigrams"] > 0
    assert not s3.glob(f"{BUCKET}/tmp/**") and not list((remote / "queries").glob("_scratch-*"))

    curate = {"progress": False, "num_parts": 2, "lang_detector": "langdetect"}
    ref = _stage("curate", local, {**curate, **LOCAL, "queries": str(local / "queries" / "queries.json")})
    # Candidates from S3, where the crawl recorded them (its stats.json ``output``); a query list only the
    # launcher sees, which curate copies under --temp_location for the workers; output in the run folder
    # (every write to S3 costs Beam a new boto3 client: slow here).
    hidden = Path(tempfile.mkdtemp(prefix="launcher-queries-"))
    shutil.copy(remote / "queries" / "queries.json", hidden / "queries.json")
    try:
        out = _stage("curate", remote, {**curate, "runner": isolated["runner"], "queries": str(hidden / "queries.json"),
                                        "pipeline_args": [*isolated["pipeline_args"], f"--temp_location={temp}"]})
    finally:
        shutil.rmtree(hidden)
    assert not s3.glob(f"{BUCKET}/tmp/**")
    assert ref["kept"] > 0 and {k: out[k] for k in ("in", "kept", "dropped", "matched")} == {
        k: ref[k] for k in ("in", "kept", "dropped", "matched")}
    for table in ("curated", "pool", "query_counts"):
        mine, theirs = Path(table_path(remote, table)), Path(table_path(local, table))
        assert sorted(p.name for p in mine.iterdir()) == sorted(p.name for p in theirs.iterdir()), table
        for part in theirs.iterdir():
            assert (mine / part.name).read_bytes() == part.read_bytes(), part


def test_near_duplicate_search_hands_its_edges_over_s3(isolated: dict, s3) -> None:
    import random

    from webclip.config import BeamRunner
    from webclip.dedupe.images import duplicate_groups
    from webclip.shards.neardup import duplicate_groups_beam

    rng = random.Random(1)
    items = []
    for i in range(200):
        h = rng.getrandbits(64)
        items += [(f"u{i:04d}", f"sha{i}", f"{h:016x}")]
        if i % 8 == 0:  # a near copy (2 bits flipped) and an exact copy
            items += [(f"n{i:04d}", f"shaN{i}", f"{h ^ 0b11:016x}"), (f"e{i:04d}", f"sha{i}", f"{h:016x}")]
    expected = duplicate_groups(items, threshold=2)
    assert len(expected) == 50
    assert duplicate_groups_beam(items, 2, BeamRunner(**isolated), f"s3://{BUCKET}/nd") == expected
    assert not s3.glob(f"{BUCKET}/nd/**")  # the scratch file, read and removed


@pytest.mark.timeout(150)
def test_shards_with_the_beam_near_duplicate_path_on_isolated_workers(isolated: dict, s3, shared: Path) -> None:
    server, base = serve("127.0.0.9")
    try:
        urls = [f"{base}/good/{i}.jpg" for i in range(16)] + [f"{base}/missing.jpg"]
        local, remote = shared / "sh-local", shared / "sh-remote"
        curated_run(local, urls)
        curated_run(remote, urls)
        s3.put(str(remote / "curated" / "data" / "part-00000.parquet"), f"{BUCKET}/sh/curated/data/part-00000.parquet")
        over = json.loads(shards_config(shared).read_text())["shards"]  # one job: no host shared over jobs
        ref = _stage("shards", local, {**over, **LOCAL})  # in-process near-duplicate search (below 200k images)
        out = _stage("shards", remote, {**over, **isolated, "dedupe_on_beam_from": 0,
                                        "curated_path": f"s3://{BUCKET}/sh/curated",
                                        "output_path": f"s3://{BUCKET}/sh/shards"})
    finally:
        server.shutdown()
    assert out["in"] == ref["in"] == 17 and out["kept"] == ref["kept"] and out["dropped"] == ref["dropped"]
    final = Path(ref.get("final_path") or local / "shards" / "final")
    assert json.loads(s3.cat_file(f"{BUCKET}/sh/shards/final/manifest.json")) == json.loads(
        (final / "manifest.json").read_text())
    assert _same_files(s3, f"{BUCKET}/sh/shards/final", final, "*.tar") >= 1
    assert not s3.glob(f"{BUCKET}/sh/shards/_scratch-*")  # the edges' scratch file, read and removed

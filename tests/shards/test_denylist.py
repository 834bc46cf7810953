"""Opt-outs that stick: the run-wide denylist, the journalled takedown, and every stage honouring them."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.shards.test_download import _image, curated_run, serve, shards_config, webclip
from webclip import denylist
from webclip.denylist import Denylist, Entry, build, match, parse_line, parse_lines
from webclip.hashing import candidate_uid
from webclip.layout import part_name, table_path
from webclip.parquet import iter_rows, parts, write_rows
from webclip.records import POOL_SCHEMA
from webclip.runfolder import atomic_write_json

# ---------------------------------------------------------------- the pure rules


def test_request_lines_become_normalised_entries() -> None:
    sha = "AB" * 32
    assert parse_lines(["# a comment", "", "HTTP://Example.COM:80/a.jpg?utm_source=x&b=2&a=1  # why",
                        "Shop.Example.co.uk.", sha, "page_url https://example.org/p", "sha256 nothex"]) == sorted([
        Entry("url", "http://example.com/a.jpg?a=1&b=2"), Entry("domain", "shop.example.co.uk"),
        Entry("sha256", sha.lower()), Entry("page_url", "https://example.org/p")])
    assert parse_line("domain https://Cdn.Example.com/x") == Entry("domain", "cdn.example.com")


def test_match_names_the_rule_and_domains_cover_subdomains_only() -> None:
    deny = build(parse_lines(["http://a.test/x.jpg", "page_url http://p.test/page", "example.com", "10.0.0.1",
                              "sha256 " + "0" * 64]))
    assert match(deny, "http://A.TEST/x.jpg?fbclid=1") == "image_url"
    assert match(deny, "http://z.test/x.jpg", page_url="http://a.test/x.jpg") == "page_url"  # "url": image or page
    assert match(deny, "http://z.test/y.jpg", page_url="http://p.test/page") == "page_url"
    assert match(deny, "http://p.test/page") is None  # a page_url entry is not an image rule
    assert match(deny, "https://img.cdn.example.com/1.jpg") == "domain"
    assert match(deny, "https://notexample.com/1.jpg") is None
    assert match(deny, "http://10.0.0.1/1.jpg") == "domain" and match(deny, "http://110.0.0.1/1.jpg") is None
    assert match(deny, "http://z.test/1.jpg", sha256="0" * 64) == "sha256"
    assert match(Denylist(), "http://a.test/x.jpg") is None


@given(st.from_regex(r"https?://[a-z]{1,8}(\.[a-z]{2,5}){1,2}(/[a-zA-Z0-9._-]{0,8}){0,3}(\?[a-z]=[0-9])?", fullmatch=True))
def test_a_denied_url_is_denied_however_it_is_spelt(url: str) -> None:
    deny = build([parse_line(url)])
    p = urlsplit(url)
    port = {"http": 80, "https": 443}[p.scheme]
    query = f"?{p.query}" if p.query else ""
    # RFC 3986 6.2.2-6.2.3: scheme and host are case-insensitive, a default port and an empty path mean the same
    for spelling in (url, f"{p.scheme.upper()}://{p.hostname.upper()}:{port}{p.path or '/'}{query}",
                     url + ("&" if query else "?") + "utm_medium=m"):
        assert match(deny, spelling) == "image_url", spelling
    assert denylist.url_admitted(deny, url) is False
    assert match(build(parse_lines([p.hostname])), url) == "domain"


def test_curate_drops_denylisted_after_the_pages_own_opt_out() -> None:
    from webclip.pipelines.config import CurateConfig
    from webclip.pipelines.filters import filter_reason, optout_entries

    row = {"image_url": "http://a.test/x.jpg", "page_url": "http://p.test/", "caption": "a fine red bicycle",
           "opt_out": False, "width": None, "height": None}
    deny = build(parse_lines(["a.test"]))
    assert filter_reason(row, CurateConfig()) is None
    assert filter_reason(row, CurateConfig(), deny) == denylist.REASON
    assert filter_reason({**row, "opt_out": True}, CurateConfig(), deny) == "filter/opt_out"
    assert optout_entries([{**row, "opt_out": True}, row]) == [Entry("page_url", "http://p.test/", "opt_out/page")]


def test_the_crawl_frontier_never_admits_a_denied_page() -> None:
    from webclip.crawl.config import CrawlConfig
    from webclip.crawl.frontier import Frontier

    deny = build(parse_lines(["http://site.test/private", "blocked.test"]))
    frontier = Frontier(CrawlConfig(), ["http://site.test/"], deny=deny)
    for url in ("http://site.test/private", "http://cdn.blocked.test/a", "http://site.test/ok"):
        frontier.admit(url, 1)
    assert frontier.links.dropped["crawl/denylisted"] == 2 and frontier.links.kept == 2


def test_training_reads_can_skip_denied_samples() -> None:
    deny = build(parse_lines(["http://a.test/x.jpg"]))
    sample = {"json": json.dumps({"image_url": "http://a.test/x.jpg", "page_url": "http://p.test/"}).encode()}
    assert denylist.sample_denied(deny, sample) and not denylist.sample_denied(Denylist(), sample)


def test_denylist_files_are_sorted_atomic_and_shared(tmp_path) -> None:
    run, shared = tmp_path / "run", tmp_path / "shared.jsonl"
    denylist.set_shared(run, str(shared))
    assert denylist.record(run, "takedown-x", parse_lines(["b.test", "a.test", "a.test"]), shared=True) == 2
    assert denylist.record(run, "takedown-x", parse_lines(["a.test"]), shared=True) == 0
    own = (denylist.folder(run) / "takedown-x.jsonl").read_bytes()
    assert own == shared.read_bytes() and own.decode().splitlines()[0].count("a.test") == 1
    other = tmp_path / "other"
    denylist.set_shared(other, str(shared))  # another run pointed at the same shared file
    assert match(denylist.for_run(other), "http://x.b.test/1.jpg") == "domain"


# ---------------------------------------------------------------- takedown on a real shards run

def pool_run(run: Path, urls: list[str], extra: list[str]) -> None:
    """A finished curate with one curated pair per URL, and a pool of those plus ``extra`` (balanced away)."""
    curated_run(run, urls)
    curated = list(iter_rows(parts(table_path(run, "curated"))))
    more = [{**curated[0], "image_url": u, "uid": candidate_uid(u, f"a test picture number {i + 1000}"),
             "alt": f"a test picture number {i + 1000}", "caption": f"a test picture number {i + 1000}"}
            for i, u in enumerate(extra)]
    pool = [{**r, "kept": True} for r in curated] + [{**r, "kept": False} for r in more]
    write_rows(Path(table_path(run, "pool")) / part_name(0), pool, POOL_SCHEMA)
    stats = json.loads((run / "curated" / "stats.json").read_text())
    stats.update(matched=len(pool), tables={"pool": {"folder": "pool", "rows": len(pool), "columns": POOL_SCHEMA.names}})
    atomic_write_json(run / "curated" / "stats.json", stats)


def uids_in(run: Path) -> dict[str, set[str]]:
    """Every uid each place of the run still holds: final tars, samples, job tars and tables, pool."""
    import tarfile

    shards = run / "shards"
    out: dict[str, set[str]] = {}
    for where, tars in (("final", shards.glob("final/*.tar")), ("jobs", shards.glob("jobs/*.tar"))):
        out[where] = set()
        for t in tars:
            with tarfile.open(t) as f:
                out[where] |= {m.name.split(".")[0] for m in f.getmembers()}
    for where, files in (("samples", shards.glob("samples/*.parquet")), ("job_tables", shards.glob("jobs/*.parquet")),
                         ("attempts", shards.glob("jobs/attempts/*.parquet")), ("pool", (run / "curated" / "pool").glob("*.parquet"))):
        out[where] = {u for f in files for u in pq.read_table(f, columns=["uid"])["uid"].to_pylist()}
    return out


def check_consistent(run: Path) -> dict:
    """The accounting identity in the stage and every job, and the stats agreeing with what is on disk."""
    stats = json.loads((run / "shards" / "stats.json").read_text())
    assert stats["in"] == stats["kept"] + sum(stats["dropped"].values())
    for js in (run / "shards" / "jobs").glob("*_stats.json"):
        j = json.loads(js.read_text())
        assert j["in"] == j["kept"] + sum(j["dropped"].values()), js
    manifest = json.loads((run / "shards" / "final" / "manifest.json").read_text())
    assert stats["kept"] == len(uids_in(run)["final"]) == len(uids_in(run)["samples"]) == sum(manifest["totals"].values())
    assert stats["shards"] == manifest["totals"] and stats["tables"]["samples"]["rows"] == stats["kept"]
    curated = json.loads((run / "curated" / "stats.json").read_text())
    assert curated["matched"] == len(uids_in(run)["pool"])
    recorded = json.loads((run / "shards" / "config.json").read_text())["inputs"]["curated"]
    assert recorded == hashlib.sha256((run / "curated" / "stats.json").read_bytes()).hexdigest()
    return stats


@pytest.fixture(scope="module")
def hosts():
    servers = [serve("127.0.0.91"), serve("127.0.0.92")]
    yield servers
    for server, _ in servers:
        server.shutdown()


@pytest.fixture(scope="module")
def sharded(hosts, tmp_path_factory) -> tuple[Path, Path, list[str], list[str]]:
    """A finished shards run over two hosts (20 + 10 images), with 6 more pool-only pairs; and its config."""
    (_, a), (_, b) = hosts
    tmp = tmp_path_factory.mktemp("denylist")
    urls = [f"{a}/good/{i}.jpg" for i in range(20)] + [f"{b}/good/{i}.jpg" for i in range(100, 110)]
    extra = [f"{a}/good/{i}.jpg" for i in range(200, 206)]
    run = tmp / "run"
    pool_run(run, urls, extra)
    cfg = shards_config(tmp, shard_size=5, min_shards=1, samples_per_job=12, val_fraction=0.1,
                        direct_running_mode="in_memory")
    r = webclip("shards", "--run", str(run), "--config", str(cfg))
    assert r.returncode == 0, r.stderr[-3000:]
    return run, cfg, urls, extra


def request(tmp: Path, urls: list[str]) -> tuple[Path, set[str]]:
    """A takedown of one image URL (spelt with a tracking parameter), host 127.0.0.92 and one image's sha256."""
    sha = hashlib.sha256(_image(5)).hexdigest()
    path = tmp / "takedown.txt"
    path.write_text(f"# owner request\nimage_url {urls[0]}?utm_source=mail\n127.0.0.92\n{sha.upper()}\n")
    alt = {u: f"a test picture number {i}" for i, u in enumerate(urls)}
    denied = {candidate_uid(u, alt[u]) for u in urls if "127.0.0.92" in u or u in (urls[0], urls[5])}
    return path, denied


@pytest.mark.slow
def test_takedown_purges_everything_and_nothing_brings_it_back(sharded, hosts, tmp_path) -> None:
    src, cfg, urls, extra = sharded
    run = tmp_path / "run"
    shutil.copytree(src, run, symlinks=True)
    before = json.loads((run / "shards" / "stats.json").read_text())
    req, denied = request(tmp_path, urls)
    assert denied <= uids_in(run)["final"] | uids_in(run)["jobs"] and len(denied) == 12
    examples = {"unit": "candidates", "examples": {"lang/not_kept": [{"image_url": urls[0], "page_url": "http://example.com/"},
                                                                     {"image_url": urls[2], "page_url": "http://example.com/"}]}}
    atomic_write_json(run / "curated" / "drop_examples.json", examples)  # what the explorer shows
    r = webclip("takedown", "--run", str(run), "--urls", str(req))
    assert r.returncode == 0, r.stderr[-3000:]
    held = uids_in(run)
    assert all(not (denied & uids) for uids in held.values()), {k: len(denied & v) for k, v in held.items()}
    stats = check_consistent(run)
    gone = before["kept"] - stats["kept"]
    assert {k: stats["dropped"].get(k, 0) - before["dropped"].get(k, 0) for k in stats["dropped"]
            if stats["dropped"].get(k, 0) != before["dropped"].get(k, 0)} == {
        "takedown/domain": 10, "takedown/image_url": 1, "takedown/sha256": 1} and gone == 12
    record = json.loads((run / "shards" / "takedowns.jsonl").read_text().splitlines()[-1])
    assert record["removed"] == 12 and record["pool_rows_removed"] == 12
    assert not (run / "shards" / "_takedown.json").exists()
    shown = json.loads((run / "curated" / "drop_examples.json").read_text())["examples"]["lang/not_kept"]
    assert [e["image_url"] for e in shown] == [urls[2]]
    r = webclip("shards", "--run", str(run), "--config", str(cfg))  # the purged stage is still the curation's
    assert r.returncode == 0 and "already done" in r.stdout, r.stdout + r.stderr[-2000:]

    # A shared denylist (the config knob) adds one more image; then shards --force and the ablation's sampling.
    shared = tmp_path / "shared.jsonl"
    shared.write_text(json.dumps({"kind": "image_url", "value": urls[1], "source": "takedown"}) + "\n")
    data = json.loads(cfg.read_text()) | {"denylist": str(shared)}
    forced_cfg = tmp_path / "forced.json"
    forced_cfg.write_text(json.dumps(data))
    started = time.time()
    r = webclip("shards", "--run", str(run), "--config", str(forced_cfg), "--force")
    assert r.returncode == 0, r.stderr[-3000:]
    denied.add(candidate_uid(urls[1], "a test picture number 1"))
    fetched = {base + path for server, base in hosts for t, path in server.log if t >= started}
    denied_urls = {u for i, u in enumerate(urls) if candidate_uid(u, f"a test picture number {i}") in denied}
    assert len(denied_urls) == 13 and not fetched & denied_urls and fetched  # the others were fetched again
    assert not denied & uids_in(run)["final"]
    stats = json.loads((run / "shards" / "stats.json").read_text())
    assert stats["dropped"][denylist.REASON] == 13 and stats["kept"] == 30 - 13

    from webclip.ablation import unbalanced_sample

    for seed in range(5):
        sample = {r["uid"] for r in unbalanced_sample(run, seed)}
        assert sample and not sample & denied, seed


KILL_MIDWAY = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from webclip import storage
    from webclip.shards import takedown
    real, seen = storage.write_bytes, []
    def write_then_die(path, data):
        real(path, data)
        if str(path).endswith(".tar") and "/final/" in str(path):
            os.kill(os.getpid(), signal.SIGKILL)  # the first final tar rewritten: jobs done, final half, no stats
    storage.write_bytes = write_then_die
    takedown.apply_takedown(Path(sys.argv[1]), Path(sys.argv[2]).read_text().splitlines())
""")


def test_a_takedown_killed_midway_finishes_on_the_next_call_with_the_same_result(sharded, tmp_path) -> None:
    src, _, urls, _ = sharded
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    for run in (killed, clean):
        shutil.copytree(src, run, symlinks=True)
    req, denied = request(tmp_path, urls)
    before = (killed / "shards" / "stats.json").read_bytes()
    p = subprocess.run([sys.executable, "-c", KILL_MIDWAY, str(killed), str(req)], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    assert (killed / "shards" / "_takedown.json").exists() and (killed / "shards" / "stats.json").read_bytes() == before
    assert denied & uids_in(killed)["final"]  # half done: some final tars still hold them

    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert webclip("takedown", "--run", str(killed), "--urls", str(empty)).returncode == 0
    assert webclip("takedown", "--run", str(clean), "--urls", str(req)).returncode == 0
    assert check_consistent(killed) == check_consistent(clean)
    assert not any(denied & uids for uids in uids_in(killed).values())
    files = sorted(p.relative_to(clean) for p in clean.rglob("*") if p.is_file() and p.name != "takedowns.jsonl")
    assert files == sorted(p.relative_to(killed) for p in killed.rglob("*") if p.is_file() and p.name != "takedowns.jsonl")
    differ = [str(f) for f in files if (clean / f).read_bytes() != (killed / f).read_bytes()]
    assert differ == [], differ
    first = json.loads((killed / "shards" / "takedowns.jsonl").read_text().splitlines()[-2])
    assert first["removed"] == 12 and first["request"] == json.loads(
        (clean / "shards" / "takedowns.jsonl").read_text().splitlines()[-1])["request"]


def test_a_resumed_stage_keeps_no_sample_the_denylist_named_since(sharded, hosts, tmp_path) -> None:
    """Jobs finished before an entry was added are kept on resume; their denied samples never reach final/."""
    src, cfg, urls, _ = sharded
    run = tmp_path / "run"
    shutil.copytree(src, run, symlinks=True)
    (run / "shards" / "_SUCCESS").unlink()  # a stage killed after its jobs finished
    denylist.record(run, "takedown-manual", parse_lines([urls[3], "127.0.0.92"]))
    started = time.time()
    r = webclip("shards", "--run", str(run), "--config", str(cfg))
    assert r.returncode == 0, r.stderr[-3000:]
    assert not [path for server, _ in hosts for t, path in server.log if t >= started]  # every job was finished
    denied = {candidate_uid(u, f"a test picture number {i}") for i, u in enumerate(urls) if i == 3 or "127.0.0.92" in u}
    assert not denied & (uids_in(run)["final"] | uids_in(run)["samples"])
    stats = json.loads((run / "shards" / "stats.json").read_text())
    assert stats["dropped"][denylist.REASON] == 11 and stats["in"] == stats["kept"] + sum(stats["dropped"].values())

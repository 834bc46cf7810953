"""The live crawler on the served sample web: politeness, accounting, kill-and-resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.parquet as pq

from webclip.layout import table_path
from webclip.stats import check_identity


def _config(tmp_path, port: int, **crawl) -> str:
    cfg = {"crawl": {"seeds": [f"http://127.0.0.1:{port}/index.html"], "allow_private": [f"127.0.0.1:{port}"],
                     "per_host_delay": 0.0, "per_host_concurrency": 4, "concurrency": 4, "timeout": 1.0,
                     "retries": 0, "progress": False, "transient_retry_delay": 0.1, **crawl}}
    path = tmp_path / f"cfg{len(crawl)}.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def _crawl(run, cfg, *flags: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "webclip.cli", "crawl", "--run", str(run), "--config", cfg, *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _data(run) -> Path:
    return Path(table_path(run, "candidates"))


def _rows(run) -> list[tuple]:
    t = pq.read_table(_data(run) / "part-00000.parquet")
    return sorted(zip(t["uid"].to_pylist(), t["page_url"].to_pylist(), strict=True))


def test_crawl_accounts_for_every_page_and_image(served_web, tmp_path) -> None:
    _, _, port, log = served_web
    p = _crawl(tmp_path / "run", _config(tmp_path, port))
    assert p.wait(timeout=120) == 0, p.stderr.read()
    stats = json.loads((tmp_path / "run" / "candidates" / "stats.json").read_text())
    check_identity(stats)
    check_identity(stats["pages"])
    check_identity(stats["links"])
    assert stats["pages"]["in"] == stats["links"]["kept"]  # every admitted URL ends as one counted page
    for reason in ("crawl/robots_disallowed", "crawl/redirect_loop", "crawl/timeout", "crawl/http_404"):
        assert stats["pages"]["dropped"].get(reason, 0) >= 1, reason
    assert not any("/private/0" in line for line in log.read_text().splitlines())  # robots honoured
    rows = _rows(tmp_path / "run")
    assert len(rows) == stats["kept"]  # one row per <img>: the same pair may repeat on a page


def test_per_host_delay_is_honoured(served_web, tmp_path) -> None:
    _, _, port, log = served_web
    p = _crawl(tmp_path / "run", _config(tmp_path, port, per_host_delay=0.2, max_pages=8, per_host_concurrency=2))
    assert p.wait(timeout=120) == 0, p.stderr.read()
    times = sorted(float(line.split("\t")[0]) for line in log.read_text().splitlines())
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # Times are server arrivals: on a loaded machine one late arrival shortens the next gap by as much as it
    # lengthened its own, so pairs of gaps hold the delay even then (no delay at all gives gaps near 0).
    pairs = [b - a for a, b in zip(times, times[2:], strict=False)]
    assert len(times) >= 8 and min(gaps) >= 0.1 and min(pairs) >= 0.39, gaps


def _requests(log, start: int = 0) -> list[str]:
    return [line.split("\t")[1] for line in log.read_text().splitlines()[start:]]


def test_sigkill_then_resume_with_other_knobs_keeps_work_and_bytes(served_web, tmp_path) -> None:
    _, _, port, log = served_web
    full = _crawl(tmp_path / "full", _config(tmp_path, port))
    assert full.wait(timeout=120) == 0
    cfg = _config(tmp_path, port, per_host_delay=0.01, per_host_concurrency=1, concurrency=1, progress=True)
    before = len(log.read_text().splitlines())
    p = _crawl(tmp_path / "killed", cfg)
    journal = tmp_path / "killed" / "candidates" / "_work" / "journal.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not journal.exists() or len(journal.read_bytes().splitlines()) < 30):
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    at_kill = len(log.read_text().splitlines())
    finished = {urlsplit(json.loads(line)["url"]).path for line in journal.read_bytes().splitlines()
                if line.endswith(b"}")}
    assert not (tmp_path / "killed" / "candidates" / "_SUCCESS").exists()
    # Resumed with other run-time knobs: the journal is kept, not cleared.
    again = _crawl(tmp_path / "killed", cfg, "--no-progress", "--concurrency", "3", "--per-host-concurrency", "3")
    assert again.wait(timeout=120) == 0, again.stderr.read()
    full_parts = sorted(_data(tmp_path / "full").glob("part-*.parquet"))
    assert full_parts and [p.name for p in sorted(_data(tmp_path / "killed").iterdir())] == [p.name for p in full_parts]
    for part in full_parts:
        assert (_data(tmp_path / "killed") / part.name).read_bytes() == part.read_bytes()
    stats = [json.loads((tmp_path / run / "candidates" / "stats.json").read_text()) for run in ("full", "killed")]
    assert stats[0] == stats[1]
    # No page finished before the kill is fetched again; at most the one in flight at the kill is.
    after = {path for path in _requests(log, at_kill) if not path.startswith(("/robots.txt", "/sitemap", "/slow/"))}
    assert len(finished) >= 29 and not finished & after
    assert len(set(_requests(log, before)[:at_kill - before]) & after) <= 1
    # Finished: a rerun with only run-time knobs changed is skipped, not refused.
    rerun = _crawl(tmp_path / "killed", cfg, "--concurrency", "2", "--no-progress")
    assert rerun.wait(timeout=60) == 0, rerun.stderr.read()
    assert b"already done" in rerun.stdout.read()


def test_common_crawl_source_runs_as_a_beam_pipeline(tmp_path) -> None:
    from tests.conftest import shared_data

    folder = shared_data("warc")
    run = tmp_path / "cc"
    args = ["crawl", "--run", str(run), "--source", "cc", "--no-progress", "--num-parts", "2",
            "--paths", str(folder / "resiliparse-warcfile-truncated.warc.gz"),
            "--paths", str(folder / "eugeneware-CC-MAIN-20140820021334-00006.warc.wat")]
    r = subprocess.run([sys.executable, "-m", "webclip.cli", *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    stats = json.loads((run / "candidates" / "stats.json").read_text())
    check_identity(stats)
    check_identity(stats["pages"])
    assert stats["pages"]["dropped"] == {"warc/truncated_record": 1} and stats["files"] == 2
    rows = [u for p in sorted(_data(run).glob("part-*.parquet")) for u in pq.read_table(p)["uid"].to_pylist()]
    assert rows == sorted(rows) and len(rows) == stats["kept"]
    # Read as 2 KB byte ranges in parallel: the same parts, byte for byte, and the same accounting.
    split = tmp_path / "cc-split"
    args[2] = str(split)
    r = subprocess.run([sys.executable, "-m", "webclip.cli", *args, "--split-mb", "0.002"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((split / "candidates" / "stats.json").read_text()) == stats
    for part in sorted(_data(run).glob("part-*.parquet")):
        assert (_data(split) / part.name).read_bytes() == part.read_bytes()


def test_sitemap_reveals_a_page_no_link_reaches(served_web, tmp_path) -> None:
    _, _, port, log = served_web
    p = _crawl(tmp_path / "run", _config(tmp_path, port))
    assert p.wait(timeout=120) == 0, p.stderr.read()
    stats = json.loads((tmp_path / "run" / "candidates" / "stats.json").read_text())
    assert stats["sitemap_urls"] >= 2
    assert any("/s/orphan.html" in line for line in log.read_text().splitlines())
    p = _crawl(tmp_path / "nositemap", _config(tmp_path, port, use_sitemaps=False))
    assert p.wait(timeout=120) == 0


def test_robots_crawl_delay_is_honoured_and_legacy_charsets_decoded(tmp_path) -> None:
    from tests.conftest import free_port
    from webclip.sampleweb.serve import start, stop

    site = tmp_path / "web" / "site"
    site.mkdir(parents=True)
    (site / "_routes.json").write_text(json.dumps({"alias": {}, "redirect": {}, "slow": {"prefix": "/slow/", "seconds": 0}}))
    (site / "_headers.json").write_text(json.dumps({"/p3.html": {"Content-Type": "text/html; charset=iso-8859-1"}}))
    (site / "robots.txt").write_text("User-agent: *\nCrawl-delay: 0.3\n")
    links = "".join(f'<a href="/p{i}.html">p{i}</a>' for i in range(5))
    (site / "index.html").write_text(f"<html><body>{links}</body></html>")
    for i in range(5):
        alt = "Un éléphant rêve à Noël près du château"
        head = '<meta charset="windows-1252">' if i == 2 else ""
        (site / f"p{i}.html").write_bytes(f'<html lang="fr"><head>{head}</head><body><img src="/x{i}.jpg" alt="{alt}"></body></html>'
                                          .encode("utf-8" if i < 2 else "cp1252"))
    port = free_port()
    log = tmp_path / "log"
    server = start(tmp_path / "web", port, log)
    try:
        p = _crawl(tmp_path / "run", _config(tmp_path, port, per_host_delay=0.0, per_host_concurrency=4, use_sitemaps=False))
        assert p.wait(timeout=120) == 0, p.stderr.read()
    finally:
        stop(server)
    pages = [line.split("\t") for line in log.read_text().splitlines() if not line.split("\t")[1].startswith("/robots")]
    times = sorted(float(t) for t, _, _ in pages)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    pairs = [b - a for a, b in zip(times, times[2:], strict=False)]  # one late arrival (load) evens out
    assert len(times) == 6 and min(gaps) >= 0.15 and min(pairs) >= 0.59, gaps
    alts = pq.read_table(_data(tmp_path / "run") / "part-00000.parquet")["alt"].to_pylist()
    assert alts == ["Un éléphant rêve à Noël près du château"] * 5

"""The crawl's bounded memory: candidates sorted through runs on disk give the bytes of an in-memory sort,
a kill while writing resumes to the same bytes, and the frontier remembers URLs by key."""

from __future__ import annotations

import json
import platform
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.crawl.test_crawl_hostile import Route, config, html, sites  # noqa: F401  (fixture)
from webclip.crawl.allocator import pin_mmap_threshold
from webclip.crawl.config import CrawlConfig
from webclip.crawl.crawler import Crawler
from webclip.crawl.extsort import write_sorted_parts
from webclip.crawl.frontier import DONE, Frontier, url_key
from webclip.crawl.journal import journal_slice
from webclip.crawl.tally import CrawlTally
from webclip.layout import table_path
from webclip.parquet import part_name, write_rows
from webclip.records import CANDIDATE_SCHEMA

PAGES, IMAGES = 12, 15


def gallery(page: int) -> bytes:
    """A page of IMAGES images; alts repeat across pages (uid ties broken by page_url) and within one."""
    imgs = "".join(f'<img src="/i/{(page * 7 + i) % 40}.jpg" alt="photo {i % 9} of a kettle on page {page % 3}">'
                   for i in range(IMAGES))
    return html(imgs + '<img src="/i/dup.jpg" alt="the same pair twice">' * 2)


def gallery_routes() -> dict[str, Route]:
    """An index linking PAGES galleries."""
    links = "".join(f'<a href="/g{p}.html">g</a>' for p in range(PAGES))
    return {"/index.html": Route(body=html(links)), **{f"/g{p}.html": Route(body=gallery(p)) for p in range(PAGES)}}


def in_memory_parts(rows: list[dict], folder: Path, rows_per_part: int, row_group_size: int) -> list[Path]:
    """The reference: every row sorted in memory (Python's sort), each part written by ``write_rows``."""
    folder.mkdir(parents=True)
    ordered = sorted(rows, key=lambda r: (r["uid"], r["page_url"], json.dumps(r, sort_keys=True)))
    n = max(1, -(-len(ordered) // rows_per_part))
    for i in range(n):
        write_rows(folder / part_name(i), ordered[i * rows_per_part:(i + 1) * rows_per_part], CANDIDATE_SCHEMA,
                   ("uid", "page_url"), row_group_size)
    return sorted(folder.iterdir())


def same_bytes(a: list[Path], b: list[Path]) -> bool:
    """Same part names, byte for byte."""
    return [p.name for p in a] == [p.name for p in b] and all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=False))


def test_external_sort_writes_the_bytes_of_an_in_memory_sort(sites, tmp_path) -> None:  # noqa: F811
    site = sites("127.0.0.71", gallery_routes())
    cfg = config([site])
    entries = Crawler(cfg, cfg.seeds, tmp_path / "work").run()
    rows = list(entries.candidates())
    assert len(rows) == PAGES * (IMAGES + 2)
    # 3 rows per run: 68 runs, merged 4 at a time (several passes); parts of 50 rows, row groups of 16
    work = tmp_path / "sort"
    written = write_sorted_parts(entries.candidates(), tmp_path / "ext", work, CANDIDATE_SCHEMA, rows_per_part=50,
                                 rows_per_run=3, fan_in=4, row_group_size=16, batch_rows=5)
    reference = in_memory_parts(rows, tmp_path / "mem", 50, 16)
    assert written == len(rows) and len(reference) == 5
    assert same_bytes(reference, sorted((tmp_path / "ext").iterdir()))
    assert not list(work.iterdir())  # the runs are removed once merged


row = st.fixed_dictionaries({
    "uid": st.sampled_from(["0a", "0b", "ff", "10"]), "image_url": st.sampled_from(["http://h/a.jpg", "http://h/b"]),
    "alt": st.text(max_size=6), "page_url": st.sampled_from(["http://p/1", "http://p/2", "http://p/é"]),
    "page_lang": st.none() | st.just("en"), "width": st.none() | st.integers(0, 5000),
    "height": st.none() | st.integers(0, 5000), "srcset_url": st.none() | st.just("http://h/s.jpg"),
    "source": st.just("crawl"), "opt_out": st.booleans()})


@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(row, max_size=60), rows_per_run=st.integers(1, 9), fan_in=st.integers(2, 5),
       rows_per_part=st.integers(1, 25), row_group_size=st.integers(1, 12), batch_rows=st.integers(1, 7))
def test_fuzz_external_sort_matches_the_in_memory_sort(tmp_path_factory, rows, rows_per_run, fan_in, rows_per_part,
                                                       row_group_size, batch_rows) -> None:
    """Generated rows (ties on uid and page_url, repeated rows, any text): the same part files, byte for byte."""
    tmp = tmp_path_factory.mktemp("fuzz")
    reference = in_memory_parts(rows, tmp / "mem", rows_per_part, row_group_size)
    write_sorted_parts(iter(rows), tmp / "ext", tmp / "work", CANDIDATE_SCHEMA, rows_per_part, rows_per_run, fan_in,
                       row_group_size, batch_rows)
    assert same_bytes(reference, sorted((tmp / "ext").iterdir()))


KILLER = """
import os, signal, sys
from webclip.crawl import extsort

real, calls = extsort.write_part, []


def write_part(path, rows, *args):
    calls.append(path)
    if len(calls) < 2:
        return real(path, rows, *args)

    def dying():  # SIGKILL in the middle of the second part: its temporary file is half written
        for i, r in enumerate(rows):
            if i == 5:
                os.kill(os.getpid(), signal.SIGKILL)
            yield r
    return real(path, dying(), *args)


extsort.write_part = write_part
from webclip.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _crawl(run: Path, site, *args: str, launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    cmd = launcher or [sys.executable, "-m", "webclip.cli"]
    return subprocess.run([*cmd, "crawl", "--run", str(run), "--seeds", f"{site.base}/index.html",
                           "--allow-private", site.base[7:], "--no-progress", "--no-use-sitemaps", "--timeout", "2",
                           "--per-host-delay", "0", "--rows-per-part", "40", *args],
                          capture_output=True, text=True, timeout=120)


def test_a_kill_while_writing_parts_resumes_to_the_same_bytes(sites, tmp_path) -> None:  # noqa: F811
    site = sites("127.0.0.72", gallery_routes())
    full = _crawl(tmp_path / "full", site)
    assert full.returncode == 0, full.stderr
    hits = len(site.requests)
    (tmp_path / "killer.py").write_text(KILLER)
    killed = _crawl(tmp_path / "killed", site, "--sort-rows-per-run", "7",
                    launcher=[sys.executable, str(tmp_path / "killer.py")])
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    data = Path(table_path(tmp_path / "killed", "candidates"))
    assert [p.name for p in data.glob("part-*")] == ["part-00000.parquet"] and list(data.glob(".part-00001*.tmp"))
    assert not (tmp_path / "killed" / "candidates" / "_SUCCESS").exists()
    fetched = len(site.requests) - hits
    # Resumed with another run size (a run-time knob): nothing fetched again, the same parts and stats.
    again = _crawl(tmp_path / "killed", site, "--sort-rows-per-run", "11")
    assert again.returncode == 0, again.stderr
    assert len(site.requests) == hits + fetched
    ref = sorted(Path(table_path(tmp_path / "full", "candidates")).iterdir())
    assert len(ref) == 6 and same_bytes(ref, sorted(data.iterdir()))
    stats = [json.loads((tmp_path / r / "candidates" / "stats.json").read_text()) for r in ("full", "killed")]
    assert stats[0] == stats[1] and stats[0]["kept"] == PAGES * (IMAGES + 2)
    assert not (tmp_path / "killed" / "candidates" / "_work").exists()


def test_the_tally_counts_what_a_pass_over_the_entries_does(sites, tmp_path) -> None:  # noqa: F811
    """The crawler keeps counters, not entries; they match a pass over the journal, the entries a resume keeps."""
    site = sites("127.0.0.73", {**gallery_routes(), "/g3.html": Route(503, b"down"), "/g4.html": Route(404, b"no")})
    cfg = config([site], transient_retries=0)
    crawler = Crawler(cfg, cfg.seeds, tmp_path / "work")
    entries = crawler.run()
    again = CrawlTally()
    for entry in entries:
        again.add(entry)
    assert again == crawler.tally and crawler.tally.outcomes == {"ok": PAGES - 1, "http_503": 1, "http_404": 1}
    assert not hasattr(crawler, "entries")
    resumed = Crawler(cfg, cfg.seeds, tmp_path / "work")
    resumed.replay()  # the transient drop is not kept: its page is tried again
    assert resumed.tally.outcomes == {"ok": PAGES - 1, "http_404": 1}
    assert sum(1 for _ in journal_slice(tmp_path / "work" / "journal.jsonl")) == PAGES + 1


def test_the_frontier_remembers_urls_by_key() -> None:
    """Admitted URLs are 128-bit keys: duplicates still found after normalisation, finished pages never handed out."""
    seed = "http://a.test/"
    frontier = Frontier(CrawlConfig(seeds=[seed]), [seed])
    task, depth, host = frontier.next(0.0)
    frontier.release(host)
    frontier.finish({"url": task.page, "depth": depth, "outcome": "ok", "links": [
        "http://a.test/x?utm_source=y", "http://A.test:80/x", "http://a.test/y", "http://a.test/"], "link_drops": {}})
    assert frontier.links.as_dict()["dropped"] == {"crawl/duplicate": 2} and len(frontier.admitted) == 3
    assert all(isinstance(k, int) and k < 2**128 for k in frontier.admitted)
    assert frontier.admitted[url_key(task.page)] == DONE
    handed = []
    while (nxt := frontier.next(1e12)) is not None:
        handed.append((nxt[0].page, nxt[1]))
        frontier.release(nxt[2])
    assert handed == [("http://a.test/x", 1), ("http://a.test/y", 1)]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_the_mmap_threshold_is_pinned_on_glibc() -> None:
    """mallopt(M_MMAP_THRESHOLD) accepted: large buffers are mapped, and unmapped when freed, all crawl long."""
    assert pin_mmap_threshold()


ALLOCATOR_PROBE = """
import ctypes
from webclip.crawl.allocator import crawl_allocator
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
def mapped(n):  # glibc's chunk header: the IS_MMAPPED bit of the size word before the block
    p = libc.malloc(n); flag = bool(ctypes.c_size_t.from_address(p - 8).value & 2); libc.free(p); return flag
MiB = 1 << 20
libc.free(libc.malloc(16 * MiB))  # a freed mapped block: glibc's dynamic rule now heaps blocks up to 16 MiB
states = [mapped(8 * MiB)]
with crawl_allocator():  # each size below outgrows the heap's free top, so the threshold alone decides
    states.append(mapped(20 * MiB))
states.append(mapped(24 * MiB))  # under glibc's dynamic maximum (32 MiB): from the heap again
print(states)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_the_pin_holds_for_the_crawl_and_is_handed_back_after_it() -> None:
    """Large buffers are mapped during the crawl; afterwards (demo and ablation train in the same process)
    blocks below glibc's dynamic maximum come from the heap again."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", ALLOCATOR_PROBE], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[False, True, False]", out.stderr[-2000:]

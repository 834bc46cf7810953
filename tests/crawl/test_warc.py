"""Common Crawl WARC/WAT reading on the real archives of ../shared/data/warc."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tests.conftest import shared_data
from webclip.crawl.warc import _dechunk, read_archive, split_http
from webclip.layout import table_path


def _read(name: str):
    outcomes = list(read_archive(str(shared_data("warc") / name)))
    return Counter(o.page_drop or "ok" for o in outcomes), outcomes


def test_every_archive_is_read_and_images_agree_with_the_index() -> None:
    folder = shared_data("warc")
    index = {json.loads(line)["file"]: json.loads(line) for line in (folder / "index.jsonl").read_text().splitlines()}
    for name in ("resiliparse-warcfile.warc.gz", "resiliparse-clueweb-quirk.warc.gz", "whirlwind.warc.gz",
                 "eugeneware-CC-MAIN-20140820021334-00006.warc"):
        _, outcomes = _read(name)
        imgs = sum(o.imgs for o in outcomes)
        # the index counts '<img' bytes, a few of which sit in scripts or comments
        assert 0.97 * index[name]["img_tags"] <= imgs <= index[name]["img_tags"], name


def test_truncated_record_is_counted_and_the_rest_is_read() -> None:
    counts, outcomes = _read("resiliparse-warcfile-truncated.warc.gz")
    assert counts == {"ok": 8, "warc/truncated_record": 1}
    assert sum(len(o.candidates) for o in outcomes) > 0


def test_wat_image_links_with_alt() -> None:
    for name in ("eugeneware-CC-MAIN-20140820021334-00006.warc.wat",
                 "eugeneware-CC-MAIN-20140820021334-00006-per-record-gzip.warc.wat.gz"):
        _, outcomes = _read(name)
        cands = [c for o in outcomes for c in o.candidates]
        assert len(cands) == 4 and all(c.source == "wat" for c in cands)
        assert "http://0pointer.de/photos/galleries/Australia/lq/img-496.jpg" in {c.image_url for c in cands}


def test_http_quirks() -> None:
    assert split_http(b"HTTP/1.1 200 OK\nA: b\n\nbody") == (b"HTTP/1.1 200 OK\nA: b", b"body")
    assert _dechunk(b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n") == b"Wikipedia"


def _outcomes(path: str, start: int = 0, end: int | None = None, **kw) -> list[tuple]:
    return [(o.page_drop, [c.uid for c in o.candidates], sorted(o.img_drops.items()), o.imgs)
            for o in read_archive(path, end=end, start=start, **kw)]


def test_split_reading_gives_every_record_once() -> None:
    from webclip.crawl.warc import archive_ranges

    folder = shared_data("warc")
    for path in sorted(folder.glob("*.gz")):
        whole = _outcomes(str(path))
        for split_bytes in (1000, 4096, 50_000):
            ranges = archive_ranges(str(path), split_bytes)
            if path.stat().st_size > split_bytes:
                assert len(ranges) > 1, path.name  # every .gz here gzips each record on its own
            split = [o for _, start, end in ranges for o in _outcomes(str(path), start, end)]
            assert split == whole, (path.name, split_bytes)


def test_whole_file_gzip_and_plain_warc_are_not_split(tmp_path) -> None:
    import gzip

    from webclip.crawl.warc import archive_ranges

    plain = shared_data("warc") / "eugeneware-CC-MAIN-20140820021334-00006.warc"
    assert archive_ranges(str(plain), 1000) == [(str(plain), 0, None)]
    whole = tmp_path / "whole.warc.gz"
    whole.write_bytes(gzip.compress(plain.read_bytes()))
    assert archive_ranges(str(whole), 1000) == [(str(whole), 0, None)]
    assert _outcomes(str(whole)) == _outcomes(str(plain))


def test_scan_parser_reads_archives_exactly_as_the_bs4_reference() -> None:
    import warnings

    from bs4 import XMLParsedAsHTMLWarning

    from webclip.crawl.warc import open_archive

    warnings.filterwarnings("ignore", category=XMLParsedAsHTMLWarning)
    pages = 0
    for path in sorted(shared_data("warc").glob("*.warc*")):
        runs = {}
        for parser in ("scan", "bs4"):
            with open_archive(str(path)) as stream:
                runs[parser] = [(o.page_drop, o.candidates, o.img_drops, o.imgs) for o in read_archive(stream, parser)]
        assert runs["scan"] == runs["bs4"], path.name
        pages += sum(1 for o in runs["scan"] if o[3])
    assert pages >= 50  # HTML responses with images, across the real archives


# ---- hostile and damaged archives ---------------------------------------------------------------

RESPONSES = "resiliparse-warcfile.warc.gz"  # per-record gzip, 50 members, 16 HTML responses


def member_offsets(data: bytes) -> list[int]:
    """Where each gzip member starts, walking the file with zlib alone (the reference), plus the end."""
    import zlib

    offsets, pos = [0], 0
    while pos < len(data):
        d = zlib.decompressobj(31)
        d.decompress(data[pos:])
        assert d.eof, pos
        pos = len(data) - len(d.unused_data)
        offsets.append(pos)
    return offsets


def _rows(source, **kw) -> list[tuple]:
    import io

    if isinstance(source, bytes):
        source = io.BytesIO(source)
    return [(o.page_drop, [c.uid for c in o.candidates], sorted(o.img_drops.items()), o.imgs)
            for o in read_archive(source, **kw)]


def test_members_read_one_by_one_equal_fastwarc_streaming_the_whole_file() -> None:
    """The member reader against fastwarc's own gzip stream on every real per-record archive."""
    from webclip.crawl.warc import MAX_BYTES, Window, read_stream

    for path in sorted(shared_data("warc").glob("*.gz")):
        with open(path, "rb") as f:
            reference = [(o.page_drop, [c.uid for c in o.candidates], sorted(o.img_drops.items()), o.imgs)
                         for o in read_stream(Window(f), 0, None, "scan", MAX_BYTES, str(path))]
        assert _rows(str(path)) == reference, path.name


def _corrupt(tmp_path, damage: str) -> tuple[str, list[tuple], int, list[int]]:
    """A copy of a real archive with one middle response member damaged; the outcomes expected."""
    data = (shared_data("warc") / RESPONSES).read_bytes()
    offsets = member_offsets(data)
    per_member = [_rows(data[a:b]) for a, b in zip(offsets, offsets[1:], strict=False)]
    k = next(i for i in range(len(per_member) // 2, len(per_member)) if per_member[i] and per_member[i][0][1])
    bad = bytearray(data)
    if damage == "deep":  # inside the deflate data: zlib fails mid-member
        for i in range(offsets[k] + 300, offsets[k] + 340):
            bad[i] ^= 0x5A
    else:  # the gzip header itself: nothing marks the member any more
        bad[offsets[k]:offsets[k] + 3] = b"\0\0\0"
    path = tmp_path / f"{damage}.warc.gz"
    path.write_bytes(bytes(bad))
    expected = [row for i, rows in enumerate(per_member)
                for row in (rows if i != k else [("warc/corrupt_member", [], [], 0)])]
    return str(path), expected, k, offsets


def test_corrupt_member_is_skipped_and_every_other_record_read_whole_or_split(tmp_path) -> None:
    from webclip.crawl.warc import archive_ranges

    for damage in ("deep", "header"):
        path, expected, k, offsets = _corrupt(tmp_path, damage)
        assert _rows(path) == expected, damage
        for split_bytes in (997, 4096, 20_000):
            ranges = archive_ranges(path, split_bytes)
            assert len(ranges) > 1
            assert [r for _, s, e in ranges for r in _rows(path, start=s, end=e)] == expected, (damage, split_bytes)
        # A cut at every byte around the damaged member: each member is read, or counted, by one side.
        cuts = {offsets[k - 1] + d for d in (0, 1)} | {offsets[k] + d for d in (-1, 0, 1, 2, 3, 4)}
        cuts |= {offsets[k + 1] + d for d in (-1, 0, 1)}
        for cut in sorted(cuts):
            assert _rows(path, end=cut) + _rows(path, start=cut) == expected, (damage, cut)


def test_inserted_junk_and_duplicated_members_resync(tmp_path) -> None:
    data = (shared_data("warc") / RESPONSES).read_bytes()
    offsets = member_offsets(data)
    m = offsets[len(offsets) // 2]
    junk = b"<html>not a member</html>\x1f\x8b\x08 almost" * 40
    assert _rows(data[:m] + junk + data[m:]) == [*_rows(data[:m]), ("warc/corrupt_member", [], [], 0), *_rows(data[m:])]
    twice = data[:m] + data[offsets[3]:m] + data[m:]
    assert _rows(twice) == _rows(data[:m]) + _rows(data[offsets[3]:m]) + _rows(data[m:])


WARCINFO = b"WARC/1.0\r\nWARC-Type: warcinfo\r\nContent-Length: 6\r\n\r\nhello\n\r\n\r\n"


def _bomb_member(uri: str, body_bytes: int, encoding: str = "", before: bytes = b"") -> bytes:
    """One gzip member: a WARC response whose body is ``body_bytes`` zeros (about 1000:1 compressed).

    ``before``: records put first in the same member (then the file is gzip with several records per member).
    """
    import zlib

    zeros = bytes(1 << 20)
    if encoding:  # a small HTTP body that a Content-Encoding inflates into the bomb
        c = zlib.compressobj(9, zlib.DEFLATED, 31)
        body = b"".join([*(c.compress(zeros) for _ in range(body_bytes >> 20)), c.flush()])
        http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n\r\n" + body
        chunks, length = [http], len(http)
    else:
        http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
        chunks, length = [http, *(zeros for _ in range(body_bytes >> 20))], len(http) + body_bytes
    head = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: {uri}\r\n"
            f"Content-Type: application/http; msgtype=response\r\nContent-Length: {length}\r\n\r\n").encode()
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [c.compress(before + head), *(c.compress(x) for x in chunks), c.compress(b"\r\n\r\n"), c.flush()]
    return b"".join(out)


BOMB_SCRIPT = """
import json, resource, sys
from webclip.crawl.warc import read_archive
def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
list(read_archive(sys.argv[1]))  # imports and a normal read set the baseline
base = peak()
out = {name: [o.page_drop for o in read_archive(name)] for name in sys.argv[2:]}
print(json.dumps({"base_mb": base, "peak_mb": peak(), "outcomes": out}))
"""


def test_decompression_bombs_are_not_inflated(tmp_path) -> None:
    """189 KB that inflates to 200 MB: a member, a whole-file gzip and a Content-Encoding; each is too_large."""
    import subprocess
    import sys

    from webclip.crawl.warc import sniff

    data = (shared_data("warc") / RESPONSES).read_bytes()
    offsets = member_offsets(data)
    m = offsets[len(offsets) // 2]
    bomb = _bomb_member("http://bomb.example/", 200 << 20)
    assert len(bomb) < 210_000
    files = {"member": data[:m] + bomb + data[m:],
             "whole": _bomb_member("http://bomb.example/", 200 << 20, before=WARCINFO),
             "encoding": data[:m] + _bomb_member("http://enc.example/", 200 << 20, "gzip") + data[m:]}
    assert len(files["whole"]) < 250_000 and len(files["encoding"]) < len(data) + 250_000
    assert [sniff(content[:1 << 20]) for content in files.values()] == ["members", "stream", "members"]
    for name, content in files.items():
        (tmp_path / f"{name}.warc.gz").write_bytes(content)
    names = [str(tmp_path / f"{name}.warc.gz") for name in files]
    r = subprocess.run([sys.executable, "-c", BOMB_SCRIPT, str(shared_data("warc") / RESPONSES), *names],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(r.stdout)
    assert result["peak_mb"] - result["base_mb"] < 40, result  # 200 MB were never held
    good = [o.page_drop for o in read_archive(str(shared_data("warc") / RESPONSES))]
    out = result["outcomes"]
    assert out[names[0]] == [*good[:_pages_before(data, m)], "warc/too_large", *good[_pages_before(data, m):]]
    assert out[names[1]] == ["warc/too_large"]
    assert out[names[2]] == [*good[:_pages_before(data, m)], "warc/too_large", *good[_pages_before(data, m):]]
    # split reads agree with the whole read around a bomb
    from webclip.crawl.warc import archive_ranges

    ranges = archive_ranges(names[0], 8192)
    assert [o for _, s, e in ranges for o in _rows(names[0], start=s, end=e)] == _rows(names[0])


def _pages_before(data: bytes, offset: int) -> int:
    return len(_rows(data[:offset]))


def _serve(folder):
    """A loopback HTTP server for ``folder``: /gone answers 404, /broken 500."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/broken"):
                self.send_error(500)
            else:
                super().do_GET()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _cc_stats(tmp_path, name: str, paths_file, split_mb: float):
    from webclip.crawl.cc import run_cc
    from webclip.crawl.config import CrawlConfig
    from webclip.runfolder import StageDir

    run = tmp_path / name
    stage = StageDir(run, "candidates")
    stage.path.mkdir(parents=True)
    cfg = CrawlConfig(source="cc", paths_file=str(paths_file), progress=False, num_parts=2, split_mb=split_mb,
                      direct_running_mode="in_memory", direct_num_workers=1)
    return run_cc(cfg, stage, run), Path(table_path(run, "candidates"))


def test_cc_counts_missing_empty_and_non_warc_archives_and_reads_the_rest(tmp_path) -> None:
    import gzip
    import hashlib

    warc, html = shared_data("warc"), shared_data("html")
    page = sorted(html.glob("*.html.gz"))[0]
    files = tmp_path / "files"
    files.mkdir()
    corrupt, _, _, _ = _corrupt(tmp_path, "deep")
    (files / "good.warc.gz").write_bytes((warc / "whirlwind.warc.gz").read_bytes())
    (files / "empty.warc.gz").write_bytes(b"")
    (files / "page.warc.gz").write_bytes(page.read_bytes())  # gzipped HTML
    (files / "page.warc").write_bytes(gzip.decompress(page.read_bytes()))
    (files / "noise.warc.gz").write_bytes(b"".join(hashlib.sha256(bytes([i])).digest() for i in range(200)))
    server, base = _serve(files)
    try:
        listed = [corrupt, str(files / "good.warc.gz"), str(files / "nope.warc.gz"), str(files / "empty.warc.gz"),
                  str(files / "page.warc.gz"), str(files / "page.warc"), str(files / "noise.warc.gz"),
                  f"{base}/good.warc.gz", f"{base}/gone.warc.gz", f"{base}/broken.warc.gz"]
        paths_file = tmp_path / "paths.txt"
        paths_file.write_text("\n".join(listed) + "\n")
        stats, out = _cc_stats(tmp_path, "whole", paths_file, 64)
        split, split_out = _cc_stats(tmp_path, "split", paths_file, 0.004)
    finally:
        server.shutdown()
    assert stats["archives"] == {"unit": "archives", "in": 10, "kept": 3, "dropped": {
        "warc/archive_error": 1, "warc/empty": 1, "warc/missing_file": 2, "warc/not_warc": 3}}
    reads = [o for p in (corrupt, str(warc / "whirlwind.warc.gz"), str(warc / "whirlwind.warc.gz"))
             for o in read_archive(p)]
    expected = Counter(o.page_drop for o in reads if o.page_drop)
    assert stats["pages"]["in"] == len(reads) and stats["pages"]["dropped"] == dict(sorted(expected.items()))
    assert expected["warc/corrupt_member"] == 1
    assert stats["kept"] == 2 * sum(len(o.candidates) for o in read_archive(str(warc / "whirlwind.warc.gz"))) + sum(
        len(o.candidates) for o in read_archive(corrupt))
    assert split == stats  # read as 4 KB ranges: the same accounting and the same parts, byte for byte
    examples = json.loads((tmp_path / "whole" / "candidates" / "drop_examples.json").read_text())["examples"]
    named = {**stats["dropped"], **stats["pages"]["dropped"], **stats["archives"]["dropped"]}
    assert set(examples) == set(named)  # every drop reason of every block has examples, and nothing else
    for reason, items in examples.items():
        assert 1 <= len(items) <= min(5, named[reason]) and all(e["archive"] in listed for e in items), reason
    assert {e["archive"] for e in examples["warc/missing_file"]} == {str(files / "nope.warc.gz"), f"{base}/gone.warc.gz"}
    assert examples["warc/corrupt_member"][0]["archive"] == corrupt
    assert json.loads((tmp_path / "split" / "candidates" / "drop_examples.json").read_text())["examples"] == examples
    assert sorted(out.glob("part-*.parquet"))
    for part in sorted(out.glob("part-*.parquet")):
        assert (split_out / part.name).read_bytes() == part.read_bytes()


def test_missing_archive_given_with_paths_is_a_one_line_error(tmp_path) -> None:
    import subprocess
    import sys

    good = shared_data("warc") / "whirlwind.warc.gz"
    missing = tmp_path / "missing.warc.gz"
    args = [sys.executable, "-m", "webclip.cli", "crawl", "--run", str(tmp_path / "run"), "--source", "cc",
            "--no-progress", "--paths", str(good), "--paths", str(missing)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().splitlines() == [f"webclip: error: archive not found: {missing} (given with --paths)"]
    assert not list((tmp_path / "run").glob("candidates/**/part-*"))


def test_an_error_in_one_record_costs_that_record_and_is_logged(monkeypatch, caplog) -> None:
    import webclip.crawl.warc as warc

    path = str(shared_data("warc") / RESPONSES)
    good = _rows(path)

    def broken(record, parser, cap):
        if "live-radsport" in (record.headers.get("WARC-Target-URI") or ""):
            raise RuntimeError("a bug in one page's handling")
        return real(record, parser, cap)

    real = warc.PAGE_READERS["response"]
    monkeypatch.setitem(warc.PAGE_READERS, "response", broken)
    monkeypatch.setattr(warc, "_logged", Counter())
    uris = [u for u in _uris(path) if "live-radsport" in u]
    assert uris  # the real archive has such pages
    rows = _rows(path)
    assert len(rows) == len(good) and Counter(r[0] for r in rows)["warc/record_error"] == len(uris)
    assert [g for g, r in zip(good, rows, strict=True) if r[0] != "warc/record_error"] == [
        r for r in rows if r[0] != "warc/record_error"]
    logged = [r for r in caplog.records if "warc/record_error" in r.getMessage()]
    assert 1 <= len(logged) <= warc.LOG_FIRST and path in logged[0].getMessage() and logged[0].exc_info


def _uris(path: str) -> list[str]:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    with open(path, "rb") as f:
        return [r.headers.get("WARC-Target-URI") for r in ArchiveIterator(f, record_types=WarcRecordType.response)]


class BrokenStream:
    """A real archive's bytes that fail with a connection reset after ``limit`` bytes, as a network read can."""

    def __init__(self, data: bytes, limit: int):
        import io

        self.inner, self.limit = io.BytesIO(data), limit

    def read(self, n: int = -1) -> bytes:
        if self.inner.tell() >= self.limit:
            raise ConnectionResetError("connection reset by peer")
        return self.inner.read(min(n, self.limit - self.inner.tell()) if n >= 0 else self.limit - self.inner.tell())

    def seek(self, offset: int) -> None:
        self.inner.seek(offset)


def test_an_archive_that_breaks_mid_read_keeps_what_was_read(caplog) -> None:
    import gzip

    data = (shared_data("warc") / RESPONSES).read_bytes() * 10  # past the head read (1 MiB)
    for content in (data, gzip.compress(gzip.decompress(data))):  # per-record members, and one stream
        whole = _rows(content)
        rows = _rows(BrokenStream(content, len(content) * 9 // 10))
        assert rows[-1] == ("warc/archive_error", [], [], 0) and 0 < len(rows) - 1 < len(whole)
        assert rows[:-1] == whole[:len(rows) - 1]
    assert any("warc/archive_error" in r.getMessage() and r.exc_info for r in caplog.records)


def test_fastwarc_streams_every_intact_member_of_the_real_archives() -> None:
    """The fast path (fastwarc's gzip stream) reads all but the last member, which is checked on its own."""
    from webclip.crawl.warc import MAX_BYTES, Window, stream_members

    for path in sorted(shared_data("warc").glob("*.gz")):
        offsets = member_offsets(path.read_bytes()) if "truncated" not in path.name else None
        with open(path, "rb") as f:
            reader = stream_members(Window(f), 0, None, "scan", MAX_BYTES, str(path))
            try:
                while True:
                    next(reader)
            except StopIteration as stop:
                resume = stop.value
        if offsets:
            assert resume == offsets[-2], path.name  # the last member, re-read on its own

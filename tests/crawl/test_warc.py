"""Common Crawl WARC/WAT reading on the real archives of ../shared/data/warc."""

from __future__ import annotations

import json
from collections import Counter

from tests.conftest import shared_data
from webclip.crawl.warc import _dechunk, read_archive, split_http


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


def _outcomes(path: str, start: int = 0, end: int | None = None) -> list[tuple]:
    from webclip.crawl.warc import first_record_at_or_after, open_archive

    with open_archive(path) as stream:
        if start and first_record_at_or_after(stream, start, end) is None:
            return []
        return [(o.page_drop, [c.uid for c in o.candidates], sorted(o.img_drops.items()), o.imgs)
                for o in read_archive(stream, end=end)]


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

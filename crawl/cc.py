"""Common Crawl as a Beam pipeline: archives split into byte ranges at record boundaries, read in
parallel, candidates written as uid-range parts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import apache_beam as beam

from webclip.beamio import CountingDoFn, WriteParts, collect_counters
from webclip.config import items_with_file
from webclip.crawl.config import CrawlConfig
from webclip.crawl.warc import archive_ranges, first_record_at_or_after, open_archive, read_archive
from webclip.parquet import count_rows, parts
from webclip.progress import watch
from webclip.runfolder import StageDir
from webclip.stats import Tally, check_identity

PAGES, PAGES_OK, IMGS, FILES = "count/pages", "count/pages_ok", "count/imgs", "count/files"


class SplitArchiveFn(CountingDoFn):
    """One archive path -> the byte ranges it is read in (one when it cannot split)."""

    def __init__(self, split_bytes: int):
        super().__init__()
        self.split_bytes = split_bytes

    def process(self, path: str):
        self.drop(FILES)
        try:
            yield from archive_ranges(path, self.split_bytes)
        except OSError:
            self.drop("cc/unreadable_file")


class ReadArchiveFn(CountingDoFn):
    """Read the records that start in one byte range of a WARC/WAT file; count pages, images, drops."""

    def __init__(self, parser: str):
        super().__init__()
        self.parser = parser

    def process(self, split: tuple[str, int, int | None]):
        path, start, end = split
        try:
            stream = open_archive(path)
        except OSError:
            self.drop("cc/unreadable_file")
            return
        with stream:
            if start and first_record_at_or_after(stream, start, end) is None:
                return  # no record starts in this range
            for outcome in read_archive(stream, self.parser, end):
                self.drop(PAGES)
                if outcome.page_drop:
                    self.drop(outcome.page_drop)
                    continue
                self.drop(PAGES_OK)
                self.drop(IMGS, outcome.imgs)
                for reason, n in outcome.img_drops.items():
                    self.drop(reason, n)
                for c in outcome.candidates:
                    yield c.__dict__


def read_paths(cfg: CrawlConfig) -> list[str]:
    """Archive paths from the config plus ``paths_file`` (one per line)."""
    paths = items_with_file(cfg.paths, cfg.paths_file, "paths")
    if not paths:
        raise ValueError("no archives: give --paths FILE.warc.gz or --paths-file FILE")
    return [p if "://" in p else str(Path(p).resolve()) for p in paths]


def run_cc(cfg: CrawlConfig, stage: StageDir, run: Path) -> dict[str, Any]:
    """Read every archive into ``<run>/candidates`` and return its stats."""
    paths = read_paths(cfg)
    for old in parts(stage.path):
        old.unlink()
    with watch("crawl cc (Beam)", None, None, cfg.progress, unit="s"), beam.Pipeline(options=cfg.beam_options()) as p:
        (p | "Paths" >> beam.Create(paths) | "Split" >> beam.ParDo(SplitArchiveFn(int(cfg.split_mb * 2**20)))
         | "Spread" >> beam.Reshuffle() | "Read" >> beam.ParDo(ReadArchiveFn(cfg.parser))
         | "Write" >> WriteParts(str(stage.path.resolve()), "candidates", cfg.num_parts, ("uid", "page_url")))
    counters = collect_counters(p.result)
    pages = Tally("pages", n_in=counters.pop(PAGES, 0), kept=counters.pop(PAGES_OK, 0))
    images = Tally("image candidates", n_in=counters.pop(IMGS, 0), kept=count_rows(parts(stage.path)))
    files = counters.pop(FILES, 0)
    for reason, n in counters.items():
        (images if reason.startswith("extract/") else pages).drop(reason, n)
    stats = images.as_dict()
    stats["pages"] = pages.as_dict()
    stats["files"] = files
    check_identity(stats)
    check_identity(stats["pages"])
    return stats

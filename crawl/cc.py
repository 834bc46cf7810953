"""Common Crawl as a Beam pipeline: archives split into byte ranges at record boundaries, read in
parallel, candidates written as uid-range parts.

stats.json keeps three units. ``archives``: every path given, kept or dropped once, before reading
(``warc/missing_file`` for a ``--paths-file`` entry that does not exist, ``warc/empty``,
``warc/not_warc``, ``warc/archive_error``); a missing ``--paths`` entry is instead a one-line error
before any work starts. ``pages``: every page record (see ``webclip.crawl.warc``), plus one unit per
corrupt member, failed record or byte range that could not be read. The top level: image candidates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from webclip.beamio import (
    CountingDoFn,
    DropExampleSink,
    WriteParts,
    collect_counters,
    count_rows_any,
    list_parts,
)
from webclip.config import items_with_file
from webclip.crawl.config import CrawlConfig
from webclip.crawl.warc import (
    ARCHIVE_ERROR,
    UnreadableArchive,
    archive_ranges,
    log_drop,
    read_archive,
)
from webclip.layout import table_in
from webclip.progress import watch
from webclip.runfolder import StageDir
from webclip.stats import Tally, check_identity

PAGES, PAGES_OK, IMGS, FILES = "count/pages", "count/pages_ok", "count/imgs", "count/files"
ARCHIVES_OK, ARCHIVE_DROP = "count/archives_ok", "archives:"  # ARCHIVE_DROP prefixes archive-level reasons


class SplitArchiveFn(CountingDoFn):
    """One archive path -> the byte ranges it is read in (one when it cannot split)."""

    def __init__(self, split_bytes: int):
        super().__init__()
        self.split_bytes = split_bytes

    def process(self, path: str):
        self.drop(FILES)
        try:
            ranges = archive_ranges(path, self.split_bytes)
        except UnreadableArchive as e:
            log_drop(e.reason, path, 0, trace=False)
            self.drop(ARCHIVE_DROP + e.reason)
            yield from self.drop(e.reason, 0, example={"archive": path})  # the example under the block's name
            return
        except Exception:  # the failure boundary of one archive
            log_drop(ARCHIVE_ERROR, path, 0)
            self.drop(ARCHIVE_DROP + ARCHIVE_ERROR)
            yield from self.drop(ARCHIVE_ERROR, 0, example={"archive": path})
            return
        self.drop(ARCHIVES_OK)
        yield from ranges


class ReadArchiveFn(CountingDoFn):
    """Read the records that start in one byte range of a WARC/WAT file; count pages, images, drops."""

    def __init__(self, parser: str, max_bytes: int):
        super().__init__()
        self.parser, self.max_bytes = parser, max_bytes

    def process(self, split: tuple[str, int, int | None]):
        path, start, end = split
        for outcome in read_archive(path, self.parser, end, start=start, max_bytes=self.max_bytes):
            self.drop(PAGES)
            example = {"archive": path, "page_url": outcome.url}  # the page (or archive) a drop happened in
            if outcome.page_drop:
                yield from self.drop(outcome.page_drop, example=example)
                continue
            self.drop(PAGES_OK)
            self.drop(IMGS, outcome.imgs)
            for reason, n in outcome.img_drops.items():
                yield from self.drop(reason, n, example=example)
            for c in outcome.candidates:
                yield c.__dict__


def read_paths(cfg: CrawlConfig) -> list[str]:
    """Archive paths from the config plus ``paths_file`` (one per line).

    A local ``paths`` entry that is not a file is a user error, raised before any work starts; entries
    of ``paths_file`` (long lists, often generated) are checked when read and counted when missing.
    """
    for p in cfg.paths:
        if "://" not in p and not Path(p).is_file():
            raise ValueError(f"archive not found: {p} (given with --paths)")
    paths = items_with_file(cfg.paths, cfg.paths_file, "paths")
    if not paths:
        raise ValueError("no archives: give --paths FILE.warc.gz or --paths-file FILE")
    return [p if "://" in p else str(Path(p).resolve()) for p in paths]


def run_cc(cfg: CrawlConfig, stage: StageDir, run: Path) -> dict[str, Any]:
    """Read every archive into the run's candidates table (under ``output_path`` when set) and return its stats."""
    paths = read_paths(cfg)
    options = cfg.beam_options()
    base = cfg.output_path or str(stage.path.resolve())
    table = table_in(base, "candidates")
    stale = list_parts(table)
    if stale:
        FileSystems.delete(stale)
    sink = DropExampleSink()
    with watch("crawl cc (Beam)", None, None, cfg.progress, unit="s"), beam.Pipeline(options=options) as p:
        (p | "Paths" >> beam.Create(paths) | "Split" >> sink.counted(SplitArchiveFn(int(cfg.split_mb * 2**20)))
         | "Spread" >> beam.Reshuffle() | "Read" >> sink.counted(ReadArchiveFn(cfg.parser, cfg.max_bytes))
         | "Write" >> WriteParts(table, "candidates", cfg.num_parts, ("uid", "page_url")))
        sink.write(p, FileSystems.join(base, "drop_examples.json"), "pages")  # beside the table's base
    counters = collect_counters(p.result)
    pages = Tally("pages", n_in=counters.pop(PAGES, 0), kept=counters.pop(PAGES_OK, 0))
    images = Tally("image candidates", n_in=counters.pop(IMGS, 0), kept=count_rows_any(list_parts(table)))
    files = counters.pop(FILES, 0)
    archives = Tally("archives", n_in=files, kept=counters.pop(ARCHIVES_OK, 0))
    for reason, n in counters.items():
        if reason.startswith(ARCHIVE_DROP):
            archives.drop(reason[len(ARCHIVE_DROP):], n)
        else:
            (images if reason.startswith("extract/") else pages).drop(reason, n)
    stats = images.as_dict()
    stats["pages"] = pages.as_dict()
    stats["archives"] = archives.as_dict()
    stats["files"] = files
    if cfg.output_path:
        stats["output"] = base  # where layout.table_path finds the candidates (curate reads them there)
    for block in (stats, stats["pages"], stats["archives"]):
        check_identity(block)
    return stats

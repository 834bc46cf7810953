"""The crawl stage: seeds -> ``<run>/candidates/`` (Parquet parts, stats.json, _SUCCESS)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from webclip.config import items_with_file
from webclip.crawl.config import CrawlConfig
from webclip.crawl.crawler import crawl
from webclip.parquet import count_rows, part_name, parts, row_sort_key, write_rows
from webclip.records import CANDIDATE_SCHEMA
from webclip.runfolder import StageDir
from webclip.stats import Tally, check_identity


def read_seeds(cfg: CrawlConfig) -> list[str]:
    """Seeds from the config plus one URL per line of ``seeds_file`` (``#`` comments allowed)."""
    seeds = items_with_file(cfg.seeds, cfg.seeds_file, "seeds")
    if not seeds:
        raise ValueError("no seeds: give --seeds URL or --seeds-file FILE")
    return seeds


def summarise(entries: list[dict[str, Any]], written: int) -> dict[str, Any]:
    """stats.json for the crawl: image candidates, with a ``pages`` block of its own."""
    pages = Tally("pages", n_in=sum(1 for e in entries if e["outcome"] != "sitemaps"))
    images = Tally("image candidates")
    for e in entries:
        if e["outcome"] == "sitemaps":
            continue
        if e["outcome"] == "ok":
            pages.kept += 1
            images.n_in += e["imgs"]
            for reason, n in e["img_drops"].items():
                images.drop(reason, n)
        else:
            pages.drop(f"crawl/{e['outcome']}")
    images.kept = written
    out = images.as_dict()
    out["pages"] = pages.as_dict()
    check_identity(out)
    check_identity(out["pages"])
    return out


def write_candidates(entries: list[dict[str, Any]], folder: Path, rows_per_part: int) -> int:
    """Write every candidate, sorted by (uid, page_url), into Parquet parts; returns rows written."""
    rows = sorted((c for e in entries for c in e["candidates"]), key=lambda r: row_sort_key(r, ("uid", "page_url")))
    for old in parts(folder):
        old.unlink()
    for i in range(max(1, -(-len(rows) // rows_per_part))):
        write_rows(folder / part_name(i), rows[i * rows_per_part:(i + 1) * rows_per_part], CANDIDATE_SCHEMA,
                   sort_by=("uid", "page_url"))
    return count_rows(parts(folder))


def run_crawl(cfg: CrawlConfig, stage: StageDir, run: Path) -> dict[str, Any]:
    """Dispatch on ``source``: a live crawl of seeds or a Beam read of Common Crawl archives."""
    if cfg.source == "cc":
        from webclip.crawl.cc import run_cc

        stats = run_cc(cfg, stage, run)
        stage.finish(stats)
        return stats
    return run_live(cfg, stage)


def run_live(cfg: CrawlConfig, stage: StageDir) -> dict[str, Any]:
    """Crawl (resuming any journal in ``_work/``), write candidates and finish the stage."""
    seeds = read_seeds(cfg)
    work = stage.path / "_work"
    entries = crawl(cfg, seeds, work)
    written = write_candidates(entries, stage.path, cfg.rows_per_part)
    stats = summarise(entries, written)
    stats["outcomes"] = dict(sorted(Counter(e["outcome"] for e in entries if e["outcome"] != "sitemaps").items()))
    stats["sitemap_urls"] = sum(len(e["links"]) for e in entries if e["outcome"] == "sitemaps")
    stage.finish(stats)
    shutil.rmtree(work, ignore_errors=True)
    return stats

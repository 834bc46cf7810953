"""The crawl stage: seeds -> ``<run>/candidates/`` (Parquet parts, stats.json, _SUCCESS)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from webclip.config import items_with_file
from webclip.crawl.config import CrawlConfig, check_seed
from webclip.crawl.crawler import Crawler
from webclip.fetch import is_transient
from webclip.parquet import count_rows, part_name, parts, row_sort_key, write_rows
from webclip.records import CANDIDATE_SCHEMA
from webclip.runfolder import StageDir, StageIncomplete
from webclip.stats import Tally, check_identity


def read_seeds(cfg: CrawlConfig) -> list[str]:
    """Seeds from the config plus one http(s) URL per line of ``seeds_file`` (``#`` comments allowed)."""
    seeds = items_with_file(cfg.seeds, cfg.seeds_file, "seeds")
    if not seeds:
        raise ValueError("no seeds: give --seeds URL or --seeds-file FILE")
    for seed in seeds:
        check_seed(seed)
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
        Path(old).unlink()
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


def unfinished_reason(entries: list[dict[str, Any]], cfg: CrawlConfig) -> str | None:
    """Why a crawl must not be marked done: nothing read, no candidates, or mostly transient drops."""
    pages = [e for e in entries if e["outcome"] != "sitemaps"]
    ok = sum(e["outcome"] == "ok" for e in pages)
    transient = Counter(f"crawl/{e['outcome']}" for e in pages if is_transient(e["outcome"]))
    top = ", ".join(f"{r} {n}" for r, n in Counter(f"crawl/{e['outcome']}" for e in pages
                                                   if e["outcome"] != "ok").most_common(3))
    if sum(transient.values()) > cfg.max_transient_share * len(pages):
        return (f"{sum(transient.values())} of {len(pages)} pages dropped for transient reasons "
                f"({', '.join(f'{r} {n}' for r, n in transient.most_common(3))}): rerun to try them again")
    if ok == 0:
        return (f"none of the {len(pages)} pages crawled could be read ({top}): check that the seeds answer, "
                "that --allow-private names local hosts and that robots.txt lets us in")
    if not any(e["candidates"] for e in pages):
        return (f"{ok} pages read but no image candidates found: check the seeds, --scope and --max-depth "
                "(pages need <img> tags with alt text)")
    return None


def run_live(cfg: CrawlConfig, stage: StageDir) -> dict[str, Any]:
    """Crawl (resuming any journal in ``_work/``), write candidates and finish the stage.

    A crawl that read nothing, found no candidates or dropped mostly for transient reasons raises
    StageIncomplete: no ``_SUCCESS``, and the journal stays for a rerun, which tries the transient drops again.
    """
    seeds = read_seeds(cfg)
    work = stage.path / "_work"
    crawler = Crawler(cfg, seeds, work)
    entries = crawler.run()
    why = unfinished_reason(entries, cfg)
    if why is not None:
        raise StageIncomplete(f"crawl: {why}; the journal in {work} is kept (--force starts over)")
    written = write_candidates(entries, stage.path, cfg.rows_per_part)
    stats = summarise(entries, written)
    stats["outcomes"] = dict(sorted(Counter(e["outcome"] for e in entries if e["outcome"] != "sitemaps").items()))
    sitemaps = [e for e in entries if e["outcome"] == "sitemaps"][-1:]  # the latest reading (a rerun may read again)
    stats["sitemap_urls"] = sum(len(e["links"]) for e in sitemaps)
    stats["sitemap_drops"] = sitemaps[0].get("sitemap_drops", {}) if sitemaps else {}
    stats["links"] = crawler.frontier.links.as_dict()
    check_identity(stats["links"])
    stage.finish(stats)
    shutil.rmtree(work, ignore_errors=True)
    return stats

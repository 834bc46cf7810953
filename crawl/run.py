"""The crawl stage: seeds -> ``<run>/candidates/`` (stats.json, _SUCCESS; Parquet parts in ``data/``)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from webclip import denylist
from webclip.config import items_with_file
from webclip.crawl.allocator import crawl_allocator
from webclip.crawl.config import CrawlConfig, check_seed
from webclip.crawl.crawler import Crawler
from webclip.crawl.extsort import write_sorted_parts
from webclip.crawl.journal import Entries
from webclip.crawl.tally import CrawlTally
from webclip.fetch import is_transient
from webclip.layout import table_in
from webclip.parquet import count_rows, parts
from webclip.records import CANDIDATE_SCHEMA
from webclip.runfolder import StageDir, StageIncomplete, atomic_write_json
from webclip.stats import Tally, check_identity, drop_examples_record


def read_seeds(cfg: CrawlConfig) -> list[str]:
    """Seeds from the config plus one http(s) URL per line of ``seeds_file`` (``#`` comments allowed)."""
    seeds = items_with_file(cfg.seeds, cfg.seeds_file, "seeds")
    if not seeds:
        raise ValueError("no seeds: give --seeds URL or --seeds-file FILE")
    for seed in seeds:
        check_seed(seed)
    return seeds


def summarise(tally: CrawlTally, written: int) -> dict[str, Any]:
    """stats.json for the crawl: image candidates, with a ``pages`` block of its own."""
    images = Tally("image candidates", n_in=tally.images.n_in, kept=written, dropped=Counter(tally.images.dropped))
    out = images.as_dict()
    out["pages"] = tally.pages.as_dict()
    check_identity(out)
    check_identity(out["pages"])
    return out


def write_candidates(entries: Entries, folder: Path, work: Path, rows_per_part: int, rows_per_run: int) -> int:
    """Write every candidate, sorted by (uid, page_url), into Parquet parts; returns rows written.

    Streamed from the journal through sorted runs in ``work``: memory does not grow with the candidates.
    """
    write_sorted_parts(entries.candidates(), folder, work, CANDIDATE_SCHEMA, rows_per_part, rows_per_run)
    return count_rows(parts(folder))


def run_crawl(cfg: CrawlConfig, stage: StageDir, run: Path) -> dict[str, Any]:
    """Dispatch on ``source``: a live crawl of seeds or a Beam read of Common Crawl archives."""
    if cfg.source == "cc":
        from webclip.crawl.cc import run_cc

        stats = run_cc(cfg, stage, run)
        stage.finish(stats)
        return stats
    return run_live(cfg, stage)


def unfinished_reason(tally: CrawlTally, cfg: CrawlConfig) -> str | None:
    """Why a crawl must not be marked done: nothing read, no candidates, or mostly transient drops."""
    pages, ok = tally.pages.n_in, tally.pages.kept
    transient = Counter({f"crawl/{o}": n for o, n in tally.outcomes.items() if is_transient(o)})
    top = ", ".join(f"{r} {n}" for r, n in Counter({f"crawl/{o}": n for o, n in tally.outcomes.items()
                                                    if o != "ok"}).most_common(3))
    if sum(transient.values()) > cfg.max_transient_share * pages:
        return (f"{sum(transient.values())} of {pages} pages dropped for transient reasons "
                f"({', '.join(f'{r} {n}' for r, n in transient.most_common(3))}): rerun to try them again")
    if ok == 0:
        return (f"none of the {pages} pages crawled could be read ({top}): check that the seeds answer, "
                "that --allow-private names local hosts and that robots.txt lets us in")
    if tally.candidates == 0:
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
    crawler = Crawler(cfg, seeds, work, denylist.for_run(stage.run))  # denied pages are never fetched
    with crawl_allocator():  # bounded RSS over a long crawl, handed back afterwards (see allocator.py)
        entries, tally = crawler.run(), crawler.tally
        why = unfinished_reason(tally, cfg)
        if why is not None:
            raise StageIncomplete(f"crawl: {why}; the journal in {work} is kept (--force starts over)")
        written = write_candidates(entries, Path(table_in(stage.path, "candidates")), work / "sort",
                                   cfg.rows_per_part, cfg.sort_rows_per_run)
    stats = summarise(tally, written)
    stats["outcomes"] = dict(sorted(tally.outcomes.items()))
    sitemaps = tally.sitemaps or {}  # the latest reading (a rerun may read again)
    stats["sitemap_urls"] = sitemaps.get("urls", 0)
    stats["sitemap_drops"] = sitemaps.get("sitemap_drops", {})
    stats["links"] = crawler.frontier.links.as_dict()
    check_identity(stats["links"])
    examples = tally.pages.examples.merge(tally.images.examples)  # page reasons and image reasons never share a name
    atomic_write_json(stage.path / "drop_examples.json", drop_examples_record(examples, "pages"))  # for explore
    stage.finish(stats)
    shutil.rmtree(work, ignore_errors=True)
    return stats

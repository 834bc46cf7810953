"""What the crawl stage's stats and its done-or-not decision need from the journal, counted as entries come."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from webclip.crawl.sitemaps import SITEMAP_ENTRY
from webclip.stats import Tally


@dataclass
class CrawlTally:
    """Counters over a crawl's entries in place of the entries themselves: a few per outcome, none per page.

    Fed every entry the crawl keeps (replayed or recorded) in journal order, so counts, and the order of ties in
    ``most_common``, are those of a pass over the entries.
    """

    entries: int = 0  # pages and sitemap readings
    candidates: int = 0
    pages: Tally = field(default_factory=lambda: Tally("pages"))
    images: Tally = field(default_factory=lambda: Tally("image candidates"))
    outcomes: Counter = field(default_factory=Counter)  # page outcome -> pages, in order of first arrival
    sitemaps: dict[str, Any] | None = None  # the latest sitemap reading: its URL count and drops

    def add(self, entry: dict[str, Any]) -> None:
        """Count one entry."""
        self.entries += 1
        outcome = entry["outcome"]
        if outcome == "sitemaps":
            self.sitemaps = {"url": SITEMAP_ENTRY, "urls": len(entry["links"]),
                             "sitemap_drops": entry.get("sitemap_drops", {})}
            return
        self.pages.n_in += 1
        self.outcomes[outcome] += 1
        self.candidates += len(entry["candidates"])
        if outcome == "ok":
            self.pages.kept += 1
            self.images.n_in += entry["imgs"]
            for reason, n in entry["img_drops"].items():  # the extractor keeps counts: the page is the example
                self.images.drop(reason, n, example={"page_url": entry["url"], "depth": entry["depth"]})
        else:
            self.pages.drop(f"crawl/{outcome}", example={"page_url": entry["url"], "depth": entry["depth"]})

    def sitemap_entries(self) -> list[dict[str, Any]]:
        """The latest sitemap reading as ``sitemaps_due`` reads entries (empty if never read)."""
        return [self.sitemaps] if self.sitemaps is not None else []

    @property
    def errors(self) -> int:
        """Pages dropped so far."""
        return sum(self.pages.dropped.values())

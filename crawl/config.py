"""The crawl stage's config."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from webclip.config import BeamRunner
from webclip.fetch import DEFAULT_USER_AGENT, FetchConfig

SCOPES = ("host", "domain", "hosts")


@dataclass
class CrawlConfig(BeamRunner):
    """Where to start, what is in scope, and how politely to fetch."""

    # Free to change on resume (see webclip.config.runtime_fields): pacing, width and retry timing change how
    # fast pages arrive, not which pages or candidates are written (split_mb: the same parts, tested). Where
    # max_pages or max_depth binds, pages are admitted in the order they finish, which timing decides on any
    # run, these knobs or not (crawler.Frontier); a resume continues the journal's admissions.
    # How hard transient failures are tried (timeout, retries...) only turns a transient drop, never sealed, into a
    # page read: raising --timeout on the rerun of a crawl that timed out keeps its journal.
    RUNTIME: ClassVar[tuple[str, ...]] = ("progress", "concurrency", "per_host_concurrency", "per_host_delay",
                                          "max_crawl_delay", "robots_retry_interval", "transient_retry_delay",
                                          "max_transient_share", "split_mb", "timeout", "retries", "backoff",
                                          "max_retry_wait", "transient_retries", "sort_rows_per_run")

    source: str = "live"  # "live" crawl of seeds, or "cc": Common Crawl WARC/WAT files in ``paths``
    seeds: list[str] = field(default_factory=list)  # start URLs, http(s) only (a file of URLs: --seeds-file)
    seeds_file: str | None = None  # text file with one seed URL per line (# comments allowed)
    scope: str = "host"  # which links to follow: host (seeds' hosts), domain (their registered domains) or hosts
    hosts: list[str] = field(default_factory=list)  # with scope "hosts": the host names that are in scope
    max_depth: int = 5  # links followed from a seed, at most (seeds are depth 0)
    max_pages: int = 100_000  # pages admitted to the frontier, at most
    concurrency: int = 16  # pages fetched at once, over all hosts (threads)
    per_host_concurrency: int = 2  # requests in flight to one host, at most
    per_host_delay: float = 1.0  # seconds between request starts to one host, at least
    timeout: float = 10.0  # seconds per request attempt, in all: connect, TLS, headers and body
    max_bytes: int = 5_000_000  # bytes per response body after decoding (and per archive record), at most
    max_redirects: int = 5  # redirects followed per request, each target checked by the address guard
    retries: int = 2  # immediate retries of a connection error, 429 or 503
    backoff: float = 0.5  # seconds before the first retry, doubled each time (with jitter)
    max_retry_wait: float = 30.0  # seconds: a longer Retry-After is not waited for (the request is dropped)
    max_crawl_delay: float = 30.0  # a longer robots.txt Crawl-delay is cut to this: the host is crawled at this pace
    robots_retry_interval: float = 60.0  # an unreachable robots.txt is fetched again after this many seconds
    transient_retries: int = 2  # times a page dropped for a transient reason is tried again later in the run
    transient_retry_delay: float = 5.0  # seconds before such a page is tried again (robots_unreachable: the interval)
    max_transient_share: float = 0.5  # more pages than this dropped for transient reasons: no _SUCCESS, rerun
    user_agent: str = DEFAULT_USER_AGENT  # User-Agent header sent with every request
    robots_agent: str = "webclip"  # the name matched against robots.txt User-agent lines
    allow_private: list[str] = field(default_factory=list)  # HOST[:PORT] or CIDR the address guard lets through
    respect_robots: bool = True  # obey robots.txt (RFC 9309) and Crawl-delay
    use_sitemaps: bool = True  # also admit the URLs of the seed hosts' sitemaps
    strip_tracking_params: bool = True  # drop utm_* and similar parameters when normalising URLs
    parser: str = "scan"  # scan (targeted tokenizer), selectolax, or bs4 (the reference)
    rows_per_part: int = 500_000  # candidate rows per Parquet part, at most
    sort_rows_per_run: int = 10_000  # candidate rows sorted in memory at once (the rest in sorted runs on disk)
    progress: bool = True  # show progress bars
    paths: list[str] = field(default_factory=list)  # WARC/WAT files: local, gs://, s3://, https://
    paths_file: str | None = None  # text file with one archive path per line (a missing one is a counted drop)
    num_parts: int = 4  # Parquet parts the cc source writes
    output_path: str | None = None  # cc source: write the candidates table here instead of <run>/candidates (e.g. gs://...)
    split_mb: float = 64.0  # per-record gzip archives larger than this are read as parallel byte ranges

    def worker_extras(self) -> tuple[str, ...]:
        """fastwarc (and the optional parsers) for reading archives on remote workers."""
        return ("crawl",)

    def validate(self) -> None:
        """Reject impossible settings."""
        if self.source not in ("live", "cc"):
            raise ValueError("source must be live or cc")
        if self.output_path and self.source != "cc":
            raise ValueError("output_path is for the cc source only (a live crawl writes into the run folder)")
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}")
        if self.parser not in ("scan", "selectolax", "bs4"):
            raise ValueError("parser must be scan, selectolax or bs4")
        if self.concurrency < 1 or self.per_host_concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.rows_per_part < 1 or self.sort_rows_per_run < 1:
            raise ValueError("rows_per_part and sort_rows_per_run must be >= 1")
        if self.transient_retries < 0 or not 0.0 <= self.max_transient_share <= 1.0:
            raise ValueError("transient_retries must be >= 0 and max_transient_share within [0, 1]")
        for seed in self.seeds:
            check_seed(seed)

    def fetch_config(self) -> FetchConfig:
        """The fetcher's share of this config."""
        return FetchConfig(user_agent=self.user_agent, timeout=self.timeout, max_bytes=self.max_bytes,
                           max_redirects=self.max_redirects, retries=self.retries, backoff=self.backoff,
                           max_retry_wait=self.max_retry_wait, per_host_delay=self.per_host_delay,
                           per_host_concurrency=self.per_host_concurrency, allow_private=list(self.allow_private),
                           max_crawl_delay=self.max_crawl_delay, robots_retry_interval=self.robots_retry_interval)


def check_seed(seed: str) -> None:
    """Raise ValueError unless ``seed`` is an absolute http(s) URL (a file path names --seeds-file)."""
    try:
        parts = urlsplit(seed)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if ok:
        return
    if Path(seed).exists() or seed.endswith((".txt", ".lst", ".list")):
        raise ValueError(f"seed {seed!r} is a file, not a URL: give it as --seeds-file {seed}")
    raise ValueError(f"seed {seed!r} is not an http(s) URL (e.g. https://example.org/)")

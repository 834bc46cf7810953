"""The shards stage's config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from webclip.config import BeamRunner
from webclip.fetch import DEFAULT_USER_AGENT, FetchConfig

RESIZE_MODES = ("no", "keep_ratio", "center_crop", "border", "keep_ratio_largest")


@dataclass
class ShardsConfig(BeamRunner):
    """Download, resize, politeness, dedupe, decontamination and final sharding."""

    # Free to change on resume (see webclip.config.runtime_fields): pacing and width, never what is written; and how
    # hard transient failures are tried (timeout, retries...), which only turns a transient drop, never sealed, into
    # a sample: raising --timeout on the rerun of a stage that timed out keeps its finished jobs.
    RUNTIME: ClassVar[tuple[str, ...]] = ("threads", "per_host_concurrency", "per_host_delay", "progress",
                                          "transient_retry_delay", "max_transient_share", "timeout", "retries",
                                          "transient_retries")

    image_size: int = 256  # pixels: side of the resized image (img2dataset's image_size)
    resize_mode: str = "center_crop"  # img2dataset resize mode: no, keep_ratio, center_crop, border
    resize_only_if_bigger: bool = False  # leave images smaller than image_size as they are
    encode_quality: int = 90  # JPEG quality of the stored image (0-100)
    min_image_size: int = 32  # pixels: images with a smaller side are dropped (download/too_small)
    max_aspect_ratio: float = 3.0  # longer side / shorter side above this is dropped (download/bad_aspect_ratio)
    max_image_pixels: int = 40_000_000  # Pillow's decompression-bomb limit
    timeout: float = 10.0  # seconds per request attempt, in all: connect, TLS, headers and body
    max_bytes: int = 10_000_000  # bytes per image body after decoding, at most (download/too_large)
    retries: int = 1  # immediate retries of a connection error, 429 or 503
    per_host_delay: float = 0.5  # seconds between request starts to one host, at least
    per_host_concurrency: int = 4  # requests in flight to one host, at most
    threads: int = 16  # download threads per worker
    user_agent: str = DEFAULT_USER_AGENT  # User-Agent header sent with every request
    robots_agent: str = "webclip"  # the name matched against robots.txt and agent-scoped X-Robots-Tag
    respect_robots: bool = True  # obey each image host's robots.txt (RFC 9309)
    # X-Robots-Tag directives (for all agents or for robots_agent) that drop an image as download/opt_out
    # (img2dataset's default also has noindex, which asks search engines not to list a page, not to leave it unused)
    opt_out_tokens: list[str] = field(default_factory=lambda: ["noimageindex", "noai", "noimageai"])
    transient_retries: int = 1  # times a transient drop (timeout, 429/5xx, unreachable robots.txt) is tried again in the job
    transient_retry_delay: float = 5.0  # seconds between a transient drop and its retry (robots.txt fetched again too)
    # More pairs than this share still transient at the end: no _SUCCESS, a one-line error; a rerun retries only them.
    max_transient_share: float = 0.5
    allow_private: list[str] = field(default_factory=list)  # HOST[:PORT] or CIDR the address guard lets through
    samples_per_job: int = 2000  # curated pairs per download job, about (a registered domain with more is split over jobs sharing its hosts' rate)
    shard_size: int = 1000  # samples per final tar
    # train tars, at least: smaller tars when needed, so each data-loader worker on each GPU gets one
    # (open_clip stops when there are fewer shards than workers; 8 covers its default 4 workers on 2 GPUs)
    min_shards: int = 8
    val_fraction: float = 0.02  # share of samples set aside (by uid hash) for the val split
    seed: int = 0  # seed of every hash-decided choice (val split)
    phash_threshold: int = 2  # -1 turns near-duplicate search off; 64-bit pHash bits; see bench/phash.py for precision and recall
    dedupe_on_beam_from: int = 200_000  # images; fewer are deduplicated in-process (same functions)
    decontaminate: list[str] = field(default_factory=lambda: ["sampleweb/heldout"])  # evaluation image folders or tars whose images and near duplicates are removed
    progress: bool = True  # show progress bars
    curated_path: str | None = None  # curate's output_path (e.g. gs://...): read its data/ instead of <run>/curated/data
    output_path: str | None = None  # write jobs/, final/ and samples/ here instead of <run>/shards (stats stay in the run)

    def worker_extras(self) -> tuple[str, ...]:
        """img2dataset and friends, plus the fsspec backend of any object-store path."""
        paths = [p for p in (self.curated_path, self.output_path) if p]
        return ("shards", *(["gcp"] if any(p.startswith("gs://") for p in paths) else []),
                *(["aws"] if any(p.startswith("s3://") for p in paths) else []))

    def validate(self) -> None:
        """Reject impossible settings."""
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError("val_fraction must be in [0, 1)")
        if self.shard_size < 1 or self.samples_per_job < 1:
            raise ValueError("shard_size and samples_per_job must be >= 1")
        if self.transient_retries < 0 or self.transient_retry_delay < 0:
            raise ValueError("transient_retries and transient_retry_delay must be >= 0")
        if not 0 <= self.max_transient_share <= 1:
            raise ValueError("max_transient_share must be in [0, 1]")

    def fetch_config(self) -> FetchConfig:
        """The fetcher's share of this config."""
        return FetchConfig(user_agent=self.user_agent, timeout=self.timeout, max_bytes=self.max_bytes,
                           retries=self.retries, per_host_delay=self.per_host_delay,
                           per_host_concurrency=self.per_host_concurrency, allow_private=list(self.allow_private))

"""The curate stage's config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from webclip.config import BeamRunner
from webclip.pipelines.langid import DEFAULT_DETECTOR, DETECTORS

LANG_DETECTORS = tuple(DETECTORS)

MATCH_MODES = ("word", "substring", "metaclip")  # what each does: pipelines/match.py
BALANCE_BY = ("entry", "entry_lang")
MATCHERS = ("ahocorasick_rs", "pyahocorasick")


@dataclass
class CurateConfig(BeamRunner):
    """Filters, language set, query list, matching and balancing of the curation pipeline."""

    RUNTIME: ClassVar[tuple[str, ...]] = ("progress",)  # free to change on resume (see webclip.config.runtime_fields)

    queries: str = "sampleweb/concepts.json"  # relative paths are inside the run folder
    min_alt_chars: int = 5  # characters: shorter alt texts are dropped (filter/alt_too_short)
    max_alt_chars: int = 256  # characters: longer alt texts are dropped (filter/alt_too_long)
    min_alt_words: int = 2  # whitespace-separated words: alt texts with fewer are dropped (filter/alt_too_few_words)
    min_image_side: int = 32  # pixels: images whose declared width or height is smaller are dropped (filter/too_small_declared)
    languages: list[str] = field(default_factory=lambda: ["en"])  # ISO 639-1 codes kept (empty: every language)
    lang_detector: str = DEFAULT_DETECTOR  # see bench/langid.py for the measured table
    match_mode: str = "word"  # word (Unicode word tokens), substring (case-insensitive raw substring) or metaclip (MetaCLIP v1's rule)
    # word mode only, both sides of the match; defaults chosen on tests/pipelines/data/match_traps.jsonl
    match_inflections: bool = True  # cats, cat's, puppies -> cat, puppy (and Korean particles)
    match_accents: bool = True  # an entry without accents also finds accented text (cafe -> café)
    matcher: str = "ahocorasick_rs"  # measured in bench/match.py; pyahocorasick gives the same ids
    balance_t: int = 20_000  # pairs per entry kept at most (MetaCLIP's t); an entry above it keeps t/count of its pairs
    balance_fraction: float | None = None  # if set, t = fraction * matched pairs (at least 1)
    balance_by: str = "entry"  # "entry": counts pooled over languages; "entry_lang": per (language, entry)
    balance_anchor_lang: str = "en"  # entry_lang: this language gets balance_t, others the same tail share
    seed: int = 0  # seed of every hash-decided choice (balancing)
    num_parts: int = 4  # Parquet parts written (by uid range)
    progress: bool = True  # show progress bars
    candidates_path: str | None = None  # crawl's output_path (e.g. gs://...): read its data/ instead of <run>/candidates/data
    output_path: str | None = None  # write data/, pool/ and query_counts/ here instead of <run>/curated (stats stay in the run)

    def validate(self) -> None:
        """Reject impossible settings."""
        if self.lang_detector not in LANG_DETECTORS:
            raise ValueError(f"lang_detector must be one of {LANG_DETECTORS}")
        if self.matcher not in MATCHERS:
            raise ValueError(f"matcher must be one of {MATCHERS}")
        if self.match_mode not in MATCH_MODES:
            raise ValueError(f"match_mode must be one of {MATCH_MODES}")
        if self.balance_by not in BALANCE_BY:
            raise ValueError(f"balance_by must be one of {BALANCE_BY}")
        if self.balance_fraction is not None and not 0 < self.balance_fraction <= 1:
            raise ValueError("balance_fraction must be in (0, 1]")
        if self.num_parts < 1:
            raise ValueError("num_parts must be >= 1")

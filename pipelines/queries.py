"""The query list: WordNet lemmas, frequent words, high-PMI bigrams and titles, deduped and capped.

Every source is optional and offline. The output is MetaCLIP's format (``queries.json``, a JSON list of
strings) plus ``queries.parquet`` recording each entry's sources and frequency.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webclip.config import BeamRunner
from webclip.pipelines.normalise import match_key

WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*", re.UNICODE)


@dataclass
class QueriesConfig(BeamRunner):
    """Sources, their priority and the budget."""

    size: int = 500_000  # entries in the query list, at most (kept by source priority, then frequency or score)
    priority: list[str] = field(default_factory=lambda: ["wordnet", "titles", "bigrams", "wordfreq"])  # sources, most important first
    wordnet_path: str | None = None  # an NLTK ``corpora/wordnet`` folder or Debian's /usr/share/wordnet
    wordfreq_lang: str | None = "en"  # language of wordfreq's frequent words (null: no wordfreq source)
    wordfreq_max: int = 500_000  # most frequent words taken from wordfreq, at most
    titles_file: str | None = None  # text file of titles (e.g. Wikipedia article titles), one per line
    bigram_corpus: list[str] = field(default_factory=list)  # text files (one text per line) or candidate Parquet (files or folders; local, gs://, s3://)
    bigram_min_count: int = 5  # occurrences a bigram needs in bigram_corpus, at least
    bigram_min_pmi: float = 3.0  # pointwise mutual information (natural log) a bigram needs, at least
    bigram_max: int = 100_000  # highest-PMI bigrams kept, at most

    def validate(self) -> None:
        """Reject unknown sources."""
        unknown = set(self.priority) - {"wordnet", "titles", "bigrams", "wordfreq"}
        if unknown:
            raise ValueError(f"unknown sources in priority: {sorted(unknown)}")


def normalise_entry(text: str) -> str:
    """NFC, underscores as spaces, whitespace collapsed (case kept, as in MetaCLIP)."""
    return " ".join(unicodedata.normalize("NFC", text.replace("_", " ")).split())


def find_wordnet(path: str | None) -> Path | None:
    """The folder holding ``data.noun`` etc.: the configured one, else the usual NLTK and Debian places."""
    candidates = [Path(path)] if path else []
    candidates += [Path.home() / "nltk_data" / "corpora" / "wordnet", Path("/usr/share/nltk_data/corpora/wordnet"),
                   Path("/usr/share/wordnet")]
    for c in candidates:
        if (c / "data.noun").is_file():
            return c
    if path:
        raise FileNotFoundError(f"no WordNet data files (data.noun, ...) in {path}")
    return None


def wordnet_lemmas(folder: Path) -> Iterator[str]:
    """Every synset lemma of the WordNet 3.0 data files (``offset lex ss_type w_cnt word lex_id ...``)."""
    for name in WORDNET_FILES:
        p = folder / name
        if not p.exists():
            continue
        with open(p, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or not line.strip():
                    continue  # licence header
                parts = line.split()
                try:
                    n = int(parts[3], 16)
                except (IndexError, ValueError):
                    continue
                for i in range(n):
                    word = parts[4 + 2 * i]
                    yield re.sub(r"\((a|p|ip)\)$", "", word)  # adjective position markers


def wordfreq_words(lang: str, limit: int) -> list[tuple[str, float]]:
    """The ``limit`` most frequent words of ``lang`` with their frequencies (the wordfreq package)."""
    from wordfreq import top_n_list, word_frequency

    return [(w, word_frequency(w, lang)) for w in top_n_list(lang, limit)]


def tokens(text: str) -> list[str]:
    """Lower-case word tokens."""
    return [t.lower() for t in WORD.findall(text)]


def pmi_bigrams(unigrams: dict[str, int], bigrams: dict[tuple[str, str], int], min_count: int,
                min_pmi: float) -> list[tuple[str, float, int]]:
    """(bigram, PMI, count) with count >= min_count and PMI >= min_pmi, best first."""
    n1, n2 = sum(unigrams.values()), sum(bigrams.values())
    out = []
    for (a, b), c in bigrams.items():
        if c < min_count:
            continue
        pmi = math.log((c / n2) / ((unigrams[a] / n1) * (unigrams[b] / n1)))
        if pmi >= min_pmi:
            out.append((f"{a} {b}", pmi, c))
    return sorted(out, key=lambda x: (-x[1], -x[2], x[0]))


def corpus_texts(path: str) -> Iterator[str]:
    """Texts of a corpus file on any Beam filesystem: lines of a text file, or the ``alt`` (``caption``)
    column of candidate Parquet; a folder gives its ``part-*.parquet`` files (a stage folder such as
    ``<run>/candidates``: those of its ``data/`` table)."""
    import io

    import pyarrow.parquet as pq
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    from webclip.beamio import list_parts

    for f in list_parts(path) or list_parts(FileSystems.join(path, "data")) or [path]:
        with FileSystems.open(f, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            if f.endswith(".parquet"):
                table = pq.read_table(io.BytesIO(fh.read()))
                col = "caption" if "caption" in table.column_names else "alt"
                yield from table[col].to_pylist()
            else:
                yield from (line.rstrip("\n") for line in io.TextIOWrapper(fh, encoding="utf-8", errors="replace"))


def mine_bigrams(cfg: QueriesConfig, scratch_under: str) -> list[tuple[str, float, int]]:
    """High-PMI bigrams of the corpus, counted by a Beam job (counts combine across workers).

    The workers hand their counts to the launcher through two scratch files on a Beam filesystem both
    reach (``--temp_location``, else ``scratch_under``: the stage's folder); see ``beamio.scratch_path``.
    """
    import apache_beam as beam

    from webclip.beamio import scratch_path, take_json, write_json

    options = cfg.beam_options()
    uni_path, bi_path = scratch_path(options, scratch_under, "unigrams"), scratch_path(options, scratch_under, "bigrams")
    with beam.Pipeline(options=options) as p:
        corpus = [c if "://" in c else str(Path(c).resolve()) for c in cfg.bigram_corpus]  # as workers elsewhere see it
        toks = (p | beam.Create(corpus) | beam.FlatMap(corpus_texts) | beam.Map(tokens))
        uni = (toks | "Uni" >> beam.FlatMap(lambda ts: [(t, 1) for t in ts]) | "CountUni" >> beam.CombinePerKey(sum))
        bi = (toks | "Bi" >> beam.FlatMap(lambda ts: [((a, b), 1) for a, b in zip(ts, ts[1:], strict=False)])
              | "CountBi" >> beam.CombinePerKey(sum) | "Frequent" >> beam.Filter(lambda kv, m: kv[1] >= m, cfg.bigram_min_count))
        (uni | "AllUni" >> beam.combiners.ToList() | "WriteUni" >> beam.Map(write_json, uni_path))
        (bi | "AllBi" >> beam.combiners.ToList() | "WriteBi" >> beam.Map(write_json, bi_path))
    uni_counts = {k: v for k, v in take_json(uni_path)}
    bi_counts = {tuple(k): v for k, v in take_json(bi_path)}
    return pmi_bigrams(uni_counts, bi_counts, cfg.bigram_min_count, cfg.bigram_min_pmi)[:cfg.bigram_max]


def gather_sources(cfg: QueriesConfig, scratch_under: str) -> dict[str, list[tuple[str, float]]]:
    """Each enabled source's (entry, frequency-or-score) list, in the source's own order.

    ``scratch_under``: where the bigram job's workers may leave their counts (the stage's folder).
    """
    sources: dict[str, list[tuple[str, float]]] = {}
    folder = find_wordnet(cfg.wordnet_path)
    if folder is not None:
        counts = Counter(wordnet_lemmas(folder))
        sources["wordnet"] = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if cfg.titles_file:
        p = Path(cfg.titles_file)
        if not p.is_file():
            raise FileNotFoundError(f"titles file not found: {p}")
        sources["titles"] = [(line.strip(), 0.0) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    if cfg.bigram_corpus:
        sources["bigrams"] = [(b, pmi) for b, pmi, _ in mine_bigrams(cfg, scratch_under)]
    if cfg.wordfreq_lang:
        sources["wordfreq"] = wordfreq_words(cfg.wordfreq_lang, cfg.wordfreq_max)
    return sources


def build_list(sources: dict[str, Iterable[tuple[str, float]]], priority: list[str], size: int) -> tuple[list[dict[str, Any]], Counter]:
    """Merge sources by priority into one entry per match key, recording every source, capped at ``size``.

    Nothing goes silently: an entry whose key is empty (only punctuation) is dropped as ``queries/empty_key``;
    the same entry again is ``queries/duplicate``; a different spelling of a kept entry's key (``Cat`` after
    ``cat``, ``New_York`` after ``new york``) is ``queries/key_collision`` and listed in the kept entry's
    ``variants``, since both would match exactly the same captions.
    """
    by_key: dict[str, dict[str, Any]] = {}
    drops: Counter = Counter()
    for name in [s for s in priority if s in sources]:
        for raw, score in sources[name]:
            entry = normalise_entry(raw)
            key = match_key(entry)
            if not key.strip():
                drops["queries/empty_key"] += 1
                continue
            if key in by_key:
                kept = by_key[key]
                if name not in kept["sources"]:
                    kept["sources"].append(name)
                if entry == kept["entry"]:
                    drops["queries/duplicate"] += 1
                else:
                    drops["queries/key_collision"] += 1
                    if entry not in kept["variants"]:
                        kept["variants"].append(entry)
                continue
            if len(by_key) >= size:
                drops["queries/over_budget"] += 1
                continue
            by_key[key] = {"entry": entry, "match_key": key.strip(), "sources": [name], "source": name,
                           "score": float(score), "variants": []}
    return list(by_key.values()), drops


def run_queries(cfg: QueriesConfig, stage: Any, run: Path) -> dict[str, Any]:
    """Build the list into ``<run>/queries/``: queries.json, queries.parquet, stats.json."""
    import pyarrow as pa

    from webclip.parquet import table_bytes
    from webclip.runfolder import atomic_write_bytes, atomic_write_json
    from webclip.stats import Tally, check_identity

    sources = {k: list(v) for k, v in gather_sources(cfg, str(stage.path.resolve())).items()}
    if not sources:
        raise ValueError("no query sources: configure wordnet_path, wordfreq_lang, titles_file or bigram_corpus")
    entries, drops = build_list(sources, cfg.priority, cfg.size)
    atomic_write_json(stage.path / "queries.json", [e["entry"] for e in entries])
    table = pa.table({"entry_id": pa.array(range(len(entries)), pa.int32()),
                      "entry": pa.array([e["entry"] for e in entries], pa.string()),
                      "source": pa.array([e["source"] for e in entries], pa.string()),
                      "sources": pa.array([e["sources"] for e in entries], pa.list_(pa.string())),
                      "score": pa.array([e["score"] for e in entries], pa.float64()),
                      "match_key": pa.array([e["match_key"] for e in entries], pa.string()),
                      "variants": pa.array([e["variants"] for e in entries], pa.list_(pa.string()))})
    atomic_write_bytes(stage.path / "queries.parquet", table_bytes(table))
    tally = Tally("source entries", n_in=sum(len(v) for k, v in sources.items() if k in cfg.priority),
                  kept=len(entries))
    for reason, n in drops.items():
        tally.drop(reason, n)
    stats = tally.as_dict()
    stats["per_source"] = {k: len(v) for k, v in sources.items()}
    stats["kept_per_source"] = dict(Counter(e["source"] for e in entries))
    check_identity(stats)
    stage.finish(stats)
    return stats

"""Normalise + word-boundary match against a 500k-entry list, beside plain Aho-Corasick substring iteration."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from webclip.pipelines.match import build_automaton, match_ids
from webclip.pipelines.normalise import normalise_caption

ALTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "alts" / "alts.jsonl"


def query_list(size: int = 500_000, seed: int = 0) -> list[str]:
    """wordfreq's top 200k English words, then bigrams of its top 20k words drawn with ``seed``."""
    from wordfreq import top_n_list

    words = top_n_list("en", 200_000)
    entries, seen = list(words), set(words)
    top = words[:20_000]
    rng = random.Random(seed)
    while len(entries) < size:
        bigram = f"{rng.choice(top)} {rng.choice(top)}"
        if bigram not in seen:
            seen.add(bigram)
            entries.append(bigram)
    return entries


def rss_mb() -> float:
    """Resident memory of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def dfa_build(entries: list[str]) -> dict:
    """ahocorasick-rs's DFA implementation: build time and memory only (it is not used for matching)."""
    import ahocorasick_rs as acrs

    from webclip.pipelines.match import entry_key

    keys = sorted({entry_key(e, "word") for e in entries if entry_key(e, "word").strip()})
    before = rss_mb()
    started = time.perf_counter()
    auto = acrs.AhoCorasick(keys, matchkind=acrs.MatchKind.Standard, implementation=acrs.Implementation.DFA)
    out = {"ahocorasick_rs_dfa_build_s": round(time.perf_counter() - started, 2), "ahocorasick_rs_dfa_build_mb": round(rss_mb() - before)}
    del auto
    return out


def main() -> dict:
    """Measure and print one JSON line."""
    if not ALTS.exists():
        out = {"bench": "match", "skipped": f"{ALTS} not found"}
        print(json.dumps(out))
        return out
    alts = [r["alt"] for r in map(json.loads, ALTS.read_text().splitlines()) if r["alt"] and r["alt"].strip()]
    entries = query_list()
    texts = alts * 10
    figures: dict = {}
    for backend in ("ahocorasick_rs", "pyahocorasick"):
        before = rss_mb()
        started = time.perf_counter()
        word = build_automaton(entries, "word", backend)
        figures[f"{backend}_build_s"] = round(time.perf_counter() - started, 2)
        figures[f"{backend}_build_mb"] = round(rss_mb() - before, 1)
        started = time.perf_counter()
        hits = sum(len(match_ids(word, normalise_caption(t), "word")) for t in texts)
        figures[f"{backend}_norm_word_match_texts_s"] = round(len(texts) / (time.perf_counter() - started))
        del word
    ours = figures["ahocorasick_rs_norm_word_match_texts_s"]
    sub = build_automaton(entries, "substring", "pyahocorasick").auto
    started = time.perf_counter()
    sub_hits = 0
    for t in texts:
        for _ in sub.iter(t.lower()):
            sub_hits += 1
    anchor = len(texts) / (time.perf_counter() - started)
    started = time.perf_counter()
    few = alts[:20]
    for t in few:  # MetaCLIP-style: a Python loop over every entry
        low = t.lower()
        [e for e in entries if e in low]
    loop = len(few) / (time.perf_counter() - started)
    out = {"bench": "match", "entries": len(entries), **figures, **dfa_build(entries), "texts": len(texts), "webclip_default": "ahocorasick_rs",
           "ahocorasick_substring_iter_texts_s": round(anchor), "python_loop_texts_s": round(loop, 1),
           "word_hits_per_text": round(hits / len(texts), 2), "substring_hits_per_text": round(sub_hits / len(texts), 2),
           "ratio_vs_substring_iter": round(ours / anchor, 3)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()

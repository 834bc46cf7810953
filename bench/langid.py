"""Language-ID accuracy per text kind and texts/s, every detector beside langdetect, same language set."""

from __future__ import annotations

import json
import time
from pathlib import Path

from webclip.pipelines.langid import DETECTORS, best_language, get_detector

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "lang"
KINDS = ("sentences", "single-words", "word-pairs")


def load() -> dict[str, list[tuple[str, str]]]:
    """(text, language) pairs per kind."""
    out = {}
    for kind in KINDS:
        out[kind] = [(line, f.stem) for f in sorted((DATA / kind).glob("*.txt"))
                     for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


def measure(name: str, data: dict[str, list[tuple[str, str]]], langs: set[str]) -> dict:
    """Accuracy and texts/s of one detector on every kind."""
    detect = get_detector(name, 0)
    detect("warm up the model")
    row: dict = {"bench": "langid", "detector": name}
    total_n, total_s = 0, 0.0
    for kind, items in data.items():
        started = time.perf_counter()
        preds = [best_language(detect(text), langs) for text, _ in items]
        seconds = time.perf_counter() - started
        row[f"{kind}_accuracy"] = round(sum(p == y for p, (_, y) in zip(preds, items, strict=True)) / len(items), 4)
        row[f"{kind}_texts_s"] = round(len(items) / seconds, 1)
        total_n, total_s = total_n + len(items), total_s + seconds
    row["texts_s"] = round(total_n / total_s, 1)
    return row


def passes_rule(candidate: dict, reference: dict) -> bool:
    """The default-choice rule: within 0.005 on sentences, >= on words and pairs, >= 20x faster."""
    return (candidate["sentences_accuracy"] >= reference["sentences_accuracy"] - 0.005
            and candidate["single-words_accuracy"] >= reference["single-words_accuracy"]
            and candidate["word-pairs_accuracy"] >= reference["word-pairs_accuracy"]
            and candidate["texts_s"] >= 20 * reference["texts_s"])


def main() -> list[dict]:
    """Measure every detector and print one JSON line each, plus the verdict."""
    if not DATA.exists():
        print(json.dumps({"bench": "langid", "skipped": f"{DATA} not found"}))
        return []
    data = load()
    langs = {f.stem for f in (DATA / "sentences").glob("*.txt")}
    rows = [measure(name, data, langs) for name in DETECTORS]
    ref = rows[0]
    for row in rows:
        row["passes_default_rule_vs_langdetect"] = row is not ref and passes_rule(row, ref)
        print(json.dumps(row))
    return rows


if __name__ == "__main__":
    main()

"""Normalisation, word-boundary matching and hash-decided balancing (pooled and per language)."""

from __future__ import annotations

import json
import math
import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from webclip.hashing import candidate_uid
from webclip.pipelines.balance import entry_probability, keep, keep_probability
from webclip.pipelines.config import CurateConfig
from webclip.pipelines.curate import PrepareFn
from webclip.pipelines.filters import filter_reason
from webclip.pipelines.match import build_automaton, match_ids
from webclip.pipelines.normalise import normalise_caption


def test_normalise_caption() -> None:
    assert normalise_caption("Tom &amp;amp; <b>Jerry</b>\u200b\t run\u0007") == "Tom & Jerry run"
    assert normalise_caption("cafe\u0301") == "café"


@pytest.mark.parametrize("backend", ["ahocorasick_rs", "pyahocorasick"])
def test_word_boundary_vs_substring(backend: str) -> None:
    entries = ["cat", "star", "new york", "猫", "c++", "ice-cream"]
    word, sub = build_automaton(entries, "word", backend), build_automaton(entries, "substring", backend)
    assert match_ids(word, "Education in the starfish lab") == []
    assert match_ids(sub, "Education in the starfish lab") == [0, 1]
    assert match_ids(word, "A CAT, in New-York!") == [0, 2]  # punctuation is a boundary on both sides
    assert match_ids(word, "a cat in new york") == [0, 2]
    assert match_ids(word, "我的猫很可爱") == [3]
    assert match_ids(word, "Ice cream (ice-cream) and C++") == [4, 5]
    assert match_ids(word, "Vitamin C at T-Mobile") == []


def test_balancing_keeps_rare_entries_and_caps_head() -> None:
    counts = {0: 50, 1: 5000}
    t = 500
    assert keep_probability([0], counts, t) == 1.0
    rng = random.Random(0)
    uids = [f"{rng.getrandbits(128):032x}" for _ in range(5000)]
    kept = sum(keep(u, 0, keep_probability([1], counts, t)) for u in uids)
    p = entry_probability(5000, t)
    assert abs(kept - 5000 * p) < 3 * math.sqrt(5000 * p * (1 - p))
    both = keep_probability([0, 1], counts, t)
    assert both == 1.0
    assert [keep(u, 0, 0.3) for u in uids[:50]] == [keep(u, 0, 0.3) for u in uids[:50]]
    assert [keep(u, 0, 0.3) for u in uids[:200]] != [keep(u, 1, 0.3) for u in uids[:200]]


def test_filter_reasons() -> None:
    cfg = CurateConfig()
    base = {"image_url": "http://x/a.jpg", "width": None, "height": None, "opt_out": False}
    cases = {"ok caption here": None, "logo": "filter/alt_too_short", "IMG_1234.jpg": "filter/file_name_alt",
             "https://x.com/a.jpg": "filter/url_alt", "aaaaaaaaaa nice": "filter/repeated_chars",
             "thumbnail": "filter/junk_alt", "x" * 300: "filter/alt_too_long"}
    for caption, reason in cases.items():
        assert filter_reason({**base, "caption": caption}, cfg) == reason, caption
    assert filter_reason({**base, "caption": "a nice one", "opt_out": True}, cfg) == "filter/opt_out"
    assert filter_reason({**base, "caption": "a nice one", "width": 1}, cfg) == "filter/too_small_declared"
    assert filter_reason({**base, "caption": "a nice one", "image_url": "http://x/p.html"}, cfg) == "filter/non_image_extension"


def test_filter_transform() -> None:
    rows = [{"image_url": "http://x/a.jpg", "width": None, "height": None, "opt_out": False, "alt": a,
             "uid": candidate_uid("http://x/a.jpg", a)} for a in ("a  red star", "logo", "two words")]
    with BeamTestPipeline() as p:
        out = p | beam.Create(rows) | beam.ParDo(PrepareFn(CurateConfig())) | beam.Map(lambda r: r["caption"])
        assert_that(out, equal_to(["a red star", "two words"]))


def test_every_entry_within_three_sigma_with_multi_match_pairs() -> None:
    rng = random.Random(1)
    n_entries, t = 30, 200
    weights = [1 / (q + 1) ** 1.2 for q in range(n_entries)]
    rows = []
    for _ in range(20_000):
        k = 1 if rng.random() < 0.6 else rng.randint(2, 3)
        ids = sorted(set(rng.choices(range(n_entries), weights=weights, k=k)))
        rows.append((f"{rng.getrandbits(128):032x}", ids))
    counts: dict[int, int] = {}
    for _, ids in rows:
        for q in ids:
            counts[q] = counts.get(q, 0) + 1
    kept = {q: 0 for q in counts}
    mean = {q: 0.0 for q in counts}
    var = {q: 0.0 for q in counts}
    for uid, ids in rows:
        p = keep_probability(ids, counts, t)
        k = keep(uid, 7, p)
        for q in ids:
            kept[q] += k
            mean[q] += p
            var[q] += p * (1 - p)
    for q in counts:
        if counts[q] <= t:
            assert kept[q] == counts[q]  # rare entries keep every pair
        assert abs(kept[q] - mean[q]) <= 3 * math.sqrt(var[q]) + 1e-9, (q, kept[q], mean[q])
    head = max(counts, key=counts.get)
    assert counts[head] > 10 * t and kept[head] < 0.2 * counts[head]


def test_both_matchers_agree_on_real_alts() -> None:

    from tests.conftest import shared_data

    alts = [r["alt"] for r in map(json.loads, (shared_data("alts") / "alts.jsonl").read_text().splitlines()) if r["alt"]]
    entries = sorted({w for a in alts[:800] for w in a.lower().split()[:3]} | {"the new", "of the"})
    for mode in ("word", "substring", "metaclip"):
        a, b = build_automaton(entries, mode, "ahocorasick_rs"), build_automaton(entries, mode, "pyahocorasick")
        for text in alts:
            assert match_ids(a, normalise_caption(text)) == match_ids(b, normalise_caption(text)), text


def metaclip2_thresholds(counts: dict[tuple[str, int], int], t: int, anchor: str) -> dict[str, float]:
    """MetaCLIP 2's rule in numpy: p = anchor's tail share at t; other languages' t = count nearest share p."""
    import numpy as np

    per = {g: np.array([c for (gg, _), c in sorted(counts.items()) if gg == g]) for g, _ in counts}
    anchor_counts = per[anchor]
    p = anchor_counts[anchor_counts < t].sum() / anchor_counts.sum()
    out = {}
    for g, c in per.items():
        ordered = np.sort(c)
        out[g] = float(t) if g == anchor else float(ordered[np.abs(np.cumsum(ordered) / ordered.sum() - p).argmin()])
    return out


def test_per_language_thresholds_follow_metaclip2() -> None:
    from webclip.pipelines.balance import group_thresholds

    rng = random.Random(3)
    counts = {}
    for lang, n, scale in (("en", 400, 5000), ("de", 120, 800), ("ja", 60, 300), ("sw", 5, 4)):
        for q in range(n):
            counts[(lang, q)] = max(1, int(scale / (q + 1) ** 1.1 * rng.uniform(0.8, 1.2)))
    for t in (20, 100, 1000):
        assert group_thresholds(counts, {}, t, None, "en") == metaclip2_thresholds(counts, t, "en")
    got = group_thresholds(counts, {}, 100, None, "en")
    assert got["en"] == 100 and got["de"] < 100 and got["sw"] <= 4  # smaller languages get smaller caps
    assert group_thresholds(counts, {}, 100, None, "xx") == dict.fromkeys(["de", "en", "ja", "sw"], 100.0)
    pairs = {"en": 1000, "de": 10}
    assert group_thresholds({("en", 0): 5, ("de", 0): 5}, pairs, 7, 0.5, "en") == {"de": 5.0, "en": 500.0}


def _matched_rows() -> list[dict]:
    rng = random.Random(5)
    rows = []
    for i in range(3000):
        lang = "en" if i % 3 else "de"
        ids = sorted(set(rng.choices(range(12), weights=[1 / (q + 1) ** 1.5 for q in range(12)], k=rng.randint(1, 2))))
        rows.append({"uid": f"{rng.getrandbits(128):032x}", "lang": lang, "entry_ids": ids})
    return rows


@pytest.mark.parametrize("by", ["entry", "entry_lang"])
def test_balance_transform_per_language_or_pooled_is_deterministic(by: str, tmp_path) -> None:
    from collections import Counter

    from webclip.pipelines.curate import Balance

    rows = _matched_rows()
    cfg = CurateConfig(balance_by=by, balance_t=150, seed=2)
    group = (lambda r: r["lang"]) if by == "entry_lang" else (lambda r: "*")
    counts = Counter((group(r), q) for r in rows for q in r["entry_ids"])
    caps = metaclip2_thresholds(counts, 150, "en") if by == "entry_lang" else {"*": 150.0}
    expected = []
    for r in rows:
        miss = math.prod(1 - min(1.0, caps[group(r)] / counts[(group(r), q)]) for q in r["entry_ids"])
        expected.append((r["uid"], round(1 - miss, 12)))
    runs = []
    for n in range(2):
        out = tmp_path / f"run{n}"
        out.mkdir()
        with BeamTestPipeline() as p:
            decided = p | beam.Create(rows) | Balance(cfg, str(out))
            assert_that(decided | beam.Map(lambda r: (r["uid"], round(r["keep_prob"], 12))), equal_to(expected))
            decided | beam.Map(lambda r: (r["uid"], r["kept"])) | beam.io.WriteToText(str(out / "kept"))
        runs.append(sorted((out / "kept-00000-of-00001").read_text().splitlines()))
        assert json.loads((out / "balance_thresholds.json").read_text()) == caps
    assert runs[0] == runs[1]
    if by == "entry_lang":  # German has fewer matches, so a smaller cap than English's 150
        assert caps["de"] < caps["en"] == 150

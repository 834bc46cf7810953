"""Normalisation, word-boundary matching and hash-decided balancing."""

from __future__ import annotations

import math
import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from webclip.pipelines.balance import entry_probability, keep, keep_probability
from webclip.pipelines.config import CurateConfig
from webclip.pipelines.curate import FilterFn
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
    assert match_ids(word, "Education in the starfish lab", "word") == []
    assert match_ids(sub, "Education in the starfish lab", "substring") == [0, 1]
    assert match_ids(word, "A CAT, in New-York!", "word") == [0, 2]  # punctuation is a boundary on both sides
    assert match_ids(word, "a cat in new york", "word") == [0, 2]
    assert match_ids(word, "我的猫很可爱", "word") == [3]
    assert match_ids(word, "Ice cream (ice-cream) and C++", "word") == [4, 5]


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
    rows = [{"image_url": "http://x/a.jpg", "width": None, "height": None, "opt_out": False, "caption": c}
            for c in ("a red star", "logo", "two words")]
    with BeamTestPipeline() as p:
        out = p | beam.Create(rows) | beam.ParDo(FilterFn(CurateConfig())) | beam.Map(lambda r: r["caption"])
        assert_that(out, equal_to(["a red star", "two words"]))


def test_ascii_fast_path_equals_the_unicode_path() -> None:
    import unicodedata

    from webclip.pipelines.normalise import NON_WORD, match_key

    def general(text: str) -> str:
        text = NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold())
        return " " + " ".join(text.split()) + " "

    rng = random.Random(0)
    for _ in range(5000):
        text = "".join(chr(rng.randrange(128)) for _ in range(rng.randrange(30)))
        assert match_key(text) == general(text), repr(text)


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
    import json

    from tests.conftest import shared_data

    alts = [r["alt"] for r in map(json.loads, (shared_data("alts") / "alts.jsonl").read_text().splitlines()) if r["alt"]]
    entries = sorted({w for a in alts[:800] for w in a.lower().split()[:3]} | {"the new", "of the"})
    for mode in ("word", "substring"):
        a, b = build_automaton(entries, mode, "ahocorasick_rs"), build_automaton(entries, mode, "pyahocorasick")
        for text in alts:
            assert match_ids(a, normalise_caption(text), mode) == match_ids(b, normalise_caption(text), mode), text

"""Unicode match keys, the word-mode options, key reports, and precision/recall on a labelled trap set.

The trap set (``data/match_traps.jsonl``, hand-written) has one alt per line with ``expect``: every entry of the
set's list (the union of all ``expect`` and ``not`` fields) that occurs in the alt as the same word or phrase,
in any case, plural, possessive or accent variant, hyphenated or not; words that merely contain the entry
(starfish/star, 熊猫/猫, दिल्ली/लाल) and names that only look like a plural (Williams/william) do not count.
``not`` lists the tempting entries of that line.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webclip.pipelines.config import CurateConfig
from webclip.pipelines.match import build_automaton, key_report, match_ids
from webclip.pipelines.normalise import PRE_KEY, fold_accents, match_key, normalise_caption, tokens

TRAPS = Path(__file__).parent / "data" / "match_traps.jsonl"
OPTIONS = {"word": ("word", False, False), "word+inflections": ("word", True, False),
           "word+accents": ("word", False, True), "word+both": ("word", True, True),
           "substring": ("substring", False, False), "metaclip": ("metaclip", False, False)}


def found(entries: list[str], text: str, mode: str = "word", inflections: bool = False, accents: bool = False) -> set[str]:
    """The entries matched in ``text``."""
    auto = build_automaton(entries, mode, inflections=inflections, accents=accents)
    return {entries[i] for i in match_ids(auto, normalise_caption(text))}


def test_marks_stay_with_their_letters() -> None:
    assert match_key("दिल्ली") == " दिल्ली "
    assert found(["लाल", "दिल्ली", "बारिश"], "दिल्ली में बारिश") == {"दिल्ली", "बारिश"}
    assert found(["हाथ", "हाथी"], "हाथी पानी में") == {"हाथी"}
    assert found(["มา", "ม้า"], "ม้าวิ่งในทุ่ง") == {"ม้า"}  # Thai tone mark: horse, not "come"
    assert found(["كتاب"], "كِتَابٌ مفتوح") == set()  # vowel marks are letters' marks ...
    assert found(["كتاب"], "كِتَابٌ مفتوح", accents=True) == {"كتاب"}  # ... folded only with the accents option


def test_unspaced_scripts_per_character_and_hangul_by_words() -> None:
    assert found(["猫", "可爱"], "我的猫很可爱") == {"猫", "可爱"}
    assert found(["東京", "タワー", "iphone"], "東京タワーとiPhone用ケース") == {"東京", "タワー", "iphone"}
    assert found(["แมว", "ดำ"], "แมวดำนอนหลับ") == {"แมว", "ดำ"}
    assert found(["식사", "음식", "사진"], "음식 사진") == {"음식", "사진"}
    assert found(["식사"], "맛있는 식사") == {"식사"}


def test_symbols_and_emoji_match_only_themselves() -> None:
    entries = ["c++", "c#", "at&t", "❤️", "c", "🍕"]
    assert found(entries, "Vitamin C at T-Mobile") == {"c"}
    assert found(entries, "Learn C++ today") == {"c++"}
    assert found(entries, "C# and AT&T") == {"c#", "at&t"}
    assert found(entries, "I ❤ NY, pizza🍕!") == {"❤️"} | {"🍕"}
    assert all(match_key(e).strip() for e in entries)  # no entry loses its key
    assert match_key("#sunset #beach") == " # sunset # beach "


def test_accents_fold_only_towards_an_entry_without_accents() -> None:
    assert found(["cafe", "café"], "Café de Flore", accents=True) == {"cafe", "café"}
    assert found(["cafe", "café"], "A cafe on the corner", accents=True) == {"cafe"}
    assert found(["cafe", "café"], "Café de Flore") == {"café"}
    assert found(["елка"], "Ёлка с игрушками", accents=True) == {"елка"}
    assert fold_accents(match_key("Ørsted São Łódź")) == " orsted sao lodz "


def test_inflections_fold_both_sides() -> None:
    entries = ["cat", "puppy", "box", "movie", "new", "mouse", "shoe", "고양이", "서울"]
    assert found(entries, "Two cats and three puppies", inflections=True) == {"cat", "puppy"}
    assert found(entries, "The cat's toys in boxes; movies; shoes", inflections=True) == {"cat", "box", "movie", "shoe"}
    assert found(entries, "Evening news, three mice", inflections=True) == {"mouse"}
    assert found(entries, "고양이가 잠을 자요, 서울의 야경", inflections=True) == {"고양이", "서울"}
    assert found(["cats"], "a cat", inflections=True) == {"cats"}
    assert found(entries, "Two cats") == set()


def test_empty_and_shared_keys_are_reported_and_all_ids_returned() -> None:
    entries = ["C++", "c++", "...", "❤️", "", "New York", "new-york"]
    assert key_report(entries) == {"entries": 7, "keys": 3, "empty_key": 2, "key_collision": 4}
    auto = build_automaton(entries)
    assert auto.report() == key_report(entries)
    assert match_ids(auto, "c++ in new york ❤") == [0, 1, 3, 5, 6]
    assert key_report(["cat", "cats"], inflections=True)["key_collision"] == 2


def test_substring_mode_is_raw_case_insensitive_substring_on_real_alts() -> None:
    from tests.conftest import shared_data

    alts = [r["alt"] for r in map(json.loads, (shared_data("alts") / "alts.jsonl").read_text().splitlines()) if r["alt"]]
    entries = sorted({w for a in alts[:400] for w in a.split()[:2]} | {"cat", "star", "the ", " of"})
    auto = build_automaton(entries, "substring")
    for text in alts:
        low = text.lower()
        assert match_ids(auto, text) == [i for i, e in enumerate(entries) if e.lower() in low], text


# The documented exclusions: what PRE_KEY drops (joiners, variation selectors, tatweel) is not a letter to keep,
# nor the dot that default case folding adds to the Turkish İ.
DROPPED = {chr(c) for c, v in PRE_KEY.items() if v is None}


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=40) | st.text(alphabet="İIiı\u0307 aé", max_size=10))
def test_every_letter_mark_and_number_is_kept_in_order(text: str) -> None:
    """The key's letters, marks and numbers are exactly the text's (NFKC, casefolded), in the same order."""
    ref = unicodedata.normalize("NFKC", "".join(c for c in text if c not in DROPPED).translate(PRE_KEY)).casefold()
    ref = ref.replace("i\u0307", "i")
    lmn = [c for c in ref if unicodedata.category(c)[0] in "LMN"]
    assert [c for c in match_key(text) if unicodedata.category(c)[0] in "LMN"] == lmn


@settings(max_examples=600, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=30)
       | st.text(alphabet=st.characters(max_codepoint=127) | st.sampled_from("“”„«»‚–—‑…•·’‘ʼ´′\u00ad\u200b"),
                 max_size=30))
def test_ascii_fast_path_equals_the_unicode_tokeniser(text: str) -> None:
    """ASCII text, and text ASCII but for quotation marks, dashes and apostrophes (read by the ASCII path too)."""
    from webclip.pipelines.normalise import TOKEN

    general = TOKEN.findall(unicodedata.normalize("NFKC", text.translate(PRE_KEY)).casefold())
    assert tokens(text) == general


def trap_rows() -> list[dict]:
    """The labelled trap set."""
    return [json.loads(line) for line in TRAPS.read_text(encoding="utf-8").splitlines() if line.strip()]


def precision_recall(rows: list[dict], mode: str, inflections: bool, accents: bool) -> tuple[float, float, Counter]:
    """Micro precision and recall over (alt, entry) pairs, and the errors per script."""
    entries = sorted({e for r in rows for e in r["expect"] + r["not"]})
    auto = build_automaton(entries, mode, inflections=inflections, accents=accents)
    tp = fp = fn = 0
    errors: Counter = Counter()
    for r in rows:
        got, want = {entries[i] for i in match_ids(auto, normalise_caption(r["alt"]))}, set(r["expect"])
        tp, fp, fn = tp + len(got & want), fp + len(got - want), fn + len(want - got)
        errors[r["script"]] += len(got ^ want)
    return tp / (tp + fp), tp / (tp + fn), errors


def test_trap_set_is_sizable_and_varied() -> None:
    rows = trap_rows()
    assert len(rows) >= 200 and len({r["script"] for r in rows}) >= 8
    kinds = {r["kind"].split("-")[0] for r in rows}
    assert {"in", "plural", "possessive", "hyphen", "accent", "symbol", "emoji", "cjk", "hangul", "devanagari",
            "thai", "arabic"} <= kinds
    for r in rows:
        assert not set(r["expect"]) & set(r["not"]), r


@pytest.fixture(scope="module")
def trap_scores() -> dict[str, tuple[float, float, Counter]]:
    rows = trap_rows()
    scores = {name: precision_recall(rows, *opts) for name, opts in OPTIONS.items()}
    print("\nmatch trap set:", len(rows), "alts")
    for name, (p, r, errors) in scores.items():
        print(f"  {name:18s} precision {p:.3f}  recall {r:.3f}  errors by script {dict(errors.most_common(4))}")
    return scores


def test_default_matcher_is_the_measured_best_on_the_trap_set(trap_scores) -> None:
    cfg = CurateConfig()
    default = next(n for n, o in OPTIONS.items() if o == (cfg.match_mode, cfg.match_inflections, cfg.match_accents))
    p, r, _ = trap_scores[default]
    # Measured: word+both 0.995 / 0.977 (0.990 / 0.980 before the unspaced-word and Katakana rules; 0.976 / 0.993
    # before the rules of normalise.word_key, proper_plurals and match.single_han_alone). The 3 false positives
    # left: ตา inside ตาราง (a Thai segmenter, measured in test_match_review.py, is not a dependency), X-ray/ray,
    # and "Mars rover" starting the alt. The recall lost: modifiers of hyphenated compounds the set counts
    # (ice-cream/ice, heart-shaped/heart, New York-based), 狗 in 小狗, 面 in 牛肉面, and the later parts of Thai
    # compounds this set counts (น้ำ in ตลาดน้ำ, แดง in สีแดง; match.unspaced_words reads Thai compounds head first).
    # (소설가, a Korean agent suffix, is no longer read as 소설 + particle: see test_match_review.py.)
    assert p >= 0.98 and r >= 0.95, (default, p, r)
    f1 = {n: 2 * s[0] * s[1] / (s[0] + s[1]) for n, s in trap_scores.items()}
    assert f1[default] == max(f1.values()), f1
    assert trap_scores["word"][0] >= 0.97 and trap_scores["word"][1] < 0.9  # options buy recall at little precision
    assert trap_scores["metaclip"][0] >= 0.99 and trap_scores["metaclip"][1] < 0.6
    assert trap_scores["substring"][0] < 0.7

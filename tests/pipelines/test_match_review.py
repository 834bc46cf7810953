"""A second, independently written trap set; word boundaries against UAX #29; emoji, Turkish and Korean cases.

``data/match_traps_review.jsonl`` was written by a reviewer who had not seen ``match_traps.jsonl``'s alts, and
labelled before the matcher was run on it. Per alt, ``expect`` lists every entry of the set's list (the union of
all ``expect``, ``not`` and ``either`` fields) that a dataset curator would file the alt under:

- the entry's word or phrase, in any letter case, Unicode form (NFC/NFD, fullwidth, ligature) or casing of the
  Turkish İ; an English plural or possessive of it (of its last word for a phrase), regular or not (mice, cacti);
  the entry written with accents when the entry has none (cafe -> Café), not the reverse; hyphen or space between
  its words (ice cream -> Ice-cream); a Korean word with its particles or plural 들; Arabic and Hebrew words with
  their attached article or preposition, and other languages' inflected forms (Москве -> москва) also count, though
  no mode folds them (the ``clitic`` and ``inflect-other`` lines measure that gap);
- a part of a hyphenated compound or an unspaced-script compound only when the compound is a kind of it
  (self-portrait -> portrait, 小狗 -> 狗, ตลาดน้ำ -> ตลาด), never a name's part (T-Mobile, X-ray, Spider-Man,
  Rolls-Royce) nor a part that means something else there (熊猫 -> 猫, ปลาหมึก -> ปลา, 马上 -> 马);
- not a word inside a longer word (wheelchair/chair), a name that looks like a plural (Williams, Banks, Mars), a
  plural-looking word with its own meaning (news, shorts, glasses/glass), or a different emoji sequence (🇵🇫
  between 🇯🇵🇫🇷, 👨 inside a family). Senses are not judged: Apple is apple, Tiger is tiger.

``either`` lists the pairs a curator could file either way (dog-friendly/dog, 火山/山, a family's 👨); they are
left out of the scores. ``not`` lists the tempting entries of that line.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from webclip.pipelines.config import CurateConfig
from webclip.pipelines.match import build_automaton, match_ids
from webclip.pipelines.normalise import fold_josa, match_key, normalise_caption, tokens

TRAPS = Path(__file__).parent / "data" / "match_traps_review.jsonl"
OPTIONS = {"word": ("word", False, False), "word+inflections": ("word", True, False),
           "word+accents": ("word", False, True), "word+both": ("word", True, True),
           "substring": ("substring", False, False), "metaclip": ("metaclip", False, False)}


def found(entries: list[str], text: str, mode: str = "word", inflections: bool = False, accents: bool = False) -> set[str]:
    """The entries matched in ``text``."""
    auto = build_automaton(entries, mode, inflections=inflections, accents=accents)
    return {entries[i] for i in match_ids(auto, normalise_caption(text))}


def review_rows() -> list[dict]:
    """The review trap set."""
    return [json.loads(line) for line in TRAPS.read_text(encoding="utf-8").splitlines() if line.strip()]


def scores(rows: list[dict], mode: str, inflections: bool, accents: bool) -> tuple[float, float, Counter]:
    """Micro precision and recall over (alt, entry) pairs, ``either`` pairs left out; errors per kind."""
    entries = sorted({e for r in rows for e in r["expect"] + r["not"] + r["either"]})
    auto = build_automaton(entries, mode, inflections=inflections, accents=accents)
    tp = fp = fn = 0
    errors: Counter = Counter()
    for r in rows:
        got = {entries[i] for i in match_ids(auto, normalise_caption(r["alt"]))} - set(r["either"])
        want = set(r["expect"])
        tp, fp, fn = tp + len(got & want), fp + len(got - want), fn + len(want - got)
        errors[r["kind"]] += len(got ^ want)
    return tp / (tp + fp), tp / (tp + fn), errors


def test_review_set_is_sizable_varied_and_consistent() -> None:
    rows = review_rows()
    assert len(rows) >= 150 and len({r["script"] for r in rows}) >= 8
    for r in rows:
        expect, no, either = set(r["expect"]), set(r["not"]), set(r["either"])
        assert not (expect & no or expect & either or no & either), r


@pytest.fixture(scope="module")
def review_scores() -> dict[str, tuple[float, float, Counter]]:
    rows = review_rows()
    out = {name: scores(rows, *opts) for name, opts in OPTIONS.items()}
    print("\nreview trap set:", len(rows), "alts")
    for name, (p, r, errors) in out.items():
        print(f"  {name:18s} precision {p:.3f}  recall {r:.3f}  errors by kind {dict(errors.most_common(4))}")
    return out


def test_default_matcher_on_the_review_set(review_scores) -> None:
    cfg = CurateConfig()
    default = next(n for n, o in OPTIONS.items() if o == (cfg.match_mode, cfg.match_inflections, cfg.match_accents))
    p, r, errors = review_scores[default]
    # Measured: word+both 0.974 / 0.955 (0.967 / 0.955 before the possessive-compound, Katakana and unspaced-word
    # rules; 0.921 / 0.964 before the hyphen, name and single-Han rules; the author's set: 0.995 / 0.977). Of the
    # 15 false positives left, 6 are Thai words inside longer Thai words no entry found shows (a dictionary
    # segmenter is needed: aligning entries to pythainlp's newmm words measured 0.979 / 0.948, not a dependency),
    # 2 Katakana or Han parts (ツリー in a name, 马上), 5 names (Williams and Adams in title-case alts, Mars starting
    # an alt, Cafe del Mar, Spider-Man/man), X-ray/ray and Rosé/rose. Below the 0.98 target: the thresholds stay.
    assert p >= 0.96 and r >= 0.95, (default, p, r)
    f1 = {n: 2 * s[0] * s[1] / (s[0] + s[1]) for n, s in review_scores.items()}
    assert f1[default] == max(f1.values()), f1
    assert review_scores["metaclip"][0] == 1.0 and review_scores["metaclip"][1] < 0.5
    assert review_scores["substring"][0] < 0.7


# Where this tokeniser departs from UAX #29 on purpose, and so what the generated text below leaves out: '.', ',',
# ':', '·' and '_' between letters or digits split words here (e.g, 3.14, foo_bar); Katakana is matched per
# character; symbols glue to the word before them (c++, at&t); a skin-tone modifier is a token of its own, and a
# joiner, modifier or mark that does not follow its base character is dropped. The reference, regex's (?w) word
# boundaries, mis-splits after a mark followed by an apostrophe and after an odd regional indicator, so those are
# left out too.
UAX_PIECES = [*"aZéß ёЖωΐ-9 ", "दि", "ल्", "ली", "ड\u093c", "e\u0301", "음식", "사", "كِ", "تَ", "猫", "可", "ม้", "า", "ひ",
              "👨", "👨\u200d👩\u200d👧", "🏳\ufe0f\u200d🌈", "\ufe0f", "🇯🇵", "🇫🇷", "🇵🇫", "👍\U0001F3FD", "❤"]
UAX_WORDS = regex.compile(r"(?wV1)\b")
INVISIBLE = dict.fromkeys(map(ord, "\u200d\ufe0f\U0001F3FD"), None)


def uax29_words(text: str) -> list[str]:
    """UAX #29 word segments of the NFKC text that hold a letter, mark, number or symbol, casefolded."""
    segments = (s.strip().casefold().translate(INVISIBLE) for s in UAX_WORDS.split(unicodedata.normalize("NFKC", text)))
    return [s for s in segments if s and unicodedata.category(s[0])[0] in "LMNS"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(UAX_PIECES), max_size=12).map("".join))
def test_tokens_are_uax29_words(text: str) -> None:
    """Letters with their marks, Hangul words, per-character Han/Thai/Hiragana, emoji ZWJ sequences and flags."""
    assert [t for t in (t.translate(INVISIBLE) for t in tokens(text)) if t] == uax29_words(text)


def test_flags_pair_up_and_emoji_sequences_stay_whole() -> None:
    assert found(["🇵🇫", "🇯🇵", "🇫🇷"], "Flags 🇯🇵🇫🇷 at the summit") == {"🇯🇵", "🇫🇷"}
    family, man = "👨\u200d👩\u200d👧", "👨"
    assert found([family, man], f"Family {family} at the beach") == {family}
    assert found([family, man], "Dad 👨 and me") == {man}
    assert found(["🌈", "🏳️\u200d🌈"], "Rainbow flag 🏳️\u200d🌈 at pride") == {"🏳️\u200d🌈"}
    assert found(["🏴", "🏴\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F"], "🏴 pirates") == {"🏴"}
    assert found(["👍", "❤", "🔥"], "Thumbs up 👍🏽 and ❤️\u200d🔥") == {"👍"}
    assert match_key("क्\u200dष a\u200db") == " क्ष ab "  # a joiner inside a word only shapes it


def test_turkish_dotted_capital_i_is_an_i() -> None:
    assert match_key("İstanbul") == match_key("ISTANBUL") == match_key("istanbul") == " istanbul "
    assert found(["istanbul", "İzmir"], "İstanbul Boğazı and IZMIR") == {"istanbul", "İzmir"}
    assert match_key("ılık IŞIK") == " ılık işik "  # dotless ı is its own letter; I -> i without a language


def test_korean_particles_agree_with_the_syllable_before_them() -> None:
    assert fold_josa("소설가") == "소설가"  # novelist: 가 cannot follow a consonant, so it is not a particle
    assert fold_josa("작가") == "작가" and fold_josa("사과") == "사과"
    assert [fold_josa(w) for w in ("요리사가", "서울로", "책을", "선생님과", "강아지와")] == ["요리사", "서울", "책을", "선생님", "강아지"]
    assert [fold_josa(w) for w in ("학생들", "학생들이", "사람들은")] == ["학생", "학생", "사람"]
    assert fold_josa("고양이가") == fold_josa("고양이")  # both sides of a match fold alike
    assert found(["소설", "소설가", "학생"], "유명한 소설가와 학생들", inflections=True) == {"소설가", "학생"}


def test_men_compounds_and_decomposed_or_halfwidth_forms() -> None:
    assert found(["fireman", "businesswoman", "man"], "Firemen and businesswomen", inflections=True) == {
        "fireman", "businesswoman"}
    assert found(["specimen", "abdomen"], "A specimen", inflections=True) == {"specimen"}
    jamo = unicodedata.normalize("NFD", "고양이 사진")  # conjoining jamo, as some Korean keyboards and macOS write
    assert jamo != "고양이 사진" and match_key(jamo) == match_key("고양이 사진") == " 고양이 사진 "
    assert match_key("ﾗｰﾒﾝ ＵＳＢ") == match_key("ラーメン usb")

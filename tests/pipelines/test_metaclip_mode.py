"""``metaclip`` mode against a brute-force reference written from MetaCLIP v1's published matching rule.

The rule (MetaCLIP v1, ``substr_matching.py``): an entry matches a text when ``" " + entry + " "`` is a
substring of the text padded with a space each side, in which each of `` , . ; : ? ! ` `` has been replaced by
itself with a space each side and tab, newline and carriage return by a space. Case-sensitive, nothing else.
"""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import shared_data
from webclip.pipelines.match import build_automaton, match_ids

PUNCTS_TO_WRAP = [",", ".", ";", ":", "?", "!", "`"]
CHARS_TO_SPACE = ["\t", "\n", "\r"]


def reference_spacing(text: str) -> str:
    """The text side of the rule, one replacement after another."""
    spaced = f" {text} "
    for p in PUNCTS_TO_WRAP:
        spaced = spaced.replace(p, f" {p} ")
    for c in CHARS_TO_SPACE:
        spaced = spaced.replace(c, " ")
    return spaced


def reference_ids(padded_entries: list[str], text: str) -> list[int]:
    """Every entry whose padded form is in the spaced text: plain ``in``, one entry at a time."""
    spaced = reference_spacing(text)
    return [i for i, e in enumerate(padded_entries) if e in spaced]


def entry_list(alts: list[str]) -> list[str]:
    """wordfreq's top 15k English words, 1k of them capitalised, entries with punctuation, 2k n-grams of the alts."""
    from wordfreq import top_n_list

    words = top_n_list("en", 15_000)
    rng = random.Random(0)
    grams = set()
    for alt in rng.sample(alts, min(2_000, len(alts))):
        toks = alt.split()
        if toks:
            start = rng.randrange(len(toks))
            grams.add(" ".join(toks[start:start + rng.randint(1, 3)]))
    punct = ["St. Louis", "U.S.", "rock 'n' roll", "c++", "AT&T", "New York,", "e.g.", "", "a  b", "Mr."]
    return words + [w.capitalize() for w in words[:1_000]] + punct + sorted(grams)


def test_metaclip_mode_equals_the_rule_on_the_real_alts() -> None:
    alts = [r["alt"] for r in map(json.loads, (shared_data("alts") / "alts.jsonl").read_text().splitlines())
            if r["alt"] and r["alt"].strip()]
    entries = entry_list(alts)
    padded = [f" {e} " for e in entries]
    auto = build_automaton(entries, "metaclip")
    matched = 0
    for alt in alts:
        want = reference_ids(padded, alt)
        assert match_ids(auto, alt) == want, alt
        matched += bool(want)
    assert matched > len(alts) // 2  # the comparison is not vacuous


# Every character the rule treats specially, and some it must not: other punctuation, a no-break space, a combining
# accent, a precomposed letter, a Han character, an emoji with its variation selector.
ALPHABET = "ab A.,;:?!`\t\n\r'-()\u00a0e\u0301\u00e9\u732b\u2764\ufe0f"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=ALPHABET, max_size=4), min_size=1, max_size=8), st.text(alphabet=ALPHABET, max_size=30),
       st.sampled_from(["ahocorasick_rs", "pyahocorasick"]))
def test_metaclip_mode_equals_the_rule_on_generated_text(entries: list[str], text: str, backend: str) -> None:
    auto = build_automaton(entries, "metaclip", backend)
    assert match_ids(auto, text) == reference_ids([f" {e} " for e in entries], text)


def test_metaclip_rule_cases() -> None:
    """Read off the rule by hand: case-sensitive; only the seven marks are split off the word; the entry side is
    never spaced, so an entry holding one of them cannot match; a blank entry matches a doubled space."""
    entries = ["cat", "Cat", "New York", "St. Louis", "cat's", "", "猫", "(cat)"]
    ids = {text: [entries[i] for i in match_ids(build_automaton(entries, "metaclip"), text)] for text in (
        "cat.", "Cat!", "(cat)", "cat's toy", "new york", "New York?", "St. Louis", "a 猫 b", "我的猫", "cat\u00a0toy")}
    assert ids == {"cat.": ["cat", ""], "Cat!": ["Cat", ""], "(cat)": ["(cat)"], "cat's toy": ["cat's"],
                   "new york": [], "New York?": ["New York", ""], "St. Louis": [""], "a 猫 b": ["猫"], "我的猫": [],
                   "cat\u00a0toy": []}

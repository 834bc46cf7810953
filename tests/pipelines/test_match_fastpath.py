"""The matcher's fast paths give what its general paths give, on the shared real alts and on generated text.

Fast paths (``normalise``): ASCII keys built chunk by chunk from a cache (``ascii_key``), the ``ascii_form`` of
a text ASCII but for curly quotes and dashes, stdlib ``re`` tokens for BMP text without symbols
(``SIMPLE_TOKEN``), and the ASCII compound reading of such near-ASCII text. The general paths are ``TOKEN`` (the
``regex`` tokeniser, itself checked against UAX #29 in ``test_match_review``) and ``compound_positions``.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import shared_data
from webclip.pipelines.match import build_automaton, match_ids, word_keys
from webclip.pipelines.normalise import (
    CHUNK_KEYS,
    NEAR_ASCII,
    NO_NAMES,
    TOKEN,
    _prepared,
    ascii_form,
    ascii_key,
    ascii_tokens,
    compound_key,
    compound_positions,
    entry_match_key,
    fold_inflection,
    has_compound,
    match_key,
    normalise_caption,
    proper_plurals,
    tokens,
)

PIECES = ["a", "Cats", " ", "  ", "-", "'", "’", "‘", "“", "”", "—", "–", "…", "«", "‐", "\u00ad", "\t", "c++", "at&t",
          "é", "e\u0301", "猫", "熊", "の", "パン", "ー", "ไทย", "น้ำ", "दिल्ली", "음식", "을", "😀", "👨\u200d👩", "🇯🇵",
          "#", ",", ".", "İ", "ß", "Williams", "T", "Mobile", "self", "portrait", "Δ", "ё", "\u200d", "\ufe0f", "|",
          "½", "ﾗｰ", "Ｕ", "ﬁ", "\u00a0", "3", "§", "¨", "ä", "\U00020000", "\ud800", "Ω", "ǅ", "\u0301"]
texts = st.one_of(st.lists(st.sampled_from(PIECES), max_size=14).map("".join), st.text(max_size=30))


def general_tokens(text: str) -> list[str]:
    """``tokens`` by the general path only: ``TOKEN`` over the prepared text, ASCII or not."""
    if text.isascii():
        return ascii_tokens(text)
    return TOKEN.findall(_prepared(text))


def general_key(text: str, inflections: bool) -> tuple[str, frozenset[int], frozenset[int]]:
    """``word_key`` by the general path only."""
    if has_compound(text):
        return compound_positions(text, inflections)
    toks = general_tokens(text)
    return " " + " ".join(map(fold_inflection, toks) if inflections else toks) + " ", frozenset(), frozenset()


def check(text: str) -> None:
    assert tokens(text) == general_tokens(text), text
    plain, full = ascii_form(text), text.translate(NEAR_ASCII)  # ascii_form leaves ASCII as it is: ` stays `
    assert (plain is None) == (not full.isascii()), text
    assert plain is None or ascii_tokens(plain) == ascii_tokens(full), text
    if text.isascii():
        for inflections in (False, True):
            assert ascii_key(text, inflections) == match_key(text, inflections, NO_NAMES) == \
                " " + " ".join(map(fold_inflection, ascii_tokens(text)) if inflections else ascii_tokens(text)) + " "
    if has_compound(text):
        for inflections in (False, True):
            assert compound_key(text, inflections, NO_NAMES) == compound_positions(text, inflections, NO_NAMES), text


@settings(max_examples=1500, deadline=None)
@given(texts)
def test_fast_paths_agree_with_the_general_paths_on_generated_text(text: str) -> None:
    check(text)
    check(normalise_caption(text))


def test_fast_paths_agree_with_the_general_paths_on_real_alts() -> None:
    alts = [r["alt"] for r in map(json.loads, (shared_data("alts") / "alts.jsonl").read_text().splitlines()) if r["alt"]]
    for alt in alts:
        check(normalise_caption(alt))


def test_match_ids_by_the_general_path_on_real_alts() -> None:
    """Every option: the ids ``match_ids`` gives are those of the general key scanned with its closed positions."""
    alts = [normalise_caption(r["alt"]) for r in map(json.loads, (shared_data("alts") / "alts.jsonl").read_text().splitlines())
            if r["alt"]]
    entries = sorted({t for alt in alts[:400] for t in tokens(alt)} | {"cat", "self", "portrait", "mobile", "new york"})
    for inflections in (False, True):
        auto = build_automaton(entries, "word", inflections=inflections)
        for alt in alts:
            if inflections and any(c.isupper() for c in alt):
                continue  # names (proper_plurals) are left to the rule tests
            key, no_start, no_end = general_key(alt, inflections)
            want = sorted(i for k in auto.hits(key, no_start, no_end) for i in auto.ids[k])
            assert match_ids(auto, alt) == want, alt


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["Robin", "Williams", "Texas'", "Banks,", "cats", "the", " ", "  ", "s", "S", "'s", "(",
                                 "Mars", "x", "\t", ",", "Us", "IS", "News", "Jones's", "Bus", "Series", "Men", "Glasses"]),
               max_size=12).map("".join))
def test_a_text_with_a_name_has_a_chunk_that_may_hold_it(text: str) -> None:
    """The ASCII scan looks for names only in a text with a chunk after the first in ``ChunkKeys.capitals``."""
    cache = CHUNK_KEYS[True]
    chunks = text.split()
    list(map(cache.__getitem__, chunks))
    if proper_plurals(text):
        assert not cache.capitals.isdisjoint(chunks[1:]), text


def test_names_on_real_alts_are_found_through_their_chunks() -> None:
    alts = [normalise_caption(r["alt"]) for r in map(json.loads, (shared_data("alts") / "alts.jsonl").read_text().splitlines())
            if r["alt"]]
    cache = CHUNK_KEYS[True]
    named = [alt for alt in alts if alt.isascii() and proper_plurals(alt)]
    assert named  # the real alts hold names (Robin Williams style)
    for alt in named:
        chunks = alt.split()
        list(map(cache.__getitem__, chunks))
        assert not cache.capitals.isdisjoint(chunks[1:]), alt


NAME_ENTRIES = ["Williams", "Robin Williams", "Banks", "Tyra Banks", "Mars", "Venus and Mars", "cats", "the cats",
                "Williams and Banks", "banks of the river", "william", "bank"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["Robin", "Williams", "Banks", "Tyra", "Mars", "Venus", "and", "the", "cats", "of",
                                 "river", "a", " ", ",", "-", "hand", "made"]), max_size=14).map(" ".join))
def test_a_name_finds_every_entry_written_like_it(text: str) -> None:
    """``name_hits`` looks up only the token runs around a name: it finds what a scan of every written key does."""
    auto = build_automaton(NAME_ENTRIES, "word", inflections=True)
    names = proper_plurals(text)
    key = " " + " ".join(t if t in names else fold_inflection(t) for t in tokens(text)) + " "
    want = {k for k in range(auto.n_scanned, len(auto.keys)) if auto.keys[k] in key} if names else set()
    assert auto.name_hits(key[1:-1].split(" "), names, set()) == want, text


@settings(max_examples=200, deadline=None)
@given(st.lists(texts, max_size=8))
def test_the_build_keys_each_entry_as_entry_match_key_does(entries: list[str]) -> None:
    """``word_keys`` tokenises each entry once and memoises folds: the keys are ``entry_match_key``'s, and the written
    keys those of the entries that folding changes."""
    for inflections in (False, True):
        keys, written = word_keys(entries, inflections)
        assert keys == [entry_match_key(e, inflections) for e in entries]
        want: dict[str, list[int]] = {}
        for i, e in enumerate(entries):
            if inflections and entry_match_key(e).strip() and entry_match_key(e, True) != entry_match_key(e):
                want.setdefault(entry_match_key(e), []).append(i)
        assert written == want


ACCENTED = ["café", "cafe", "cafes", "Cafés", "naïve", "naive", "über", "uber", "straße", "strasse", "Škoda", "skoda",
            "vítězství", "vitezstvi", "Москва", "ёлка", "елка", "Αθήνα", "αθηνα", "æble", "aeble", "dogs", "dog",
            "williams", "hot dogs", "café au lait", "São Paulo", "sao paulo"]
ACCENT_PIECES = [*PIECES, "Café", "café", "cafés", "au", "lait", "São", "Paulo", "Škoda", "ёлка", "Αθήνα", "æble",
                 "Straße", "hot", "dogs", "dogš", "naïve", "e\u0301", "\u064b"]


def fast_equals_general(auto, text: str) -> None:  # noqa: ANN001
    assert match_ids(auto, text) == auto.ids_of(auto.scan(text)), text


def test_every_fast_path_gives_the_general_scans_ids_on_real_alts() -> None:
    """ASCII and near-ASCII alts in token codes, other alts in token codes cached per chunk: for every option, the
    ids of ``Automaton.scan`` (the general path), entries being the alts' own words and word pairs."""
    alts = [normalise_caption(r["alt"]) for r in map(json.loads, (shared_data("alts") / "alts.jsonl").read_text().splitlines())
            if r["alt"]]
    words = [tokens(alt) for alt in alts]
    pairs = {f"{a} {b}" for ws in words[::7] for a, b in zip(ws, ws[1:], strict=False)}
    entries = sorted({t for ws in words for t in ws} | pairs | set(ACCENTED))
    for inflections in (False, True):
        for accents in (False, True):
            auto = build_automaton(entries, "word", inflections=inflections, accents=accents)
            assert auto.match_words is not None
            for alt in alts:
                fast_equals_general(auto, alt)


AUTOMATA = {(i, a): build_automaton([*ACCENTED, "cat", "self", "portrait", "new york", "robin", "猫"], "word",
                                    inflections=i, accents=a) for i in (False, True) for a in (False, True)}


@settings(max_examples=800, deadline=None)
@given(st.one_of(st.lists(st.sampled_from(ACCENT_PIECES), max_size=14).map("".join),
                 st.lists(st.sampled_from(ACCENT_PIECES), max_size=10).map(" ".join), st.text(max_size=30)))
def test_every_fast_path_gives_the_general_scans_ids_on_generated_text(text: str) -> None:
    for auto in AUTOMATA.values():
        fast_equals_general(auto, text)
        fast_equals_general(auto, normalise_caption(text))


@settings(max_examples=800, deadline=None)
@given(st.one_of(texts, st.lists(st.sampled_from(ACCENT_PIECES), max_size=10).map(" ".join)))
def test_tokens_never_cross_white_space(text: str) -> None:
    """The chunk caches rest on this: a text's tokens are its whitespace-free chunks' tokens, in order."""
    assert tokens(text) == [t for chunk in text.split() for t in tokens(chunk)], text


def test_the_review_cases() -> None:
    """Cases a fresh-eyes review found where a fast path, a backend or the compound reading went its own way."""
    auto = build_automaton(["hand", "made", "cat"], "word")
    for hyphen in "-\u2010\u2011":  # ascii_form makes U+2010/U+2011 spaces: the compound is read by scan
        text = f"a hand{hyphen}made “cat”"
        assert match_ids(auto, text) == auto.ids_of(auto.scan(text)) == [1, 2], text
    # a's is what folding makes of a's's: a written key a folded caption holds
    auto = build_automaton(["a's"], "word", inflections=True, accents=True)
    assert match_ids(auto, "a's's") == match_ids(auto, "a's's é") == [0]
    # a key written twice (an entry's written key equal to another's folded key) keeps both in either backend
    for backend in ("ahocorasick_rs", "pyahocorasick"):
        auto = build_automaton(["men", "mens", "men fashion", "mens fashion"], "word", backend, inflections=True)
        assert match_ids(auto, "mens fashion") == [0, 1, 2, 3], backend
    # a possessive part makes a name in either case
    assert compound_key("a Bird'S-eye view", False, NO_NAMES) == compound_positions("a Bird'S-eye view", False, NO_NAMES)


def brute_written_hits(auto, key: str, no_start: frozenset[int], no_end: frozenset[int]) -> set[int]:  # noqa: ANN001
    """The written keys found in ``key`` by ``str.find``, less those starting or ending at a closed position."""
    out = set()
    for k in range(auto.n_main, len(auto.keys)):
        start = key.find(auto.keys[k])
        while start >= 0:
            if start not in no_start and start + len(auto.keys[k]) - 1 not in no_end:
                out.add(k)
            start = key.find(auto.keys[k], start + 1)
    return out


WRITTEN_ENTRIES = ["hand", "hands", "made", "self portrait", "self portraits", "williams", "dogs", "mobiles", "t mobiles",
                   "hands made", "cafés"]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(["hand", "hands", "made", "self", "portraits", "williams", "dogs", "t", "mobiles", "x",
                                 "cafés", "cafe"]), max_size=10), st.sets(st.integers(0, 12)), st.sets(st.integers(0, 12)))
def test_written_keys_in_codes_are_found_where_a_plain_search_finds_them(toks: list[str], starts: set[int],
                                                                       ends: set[int]) -> None:
    """The written automaton in token codes, its spans read back as key positions, against ``str.find``: closed
    positions drawn among the key's separators."""
    auto = build_automaton(WRITTEN_ENTRIES, "word", inflections=True, accents=True)
    assert auto.coded_written is not None and auto.written is None
    key = " " + " ".join(toks) + " "
    seps = [i for i, c in enumerate(key) if c == " "]
    no_start = frozenset(seps[i] for i in starts if i < len(seps))
    no_end = frozenset(seps[i] for i in ends if i < len(seps))
    assert auto.written_hits(key, no_start, no_end) == brute_written_hits(auto, key, no_start, no_end), key


def test_the_collector_is_paused_while_any_build_runs_and_restored_after_the_last() -> None:
    """Builds that overlap (threads) turn the collector back on once, after the last ends, and only if it was on."""
    import gc

    from webclip.pipelines.match import gc_paused

    assert gc.isenabled()
    first, second = gc_paused(), gc_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first build ends while the second runs
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # off before: left off
    finally:
        gc.enable()
    with pytest.raises(ValueError), gc_paused():
        build_automaton(["cat"], "no such mode")
    assert gc.isenabled()

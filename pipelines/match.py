"""Query matching with an Aho-Corasick automaton, in one of three modes that say what they do.

- ``word`` (default): an entry matches where its match key (``normalise.match_key``: Unicode tokens, casefolded)
  appears as whole tokens in the caption's key. Options, both sides of the match: ``inflections`` folds
  English plurals and possessives; ``accents`` lets an entry written without accents match accented text
  (``cafe`` finds ``café``) while an accented entry still needs its accents (``café`` does not find ``cafe``).
- ``substring``: case-insensitive raw substring (``entry.lower() in caption.lower()``), the CLIP paper's
  wording ("text containing one of the queries"); ``cat`` is found in ``education``.
- ``metaclip``: MetaCLIP v1's published rule: the entry padded with one space each side, case-sensitive,
  found in the text padded with one space each side after `` , . ; : ? ! ` `` are wrapped in spaces and
  tab, newline and carriage return become spaces. The curate stage applies it, like every mode, to the
  normalised caption (``normalise_caption``: entities decoded, tags dropped, NFC, any run of whitespace, a
  no-break space included, made one space), which is what MetaCLIP's raw alt text would differ on.

Entries sharing a key all match together (every id is returned); entries with an empty key can never match.
Both are counted by ``Automaton.report`` and recorded in the curate stage's stats. In word mode a match is
dropped where it starts or ends at a position ``normalise.word_key`` closes (inside a hyphenated compound), and
a one-character Han entry matches only where the character stands alone (``single_han_alone``: 猫 in 我的猫,
not in 熊猫), and a Katakana entry only where it leaves no lone Katakana character of its run (``kana_part_fits``:
パン in パン屋, not in パンダ). Entries of unspaced scripts found are read as the words of the text
(``unspaced_words``): one that crosses an earlier one is dropped (京都 in 东京都), and a Thai one inside a longer
Thai one after its start too (ลาย in ม้าลาย: Thai compounds put the head first). With ``inflections`` an entry that folding changes is also keyed as written, so a name the caption
keeps unfolded (Texas, Williams) still finds it.
"""

from __future__ import annotations

import gc
import json
import re
import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import accumulate, chain
from operator import itemgetter
from typing import Any

from webclip.pipelines.normalise import (
    CAPITAL_PLURAL_WORD,
    CHUNK_KEYS,
    FOLDED,
    IRREGULAR,
    NO_NAMES,
    NO_POSITIONS,
    ChunkKeys,
    ascii_compound_bounds,
    ascii_form,
    ascii_tokens,
    compound_key,
    entry_match_key,
    fold_accents,
    fold_inflection,
    fold_tokens,
    has_compound,
    match_key,
    name_forms,
    proper_plurals,
    tokens,
)

MODES = ("word", "substring", "metaclip")
FIRST = itemgetter(0)
METACLIP_SPACING = str.maketrans({**{p: f" {p} " for p in ",.;:?!`"}, "\t": " ", "\n": " ", "\r": " "})

_lock = threading.Lock()
_cache: dict[tuple, Any] = {}


def metaclip_spacing(text: str) -> str:
    """MetaCLIP v1's text side: pad, wrap its seven punctuation marks in spaces, blank tab/newline/CR."""
    return f" {text} ".translate(METACLIP_SPACING)


def word_text_keys(text: str, inflections: bool, accents: bool) -> tuple[str, ...]:
    """The caption's key, and its accent-folded key when ``accents`` is on and folding changes it."""
    key = match_key(text, inflections)
    if accents and not key.isascii():
        folded = fold_accents(key)
        if folded != key:
            return key, folded
    return (key,)


# mode -> (entry key, text keys, is the entry key empty)
ENTRY_KEY: dict[str, Callable[[str, bool], str]] = {
    "word": entry_match_key,
    "substring": lambda e, infl: e.lower(),
    "metaclip": lambda e, infl: f" {e} ",
}
TEXT_KEYS: dict[str, Callable[[str, bool, bool], tuple[str, ...]]] = {
    "word": word_text_keys,
    "substring": lambda t, infl, acc: (t.lower(),),
    "metaclip": lambda t, infl, acc: (metaclip_spacing(t),),
}
EMPTY_KEY: dict[str, Callable[[str], bool]] = {
    "word": "  ".__eq__,  # no token (word_keys pads with one space each side)
    "substring": lambda k: not k,
    "metaclip": lambda k: False,  # MetaCLIP matches even a blank entry ("  ") where the text has two spaces
}


def entry_key(entry: str, mode: str = "word", inflections: bool = False) -> str:
    """How an entry is stored in the automaton."""
    return ENTRY_KEY[mode](entry, inflections)


def group_keys(entries: list[str], mode: str, inflections: bool) -> tuple[dict[str, list[int]], list[int]]:
    """Entry ids by key, and the ids whose key is empty."""
    return grouped(entry_keys(entries, mode, inflections)[0], EMPTY_KEY[mode])


def entry_keys(entries: list[str], mode: str, inflections: bool) -> tuple[list[str], dict[str, list[int]]]:
    """Each entry's key, and the written keys (``word_keys``; none but in word mode)."""
    if mode == "word":
        return word_keys(entries, inflections)
    return [entry_key(e, mode, inflections) for e in entries], {}


def grouped(keys: list[str], is_empty: Callable[[str], bool]) -> tuple[dict[str, list[int]], list[int]]:
    """Indexes by key, and the indexes whose key is empty."""
    by_key: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        ids = by_key.get(key)
        if ids is None:
            by_key[key] = [i]
        else:
            ids.append(i)
    empty = sorted(i for key in [k for k in by_key if is_empty(k)] for i in by_key.pop(key))
    return by_key, empty


class Memo(dict):
    """A function's results by argument, for a build that meets the same tokens again and again."""

    def __init__(self, fn: Callable[[str], Any]):
        super().__init__()
        self.fn = fn

    def __missing__(self, arg: str) -> Any:
        value = self[arg] = self.fn(arg)
        return value


def word_keys(entries: list[str], inflections: bool) -> tuple[list[str], dict[str, list[int]]]:
    """Each entry's word-mode key (``entry_match_key``) and, with ``inflections``, the entry ids by key as written
    for each entry that folding changes (``williams``, ``texas``): such an entry is found where the caption writes
    it as a name, which ``proper_plurals`` keeps unfolded. One tokenisation per entry; folds memoised per token (a
    list repeats its words), without the caption-side cache (``FOLDED``), which would grow by every entry's tokens."""
    keys: list[str] = []
    written: dict[str, list[int]] = {}
    fold = Memo(fold_inflection).__getitem__
    for i, entry in enumerate(entries):
        toks = tokens(entry)
        raw = " " + " ".join(toks) + " "
        key = " " + " ".join(map(fold, toks)) + " " if inflections else raw
        keys.append(key)
        if key != raw and toks:
            written.setdefault(raw, []).append(i)
    return keys, written


def key_report(entries: list[str], mode: str = "word", inflections: bool = False) -> dict[str, int]:
    """Entries, distinct keys, entries with an empty key and entries sharing their key (counted in stats.json)."""
    by_key, empty = group_keys(entries, mode, inflections)
    shared = sum(len(ids) for ids in by_key.values() if len(ids) > 1)
    return {"entries": len(entries), "keys": len(by_key), "empty_key": len(empty), "key_collision": shared}


# Han characters that are grammar, not content (particles, pronouns, prepositions, measure words, negation):
# next to one of them a single character stands as a word of its own (我的猫很可爱: 猫 is "cat").
HAN_FUNCTION = frozenset("的地得之了着过和与及或在于从向往对把被给跟让是有很太也都就还又不没这那哪我你他她它们吗呢吧啊呀个只位条张些一两上下")


# Japanese writes a word's inflection in Hiragana after its kanji (折り, 問い): a Hiragana after a kanji ends the
# word only if it is a particle; one before a kanji ends the word before, but for the honorific prefixes お and ご.
KANA_PARTICLES = frozenset("のとはがをにでもへやかねよ")
HONORIFIC = frozenset("おご")


def is_han(c: str) -> bool:
    """Whether a character is a CJK ideograph (the unified blocks, compatibility ideographs, extensions B on)."""
    return "\u3400" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff" or "\U00020000" <= c <= "\U0003134f"


def is_hiragana(c: str) -> bool:
    return "\u3041" <= c <= "\u309f"


def single_han_alone(key: str, start: int, end: int) -> bool:
    """Whether a one-character Han entry found at ``key[start:end]`` (' 猫 ') stands alone: Chinese and Japanese
    build most words from several characters, and a single one inside such a run is a part (熊猫 panda, 马上
    at once, 山田 a surname), not the word the entry means. Its neighbours must each be no ideograph, or a
    grammatical one (``HAN_FUNCTION``), and by the Hiragana rules above."""
    before = key[start - 1] if start else ""
    after = key[end] if end < len(key) else ""
    if is_han(before) and before not in HAN_FUNCTION or before in HONORIFIC:
        return False
    return not (is_han(after) and after not in HAN_FUNCTION or is_hiragana(after) and after not in KANA_PARTICLES)


def is_katakana(c: str) -> bool:
    """Whether a character is a Katakana letter or the prolonged sound mark ー."""
    return "\u30a1" <= c <= "\u30fc" and c != "\u30fb" or "\u31f0" <= c <= "\u31ff"


def kana_part_fits(key: str, start: int, end: int) -> bool:
    """Whether a Katakana entry found at ``key[start:end]`` (' パ ン ') leaves no lone Katakana character of its run
    on either side: Katakana words (loanwords) are rarely one character, so a part that leaves one is a piece of a
    longer word (パン in パンダ), while the parts of a compound leave words (コーヒー and カップ in コーヒーカップ)."""
    n = len(key)
    if end < n and is_katakana(key[end]) and not (end + 2 < n and is_katakana(key[end + 2])):
        return False
    return not (start and is_katakana(key[start - 1]) and not (start >= 3 and is_katakana(key[start - 3])))


def is_thai(c: str) -> bool:
    return "\u0e01" <= c <= "\u0e5b"


def part_fits(key: str, start: int, end: int) -> bool:
    """``single_han_alone`` for a one-character Han key, ``kana_part_fits`` for a Katakana one (Thai keys are
    checked against each other: ``unspaced_words``)."""
    if is_thai(key[start + 1]):
        return True
    return single_han_alone(key, start, end) if end - start == 3 and is_han(key[start + 1]) else \
        kana_part_fits(key, start, end)


# Characters of the scripts written without spaces whose compounds this module knows: Thai, Hiragana and Katakana,
# Han (is_han's blocks).
UNSPACED_CHAR = re.compile("[\u0e01-\u0e5b\u3041-\u30ff\u3400-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")


def is_unspaced(c: str) -> bool:
    """Whether a character is of a script written without spaces that this module knows the compounds of."""
    return UNSPACED_CHAR.match(c) is not None


def unspaced_words(key: str, spans: list[tuple[int, int, int]], longest: int) -> list[tuple[int, int, int]]:
    """``spans`` less the keys of unspaced scripts that cross an earlier one, and the Thai keys inside a longer
    Thai key after its start. Without spaces between words, the entries found are the dictionary that shows them:
    two words cannot overlap, and as in maximal matching the earlier one stands (东京 in 东京都, not 京都). Thai
    compounds put the head first (ม้าลาย zebra: horse + stripes; วัดพระแก้ว: the temple, วัด, of the Emerald
    Buddha), so a later part names a modifier, not the thing, while the first part may (ตลาด in ตลาดน้ำ).
    ``longest``: the length of the longest key (linear time in the matches)."""
    words = sorted((start, end) for _, start, end in spans if is_unspaced(key[start + 1]))
    if len(words) < 2:
        return spans
    return [(k, start, end) for k, start, end in spans if not is_unspaced(key[start + 1]) or not any(
        start < e - 1 and (e < end or is_thai(key[start + 1]))  # the words before that may hold its start
        for s, e in words[bisect_left(words, (start - longest,)):bisect_left(words, (start,))])]


class Automaton:
    """An Aho-Corasick automaton over entry keys; the value of a key is the sorted ids sharing it.

    Two measured backends (bench/match.py): ``ahocorasick_rs`` (default: faster matching, a quarter of
    the memory for 500k entries) and ``pyahocorasick``; both give the same ids.
    """

    def __init__(self, entries: list[str], mode: str = "word", backend: str = "ahocorasick_rs",
                 inflections: bool = False, accents: bool = False):
        if mode not in MODES:
            raise ValueError(f"unknown match mode {mode!r}; one of {MODES}")
        self.mode, self.backend, self.inflections, self.accents = mode, backend, inflections, accents
        keys, written = entry_keys(entries, mode, inflections)
        by_key, self.empty = grouped(keys, EMPTY_KEY[mode])
        self.n_entries = len(entries)
        self.shared = sum(len(ids) for ids in by_key.values() if len(ids) > 1)
        self.n_keys = len(by_key)
        self.keys = list(by_key)
        self.ids = [tuple(by_key[k]) for k in self.keys]
        self.n_main = len(self.keys)
        # The written keys, those a caption's folded key may hold first (written_reachable): the main automaton holds
        # these too; a written automaton (in token codes where there are codes) holds them all and is scanned where
        # accent folding may show the others; a name kept unfolded shows the others (name_hits).
        reachable = Memo(token_reachable).__getitem__  # the build asks of each token many times
        is_reachable = {k: written_reachable(k, reachable) for k in written}
        written_order = sorted(written, key=lambda k: not is_reachable[k])
        self.n_scanned = self.n_main + sum(is_reachable.values())
        self.keys += written_order
        self.ids += [tuple(written[k]) for k in written_order]
        self.any_written = bool(written)
        # the others by key, and where their tokens that no folded caption holds stand in them (``name_hits``)
        self.unreached = {self.keys[k]: k for k in range(self.n_scanned, len(self.keys))}
        self.name_shapes = name_shapes(self.unreached, reachable)
        # keys whose matches are checked against their neighbours (part_fits)
        # keys of unspaced scripts, checked against their neighbours or each other (part_fits, unspaced_words); those
        # checked alone (one Han character, Katakana) however few are found
        self.single_han = frozenset(m.start() for m in UNSPACED_CHAR.finditer("".join([k[1] for k in self.keys]))) \
            if mode == "word" else frozenset()  # is_unspaced of each key's first character
        self.alone = frozenset(k for k in self.single_han if len(key := self.keys[k]) == 3 and is_han(key[1])
                               or is_katakana(key[1]) and all(map(is_katakana, key[1::2])))
        self.longest = max((len(self.keys[k]) for k in self.single_han), default=0)
        self.auto = make_backend(self.keys[:self.n_scanned], backend) if self.keys else None
        self.ascii_path = mode == "word" and backend == "ahocorasick_rs" and self.auto is not None
        self.chunks = CHUNK_KEYS[inflections]
        self.codes, self.coded, self.coded_written = self.code_automata() if self.ascii_path else (None, None, None)
        # the fast paths' caption caches: codes per chunk (or keys, without codes), and with accent-folded codes
        self.ascii_chunks = ChunkCodes(inflections, self.codes) if self.coded is not None else self.chunks
        self.word_chunks = ChunkWords(inflections, self.codes) if self.coded is not None else None
        # the written keys as they are, where there are no codes
        self.written = make_backend(written_order, backend) if written and self.codes is None else None
        self.match_ascii = ascii_matcher(self) if self.ascii_path else None
        self.match_words = word_matcher(self) if self.coded is not None else None

    def code_automata(self) -> tuple[dict[str, str] | None, Any, Any]:
        """The fast paths' token codes (``token_codes``: shorter texts, a smaller automaton), the scanned keys and
        the written keys in them; Nones where the tokens are too many for codes."""
        codes = token_codes(self.keys)
        if codes is None:
            return None, None, None
        written = self.keys[self.n_main:]
        return (codes, make_backend([coded(k, codes) for k in self.keys[:self.n_scanned]], self.backend),
                make_backend([coded(k, codes) for k in written], self.backend) if written else None)

    def __len__(self) -> int:
        return self.n_main  # distinct keys of the entries (written keys aside)

    def report(self) -> dict[str, int]:
        """As ``key_report``: entries, keys, empty keys, entries sharing their key."""
        return {"entries": self.n_entries, "keys": self.n_keys, "empty_key": len(self.empty),
                "key_collision": self.shared}

    def hits(self, key: str, no_start: frozenset[int] = NO_POSITIONS, no_end: frozenset[int] = NO_POSITIONS) -> set[int]:
        """Indexes of the keys found in an already keyed text (overlapping matches), less those starting or
        ending at a closed position (``word_key``) and one-character Han entries inside a longer word."""
        if self.auto is None:
            return set()
        if self.backend == "ahocorasick_rs":
            spans = self.auto.find_matches_as_indexes(key, overlapping=True)
            if not no_end:
                found = set(map(FIRST, spans))
                if self.unchecked(found):  # the common case: nothing found needs its position
                    return found
        else:
            if not no_end:
                found = {k for _, ks in self.auto.iter(key) for k in ks}
                if self.unchecked(found):
                    return found
            spans = [(k, end + 1 - len(self.keys[k]), end + 1) for end, ks in self.auto.iter(key) for k in ks]
        single_han = self.single_han
        kept = [(k, start, end) for k, start, end in spans if start not in no_start and end - 1 not in no_end
                and (k not in single_han or part_fits(key, start, end))]
        found = set(map(FIRST, kept))
        if len(found) < 2 or found.isdisjoint(self.single_han):  # no two words of unspaced scripts to compare
            return found
        return set(map(FIRST, unspaced_words(key, kept, self.longest)))

    def unchecked(self, found: set[int]) -> bool:
        """Whether no key found needs its position: none checked alone, and fewer than two of unspaced scripts."""
        return found.isdisjoint(self.single_han) or found.isdisjoint(self.alone) and len(found & self.single_han) < 2

    def named_hits(self, plain: str, names: frozenset[str]) -> set[int]:
        """The keys found in a caption whose tokens are those of the ASCII ``plain``, holding ``names`` (kept
        unfolded), in token codes where the automaton has them."""
        toks = fold_tokens(ascii_tokens(plain), names)
        if self.coded is not None:
            found = set(map(FIRST, self.coded.find_matches_as_indexes(caption_codes(toks, self.codes), overlapping=True)))
        else:
            found = set(map(FIRST, self.auto.find_matches_as_indexes(f" {' '.join(toks)} ", overlapping=True)))
        return self.name_hits(toks, name_forms(names), found) if self.name_shapes else found

    def ids_of(self, found: set[int]) -> list[int]:
        """Sorted ids of the entries of the keys ``found``."""
        if len(found) < 2:
            return list(self.ids[found.pop()]) if found else []
        ids: list[int] = []
        table = self.ids
        for k in found:  # faster than a chain for the few keys an alt holds
            ids += table[k]
        if self.any_written and max(found) >= self.n_main:  # an entry may be found by both of its keys
            return sorted(set(ids))
        ids.sort()  # the main keys' id sets are disjoint
        return ids

    def text_keys(self, text: str) -> tuple[str, ...]:
        """The keys a caption is scanned with."""
        return TEXT_KEYS[self.mode](text, self.inflections, self.accents)

    def scan(self, text: str) -> set[int]:
        """Indexes of the keys found in a caption, under each of its ``text_keys`` (inlined for word mode)."""
        if self.mode != "word":
            return self.hits(TEXT_KEYS[self.mode](text, False, False)[0])
        names = proper_plurals(text) if self.inflections else NO_NAMES
        no_start = no_end = NO_POSITIONS
        if ("-" in text or not text.isascii()) and has_compound(text):  # the test inlined: most alts have no hyphen
            key, no_start, no_end = compound_key(text, self.inflections, names)
        else:  # match_key inlined
            key = f" {' '.join(fold_tokens(tokens(text), names) if self.inflections else tokens(text))} "
        found = self.hits(key, no_start, no_end)
        if names and self.name_shapes:  # a name kept unfolded: the entries written like it, across closed positions too
            found = self.name_hits(key[1:-1].split(" "), name_forms(names), found)
        if self.accents and not key.isascii():
            folded = fold_accents(key)
            if folded != key:  # folding keeps every separator, maybe not where it was (æ -> ae)
                no_start, no_end = moved(key, folded, no_start), moved(key, folded, no_end)
                found |= self.hits(folded, no_start, no_end)
                if self.any_written:
                    found |= self.written_hits(folded, no_start, no_end)
        return found

    def name_hits(self, toks: list[str], names: frozenset[str], found: set[int]) -> set[int]:
        """``found`` and the written keys that a name kept unfolded in the caption's tokens ``toks`` shows. A written
        key that no folded caption holds (``written_reachable``) has a token folding changes: the caption must hold
        it unfolded, as a name. So only the token runs around a name are looked up, in the shapes of the keys
        holding it."""
        n, unreached, shapes = len(toks), self.unreached, self.name_shapes
        for i, token in enumerate(toks):
            if token in names and token in shapes:
                for offset, length in shapes[token]:
                    if offset <= i and i - offset + length <= n:
                        k = unreached.get(" " + " ".join(toks[i - offset:i - offset + length]) + " ")
                        if k is not None:
                            found.add(k)
        return found

    def written_hits(self, key: str, no_start: frozenset[int], no_end: frozenset[int]) -> set[int]:
        """Indexes of the written keys found in ``key``, less those starting or ending at a closed position."""
        if self.coded_written is not None:
            return self.coded_written_hits(key, no_start, no_end)
        if self.backend == "ahocorasick_rs":
            spans = self.written.find_matches_as_indexes(key, overlapping=True)
        else:
            spans = [(k, end + 1 - len(self.keys[self.n_main + k]), end + 1) for end, ks in self.written.iter(key)
                     for k in ks]
        return {self.n_main + k for k, start, end in spans if start not in no_start and end - 1 not in no_end}

    def coded_written_hits(self, key: str, no_start: frozenset[int], no_end: frozenset[int]) -> set[int]:
        """``written_hits`` in token codes: a code span (k, s, e) holds tokens s to e - 1, the key positions of the
        separators before token s and after token e - 1 are ``seps[s]`` and ``seps[e]``."""
        toks = key[1:-1].split(" ")
        spans = self.coded_written.find_matches_as_indexes(caption_codes(toks, self.codes), overlapping=True)
        if not no_start and not no_end:
            return {self.n_main + k for k, _, _ in spans}
        seps = [0, *(end + j + 1 for j, end in enumerate(accumulate(map(len, toks))))]
        return {self.n_main + k for k, s, e in spans if seps[s] not in no_start and seps[e] not in no_end}


def moved(key: str, folded: str, positions: frozenset[int]) -> frozenset[int]:
    """Separator positions of ``key`` at the same separators of ``folded``, its accent-folded form, which keeps every
    separator (a token may change length or become empty, never hold a space)."""
    if not positions:
        return positions
    at = dict(zip((i for i, c in enumerate(key) if c == " "), (i for i, c in enumerate(folded) if c == " "), strict=True))
    return frozenset(map(at.__getitem__, positions))


def token_reachable(t: str) -> bool:
    """Whether a token may be a token of a folded caption: one that ``fold_inflection`` keeps, or one it yields and
    would fold again (``men`` from ``mens``, ``workmen`` from ``workmens``, a Hangul word from one with a Latin s
    after it). Folded without the caption-side cache (``FOLDED``), which would grow by every entry's tokens and slow every
    caption's lookups."""
    return fold_inflection(t) == t or t in IRREGULAR or len(t) >= 7 and t.endswith("men") or \
        "\uac00" <= t[-1] <= "\ud7a3" or len(t) == 3 and t.endswith("'s")  # a's from a's's


def written_reachable(key: str, reachable: Callable[[str], bool] = token_reachable) -> bool:
    """Whether a written key's tokens may each be a token of a folded caption (``token_reachable``). A written key
    with another token, an entry's plural as written, is found only where the caption keeps that token unfolded as
    a name or accent folding makes a word anew (``Automaton.scan``)."""
    return all(map(reachable, key.split()))


def name_shapes(keys: dict[str, int], reachable: Callable[[str], bool] = token_reachable
                ) -> dict[str, tuple[tuple[int, int], ...]]:
    """Each token that no folded caption holds (``token_reachable``) -> the (offset, length) in tokens of the keys
    holding it."""
    shapes: dict[str, set[tuple[int, int]]] = {}
    for key in keys:
        toks = key.split()
        for offset, token in enumerate(toks):
            if not reachable(token):
                shapes.setdefault(token, set()).add((offset, len(toks)))
    return {token: tuple(sorted(s)) for token, s in shapes.items()}


def make_backend(keys: list[str], backend: str) -> Any:
    """The Aho-Corasick automaton of ``keys`` in the chosen library; a key's value is its index."""
    if backend == "ahocorasick_rs":
        import ahocorasick_rs

        return ahocorasick_rs.AhoCorasick(keys, matchkind=ahocorasick_rs.MatchKind.Standard)
    if backend == "pyahocorasick":
        import ahocorasick

        auto = ahocorasick.Automaton()
        indexes: dict[str, tuple[int, ...]] = {}
        for k, key in enumerate(keys):  # a key may stand twice (a written key equal to another entry's key)
            indexes[key] = (*indexes.get(key, ()), k)
        for key, ks in indexes.items():
            auto.add_word(key, ks)
        auto.make_automaton()
        return auto
    raise ValueError(f"unknown matcher backend {backend!r}")


def build_automaton(entries: list[str], mode: str = "word", backend: str = "ahocorasick_rs",
                    inflections: bool = False, accents: bool = False) -> Automaton:
    """The automaton for a query list, built with the cyclic garbage collector paused (``gc_paused``)."""
    with gc_paused():
        return Automaton(entries, mode, backend, inflections, accents)


_gc_lock = threading.Lock()
_gc_pauses = [0, False]  # builds in progress, whether the collector was on before the first


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off while any build runs, on again after the last if it was on before the first:
    a build makes millions of objects and no cycles, and each collection would walk them all (a second of a 500k
    list's build)."""
    with _gc_lock:
        if _gc_pauses[0] == 0:
            _gc_pauses[1] = gc.isenabled()
            gc.disable()
        _gc_pauses[0] += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses[0] -= 1
            if _gc_pauses[0] == 0 and _gc_pauses[1]:
                gc.enable()


def match_ids(auto: Automaton, text: str) -> list[int]:
    """Sorted ids of every entry found in ``text``."""
    if not auto.ascii_path:
        return auto.ids_of(auto.scan(text))
    if text.isascii():
        ids = auto.match_ascii(text, text)
    elif (plain := ascii_form(text)) is not None:
        ids = auto.match_ascii(text, plain)
    else:
        ids = None if auto.match_words is None else auto.match_words(text)
    return auto.ids_of(auto.scan(text)) if ids is None else ids


def ascii_matcher(auto: Automaton) -> Callable[[str, str], list[int] | None]:
    """``match_ids`` of a caption whose tokens are those of the ASCII ``plain`` (most alts: ``plain`` is the text,
    or its ``ascii_form``), the steps of ``Automaton.scan`` inlined with the automaton's parts bound once: nothing
    there needs a position but a compound's, no Han, accents have nothing to fold. Where the automaton has token
    codes it scans them, and reads a hyphenated compound's closed positions as token bounds (``ascii_compound_bounds``:
    a code is a token). None where the caption needs ``Automaton.scan``: a compound without codes, with a name, or
    in a text that is not ASCII."""
    coded, cache = auto.coded is not None, auto.ascii_chunks
    getitem, may_name = cache.__getitem__, cache.may_name
    find = (auto.coded if coded else auto.auto).find_matches_as_indexes
    ids_of, inflections = auto.ids_of, auto.inflections

    def match(text: str, plain: str) -> list[int] | None:
        # ascii_form makes the hyphens U+2010 and U+2011 spaces: a compound of a text that is not ASCII needs scan
        compound = "-" in text and has_compound(text) if plain is text else has_compound(text)
        if compound and (not coded or plain is not text):
            return None
        chunks = plain.split()
        generation = cache.generation
        key = "".join(map(getitem, chunks)) if coded else " " + ("".join(map(getitem, chunks)) or " ")
        # names only where a chunk may hold one (an ASCII text's chunks are its own)
        if inflections and (plain is not text or may_name(chunks, generation)) and (names := proper_plurals(text)):
            return None if compound else ids_of(auto.named_hits(plain, names))
        if compound:
            no_start, no_end = ascii_compound_bounds(text)
            if no_end:  # a code span (k, s, e) holds tokens s to e - 1
                return ids_of({k for k, s, e in find(key, overlapping=True) if e - 1 not in no_end
                               and s - 1 not in no_start})
        return ids_of(set(map(FIRST, find(key, overlapping=True))))

    return match


UNKNOWN = "\x00"  # the code of a caption token that no key holds
CODES = 0x110000 - 1 - 0x800  # code points but NUL and the surrogates (which UTF-8 cannot carry)


def token_codes(keys: list[str]) -> dict[str, str] | None:
    """One character for each token of ``keys``, the most frequent first (short in UTF-8); None past ``CODES``
    tokens. A key written in codes (``coded``) is found in a caption's codes exactly where its tokens follow each
    other in the caption: no spaces, and a scan of one character a token."""
    counts = Counter(chain.from_iterable(map(str.split, keys)))
    if len(counts) > CODES:
        return None
    return {t: chr(i + 1 if i + 1 < 0xD800 else i + 0x801) for i, (t, _) in enumerate(counts.most_common())}


def coded(key: str, codes: dict[str, str]) -> str:
    """A space-padded key in ``token_codes``."""
    return "".join(map(codes.__getitem__, key.split()))


def caption_codes(toks: list[str], codes: dict[str, str]) -> str:
    """A caption's tokens in ``token_codes``, ``UNKNOWN`` for a token no key holds."""
    get = codes.get
    return "".join([get(t, UNKNOWN) for t in toks])


def word_matcher(auto: Automaton) -> Callable[[str], list[int] | None]:
    """``match_ids`` of a caption that is not ASCII, by ``Automaton.scan``'s steps in token codes cached per
    whitespace-free chunk (``ChunkWords``; tokens never cross white space): the caption's codes, and its
    accent-folded codes in the scanned and the written keys. None where the caption needs ``Automaton.scan``: a
    hyphenated compound, a name, or a character of a script whose matches are checked by position (Han, Kana,
    Thai)."""
    cache = auto.word_chunks
    getitem, may_name = cache.__getitem__, cache.may_name
    find, written = auto.coded.find_matches_as_indexes, auto.coded_written
    ids_of, inflections, accents, n_main = auto.ids_of, auto.inflections, auto.accents, auto.n_main

    def match(text: str) -> list[int] | None:
        if has_compound(text) or UNSPACED_CHAR.search(text):  # the chunks' flags also see what NFKC makes unspaced
            return None
        chunks = text.split()
        generation = cache.generation
        values = list(map(getitem, chunks))
        if any([v[2] for v in values]) or inflections and may_name(chunks, generation) and proper_plurals(text):
            return None
        key = "".join([v[0] for v in values])
        found = set(map(FIRST, find(key, overlapping=True)))
        if accents and (folded := "".join([v[1] for v in values])) != key:
            found |= set(map(FIRST, find(folded, overlapping=True)))
            if written is not None:
                found |= {n_main + k for k, _, _ in written.find_matches_as_indexes(folded, overlapping=True)}
        return ids_of(found)

    return match


class ChunkCodes(ChunkKeys):
    """``ChunkKeys`` of one automaton whose values are its token codes (``token_codes``), ``UNKNOWN`` for a token no
    key holds."""

    def __init__(self, inflections: bool, codes: dict[str, str]):
        super().__init__(inflections)
        self.codes = codes

    def join(self, toks: list[str]) -> str:
        return caption_codes(toks, self.codes)


class ChunkWords(ChunkCodes):
    """A whitespace-free chunk of any text -> (its token codes, its accent-folded token codes, whether a token holds a
    character ``is_unspaced`` accepts), tokens by ``tokens`` and folded by ``fold_inflection`` when ``inflections``;
    ``capitals`` as ``ChunkKeys`` reads them in any script ``proper_plurals`` knows."""

    capital = CAPITAL_PLURAL_WORD

    def value(self, chunk: str) -> tuple[str, str, bool]:
        toks = list(map(FOLDED.__getitem__, tokens(chunk))) if self.inflections else tokens(chunk)
        folded = list(map(fold_accents, toks))
        codes = self.join(toks)
        return codes, codes if folded == toks else self.join(folded), UNSPACED_CHAR.search("".join(toks)) is not None


def load_queries(path: str) -> list[str]:
    """A query list: a JSON list of strings (MetaCLIP's metadata.json format)."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as f:
        entries = json.loads(f.read().decode("utf-8"))
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise ValueError(f"{path}: a query list must be a JSON list of strings")
    return entries


def shared_automaton(path: str, mode: str, backend: str = "ahocorasick_rs", inflections: bool = False,
                     accents: bool = False) -> Automaton:
    """One automaton per (query file, mode, options, backend) per worker process, built on first use."""
    key = (path, mode, backend, inflections, accents)
    with _lock:
        if key not in _cache:
            _cache[key] = build_automaton(load_queries(path), mode, backend, inflections, accents)
        return _cache[key]

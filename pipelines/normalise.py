"""Caption normalisation and the match keys used on both sides of query matching.

A word-mode match key is the caption's tokens, space-joined and space-padded, so that an entry matches
where its tokens appear as whole tokens in the caption. Tokens (see ``TOKEN``):

- a word: letters, numbers and combining marks, with inner apostrophes (``दिल्ली``, ``don't``, ``음식``);
  marks stay with their base letter, so ``लाल`` is not found inside ``दिल्ली``;
- one character, with its marks, of a script written without spaces (Han, Hiragana, Katakana, Thai, Lao,
  Khmer, Myanmar): those scripts are matched per character;
- one symbol (``\\p{S}`` and ``# & % @ *``), with its marks: ``c++`` is ``c + +``, ``at&t`` is ``at & t``,
  ``❤️`` is ``❤`` (variation selectors are dropped); as in UAX #29, an emoji ZWJ sequence (``👨‍👩‍👧``), a flag
  (a pair of regional indicators, ``🇯🇵``) and a tag sequence (``🏴󠁧󠁢󠁥󠁮󠁧󠁿``) are one token, so ``👨`` is not found in a
  family and ``🇵🇫`` not between ``🇯🇵🇫🇷``; a skin-tone modifier is a token of its own (``👍`` finds ``👍🏽``).

Every other character (spaces, punctuation, controls) separates tokens. Optional folds, applied on both
sides: ``fold_inflection`` (English plural and possessive; pluralia tantum such as glasses stay whole) and
``fold_accents`` (Latin and Greek accents, Arabic and Hebrew vowel marks). On the caption side, a plural-looking
word capitalised inside a sentence-case alt is a name and is not folded (``proper_plurals``: Robin Williams, Tyra
Banks), and ``word_key`` closes the key positions inside hyphenated compounds where a match may not end (a
modifier: hand-made) or, for names like T-Mobile, start.
"""

from __future__ import annotations

import html
import re
import unicodedata
from array import array
from itertools import accumulate
from operator import eq

import regex

TAG = re.compile(r"<[^<>]{0,200}>")
# Zero-width space, direction marks, separators, BOM; ZWNJ/ZWJ (U+200C/D) stay: they shape Persian and Indic words.
CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u200b\u200e\u200f\u2028\u2029\ufeff]")

UNSPACED = r"\p{scx=Han}\p{scx=Hiragana}\p{scx=Katakana}\p{scx=Thai}\p{scx=Lao}\p{scx=Khmer}\p{scx=Myanmar}"
KEPT_PUNCT = "#&%@"  # punctuation that carries meaning in names: c#, at&t, 100%, @home
_U = rf"[[\p{{L}}\p{{N}}]&&[{UNSPACED}]]"
_W = rf"[[\p{{L}}\p{{N}}\p{{M}}]--[{_U}]]"
_WORD = rf"{_W}+(?:'{_W}+)*"
# Symbols that stay attached to the word they follow (c++, c#, at&t, 100%); "|" is a separator, emoji never glue.
_GLUE = rf"[[\p{{Sm}}\p{{Sc}}\p{{Sk}}{KEPT_PUNCT}]--[|\U0001F3FB-\U0001F3FF]]"
_SYMBOL = rf"[[\p{{S}}{KEPT_PUNCT}]--[|]]"
_EXTEND = r"[\p{M}\U000E0020-\U000E007F]*"  # marks, and the tag characters of flags like England's
_SKIN = r"[\U0001F3FB-\U0001F3FF]"
_FLAG = r"[\U0001F1E6-\U0001F1FF]{2}"  # UAX #29 WB15/16: regional indicators pair up from the left
_EMOJI_ZWJ = rf"{_SYMBOL}{_EXTEND}{_SKIN}?(?:\u200d{_SYMBOL}{_EXTEND}{_SKIN}?)+"  # WB3c: ZWJ x Extended_Pictographic
TOKEN = regex.compile(rf"{_U}\p{{M}}*|{_WORD}(?:{_GLUE}+(?:{_WORD})?)*|{_FLAG}|{_EMOJI_ZWJ}|{_SYMBOL}{_EXTEND}", regex.V1)


def char_classes(*patterns: str) -> list[str]:
    """``re`` character classes holding the BMP code points that each ``regex`` class in ``patterns`` matches (``re``
    tests a BMP-only class by a bitmap, a class with astral ranges range by range)."""
    every = array("I", range(0x10000)).tobytes().decode("utf-32-le", "surrogatepass")  # surrogates too
    return ["[" + "".join(f"\\u{m.start():04x}-\\u{m.end() - 1:04x}" for m in regex.finditer(f"{p}+", every, regex.V1))
            + "]" for p in patterns]


# A prepared BMP text without symbols, glue, apostrophes and joiners (most non-ASCII alts: Han, Kana, Cyrillic,
# accented Latin) has the tokens of TOKEN's first two branches only, words of _W and _U characters with their
# marks: stdlib ``re`` finds them faster than ``regex``. A test compares the two on generated text.
_RW, _RU, _RM, _RNOT = char_classes(_W, _U, r"\p{M}", rf"[\p{{S}}{KEPT_PUNCT}'\u200d]")
SIMPLE_TOKEN = re.compile(f"{_RW}+|{_RU}{_RM}*")
NOT_SIMPLE = re.compile(f"{_RNOT}|[\\U00010000-\\U0010ffff]")
# Before tokenising: apostrophe look-alikes become "'"; invisible joiners, variation selectors, soft hyphens and
# the Arabic tatweel are dropped, except a zero-width joiner between two pictographs (an emoji ZWJ sequence).
PRE_KEY = str.maketrans({**dict.fromkeys("\u2019\u2018\u02bc\u00b4`\u2032", "'"),
                         **dict.fromkeys("\u200c\ufe0e\ufe0f\u00ad\u0640\u200e\u200f\u200b", None)})
NEEDS_PRE = re.compile("[" + "".join(map(chr, PRE_KEY)) + "\u200d\u0130\u0307]")
LOOSE_ZWJ = regex.compile(r"(?<![\p{Extended_Pictographic}\p{M}\U0001F3FB-\U0001F3FF])\u200d|\u200d(?!\p{Extended_Pictographic})")
# Default case folding turns the Turkish capital İ into i + combining dot above; the dot is not an accent of the
# word (istanbul, İstanbul and ISTANBUL are one word), so it goes.
DOTTED_I = "i\u0307"
ASCII_GLUE = "".join(c for c in map(chr, range(128)) if not c.isalnum() and c not in "'`" and TOKEN.fullmatch("a" + c))


def _ascii_char_key(c: str) -> str:
    """What one ASCII character becomes before the ASCII tokeniser (must agree with ``TOKEN``)."""
    if c.isalnum():
        return c.lower()
    if c in "'`":
        return "'"
    return c if c in ASCII_GLUE else " "


ASCII_KEY = str.maketrans({chr(i): _ascii_char_key(chr(i)) for i in range(128)})
# PRE_KEY, and punctuation that is a separator before and after NFKC (quotation marks, dashes, bullets) made a space:
# a text that is then ASCII has the tokens of that ASCII text.
NEAR_ASCII = {**PRE_KEY, **dict.fromkeys(map(ord, "“”„‟«»‹›‚–—―‒‐‑…•·"), " ")}
NOT_NEAR_ASCII = re.compile("[^\\x00-\\x7f" + "".join(f"\\u{c:04x}" for c in NEAR_ASCII) + "]")
NEAR_ASCII_CHAR = {chr(c): v or "" for c, v in NEAR_ASCII.items()}
NON_ASCII_RUN = re.compile("[^\\x00-\\x7f]+")
_AW = r"[a-z0-9]+(?:'[a-z0-9]+)*"
_AG = "[" + re.escape(ASCII_GLUE) + "]"
ASCII_TOKEN = re.compile(rf"{_AW}(?:{_AG}+(?:{_AW})?)*|{_AG}")
ASCII_SPECIAL = re.compile(rf"'|{_AG}")
# A hyphenated compound of letter words, as ASCII_TOKEN reads it: its first part starts a token (no letter or digit
# before it, nor one before the apostrophe before it; ` is an apostrophe as in ASCII_KEY) and its last part ends one.
# A first part after symbols glued to a word (c++hand is one token, c++'hand two) is set aside in Python.
_EDGE = "A-Za-z0-9" + re.escape(ASCII_GLUE)
ASCII_COMPOUND = re.compile(rf"(?<![A-Za-z0-9])(?<![A-Za-z0-9]['`])[A-Za-z]+(?:['`][A-Za-z]+)*"
                            rf"(?:-[A-Za-z]+(?:['`][A-Za-z]+)*)+(?![{_EDGE}])(?!['`][A-Za-z0-9])")


def normalise_caption(alt: str) -> str:
    """NFC, decode leftover entities, drop tags and control characters, collapse whitespace."""
    text = html.unescape(html.unescape(alt)) if "&" in alt else alt
    if "<" in text:
        text = TAG.sub(" ", text)
    if not text.isascii():
        text = CONTROL.sub(" ", unicodedata.normalize("NFC", text))
    elif not text.isprintable():
        text = CONTROL.sub(" ", text)
    elif "  " not in text and text[:1] != " " and text[-1:] != " ":
        return text  # printable ASCII has no whitespace but the space: nothing to collapse
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    """The match tokens of ``text``: NFKC, casefolded, split as the module docstring says."""
    if text.isascii():
        return ascii_tokens(text)
    plain = ascii_form(text)
    if plain is not None:
        return ascii_tokens(plain)
    prepared = _prepared(text)
    return TOKEN.findall(prepared) if NOT_SIMPLE.search(prepared) else SIMPLE_TOKEN.findall(prepared)


def ascii_form(text: str) -> str | None:
    """The ASCII text whose tokens are those of ``text``, when it is ASCII but for curly quotes and dashes (a third
    of the real non-ASCII alts); else None."""
    if NOT_NEAR_ASCII.search(text):
        return None
    return NON_ASCII_RUN.sub(_near_ascii_run, text)  # runs replaced: faster than a translate of every character


def _near_ascii_run(run: re.Match) -> str:
    return "".join(map(NEAR_ASCII_CHAR.__getitem__, run.group()))


def ascii_tokens(text: str) -> list[str]:
    """``tokens`` of an ASCII text: a translation, then a split, unless apostrophes or glued symbols need
    ``ASCII_TOKEN``."""
    key = text.translate(ASCII_KEY)
    return ASCII_TOKEN.findall(key) if ASCII_SPECIAL.search(key) else key.split()


# A capitalised word (Latin, Greek, Cyrillic) ending in s after a space that follows a word (a letter or digit:
# [^\W_] is str.isalnum) or a comma or closing mark: not the start of a sentence. The space and capital first,
# for speed.
_CAPITAL, _SMALL = "A-ZÀ-ÖØ-ÞΑ-ΩА-Я", "a-zß-öø-ÿα-ωа-я'’"
CAPITAL_PLURAL = re.compile(rf" (?=[{_CAPITAL}])(?<=[^\W_] |[,;')\]’] )([{_CAPITAL}][{_SMALL}]*s)\b")
# What CAPITAL_PLURAL's name must be at the start of the whitespace-free chunk holding it: in an ASCII text, in any.
CAPITAL_PLURAL_CHUNK = re.compile(r"[A-Z][a-z']*s\b")
CAPITAL_PLURAL_WORD = re.compile(rf"[{_CAPITAL}][{_SMALL}]*s\b")


class ChunkKeys(dict):
    """A whitespace-free ASCII chunk -> its tokens, each followed by a space, folded by ``fold_inflection`` when
    ``inflections``; filled on first sight, emptied at ``limit`` entries (bounded memory). ``capitals`` holds the
    chunks seen since the last emptying (``generation`` counts them) where ``proper_plurals`` may find a name (a
    capitalised plural-looking word at the start that folding changes): a text none of whose chunks but the first
    (no word before it) is there has none."""

    limit = 1 << 17

    def __init__(self, inflections: bool):
        super().__init__()
        self.inflections = inflections
        self.capitals: set[str] = set()
        self.generation = 0

    capital = CAPITAL_PLURAL_CHUNK  # a name's word as ``proper_plurals`` reads it, at the start of a chunk

    def __missing__(self, chunk: str):
        if len(self) >= self.limit:
            self.clear()
            self.capitals.clear()
            self.generation += 1
        if (name := self.capital.match(chunk)) and FOLDED[word := name.group().casefold()] != word:
            self.capitals.add(chunk)
        value = self[chunk] = self.value(chunk)
        return value

    def may_name(self, chunks: list[str], generation: int) -> bool:
        """Whether ``proper_plurals`` may find a name in the text of ``chunks``, looked up since ``generation``: a
        chunk after the first is in ``capitals``, or the cache was emptied meanwhile and may have lost one."""
        return generation != self.generation or not self.capitals.isdisjoint(chunks) and \
            not self.capitals.isdisjoint(chunks[1:])

    def value(self, chunk: str):
        """A chunk's value: its tokens (``ascii_tokens``), folded when ``inflections``, given to ``join``."""
        toks = ascii_tokens(chunk)
        return self.join(list(map(FOLDED.__getitem__, toks)) if self.inflections else toks)

    def join(self, toks: list[str]) -> str:
        """A chunk's value from its tokens."""
        return " ".join(toks) + " " if toks else ""


CHUNK_KEYS = (ChunkKeys(False), ChunkKeys(True))


def ascii_key(text: str, inflections: bool = False) -> str:
    """``match_key`` of an ASCII text without names (``proper_plurals``), chunk by chunk: no token spans the
    whitespace ``str.split`` splits at (ASCII_KEY makes it a space), and a chunk's key is cached."""
    inner = "".join(map(CHUNK_KEYS[inflections].__getitem__, text.split()))
    return " " + inner if inner else "  "


def _prepared(text: str) -> str:
    """A non-ASCII text as the tokeniser reads it: joiners and look-alikes settled, NFKC, casefolded."""
    if not NEEDS_PRE.search(text):
        return unicodedata.normalize("NFKC", text).casefold()
    text = text.translate(PRE_KEY)
    if "\u200d" in text:
        text = LOOSE_ZWJ.sub("", text)
    key = unicodedata.normalize("NFKC", text).casefold()
    return key.replace(DOTTED_I, "i") if DOTTED_I in key else key


def token_spans(text: str) -> tuple[str, list[tuple[int, int]]]:
    """The string the tokeniser reads and each token's span in it (for ASCII, the spans are the text's too)."""
    if text.isascii():
        key = text.translate(ASCII_KEY)
        pattern = ASCII_TOKEN if ASCII_SPECIAL.search(key) else NON_SPACE
        return key, [m.span() for m in pattern.finditer(key)]
    key = _prepared(text)
    return key, [m.span() for m in (TOKEN if NOT_SIMPLE.search(key) else SIMPLE_TOKEN).finditer(key)]


def fold_tokens(toks: list[str], names: frozenset[str]) -> list[str]:
    """Tokens folded by ``fold_inflection``, except ``names`` (``proper_plurals``), written with or without a
    possessive, which is all that goes (Williams's -> williams)."""
    if not names:
        return list(map(FOLDED.__getitem__, toks))
    return [(t[:-2] if t[-2:] == "'s" else t) if t in names or t[-2:] == "'s" and t[:-2] in names else FOLDED[t]
            for t in toks]


def name_forms(names: frozenset[str]) -> frozenset[str]:
    """The tokens ``fold_tokens`` keeps for ``names``: each name, and without its possessive."""
    return names | {name[:-2] for name in names if name[-2:] == "'s"}


def match_key(text: str, inflections: bool = False, names: frozenset[str] | None = None) -> str:
    """Space-padded tokens; with ``inflections`` each token is folded by ``fold_inflection``, but for the names
    ``proper_plurals`` finds (or ``names``, when the caller found them)."""
    if inflections and names is None:
        names = proper_plurals(text)
    if not names and text.isascii():
        return ascii_key(text, inflections)
    toks = tokens(text)
    if not inflections:
        return " " + " ".join(toks) + " "
    return " " + " ".join(fold_tokens(toks, names)) + " "


def word_key(text: str, inflections: bool = False,
             names: frozenset[str] | None = None) -> tuple[str, frozenset[int], frozenset[int]]:
    """``match_key`` and the key positions (separators) where a match may not start, and may not end.

    A hyphenated compound in prose is one word whose head is its last part (self-portrait is a portrait;
    hand-made is not a hand): a match may not end after one of its other parts. A compound with a one-letter
    part and a capitalised part after the first is a name (T-Mobile, Jay-Z, e-Tron, Chick-fil-A), and one with a
    possessive part before the last names another thing than its head (bird's-eye, cat's-paw, lady's-slipper): no
    match starts inside either (a t-shirt is still a shirt). A file name or slug (no space) and an all-capitals alt use
    hyphens as spaces.
    """
    if not has_compound(text):
        return match_key(text, inflections, names), NO_POSITIONS, NO_POSITIONS
    return compound_key(text, inflections, names)


def compound_key(text: str, inflections: bool = False,
                 names: frozenset[str] | None = None) -> tuple[str, frozenset[int], frozenset[int]]:
    """``word_key`` for a text ``has_compound`` accepts."""
    if text.isascii():
        key = match_key(text, inflections, names)
        return (key, *ascii_compound_positions(text, key))
    plain = ascii_form(text)
    if plain is None or "\u2010" in text or "\u2011" in text:  # ascii_form makes these hyphens spaces
        return compound_positions(text, inflections, names)
    key = match_key(plain, inflections, proper_plurals(text) if inflections and names is None else names)
    return (key, *ascii_compound_positions(plain, key, cased=False))


def ascii_compound_positions(text: str, key: str, cased: bool = True) -> tuple[frozenset[int], frozenset[int]]:
    """``word_key``'s closed positions for an ASCII text whose key is ``key``: ``ascii_compound_bounds`` as key
    positions (``compound_positions`` is the general reading; a test keeps the two equal)."""
    no_start, no_end = ascii_compound_bounds(text, cased)
    if not no_end:
        return NO_POSITIONS, NO_POSITIONS
    lengths = list(accumulate(map(len, key[1:-1].split(" "))))  # token k's separator: lengths[k] + k + 1
    return frozenset(lengths[k] + k + 1 for k in no_start), frozenset(lengths[k] + k + 1 for k in no_end)


def ascii_compound_bounds(text: str, cased: bool = True) -> tuple[frozenset[int], frozenset[int]]:
    """The tokens of an ASCII text after which a match may not start, and may not end (``word_key``), from its
    compounds found by one regex and the count of tokens before each. Not ``cased`` (the ``ascii_form`` of a text
    that was not ASCII), capitals do not make names, as in ``compound_positions``."""
    no_start, no_end = set(), set()
    pos = counted = count = 0  # text[:counted], which ends a token, holds count tokens
    # a compound holds no space: the search starts after the last space before the next hyphen
    while (hyphen := text.find("-", pos)) >= 0 and \
            (m := ASCII_COMPOUND.search(text, max(pos, text.rfind(" ", 0, hyphen) + 1))) is not None:
        compound, start = m.group(), m.start()
        if start and text[start - 1] in ASCII_GLUE and text[:start].rstrip(ASCII_GLUE)[-1:].isalnum():
            pos = start + compound.index("-") + 1  # the first part is glued to the word before: look from the next
            continue
        pos = m.end()
        parts = compound.split("-")
        first = count + len(tokens(text[counted:start]))  # the compound starts a token
        count, counted = first + len(parts), m.end()  # one token a part; the last ends a token
        name = cased and any(len(p) == 1 for p in parts) and any(p[0].isupper() for p in parts[1:]) or \
            any(p[-2:].lower() in ("'s", "`s") for p in parts[:-1])
        no_end.update(range(first, first + len(parts) - 1))
        if name:
            no_start.update(range(first, first + len(parts) - 1))
    return frozenset(no_start), frozenset(no_end)


def compound_positions(text: str, inflections: bool,
                       names: frozenset[str] | None = None) -> tuple[str, frozenset[int], frozenset[int]]:
    """``word_key`` read token by token (any script): runs of word tokens joined by one hyphen each."""
    prepared, spans = token_spans(text)
    raw = [prepared[a:b] for a, b in spans]
    toks = fold_tokens(raw, proper_plurals(text) if names is None else names) if inflections else raw
    between = text if text.isascii() else prepared
    ending = {end: i for i, (_, end) in enumerate(spans)}
    links = [i for h in HYPHEN.finditer(between) if (i := ending.get(h.start(), -1)) >= 0 and i + 1 < len(spans)
             and spans[i + 1][0] == h.end() and _part(raw[i], raw[i + 1])]  # token i, a hyphen, token i + 1
    no_start, no_end = set(), set()
    lengths = list(accumulate(map(len, toks))) if links else []
    for run in _runs(links):
        i, j = run[0], run[-1] + 1  # the compound's first and last tokens
        name = any(len(raw[k]) == 1 for k in range(i, j + 1)) and text.isascii() and any(
            text[spans[k][0]].isupper() for k in range(i + 1, j + 1)) or any(  # case is known in ASCII text only
            raw[k].endswith("'s") for k in run)
        for k in run:
            no_end.add(lengths[k] + k + 1)  # the separator after token k
            if name:
                no_start.add(lengths[k] + k + 1)
    return " " + " ".join(toks) + " ", frozenset(no_start), frozenset(no_end)


def _runs(links: list[int]) -> list[list[int]]:
    """Increasing token indexes grouped into runs of consecutive ones."""
    runs: list[list[int]] = []
    for i in links:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def has_compound(text: str) -> bool:
    """Whether ``word_key`` closes positions in ``text``: prose (a space, not all capitals) with letters hyphenated."""
    return " " in text and ("-" in text or "\u2010" in text or "\u2011" in text) \
        and HYPHENATED.search(text) is not None and not text.isupper()


def _part(*parts: str) -> bool:
    """Whether tokens can be parts of a hyphenated word compound (letters, maybe an apostrophe: bird's-eye)."""
    return all(t.replace("'", "").isalpha() for t in parts)


def proper_plurals(text: str) -> frozenset[str]:
    """Plural-looking words that are names: written with a capital in the middle of a sentence-case alt.

    English writes common nouns lower-case inside a sentence, so "Robin Williams on stage", "Tyra Banks hosts
    the show" and "Venus and Mars" name people and places; in a title-case or all-capitals alt ("Why Movies
    Went From 15 Minutes") capitals say nothing and every word folds. Title case (``_title_case``): at least two
    words after the first (function words aside), three in four of them capitalised.
    """
    if text.islower() or text.isupper():  # no capital, or no lower-case s
        return NO_NAMES
    found = CAPITAL_PLURAL.findall(text)
    if not found:  # most alts: decided by one scan
        return NO_NAMES
    names = frozenset(word.casefold().replace("’", "'") for word in found)  # apostrophes as the tokens write them
    if all(map(eq, map(FOLDED.__getitem__, names), names)) or _title_case(text):  # none that folding changes
        return NO_NAMES
    return names


def _title_case(text: str) -> bool:
    """At least two words after the first, function words aside, and three in four of them capitalised."""
    kinds = list(map(WORD_KIND.__getitem__, (ASCII_WORD if text.isascii() else LATIN_WORD).findall(text)[1:]))
    rest = len(kinds) - kinds.count(FUNCTION)
    return rest >= 2 and 4 * kinds.count(CAPITALISED) >= 3 * rest


FUNCTION, CAPITALISED, LOWER = 0, 1, 2


class WordKindCache(dict):
    """word -> FUNCTION, CAPITALISED or LOWER for ``_title_case``, filled on first sight, emptied at ``limit``."""

    limit = 1 << 16

    def __missing__(self, word: str) -> int:
        if len(self) >= self.limit:
            self.clear()
        kind = self[word] = FUNCTION if word.casefold() in FUNCTION_WORDS else \
            CAPITALISED if word[0].isupper() else LOWER
        return kind


WORD_KIND = WordKindCache()


HYPHEN = re.compile("[-\u2010\u2011]")
HYPHENATED = re.compile(r"[-\u2010\u2011](?<=[^\W\d_].)(?=[^\W\d_])")  # letters both sides (hyphen first: faster)
NO_POSITIONS: frozenset[int] = frozenset()
NO_NAMES: frozenset[str] = frozenset()
NON_SPACE = re.compile(r"\S+")
ASCII_WORD = re.compile(r"[A-Za-z][A-Za-z']*")
LATIN_WORD = regex.compile(r"\p{L}[\p{L}\p{M}'’]*")
_FUNCTION_WORDS = "a an the and but or nor for so yet as at by in of off on per to up via with from into onto over than that this vs"
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS.split())  # left lower-case in titles


def entry_match_key(entry: str, inflections: bool = False) -> str:
    """``match_key`` for query entries: the same key, without filling the caption-side fold cache."""
    toks = tokens(entry)
    return " " + " ".join(map(fold_inflection, toks) if inflections else toks) + " "


class FoldCache(dict):
    """token -> ``fold_inflection(token)``, filled on first sight and emptied at ``limit`` entries (bounded memory)."""

    limit = 1 << 18

    def __missing__(self, token: str) -> str:
        if len(self) >= self.limit:
            self.clear()
        folded = self[token] = fold_inflection(token)
        return folded


FOLDED = FoldCache()


# Plural-looking words whose singular is another word (news/new) or that have none.
_KEEP_S = (
    "news goods shorts means lens pants series species always perhaps sometimes towards afterwards whereas "
    "thanks physics mathematics economics politics ethics athletics gymnastics diabetes measles billiards "
    "bus gas yes his its has was this thus does goes us "
    # pluralia tantum: the plural names another thing than the singular (glasses are not glass)
    "glasses sunglasses eyeglasses scissors trousers jeans pliers tongs binoculars goggles clothes tweezers")
KEEP_S = frozenset(_KEEP_S.split())
SIBILANT_ES = ("sses", "shes", "ches", "xes", "zzes")
_IRREGULAR = (
    "men:man women:woman children:child mice:mouse geese:goose feet:foot teeth:tooth oxen:ox leaves:leaf "
    "knives:knife wives:wife lives:life wolves:wolf halves:half shelves:shelf loaves:loaf thieves:thief "
    "calves:calf scarves:scarf hooves:hoof buses:bus taxis:taxi heroes:hero echoes:echo")
IRREGULAR = dict(pair.split(":") for pair in _IRREGULAR.split())
# Korean particles (josa) written onto the word before them (고양이가, 서울의, 강아지와), and the plural 들 (학생들).
_JOSA = "에서는 에서 으로 이랑 에게 까지 부터 처럼 보다 하고 의 이 가 은 는 을 를 와 과 도 에 로 만 랑 들"
JOSA = sorted(_JOSA.split(), key=len, reverse=True)
# Particles with two forms take one after a vowel and the other after a consonant (고양이가, 꽃이; 로 also after ㄹ),
# so 소설가 (novelist: 설 ends in a consonant) is not 소설 + 가, and 사과 (apple) is not 사 + 과.
AFTER_VOWEL = frozenset(["가", "는", "를", "와", "랑", "로"])
AFTER_CONSONANT = frozenset(["이", "은", "을", "과", "이랑", "으로"])


def fold_inflection(token: str) -> str:
    """One form for a word's plural, possessive and particles: cats, cat's -> cat; movies -> movy; 서울의 -> 서울."""
    if "\uac00" <= token[-1] <= "\ud7a3":
        return fold_josa(token)
    if token.endswith("'s"):
        token = token[:-2]
    if token in IRREGULAR:
        return IRREGULAR[token]
    if len(token) >= 7 and token.endswith("men"):
        return token[:-3] + "man"  # firemen, businesswomen; abdomen and specimen fold alike on both sides
    if len(token) >= 4 and token[-1] == "s" and token not in KEEP_S and not token.endswith(("ss", "us", "is", "'")):
        if token.endswith("ies") and len(token) >= 5:
            return token[:-3] + "y"
        if token.endswith(SIBILANT_ES) or (token.endswith("oes") and len(token) >= 7 and not token.endswith("shoes")):
            return token[:-2]
        token = token[:-1]
    if len(token) >= 5 and token.endswith("ie"):
        return token[:-2] + "y"  # movie and movies meet at "movy", as puppy and puppies at "puppy"
    return token


def fold_josa(token: str) -> str:
    """A Hangul word without trailing particles, keeping at least two syllables (so 포도 stays whole) and a
    particle's form agreeing with the syllable before it (see ``AFTER_VOWEL``)."""
    while True:
        for josa in JOSA:
            if token.endswith(josa) and len(token) - len(josa) >= 2 and josa_fits(token[-len(josa) - 1], josa):
                token = token[: -len(josa)]
                break
        else:
            return token


def josa_fits(syllable: str, josa: str) -> bool:
    """Whether ``josa`` may follow ``syllable``: by its final consonant (jongseong) for the two-form particles."""
    if not "\uac00" <= syllable <= "\ud7a3":
        return False
    final = (ord(syllable) - 0xAC00) % 28  # 0: ends in a vowel; 8: ends in ㄹ
    if josa in AFTER_VOWEL:
        return final == 0 or (josa == "로" and final == 8)
    if josa in AFTER_CONSONANT:
        return final != 0 and not (josa == "으로" and final == 8)
    return True


def _accent_table() -> dict[int, str | None]:
    """Precomposed Latin and Greek letters to their base letters; Arabic and Hebrew vowel marks dropped."""
    table: dict[int, str | None] = {}
    for cp in [*range(0xC0, 0x250), *range(0x370, 0x400), *range(0x1E00, 0x2000)]:
        ch = chr(cp)
        if not unicodedata.category(ch).startswith("L"):
            continue
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
        if base and base != ch:
            table[cp] = base.casefold()
    table.update({ord(a): b for a, b in zip("øłđħıŧ", "oldhit", strict=True)})
    table.update({ord("æ"): "ae", ord("œ"): "oe", ord("ё"): "е"})  # ё is commonly written е in Russian
    for cp in [*range(0x591, 0x5C8), *range(0x64B, 0x660), 0x670]:
        if unicodedata.category(chr(cp)) == "Mn":
            table[cp] = None
    return table


ACCENTS = _accent_table()
COMBINING = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"  # the combining diacritics blocks
MARKS_AFTER_LATIN = regex.compile(rf"(?<=[\p{{Latin}}\p{{Greek}}])[{COMBINING}]+")
FOLDS_SOMETHING = re.compile("[" + "".join(map(chr, ACCENTS)) + COMBINING + "]")


def fold_accents(key: str) -> str:
    """``key`` without Latin/Greek accents (precomposed, or combining diacritics after the letter) and without
    Arabic/Hebrew vowel marks; other scripts' marks stay (Devanagari matras, Thai tone marks)."""
    if key.isascii() or not FOLDS_SOMETHING.search(key):
        return key
    return MARKS_AFTER_LATIN.sub("", key.translate(ACCENTS))

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
sides: ``fold_inflection`` (English plural and possessive) and ``fold_accents`` (Latin and Greek accents,
Arabic and Hebrew vowel marks).
"""

from __future__ import annotations

import html
import re
import unicodedata

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
_AW = r"[a-z0-9]+(?:'[a-z0-9]+)*"
_AG = "[" + re.escape(ASCII_GLUE) + "]"
ASCII_TOKEN = re.compile(rf"{_AW}(?:{_AG}+(?:{_AW})?)*|{_AG}")
ASCII_SPECIAL = re.compile(rf"'|{_AG}")


def normalise_caption(alt: str) -> str:
    """NFC, decode leftover entities, drop tags and control characters, collapse whitespace."""
    text = html.unescape(html.unescape(alt)) if "&" in alt else alt
    if "<" in text:
        text = TAG.sub(" ", text)
    if not text.isascii():
        text = CONTROL.sub(" ", unicodedata.normalize("NFC", text))
    elif not text.isprintable():
        text = CONTROL.sub(" ", text)
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    """The match tokens of ``text``: NFKC, casefolded, split as the module docstring says."""
    if text.isascii():
        key = text.translate(ASCII_KEY)
        return ASCII_TOKEN.findall(key) if ASCII_SPECIAL.search(key) else key.split()
    if not NEEDS_PRE.search(text):
        return TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())
    text = text.translate(PRE_KEY)
    if "\u200d" in text:
        text = LOOSE_ZWJ.sub("", text)
    key = unicodedata.normalize("NFKC", text).casefold()
    return TOKEN.findall(key.replace(DOTTED_I, "i") if DOTTED_I in key else key)


def match_key(text: str, inflections: bool = False) -> str:
    """Space-padded tokens; with ``inflections`` each token is folded by ``fold_inflection``."""
    toks = tokens(text)
    return " " + " ".join(map(FOLDED.__getitem__, toks) if inflections else toks) + " "


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
    "bus gas yes his its has was this thus does goes us")
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

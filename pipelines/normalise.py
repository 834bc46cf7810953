"""Caption normalisation and the match key used on both sides of query matching."""

from __future__ import annotations

import html
import re
import string
import unicodedata

TAG = re.compile(r"<[^<>]{0,200}>")
CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u200b-\u200f\u2028\u2029\ufeff]")
# Scripts written without spaces: every character boundary is a token boundary.
UNSPACED = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0e7f\uac00-\ud7af])")
NON_WORD = re.compile(r"[^\w]+|_+")
# ASCII fast path: lower-case letters, every other non-alphanumeric character becomes a space.
ASCII_KEY = str.maketrans({c: (c.lower() if c.isalnum() else " ") for c in map(chr, range(128))})
_PRINTABLE_WS = set(string.whitespace)


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


def match_key(text: str) -> str:
    """Casefolded, punctuation as spaces, unspaced scripts split per character, space-padded."""
    if text.isascii():
        return " " + " ".join(text.translate(ASCII_KEY).split()) + " "
    text = unicodedata.normalize("NFKC", text).casefold()
    text = NON_WORD.sub(" ", text)
    text = UNSPACED.sub(r" \1 ", text)
    return " " + " ".join(text.split()) + " "

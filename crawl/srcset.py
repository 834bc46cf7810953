"""``srcset`` by the WHATWG "parse a srcset attribute" algorithm, and the largest candidate of several.

The splitting loop skips whitespace and commas, takes everything up to the next ASCII whitespace as
the URL (so ``…/c_fill,w_470/a.jpg 470w`` keeps its commas), strips trailing commas from a URL that
ends the candidate, then tokenizes descriptors up to the next comma outside parentheses. A candidate
is kept only when its descriptors are valid: at most one ``w`` (integer > 0) or ``x`` (float >= 0),
an ``h`` (integer > 0) only beside a ``w``; no descriptor means 1x. Every step is a regex pass over
the text, so the parse is linear in its length.

``sizes`` is not read: it turns widths into densities for one viewport (density = w / size), which
keeps the order of widths, and a crawl has no viewport. "Largest" is the largest width descriptor,
else the largest density.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import NamedTuple

_SEPARATORS = re.compile(r"[\t\n\f\r ,]*+")
_URL = re.compile(r"[^\t\n\f\r ]++")
_SPACE = re.compile(r"[\t\n\f\r ]*+")
# Descriptors run to the first comma outside parentheses; an unclosed '(' runs to the end.
_DESCRIPTORS = re.compile(r"(?:[^,(]++|\([^)]*+\)?)*+,?")
_TOKEN = re.compile(r"(?:[^\t\n\f\r (]++|\([^)]*+\)?)++")
_INTEGER = re.compile(r"[0-9]++")
_FLOAT = re.compile(r"-?(?:[0-9]++(?:\.[0-9]++)?|\.[0-9]++)(?:[eE][-+]?[0-9]++)?")
# The common shape, read in one pass: 'url', 'url 640w' or 'url 1.5x' separated by commas; any other
# shape goes through the full algorithm. A URL never ends in ',' here, as the algorithm strips those.
_PLAIN_CANDIDATE = (r"[\t\n\f\r ,]*+([^\t\n\f\r ]*[^\t\n\f\r ,])"
                    r"(?:[\t\n\f\r ]++([1-9][0-9]{0,299}+w|(?:[0-9]{1,300}+(?:\.[0-9]++)?|\.[0-9]++)x))?"
                    r"[\t\n\f\r ]*+(?:,|(?=[\t\n\f\r ]*+\Z))")
_PLAIN = re.compile(f"(?:{_PLAIN_CANDIDATE})*+" + r"[\t\n\f\r ,]*+")
_PLAIN_PARTS = re.compile(_PLAIN_CANDIDATE)


_MAX_DIGITS = 300


def _integer(digits: str) -> int:
    """A descriptor's integer; past ``_MAX_DIGITS`` digits it reads as 10**300 (past any real size, within a
    float for ranking: ``int()`` of over 4,300 digits raises)."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else 10 ** _MAX_DIGITS


class SrcsetCandidate(NamedTuple):
    """One image candidate: its URL as written and its descriptors (None when absent; no descriptor is 1x)."""

    url: str
    width: int | None = None
    density: float | None = None
    height: int | None = None


def _descriptor_values(tokens: list[str]) -> tuple[int | None, float | None, int | None] | None:
    """(width, density, height) of a candidate's descriptors, or None when they are invalid."""
    width = height = None
    density: float | None = None
    for token in tokens:
        kind, number = token[-1], token[:-1]
        if kind == "w" and _INTEGER.fullmatch(number):
            if width is not None or density is not None or _integer(number) == 0:
                return None
            width = _integer(number)
        elif kind == "x" and _FLOAT.fullmatch(number):
            value = float(number)
            if width is not None or density is not None or height is not None or value < 0 or math.isinf(value):
                return None
            density = value
        elif kind == "h" and _INTEGER.fullmatch(number):
            if height is not None or density is not None or _integer(number) == 0:
                return None
            height = _integer(number)
        else:
            return None
    if height is not None and width is None:
        return None
    return width, density, height


def ranked_urls(text: str) -> list[tuple[tuple[int, float], str]]:
    """(rank, URL) of each valid candidate of a ``srcset`` value, in order: what "largest" needs, read
    without building candidates for the common shape."""
    if _PLAIN.fullmatch(text):  # no tail for findall to retry on; at most 300 digits, so every number is finite
        return [((1, float(d[:-1])) if d[-1:] == "w" else (0, float(d[:-1]) if d else 1.0), url)
                for url, d in _PLAIN_PARTS.findall(text.rstrip("\t\n\f\r ,"))]
    return [(rank(c), c.url) for c in parse_srcset_by_steps(text)]


def parse_srcset(text: str) -> list[SrcsetCandidate]:
    """The valid image candidates of a ``srcset`` value, in order (invalid ones are skipped)."""
    if _PLAIN.fullmatch(text):
        return [SrcsetCandidate(url, int(d[:-1]) if d[-1:] == "w" else None, float(d[:-1]) if d[-1:] == "x" else None)
                for url, d in _PLAIN_PARTS.findall(text.rstrip("\t\n\f\r ,"))]  # no tail for findall to retry on
    return parse_srcset_by_steps(text)


def parse_srcset_by_steps(text: str) -> list[SrcsetCandidate]:
    """The spec's splitting loop and descriptor parser, step by step (any input)."""
    out: list[SrcsetCandidate] = []
    pos, end = 0, len(text)
    while True:
        pos = _SEPARATORS.match(text, pos).end()
        if pos >= end:
            return out
        url_end = _URL.match(text, pos).end()
        url = text[pos:url_end]
        pos = url_end
        if url.endswith(","):
            out.append(SrcsetCandidate(url.rstrip(",")))  # a candidate with no descriptors
            continue
        pos = _SPACE.match(text, pos).end()
        region = _DESCRIPTORS.match(text, pos)
        pos = region.end()
        values = _descriptor_values(_TOKEN.findall(region.group(0).removesuffix(",")))
        if values is not None:
            out.append(SrcsetCandidate(url, *values))


def rank(candidate: SrcsetCandidate) -> tuple[int, float]:
    """Sort key of "largest": any width descriptor beats any density; no descriptor is 1x."""
    if candidate.width is not None:
        return 1, float(candidate.width)
    return 0, 1.0 if candidate.density is None else candidate.density


NO_RANK = (-1, -1.0)


def best_ranked(ranked: list[tuple[tuple[int, float], str]],
                usable: Callable[[str], str | None]) -> tuple[str | None, tuple]:
    """``usable(url)`` of the largest (rank, url) for which it is not None (the first of equals), and its rank.

    Candidates are tried largest first, so ``usable`` usually runs once.
    """
    if not ranked:
        return None, NO_RANK
    top = max(ranked, key=_first)  # max keeps the first of equals
    found = usable(top[1])
    if found is not None:
        return found, top[0]
    order = sorted(ranked, key=_first, reverse=True)  # stable: equals keep their order, so top comes first
    for key, url in order[1:]:
        found = usable(url)
        if found is not None:
            return found, key
    return None, NO_RANK


def _first(pair: tuple) -> tuple:
    return pair[0]


def best(candidates: Iterable[SrcsetCandidate], usable: Callable[[str], str | None]) -> tuple[str | None, tuple]:
    """``usable(url)`` of the largest candidate for which it is not None (the first of equals), and its rank."""
    return best_ranked([(rank(c), c.url) for c in candidates], usable)


def largest(candidates: Iterable[SrcsetCandidate], usable: Callable[[str], str | None]) -> str | None:
    """``usable(url)`` of the largest candidate for which it is not None (the first of equals)."""
    return best(candidates, usable)[0]

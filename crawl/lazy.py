"""Lazy-loaded images: the attributes that hold the real URL, and the URLs that are only placeholders.

Survey of ``../shared/data`` (276 pages and the 71 HTML responses of its WARCs): attributes of
``<img>``/``<source>`` whose values are image URLs, with counts of tags / pages.

- read, one URL (first found wins): ``data-src`` (936 / 67), ``data-lazy-src`` (105 / 7),
  ``data-original`` (105 / 7), ``data-lazy`` (30 / 2), ``data-hi-res-src`` (3 / 2),
  ``data-high-res-src`` (2 / 2), ``datasrc`` (17 / 1), ``data-src-large`` (33 / 2, the largest of
  CNN's ``data-src-<size>`` set), ``data-source-standard`` (118 / 1), and ``data-delayed-url``,
  ``data-ghost-url`` (seen on unseen pages, issue 13). A value that is a JSON object (MSN's
  ``data-src='{"default": "//…"}'``, 132 / 2) gives its ``default`` (or that object's ``src``).
- read, srcset: ``srcset``, ``data-srcset`` (342 / 23 on ``<img>``, 232 / 11 on ``<source>``),
  ``data-lazy-srcset`` (91 / 7).
- not read: other images or fallbacks, never the displayed one: ``data-pin-media``,
  ``data-orig-file``/``-medium-file``/``-large-file``, ``data-original-mos``, ``data-fallback-src``,
  ``data-normal`` (a placeholder), ``data-default``, ``data-low-res-src``, ``onerror``.

A placeholder is a ``data:`` URI, a known spacer or placeholder file name (``spacer.gif``,
``blank.gif``, ``placeholder*``, ``preloader*``, ``pixel.gif``, ``transparent*.png``, ``lazy*``,
``grey.gif``, ``1x1*``, ``*-placeholder.png``, …: the survey's names are in the tests), or a ``src``
whose declared size is at most 2×2 pixels.
"""

from __future__ import annotations

import json
import re
from functools import cache

LAZY_URL_ATTRS = ("data-src", "data-lazy-src", "data-original", "data-lazy", "data-hi-res-src", "data-high-res-src",
                  "datasrc", "data-delayed-url", "data-ghost-url", "data-src-large", "data-source-standard")
SRCSET_ATTRS = ("srcset", "data-srcset", "data-lazy-srcset")
TINY_SIDE = 2

_ANY_EXT = ("gif", "png", "svg", "jpg", "jpeg", "webp")
_FLAT_EXT = ("gif", "png", "svg")  # the weak words name a placeholder only in these, never in a photo format
_STRONG = "placeholder|preloader|spacer|1x1|transparent"
_WEAK = "blank|clear|cleardot|pixel|trans|gr[ae]y|empty|dot|loading|loader|lazy|lazyload|holder"
_STRONG_WORDS = frozenset(_STRONG.split("|"))
_WEAK_WORDS = frozenset(w.replace("gr[ae]y", "grey") for w in _WEAK.split("|")) | {"gray"}
# Words that qualify a placeholder without naming a subject: sizes, colours, shapes, "image", "big".
_QUALIFIERS = frozenset(["white", "black", "bg", "horizontal", "vertical", "square", "wide", "tall", "image", "img", "big", "small", "default", "native", "light", "dark"])
_NAME_TOKEN = re.compile(r"[-_.]")
_CODE = re.compile(r"[a-z]{0,8}[0-9][a-z0-9]*|[a-z]{1,2}")  # digits, hashes, sizes (14x9), theme codes, 'nn', 'ad'
def hinted(name: str) -> bool:
    """Whether a file name holds a word that every word of ``_STRONG`` and ``_WEAK`` holds (a test checks it);
    string searches, twice as fast as one regex search here."""
    return ("load" in name or "lazy" in name or "holder" in name or "spacer" in name or "1x1" in name
            or "trans" in name or "blank" in name or "clear" in name or "gray" in name or "grey" in name
            or "empty" in name or "dot" in name or "pixel" in name)
_SRCSET_SHAPED = re.compile(r"[\t\n\f\r ][0-9.]+[wxh](?:[\t\n\f\r ]*,|[\t\n\f\r ]*$)")
# Browser aliases of types Pillow registers under another name.
_MIME_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png",
                 "image/apng": "image/png", "image/vnd.microsoft.icon": "image/x-icon"}


def lazy_url(value: str | None) -> str | None:
    """The URL in a lazy attribute's value (a JSON object gives its ``default``, or the ``src`` in it)."""
    if not value:
        return None
    value = value.strip(" \t\n\f\r")
    if value[:1] == "#" or _SRCSET_SHAPED.search(value):
        return None  # a fragment names the page itself; a srcset in a URL attribute names no one image
    if value[:1] in "{[":
        try:
            data = json.loads(value)
        except ValueError:
            return None
        found = data.get("default") if isinstance(data, dict) else None
        if isinstance(found, dict):  # {"default": {"src": "//…", "w": …}}
            found = found.get("src")
        return found if isinstance(found, str) else None
    return value


def is_placeholder(url: str) -> bool:
    """Whether a resolved URL is a ``data:`` URI or a known spacer/placeholder file."""
    if url[:5].lower() == "data:":
        return True
    path = url.split("?", 1)[0]
    name = path[path.rfind("/") + 1:].lower()
    if not hinted(name):  # most names hold none of the words: decided without more work
        return False
    return placeholder_name(name.split("#", 1)[0])


def _word_kind(token: str) -> int:
    """2 for a strong placeholder word (alone or with a qualifier glued on: 'preloaderbig'), 1 for a weak one,
    0 for a qualifier or a code, -1 for a word that names something (so the file is a real image)."""
    if token in _STRONG_WORDS:
        return 2
    if token in _WEAK_WORDS:
        return 1
    if token in _QUALIFIERS or _CODE.fullmatch(token):
        return 0
    for word in _STRONG_WORDS:
        if token.startswith(word) and _word_kind(token[len(word):]) >= 0:
            return 2
    return -1


def placeholder_name(name: str) -> bool:
    """Whether a file name is a placeholder's: every word of its stem is a placeholder word, a qualifier (size,
    colour, shape) or a code, and one is a placeholder word (a weak one only in a flat format). A word naming a
    subject makes it a real image: 'acme-logo-transparent.png', 'grey-heron.png', 'phone-holder.png'."""
    stem, _, ext = name.rpartition(".")
    if ext not in _ANY_EXT or not stem:
        return False
    kinds = [_word_kind(t) for t in _NAME_TOKEN.split(stem) if t]
    if not kinds or min(kinds) < 0:
        return False
    return max(kinds) == 2 or (max(kinds) == 1 and ext in _FLAT_EXT)


def tiny_declared(width: int | None, height: int | None) -> bool:
    """Whether an ``<img>`` declares a size and every declared side is at most ``TINY_SIDE`` pixels."""
    if width is None:
        return height is not None and height <= TINY_SIDE
    return width <= TINY_SIDE and (height is None or height <= TINY_SIDE)


@cache
def decodable_types() -> frozenset[str]:
    """The image MIME types Pillow can open here, plus the browsers' aliases of them."""
    from PIL import Image

    Image.init()
    types = {Image.MIME[f] for f in Image.OPEN if Image.MIME.get(f, "").startswith("image/")}
    return frozenset(types | {alias for alias, real in _MIME_ALIASES.items() if real in types})


def source_type_ok(attrs: dict[str, str | None]) -> bool:
    """Whether a ``<source>`` may be used: no ``type``, or a type Pillow decodes (parameters ignored)."""
    declared = attrs.get("type")
    if declared is None:
        return True
    return declared.split(";", 1)[0].strip().lower() in decodable_types()

"""A targeted HTML scanner: tokenizes only the tags extraction needs, as the HTML5 tokenizer does.

It never builds a tree. Every tag, kept or skipped, is read by the one HTML5 attribute grammar
(quoted values may hold ``<`` and ``>``; lower-cased names, first duplicate wins, character
references decoded with the attribute exception), so markup inside an attribute value is never
seen as tags, and a tag cut by the end of the page is dropped with everything after it, as HTML5
drops it. It skips what hides markup (comments, bogus comments, raw-text and RCDATA elements,
script data with its escape states). One regex match passes over everything that needs no Python
(text, other tags, comments, whole raw-text elements, a ``<meta>`` no ``name`` of which can say
robots) and ends at the next tag that does, reading an ``<img>`` found there in the same match.

``<picture>``: an ``<img>`` gets the ``<source>`` elements that are its siblings before it, as HTML5
chooses them: inside a picture every tag is tokenized and the elements open inside it are tracked
(void elements, implied ``</p>``/``</li>``, a ``</picture>`` ignored past a special element), so sources
in a nested ``<noscript>`` or an outer picture are not used. Where a tag inside a picture depends on
what is open around it (an end tag with no such element inside, a block start tag closing an outer
``<p>``, a new ``<li>`` or ``<a>``), ``_Outside`` works that out by a second pass over the page, run only
then and never over the same text twice. Work is linear in the nesting depth; at most ``MAX_SOURCES``
sources are kept per picture.

Foreign content: inside ``<svg>``/``<math>`` tags are foreign (no raw text, ``/>`` closes, CDATA sections,
``<image>`` and ``<base>`` are SVG's) until the end tag or a breakout tag (``<img>``, ``<p>``, ``<div>``, …);
integration points (``<foreignObject>``, ``<desc>``, ``<title>``, ``<mi>``…) hold HTML. Outside it,
``<image>`` is an ``<img>``. ``<template>`` contents are inert: nothing in them is a page image, link or
base. Agreement with html5lib and with bs4 + lxml is measured by the tests.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable
from html import unescape
from html.entities import html5 as _ENTITIES

from webclip.crawl.page import ImgTag, ParsedPage, robots_tokens

_DELIM = r"(?=[\t\n\f\r />])"
_RAW = "script|style|textarea|title|xmp|iframe|noembed|noframes|plaintext"
_TAGS = "img|source|picture|base|html|meta|image|svg|math|template"
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
MAX_SOURCES = 64
_NO_SOURCES: list = []  # the sources of every <img> outside a picture: one shared list, never changed


def _ci_trie(words: list[str]) -> str:
    """A case-insensitive alternation factored by shared prefixes (much faster than ``re.IGNORECASE``)."""
    groups: dict[str, list[str]] = {}
    for w in words:
        groups.setdefault(w[0], []).append(w[1:])
    parts = []
    for first, rests in sorted(groups.items()):
        head = f"[{first.lower()}{first.upper()}]" if first.isalpha() else re.escape(first)
        tails = [r for r in rests if r]
        if not tails:
            parts.append(head)
        else:
            tail = _ci_trie(tails)
            parts.append(head + ("(?:" + tail + ")" + ("?" if len(tails) < len(rests) else "")))
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"




def _names(links: bool) -> list[str]:
    return (_TAGS + ("|a" if links else "") + "|" + _RAW).split("|")


_WS = r"[\t\n\f\r ]"
_ATTR_NAME = r"[^\t\n\f\r />][^\t\n\f\r />=]*+"


def _attr_re(group: str = "(", guard: str = "") -> str:
    """One attribute: separator, name (may start with '='), then a value if '=' follows (the common '="…"'
    tried first); a value cut by the end of the page fails the whole tag. Possessive, so it never backtracks
    far. ``group`` opens the name and value groups ("(?:" for none); a value must start where ``guard`` allows."""
    g, v = group, guard + group
    return (rf"""[\t\n\f\r /]*+{g}{_ATTR_NAME})(?:="{v}[^"]*+)"|{_WS}*+={_WS}*+(?:"{v}[^"]*+)"|'{v}[^']*+)'"""
            rf"""|(?!["']){v}[^\t\n\f\r >]*+))|(?!{_WS}*+=))""")


_ATTR_RE = _attr_re()
# The common shape ' name="value"' first, in fewer steps: it reads exactly what the general loop would.
_FAST_ATTRS_RE = r"""(?:[\t\n\f\r ][-a-zA-Z0-9_:.]++="[^"]*+")*+"""
# A whole tag's rest; a '>' right after the common shape ends it before the general loop starts.
_ATTRS_RE = _FAST_ATTRS_RE + "(?:>|(?:" + _attr_re("(?:") + r")*+[\t\n\f\r /]*+>)"
# A <meta> whose 'name' attributes cannot say robots or webclip: the grammar, with values of attributes named
# 'name' barred from starting with r, w or '&' (a character reference may spell either); any other <meta> goes
# to Python, which reads its attributes.
_NAME_ATTR = r"[nN][aA][mM][eE](?=[\t\n\f\r />=])"
_META_ATTRS_RE = (r"(?:[\t\n\f\r ](?!" + _NAME_ATTR + r')[-a-zA-Z0-9_:.]++="[^"]*+")*+'  # the common shape
                  + r"(?:(?=[\t\n\f\r /]*+" + _NAME_ATTR + ")" + _attr_re("(?:", "(?![rRwW&])")  # a name
                  + r"|(?![\t\n\f\r /]*+" + _NAME_ATTR + ")" + _attr_re("(?:")  # any other attribute
                  + r")*+[\t\n\f\r /]*+>")
_COMMENT_RE = r"<!--(?:>|->|(?:[^-]++|-(?!-!?>))*+--!?>)"
_NAME_RE = r"[A-Za-z][^\t\n\f\r />]*+"


def _raw_element_re(name: str) -> str:
    """A whole raw-text element; for script, only one with no '<!--' (escapes are left to Python)."""
    n = _ci_trie([name])
    hidden = "!--|" if name == "script" else ""
    return ("<" + n + _DELIM + _ATTRS_RE + r"(?:[^<]++|<(?!" + hidden + "/" + n + _DELIM + "))*+"
            "</" + n + _DELIM + _ATTRS_RE)


_BY_FREQUENCY = "aspmihtbnx"  # first letters of tags on the real pages, most frequent first: tried in this order


def _other_starts(names: list[str]) -> str:
    """Start tags of no wanted name, one alternative per first letter, each opening with its letter class:
    the regex engine passes over an alternative whose class does not match without entering it."""
    by_first: dict[str, list[str]] = {}
    for name in names:
        by_first.setdefault(name[0].lower(), []).append(name[1:])
    other = "".join(c for c in string.ascii_letters if c.lower() not in by_first)
    alts = ["[" + other + "]"]
    for first, rests in sorted(by_first.items(), key=lambda item: _BY_FREQUENCY.find(item[0])):
        tails = [r for r in rests if r]
        wanted = ("(?:" + _ci_trie(tails) + ")" + ("?" if len(tails) < len(rests) else "")) if tails else ""
        alts.append(f"[{first}{first.upper()}](?!{wanted}{_DELIM})")
    return "(?:" + "|".join(alts) + r")[^\t\n\f\r />]*+" + _ATTRS_RE  # one copy of the grammar for them all


def _skip_pattern(links: bool, foreign_body: str) -> str:
    """Everything up to the next tag that needs Python: text, whole tags of other names (attributes read
    by the grammar), end tags other than ``</picture>``, ``<meta>`` tags that cannot be robots, comments,
    bogus comments, complete raw-text elements."""
    other_end = "/(?!" + _ci_trie(["picture", "template"]) + _DELIM + ")" + _NAME_RE + "(?:>|" + _ATTRS_RE + ")"
    meta = _ci_trie(["meta"]) + _DELIM + _META_ATTRS_RE
    raws = [_raw_element_re(n).removeprefix("<") for n in _RAW.split("|") if n != "plaintext"]
    bogus = [r"!(?!--)[^>]*+>", r"\?[^>]*+>", r"/(?![A-Za-z>])[^>]*+>"]
    # One '<', then what follows it, most frequent first: end tags are half of all tags.
    rests = [other_end, _other_starts(_names(links)), meta, _COMMENT_RE.removeprefix("<"), *bogus, *raws,
             _whole_foreign("svg", foreign_body), _whole_foreign("math", foreign_body), r"(?![A-Za-z!?/])"]
    return r"[^<]*+(?:<(?:" + "|".join(rests) + r")[^<]*+)*+"


# Foreign content (inside <svg>/<math>): start tags that leave it (HTML5's breakout list), the foreign elements
# tracked (roots and integration points, whose content is HTML), and the end tags that may leave it.
_BREAKOUT = ["b", "big", "blockquote", "body", "br", "center", "code", "dd", "div", "dl", "dt", "em", "embed", "h1", "h2", "h3", "h4", "h5", "h6", "head", "hr", "i", "img", "li", "listing", "menu", "meta", "nobr", "ol", "p", "pre", "ruby", "s", "small", "span", "strong", "strike", "sub", "sup", "table", "tt", "u", "ul", "var"]
_TRACKED = ("svg", "math", "foreignobject", "desc", "title", "mi", "mo", "mn", "ms", "mtext", "annotation-xml")
_INTEGRATION = frozenset([("svg", "foreignobject"), ("svg", "desc"), ("svg", "title"), ("math", "mi"),
                          ("math", "mo"), ("math", "mn"), ("math", "ms"), ("math", "mtext"),
                          ("math", "annotation-xml+html")])


def _foreign_skip_pattern(leaves: list[str], links: bool) -> str:
    """Everything inside foreign content up to the next tag that needs Python: text, comments, CDATA sections,
    foreign tags that are not tracked (``<path/>``, ``<g>``, ``<style>``: no raw text here), end tags of them."""
    ends = "/(?!" + _ci_trie(sorted({*_TRACKED, *leaves})) + _DELIM + ")" + _NAME_RE + "(?:>|" + _ATTRS_RE + ")"
    cdata = r"!\[CDATA\[(?:[^\]]++|\](?!\]>))*+\]\]>"
    bogus = [r"!(?!--|\[CDATA\[)[^>]*+>", r"\?[^>]*+>", r"/(?![A-Za-z>])[^>]*+>"]
    starts = sorted({*_BREAKOUT, *_TRACKED, "font", *(["a"] if links else [])})
    # an SVG <title> or <desc> holding text only (its HTML content): the common accessible icon
    texts = [n + _DELIM + _ATTRS_RE + "(?<!/>)[^<]*+</" + n + _DELIM + "(?:>|" + _ATTRS_RE + ")"
             for n in (_ci_trie(["title"]), _ci_trie(["desc"]))]
    rests = [ends, _other_starts(starts), *texts, _COMMENT_RE.removeprefix("<"), cdata, *bogus, r"(?![A-Za-z!?/])"]
    return r"[^<]*+(?:<(?:" + "|".join(rests) + r")[^<]*+)*+"


def _whole_foreign(name: str, body: str) -> str:
    """A whole ``<svg>``/``<math>`` (after its '<') whose content needs no Python: the common inline icon."""
    n = _ci_trie([name])
    return n + _DELIM + _ATTRS_RE + "(?<!/>)" + body + "</" + n + _DELIM + "(?:>|" + _ATTRS_RE + ")"


# A tag whose attributes are all ' name="value"' with lower-case names: what the grammar reads there, in fewer steps.
_PLAIN_TAG_RE = r"""(?:[\t\n\f\r ][-a-z0-9_:.]++="[^"]*+")*+[\t\n\f\r /]*+>"""
_SKIP_TEXT = re.compile(r"[^<]*+(?:<(?![A-Za-z!?/])[^<]*+)*+")  # inside a <picture>: every tag counts
_NEXT = re.compile(r"<(?:(!--)|([!?]|/(?![A-Za-z>]))|(/?)(" + _NAME_RE + "))")
_ATTR = re.compile(_ATTR_RE)
_START_TAG = re.compile(_FAST_ATTRS_RE + "(?:" + _attr_re("(?:") + r")*+([\t\n\f\r /]*+)>")  # group 1: '/' ends it?
_ATTRS = re.compile(_ATTRS_RE)
_PLAIN_TAG = re.compile(_PLAIN_TAG_RE)
_PLAIN_ATTR = re.compile(r'[\t\n\f\r ]([-a-z0-9_:.]++)="([^"]*+)"')
_CHARREF = re.compile(r"&(#[xX][0-9a-fA-F]++;?|#[0-9]++;?|[A-Za-z0-9]++;?)")
_COMMENT_END = re.compile(r"--!?>")
_SCRIPT_TOKEN = re.compile(r"<!--|-->|<(/?)(?i:script)" + _DELIM)
_RAW_END = {name: re.compile(r"</(?i:" + name + ")" + _DELIM) for name in _RAW.split("|")}


def _charref(match: re.Match[str]) -> str:
    ref = match.group(1)
    if ref[0] == "#":
        return unescape(match.group(0))
    if ref[-1] == ";" and ref in _ENTITIES:
        return _ENTITIES[ref]
    word = ref.rstrip(";")
    for end in range(len(word), 1, -1):  # the longest legacy name (no ';') that prefixes the word
        if word[:end] in _ENTITIES:
            following = word[end] if end < len(word) else match.string[match.end():match.end() + 1]
            if following and (following in _ALNUM or following == "="):
                return match.group(0)  # the attribute exception: '&copy=1' and '&ampx' stay as written
            return _ENTITIES[word[:end]] + ref[end:]
    return match.group(0)


def attr_value(raw: str) -> str:
    """An attribute value as the HTML5 tokenizer delivers it."""
    if "\r" in raw:
        raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    if "&" in raw:  # '&amp;' alone (URLs with queries) needs no other reference read
        raw = raw.replace("&amp;", "&") if raw.count("&") == raw.count("&amp;") else _CHARREF.sub(_charref, raw)
    return raw.replace("\0", "\ufffd") if "\0" in raw else raw


def plain_attrs(rest: str) -> dict[str, str | None] | None:
    """Attributes of a tag's rest that ``_PLAIN_TAG`` matched, or None when it holds a CR or NUL."""
    if "\r" in rest or "\0" in rest:
        return None
    pairs = _PLAIN_ATTR.findall(rest)
    if "&" in rest:
        pairs = [(name, attr_value(value) if "&" in value else value) for name, value in pairs]
    attrs: dict[str, str | None] = dict(pairs)
    if len(attrs) < len(pairs):  # a repeated name: the first one wins
        attrs = {}
        for name, value in pairs:
            attrs.setdefault(name, value)
    return attrs


def read_attrs(text: str, pos: int) -> tuple[dict[str, str | None], int]:
    """Attributes of the tag whose name ends at ``pos``, and the position after its ``>`` (-1: none)."""
    plain = _PLAIN_TAG.match(text, pos)
    if plain is not None and (attrs := plain_attrs(text[pos:plain.end()])) is not None:
        return attrs, plain.end()
    whole = _ATTRS.match(text, pos)
    if whole is None:
        return {}, -1  # the page ends inside the tag
    attrs = {}
    for name, plain, dq, sq, uq in _ATTR.findall(text, pos, whole.end()):
        name = name.lower()
        if name not in attrs:
            value = plain or dq or sq or uq
            attrs[name] = attr_value(value) if value else ""
    return attrs, whole.end()


def read_attr(text: str, pos: int, wanted: str) -> tuple[str | None, int]:
    """One attribute (its first occurrence) of the tag whose name ends at ``pos``, and the position after ``>``."""
    whole = _ATTRS.match(text, pos)
    if whole is None:
        return None, -1
    for m in _ATTR.finditer(text, pos, whole.end()):
        if m.group(1).lower() == wanted:
            value = m.group(2) or m.group(3) or m.group(4) or m.group(5)  # as read_attrs: a missing value is ""
            return (attr_value(value) if value else ""), whole.end()
    return None, whole.end()


def _tag_end(text: str, pos: int) -> int:
    """The position after the ``>`` of a tag whose name ends at ``pos`` (-1: the page ends inside it)."""
    whole = _ATTRS.match(text, pos)
    return -1 if whole is None else whole.end()


def _skip_script(text: str, pos: int) -> int:
    """The position after ``</script>`` following the script data states (escaped, double-escaped)."""
    state = 0  # 0 data, 1 escaped (inside <!--), 2 double-escaped (a <script> inside <!--)
    while True:
        m = _SCRIPT_TOKEN.search(text, pos)
        if m is None:
            return -1
        token = m.group(0)
        pos = m.end()
        if token == "<!--":
            state = state or 1
            pos -= 2  # '<!-->' and '<!--->' close at once, in any state: let '-->' overlap the opener
        elif token == "-->":
            state = 0
        elif m.group(1):  # </script
            if state == 2:
                state = 1
            else:
                return _tag_end(text, pos)
        elif state == 1:  # <script inside an escape
            state = 2


def _skip_raw(text: str, pos: int, name: str) -> int:
    """The position after the end tag of a raw-text or RCDATA element whose start tag ends at ``pos``."""
    if name == "script":
        return _skip_script(text, pos)
    end = _RAW_END[name].search(text, pos) if name != "plaintext" else None
    return -1 if end is None else _tag_end(text, end.end())


def _comment_end(text: str, pos: int) -> int:
    """The position after a comment whose ``<!--`` ends at ``pos``."""
    if text.startswith(">", pos):
        return pos + 1
    if text.startswith("->", pos):
        return pos + 2
    end = _COMMENT_END.search(text, pos)
    return -1 if end is None else end.end()


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_HEADINGS = "h1 h2 h3 h4 h5 h6"
_BLOCKS = (f"address article aside blockquote center details dialog dir div dl fieldset figcaption figure footer "
           f"header hgroup main menu nav ol p search section summary ul pre listing form {_HEADINGS}")
# Start tags that open nothing in body: void elements and tags the tree builder ignores there.
_NO_ELEMENT = _words("area base basefont bgsound br col embed frame hr image img input keygen link meta param "
                     "source track wbr caption colgroup head tbody td tfoot th thead tr html body frameset")
_CLOSES_P = _words(_BLOCKS + " table li dd dt")
_SPECIAL = _words(_BLOCKS + " applet area base basefont bgsound body br button caption col colgroup dd dt embed frame "
                  "frameset head hr html iframe img input keygen li link marquee meta noembed noframes noscript "
                  "object param plaintext script select source style table tbody td template textarea tfoot th "
                  "thead title tr track wbr xmp")
# End tags with their own tree-builder rule: they close the element if it is in scope (not behind one of
# _SCOPE), and one with no such element open inside the pictures closes an element around them.
_CLOSES_OUTSIDE = _words(_BLOCKS + " button li dd dt a b big code em font i nobr s small strike strong tt u "
                         "applet marquee object") - {"form"}  # </form> takes the form alone off the stack
_FORMATTING = _words("a b big code em font i nobr s small strike strong tt u")
_SCOPE = _words("applet caption html table td th marquee object template")
_SCOPES = {"p": _SCOPE | {"button"}, "li": _SCOPE | {"ol", "ul"}}
_LIST_ITEMS = {"li": ("li",), "dd": ("dd", "dt"), "dt": ("dd", "dt")}
_SOFT_SPECIAL = _words("address div p")  # special elements a new list item looks past
# Start tags that do not first reopen formatting elements a closed parent left open (HTML5's "reconstruct
# the active formatting elements" runs before every other start tag and before text).
_NO_REOPEN = _words(_BLOCKS + " li dd dt table hr source param track textarea script style title meta base link "
                    "noframes plaintext")
_MOVE_LIMIT = 64
_CLOSES_OUTSIDE_START = _CLOSES_P | frozenset(["li", "dd", "dt", "a"])
# End tags that leave foreign content when no foreign element of that name is open: the breakouts </p> and </br>,
# and the end tags of HTML elements that close the element around the <svg> they name (assumed open there).
_LEAVES = sorted((_CLOSES_OUTSIDE - _FORMATTING) | {"p", "br", "template"})
_FOREIGN_SKIP_RE = {links: _foreign_skip_pattern(_LEAVES, links) for links in (True, False)}
_FOREIGN_SKIP = {links: re.compile(pattern) for links, pattern in _FOREIGN_SKIP_RE.items()}
# The skip, then an <img> found there (outside every picture: the common image, read without more regex calls).
_SKIP = {links: re.compile(_skip_pattern(links, _FOREIGN_SKIP_RE[links])
                           + r"(?:(<[iI][mM][gG])" + _DELIM + "(" + _PLAIN_TAG_RE + ")?)?")
         for links in (True, False)}
_BREAKOUT_SET = frozenset(_BREAKOUT)
_LEAVES_SET = frozenset(_LEAVES)
_FONT_BREAKS = ("color", "face", "size")  # a <font> with one of these leaves foreign content


class _Sources:
    """The ``<source>`` children of one open ``<picture>`` so far."""

    __slots__ = ("sources", "shared")

    def __init__(self) -> None:
        self.sources: list[dict[str, str | None]] = []
        self.shared: list[dict[str, str | None]] = []  # handed to the last <img>; reused while unchanged

    def snapshot(self) -> list[dict[str, str | None]]:
        if len(self.shared) != len(self.sources):
            self.shared = self.sources.copy()
        return self.shared


class _OpenElements:
    """The elements open inside the outermost open ``<picture>``, as the tree builder's stack holds them
    (``outer`` gives the elements open around it, worked out when a tag needs them); with no ``outer``, the
    elements open in the whole page.

    Index lists per name and per kind of element keep every step O(1) amortized.
    """

    def __init__(self, outer: Callable[[], _OpenElements] | None = None) -> None:
        self.outer = outer
        self.names: list[str] = []
        self.where: dict[str, list[int]] = {}
        self.specials: list[int] = []
        self.hard_specials: list[int] = []  # specials other than address, div, p
        self.pictures: dict[int, _Sources] = {}
        self.reopen: list[str] = []  # formatting elements closed with a parent: reopened before the next content

    def parent_picture(self) -> _Sources | None:
        """The ``<picture>`` a new element would be a child of, or None."""
        return self.pictures.get(len(self.names) - 1)

    def last(self, name: str) -> int:
        found = self.where.get(name)
        return found[-1] if found else -1

    def push(self, name: str) -> None:
        i = len(self.names)
        self.names.append(name)
        self.where.setdefault(name, []).append(i)
        if name in _SPECIAL:
            self.specials.append(i)
            if name not in _SOFT_SPECIAL:
                self.hard_specials.append(i)
        if name == "picture":
            self.pictures[i] = _Sources()

    def pop_to(self, i: int, closed: bool = True) -> None:
        """Pop the element at index ``i`` and all above it; formatting elements above it are to be reopened
        (and the one at ``i`` too unless its own end tag ``closed`` it)."""
        popped = []
        while len(self.names) > i:
            j = len(self.names) - 1
            name = self.names.pop()
            self.where[name].pop()
            for kind in (self.specials, self.hard_specials):
                if kind and kind[-1] == j:
                    kind.pop()
            self.pictures.pop(j, None)
            if name in _FORMATTING and not (closed and j == i):
                popped.append(name)
        self.reopen += popped[::-1]
        if not self.names:
            self.reopen.clear()  # outside every picture they no longer matter

    def reopen_formatting(self) -> None:
        """HTML5's "reconstruct the active formatting elements"."""
        for name in self.reopen[:_MOVE_LIMIT]:
            self.push(name)
        self.reopen.clear()

    def in_scope(self, name: str) -> bool:
        """HTML5's "has an element in scope" (button scope for p, list item scope for li)."""
        i = self.last(name)
        return i >= 0 and max(self.last(n) for n in _SCOPES.get(name, _SCOPE)) < i

    def list_item(self, name: str) -> int:
        """The open list item a new ``<li>``/``<dd>``/``<dt>`` closes (-1: none; a special element hides it)."""
        item = max(self.last(n) for n in _LIST_ITEMS[name])
        return item if item >= 0 and not (self.hard_specials and self.hard_specials[-1] > item) else -1

    def closes_outside(self, name: str) -> bool:
        """Whether a start tag that closes nothing inside the pictures closes an element open around them."""
        if self.outer is None or not self.names:
            return False
        if name in _CLOSES_P and max(self.last(n) for n in _SCOPES["p"]) < 0 and self.outer().in_scope("p"):
            return True
        if name in _LIST_ITEMS and not self.hard_specials and self.outer().list_item(name) >= 0:
            return True
        return name == "a" and self.outer().last("a") >= 0

    def start(self, name: str) -> None:
        """A start tag of an element that is not void: close what it closes, then open it."""
        if name == "a":  # a new <a> first ends the open one
            if "a" in self.reopen:
                self.reopen.remove("a")
            elif self.last("a") >= 0:
                self.end("a")
        if name not in _NO_REOPEN and self.reopen:
            self.reopen_formatting()
        if name in _CLOSES_P and (p := self.last("p")) > max(self.last(n) for n in _SCOPES["p"]):
            self.pop_to(p)
        if name in _LIST_ITEMS and (item := self.list_item(name)) >= 0:
            self.pop_to(item)
        elif name in _CLOSES_OUTSIDE_START and self.closes_outside(name):
            self.pop_to(0, closed=False)  # it closes an element around the pictures, and them with it
            return
        self.push(name)

    def end(self, name: str) -> None:
        """An end tag: close the element it names unless HTML5 ignores it here."""
        i = self.last(name)
        if i < 0:
            if name in self.reopen:
                self.reopen.remove(name)
            elif name in _CLOSES_OUTSIDE and self.outer is not None and self.outer().in_scope(name):
                self.pop_to(0, closed=False)  # it names an element around the pictures
            return  # no such element in scope: HTML5 ignores it
        if name == "form":  # the form element alone leaves the stack
            if self.in_scope("form"):
                self.pop_at(i)
            return
        if name in _FORMATTING and self.specials and self.specials[-1] > i:
            self.pop_at(i)  # the adoption agency: the element moves below the block after it
            self.push(name)
            return
        elif name in _CLOSES_OUTSIDE:
            if max(self.last(n) for n in _SCOPES.get(name, _SCOPE)) < i:
                self.pop_to(i)
        elif not (self.specials and self.specials[-1] > i):  # past a special element HTML5 ignores it
            self.pop_to(i)

    def pop_at(self, i: int) -> None:
        """Take out the element at index ``i`` alone (rare: the adoption agency; bounded, so never quadratic)."""
        above = self.names[i + 1:]
        reopen = self.reopen[:]
        self.pop_to(i)
        self.reopen = reopen
        for name in above[:_MOVE_LIMIT]:
            self.push(name)


class _Outside:
    """The elements open around the outermost ``<picture>``: a second pass tokenizing every tag, run only when
    a tag inside a picture needs them, from where it last stopped (so at most once over the page)."""

    def __init__(self, text: str):
        self.text, self.pos, self.open = text, 0, _OpenElements()

    def at(self, stop: int) -> _OpenElements:
        """The open elements just before position ``stop`` (a tag's '<')."""
        text, pos, open_ = self.text, self.pos, self.open
        while pos < stop:
            text_end = _SKIP_TEXT.match(text, pos)  # always matches, maybe empty
            pos = text_end.end() if text_end else pos
            m = _NEXT.match(text, pos) if pos < stop else None
            if m is None:
                pos += pos < stop
            elif m.group(1):
                pos = _comment_end(text, m.end())
            elif m.group(2):
                end = text.find(">", m.end())
                pos = -1 if end < 0 else end + 1
            else:
                name, pos = m.group(4).lower(), _tag_end(text, m.end())
                if pos >= 0 and m.group(3):
                    open_.end(name)
                elif pos >= 0 and name in _RAW_END:
                    pos = _skip_raw(text, pos, name)
                elif pos >= 0 and name not in _NO_ELEMENT:
                    open_.start(name)
            if pos < 0:
                pos = len(text)
        self.pos = pos
        return open_


class _Scan:
    """The state of one scan: what was found so far and the open ``<picture>`` elements."""

    def __init__(self, text: str, links: bool):
        self.text, self.links = text, links
        self.imgs: list[ImgTag] = []
        self.hrefs: list[str] = []
        self.metas: list[str] = []
        self.base_href: str | None = None
        self.lang: str | None = None
        self.seen_lang = False
        self.open = _OpenElements(self.outside)
        self.picture_at = 0  # where the outermost open <picture> starts
        self.around: _Outside | None = None
        self.start = _STARTS[links]
        self.foreign: list[tuple[str, str]] = []  # (namespace, name) of the tracked foreign elements open
        self.foreign_names: Counter[str] = Counter()  # how many of each name are open there: end tags in O(1)
        self.templates: list[int] = []  # per open <template>: how many elements were open inside pictures then

    def run(self) -> ParsedPage:
        """Scan the whole text."""
        text, skip_out, skip_in, tag_at = self.text, _SKIP[self.links].match, _SKIP_TEXT.match, _NEXT.match
        pos = 0
        while True:
            if self.foreign and self.foreign[-1] not in _INTEGRATION:
                pos = self.foreign_step(pos)
                if pos < 0:
                    break
                continue
            if not self.open.names and not self.foreign:
                skipped = skip_out(text, pos)  # the regex passes over what needs no Python
                pos = skipped.end()
                if skipped.group(1):
                    pos = self.plain_img(skipped)
                    if pos < 0:
                        break
                    continue
            else:
                after = skip_in(text, pos).end()
                if self.open.reopen and text[pos:after].strip("\0"):  # text reopens formatting elements
                    self.open.reopen_formatting()
                pos = after
            m = tag_at(text, pos)
            if m is None:
                if pos >= len(text):
                    break
                pos += 1
                continue
            if m.group(1):
                pos = _comment_end(text, m.end())
            elif m.group(2):
                end = text.find(">", m.end())
                pos = -1 if end < 0 else end + 1
            elif m.group(3):
                pos = _tag_end(text, m.end())
                if pos >= 0:
                    self.end_tag(m.group(4).lower())
            else:
                pos = self.start_tag(m.group(4).lower(), m.end())
            if pos < 0:  # the page ends inside a comment or a tag: HTML5 emits nothing more
                break
        return ParsedPage(imgs=self.imgs, links=self.hrefs, base_href=self.base_href, lang=self.lang,
                          robots=robots_tokens(self.metas))

    def start_tag(self, name: str, pos: int) -> int:
        """Read one start tag whose name ends at ``pos``; the position after it (and after its raw text)."""
        handler = self.start.get(name)
        if handler is not None:
            if name in _AT_POS:
                return handler(self, pos)
            attrs, end = read_attrs(self.text, pos)
            if end >= 0:
                handler(self, attrs)
            return end
        end = _tag_end(self.text, pos)
        if end < 0:
            return end
        if name in _RAW_END:
            return _skip_raw(self.text, end, name)
        if self.open.names and name not in _NO_ELEMENT:
            self.open.start(name)
        return end

    def plain_img(self, skipped: re.Match[str]) -> int:
        """An ``<img>`` outside every picture that the skip regex ends with: the position after it (-1: cut)."""
        if skipped.group(2) is not None and (attrs := plain_attrs(skipped.group(2))) is not None:
            if not self.templates:
                self.imgs.append(ImgTag(attrs, _NO_SOURCES))
            return skipped.end()
        attrs, end = read_attrs(self.text, skipped.end(1))
        if end >= 0 and not self.templates:
            self.imgs.append(ImgTag(attrs, _NO_SOURCES))
        return end

    def end_tag(self, name: str) -> None:
        """An end tag outside foreign content, or at an integration point."""
        if self.foreign and self.foreign_end(name):
            return
        if name == "template":
            if self.templates:
                mark = self.templates.pop()
                if len(self.open.names) > mark:
                    self.open.pop_to(mark)
        elif self.open.names:
            self.open.end(name)

    def foreign_step(self, pos: int) -> int:
        """Pass over foreign content to the next tag that needs Python and read it; the position after it."""
        text = self.text
        skipped = _FOREIGN_SKIP[self.links].match(text, pos)  # always matches, maybe empty
        pos = skipped.end() if skipped else pos
        m = _NEXT.match(text, pos)
        if m is None:
            return -1 if pos >= len(text) else pos + 1
        if m.group(1):
            return _comment_end(text, m.end())
        if m.group(2):
            if text.startswith("<![CDATA[", pos):  # a CDATA section cut by the end of the page
                return -1
            end = text.find(">", m.end())
            return -1 if end < 0 else end + 1
        name = m.group(4).lower()
        if m.group(3):
            end = _tag_end(text, m.end())
            if end >= 0 and not self.foreign_end(name):
                self.end_tag(name)
            return end
        return self.foreign_start(name, m.end())

    def foreign_start(self, name: str, pos: int) -> int:
        """A start tag in foreign content: a breakout leaves it (then read as HTML), a tracked one is pushed."""
        if name == "a":  # an SVG link is a link
            href, end = read_attr(self.text, pos, "href")
            if href is not None and not self.templates:
                self.hrefs.append(href)
            return end
        if name in _BREAKOUT_SET or name == "font":
            attrs, end = read_attrs(self.text, pos) if name == "font" else ({}, 0)
            if end < 0:
                return end
            if name != "font" or any(a in attrs for a in _FONT_BREAKS):
                self.leave_foreign()
                return self.start_tag(name, pos)
        whole = _START_TAG.match(self.text, pos)
        if whole is None:
            return -1
        if not whole.group(1).endswith("/"):
            ns, top = self.foreign[-1]
            if name == "svg" and top == "annotation-xml":  # an <svg> there is read by HTML's rules: a new root
                ns = "svg"
            elif name == "annotation-xml" and ns == "math":
                encoding = (read_attrs(self.text, pos)[0].get("encoding") or "").lower()
                name += "+html" if encoding in ("text/html", "application/xhtml+xml") else ""
            self.push_foreign(ns, name)
        return whole.end()

    def foreign_end(self, name: str) -> bool:
        """An end tag by the foreign content rules: close the open foreign element it names; False when HTML's
        rules read it instead (it leaves foreign content, or the current node is an integration point)."""
        if self.foreign_names[name]:
            while self.pop_foreign() != name:  # each element is popped once: linear over the page
                pass
            return True
        if self.foreign[-1] in _INTEGRATION:
            return False
        if name in _LEAVES_SET:
            self.leave_foreign()
            return False
        return True  # ignored

    def leave_foreign(self) -> None:
        """Close foreign elements down to the nearest integration point."""
        while self.foreign and self.foreign[-1] not in _INTEGRATION:
            self.pop_foreign()

    def push_foreign(self, ns: str, name: str) -> None:
        self.foreign.append((ns, name))
        self.foreign_names[name.removesuffix("+html")] += 1

    def pop_foreign(self) -> str:
        """Close the current foreign element; its name."""
        name = self.foreign.pop()[1].removesuffix("+html")
        self.foreign_names[name] -= 1
        return name

    def foreign_root(self, pos: int, ns: str) -> int:
        """An ``<svg>`` or ``<math>`` read by HTML's rules: foreign content starts unless the tag ends with '/>'."""
        whole = _START_TAG.match(self.text, pos)
        if whole is None:
            return -1
        if not whole.group(1).endswith("/"):
            self.push_foreign(ns, ns)
        return whole.end()

    def svg(self, pos: int) -> int:
        return self.foreign_root(pos, "svg")

    def math(self, pos: int) -> int:
        return self.foreign_root(pos, "math")

    def template(self, pos: int) -> int:
        """A ``<template>``: its contents are an inert fragment, not part of the page, until its end tag."""
        end = _tag_end(self.text, pos)
        if end >= 0:
            self.templates.append(len(self.open.names))
            if self.open.names:
                self.open.start("template")
        return end

    def img(self, attrs: dict[str, str | None]) -> None:
        if self.templates:
            return
        if self.open.reopen:
            self.open.reopen_formatting()
        parent = self.open.parent_picture()
        self.imgs.append(ImgTag(attrs, parent.snapshot() if parent is not None else _NO_SOURCES))

    def source(self, attrs: dict[str, str | None]) -> None:
        if self.templates:
            return
        parent = self.open.parent_picture()
        if parent is not None and len(parent.sources) < MAX_SOURCES:
            parent.sources.append(attrs)

    def picture(self, pos: int) -> int:
        end = _tag_end(self.text, pos)
        if end >= 0:
            if not self.open.names:
                self.picture_at = pos - len("<picture")
            self.open.start("picture")
        return end

    def outside(self) -> _OpenElements:
        """The elements open around the outermost open ``<picture>``."""
        if self.around is None:
            self.around = _Outside(self.text)
        return self.around.at(self.picture_at)

    def meta(self, attrs: dict[str, str | None]) -> None:
        if not self.templates and (attrs.get("name") or "").lower() in ("robots", "webclip"):
            self.metas.append(attrs.get("content") or "")

    def base(self, attrs: dict[str, str | None]) -> None:
        if self.base_href is None and "href" in attrs and not self.templates:
            self.base_href = attrs["href"]

    def html(self, attrs: dict[str, str | None]) -> None:
        if not self.seen_lang and "lang" in attrs and not self.templates:  # a later <html> adds the attributes the first lacks
            self.seen_lang, self.lang = True, attrs["lang"]

    def anchor(self, pos: int) -> int:
        href, end = read_attr(self.text, pos, "href")
        if href is not None and not self.templates:
            self.hrefs.append(href)
        if end >= 0 and self.open.names:
            self.open.start("a")
        return end


_START: dict[str, Callable] = {"img": _Scan.img, "image": _Scan.img, "source": _Scan.source, "picture": _Scan.picture, "meta": _Scan.meta,
          "base": _Scan.base, "html": _Scan.html, "svg": _Scan.svg, "math": _Scan.math, "template": _Scan.template}
_AT_POS = frozenset(["a", "svg", "math", "template", "picture"])  # handlers that read the tag themselves
_STARTS: dict[bool, dict[str, Callable]] = {False: _START, True: {**_START, "a": _Scan.anchor}}  # by links


def parse_scan(text: str, links: bool = True) -> ParsedPage:
    """Scan a page for ``<img>``, ``<picture>``/``<source>``, ``<base>``, ``<html>``, robots ``<meta>``, ``<a>``."""
    return _Scan(text, links).run()

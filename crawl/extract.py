"""Extraction shared by the live crawler and WARC: HTML -> candidate records with drop reasons.

Parsing is pluggable (``PARSERS``); the rules that turn ``<img>`` attributes into candidates are
one pure function, so every parser gives the same pairs when it sees the same tags.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from webclip.crawl.htmlscan import parse_scan
from webclip.crawl.lazy import (
    LAZY_URL_ATTRS,
    SRCSET_ATTRS,
    is_placeholder,
    lazy_url,
    source_type_ok,
    tiny_declared,
)
from webclip.crawl.page import ImgTag, ParsedPage, robots_tokens
from webclip.crawl.srcset import NO_RANK, best_ranked, ranked_urls
from webclip.crawl.urls import Resolver
from webclip.hashing import candidate_uid
from webclip.records import Candidate
from webclip.robots import xrobots_forbids

HTTP = ("http://", "https://")  # resolved URLs carry a lower-case scheme
Resolve = Callable[[str | None], str | None]  # a page's URL resolver: None for what cannot be resolved
OPT_OUT_DIRECTIVES = {"noai", "noimageai"}
NO_IMAGE_DIRECTIVES = {"noimageindex", "noindex", "none"}


def _lexbor_sources(img) -> list[dict[str, str | None]]:  # noqa: ANN001
    """Attributes of the ``<source>`` siblings before an ``<img>`` (its parent is a ``<picture>``)."""
    out = []
    node = img.prev
    while node is not None:
        if node.tag == "source":
            out.append(dict(node.attributes))
        node = node.prev
    return out[::-1]


def parse_selectolax(text: str, links: bool = True) -> ParsedPage:
    """Parse with selectolax (lexbor), visiting the tree once for every tag that matters."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(text)
    has_picture = "<picture" in text or "<PICTURE" in text
    imgs, hrefs, metas = [], [], []
    base_href = lang = None
    query = "img, base[href], html, meta[name]" + (", a[href]" if links else "")
    for node in tree.css(query):
        tag = node.tag
        if tag == "img":
            parent = node.parent if has_picture else None
            sources = _lexbor_sources(node) if parent is not None and parent.tag == "picture" else []
            imgs.append(ImgTag(dict(node.attributes), sources))
        elif tag == "a":
            hrefs.append(node.attributes.get("href") or "")
        elif tag == "meta":
            if (node.attributes.get("name") or "").lower() in ("robots", "webclip"):
                metas.append(node.attributes.get("content") or "")
        elif tag == "base":
            if base_href is None:
                base_href = node.attributes.get("href")
        elif tag == "html" and lang is None:
            lang = node.attributes.get("lang")
    return ParsedPage(imgs=imgs, links=hrefs, base_href=base_href, lang=lang, robots=robots_tokens(metas))


def _bs4_attrs(node) -> dict[str, str | None]:  # noqa: ANN001
    return {k: (" ".join(v) if isinstance(v, list) else v) for k, v in node.attrs.items()}


def _bs4_sources(img) -> list[dict[str, str | None]]:  # noqa: ANN001
    """The ``<source>`` siblings before an ``<img>`` in its ``<picture>`` parent, under libxml2's tree.

    libxml2 does not know ``<source>`` is void and nests what follows inside it: the picture's children
    are the source chain around the ``<img>``, and a source counts when only sources lie between it and the picture.
    """
    node = img
    while node.parent is not None and node.parent.name == "source":
        node = node.parent
    picture = node.parent
    if picture is None or picture.name != "picture":
        return []
    out = []
    for el in picture.descendants:
        if el is img:
            break
        if getattr(el, "name", None) == "source" and _only_sources_up_to(el, picture):
            out.append(_bs4_attrs(el))
    return out


def _only_sources_up_to(el, picture) -> bool:  # noqa: ANN001
    parent = el.parent
    while parent is not picture:
        if parent is None or parent.name != "source":
            return False
        parent = parent.parent
    return True


def parse_bs4(text: str, links: bool = True) -> ParsedPage:
    """Parse with beautifulsoup4 over lxml: the reference."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "lxml")
    imgs = [ImgTag(_bs4_attrs(node), _bs4_sources(node)) for node in soup.find_all("img")]
    base = soup.find("base", href=True)
    html_node = soup.find("html")
    metas = [m.get("content") or "" for m in soup.find_all("meta", attrs={"name": True})
             if m.get("name", "").lower() in ("robots", "webclip")]
    hrefs = [a.get("href") or "" for a in soup.find_all("a", href=True)] if links else []
    return ParsedPage(imgs=imgs, links=hrefs, base_href=base.get("href") if base else None,
                      lang=html_node.get("lang") if html_node else None, robots=robots_tokens(metas))


PARSERS: dict[str, Callable[..., ParsedPage]] = {"scan": parse_scan, "selectolax": parse_selectolax, "bs4": parse_bs4}


def collapse_ws(text: str) -> str:
    """Collapse runs of whitespace to one space and strip."""
    return " ".join(text.split())


_DIMENSION = re.compile(r"[\t\n\f\r ]*([0-9]{1,6})")


def _int_attr(v: str | None) -> int | None:
    """A declared width/height by HTML's rules for dimension values: ASCII whitespace, then ASCII digits only."""
    if not v:
        return None
    if v.isascii() and v.isdigit() and len(v) <= 6:
        return int(v)
    m = _DIMENSION.match(v)
    return int(m.group(1)) if m else None


def _why_not(url: str | None) -> str:
    """'' for a usable image URL, else why not: ``no_src``, ``bad_scheme`` or ``placeholder``."""
    if not url:
        return "no_src"
    if url.startswith(HTTP):
        return "placeholder" if is_placeholder(url) else ""
    return "placeholder" if url[:5].lower() == "data:" else "bad_scheme"


_WORST = {"": -1, "no_src": 0, "bad_scheme": 1, "placeholder": 2}  # the reason an image with no usable URL is dropped for
_NONE = (None, NO_RANK, "no_src")
_LAZY = frozenset(LAZY_URL_ATTRS)
_SRCSETS = frozenset(SRCSET_ATTRS)


def _best_of(srcsets: list[str], resolve: Resolve) -> tuple[str | None, tuple, str]:
    """(largest usable candidate, its rank, the worst reason a candidate was unusable) of srcset values."""
    if not srcsets:
        return _NONE
    worst = "no_src"

    def usable(url: str) -> str | None:
        nonlocal worst
        resolved = resolve(url)
        why = _why_not(resolved)
        if why:
            worst = _worse(worst, why)
            return None
        return resolved

    url, rank = best_ranked([pair for s in srcsets for pair in ranked_urls(s)], usable)
    return url, rank, worst


def srcset_choice(tag: ImgTag, resolve: Resolve, memo: dict[int, tuple]) -> tuple[str | None, str]:
    """(the largest usable candidate of the ``<img>``'s srcsets and its ``<source>``s, resolved; why none is).

    Images of one ``<picture>`` share their sources list, so its best candidate is worked out once (``memo``).
    """
    attrs = tag.attrs
    if not tag.sources and _SRCSETS.isdisjoint(attrs):
        return None, "no_src"
    own = _best_of([v for name in SRCSET_ATTRS if (v := attrs.get(name))], resolve)
    if not tag.sources:
        return own[0], "" if own[0] else own[2]
    key = id(tag.sources)
    if key not in memo:
        memo[key] = _best_of([v for s in tag.sources if source_type_ok(s) for n in SRCSET_ATTRS if (v := s.get(n))],
                             resolve)
    shared = memo[key]
    url = own[0] if own[1] >= shared[1] else shared[0]  # the img's own srcset first among equals
    return url, "" if url else _worse(own[2], shared[2])


def _worse(a: str, b: str) -> str:
    return a if _WORST[a] >= _WORST[b] else b


def direct_image_url(tag: ImgTag, resolve: Resolve, width: int | None, height: int | None) -> tuple[str | None, str]:
    """(a lazy URL, else an http(s) src; '') or (None, why neither is usable).

    Placeholders never win: a ``src`` that is a placeholder (or whose declared size is tiny) is not usable.
    """
    attrs = tag.attrs
    worst = "no_src"
    if not _LAZY.isdisjoint(attrs):
        for name in LAZY_URL_ATTRS:
            if name in attrs:
                url = resolve(lazy_url(attrs[name]))
                why = _why_not(url)
                if not why:
                    return url, ""
                worst = _worse(worst, why)
    src = resolve(attrs.get("src"))
    why = _why_not(src)
    if not why and tiny_declared(width, height):
        why = "placeholder"
    return (src, "") if not why else (None, _worse(worst, why))


def _memo(resolve: Resolver) -> Resolve:
    """``resolve`` remembering its answers: a page names one URL in src, srcset and lazy attributes alike."""
    seen: dict[str | None, str | None] = {}

    def cached(url: str | None) -> str | None:
        if url in seen:
            return seen[url]
        seen[url] = found = resolve(url)
        return found

    return cached


def page_candidates(page: ParsedPage, page_url: str, source: str = "crawl", header_robots: str | None = None,
                    robots_agent: str = "webclip") -> tuple[list[Candidate], Counter]:
    """Candidates of one parsed page and the drop reasons of the ``<img>`` tags that gave none.

    The image URL is a lazy URL, else an http(s) src, else the largest srcset/``<source>`` candidate;
    an image with none is dropped for the worst reason seen (placeholder, then bad scheme, then no src).
    The ``X-Robots-Tag`` header counts only where it speaks to everyone or to ``robots_agent``.
    """
    drops: Counter = Counter()
    base = Resolver(page_url)(page.base_href) if page.base_href is not None else None
    resolve = _memo(Resolver(base or page_url))
    opt_out = bool(page.robots & OPT_OUT_DIRECTIVES
                   or xrobots_forbids(header_robots, OPT_OUT_DIRECTIVES, robots_agent))
    if page.robots & NO_IMAGE_DIRECTIVES or xrobots_forbids(header_robots, NO_IMAGE_DIRECTIVES, robots_agent):
        drops["extract/noimageindex"] += len(page.imgs)
        return [], drops
    out = []
    page_lang = (page.lang or "").strip().lower() or None
    memo: dict[int, tuple] = {}
    for tag in page.imgs:
        attrs = tag.attrs
        width, height = _int_attr(attrs.get("width")), _int_attr(attrs.get("height"))
        image_url, why = direct_image_url(tag, resolve, width, height)
        largest_url: str | None = ""  # not worked out yet: only images that need it or are kept do
        if image_url is None:
            largest_url, srcset_why = srcset_choice(tag, resolve, memo)
            image_url, why = largest_url, _worse(why, srcset_why)
        alt_raw = attrs.get("alt")
        if image_url is None:
            drops["extract/" + why] += 1
        elif alt_raw is None:
            drops["extract/missing_alt"] += 1
        elif not (alt := collapse_ws(alt_raw)):
            drops["extract/empty_alt"] += 1
        else:
            if largest_url == "":
                largest_url = srcset_choice(tag, resolve, memo)[0]
            out.append(Candidate(
                uid=candidate_uid(image_url, alt), image_url=image_url, alt=alt, page_url=page_url,
                page_lang=page_lang, width=width, height=height, srcset_url=largest_url,
                source=source, opt_out=opt_out,
            ))
    return out, drops


def extract(html_text: str, page_url: str, parser: str = "scan", source: str = "crawl",
            header_robots: str | None = None, links: bool = True,
            robots_agent: str = "webclip") -> tuple[list[Candidate], Counter, ParsedPage]:
    """Parse and extract in one call (``links=False`` skips collecting ``<a href>``, as archives need none)."""
    page = PARSERS[parser](html_text, links)
    cands, drops = page_candidates(page, page_url, source, header_robots, robots_agent)
    return cands, drops, page

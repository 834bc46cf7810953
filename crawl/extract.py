"""Extraction shared by the live crawler and WARC: HTML -> candidate records with drop reasons.

Parsing is pluggable (``PARSERS``); the rules that turn ``<img>`` attributes into candidates are
one pure function, so every parser gives the same pairs when it sees the same tags.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from webclip.crawl.htmlscan import parse_scan
from webclip.crawl.page import ImgTag, ParsedPage, robots_tokens
from webclip.crawl.urls import Resolver
from webclip.hashing import candidate_uid
from webclip.records import Candidate

LAZY_ATTRS = ("data-src", "data-original", "data-lazy-src")
HTTP = ("http://", "https://")  # resolved URLs carry a lower-case scheme
OPT_OUT_DIRECTIVES = {"noai", "noimageai"}
NO_IMAGE_DIRECTIVES = {"noimageindex", "noindex", "none"}


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
            sources = []
            if has_picture:
                parent = node.parent
                while parent is not None and parent.tag not in ("picture", "body", "html"):
                    parent = parent.parent
                if parent is not None and parent.tag == "picture":
                    sources = [s.attributes.get("srcset") or "" for s in parent.css("source")]
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


def parse_bs4(text: str, links: bool = True) -> ParsedPage:
    """Parse with beautifulsoup4 over lxml: the reference."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "lxml")
    imgs = []
    for node in soup.find_all("img"):
        # libxml2 does not know <source> is void and nests the <img> inside it: look up to <picture>.
        picture = node.find_parent("picture")
        sources = [s.get("srcset") or "" for s in picture.find_all("source")] if picture is not None else []
        imgs.append(ImgTag({k: (" ".join(v) if isinstance(v, list) else v) for k, v in node.attrs.items()}, sources))
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


def srcset_candidates(srcset: str) -> list[tuple[str, float]]:
    """(url, size) pairs of a srcset; ``w`` and ``x`` descriptors, 1x by default."""
    out = []
    for part in re.split(r",\s+|,(?=\S+\s)", srcset.strip()):
        bits = part.strip().split()
        if not bits:
            continue
        size = 1.0
        if len(bits) > 1:
            d = bits[-1].lower()
            try:
                size = float(d[:-1]) if d[-1] in "wx" else float(d)
                if d.endswith("x"):
                    size *= 1e-6  # rank w above x: densities are not comparable to widths
            except (ValueError, IndexError):
                size = 1.0
        out.append((bits[0], size))
    return out


def largest_srcset(srcsets: list[str]) -> str | None:
    """The largest candidate URL across several srcset strings."""
    best, best_size = None, -1.0
    for s in srcsets:
        for url, size in srcset_candidates(s):
            if size > best_size:
                best, best_size = url, size
    return best


def _int_attr(v: str | None) -> int | None:
    if not v:
        return None
    if v.isdigit() and len(v) <= 6:
        return int(v)
    m = re.match(r"\s*(\d{1,6})", v or "")
    return int(m.group(1)) if m else None


def srcset_url(tag: ImgTag, resolve: Resolver) -> str | None:
    """The resolved largest candidate of the ``<img>``'s srcset and its ``<picture>`` sources."""
    srcsets = [s for s in (tag.attrs.get("srcset"), *tag.sources) if s]
    return resolve(largest_srcset(srcsets)) if srcsets else None


def choose_image_url(tag: ImgTag, resolve: Resolver) -> str | None:
    """The image URL: a lazy attribute, else an http(s) src, else the largest srcset candidate, else src."""
    attrs = tag.attrs
    for name in LAZY_ATTRS:
        if name in attrs:
            lazy = resolve(attrs[name])
            if lazy:
                return lazy
    src = resolve(attrs.get("src"))
    if src and src.startswith(HTTP):
        return src
    largest = srcset_url(tag, resolve)
    if largest and largest.startswith(HTTP):
        return largest
    return src


def page_candidates(page: ParsedPage, page_url: str, source: str = "crawl",
                    header_robots: str | None = None) -> tuple[list[Candidate], Counter]:
    """Candidates of one parsed page and the drop reasons of the ``<img>`` tags that gave none."""
    drops: Counter = Counter()
    resolve = Resolver(Resolver(page_url)(page.base_href) or page_url)
    robots = page.robots | robots_tokens([header_robots or ""])
    opt_out = bool(robots & OPT_OUT_DIRECTIVES)
    if robots & NO_IMAGE_DIRECTIVES:
        drops["extract/noimageindex"] += len(page.imgs)
        return [], drops
    out = []
    page_lang = (page.lang or "").strip().lower() or None
    for tag in page.imgs:
        image_url = choose_image_url(tag, resolve)
        alt_raw = tag.attrs.get("alt")
        if image_url is None:
            drops["extract/no_src"] += 1
        elif image_url[:5].lower() == "data:":
            drops["extract/data_uri"] += 1
        elif not image_url.startswith(HTTP):
            drops["extract/bad_scheme"] += 1
        elif alt_raw is None:
            drops["extract/missing_alt"] += 1
        elif not (alt := collapse_ws(alt_raw)):
            drops["extract/empty_alt"] += 1
        else:
            largest = srcset_url(tag, resolve)
            out.append(Candidate(
                uid=candidate_uid(image_url, alt), image_url=image_url, alt=alt, page_url=page_url,
                page_lang=page_lang,
                width=_int_attr(tag.attrs.get("width")), height=_int_attr(tag.attrs.get("height")),
                srcset_url=largest if largest and not largest.startswith("data:") else None,
                source=source, opt_out=opt_out,
            ))
    return out, drops


def extract(html_text: str, page_url: str, parser: str = "scan", source: str = "crawl",
            header_robots: str | None = None, links: bool = True) -> tuple[list[Candidate], Counter, ParsedPage]:
    """Parse and extract in one call (``links=False`` skips collecting ``<a href>``, as archives need none)."""
    page = PARSERS[parser](html_text, links)
    cands, drops = page_candidates(page, page_url, source, header_robots)
    return cands, drops, page

"""A generated hostile web on many loopback addresses: good pages and images mixed with the malformations
of issue 12. Every answer is a pure function of (seed, host, path), made when asked; nothing goes to disk.

Hosts are consecutive addresses from ``127.0.1.1``, all on one port. A URL names its own kind
(``/p/<kind>/<n>.html``, ``/i/<kind>/<name>.<ext>``), so a soak can tell from any candidate or sample
which malformation it came from. Every link and redirect names a host of this web or cannot be parsed,
so nothing outside loopback is ever asked for.
"""

from __future__ import annotations

import argparse
import bisect
import functools
import hashlib
import html
import io
import ipaddress
import json
import signal
import struct
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache
from http.client import responses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

from webclip.hashing import unit_draw
from webclip.sampleweb.concepts import concept_names


@dataclass(frozen=True)
class HostileWebConfig:
    """How big the hostile web is; the seed fixes every byte of it."""

    seed: int = 0
    hosts: int = 64
    pages_per_host: int = 1000  # on each well-behaved host (the defaults make the full soak: 52,100 pages)
    small_host_pages: int = 3  # on each host whose robots.txt or sitemap is the hostile part
    images_per_page: int = 2
    fanout: int = 10  # tree links per page (keeps every page within a few hops of its index)
    first_address: str = "127.0.1.1"
    slow_seconds: float = 4.0  # well past any client deadline the soak uses
    trickle_gap: float = 0.05  # seconds between header bytes
    bomb_mib: int = 256  # what a compression bomb expands to

    def validate(self) -> None:
        """Reject sizes the web cannot be built with."""
        if not len(SPECIAL_HOSTS) + 1 <= self.hosts <= 250:
            raise ValueError(f"hosts must be between {len(SPECIAL_HOSTS) + 1} and 250")
        if self.pages_per_host < 1 or self.small_host_pages < 1 or self.images_per_page < 0:
            raise ValueError("pages per host must be >= 1 and images per page >= 0")
        if not ipaddress.ip_address(self.first_address).is_loopback:
            raise ValueError("first_address must be a loopback address")


@dataclass(frozen=True)
class Host:
    """One address of the web and what its robots.txt and sitemaps do."""

    index: int
    address: str
    kind: str
    pages: int


@dataclass
class Reply:
    """One HTTP answer; ``pace`` says how the server writes it, ``raw`` replaces it whole."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    pace: str = "fast"  # fast | trickle | slow_body | slow_start
    close: bool = False
    length: int | None = None  # Content-Length to declare; None: the true one; -1: none
    raw: bytes | None = None

    def head(self) -> bytes:
        """The status line and header block as sent."""
        lines = [f"HTTP/1.1 {self.status} {responses.get(self.status, 'Whatever')}", *(f"{k}: {v}" for k, v in self.headers)]
        if self.length != -1:
            lines.append(f"Content-Length: {len(self.body) if self.length is None else self.length}")
        if self.close or self.pace != "fast" or self.length is not None:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


COLOURS = ("red", "blue", "green", "yellow", "orange", "purple", "black", "white", "pink", "brown")
BACKGROUNDS = ("plain", "striped", "dotted", "checkered", "grainy", "shaded")
CAPTIONS = ("A photo of the {colour} {c} on a {bg} background",
            "Close-up of the {colour} {c} from our new collection",
            "Hand-drawn illustration of the {colour} {c} on a {bg} background",
            "The {colour} {c} we photographed in the garden this morning")
RETRY_AFTER = ("soon", "nan", "inf", "-1", "1e400", "Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 32 Foo 2020 99:99:99 GMT",
               "86400", "0x10", "")
X_ROBOTS = {"noimageindex": "noimageindex", "noai": "noai", "noimageai": "noimageai",
            "xrobots_list": "nofollow, noimageindex", "xrobots_ours": "webclip: noai",
            "xrobots_other_agent": "googlebot: noimageindex"}
SPACER_GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")


def _pick(table: dict[str, float], draw: float) -> str:
    """A weighted choice from a {name: weight} table by a draw in [0, 1)."""
    names = list(table)
    cumulative = np.cumsum(list(table.values()))
    return names[min(bisect.bisect_right(cumulative.tolist(), draw * cumulative[-1]), len(names) - 1)]


def _seed_int(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


# ---------------------------------------------------------------- images (pure bytes)

def drawn(key: str, size: tuple[int, int], fmt: str = "JPEG", mode: str = "RGB") -> bytes:
    """A smooth random picture unique to ``key`` (distinct pHash), encoded in ``fmt``."""
    rng = np.random.default_rng(_seed_int(key))
    small = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    image = small.resize(size, Image.Resampling.BILINEAR).convert(mode)
    buf = io.BytesIO()
    image.save(buf, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_of_zeros(width: int, height: int, rows: int | None = None) -> bytes:
    """An RGB PNG of the given size whose IDAT holds ``rows`` zero rows (all of them by default)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(bytes((1 + 3 * width) * (height if rows is None else rows)), 9)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


@cache
def pixel_bomb() -> bytes:
    """A PNG that claims 30000 x 30000 pixels (900 MP) in a few hundred bytes."""
    return png_of_zeros(30_000, 30_000, rows=1)


@cache
def big_png() -> bytes:
    """A genuine 4000 x 4000 PNG (16 MP, under Pillow's bomb limit): decoding it costs 48 MB."""
    return png_of_zeros(4000, 4000)


@cache
def gzip_bomb(mib: int, filler: bytes = b"\0", prefix: bytes = b"", suffix: bytes = b"") -> bytes:
    """A gzip stream that expands to ``mib`` MiB of ``filler`` between a prefix and a suffix."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = filler * (1 << 20)
    parts = [c.compress(prefix), *(c.compress(chunk) for _ in range(mib)), c.compress(suffix), c.flush()]
    return b"".join(parts)


def sitemap_bomb(mib: int) -> bytes:
    """A ``.xml.gz`` sitemap that is mostly whitespace once unpacked."""
    return gzip_bomb(mib, b" ", b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
                     b"</urlset>")


# ---------------------------------------------------------------- kinds

SPECIAL_HOSTS = ("robots_503", "robots_500", "robots_timeout", "robots_trickle", "robots_loop", "robots_garbage",
                 "crawl_delay", "disallow_all", "agent_scoped", "refused", "sitemap_bomb", "sitemap_loop")
ROBOTS_UNREACHABLE = frozenset({"robots_503", "robots_500", "robots_timeout", "robots_trickle", "refused"})
NO_PAGES_HOSTS = ROBOTS_UNREACHABLE | {"disallow_all", "agent_scoped"}  # no candidate may come from these

# kind: (weight as a page, weight as an image); 0 means the kind never appears there
KINDS: dict[str, tuple[float, float]] = {
    "good": (55, 55), "lazy": (4, 0), "png": (0, 4), "cmyk": (0, 1), "la_png": (0, 1), "big_png": (0, 0.3),
    "charset_utf16": (2, 0), "invalid_utf8": (2, 0), "huge_srcset": (1, 0), "nested_picture": (0.3, 0),
    "markup_attrs": (2, 0), "bad_links": (3, 0), "meta_noindex": (1, 0), "meta_noimageindex": (1, 0),
    "meta_nofollow": (1, 0), "xrobots_noindex": (1, 0), "xrobots_googlebot": (1, 0), "huge_page": (0.2, 0),
    "bad_base": (1, 0), "empty": (1, 0), "not_html": (1, 0),
    "noimageindex": (0, 2), "noai": (0, 1), "noimageai": (0, 1), "xrobots_list": (0, 1), "xrobots_ours": (0, 1),
    "xrobots_other_agent": (0, 1), "corrupt": (0, 2), "truncated": (0, 2), "pixel_bomb": (0, 1),
    "html_as_image": (0, 2), "wrong_type": (0, 1), "spacer": (0, 1), "tiny": (0, 1), "thin": (0, 1), "svg": (0, 1),
    "redirect_ok": (2, 2), "redirect_bad": (1, 1), "redirect_loop": (1, 1), "redirect_chain": (0.5, 0.5),
    "redirect_disallowed": (1.5, 1.5), "no_location": (1, 1), "retry_429": (1, 1), "retry_503": (1, 1),
    "trickle": (0.4, 0.4), "slow_body": (0.4, 0.4), "slow_start": (0.3, 0.3), "cl_short": (1, 1), "cl_long": (1, 1),
    "cl_conflict": (0.5, 0.5), "bad_gzip": (1, 1), "bad_deflate": (1, 1), "unknown_encoding": (0.5, 0.5),
    "gzip_bomb": (0.5, 0.5), "status_404": (1, 1), "status_500": (1, 1), "status_410": (0.5, 0.5),
    "bad_status_line": (0.3, 0.3), "header_flood": (0.3, 0.3), "long_header": (0.3, 0.3),
}
PAGE_WEIGHTS = {k: w[0] for k, w in KINDS.items() if w[0]}
# pages whose links a crawler may never see (no body, not HTML, over a byte cap, nofollow, garbled):
# their children are linked from the index too, so links alone reach every page
LINKLESS = frozenset({"empty", "not_html", "huge_page", "meta_nofollow", "bad_base", "charset_utf16", "nested_picture",
                      "redirect_ok", "redirect_bad", "redirect_loop", "redirect_chain", "redirect_disallowed",
                      "no_location", "retry_429", "retry_503", "trickle", "slow_body", "slow_start", "cl_short",
                      "cl_long", "cl_conflict", "bad_gzip", "bad_deflate", "unknown_encoding", "gzip_bomb",
                      "status_404", "status_500", "status_410", "bad_status_line", "header_flood", "long_header"})
IMAGE_WEIGHTS = {k: w[1] for k, w in KINDS.items() if w[1]}
# image kinds a correct downloader may keep; a kept sample of any other kind is a leak
KEEPABLE_IMAGES = frozenset({"good", "png", "cmyk", "la_png", "big_png", "xrobots_other_agent", "redirect_ok"})
# page kinds whose images may never become candidates
NO_CANDIDATE_PAGES = frozenset({"meta_noindex", "meta_noimageindex", "xrobots_noindex"})
# image names that sit where no parser may find an <img>: script, textarea, comment, another tag's attribute
NOT_IMAGES = ("-inscript.", "-intextarea.", "-incomment.", "-inalt.")


def url_kind(url: str) -> tuple[str, str]:
    """(section, kind) of a URL of this web: ``("i", "corrupt")``, ``("p", "good")``, ``("private", "")``."""
    try:
        parts = urlsplit(url).path.split("/")
    except ValueError:
        return "", ""
    section = parts[1] if len(parts) > 1 else ""
    return section, parts[2] if section in ("p", "i") and len(parts) > 2 else ""


# ---------------------------------------------------------------- the web

class HostileWeb:
    """The whole web as functions: hosts, page bodies, images and every answer by (host, path)."""

    def __init__(self, cfg: HostileWebConfig, port: int):
        cfg.validate()
        self.cfg, self.port = cfg, port
        self.concepts = concept_names()
        order = sorted(range(cfg.hosts), key=lambda i: unit_draw(cfg.seed, f"host-order:{i}"))
        kinds = {i: "good" for i in range(cfg.hosts)} | dict(zip(order, SPECIAL_HOSTS, strict=False))
        first = ipaddress.ip_address(cfg.first_address)
        self.hosts = [Host(i, str(first + i), kinds[i], cfg.small_host_pages if kinds[i] != "good" else cfg.pages_per_host)
                      for i in range(cfg.hosts)]
        self.good_hosts = [h for h in self.hosts if h.kind == "good"]
        self.by_kind = {h.kind: h for h in self.hosts if h.kind != "good"}

    def draw(self, key: str) -> float:
        """The seeded draw for ``key`` in [0, 1)."""
        return unit_draw(self.cfg.seed, key)

    def origin(self, host: Host) -> str:
        """``http://ADDRESS:PORT``."""
        return f"http://{host.address}:{self.port}"

    def seeds(self) -> list[str]:
        """Every host's index page."""
        return [f"{self.origin(h)}/index.html" for h in self.hosts]

    def total_pages(self) -> int:
        """Pages in the link graph (index pages included; redirect and /private/ targets not)."""
        return sum(h.pages + 1 for h in self.hosts)

    def page_kind(self, host: Host, n: int) -> str:
        """The kind of page ``n`` of ``host``."""
        return _pick(PAGE_WEIGHTS, self.draw(f"page:{host.index}:{n}"))

    def children(self, host: Host, n: int) -> list[int]:
        """Page ``n``'s children in the host's link tree (``-1``, the index, has pages 0 .. fanout-1)."""
        f = self.cfg.fanout
        return [c for c in range((n + 1) * f, (n + 2) * f) if c < host.pages]

    def page_path(self, host: Host, n: int) -> str:
        """The path of page ``n`` (its kind is part of it)."""
        return f"/p/{self.page_kind(host, n)}/{n}.html"

    def image_path(self, host: Host, n: int, k: int) -> str:
        """The path of the ``k``-th image of page ``n``."""
        kind = _pick(IMAGE_WEIGHTS, self.draw(f"img:{host.index}:{n}:{k}"))
        ext = {"png": "png", "la_png": "png", "big_png": "png", "pixel_bomb": "png", "spacer": "gif", "svg": "svg"}
        return f"/i/{kind}/{n}-{k}.{ext.get(kind, 'jpg')}"

    def other_host(self, host: Host, key: str, good_only: bool = True) -> Host:
        """Another host of this web, chosen by ``key``."""
        pool = [h for h in (self.good_hosts if good_only else self.hosts) if h.index != host.index] or [host]
        return pool[int(self.draw(key) * len(pool))]

    def caption(self, host: Host, key: str) -> str:
        """An English alt text that names one concept of the query list."""
        d = [self.draw(f"cap{i}:{host.index}:{key}") for i in range(4)]
        return CAPTIONS[int(d[0] * len(CAPTIONS))].format(c=self.concepts[int(d[1] * len(self.concepts))],
                                                           colour=COLOURS[int(d[2] * len(COLOURS))],
                                                           bg=BACKGROUNDS[int(d[3] * len(BACKGROUNDS))])

    def respond(self, index: int, target: str) -> Reply:
        """The answer of host ``index`` to a request target (pure: same inputs, same bytes)."""
        host = self.hosts[index]
        try:
            path = urlsplit(target).path
        except ValueError:
            return not_found()
        parts = path.split("/")
        route = ROUTES.get(parts[1] if len(parts) > 1 else "")
        reply = route(self, host, parts) if route else None
        return reply or not_found()


def not_found() -> Reply:
    """A plain 404."""
    return Reply(404, [("Content-Type", "text/html")], b"<html><body>not found</body></html>")


def html_reply(text: str, ctype: str = "text/html; charset=utf-8", headers: list[tuple[str, str]] | None = None,
               encoding: str = "utf-8") -> Reply:
    """A 200 HTML page."""
    return Reply(200, [("Content-Type", ctype), *(headers or [])], text.encode(encoding, "xmlcharrefreplace"))


def image_reply(data: bytes, ctype: str = "image/jpeg", headers: list[tuple[str, str]] | None = None) -> Reply:
    """A 200 image."""
    return Reply(200, [("Content-Type", ctype), *(headers or [])], data)


# ---------------------------------------------------------------- pages

@dataclass
class Page:
    """A page under construction: variants add to its parts before it is rendered."""

    title: str
    head: list[str] = field(default_factory=list)
    imgs: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)

    def render(self) -> str:
        """The HTML document."""
        links = "\n".join(f'<li><a href="{html.escape(h)}">link {i}</a></li>' for i, h in enumerate(self.links))
        return (f'<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>{html.escape(self.title)}</title>'
                f'{"".join(self.head)}</head>\n<body><h1>{html.escape(self.title)}</h1>\n<main>\n' + "\n".join(self.imgs)
                + f"\n</main>\n<nav><ul>\n{links}\n</ul></nav>\n{''.join(self.tail)}</body>\n</html>\n")


def _href(web: HostileWeb, page_host: Host, target: Host, path: str, key: str) -> str:
    """A link to ``path`` on ``target`` in one of the forms pages use (absolute, //host, /path, with junk)."""
    d = web.draw(f"form:{page_host.index}:{key}")
    if target.index == page_host.index and d < 0.4:
        return path
    netloc = f"{target.address}:{web.port}"
    if d < 0.55:
        return f"//{netloc}{path}"
    if d < 0.65:
        return f"http://{netloc}{path}?utm_source=soak&utm_medium=hostile"
    if d < 0.7:
        return f"HTTP://{netloc}{path}#section"
    return f"http://{netloc}{path}"


def _img_tag(web: HostileWeb, host: Host, src_host: Host, src_path: str, key: str) -> str:
    alt = html.escape(web.caption(host, key))
    src = html.escape(_href(web, host, src_host, src_path, key))
    return f'<figure><img src="{src}" alt="{alt}" width="64" height="64"></figure>'


def build_page(web: HostileWeb, host: Host, n: int) -> Page:
    """Page ``n`` of ``host`` (``-1`` is the index): its images, a spacer and its links."""
    cfg = web.cfg
    key = "index" if n < 0 else str(n)
    page = Page(f"{web.caption(host, 'title:' + key)} - page {key}")
    # a Crawl-delay host's images live elsewhere: a downloader that honours a long delay would wait there for hours
    src_host = web.other_host(host, "images") if host.kind == "crawl_delay" else host
    page.imgs = [_img_tag(web, host, src_host, web.image_path(host, n, k), f"{key}-{k}")
                 for k in range(cfg.images_per_page)]
    page.imgs.append(f'<img src="/i/spacer/{key}-s.gif" width="1" height="1" alt="">')
    children = web.children(host, n)
    if n < 0:  # the index also links the children of pages a crawler cannot follow links from
        children += [c for m in range(host.pages) if web.page_kind(host, m) in LINKLESS for c in web.children(host, m)]
    extra = [int(web.draw(f"link{i}:{host.index}:{n}") * host.pages) for i in range(2)]
    for m in dict.fromkeys(children + extra):
        page.links.append(_href(web, host, host, web.page_path(host, m), f"l{m}:{key}"))
    other = web.other_host(host, f"cross:{host.index}:{n}", good_only=False)
    m = int(web.draw(f"crossn:{host.index}:{n}") * other.pages)
    page.links.append(_href(web, host, other, web.page_path(other, m), f"x:{key}"))
    if n < 0:
        page.links += [f"{web.origin(h)}/index.html" for h in web.hosts if h.index != host.index]
    return page


BAD_LINKS = ("https://[x]/", "http://[bad/x", "http://[::1", "//[", "javascript:alert(1)", "mailto:someone@127.0.0.1",
             "ftp://{addr}/file", "data:text/html,<a href=x>x</a>", "tel:+100", "http://{addr}:99999/", "http:///no-host",
             "\\\\server\\share", "http://{addr}:0/", "http://user:pass@{netloc}/index.html", "%", "http://%zz/",
             "http://[::ffff:127.0.0.1]:{port}/index.html", " \t http://{netloc}/index.html \n",
             "https://{netloc}/index.html", "http://{netloc}/p/good/{long}.html", "?" + "&".join(f"utm_{i}=x" for i in range(300)))


def v_lazy(web: HostileWeb, host: Host, n: int, page: Page) -> None:
    """Images behind ``data-src`` with a placeholder ``src``."""
    page.imgs = [t.replace('<img src="', '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-src="', 1)
                 for t in page.imgs]


def v_charset_utf16(web: HostileWeb, host: Host, n: int, page: Page) -> None:
    """A ``utf-16`` meta charset on an ASCII document served without a header charset."""
    page.head.insert(0, '<meta charset="utf-16">')
    page.headers.append(("Content-Type", "text/html"))


def v_huge_srcset(web: HostileWeb, host: Host, n: int, page: Page) -> None:
    """An image whose srcset lists 10,000 candidates."""
    srcset = ", ".join(f"/i/good/{n}-ss{i}.jpg {i + 1}w" for i in range(10_000))
    page.imgs.append(f'<img src="/i/good/{n}-ss.jpg" srcset="{srcset}" sizes="100vw" alt="{web.caption(host, f"ss{n}")}">')


def v_nested_picture(web: HostileWeb, host: Host, n: int, page: Page) -> None:
    """20,000 nested ``<picture>`` elements around one image."""
    inner = (f'<source srcset="/i/good/{n}-pic.jpg 2x"><img src="/i/good/{n}-pic-small.jpg" '
             f'alt="{web.caption(host, f"pic{n}")}">')
    page.imgs.append("<picture>" * 20_000 + inner + "</picture>" * 20_000)


def v_markup_attrs(web: HostileWeb, host: Host, n: int, page: Page) -> None:
    """Attributes holding markup, images inside script and textarea, and an unterminated quote."""
    cap = web.caption(host, f"m{n}")
    page.imgs += [f'<img src="/i/good/{n}-m0.jpg" alt="<b>{cap}</b> &amp; <img src=/i/good/{n}-inalt.jpg>">',
                  f"<img src='/i/good/{n}-m1.jpg' alt='\"><script>alert(1)</script>{cap}'>",
                  f'<script>document.write("<img src=/i/good/{n}-inscript.jpg alt=\'{cap}\'>")</script>',
                  f'<textarea><img src="/i/good/{n}-intextarea.jpg" alt="{cap}"></textarea>',
                  f'<!-- <img src="/i/good/{n}-incomment.jpg" alt="{cap}"> -->']
    page.tail.append(f'<img src="/i/good/{n}-m2.jpg" alt="{cap} never closed')


def v_bad_links(web: HostileWeb, host: Host, n: int, page: Page) -> None:
    """Links that cannot be parsed, other schemes and odd forms (all loopback when they parse at all)."""
    fill = {"addr": host.address, "netloc": f"{host.address}:{web.port}", "port": str(web.port), "long": "a" * 8000}
    page.links += [link.format(**fill) for link in BAD_LINKS]


def _meta_robots(content: str) -> Callable[[HostileWeb, Host, int, Page], None]:
    def variant(web: HostileWeb, host: Host, n: int, page: Page) -> None:
        page.head.append(f'<meta name="robots" content="{content}">')
    return variant


def _x_robots(value: str) -> Callable[[HostileWeb, Host, int, Page], None]:
    def variant(web: HostileWeb, host: Host, n: int, page: Page) -> None:
        page.headers.append(("X-Robots-Tag", value))
    return variant


def v_huge_page(web: HostileWeb, host: Host, n: int, page: Page) -> None:
    """A page over any sane byte cap (6 MB of comment before the images)."""
    page.head.append("<!--" + "x" * 6_000_000 + "-->")


def v_bad_base(web: HostileWeb, host: Host, n: int, page: Page) -> None:
    """A ``<base href>`` that cannot be parsed."""
    page.head.append('<base href="http://[bad/">')


BODY_VARIANTS: dict[str, Callable[[HostileWeb, Host, int, Page], None]] = {
    "lazy": v_lazy, "charset_utf16": v_charset_utf16, "huge_srcset": v_huge_srcset, "nested_picture": v_nested_picture,
    "markup_attrs": v_markup_attrs, "bad_links": v_bad_links, "meta_noindex": _meta_robots("noindex"),
    "meta_noimageindex": _meta_robots("noimageindex"), "meta_nofollow": _meta_robots("nofollow"),
    "xrobots_noindex": _x_robots("noindex"), "xrobots_googlebot": _x_robots("googlebot: noindex"),
    "huge_page": v_huge_page, "bad_base": v_bad_base,
}


def page_reply(web: HostileWeb, host: Host, n: int, kind: str) -> Reply:
    """The 200 answer for page ``n`` as its kind shapes the body."""
    if kind == "empty":
        return Reply(200, [("Content-Type", "text/html")], b"")
    if kind == "not_html":
        return Reply(200, [("Content-Type", "application/pdf")], b"%PDF-1.4\n" + bytes(range(256)) * 8)
    page = build_page(web, host, n)
    variant = BODY_VARIANTS.get(kind)
    if variant:
        variant(web, host, n, page)
    ctype = next((v for k, v in page.headers if k == "Content-Type"), "text/html; charset=utf-8")
    extra = [(k, v) for k, v in page.headers if k != "Content-Type"]
    reply = html_reply(page.render(), ctype, extra)
    if kind == "invalid_utf8":
        reply.body = reply.body.replace(b"</h1>", b"\xff\xfe\xc3(\xed\xa0\x80</h1>").replace(b'alt="', b'alt="\xc0\xaf', 1)
    return reply


# ---------------------------------------------------------------- images

def _good_image(web: HostileWeb, host: Host, name: str) -> Reply:
    size = 48 + int(web.draw(f"size:{host.index}:{name}") * 80)
    return image_reply(drawn(f"{web.cfg.seed}:{host.index}:{name}", (size, size)))


def _x_robots_image(value: str) -> Callable[[HostileWeb, Host, str], Reply]:
    def make(web: HostileWeb, host: Host, name: str) -> Reply:
        reply = _good_image(web, host, name)
        reply.headers.append(("X-Robots-Tag", value))
        return reply
    return make


def _truncated(web: HostileWeb, host: Host, name: str) -> Reply:
    data = _good_image(web, host, name).body
    return image_reply(data[: len(data) * 2 // 5])


def _key(web: HostileWeb, host: Host, name: str) -> str:
    return f"{web.cfg.seed}:{host.index}:{name}"


IMAGE_BODIES: dict[str, Callable[[HostileWeb, Host, str], Reply]] = {
    "good": _good_image,
    "png": lambda w, h, n: image_reply(drawn(_key(w, h, n), (96, 72), "PNG"), "image/png"),
    "cmyk": lambda w, h, n: image_reply(drawn(_key(w, h, n), (80, 80), "JPEG", "CMYK")),
    "la_png": lambda w, h, n: image_reply(drawn(_key(w, h, n), (64, 96), "PNG", "LA"), "image/png"),
    "big_png": lambda w, h, n: image_reply(big_png(), "image/png"),
    "corrupt": lambda w, h, n: image_reply(np.random.default_rng(_seed_int(_key(w, h, n))).bytes(3000)),
    "truncated": _truncated,
    "pixel_bomb": lambda w, h, n: image_reply(pixel_bomb(), "image/png"),
    "html_as_image": lambda w, h, n: image_reply(b"<!DOCTYPE html><html><body><p>Sorry, hotlinking is not allowed.</p></body></html>"),
    "wrong_type": lambda w, h, n: Reply(200, [("Content-Type", "text/html")], _good_image(w, h, n).body),
    "spacer": lambda w, h, n: image_reply(SPACER_GIF, "image/gif"),
    "tiny": lambda w, h, n: image_reply(drawn(_key(w, h, n), (16, 16))),
    "thin": lambda w, h, n: image_reply(drawn(_key(w, h, n), (400, 20))),
    "svg": lambda w, h, n: image_reply(b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image/svg+xml"),
    **{kind: _x_robots_image(value) for kind, value in X_ROBOTS.items()},
}


# ---------------------------------------------------------------- answers any URL can give

def _redirect(location: str, status: int = 302) -> Reply:
    return Reply(status, [("Location", location), ("Content-Type", "text/html")], b"<html><body>moved</body></html>")


def r_redirect_ok(web: HostileWeb, host: Host, section: str, name: str, good: Callable[[], Reply]) -> Reply:
    """A 301 to a real URL on another good host."""
    other = web.other_host(host, f"rok:{host.index}:{section}:{name}")
    if section == "p":
        path = web.page_path(other, int(web.draw(f"rokn:{host.index}:{name}") * other.pages))
    else:
        path = f"/i/good/r{host.index}-{name}"
    return _redirect(f"{web.origin(other)}{path}", 301)


def r_redirect_disallowed(web: HostileWeb, host: Host, section: str, name: str, good: Callable[[], Reply]) -> Reply:
    """A redirect into robots.txt-disallowed ground: another host's /private/, or the disallow-all host."""
    if web.draw(f"rdis:{host.index}:{section}:{name}") < 0.5:
        other = web.other_host(host, f"rdish:{host.index}:{name}")
        return _redirect(f"{web.origin(other)}/private/{name}")
    other = web.by_kind["disallow_all"]
    path = web.page_path(other, 0) if section == "p" else f"/i/good/d{host.index}-{name}"
    return _redirect(f"{web.origin(other)}{path}")


def r_retry(status: int) -> Callable[..., Reply]:
    def make(web: HostileWeb, host: Host, section: str, name: str, good: Callable[[], Reply]) -> Reply:
        value = RETRY_AFTER[int(web.draw(f"ra:{host.index}:{section}:{name}") * len(RETRY_AFTER))]
        return Reply(status, [("Retry-After", value), ("Content-Type", "text/html")], b"<html><body>busy</body></html>")
    return make


def r_paced(pace: str) -> Callable[..., Reply]:
    def make(web: HostileWeb, host: Host, section: str, name: str, good: Callable[[], Reply]) -> Reply:
        reply = good()
        reply.pace = pace
        return reply
    return make


def r_length(factor: float, extra: int) -> Callable[..., Reply]:
    def make(web: HostileWeb, host: Host, section: str, name: str, good: Callable[[], Reply]) -> Reply:
        reply = good()
        reply.length = int(len(reply.body) * factor) + extra
        return reply
    return make


def r_cl_conflict(web: HostileWeb, host: Host, section: str, name: str, good: Callable[[], Reply]) -> Reply:
    """Two Content-Length headers that disagree."""
    reply = good()
    reply.headers += [("Content-Length", str(len(reply.body))), ("Content-Length", str(len(reply.body) // 3))]
    reply.length, reply.close = -1, True
    return reply


def r_encoded(encoding: str, body: Callable[[HostileWeb, Host, str, bytes], bytes]) -> Callable[..., Reply]:
    def make(web: HostileWeb, host: Host, section: str, name: str, good: Callable[[], Reply]) -> Reply:
        reply = good()
        reply.headers.append(("Content-Encoding", encoding))
        reply.body = body(web, host, name, reply.body)
        return reply
    return make


def r_status(status: int) -> Callable[..., Reply]:
    def make(web: HostileWeb, host: Host, section: str, name: str, good: Callable[[], Reply]) -> Reply:
        return Reply(status, [("Content-Type", "text/html")], f"<html><body>{status}</body></html>".encode())
    return make


def r_raw(data: bytes) -> Callable[..., Reply]:
    def make(web: HostileWeb, host: Host, section: str, name: str, good: Callable[[], Reply]) -> Reply:
        return Reply(raw=data, close=True)
    return make


def r_headers(headers: list[tuple[str, str]]) -> Callable[..., Reply]:
    def make(web: HostileWeb, host: Host, section: str, name: str, good: Callable[[], Reply]) -> Reply:
        reply = good()
        reply.headers += headers
        return reply
    return make


RESPONSES: dict[str, Callable[..., Reply]] = {
    "redirect_ok": r_redirect_ok,
    "redirect_bad": lambda w, h, s, n, g: _redirect("http://[bad/x"),
    "redirect_loop": lambda w, h, s, n, g: _redirect(f"/loop/{s}/{n}/a"),
    "redirect_chain": lambda w, h, s, n, g: _redirect(f"/chain/{s}/{n}/1"),
    "redirect_disallowed": r_redirect_disallowed,
    "no_location": lambda w, h, s, n, g: Reply(301, [("Content-Type", "text/html")], b"<html><body>gone</body></html>"),
    "retry_429": r_retry(429), "retry_503": r_retry(503),
    "trickle": r_paced("trickle"), "slow_body": r_paced("slow_body"), "slow_start": r_paced("slow_start"),
    "cl_short": r_length(0.5, 0), "cl_long": r_length(2, 100), "cl_conflict": r_cl_conflict,
    "bad_gzip": r_encoded("gzip", lambda w, h, n, b: b"\x1f\x8b\x08\x00" + b[: len(b) // 2]),
    "bad_deflate": r_encoded("deflate", lambda w, h, n, b: np.random.default_rng(_seed_int(n)).bytes(500)),
    "unknown_encoding": r_encoded("x-bogus", lambda w, h, n, b: zlib.compress(b)),
    "gzip_bomb": r_encoded("gzip", lambda w, h, n, b: gzip_bomb(w.cfg.bomb_mib)),
    "status_404": r_status(404), "status_500": r_status(500), "status_410": r_status(410),
    "bad_status_line": r_raw(b"HTTP/1.1 2OO Fine\r\nContent-Type: text/html\r\n\r\nhello"),
    "header_flood": r_headers([(f"X-Flood-{i}", "x" * 64) for i in range(200)]),
    "long_header": r_headers([("X-Long", "y" * 100_000)]),
}


# ---------------------------------------------------------------- robots.txt and sitemaps

def _robots_text(web: HostileWeb, host: Host, extra: str = "") -> str:
    return f"User-agent: *\nDisallow: /private/\n\nSitemap: {web.origin(host)}/sitemap.xml\n{extra}"


def _plain(text: str | bytes, status: int = 200) -> Reply:
    return Reply(status, [("Content-Type", "text/plain")], text.encode() if isinstance(text, str) else text)


def _paced_robots(pace: str) -> Callable[[HostileWeb, Host], Reply]:
    def make(web: HostileWeb, host: Host) -> Reply:
        reply = _plain(_robots_text(web, host))
        reply.pace = pace
        return reply
    return make


ROBOTS: dict[str, Callable[[HostileWeb, Host], Reply]] = {
    "good": lambda w, h: _plain(_robots_text(w, h)),
    "robots_503": lambda w, h: Reply(503, [("Retry-After", "soon"), ("Content-Type", "text/plain")], b"busy"),
    "robots_500": lambda w, h: _plain("oops", 500),
    "robots_timeout": _paced_robots("slow_start"),
    "robots_trickle": _paced_robots("trickle"),
    "robots_loop": lambda w, h: _redirect("/robots.txt?again"),
    "robots_garbage": lambda w, h: _plain(b"\xff\xfe" + "User-agent: *\nDisallow: /private/\n".encode("utf-16-le")
                                          + bytes(range(256)) * 4),
    "crawl_delay": lambda w, h: _plain(_robots_text(w, h, "\nUser-agent: *\nCrawl-delay: 86400\n")),
    "disallow_all": lambda w, h: _plain("User-agent: *\nDisallow: /\n"),
    "agent_scoped": lambda w, h: _plain("User-agent: webclip\nDisallow: /\n\nUser-agent: *\nAllow: /\n"),
    "sitemap_bomb": lambda w, h: _plain(_robots_text(w, h, f"Sitemap: {w.origin(h)}/sitemap.xml.gz\n"
                                                           f"Sitemap: {w.origin(h)}/sitemap-gz.xml\n")),
    "sitemap_loop": lambda w, h: _plain(_robots_text(w, h, f"Sitemap: {w.origin(h)}/sitemap-index.xml\n")),
}

URLSET = '<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n{}\n</urlset>\n'
SITEMAPINDEX = ('<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
                '{}\n</sitemapindex>\n')
LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
          + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
          + ']>\n<urlset><url><loc>&lol9;</loc></url>\n')


def _xml(text: str) -> Reply:
    return Reply(200, [("Content-Type", "application/xml")], text.encode())


def _locs(urls: list[str]) -> str:
    return "\n".join(f"<url><loc>{html.escape(u)}</loc></url>" for u in urls)


def sitemap(web: HostileWeb, host: Host, name: str) -> Reply | None:
    """The host's sitemaps: a plain one listing every page, and the hostile ones named in robots.txt."""
    o = web.origin(host)
    index = "\n".join(f"<sitemap><loc>{o}/{s}</loc></sitemap>" for s in ("sitemap-index.xml", "sitemap-index2.xml",
                                                                           "sitemap-bad.xml"))
    table: dict[str, Callable[[], Reply]] = {
        "sitemap.xml": lambda: _xml(URLSET.format(_locs([o + web.page_path(host, n) for n in range(host.pages)]))),
        "sitemap.xml.gz": lambda: Reply(200, [("Content-Type", "application/gzip")], sitemap_bomb(web.cfg.bomb_mib)),
        "sitemap-gz.xml": lambda: Reply(200, [("Content-Type", "application/xml"), ("Content-Encoding", "gzip")],
                                        sitemap_bomb(web.cfg.bomb_mib)),
        "sitemap-index.xml": lambda: _xml(SITEMAPINDEX.format(index)),
        "sitemap-index2.xml": lambda: _xml(SITEMAPINDEX.format(index + f"\n<sitemap><loc>{o}/sitemap.xml</loc></sitemap>")),
        "sitemap-bad.xml": lambda: _xml(LAUGHS + _locs(["http://[bad/x", "https://[x]/", "javascript:alert(1)",
                                                        "../p/good/0.html", "ftp://127.0.0.1/x", "http:///"]) + "<url><loc>"),
    }
    make = table.get(name)
    return make() if make else None


# ---------------------------------------------------------------- routes

def route_robots(web: HostileWeb, host: Host, parts: list[str]) -> Reply:
    return ROBOTS.get(host.kind, ROBOTS["good"])(web, host)  # the refused host is never bound


def route_index(web: HostileWeb, host: Host, parts: list[str]) -> Reply | None:
    if parts[1:] not in ([""], ["index.html"]):
        return None
    return page_reply(web, host, -1, "good")


def _number(text: str, suffix: str, below: int) -> int | None:
    if not text.endswith(suffix) or not text[: -len(suffix)].isdigit():
        return None
    n = int(text[: -len(suffix)])
    return n if n < below else None


def route_page(web: HostileWeb, host: Host, parts: list[str]) -> Reply | None:
    """``/p/<kind>/<n>.html``: the kind is served only where the generator put it."""
    n = _number(parts[3], ".html", host.pages) if len(parts) == 4 else None
    if n is None or parts[2] != web.page_kind(host, n):
        return None
    kind = parts[2]
    if kind in RESPONSES:
        return RESPONSES[kind](web, host, "p", f"{n}.html", lambda: page_reply(web, host, n, "good"))
    return page_reply(web, host, n, kind)


def route_image(web: HostileWeb, host: Host, parts: list[str]) -> Reply | None:
    """``/i/<kind>/<name>``: any name; its bytes come from (seed, host, name)."""
    if len(parts) != 4 or not parts[3]:
        return None
    kind, name = parts[2], parts[3]
    if kind in RESPONSES:
        return RESPONSES[kind](web, host, "i", name, lambda: _good_image(web, host, name))
    make = IMAGE_BODIES.get(kind)
    return make(web, host, name) if make else None


def route_private(web: HostileWeb, host: Host, parts: list[str]) -> Reply | None:
    """``/private/...``: good content that robots.txt forbids (reached only through redirects)."""
    name = "/".join(parts[2:])
    if name.endswith(".html") and _number(name, ".html", host.pages) is not None:
        return page_reply(web, host, int(name[:-5]), "good")
    return _good_image(web, host, "private-" + name) if name else None


def route_loop(web: HostileWeb, host: Host, parts: list[str]) -> Reply | None:
    """``/loop/<section>/<name>/a`` and ``/b`` redirect to each other."""
    if len(parts) != 5 or parts[4] not in ("a", "b"):
        return None
    return _redirect("/".join([*parts[:4], "b" if parts[4] == "a" else "a"]))


def route_chain(web: HostileWeb, host: Host, parts: list[str]) -> Reply | None:
    """``/chain/<section>/<name>/<k>``: eight hops, then the content."""
    if len(parts) != 5 or not parts[4].isdigit():
        return None
    k = int(parts[4])
    if k < 8:
        return _redirect("/".join([*parts[:4], str(k + 1)]))
    return _good_image(web, host, parts[3]) if parts[2] == "i" else page_reply(web, host, -1, "good")


def route_sitemap(web: HostileWeb, host: Host, parts: list[str], name: str) -> Reply | None:
    """``/<name>`` (one of the sitemap files) on any host; deeper paths are not found."""
    return sitemap(web, host, name) if len(parts) == 2 else None


ROUTES: dict[str, Callable[[HostileWeb, Host, list[str]], Reply | None]] = {
    "robots.txt": route_robots, "": route_index, "index.html": route_index, "p": route_page, "i": route_image,
    "private": route_private, "loop": route_loop, "chain": route_chain,
    **{name: functools.partial(route_sitemap, name=name)
       for name in ("sitemap.xml", "sitemap.xml.gz", "sitemap-gz.xml", "sitemap-index.xml", "sitemap-index2.xml",
                    "sitemap-bad.xml")},
}


# ---------------------------------------------------------------- the server (thin)

def write_fast(handler: BaseHTTPRequestHandler, reply: Reply, cfg: HostileWebConfig) -> None:
    handler.wfile.write(reply.raw if reply.raw is not None else reply.head() + reply.body)


def write_trickle(handler: BaseHTTPRequestHandler, reply: Reply, cfg: HostileWebConfig) -> None:
    for byte in reply.head():
        handler.wfile.write(bytes([byte]))
        time.sleep(cfg.trickle_gap)
    handler.wfile.write(reply.body)


def write_slow_body(handler: BaseHTTPRequestHandler, reply: Reply, cfg: HostileWebConfig) -> None:
    handler.wfile.write(reply.head())
    step = max(1, len(reply.body) // 8)
    for i in range(0, len(reply.body), step):
        time.sleep(cfg.slow_seconds / 8)
        handler.wfile.write(reply.body[i:i + step])


def write_slow_start(handler: BaseHTTPRequestHandler, reply: Reply, cfg: HostileWebConfig) -> None:
    time.sleep(cfg.slow_seconds)
    write_fast(handler, reply, cfg)


PACES: dict[str, Callable[[BaseHTTPRequestHandler, Reply, HostileWebConfig], None]] = {
    "fast": write_fast, "trickle": write_trickle, "slow_body": write_slow_body, "slow_start": write_slow_start}


class HostServer(ThreadingHTTPServer):
    """One host of the web: a threaded server bound to its own loopback address."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, web: HostileWeb, host: Host, port: int, counts: Counter, lock: threading.Lock,
                 log: io.TextIOBase | None = None):
        self.web, self.host, self.counts, self.lock, self.log = web, host, counts, lock, log
        super().__init__((host.address, port), HostileHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (deadlines, byte caps) are the point here: stay quiet about them."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class HostileHandler(BaseHTTPRequestHandler):
    """GET answered by ``HostileWeb.respond`` and written at the reply's pace."""

    server: HostServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 20  # idle keep-alive connections do not hold a thread for ever

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet."""

    def do_GET(self) -> None:  # noqa: N802
        """Answer and count by (section, kind)."""
        srv = self.server
        reply = srv.web.respond(srv.host.index, self.path)
        section, kind = url_kind(self.path)
        with srv.lock:
            srv.counts[f"{section}/{kind}" if kind else section[:40] or "/"] += 1
            if srv.log is not None:
                srv.log.write(f"{time.time():.3f}\t{srv.host.address}\t{reply.status}\t{reply.pace}\t{self.path[:200]}\n")
        PACES[reply.pace](self, reply, srv.web.cfg)
        if reply.close or reply.pace != "fast" or reply.length is not None or reply.raw is not None:
            self.close_connection = True


@dataclass
class Served:
    """A running hostile web: its servers, the web and the request counts."""

    web: HostileWeb
    servers: list[HostServer]
    counts: Counter

    def stop(self) -> None:
        """Shut every host down (in parallel: each waits out its poll interval)."""
        stoppers = [threading.Thread(target=s.shutdown) for s in self.servers]
        for t in stoppers:
            t.start()
        for t, s in zip(stoppers, self.servers, strict=True):
            t.join()
            s.server_close()


def serve(cfg: HostileWebConfig, port: int = 0, attempts: int = 5, log: io.TextIOBase | None = None) -> Served:
    """Bind every host but the refused one to ``port`` (0: a free port shared by all) and serve in threads.

    ``log`` gets one line per request: time, host, status, pace, path.
    """
    for _ in range(attempts):
        web = HostileWeb(cfg, port)
        gzip_bomb(cfg.bomb_mib), sitemap_bomb(cfg.bomb_mib), big_png()  # made once, before any deadline counts
        counts: Counter[str] = Counter()
        lock, servers = threading.Lock(), []
        try:
            for host in web.hosts:
                if host.kind == "refused":
                    continue
                servers.append(HostServer(web, host, web.port, counts, lock, log))
                web.port = web.port or servers[0].server_address[1]
        except OSError:
            for s in servers:
                s.server_close()
            if port:
                raise
            continue
        for s in servers:
            threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True,
                             name=f"hostile-{s.host.address}").start()
        return Served(web, servers, counts)
    raise OSError("could not bind the hostile web's hosts to one free port")


def main(argv: list[str] | None = None) -> int:
    """``python -m webclip.sampleweb.hostile [--hosts N ...] [--port P]``: one JSON line when ready, one at exit."""
    from webclip.config import add_flags, build, flag_overrides

    p = argparse.ArgumentParser(prog="python -m webclip.sampleweb.hostile", description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0, help="one port for every host (0: a free one)")
    p.add_argument("--log", help="append one line per request (time, host, status, pace, path)")
    add_flags(p, HostileWebConfig)
    args = p.parse_args(argv)
    cfg = build(HostileWebConfig, {}, flag_overrides(args, HostileWebConfig))
    log = open(args.log, "a", buffering=1) if args.log else None  # noqa: SIM115
    served = serve(cfg, args.port, log=log)
    web = served.web
    print(json.dumps({"port": web.port, "seeds": web.seeds(), "pages": web.total_pages(),
                      "hosts": {h.address: h.kind for h in web.hosts}, "config": asdict(cfg)}), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        sys.stdin.read()  # serve until stdin closes (the parent exits) or SIGTERM
    finally:
        with served.servers[0].lock:
            print(json.dumps({"requests": sum(served.counts.values()), "by_kind": dict(sorted(served.counts.items()))}),
                  flush=True)
        served.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

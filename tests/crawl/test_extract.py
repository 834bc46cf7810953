"""Extraction rules, parser agreement on real pages, and charset decoding."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from tests.conftest import shared_data
from webclip.crawl.charset import decode_html
from webclip.crawl.extract import extract

PAGE = """<html lang="EN"><head><base href="http://ex.com/media/"><meta name="robots" content="noimageai"></head><body>
<img src="a.jpg" alt="  Tom &amp; Jerry
 run ">
<img src="data:image/gif;base64,xx" data-src="/lazy.jpg" alt="lazy one">
<img src="data:image/gif;base64,xx" alt="inline">
<img src="s.jpg" srcset="s.jpg 100w, big.jpg 800w" alt="with srcset" width="640px" height="x">
<picture><source srcset="p-small.webp 1x, p-large.webp 2x"><img src="p.jpg" alt="in picture"></picture>
<img src="javascript:void(0)" alt="js">
<img src="noalt.jpg">
<img src="empty.jpg" alt="   ">
</body></html>"""


@pytest.mark.parametrize("parser", ["scan", "selectolax", "bs4"])
def test_rules(parser: str) -> None:
    cands, drops, _ = extract(PAGE, "http://ex.com/page.html", parser)
    by_alt = {c.alt: c for c in cands}
    assert by_alt["Tom & Jerry run"].image_url == "http://ex.com/media/a.jpg"
    assert by_alt["lazy one"].image_url == "http://ex.com/lazy.jpg"
    assert by_alt["with srcset"].srcset_url == "http://ex.com/media/big.jpg" and by_alt["with srcset"].width == 640
    assert by_alt["with srcset"].height is None
    assert by_alt["in picture"].image_url == "http://ex.com/media/p.jpg"
    assert by_alt["in picture"].srcset_url == "http://ex.com/media/p-large.webp"
    assert all(c.opt_out and c.page_lang == "en" for c in cands)
    assert drops == {"extract/placeholder": 1, "extract/bad_scheme": 1, "extract/missing_alt": 1, "extract/empty_alt": 1}


def _pages():
    html = shared_data("html")
    index = [json.loads(line) for line in (html / "index.jsonl").read_text().splitlines()]
    for row in index:
        data = gzip.decompress((html / row["file"]).read_bytes())
        yield row["file"], data, row.get("url") or f"http://example.com/{row['file']}"


@pytest.fixture(scope="module")
def real_pages() -> list[tuple[str, str, tuple]]:
    """(text, url, bs4 reference extraction) of every real page."""
    out = []
    for _, data, url in _pages():
        text, _ = decode_html(data)
        out.append((text, url, extract(text, url, "bs4")))
    return out


@pytest.mark.parametrize("parser", ["scan", "selectolax"])
def test_fast_parsers_agree_with_bs4_reference_on_real_pages(parser: str, real_pages: list) -> None:
    """bs4 + lxml is the second reference; where it and html5lib part, html5lib decides (its own test lists those)."""
    from tests.crawl.test_html5lib_reference import BS4_DIVERGENCES

    differ, links = [], 0
    for text, url, reference in real_pages:
        ours = extract(text, url, parser)
        if not (ours[0] == reference[0] and ours[1] == reference[1]):
            differ.append(url)
        links += ours[2].links == reference[2].links
    if parser == "scan":
        assert len(differ) <= len(BS4_DIVERGENCES), differ
    assert len(differ) <= 0.01 * len(real_pages), differ
    assert links / len(real_pages) >= 0.99, f"{links}/{len(real_pages)} pages give the same links"


# Markup where a naive scanner and the HTML5 tokenizer (libxml2 2.14, under bs4) part ways.
TRICKY = [
    "<noscript><img src=a.jpg alt=n></noscript>",  # no scripting: noscript content is markup
    "<iframe><img src=b.jpg alt=i></iframe><title><img src=c alt=t></title><textarea><img src=d alt=x></textarea>",
    '<script>x="</div>"; <img src=e alt=s></script><img src=f alt=ok>',
    "<script><!-- <script>x</script> <img src=a alt=b> --></script><img src=c alt=d>",  # double-escaped
    "<script><!--> <img src=a alt=b></script><script><!---></script><img src=c alt=d>",
    '<img alt="a&ampx &amp;y &copy=z &copy z &#65 &#x41; &notit; &notin; &lt &ltx" src=q>',
    "<IMG SRC=Q ALT=up alt=dup>", "<img alt=x\"y src=r>", "<img/src=s/alt=t>", '<img alt="a" src="k"id=3>',
    "<!-- <img src=g alt=c> --><img src=h alt=d><!--><img src=h2 alt=e><!----><img src=h3 alt=f>",
    "<!x <img src=m alt=b> ><img src=n alt=c><?php <img src=o alt=p> ?><img src=p alt=q>",
    "</ <img src=a alt=b>><img src=c alt=d></><img src=e alt=f>",
    '<img src=o alt="x\r\ny">', "<img src=a alt=b", "<style><img src=j alt=x></style ><xmp><img src=i alt=x></xmp>",
    '<meta content="x" name="ROBOTS" content="noimageai"><img src=a alt=b>',
    '<html lang=en><body><html lang=fr><img src=l alt=a>', '<base href=""><base href=/x/><img src=b alt=c>',
    "<picture><source srcset='a.webp 2x'><img src=x alt=y></picture><picture><img src=z alt=w><source srcset=q>",
]


@pytest.mark.parametrize("html", TRICKY)
def test_scanner_tokenizes_like_the_reference(html: str) -> None:
    ours, reference = extract(html, "http://e.com/p/", "scan"), extract(html, "http://e.com/p/", "bs4")
    assert ours[0] == reference[0]
    assert ours[1] == reference[1] and ours[2].imgs == reference[2].imgs


def test_scanner_survives_hostile_markup_in_linear_time() -> None:
    import time

    nasty = ["<meta " * 20_000, "<img alt='" * 20_000, "<!--" * 20_000, "<script>" * 20_000,
             "<style " * 20_000, "<a href=" * 20_000, "<" * 50_000, "&" * 50_000, "<img alt=&amp" * 10_000]
    for text in nasty:
        started = time.process_time()
        extract(text, "http://e.com/", "scan")
        assert time.process_time() - started < 5, text[:20]  # quadratic would take minutes here


def test_alts_match_reference_file() -> None:
    alts = shared_data("alts") / "alts.jsonl"
    expected: dict[str, list[str]] = {}
    for line in alts.read_text().splitlines():
        r = json.loads(line)
        if r["alt"] and r["alt"].strip():
            expected.setdefault(r["page_file"], []).append(" ".join(r["alt"].split()))
    matched = total = 0
    for name, data, url in _pages():
        text, _ = decode_html(data)
        page = extract(text, url)[2]
        got = [" ".join((t.attrs.get("alt") or "").split()) for t in page.imgs]
        got = [g for g in got if g]
        total += 1
        matched += got == expected.get(name, [])
    assert matched / total >= 0.99, f"{matched}/{total}"


def test_lying_meta_charset_falls_back_to_utf8() -> None:
    data = gzip.decompress((shared_data("html") / "readability-qq.html.gz").read_bytes())
    text, codec = decode_html(data)
    assert codec == "utf-8"
    assert extract(text, "http://qq.com/")[2].imgs


def test_charset_order() -> None:
    body = "<meta charset='windows-1252'><p>café</p>".encode("cp1252")
    assert "café" in decode_html(body)[0]
    assert "café" in decode_html("<p>café</p>".encode("latin-1"), "text/html; charset=iso-8859-1")[0]
    assert decode_html(b"\xef\xbb\xbf<p>\xc3\xa9</p>")[0] == "<p>é</p>"
    assert decode_html(b"\xef\xbb\xbf<p>\xc3\xa9</p>", "text/html; charset=windows-1252")[1] == "utf-8"  # BOM first


@pytest.mark.parametrize("label", ["utf-16", "UTF-16LE", "utf-16be", "unicodefffe"])
def test_utf16_in_meta_means_utf8(label: str) -> None:
    text, codec = decode_html(f'<meta charset="{label}"><img src=/a.jpg alt="café">'.encode())
    assert codec == "utf-8" and extract(text, "http://e.com/")[0][0].alt == "café"


@pytest.mark.parametrize(("data", "content_type"), [
    (b"<p>caf\xc3\xa9 \xff</p>", "text/html; charset=utf-8"),
    (b"<meta charset=utf-8><p>caf\xc3\xa9 \xff</p>", None),
    (b'<meta http-equiv="Content-Type" content="text/html; charset=UTF-8"><p>caf\xc3\xa9 \xff</p>', None),
    (b"\xef\xbb\xbf<p>caf\xc3\xa9 \xff</p>", "text/html; charset=iso-8859-1"),
])
def test_declared_utf8_stays_utf8_with_replacement_characters(data: bytes, content_type: str | None) -> None:
    text, codec = decode_html(data, content_type)
    assert codec == "utf-8" and "café \ufffd" in text


@pytest.mark.parametrize(("head", "expected"), [
    (b'<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">', "cp932"),
    (b'<meta content="text/html; charset=windows-1251">', None),  # content needs http-equiv
    (b"<!-- <meta charset=big5> --><meta charset=koi8-r>", "koi8-r"),
    (b'<div title="<meta charset=big5>"><meta charset="euc-kr">', "cp949"),
    (b'<meta charset="bogus"><meta charset="gbk">', "gb18030"),
    (b'<meta charset="latin1">', "cp1252"), (b"<meta charset=x-user-defined>", "cp1252"),
    (b"<meta name=x charset=' EUC-JP '>", "euc-jp"), (b"<metacharset=big5>", None),
    (b" " * 1020 + b"<meta charset=big5>", None),  # past the first 1024 bytes
])
def test_meta_prescan_by_the_spec(head: bytes, expected: str | None) -> None:
    from webclip.crawl.charset import prescan

    assert prescan(head + b"<p>x</p>") == expected


def _legacy_warc_pages() -> list[tuple[bytes, str]]:
    """HTML responses of the real archives that declare a legacy charset, with their declared codec."""
    from warcio.archiveiterator import ArchiveIterator

    from webclip.crawl.charset import codec_for, header_charset, prescan

    out = []
    for path in sorted(shared_data("warc").glob("*.warc*")):
        if "wat" in path.name or "wet" in path.name:
            continue
        with path.open("rb") as stream:
            for record in ArchiveIterator(stream):
                ctype = (record.http_headers.get_header("Content-Type") or "") if record.http_headers else ""
                if record.rec_type == "response" and "html" in ctype:
                    body = record.content_stream().read()
                    codec = codec_for(header_charset(ctype)) or prescan(body)
                    if codec not in (None, "utf-8"):
                        out.append((body, codec))
    return out


def test_detection_finds_the_declared_text_of_real_legacy_pages() -> None:
    from webclip.crawl.charset import detect

    pages = _legacy_warc_pages()
    assert len(pages) >= 30  # euc-jp, gbk/gb2312, windows-1251 pages of Common Crawl
    same = sum(body.decode(detect(body), "replace") == body.decode(codec, "replace") for body, codec in pages)
    old_fallback = sum(body.decode("cp1252", "replace") == body.decode(codec, "replace") for body, codec in pages)
    assert same >= 0.95 * len(pages) and old_fallback == 0, (same, old_fallback, len(pages))


def test_absolute_url_fast_path_equals_urljoin() -> None:
    from urllib.parse import urljoin

    from webclip.crawl.urls import Resolver

    urls = ["HTTP://X.com/a", "https://x/./a", "http://x/a/../b", "https:x", "http:/x", "http://x/?", "http://x/#",
            "http://x?a#", "https://cdn.example.com/img/a.jpg?w=200", "//cdn.example.com/a.jpg", "a.jpg", "/b.png"]
    for u in urls:
        assert Resolver("http://e.com/dir/p.html")(u) == urljoin("http://e.com/dir/p.html", u), u


def test_resolver_equals_urljoin_on_every_url_of_the_real_pages(real_pages: list) -> None:
    from urllib.parse import urljoin

    from webclip.crawl.lazy import LAZY_URL_ATTRS, SRCSET_ATTRS
    from webclip.crawl.srcset import parse_srcset
    from webclip.crawl.urls import Resolver

    checked = 0
    for _, url, reference in real_pages:
        page = reference[2]
        resolve = Resolver(url)
        urls = list(page.links)
        for tag in page.imgs:
            urls += [v for k, v in tag.attrs.items() if (k == "src" or k in LAZY_URL_ATTRS) and v and v[0] not in "{["]
            srcsets = [a.get(k) or "" for a in (tag.attrs, *tag.sources) for k in SRCSET_ATTRS]
            urls += [c.url for s in srcsets for c in parse_srcset(s)]
        for u in urls:
            u = u.strip()
            if not u or u[:5].lower() == "data:":
                continue
            try:
                expected = urljoin(url, u)
            except ValueError:
                expected = None
            assert resolve(u) == expected, (url, u)
            checked += 1
    assert checked > 10_000


# --- lazy images and placeholders (the attribute list is crawl/lazy.py's survey) ---

SURVEY_PLACEHOLDERS = ["placeholder-horizontal.gif", "grey.gif", "1x1.trans.gif", "blank_1x1.gif", "blank.png",
                       "blank-f2c3362333e2a7a073648cf7e50aa224b02674cd3b28b24000ca5cdc8980f75f.png", "grey_bg.gif",
                       "lazyload-placeholder.png", "loading.gif", "1x1-white.jpg", "image-lazy.png", "preloaderbig.gif",
                       "placeholder.svg", "pixel.gif", "lazy_placeholder.gif", "nn-loading.png", "clear.gif",
                       "spacer.gif", "transparent-1093278.png", "transparent.png", "blank.gif", "cleardot.gif",
                       "lazy-loading-14x9.png", "native-ad-placeholder.png", "penci2-holder.png", "lazy.gif"]
SURVEY_REAL = ["logo_trans.png", "icon-sign-in-gray.svg", "blankfein-gettyimages-456026072.jpg", "blanket-coverage.png",
               "avatar_empty_x1.png", "acknowledgements_clip_grey.jpg", "home-depot-store-customer-loading-truck.jpg",
               "lazy-dog.jpg", "pixel", "ph_header_logo_white_transparent_bkgnd.svg", "e151e5.gif"]


def _one(html: str, parser: str = "scan") -> tuple[list, dict]:
    cands, drops, _ = extract(html, "http://e.com/p/", parser)
    return [(c.image_url, c.srcset_url) for c in cands], dict(drops)


def test_every_placeholder_word_passes_the_prefilter() -> None:
    """``hinted`` decides most names alone: it must find something in every word the placeholder rule knows."""
    from webclip.crawl.lazy import _STRONG, _WEAK, hinted

    words = []
    for word in f"{_STRONG}|{_WEAK}".split("|"):
        choice = re.search(r"\[(\w+)\]", word)
        words += [word[:choice.start()] + c + word[choice.end():] for c in choice.group(1)] if choice else [word]
    assert len(words) > 15 and [w for w in words if not hinted(f"x-{w}-1.gif")] == []


def test_placeholder_names_from_the_survey() -> None:
    from webclip.crawl.lazy import is_placeholder

    assert [n for n in SURVEY_PLACEHOLDERS if not is_placeholder(f"http://e.com/i/{n}?v=1")] == []
    assert [n for n in SURVEY_REAL if is_placeholder(f"http://e.com/i/{n}")] == []
    assert is_placeholder("data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@pytest.mark.parametrize("name", ["data-src", "data-lazy-src", "data-original", "data-lazy", "data-hi-res-src",
                                  "data-high-res-src", "datasrc", "data-delayed-url", "data-ghost-url",
                                  "data-src-large", "data-source-standard"])
@pytest.mark.parametrize("parser", ["scan", "selectolax", "bs4"])
def test_every_documented_lazy_attribute_is_read(name: str, parser: str) -> None:
    from webclip.crawl.lazy import LAZY_URL_ATTRS

    assert name in LAZY_URL_ATTRS
    html = f'<img src="/img/spacer.gif" {name}="/real/{name}.jpg" alt="a cat">'
    assert _one(html, parser) == ([(f"http://e.com/real/{name}.jpg", None)], {})


@pytest.mark.parametrize("parser", ["scan", "selectolax", "bs4"])
@pytest.mark.parametrize(("html", "expected"), [
    # MSN: a JSON object in data-src
    ("""<img src="//s.example/e151e5.gif" data-src='{"default":"//img.example/a.img?h=76&amp;w=138"}' alt="a">""",
     ("http://img.example/a.img?h=76&w=138", None)),
    ("""<img data-src='{"default":{"load":"default","w":"80","src":"//img.example/b.img"}}' alt="a">""",
     ("http://img.example/b.img", None)),
    # a placeholder src gives way to the real image in data-srcset / data-lazy-srcset
    ('<img src="data:image/svg+xml,%3Csvg%3E" data-lazy-srcset="/a-640.jpg 640w, /a-300.jpg 300w" alt="a">',
     ("http://e.com/a-640.jpg", "http://e.com/a-640.jpg")),
    ('<img src="/i/placeholder-horizontal.gif" data-srcset="/a.jpg 1x, /a@2x.jpg 2x" alt="a">',
     ("http://e.com/a@2x.jpg", "http://e.com/a@2x.jpg")),
    # a 1x1 declared src is a placeholder; a srcset candidate wins over it
    ('<img src="/t.gif" width="1" height="1" srcset="/real.jpg 2x" alt="a">', ("http://e.com/real.jpg", "http://e.com/real.jpg")),
    # a real src stays the image; the placeholder in srcset never becomes srcset_url
    ('<img src="/real.jpg" srcset="/i/blank.gif 4000w, /real-big.jpg 1000w" alt="a">',
     ("http://e.com/real.jpg", "http://e.com/real-big.jpg")),
    # an unusable lazy value (javascript:, a placeholder) does not hide the src
    ('<img src="/real.jpg" data-src="javascript:void(0)" data-original="/i/lazy.gif" alt="a">', ("http://e.com/real.jpg", None)),
])
def test_placeholders_never_win(parser: str, html: str, expected: tuple) -> None:
    assert _one(html, parser) == ([expected], {})


@pytest.mark.parametrize("parser", ["scan", "selectolax", "bs4"])
def test_placeholder_in_source_srcset_loses_to_data_srcset(parser: str) -> None:
    html = ('<picture><source srcset="data:image/gif;base64,R0lGOD 1x" data-srcset="/big.webp 1200w, /small.webp 400w">'
            '<img src="data:image/gif;base64,R0lGOD" data-srcset="/m.jpg 800w" alt="a cat"></picture>')
    assert _one(html, parser) == ([("http://e.com/big.webp", "http://e.com/big.webp")], {})


@pytest.mark.parametrize("parser", ["scan", "selectolax", "bs4"])
@pytest.mark.parametrize("html", [
    '<img src="/i/spacer.gif" alt="a">', '<img src="data:image/gif;base64,R0lGOD" alt="a">',
    '<img src="/p" width="1" height="1" alt="a">', '<img src="/p" width="2" alt="a">',
    '<img srcset="data:image/gif;base64,R0lGOD 1x, /i/blank.gif 2x" alt="a">',
    '<img src="/i/grey.gif" data-src="/i/preloader.gif" alt="a">',
])
def test_an_image_with_only_placeholders_is_dropped(parser: str, html: str) -> None:
    assert _one(html, parser) == ([], {"extract/placeholder": 1})


# --- <picture> as HTML5 picks the sources ---

S = "<source srcset='http://s.example/s.jpg 900w'>"
PICTURES = [
    (f"<picture>{S}<img src=/a.jpg alt=x><source srcset='/late.jpg 2000w'></picture>", ["http://s.example/s.jpg"]),
    (f"<picture>{S}<noscript><source srcset='/n.jpg 3000w'><img src=/n.jpg alt=n></noscript><img src=/a.jpg alt=x>"
     "</picture>", [None, "http://s.example/s.jpg"]),
    ("<picture><source srcset='/outer.jpg 3000w'><picture><source srcset='/inner.jpg 500w'><img src=/a.jpg alt=x>"
     "</picture><img src=/b.jpg alt=y></picture>", ["http://e.com/inner.jpg", "http://e.com/outer.jpg"]),
    (f"<picture>{S}<div><img src=/a.jpg alt=x></div><img src=/b.jpg alt=y></picture>", [None, "http://s.example/s.jpg"]),
    (f"<picture>{S}<p>t<div></div><img src=/a.jpg alt=x></picture>", ["http://s.example/s.jpg"]),  # <div> closes <p>
    (f"<picture>{S}<div></picture></div><img src=/a.jpg alt=x>", ["http://s.example/s.jpg"]),  # </picture> ignored
    (f"<div><picture>{S}</div><img src=/a.jpg alt=x>", [None]),  # </div> closes the picture inside it
    ("<picture><source type='image/svg+xml' srcset='/v.svg 3000w'><source type='IMAGE/WEBP; codecs=x' "
     "srcset='/w.webp 1000w'><source type='image/jxl' srcset='/j.jxl 4000w'><img src=/a.jpg alt=x></picture>",
     ["http://e.com/w.webp"]),  # Pillow decodes webp, not svg or jxl here
]


@pytest.mark.parametrize("parser", ["scan", "selectolax", "bs4"])
@pytest.mark.parametrize(("html", "expected"), PICTURES)
def test_picture_sources_by_html5(parser: str, html: str, expected: list) -> None:
    cands, _, _ = extract(html, "http://e.com/p/", parser)
    assert [c.srcset_url for c in cands] == expected


def test_decodable_types_come_from_pillow() -> None:
    from PIL import Image

    from webclip.crawl.lazy import decodable_types

    Image.init()
    assert {"image/jpeg", "image/png", "image/gif", "image/webp", "image/jpg"} <= decodable_types()
    assert "image/svg+xml" not in decodable_types() and "application/pdf" not in decodable_types()
    assert all(Image.MIME[f] in decodable_types() for f in Image.OPEN if Image.MIME.get(f, "").startswith("image/"))


NESTED = "<picture>" * 20_000 + "<source srcset='/a.jpg 2x'><img src=/b.jpg alt=x>" + "</picture>" * 20_000


@pytest.mark.parametrize("html", [
    NESTED,
    "<picture>" + "<source srcset='/a.jpg 2x'><img src=/b.jpg alt=x>" * 10_000,
    "<picture>" + "<div>" * 20_000 + "</span>" * 20_000 + "</div>" * 20_000 + "<img src=/b.jpg alt=x>",
])
def test_nested_pictures_in_linear_time(html: str) -> None:
    import time

    started = time.process_time()
    cands = extract(html, "http://e.com/", "scan")[0]
    assert time.process_time() - started < 1.0
    assert cands[0].srcset_url == ("http://e.com/a.jpg" if "source" in html else None)


def test_nested_pictures_in_bounded_memory() -> None:
    import tracemalloc

    tracemalloc.start()
    extract(NESTED, "http://e.com/", "scan")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 40 * 2**20, peak  # 20k open pictures: a few MB (each <source> once, not once per open picture)


# --- the scanner reads every tag by the attribute grammar ---

@pytest.mark.parametrize(("html", "expected"), [
    ("""<div data-content="<img src='https://a.example/50.jpg' alt='in-attr'>"><img src=/ok.jpg alt=ok></div>""",
     ["ok"]),
    ('<div title="<script>"></div><img src=/a.jpg alt=after><script>x</script>', ["after"]),
    ('<p title="<!--"><img src=/a.jpg alt=c1></p><!-- --><img src=/b.jpg alt=c2>', ["c1", "c2"]),
    ("</div title='<img src=/x.jpg alt=endtag>'><img src=/a.jpg alt=ok>", ["ok"]),
    ('<style x="</style>"><img src=/s.jpg alt=hidden></style><img src=/a.jpg alt=ok>', ["ok"]),
    ('<img src=/a.jpg alt=one><img src=/b.jpg alt="cut', ["one"]),  # EOF inside a quoted value
    ("<img src=/a.jpg alt=one><img src=/b.jpg alt=cut", ["one"]),  # EOF before '>'
    ("<img src=/a.jpg alt=one><div title='x><img src=/b.jpg alt=in>", ["one"]),  # a skipped tag cut by EOF
])
def test_markup_inside_attribute_values_is_not_markup(html: str, expected: list) -> None:
    for parser in ("scan", "bs4"):
        assert [c.alt for c in extract(html, "http://e.com/", parser)[0]] == expected, parser


def test_robots_meta_is_read_by_attributes() -> None:
    html = '<meta content="noimageindex" data-x="a>b" name="robots"><img src=/a.jpg alt=a>'
    for parser in ("scan", "selectolax", "bs4"):
        assert extract(html, "http://e.com/", parser)[1] == {"extract/noimageindex": 1}, parser


def test_odd_declared_sizes_do_not_break_extraction() -> None:
    html = '<img src=/a.jpg alt=a width="²" height="٣٠"><img src=/b.jpg alt=b width="1234567">'
    cands = extract(html, "http://e.com/")[0]
    # HTML's rules for dimension values read ASCII digits only: '٣٠' (Arabic-Indic 30) declares no size
    assert [(c.width, c.height) for c in cands] == [(None, None), (123456, None)]


# X-Robots-Tag by its grammar: "<agent>:" scopes the directives after it on that header line (lines joined by
# "\n", as the fetcher joins repeated headers); no prefix or "*" speaks to everyone; valued directives
# (max-snippet, unavailable_after) name no agent. (header, images dropped as noimageindex, opt_out)
X_ROBOTS = [
    ("googlebot: noimageindex", False, False), ("otherbot: none", False, False), ("noimageindex", True, False),
    ("*: noimageindex", True, False), ("webclip: noimageindex", True, False), ("WebClip: NONE", True, False),
    ("googlebot: noindex, webclip: noai", False, True), ("googlebot: noimageindex\nnoai", False, True),
    ("noimageai\ngooglebot: noindex", False, True), ("googlebot: max-snippet: 20, noimageindex", False, False),
    ("max-snippet: 20, noimageindex", True, False), ("unavailable_after: 25 Jun 2030 15:00:00 PST, noai", False, True),
    ("unavailable_after: Wednesday, 03-Nov-2030 15:00:00 GMT, noindex", True, False), ("noarchive, nosnippet", False, False),
]
ROBOTS_PAGE = "<img src=/a.jpg alt=one><img src=/b.jpg alt=two>"


@pytest.mark.parametrize(("header", "dropped", "opt_out"), X_ROBOTS)
def test_x_robots_tag_is_read_by_its_agent_scope(header: str, dropped: bool, opt_out: bool) -> None:
    """``googlebot: noimageindex`` was read as a bare noimageindex: pages lost every image (found by the soak)."""
    for parser in ("scan", "selectolax", "bs4"):
        cands, drops, _ = extract(ROBOTS_PAGE, "http://e.com/", parser, header_robots=header)
        assert drops == ({"extract/noimageindex": 2} if dropped else {}), parser
        assert [c.opt_out for c in cands] == ([] if dropped else [opt_out, opt_out]), parser


def test_x_robots_tag_speaks_to_the_agent_we_crawl_as() -> None:
    header = "mybot: noimageindex\nwebclip: noai"
    assert extract(ROBOTS_PAGE, "http://e.com/", header_robots=header)[1] == {}
    assert extract(ROBOTS_PAGE, "http://e.com/", header_robots=header, robots_agent="MyBot")[1] == {
        "extract/noimageindex": 2}
    assert [c.opt_out for c in extract(ROBOTS_PAGE, "http://e.com/", header_robots=header)[0]] == [True, True]


@pytest.mark.parametrize(("header", "kept"), [("googlebot: noimageindex", 2), ("noimageindex", 0)])
def test_x_robots_tag_of_an_archived_response_is_read_by_its_agent_scope(tmp_path, header: str, kept: int) -> None:
    """Through the real WARC reader: the archived response's header reaches extraction as the live one does."""
    from webclip.crawl.warc import read_archive

    body = ROBOTS_PAGE.encode()
    http = (f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Robots-Tag: {header}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    warc = tmp_path / "x.warc"
    warc.write_bytes(b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: http://e.com/p\r\n"
                     b"WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-000000000001>\r\n"
                     b"WARC-Date: 2024-01-01T00:00:00Z\r\nContent-Type: application/http; msgtype=response\r\n"
                     + f"Content-Length: {len(http)}\r\n\r\n".encode() + http + b"\r\n\r\n")
    [outcome] = list(read_archive(str(warc)))
    assert len(outcome.candidates) == kept and outcome.img_drops == ({} if kept else {"extract/noimageindex": 2})

"""srcset by the WHATWG algorithm: commas in URLs, descriptor validation, the largest candidate, linear time."""

from __future__ import annotations

import time

import pytest

from webclip.crawl.srcset import SrcsetCandidate, largest, parse_srcset, rank, ranked_urls

C = SrcsetCandidate
CLOUDINARY = "https://res.cloudinary.com/demo/image/upload"
KINJA = "https://i.kinja-img.com/gawker-media/image/upload"

# (srcset, expected candidates) read off the spec's splitting loop and descriptor parser.
CASES = [
    ("a.jpg", [C("a.jpg")]),
    ("  a.jpg 1x ,b.jpg 2x,,c.jpg 3x  ", [C("a.jpg", density=1.0), C("b.jpg", density=2.0), C("c.jpg", density=3.0)]),
    (f"{CLOUDINARY}/c_fill,w_470/a.jpg 470w, {CLOUDINARY}/w_2560,c_limit/a.jpg 2560w",
     [C(f"{CLOUDINARY}/c_fill,w_470/a.jpg", width=470), C(f"{CLOUDINARY}/w_2560,c_limit/a.jpg", width=2560)]),
    ("a.jpg,b.jpg 2x", [C("a.jpg,b.jpg", density=2.0)]),  # no whitespace: one URL with a comma in it
    ("a.jpg, b.jpg", [C("a.jpg"), C("b.jpg")]),  # a URL ending in ',' ends its candidate
    ("a.jpg,,, b.jpg", [C("a.jpg"), C("b.jpg")]),
    ("a.jpg 100w 50h", [C("a.jpg", width=100, height=50)]),
    ("a.jpg 50h", []), ("a.jpg 1w 2x", []), ("a.jpg 0w", []), ("a.jpg 0h 10w", []), ("a.jpg 2x 2x", []),
    ("a.jpg 100W", []), ("a.jpg 2X", []), ("a.jpg -1x", []), ("a.jpg 1.x", []), ("a.jpg x", []), ("a.jpg 10", []),
    ("a.jpg 0x", [C("a.jpg", density=0.0)]), ("a.jpg .5x", [C("a.jpg", density=0.5)]),
    ("a.jpg 1e1x", [C("a.jpg", density=10.0)]), ("a.jpg 1.5e-1x", [C("a.jpg", density=0.15)]),
    ("a.jpg foo(bar, baz) 2x, b.jpg 3x", [C("b.jpg", density=3.0)]),  # the comma inside () does not split
    ("a.jpg (1x, b.jpg 2x", []),  # an unclosed '(' runs to the end
    ("a.jpg 2x junk, b.jpg", [C("b.jpg")]),
    ("\ta.jpg\n300w,\fb.jpg\r600w", [C("a.jpg", width=300), C("b.jpg", width=600)]),
    (" , ,", []), ("", []),
    ("a.jpg " + "9" * 400 + "x", []),  # past the largest double: the spec's float parser gives an error
    ("a.jpg " + "0" * 400 + "1.5x", [C("a.jpg", density=1.5)]), ("a.jpg " + "0" * 400 + "20w", [C("a.jpg", width=20)]),
]


@pytest.mark.parametrize(("srcset", "expected"), CASES)
def test_parse_by_the_spec(srcset: str, expected: list) -> None:
    assert parse_srcset(srcset) == expected


def _http(url: str) -> str | None:
    return url if url.startswith(("http://", "https://")) else None


@pytest.mark.parametrize(("srcset", "expected"), [
    ("http://e/a_100.jpg, http://e/a_200.jpg 2x", "http://e/a_200.jpg"),  # explicit 2x beats implicit 1x
    ("http://e/a.jpg 2x, http://e/b.jpg 100w", "http://e/b.jpg"),  # any width beats any density
    ("http://e/a.jpg 1x, http://e/b.jpg", "http://e/a.jpg"),  # equals: the first
    ("http://e/s.jpg 320w, data:image/gif;base64,R0lGOD 9999w", "http://e/s.jpg"),  # data: never wins
    ("javascript:x 4000w, http://e/m.jpg 640w, http://e/l.jpg 1024w", "http://e/l.jpg"),
    (f"{KINJA}/c_fill,f_auto,fl_progressive,g_center,h_180,pg_1,q_80,w_320/ab12.jpg 320w, "
     f"{KINJA}/c_fill,f_auto,fl_progressive,g_center,h_675,pg_1,q_80,w_1200/ab12.jpg 1200w",
     f"{KINJA}/c_fill,f_auto,fl_progressive,g_center,h_675,pg_1,q_80,w_1200/ab12.jpg"),
    ("data:image/gif;base64,R0lGOD 1x", None),
])
def test_largest(srcset: str, expected: str | None) -> None:
    assert largest(parse_srcset(srcset), _http) == expected


@pytest.mark.parametrize("shape", ["many", "one_url", "commas", "paren", "spaces"])
def test_a_megabyte_srcset_parses_in_linear_time(shape: str) -> None:
    n = 1 << 20
    text = {
        "many": ", ".join(f"https://cdn.example.com/c_fill,w_{i}/a.jpg {i + 1}w" for i in range(n // 45)),
        "one_url": "https://cdn.example.com/" + "c_fill,w_470/" * (n // 13),
        "commas": "a.jpg" + "," * n,
        "paren": "a.jpg (" + "1x, " * (n // 4),
        "spaces": "a.jpg" + " " * n + "2x",
    }[shape]
    started = time.process_time()
    found = largest(parse_srcset(text), lambda u: u)
    assert time.process_time() - started < 1.0
    assert found is None or found.startswith(("https://", "a.jpg"))


def test_the_one_pass_reading_equals_the_step_by_step_algorithm() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from webclip.crawl.srcset import parse_srcset_by_steps

    for srcset, _ in CASES:
        assert parse_srcset(srcset) == parse_srcset_by_steps(srcset), srcset
        assert ranked_urls(srcset) == [(rank(c), c.url) for c in parse_srcset_by_steps(srcset)], srcset
    pieces = st.sampled_from(["a.jpg", "b,c.png", ",", ", ", " ", "\t", "100w", "0w", "2x", "1.5x", ".5x", "1e1x",
                              "10h", "(", ")", "x", "w", "data:image/gif;base64,R0l", "ö.jpg"])

    @settings(max_examples=500, derandomize=True, database=None, deadline=None)
    @given(st.lists(pieces, max_size=12).map("".join))
    def same(srcset: str) -> None:
        assert parse_srcset(srcset) == parse_srcset_by_steps(srcset)
        assert ranked_urls(srcset) == [(rank(c), c.url) for c in parse_srcset(srcset)]

    same()


def test_a_megabyte_srcset_through_the_whole_extractor() -> None:
    from webclip.crawl.extract import extract

    srcset = ", ".join(f"/c_fill,w_{i}/a.jpg {i + 1}w" for i in range((1 << 20) // 24))
    html = f'<picture><source srcset="{srcset}"><img srcset="{srcset}" src="/s.gif" width=1 height=1 alt="a cat"></picture>'
    started = time.process_time()
    cands = extract(html, "https://cdn.example.com/p/", "scan")[0]
    assert time.process_time() - started < 1.0
    assert cands[0].image_url == cands[0].srcset_url == f"https://cdn.example.com/c_fill,w_{(1 << 20) // 24 - 1}/a.jpg"


def test_numbers_past_pythons_int_limit_do_not_raise() -> None:
    """int() of over 4,300 digits raises ValueError: a hostile width took the whole page down (found in review)."""
    from webclip.crawl.extract import extract

    huge = "9" * 5000
    assert largest(parse_srcset(f"/a.jpg {huge}w, /b.jpg 100w"), lambda u: u) == "/a.jpg"
    assert parse_srcset(f"/a.jpg 100w {huge}h") == [C("/a.jpg", width=100, height=10 ** 300)]
    html = f'<img src=/s.jpg srcset="/a.jpg {huge}w, /b.jpg 100w" alt=a><img srcset="/c.jpg {huge}x" alt=b>'
    cands, drops, _ = extract(html, "http://e.com/")
    assert [(c.image_url, c.srcset_url) for c in cands] == [("http://e.com/s.jpg", "http://e.com/a.jpg")]
    assert drops == {"extract/no_src": 1}

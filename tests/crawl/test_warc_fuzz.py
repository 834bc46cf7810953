"""Fuzz the WARC/WAT reader with the real archives of ../shared/data/warc, mutated.

Byte flips, truncation at any offset, inserted random bytes, duplicated and swapped gzip members, read
whole and as byte ranges. Invariants: nothing escapes; every outcome is a kept page whose images are all
accounted for, or a named drop; two reads give the same outcomes; byte ranges give the whole read's
outcomes; and on per-record gzip files every member the mutation did not touch is still read, as it
reads on its own. ``WEBCLIP_FUZZ_EXAMPLES`` sets the examples per test (``make fuzz`` runs thousands).
"""

from __future__ import annotations

import io
import os
import tempfile
import zlib
from functools import cache
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SHARED_DATA, shared_data
from webclip.crawl.warc import (
    MAX_BYTES,
    UnreadableArchive,
    Window,
    archive_ranges,
    each_member,
    read_archive,
    sniff,
)

EXAMPLES = int(os.environ.get("WEBCLIP_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
WARC = SHARED_DATA / "warc"
PER_RECORD = sorted(p.name for p in WARC.glob("*.gz")) if WARC.is_dir() else []
PLAIN = sorted(p.name for p in WARC.glob("*.warc*") if not p.name.endswith(".gz")) if WARC.is_dir() else []


@cache
def members(name: str) -> tuple[bytes, tuple[int, ...], bool]:
    """A per-record archive's bytes, its member offsets (end included), found with zlib alone, and
    whether its last member is cut short (as in the truncated fixture)."""
    data = (shared_data("warc") / name).read_bytes()
    offsets, pos, cut = [0], 0, False
    while pos < len(data):
        d = zlib.decompressobj(31)
        d.decompress(data[pos:])
        cut = not d.eof
        pos = len(data) - len(d.unused_data) if d.eof else len(data)
        offsets.append(pos)
    return data, tuple(offsets), cut


@cache
def alone(name: str, i: int) -> tuple:
    """What member ``i`` of an archive gives read on its own."""
    data, offsets, _ = members(name)
    return tuple(rows(data[offsets[i]:offsets[i + 1]]))


def rows(source: bytes | str, **kw) -> list[tuple]:
    """Outcomes as comparable tuples; checks every outcome is accounted for on the way."""
    return [as_row(o) for o in read_archive(io.BytesIO(source) if isinstance(source, bytes) else source, **kw)]


def as_row(o) -> tuple:
    """One outcome as a comparable tuple, checked to be accounted for: a named drop, or every image counted."""
    if o.page_drop is not None:
        assert "/" in o.page_drop and not o.candidates and not o.img_drops and not o.imgs, o
    else:
        assert o.imgs == len(o.candidates) + sum(o.img_drops.values()), o
    return o.page_drop, tuple(c.uid for c in o.candidates), tuple(sorted(o.img_drops.items())), o.imgs


def is_subsequence(needles: list, haystack: list) -> bool:
    """Whether ``needles`` appear in ``haystack`` in order (not necessarily adjacent)."""
    it = iter(haystack)
    return all(any(n == h for h in it) for n in needles)


@st.composite
def mutated(draw) -> tuple[str, bytes, list[int]]:
    """(archive, mutated bytes, indices of the members left intact, in their new file order)."""
    name = draw(st.sampled_from(PER_RECORD))
    data, offsets, cut_short = members(name)
    n = len(offsets) - 1
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "duplicate", "swap"]))
    if kind == "flip":
        spots = draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=4))
        out = bytearray(data)
        for spot in spots:
            out[spot] ^= draw(st.integers(1, 255))
        touched = {i for i in range(n) for s in spots if offsets[i] <= s < offsets[i + 1]}
        return name, bytes(out), [i for i in range(n) if i not in touched]
    if kind == "truncate":
        cut = draw(st.integers(0, len(data)))
        return name, data[:cut], [i for i in range(n) if offsets[i + 1] <= cut]
    if kind == "insert":
        at, junk = draw(st.integers(0, len(data))), draw(st.binary(min_size=1, max_size=300))
        return name, data[:at] + junk + data[at:], [i for i in range(n) if not offsets[i] < at < offsets[i + 1]]
    i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
    order = list(range(n))
    if kind == "duplicate":
        order.insert(j, i)
    else:
        order[i], order[j] = order[j], order[i]
    # A member cut short is whole only at the end of the file: moved, it runs into the next one.
    intact = [k for p, k in enumerate(order) if not (cut_short and k == n - 1 and p != len(order) - 1)]
    return name, b"".join(data[offsets[k]:offsets[k + 1]] for k in order), intact


def write(data: bytes) -> str:
    """The bytes as a real file (archive_ranges lists and sizes files on Beam filesystems)."""
    folder = Path(tempfile.gettempdir()) / f"webclip-warc-fuzz-{os.getpid()}"
    folder.mkdir(exist_ok=True)
    path = folder / "mutated.warc.gz"
    path.write_bytes(data)
    return str(path)


def split_reads_agree(path: str, whole: list[tuple], split_bytes: int) -> None:
    """Byte ranges give the whole read's outcomes, each once."""
    try:
        ranges = archive_ranges(path, split_bytes)
    except UnreadableArchive:
        assert whole == []
        return
    assert [r for _, start, end in ranges for r in rows(path, start=start, end=end)] == whole


@FUZZ
@given(case=mutated(), split_bytes=st.integers(200, 40_000))
def test_fuzz_mutated_per_record_archives(case, split_bytes) -> None:
    name, data, intact = case
    path = write(data)
    whole = rows(path)
    assert rows(path) == whole  # deterministic
    split_reads_agree(path, whole, split_bytes)
    assert is_subsequence([r for i in intact for r in alone(name, i)], whole), name
    if sniff(data[:1 << 20]) == "members":  # fastwarc's stream, where it runs, reads as members one by one do
        with open(path, "rb") as f:
            one_by_one = [as_row(o) for o in each_member(Window(f), 0, None, "scan", MAX_BYTES, path)]
        assert one_by_one == whole


@FUZZ
@given(name=st.sampled_from(PLAIN), gzip_whole=st.booleans(), cuts=st.lists(st.integers(0, 1 << 20), max_size=3),
       flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)), max_size=4),
       junk=st.binary(max_size=200))
def test_fuzz_mutated_plain_and_whole_file_gzip_archives(name, gzip_whole, cuts, flips, junk) -> None:
    import gzip

    data = bytearray((shared_data("warc") / name).read_bytes())
    for spot, bits in flips:
        data[spot % len(data)] ^= bits
    for cut in cuts:
        data[cut % (len(data) + 1):cut % (len(data) + 1)] = junk
    content = gzip.compress(bytes(data), mtime=0) if gzip_whole else bytes(data)
    if gzip_whole and cuts:
        content = content[:cuts[0] % (len(content) + 1)]
    path = write(content)
    whole = rows(path)
    assert rows(path) == whole
    split_reads_agree(path, whole, 1000)


KNOWN = {"warc/not_http", "warc/not_html", "warc/bad_content_encoding", "warc/too_large", "warc/truncated_record",
         "warc/parse_error", "warc/corrupt_member", "wat/bad_json", "wat/truncated_record"}
HTML = b"<html><head><base href='/b/'></head><body><img src='a.jpg' alt='A cat'><img src=x.png></body></html>"


def chunked(body: bytes) -> bytes:
    """HTTP chunked transfer encoding of ``body`` in 7-byte chunks."""
    return b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7]) for i in range(0, len(body), 7)) + b"0\r\n\r\n"


BODIES = st.one_of(st.binary(max_size=300), st.just(HTML), st.just(zlib.compress(HTML)), st.just(chunked(HTML)),
                   st.builds(lambda b, cut: b[:cut], st.just(__import__("gzip").compress(HTML)), st.integers(0, 120)))
HEADERS = st.lists(st.tuples(
    st.sampled_from(["Content-Type", "Content-Encoding", "Transfer-Encoding", "X-Robots-Tag", "X-Other"]),
    st.one_of(st.sampled_from(["text/html; charset=utf-8", "application/xhtml+xml", "image/png", "gzip", "deflate",
                               "chunked", "noimageindex", "br", ""]), st.text(max_size=20))), max_size=6)


def warc_member(block: bytes, warc_type: str, length: int, extra: str = "") -> bytes:
    """One gzip member holding one WARC record with ``block`` and a declared ``length``."""
    head = (f"WARC/1.0\r\nWARC-Type: {warc_type}\r\nWARC-Target-URI: http://example.com/p\r\n{extra}"
            f"Content-Length: {length}\r\n\r\n").encode()
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(head + block + b"\r\n\r\n") + c.flush()


@FUZZ
@given(status=st.one_of(st.integers(-5, 100_000).map(str), st.text(max_size=6)), headers=HEADERS, body=BODIES,
       lie=st.integers(-20, 20), bare_lf=st.booleans())
def test_fuzz_generated_http_responses(status, headers, body, lie, bare_lf) -> None:
    """Generated status lines, headers and bodies (encoded, chunked, cut) inside real WARC records."""
    sep = "\n" if bare_lf else "\r\n"
    http = (f"HTTP/1.1 {status} X{sep}" + "".join(f"{k}: {v}{sep}" for k, v in headers) + sep).encode(
        "utf-8", "replace") + body
    member = warc_member(http, "response", max(0, len(http) + lie), "Content-Type: application/http\r\n")
    for drop in {r[0] for r in rows(member * 2)} - {None}:
        assert drop in KNOWN or (drop.startswith("warc/http_") and 100 <= int(drop[10:]) <= 599), drop


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                        st.sampled_from(["Envelope", "Payload-Metadata", "HTTP-Response-Metadata", "HTML-Metadata",
                                         "Links", "url", "alt", "path", "Head", "Base", "WARC-Header-Metadata",
                                         "WARC-Target-URI", "x"]), inner, max_size=4), max_leaves=25)


@FUZZ
@given(doc=JSON, img=st.booleans())
def test_fuzz_generated_wat_metadata(doc, img) -> None:
    """WAT JSON of any shape: a page, no page, or wat/bad_json, never an error."""
    import json

    if img:  # one well-placed image link inside whatever else was generated
        doc = {"Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": {
            "Links": [{"path": "IMG@/src", "url": "/i.jpg", "alt": "a dog"}, doc]}}}}}
    payload = json.dumps(doc).encode()
    out = rows(warc_member(payload, "metadata", len(payload), "Content-Type: application/json\r\n"))
    assert all(r[0] is None or r[0] in KNOWN for r in out), out
    if img:
        assert out and out[0][0] is None and out[0][3] >= 1

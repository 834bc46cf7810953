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
from webclip.crawl.warc import UnreadableArchive, archive_ranges, read_archive

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
    out = []
    for o in read_archive(io.BytesIO(source) if isinstance(source, bytes) else source, **kw):
        if o.page_drop is not None:
            assert "/" in o.page_drop and not o.candidates and not o.img_drops and not o.imgs, o
        else:
            assert o.imgs == len(o.candidates) + sum(o.img_drops.values()), o
        out.append((o.page_drop, tuple(c.uid for c in o.candidates), tuple(sorted(o.img_drops.items())), o.imgs))
    return out


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

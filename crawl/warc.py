"""Common Crawl archives: WARC HTML responses through the shared extractor, WAT image links.

Every record that is a page (an HTTP response in a WARC, an HTML metadata record in a WAT) leaves as one
``PageOutcome``: kept, or dropped with a ``warc/``/``wat/`` reason. Hostile or damaged input costs only
what it damages:

- Per-record gzip files (Common Crawl's layout) are read member by member: a corrupt member, or bytes
  that are no member, count one ``warc/corrupt_member`` and reading resumes at the next intact member
  (the next ``\\x1f\\x8b\\x08`` from which a member inflates into ``WARC/``). Byte ranges of a split file
  use the same rule, so split and whole reads give the same outcomes. fastwarc streams the members as
  long as each proves (by its gzip trailer) to be exactly one record, at fastwarc's speed.
- Plain WARC and whole-file gzip are streamed by fastwarc (which skips junk between plain records);
  a corrupt gzip stream ends there with one ``warc/corrupt_member``: nothing after it can be inflated.
- Every decompression is capped at ``max_bytes`` (gzip member, record block, Content-Encoding); more
  is ``warc/too_large``, never inflated into memory.
- One failure boundary per record (``warc/record_error``) and per archive range
  (``warc/archive_error``, or ``warc/missing_file`` when it cannot be opened): the first few are logged
  with path, offset and traceback, and the run goes on. A corrupt member, an error or a range that
  could not be read counts as one unit, since what it held is unknown.

Whole archives that are missing, empty or not WARC/WAT are refused by ``archive_ranges`` (raising
``UnreadableArchive``), once per archive, before any range is read.
"""

from __future__ import annotations

import io
import json
import logging
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import IO, Any

from webclip.crawl.charset import decode_html
from webclip.crawl.extract import ImgTag, ParsedPage, extract, page_candidates
from webclip.records import Candidate

log = logging.getLogger(__name__)

HTML_TYPES = ("text/html", "application/xhtml+xml")
GZIP_MEMBER = b"\x1f\x8b\x08"
MAX_BYTES = 5_000_000  # CrawlConfig.max_bytes: the same cap as a live fetch's body
HEAD_BYTES = 1 << 20  # bytes read to tell what an archive is
PROBE_BYTES = 1 << 16  # compressed bytes a member may need to show its first output bytes
CHUNK = 1 << 16
HEADER_ROOM = 1 << 16  # a member may exceed the block cap by its WARC headers
LOG_FIRST = 5  # tracebacks logged per reason and process
CORRUPT, TOO_LARGE, TRUNCATED = "warc/corrupt_member", "warc/too_large", "warc/truncated_record"
RECORD_ERROR, ARCHIVE_ERROR, MISSING = "warc/record_error", "warc/archive_error", "warc/missing_file"


@dataclass
class PageOutcome:
    """One page of an archive: its candidates, the drops of its images, or why the page was dropped."""

    page_drop: str | None = None
    candidates: list[Candidate] = field(default_factory=list)
    img_drops: Counter = field(default_factory=Counter)
    imgs: int = 0
    url: str | None = None  # the record's WARC-Target-URI (None for archive-level outcomes)


class UnreadableArchive(Exception):
    """A whole archive is not read: ``reason`` is ``warc/missing_file``, ``warc/empty`` or ``warc/not_warc``."""

    def __init__(self, reason: str, path: str):
        super().__init__(f"{reason}: {path}")
        self.reason = reason


_logged: Counter = Counter()


def contained(exc: BaseException) -> bool:
    """Whether a failure is one item's to absorb: any Exception, or a panic inside fastwarc (Rust)."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def log_drop(reason: str, where: str, offset: int | None, trace: bool = True) -> None:
    """Log the first few drops of each reason with where they happened (and the traceback being handled)."""
    if _logged[reason] < LOG_FIRST:
        _logged[reason] += 1
        log.log(logging.ERROR if trace else logging.WARNING, "%s: %s at byte %s", reason, where, offset,
                exc_info=trace)


def open_archive(path: str) -> IO[bytes]:
    """A raw byte stream for a local, ``gs://``, ``s3://`` or ``http(s)://`` archive (never decompressed)."""
    if path.startswith(("http://", "https://")):
        import requests

        r = requests.get(path, stream=True, timeout=60)
        if r.status_code in (404, 410):
            raise FileNotFoundError(f"{path}: HTTP {r.status_code}")
        r.raise_for_status()
        r.raw.decode_content = False
        return r.raw
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def archive_size(path: str) -> int | None:
    """Bytes of a file on any Beam filesystem; None for http(s) archives."""
    if path.startswith(("http://", "https://")):
        return None
    from apache_beam.io.filesystems import FileSystems

    found = FileSystems.match([path])[0].metadata_list
    if not found:
        raise UnreadableArchive(MISSING, path)
    return found[0].size_in_bytes


class Window:
    """Forward reads at absolute offsets over a raw stream; holds only the bytes after the last release."""

    def __init__(self, stream: IO[bytes], base: int = 0):
        self.stream, self.base, self.buf, self.eof, self.cursor = stream, base, bytearray(), False, base
        self.hold = False  # read() keeps what it passed (a reader may still go back to a released member)
        self.failure: BaseException | None = None  # a read error of the stream itself, kept for fastwarc's caller

    def get(self, offset: int, n: int) -> bytes:
        """Bytes ``[offset, offset + n)`` (fewer at the end of the stream); ``offset`` not yet released."""
        if offset < self.base:
            raise ValueError(f"byte {offset} was released (window starts at {self.base})")
        need = offset - self.base + n
        while len(self.buf) < need and not self.eof:
            try:
                block = self.stream.read(max(need - len(self.buf), CHUNK))
            except BaseException as e:
                self.failure = e
                raise
            self.eof = not block
            self.buf += block
        with memoryview(self.buf) as view:
            return bytes(view[offset - self.base:need])

    def release(self, offset: int) -> None:
        """Forget the bytes before ``offset``."""
        if offset > self.base:
            del self.buf[:offset - self.base]
            self.base = offset

    def read(self, n: int = -1) -> bytes:
        """File-like read from the cursor, for fastwarc."""
        out = self.get(self.cursor, CHUNK if n is None or n < 0 else n)
        self.cursor += len(out)
        if not self.hold:
            self.release(self.cursor)
        return out

    def tell(self) -> int:
        """File-like position of the cursor."""
        return self.cursor


def starts_member(buf: bytes) -> bool:
    """Whether ``buf`` starts a gzip member whose first inflated bytes begin a WARC record."""
    if not buf.startswith(GZIP_MEMBER):
        return False
    try:
        return zlib.decompressobj(31).decompress(buf[:PROBE_BYTES], 8).startswith(b"WARC/")
    except zlib.error:
        return False


def member_at(win: Window, offset: int) -> bool:
    """Whether an intact-looking member starts at ``offset`` (a short look first: most starts show in it)."""
    return starts_member(win.get(offset, 512)) or starts_member(win.get(offset, PROBE_BYTES))


def next_member(win: Window, offset: int, end: int | None) -> int | None:
    """Offset of the first intact-looking member in ``[offset, end)``; None if none (the resync rule)."""
    pos = offset
    while end is None or pos < end:
        win.release(pos)
        block = win.get(pos, CHUNK)
        if len(block) < len(GZIP_MEMBER):
            return None
        i = block.find(GZIP_MEMBER)
        while i >= 0 and (end is None or pos + i < end):
            if member_at(win, pos + i):
                return pos + i
            i = block.find(GZIP_MEMBER, i + 1)
        pos += len(block) - len(GZIP_MEMBER) + 1
    return None


def inflate_member(win: Window, pos: int, cap: int) -> tuple[bytes, int | None, str | None]:
    """(data, offset after the member, failure) of the member at ``pos``, never inflating past ``cap`` bytes.

    The offset is None at the end of the stream; data is then what a truncated member held. On
    ``warc/too_large`` data is the first bytes (the record's headers), on ``warc/corrupt_member`` empty.
    """
    d, out, size, at = zlib.decompressobj(31), [], 0, pos
    while not d.eof:
        chunk = win.get(at, CHUNK)
        if not chunk:
            return b"".join(out), None, None
        at += len(chunk)
        try:
            while chunk:
                piece = d.decompress(chunk, cap + 1 - size)
                out.append(piece)
                size += len(piece)
                if size > cap:
                    return b"".join(out)[:HEADER_ROOM], None, TOO_LARGE
                chunk = d.unconsumed_tail
        except zlib.error:
            return b"", None, CORRUPT
    return b"".join(out), at - len(d.unused_data), None


def gzip_members(win: Window, pos: int | None, end: int | None,
                 cap: int) -> Iterator[tuple[int, bytes, str | None, bool]]:
    """(offset, data, failure, truncated) of each member from ``pos`` on that starts before ``end``.

    ``pos`` is a member start reached in file order (or byte 0). After a bad member reading resumes at
    the next intact one; a range owns the members that start in it, and a bad member right after its
    last good one (where no range can start): so every member is read, or counted bad, by one range.
    """
    while pos is not None and (end is None or pos < end):
        win.release(pos)
        if not win.get(pos, 1):
            return
        intact = member_at(win, pos)
        data, after, failure = inflate_member(win, pos, cap) if intact else (b"", None, CORRUPT)
        yield pos, data, failure, after is None and failure is None
        if failure or after is None:  # a damaged member may inflate on to the end of the file past intact ones
            pos = next_member(win, pos + 1, end)
        elif end is not None and after >= end:
            if _bad_member_at(win, after):
                yield after, b"", CORRUPT, False
            return
        else:
            pos = after


def _bad_member_at(win: Window, offset: int) -> bool:
    return bool(win.get(offset, 1)) and not member_at(win, offset)


def _first_member(head: bytes) -> tuple[bytes | None, bool]:
    """(first inflated bytes, whether the member ended) of a gzip head; None if it is corrupt there."""
    d = zlib.decompressobj(31)
    try:
        return d.decompress(head, MAX_BYTES + HEADER_ROOM), d.eof
    except zlib.error:
        return None, False


def one_record(member: bytes) -> bool:
    """Whether an inflated member holds exactly one WARC record: header, block, and the closing CRLF CRLF."""
    header, sep, _ = member.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", header)
    return bool(sep and length) and len(member) - len(header) - 4 - int(length.group(1)) in range(0, 5)


def sniff(head: bytes) -> str:
    """How to read an archive that starts with ``head``: ``members``, ``stream``, or why it is not read.

    ``members``: per-record gzip (every record starts a member, so any byte offset can be advanced to
    the next record), or gzip whose start is corrupt but that holds intact members further on.
    ``stream``: plain WARC, or gzip with several records per member (read by fastwarc, never split).
    """
    if not head:
        return "warc/empty"
    if head.startswith(GZIP_MEMBER):
        first, ended = _first_member(head)
        if first is not None and first.startswith(b"WARC/"):
            return "members" if ended and one_record(first) else "stream"
    elif head.lstrip().startswith(b"WARC/"):
        return "stream"
    i = head.find(GZIP_MEMBER)
    while i >= 0:
        if starts_member(head[i:i + PROBE_BYTES]):
            return "members"
        i = head.find(GZIP_MEMBER, i + 1)
    return "warc/not_warc"


def read_head(stream: IO[bytes]) -> bytes:
    """The first ``HEAD_BYTES`` of a stream (several reads where a stream returns short ones)."""
    return Window(stream).get(0, HEAD_BYTES)


def archive_ranges(path: str, split_bytes: int) -> list[tuple[str, int, int | None]]:
    """Byte ranges ``(path, start, end)`` to read in parallel; one whole-file range when it cannot split.

    Per-record gzip files of more than ``split_bytes`` split; whole-file gzip, plain WARC and http(s)
    archives are read whole. ``end`` None means to the end of the file. Raises ``UnreadableArchive``
    for a file that is missing, empty or not WARC/WAT.
    """
    size = archive_size(path)
    try:
        with open_archive(path) as f:
            kind = sniff(read_head(f))
    except FileNotFoundError:
        raise UnreadableArchive(MISSING, path) from None
    if kind not in READERS:
        raise UnreadableArchive(kind, path)
    if kind != "members" or split_bytes <= 0 or size is None or size <= split_bytes:
        return [(path, 0, None)]
    return [(path, s, s + split_bytes if s + split_bytes < size else None) for s in range(0, size, split_bytes)]


def read_archive(source: IO[bytes] | str, parser: str = "scan", end: int | None = None, *, start: int = 0,
                 max_bytes: int = MAX_BYTES) -> Iterator[PageOutcome]:
    """Outcomes of every page record starting in ``[start, end)`` of a WARC or WAT file, in file order.

    ``source`` is a path or a stream at byte 0. The failure boundary of one archive range: nothing
    escapes but interrupts, and an empty or non-WARC file gives no outcome (``archive_ranges`` counts it).
    """
    where = source if isinstance(source, str) else str(getattr(source, "name", "<stream>"))
    try:
        with open_archive(source) if isinstance(source, str) else nullcontext(source) as stream:
            yield from _read_range(stream, start, end, parser, max_bytes, where)
    except FileNotFoundError:
        log_drop(MISSING, where, start, trace=False)
        yield PageOutcome(MISSING)
    except BaseException as e:
        if not contained(e):
            raise
        log_drop(ARCHIVE_ERROR, where, start)
        yield PageOutcome(ARCHIVE_ERROR)


def _read_range(stream: IO[bytes], start: int, end: int | None, parser: str, cap: int,
                where: str) -> Iterator[PageOutcome]:
    win = Window(stream)
    read = READERS.get(sniff(win.get(0, HEAD_BYTES)))
    if read is None or (start and read is not read_members):
        return
    if start:
        stream.seek(start)
        win = Window(stream, start)
    yield from read(win, start, end, parser, cap, where)


def read_members(win: Window, start: int, end: int | None, parser: str, cap: int,
                 where: str) -> Iterator[PageOutcome]:
    """Outcomes of the members starting in ``[start, end)`` of a per-record gzip file.

    Range 0 starts at byte 0, any other at its first intact member. fastwarc streams the members while
    each proves to be one whole record; from the first that does not, each member is inflated on its
    own (``gzip_members``), with the same outcomes for the members both could read.
    """
    pos = start if start == 0 else next_member(win, start, end)
    if pos is not None:
        pos = yield from stream_members(win, pos, end, parser, cap, where)
    yield from each_member(win, pos, end, parser, cap, where)


def stream_members(win: Window, pos: int, end: int | None, parser: str, cap: int,
                   where: str) -> Iterator[PageOutcome]:
    """Outcomes from fastwarc's gzip stream, one record behind: a record is given once the next one shows
    its member was exactly that record. Returns where member-by-member reading must take over (None: done)."""
    if not member_at(win, pos):
        return pos
    win.cursor, win.hold = pos, True
    records, pending = _records(win), None
    try:
        for record in records:
            at = record.stream_pos
            if pending is not None:
                if not (at > pending[0] and _isize(win, at) == pending[1]):
                    return pending[0]
                if pending[2] is not None:
                    yield pending[2]
                win.release(at)
                if end is not None and at >= end:
                    if _bad_member_at(win, at):
                        log_drop(CORRUPT, where, at, trace=False)
                        yield PageOutcome(CORRUPT)
                    return None
            elif at != pos:
                return pos
            size = _record_size(record)
            if size > cap + HEADER_ROOM or not member_at(win, at):
                return at
            outcome = page_outcome(record, parser, cap, where, at, win, log=False)
            if outcome is not None and outcome.page_drop == RECORD_ERROR:
                return at  # maybe a corrupt member; reading it on its own tells
            pending = (at, size, outcome)
    except BaseException as e:
        if win.failure is not None:
            raise win.failure from e
        if not contained(e):
            raise
    finally:
        win.hold = False
    return pos if pending is None else pending[0]  # the last member is read again on its own


def _record_size(record: Any) -> int:
    """Bytes of a record as written in the usual form: version line, ``Name: value`` lines, block, CRLFs."""
    h = record.headers
    return len(h.status_line_bytes) + 4 + sum(len(k) + len(v) + 4 for k, v in h.items_bytes()) + record.content_length + 4


def _isize(win: Window, member_end: int) -> int | None:
    """The inflated size recorded in the trailer of the gzip member that ends at ``member_end``."""
    tail = win.get(member_end - 4, 4) if member_end - 4 >= win.base else b""
    return int.from_bytes(tail, "little") if len(tail) == 4 else None


def each_member(win: Window, pos: int | None, end: int | None, parser: str, cap: int,
                where: str) -> Iterator[PageOutcome]:
    """Outcomes of the members from ``pos`` on, each inflated on its own (resyncing after a bad one)."""
    for offset, data, failure, truncated in gzip_members(win, pos, end, cap + HEADER_ROOM):
        if failure is None:
            yield from _member_outcomes(data, truncated, parser, cap, where, offset)
        elif _record_type(data) in (None, *PAGE_READERS):  # an oversized request record is no page
            log_drop(failure, where, offset, trace=False)
            yield PageOutcome(failure)


def _record_type(head: bytes) -> str | None:
    found = re.search(rb"(?im)^WARC-Type:[ \t]*(\S+)", head.partition(b"\r\n\r\n")[0])
    return found.group(1).decode("latin-1").lower() if found else None


def _member_outcomes(data: bytes, truncated: bool, parser: str, cap: int, where: str,
                     offset: int) -> Iterator[PageOutcome]:
    """Outcomes of the records of one inflated member; a member with no readable record counts once."""
    records = 0
    try:
        for record in _records(io.BytesIO(data)):
            records += 1
            outcome = page_outcome(record, parser, cap, where, offset)
            if outcome is not None:
                yield outcome
    except BaseException as e:
        if not contained(e):
            raise
        records = 0
    if not records:
        log_drop(TRUNCATED if truncated else CORRUPT, where, offset, trace=False)
        yield PageOutcome(TRUNCATED if truncated else CORRUPT)


def _records(stream: IO[bytes] | Window) -> Iterator[Any]:
    from fastwarc.warc import ArchiveIterator

    return iter(ArchiveIterator(stream, parse_http=False, quirks_mode=True))


def read_stream(win: Window, start: int, end: int | None, parser: str, cap: int,
                where: str) -> Iterator[PageOutcome]:
    """Outcomes of a plain WARC or a whole-file gzip, streamed by fastwarc; a corrupt gzip stream ends it."""
    records = _records(win)
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except BaseException as e:
            if win.failure is not None:  # the stream broke, not the data: the archive boundary counts it
                raise win.failure from e
            if not contained(e):
                raise
            log_drop(CORRUPT, where, win.tell(), trace=False)
            yield PageOutcome(CORRUPT)
            return
        outcome = page_outcome(record, parser, cap, where, record.stream_pos, win)
        if outcome is not None:
            yield outcome


READERS: dict[str, Callable[..., Iterator[PageOutcome]]] = {"members": read_members, "stream": read_stream}


def page_outcome(record: Any, parser: str, cap: int, where: str, offset: int,
                 win: Window | None = None, log: bool = True) -> PageOutcome | None:
    """Outcome of one record; None for records that are no page. The failure boundary of one record.

    A read error of ``win``, the stream the record is read from, is the archive's failure, not the record's.
    """
    try:
        read = PAGE_READERS.get((record.headers.get("WARC-Type") or "").lower())
        if read is None:
            return None
        outcome = PageOutcome(TOO_LARGE) if record.content_length > cap else read(record, parser, cap)
        if outcome is not None:
            outcome.url = record.headers.get("WARC-Target-URI")
        return outcome
    except BaseException as e:
        if win is not None and win.failure is not None:
            raise win.failure from e
        if not contained(e):
            raise
        if log:
            log_drop(RECORD_ERROR, where, offset)
        return PageOutcome(RECORD_ERROR)


def _metadata(record: Any, parser: str, cap: int) -> PageOutcome | None:
    """A WAT metadata record: JSON describing one capture (other metadata records are no page)."""
    if "json" not in (record.headers.get("Content-Type") or ""):
        return None
    data = record.reader.read(cap)
    if record.content_length and len(data) < record.content_length:
        return PageOutcome("wat/truncated_record")
    return wat_page(data)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def wat_page(payload: bytes) -> PageOutcome | None:
    """Outcome of one WAT metadata record; None for records that describe no HTML response."""
    try:
        env = json.loads(payload)["Envelope"]
    except (ValueError, KeyError, TypeError):
        return PageOutcome("wat/bad_json")
    html = _dict(_dict(_dict(env).get("Payload-Metadata")).get("HTTP-Response-Metadata")).get("HTML-Metadata")
    if html is None:
        return None
    html, url = _dict(html), _dict(_dict(env).get("WARC-Header-Metadata")).get("WARC-Target-URI")
    links = html.get("Links")
    imgs = [ImgTag({"src": _text(link.get("url")), "alt": _text(link.get("alt"))})
            for link in (links if isinstance(links, list) else []) if isinstance(link, dict)
            and link.get("path") == "IMG@/src"]
    page = ParsedPage(imgs=imgs, links=[], base_href=_text(_dict(html.get("Head")).get("Base")))
    cands, drops = page_candidates(page, url if isinstance(url, str) else "", "wat")
    return PageOutcome(None, cands, drops, len(imgs))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _response(record: Any, parser: str, cap: int) -> PageOutcome:
    """Parse HTTP ourselves so a truncated block is measured against its declared length."""
    block = record.reader.read(cap)
    if record.content_length and len(block) < record.content_length:
        return PageOutcome(TRUNCATED)
    head, body = split_http(block)
    if head is None:
        return PageOutcome("warc/not_http")
    lines = head.decode("iso-8859-1").splitlines()
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return PageOutcome("warc/not_http")
    if not 100 <= status <= 599:  # hostile status lines must not mint new counter names
        return PageOutcome("warc/not_http")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if not 200 <= status < 300:
        return PageOutcome(f"warc/http_{status}")
    ctype = headers.get("content-type", "").lower()
    if ctype.split(";")[0].strip() not in HTML_TYPES:
        return PageOutcome("warc/not_html")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    body = _decompress(body, headers.get("content-encoding", "").lower(), cap)
    if isinstance(body, str):
        return PageOutcome(body)
    url = record.headers.get("WARC-Target-URI") or ""
    text, _ = decode_html(body, ctype)
    try:
        cands, drops, page = extract(text, url, parser, "warc", headers.get("x-robots-tag"), links=False)
    except Exception:  # one hostile page costs one page
        return PageOutcome("warc/parse_error")
    return PageOutcome(None, cands, drops, len(page.imgs))


PAGE_READERS: dict[str, Callable[[Any, str, int], PageOutcome | None]] = {"response": _response,
                                                                          "metadata": _metadata}


def split_http(block: bytes) -> tuple[bytes | None, bytes]:
    """(status line + headers, body); tolerates bare ``\\n`` line ends (ClueWeb, old crawlers)."""
    if not block.startswith(b"HTTP/"):
        return None, b""
    ends = [(i, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (i := block.find(sep)) >= 0]
    if not ends:
        return None, b""
    i, n = min(ends)
    return block[:i], block[i + n:]


def inflate_capped(data: bytes, wbits: int, cap: int) -> bytes | str:
    """``data`` inflated (all gzip members when ``wbits`` says gzip), or the drop reason: never past ``cap``."""
    out: list[bytes] = []
    size = 0
    while data:
        d = zlib.decompressobj(wbits)
        try:
            piece = d.decompress(data, cap + 1 - size)
        except zlib.error:
            return "warc/bad_content_encoding"
        out.append(piece)
        size += len(piece)
        if size > cap:
            return TOO_LARGE
        if not d.eof:
            return "warc/bad_content_encoding"  # truncated
        data = d.unused_data if wbits > 16 and d.unused_data.startswith(b"\x1f\x8b") else b""
    return b"".join(out)


def _decompress(body: bytes, encoding: str, cap: int) -> bytes | str:
    """Undo a Content-Encoding left in the record (capped); bodies already decoded pass through."""
    if "gzip" in encoding and body[:2] == b"\x1f\x8b":
        return inflate_capped(body, 16 + zlib.MAX_WBITS, cap)
    if "deflate" in encoding:
        out = inflate_capped(body, zlib.MAX_WBITS, cap)
        return inflate_capped(body, -zlib.MAX_WBITS, cap) if out == "warc/bad_content_encoding" else out
    return body


def _dechunk(body: bytes) -> bytes:
    """Undo HTTP chunked transfer encoding (kept verbatim in some WARCs)."""
    out, pos = [], 0
    while pos < len(body):
        end = body.find(b"\r\n", pos)
        if end < 0:
            break
        try:
            size = int(body[pos:end].split(b";")[0], 16)
        except ValueError:
            return body
        if size == 0:
            break
        out.append(body[end + 2:end + 2 + size])
        pos = end + 2 + size + 2
    return b"".join(out)

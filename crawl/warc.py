"""Common Crawl archives: WARC HTML responses through the shared extractor, WAT image links.

Every record that is a page (an HTTP response in a WARC, an HTML metadata record in a WAT) is kept or
dropped with a reason; truncated or corrupt records are counted and skipped and the rest of the file
is still read.
"""

from __future__ import annotations

import json
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from webclip.crawl.charset import decode_html
from webclip.crawl.extract import ImgTag, ParsedPage, extract, page_candidates
from webclip.records import Candidate

HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass
class PageOutcome:
    """One page of an archive: its candidates, the drops of its images, or why the page was dropped."""

    page_drop: str | None = None
    candidates: list[Candidate] = field(default_factory=list)
    img_drops: Counter = field(default_factory=Counter)
    imgs: int = 0


def open_archive(path: str) -> IO[bytes]:
    """A raw byte stream for a local, ``gs://``, ``s3://`` or ``http(s)://`` archive (never decompressed)."""
    if path.startswith(("http://", "https://")):
        import requests

        r = requests.get(path, stream=True, timeout=60)
        r.raise_for_status()
        r.raw.decode_content = False
        return r.raw
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def wat_page(payload: bytes) -> PageOutcome | None:
    """Outcome of one WAT metadata record; None for records that describe no HTML response."""
    try:
        env = json.loads(payload)["Envelope"]
    except (ValueError, KeyError, TypeError):
        return PageOutcome("wat/bad_json")
    meta = env.get("Payload-Metadata", {}).get("HTTP-Response-Metadata", {})
    html = meta.get("HTML-Metadata")
    if html is None:
        return None
    url = env.get("WARC-Header-Metadata", {}).get("WARC-Target-URI") or ""
    imgs = [ImgTag({"src": link.get("url"), "alt": link.get("alt")}) for link in html.get("Links", [])
            if link.get("path") == "IMG@/src"]
    page = ParsedPage(imgs=imgs, links=[], base_href=(html.get("Head") or {}).get("Base"))
    cands, drops = page_candidates(page, url, "wat")
    return PageOutcome(None, cands, drops, len(imgs))


GZIP_MEMBER = b"\x1f\x8b\x08"


def archive_size(path: str) -> int | None:
    """Bytes of a file on any Beam filesystem; None for http(s) archives."""
    if path.startswith(("http://", "https://")):
        return None
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.match([path])[0].metadata_list[0].size_in_bytes


def is_per_record_gzip(head: bytes) -> bool:
    """Whether a file starting with ``head`` gzips each record on its own (as Common Crawl does).

    Then every record starts a gzip member, so any byte offset can be advanced to the next record.
    """
    if not head.startswith(GZIP_MEMBER):
        return False
    d = zlib.decompressobj(31)
    try:
        first = d.decompress(head)
    except zlib.error:
        return False
    if not (d.eof and d.unused_data.startswith(GZIP_MEMBER) and first.startswith(b"WARC/")):
        return False  # one member for the whole file, or not a WARC
    header, sep, _ = first.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", header)
    # The first member must hold exactly one record: header, block, and the closing CRLF CRLF.
    return bool(sep and length) and len(first) - len(header) - 4 - int(length.group(1)) in range(0, 5)


def archive_ranges(path: str, split_bytes: int) -> list[tuple[str, int, int | None]]:
    """Byte ranges ``(path, start, end)`` to read in parallel; one whole-file range when it cannot split.

    Per-record gzip files of more than ``split_bytes`` split; whole-file gzip, plain WARC and http(s)
    archives are read whole. ``end`` None means to the end of the file.
    """
    size = archive_size(path)
    if split_bytes <= 0 or size is None or size <= split_bytes:
        return [(path, 0, None)]
    with open_archive(path) as f:
        if not is_per_record_gzip(f.read(1 << 20)):
            return [(path, 0, None)]
    starts = list(range(0, size, split_bytes))
    return [(path, s, s + split_bytes if s + split_bytes < size else None) for s in starts]


def _is_member_start(stream: IO[bytes], offset: int) -> bool:
    stream.seek(offset)
    try:
        return zlib.decompressobj(31).decompress(stream.read(1 << 16), 8).startswith(b"WARC/")
    except zlib.error:
        return False


def first_record_at_or_after(stream: IO[bytes], start: int, end: int | None) -> int | None:
    """Offset of the first gzip member holding a WARC record in ``[start, end)``, stream left there; None if none."""
    pos, carry = start, b""
    while end is None or pos < end:
        stream.seek(pos)
        block = stream.read(1 << 16)
        if not block:
            return None
        buf, base = carry + block, pos - len(carry)
        i = buf.find(GZIP_MEMBER)
        while i >= 0:
            offset = base + i
            if end is not None and offset >= end:
                return None
            if offset >= start and _is_member_start(stream, offset):
                stream.seek(offset)
                return offset
            i = buf.find(GZIP_MEMBER, i + 1)
        carry, pos = buf[-2:], pos + len(block)
    return None


def read_archive(stream: IO[bytes] | str, parser: str = "scan", end: int | None = None) -> Iterator[PageOutcome]:
    """Outcomes of every page in a WARC or WAT file, in file order, from the stream's position.

    With ``end``, only records starting before that byte offset (the range a split owns).
    """
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    records = ArchiveIterator(stream, record_types=WarcRecordType.response | WarcRecordType.metadata,
                              parse_http=False, quirks_mode=True)
    try:
        for record in records:
            if end is not None and record.stream_pos >= end:
                break
            kind = record.headers.get("WARC-Type")
            if kind == "response":
                yield _response(record, parser)
            elif kind == "metadata" and "json" in (record.headers.get("Content-Type") or ""):
                data = record.reader.read()
                if record.content_length and len(data) < record.content_length:
                    yield PageOutcome("wat/truncated_record")
                    continue
                outcome = wat_page(data)
                if outcome is not None:
                    yield outcome
    except OSError:  # a corrupt gzip member ends the readable part of the file
        yield PageOutcome("warc/corrupt_tail")


def _response(record: Any, parser: str) -> PageOutcome:
    """Parse HTTP ourselves so a truncated block is measured against its declared length."""
    block = record.reader.read()
    if record.content_length and len(block) < record.content_length:
        return PageOutcome("warc/truncated_record")
    head, body = split_http(block)
    if head is None:
        return PageOutcome("warc/not_http")
    lines = head.decode("iso-8859-1").splitlines()
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
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
    body = _decompress(body, headers.get("content-encoding", "").lower())
    if body is None:
        return PageOutcome("warc/bad_content_encoding")
    url = record.headers.get("WARC-Target-URI") or ""
    text, _ = decode_html(body, ctype)
    try:
        cands, drops, page = extract(text, url, parser, "warc", headers.get("x-robots-tag"), links=False)
    except Exception:  # one hostile page costs one page
        return PageOutcome("warc/parse_error")
    return PageOutcome(None, cands, drops, len(page.imgs))


def split_http(block: bytes) -> tuple[bytes | None, bytes]:
    """(status line + headers, body); tolerates bare ``\\n`` line ends (ClueWeb, old crawlers)."""
    if not block.startswith(b"HTTP/"):
        return None, b""
    ends = [(i, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (i := block.find(sep)) >= 0]
    if not ends:
        return None, b""
    i, n = min(ends)
    return block[:i], block[i + n:]


def _decompress(body: bytes, encoding: str) -> bytes | None:
    """Undo a Content-Encoding left in the record; bodies already decoded pass through."""
    try:
        if "gzip" in encoding and body[:2] == b"\x1f\x8b":
            return zlib.decompress(body, 16 + zlib.MAX_WBITS)
        if "deflate" in encoding:
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompress(body, -zlib.MAX_WBITS)
    except zlib.error:
        return None
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

"""Decode HTML bytes: HTTP header, then BOM, then meta charset, with fallbacks when a label lies."""

from __future__ import annotations

import codecs
import re

META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.IGNORECASE)
HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_:.\-]+)", re.IGNORECASE)
BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
# WHATWG maps these labels to supersets; decoding with the superset is what browsers do.
SUPERSETS = {"iso-8859-1": "cp1252", "latin-1": "cp1252", "ascii": "cp1252", "us-ascii": "cp1252", "gb2312": "gb18030", "gbk": "gb18030"}


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().lower()).name
    except LookupError:
        return None
    return SUPERSETS.get(name, SUPERSETS.get(label.strip().lower(), name))


def _strict(data: bytes, codec: str | None) -> str | None:
    if codec is None:
        return None
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _is_utf8_multibyte(data: bytes) -> bool:
    """Valid UTF-8 that is not plain ASCII: a legacy label on such bytes is almost always wrong."""
    if data.isascii():
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decode_html(data: bytes, content_type: str | None = None) -> tuple[str, str]:
    """Return (text, codec used)."""
    header = HEADER_CHARSET.search(content_type or "")
    codec = _codec(header.group(1) if header else None)
    text = _strict(data, codec)
    if text is not None:
        return text, codec or ""
    for bom, name in BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(name, errors="replace"), name
    meta = META_CHARSET.search(data[:4096])
    codec = _codec(meta.group(1).decode("ascii", "replace") if meta else None)
    if codec and codec != "utf-8" and _is_utf8_multibyte(data):
        return data.decode("utf-8"), "utf-8"
    text = _strict(data, codec)
    if text is not None:
        return text, codec or ""
    text = _strict(data, "utf-8")
    if text is not None:
        return text, "utf-8"
    return data.decode("cp1252", errors="replace"), "cp1252"

"""Stable hashes: record uids and seeded [0, 1) draws that never depend on process state."""

from __future__ import annotations

import hashlib


def sha256_hex(data: bytes | str) -> str:
    """Hex sha256 of bytes or UTF-8 text."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def candidate_uid(image_url: str, alt: str) -> str:
    """The uid contract: hex sha256 of ``image_url + "\\t" + alt``."""
    return sha256_hex(f"{image_url}\t{alt}")


def unit_draw(seed: int | str, key: str) -> float:
    """Map ``sha256(f"{seed}:{key}")`` to a float in [0, 1), identical in every process."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def bucket_of(key: str, buckets: int, salt: str = "") -> int:
    """Deterministic bucket in [0, buckets) for a string key."""
    digest = hashlib.sha256(f"{salt}{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % buckets

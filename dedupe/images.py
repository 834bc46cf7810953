"""Image identity: sha256 of bytes, perceptual hashes, and banded near-duplicate search."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from PIL import Image

from webclip.hashing import sha256_hex

HASH_BITS = 64


def image_sha256(data: bytes) -> str:
    """Exact identity of image bytes."""
    return sha256_hex(data)


def phash_hex(image: Image.Image) -> str:
    """64-bit perceptual hash (imagehash pHash) as 16 hex digits."""
    import imagehash

    return str(imagehash.phash(image.convert("RGB")))


def hamming(a: int, b: int) -> int:
    """Bits that differ."""
    return (a ^ b).bit_count()


def bands(h: int, n_bands: int) -> list[tuple[int, int]]:
    """Split a 64-bit hash into ``n_bands`` keyed slices; two hashes within n_bands-1 bits share one."""
    width = -(-HASH_BITS // n_bands)
    return [(i, (h >> (i * width)) & ((1 << width) - 1)) for i in range(n_bands)]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = sorted((ra, rb))
            self.parent[hi] = lo  # the group's root is always its smallest uid


def duplicate_groups(items: Iterable[tuple[str, str, str]], threshold: int) -> dict[str, tuple[str, str]]:
    """Map each duplicate uid to (kept uid, reason) over (uid, sha256, phash hex) items.

    Exact duplicates share sha256; near duplicates are within ``threshold`` bits of pHash (found
    through ``threshold + 1`` bands, so no pair within the threshold is missed). The smallest uid of
    each group is kept. Memory: one entry per item plus one per (band, value) bucket.
    """
    items = sorted(items)
    uf = _UnionFind()
    by_sha: dict[str, str] = {}
    exact: set[str] = set()
    for uid, sha, _ in items:
        uf.find(uid)
        if sha in by_sha:
            uf.union(by_sha[sha], uid)
            exact.add(uid)
        else:
            by_sha[sha] = uid
    if threshold >= 0:
        buckets: dict[tuple[int, int], list[tuple[str, int]]] = defaultdict(list)
        for uid, _, ph in items:
            if uid in exact:
                continue
            h = int(ph, 16)
            for key in bands(h, threshold + 1):
                for other, oh in buckets[key]:
                    if hamming(h, oh) <= threshold:
                        uf.union(other, uid)
                buckets[key].append((uid, h))
    out = {}
    for uid, _, _ in items:
        root = uf.find(uid)
        if root != uid:
            out[uid] = (root, "dedupe/exact_duplicate" if uid in exact else "dedupe/near_duplicate")
    return out


class HashIndex:
    """Reference images (evaluation sets) indexed by sha256 and banded pHash."""

    def __init__(self, threshold: int):
        self.threshold = threshold
        self.sha: set[str] = set()
        self.buckets: dict[tuple[int, int], list[int]] = defaultdict(list)

    def add(self, sha: str, ph: str) -> None:
        """Index one reference image."""
        self.sha.add(sha)
        h = int(ph, 16)
        for key in bands(h, self.threshold + 1):
            self.buckets[key].append(h)

    def __len__(self) -> int:
        return len(self.sha)

    def match(self, sha: str, ph: str) -> str | None:
        """``exact`` or ``near`` if the image overlaps a reference image, else None."""
        if sha in self.sha:
            return "exact"
        h = int(ph, 16)
        for key in bands(h, self.threshold + 1):
            if any(hamming(h, o) <= self.threshold for o in self.buckets.get(key, ())):
                return "near"
        return None

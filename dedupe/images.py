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

    return str(imagehash.phash(image if image.mode in ("RGB", "L") else image.convert("RGB")))


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


def exact_edges(group: list[str]) -> list[tuple[str, str, str]]:
    """Edges from the smallest uid of a same-sha256 group to every other member."""
    group = sorted(group)
    return [(group[0], other, "exact") for other in group[1:]]


def band_keys(ph: str, threshold: int) -> list[tuple[int, int]]:
    """The band keys under which a hash is bucketed for ``threshold``."""
    return bands(int(ph, 16), threshold + 1)


def bucket_edges(bucket: list[tuple[str, str]], threshold: int) -> list[tuple[str, str, str]]:
    """Pairs within ``threshold`` bits among one bucket's (uid, phash hex); quadratic in the bucket only."""
    items = sorted((uid, int(ph, 16)) for uid, ph in bucket)
    return [(a, b, "near") for i, (a, ha) in enumerate(items) for b, hb in items[i + 1:] if hamming(ha, hb) <= threshold]


def resolve_groups(uids: Iterable[str], edges: Iterable[tuple[str, str, str]]) -> dict[str, tuple[str, str]]:
    """Map each duplicate uid to (kept uid, reason); the smallest uid of each connected group is kept.

    A uid is an exact duplicate when an exact edge leads to it from a smaller uid, else near.
    """
    uf = _UnionFind()
    exact: set[str] = set()
    for u in uids:
        uf.find(u)
    for a, b, kind in edges:
        uf.union(a, b)
        if kind == "exact":
            exact.add(max(a, b))
    out = {}
    for uid in sorted(uf.parent):
        root = uf.find(uid)
        if root != uid:
            out[uid] = (root, "dedupe/exact_duplicate" if uid in exact else "dedupe/near_duplicate")
    return out


def duplicate_groups(items: Iterable[tuple[str, str, str]], threshold: int) -> dict[str, tuple[str, str]]:
    """In-process dedupe over (uid, sha256, phash hex): exact by sha256, near within ``threshold`` bits.

    Near duplicates are found through ``threshold + 1`` bands, so no pair within the threshold is
    missed. Memory: one entry per item plus one per (band, value) bucket. ``shards/neardup.py`` runs the
    same functions on Beam.
    """
    items = list(items)
    by_sha: dict[str, list[str]] = defaultdict(list)
    for uid, sha, _ in items:
        by_sha[sha].append(uid)
    edges = [e for group in by_sha.values() for e in exact_edges(group)]
    if threshold >= 0:
        exact_dups = {b for _, b, _ in edges}
        buckets: dict[tuple[int, int], list[tuple[str, str]]] = defaultdict(list)
        for uid, _, ph in items:
            if uid not in exact_dups:
                for key in band_keys(ph, threshold):
                    buckets[key].append((uid, ph))
        edges += [e for bucket in buckets.values() if len(bucket) > 1 for e in bucket_edges(bucket, threshold)]
    return resolve_groups((uid for uid, _, _ in items), edges)


class HashIndex:
    """Reference images (evaluation sets) indexed by sha256 and banded pHash."""

    def __init__(self, threshold: int):
        self.threshold = threshold
        self.sha: set[str] = set()
        self.buckets: dict[tuple[int, int], list[int]] = defaultdict(list)

    def add(self, sha: str, ph: str) -> None:
        """Index one reference image."""
        self.sha.add(sha)
        if self.threshold < 0:
            return
        h = int(ph, 16)
        for key in bands(h, self.threshold + 1):
            self.buckets[key].append(h)

    def __len__(self) -> int:
        return len(self.sha)

    def match(self, sha: str, ph: str) -> str | None:
        """``exact`` or ``near`` if the image overlaps a reference image, else None."""
        if sha in self.sha:
            return "exact"
        if self.threshold < 0:
            return None
        h = int(ph, 16)
        for key in bands(h, self.threshold + 1):
            if any(hamming(h, o) <= self.threshold for o in self.buckets.get(key, ())):
                return "near"
        return None

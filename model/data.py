"""Streaming WebDataset reader over ``shards/final/manifest.json``: decode, preprocess, shuffle, batch.

The order of an epoch is a pure function of (seed, epoch), so a resumed run can skip exactly the
samples it already consumed and then see what an uninterrupted run would have seen.
"""

from __future__ import annotations

import io
import json
import random
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import torch
from PIL import Image

MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1)


def preprocess(image: Image.Image, size: int) -> torch.Tensor:
    """Resize the short side to ``size`` (bicubic), centre-crop, scale to [0, 1], normalise: (3, S, S)."""
    image = image.convert("RGB")
    w, h = image.size
    scale = size / min(w, h)
    image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BICUBIC)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    image = image.crop((left, top, left + size, top + size))
    x = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255
    return (x - MEAN) / STD


def read_manifest(shards_final: str | Path, split: str = "train") -> list[str]:
    """Tar URLs/paths of a split listed in ``manifest.json``."""
    base = str(shards_final).rstrip("/")
    with fsspec.open(f"{base}/manifest.json", "r") as f:
        manifest = json.load(f)
    return [f"{base}/{s['name']}" for s in manifest[split]]


def iter_tar(url: str) -> Iterator[dict[str, Any]]:
    """Samples ``{key, jpg, txt, json}`` of one WebDataset tar, local or remote (fsspec)."""
    current: dict[str, Any] = {}
    with fsspec.open(url, "rb") as f, tarfile.open(fileobj=f, mode="r|") as tar:
        for m in tar:
            if not m.isfile():
                continue
            key, _, ext = m.name.partition(".")
            if current and current["key"] != key:
                yield current
                current = {}
            current["key"] = key
            current[ext] = tar.extractfile(m).read()  # type: ignore[union-attr]
    if current:
        yield current


def epoch_stream(tars: list[str], seed: int, epoch: int, buffer: int) -> Iterator[dict[str, Any]]:
    """Every sample once, shard order and a shuffle buffer both seeded by (seed, epoch)."""
    rng = random.Random(f"{seed}:{epoch}")
    order = list(tars)
    rng.shuffle(order)
    pool: list[dict[str, Any]] = []
    for url in order:
        for sample in iter_tar(url):
            pool.append(sample)
            if len(pool) >= buffer:
                yield pool.pop(rng.randrange(len(pool)))
    while pool:
        yield pool.pop(rng.randrange(len(pool)))


@dataclass
class Batch:
    """One training batch."""

    images: torch.Tensor  # (B, 3, S, S)
    texts: list[str]
    keys: list[str]


@dataclass
class Position:
    """Where the loader is: epoch and samples consumed from it (by all ranks)."""

    epoch: int = 0
    offset: int = 0


class ShardLoader:
    """Batches for one rank; each rank takes every ``world``-th sample, remainders are dropped and counted."""

    def __init__(self, tars: list[str], image_size: int, batch_size: int, seed: int, buffer: int,
                 rank: int = 0, world: int = 1):
        self.tars, self.image_size, self.batch_size = tars, image_size, batch_size
        self.seed, self.buffer, self.rank, self.world = seed, buffer, rank, world
        self.position = Position()
        self.samples_read = 0
        self.remainder_dropped = 0
        self.decode_errors = 0

    def _decode(self, s: dict[str, Any]) -> tuple[torch.Tensor, str, str] | None:
        try:
            img = preprocess(Image.open(io.BytesIO(s["jpg"])), self.image_size)
            return img, s["txt"].decode("utf-8"), s["key"]
        except Exception:  # a corrupt sample costs one sample, counted, never the run
            self.decode_errors += 1
            return None

    def batches(self) -> Iterator[Batch]:
        """Endless batches from the current position on (epoch after epoch)."""
        global_batch = self.batch_size * self.world
        while True:
            stream = epoch_stream(self.tars, self.seed, self.position.epoch, self.buffer)
            pending: list[dict[str, Any]] = []
            for i, s in enumerate(stream):
                if i < self.position.offset:
                    continue
                pending.append(s)
                if len(pending) == global_batch:
                    self.samples_read += global_batch
                    self.position.offset += global_batch
                    mine = [d for d in (self._decode(x) for x in pending[self.rank::self.world]) if d is not None]
                    pending = []
                    if mine:
                        yield Batch(torch.stack([m[0] for m in mine]), [m[1] for m in mine], [m[2] for m in mine])
            self.samples_read += len(pending)
            self.remainder_dropped += len(pending)
            self.position = Position(self.position.epoch + 1, 0)

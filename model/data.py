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


def resampled_stream(tars: list[str], seed: int, epoch: int, buffer: int) -> Iterator[dict[str, Any]]:
    """A pseudo-epoch of ``len(tars)`` shards drawn with replacement (open_clip's resampled mode)."""
    rng = random.Random(f"resampled:{seed}:{epoch}")
    yield from epoch_stream([rng.choice(tars) for _ in tars], seed, epoch, buffer)


STREAMS = {"epoch": epoch_stream, "resampled": resampled_stream}


@dataclass
class Batch:
    """One training batch for this rank, with the loader's bookkeeping after it."""

    images: torch.Tensor  # (B, 3, S, S)
    texts: list[str]
    keys: list[str]
    epoch: int  # position after this batch: epoch and samples consumed from it (all ranks)
    offset: int
    read: int  # samples consumed by all ranks for this batch, remainder included
    remainder: int  # samples dropped at the end of the epoch before this batch
    decode_errors: int


@dataclass
class Position:
    """Where the loader is: epoch and samples consumed from it (by all ranks)."""

    epoch: int = 0
    offset: int = 0


class ShardStream(torch.utils.data.IterableDataset):
    """Endless batches for one rank; DataLoader workers take every ``num_workers``-th global batch.

    Every worker scans the same seeded stream and decodes only its own batches, and DataLoader
    returns workers' batches round-robin, so the batch order is the same for any number of workers.
    Each rank decodes every ``world``-th sample of a global batch; what is left at an epoch's end is
    dropped and counted, so every rank runs the same number of steps.
    """

    def __init__(self, tars: list[str], image_size: int, batch_size: int, seed: int, buffer: int,
                 rank: int = 0, world: int = 1, start: Position | None = None, mode: str = "epoch"):
        super().__init__()
        self.stream = STREAMS[mode]
        self.tars, self.image_size, self.batch_size = tars, image_size, batch_size
        self.seed, self.buffer, self.rank, self.world = seed, buffer, rank, world
        self.start = start or Position()

    def _decode(self, s: dict[str, Any]) -> tuple[torch.Tensor, str, str] | None:
        try:
            img = preprocess(Image.open(io.BytesIO(s["jpg"])), self.image_size)
            return img, s["txt"].decode("utf-8"), s["key"]
        except Exception:  # a corrupt sample costs one sample, counted, never the run
            return None

    def __iter__(self) -> Iterator[Batch]:
        info = torch.utils.data.get_worker_info()
        wid, n_workers = (info.id, info.num_workers) if info else (0, 1)
        global_batch = self.batch_size * self.world
        epoch, offset, k, remainder = self.start.epoch, self.start.offset, 0, 0
        while True:
            pending: list[dict[str, Any]] = []
            for i, s in enumerate(self.stream(self.tars, self.seed, epoch, self.buffer)):
                if i < offset:
                    continue
                pending.append(s)
                if len(pending) < global_batch:
                    continue
                if k % n_workers == wid:
                    decoded = [self._decode(x) for x in pending[self.rank::self.world]]
                    mine = [d for d in decoded if d is not None]
                    yield Batch(torch.stack([m[0] for m in mine]) if mine else torch.zeros(0, 3, self.image_size, self.image_size),
                                [m[1] for m in mine], [m[2] for m in mine], epoch, i + 1, global_batch + remainder,
                                remainder, len(decoded) - len(mine))
                k, remainder, pending = k + 1, 0, []
            if offset == 0 and k == 0 and not pending:
                raise ValueError("the shards hold no samples")
            remainder += len(pending)
            epoch, offset = epoch + 1, 0


class ShardLoader:
    """A DataLoader over ``ShardStream`` that keeps the counts and the resumable position."""

    def __init__(self, tars: list[str], image_size: int, batch_size: int, seed: int, buffer: int,
                 rank: int = 0, world: int = 1, workers: int = 0, mode: str = "epoch"):
        self.args = (tars, image_size, batch_size, seed, buffer, rank, world)
        self.workers, self.mode = workers, mode
        self.position = Position()
        self.samples_read = 0
        self.remainder_dropped = 0
        self.decode_errors = 0

    def batches(self) -> Iterator[Batch]:
        """Batches from the current position on; counters and position follow each batch."""
        stream = ShardStream(*self.args, start=Position(self.position.epoch, self.position.offset), mode=self.mode)
        loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=self.workers,
                                             persistent_workers=False, prefetch_factor=2 if self.workers else None)
        for b in loader:
            self.samples_read += b.read
            self.remainder_dropped += b.remainder
            self.decode_errors += b.decode_errors
            self.position = Position(b.epoch, b.offset)
            yield b

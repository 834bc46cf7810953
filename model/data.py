"""Streaming WebDataset reader over ``shards/final/manifest.json``: split, decode, preprocess, shuffle, batch.

Each rank and loader worker reads its own shards (one *stream* each). A stream's order within an epoch
is a pure function of (seed, epoch, stream), so a resumed run skips exactly the samples each stream
already consumed and then sees what an uninterrupted run would have seen.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import random
import tarfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import torch
from PIL import Image

from webclip.denylist import sample_denied

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


def random_crop(image: Image.Image, rng: random.Random, min_scale: float) -> Image.Image:
    """A crop of a random share of the area in [min_scale, 1] and aspect in [3/4, 4/3], at a random place.

    open_clip's training transform (RandomResizedCrop) in our own words; ``min_scale`` 1 returns the image.
    """
    if min_scale >= 1:
        return image
    w, h = image.size
    area, aspect = w * h * rng.uniform(min_scale, 1.0), math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    cw, ch = min(w, max(1, round(math.sqrt(area * aspect)))), min(h, max(1, round(math.sqrt(area / aspect))))
    left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
    return image.crop((left, top, left + cw, top + ch))


def read_manifest(shards_final: str | Path, split: str = "train") -> list[str]:
    """Tar URLs/paths of a split listed in ``manifest.json``."""
    return [url for url, _ in read_manifest_sizes(shards_final, split)]


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


def read_manifest_sizes(shards_final: str | Path, split: str = "train") -> list[tuple[str, int]]:
    """(tar URL/path, samples) of a split listed in ``manifest.json``."""
    base = str(shards_final).rstrip("/")
    with fsspec.open(f"{base}/manifest.json", "r") as f:
        manifest = json.load(f)
    return [(f"{base}/{s['name']}", int(s["samples"])) for s in manifest[split]]


def epoch_shards(tars: list[str], seed: int, epoch: int, mode: str = "epoch") -> list[str]:
    """The epoch's shard order: a seeded shuffle, or ``len(tars)`` draws with replacement (open_clip's resampled)."""
    if mode == "resampled":
        rng = random.Random(f"resampled:{seed}:{epoch}")
        return [rng.choice(tars) for _ in tars]
    order = list(tars)
    random.Random(f"{seed}:{epoch}").shuffle(order)
    return order


def stream_samples(order: list[str], stream: int, n_streams: int) -> Iterator[dict[str, Any]]:
    """One stream's share of an epoch: every ``n_streams``-th shard, as open_clip splits by node and worker.

    With fewer shards than streams every stream reads all shards and keeps every ``n_streams``-th
    sample instead, so no stream is left empty (at the cost of reading each shard ``n_streams`` times).
    """
    if len(order) >= n_streams:
        for url in order[stream::n_streams]:
            yield from iter_tar(url)
        return
    for j, sample in enumerate(s for url in order for s in iter_tar(url)):
        if j % n_streams == stream:
            yield sample


def shuffled(samples: Iterator[dict[str, Any]], rng: random.Random, buffer: int) -> Iterator[dict[str, Any]]:
    """A shuffle buffer of ``buffer`` samples drawn with ``rng``."""
    pool: list[dict[str, Any]] = []
    for sample in samples:
        pool.append(sample)
        if len(pool) >= buffer:
            yield pool.pop(rng.randrange(len(pool)))
    while pool:
        yield pool.pop(rng.randrange(len(pool)))


def stream_epoch(tars: list[str], seed: int, epoch: int, buffer: int, stream: int, n_streams: int,
                 mode: str = "epoch") -> Iterator[dict[str, Any]]:
    """Stream ``stream``'s samples of ``epoch`` in their shuffled order: a pure function of its arguments."""
    order = epoch_shards(tars, seed, epoch, mode)
    rng = random.Random(f"{seed}:{epoch}:{stream}")
    yield from shuffled(stream_samples(order, stream, n_streams), rng, buffer)


@dataclass
class Position:
    """Where one stream is: its epoch and the samples it consumed from it."""

    epoch: int = 0
    offset: int = 0


@dataclass
class Batch:
    """One stream's batch of ``batch_size`` decoded samples, with where the stream stands after it."""

    images: torch.Tensor  # (B, 3, S, S)
    texts: list[str]
    keys: list[str]
    stream: int
    position: Position
    read: int  # samples read for this batch, decode failures and denied samples included
    decode_errors: int
    denied: int = 0  # samples the run's denylist names (taken down after the shards were written)
    repeats: int = 0  # samples already in this batch (a stream's epoch smaller than a batch): one copy is trained


# A stream's share changes from epoch to epoch (shards reshuffled or resampled), so one epoch that adds nothing
# (a small shard already in the batch, or only undecodable samples) is no proof; this many in a row is.
EMPTY_EPOCHS = 8


class ShardStream(torch.utils.data.IterableDataset):
    """Endless full batches of one rank; each DataLoader worker serves one stream of its own shards.

    A rank with ``W`` workers owns streams ``rank * W .. rank * W + W - 1`` of ``world * W``. DataLoader
    returns workers' batches round-robin; ``rotation`` names the stream worker 0 serves, so a resumed
    loader continues with the stream that was next. Samples that fail to decode, that the run's
    denylist names, or that are already in the batch (a stream whose epoch is shorter than a batch
    wraps round; a repeat would be its own false negative) are counted and replaced by the next ones,
    so every batch of every rank holds ``batch_size`` distinct samples.
    """

    def __init__(self, tars: list[str], image_size: int, batch_size: int, seed: int, buffer: int, rank: int = 0,
                 world: int = 1, workers: int = 0, starts: dict[int, Position] | None = None, rotation: int = 0,
                 mode: str = "epoch", denylist: Any = None, crop_scale: float = 1.0):
        super().__init__()
        self.denylist, self.crop_scale = denylist, crop_scale
        self.tars, self.image_size, self.batch_size, self.seed, self.buffer = tars, image_size, batch_size, seed, buffer
        self.rank, self.world, self.local = rank, world, max(1, workers)
        self.starts, self.rotation, self.mode = starts or {}, rotation, mode

    def _decode(self, s: dict[str, Any], epoch: int) -> tuple[torch.Tensor, str, str] | None:
        try:
            image = Image.open(io.BytesIO(s["jpg"])).convert("RGB")
            if self.crop_scale < 1:  # as RandomResizedCrop: the crop itself resized to the square, nothing cut after
                rng = random.Random(f"crop:{self.seed}:{epoch}:{s['key']}")  # same crop for any workers or resume
                image = random_crop(image, rng, self.crop_scale).resize((self.image_size,) * 2,
                                                                        Image.Resampling.BICUBIC)
            img = preprocess(image, self.image_size)
            return img, s["txt"].decode("utf-8"), s["key"]
        except Exception:  # a corrupt sample costs one sample, counted, never the run
            return None

    def _denied(self, s: dict[str, Any]) -> bool | None:
        """Whether the run's denylist names the sample; None when its metadata cannot be read to tell."""
        if not self.denylist:
            return False
        try:
            return sample_denied(self.denylist, s)
        except Exception:  # unreadable .json: counted with the samples that fail to decode
            return None

    def _take(self, sample: dict[str, Any], keys: Any, epoch: int) -> tuple[str, tuple[torch.Tensor, str, str] | None]:
        """("ok", decoded sample), or why it is not trained: "repeat" (already in this batch), "denied", "error"."""
        if sample.get("key") in keys:
            return "repeat", None
        verdict = self._denied(sample)
        if verdict:
            return "denied", None
        item = None if verdict is None else self._decode(sample, epoch)
        return ("error", None) if item is None else ("ok", item)

    def __iter__(self) -> Iterator[Batch]:
        info = torch.utils.data.get_worker_info()
        wid = info.id if info else 0
        stream = self.rank * self.local + (wid + self.rotation) % self.local
        start = self.starts.get(stream, Position())
        epoch, offset = start.epoch, start.offset
        pending: dict[str, tuple[torch.Tensor, str]] = {}  # key -> (image, text), in batch order
        counts: Counter[str] = Counter()
        empty = 0  # whole epochs in a row that added nothing to the batch
        while True:
            added = False
            for i, sample in enumerate(stream_epoch(self.tars, self.seed, epoch, self.buffer, stream,
                                                    self.world * self.local, self.mode)):
                if i < offset:
                    continue
                verdict, item = self._take(sample, pending.keys(), epoch)
                counts["read"] += 1
                if item is None:
                    counts[verdict] += 1
                    continue
                added, pending[item[2]] = True, item[:2]
                if len(pending) == self.batch_size:
                    yield Batch(torch.stack([p[0] for p in pending.values()]), [p[1] for p in pending.values()],
                                list(pending), stream, Position(epoch, i + 1), counts["read"], counts["error"],
                                counts["denied"], counts["repeat"])
                    pending, counts = {}, Counter()
            empty = 0 if added or offset else empty + 1
            if empty == EMPTY_EPOCHS:
                raise ValueError(f"loader stream {stream} found no readable sample to add to its batch in "
                                 f"{EMPTY_EPOCHS} epochs in a row: its shards hold fewer distinct readable samples "
                                 f"than a batch of {self.batch_size}; check the shards, lower batch_size or "
                                 "processes x workers")
            epoch, offset = epoch + 1, 0


class ShardLoader:
    """A DataLoader over ``ShardStream`` that keeps this rank's counts and every stream's resumable position."""

    def __init__(self, tars: list[str], image_size: int, batch_size: int, seed: int, buffer: int,
                 rank: int = 0, world: int = 1, workers: int = 0, mode: str = "epoch", denylist: Any = None,
                 crop_scale: float = 1.0):
        self.args = (tars, image_size, batch_size, seed, buffer, rank, world, workers)
        self.crop_scale = crop_scale
        self.rank, self.local, self.workers, self.mode, self.denylist = rank, max(1, workers), workers, mode, denylist
        self.positions: dict[int, Position] = {}
        self.next_local = 0  # the stream (within this rank) whose batch comes next
        self.samples_read = self.decode_errors = self.samples_trained = self.denied = self.repeats = 0

    def batches(self) -> Iterator[Batch]:
        """Batches from the current positions on; counters and positions follow each batch handed out."""
        stream = ShardStream(*self.args, starts=dict(self.positions), rotation=self.next_local, mode=self.mode,
                             denylist=self.denylist, crop_scale=self.crop_scale)
        loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=self.workers,
                                             persistent_workers=False, prefetch_factor=2 if self.workers else None)
        for b in loader:
            self.samples_read += b.read
            self.decode_errors += b.decode_errors
            self.denied += b.denied
            self.repeats += b.repeats
            self.samples_trained += len(b.keys)
            self.positions[b.stream] = b.position
            self.next_local = (b.stream - self.rank * self.local + 1) % self.local
            yield b

    def state(self) -> dict[str, Any]:
        """This rank's part of a checkpoint."""
        return {"positions": {str(k): [p.epoch, p.offset] for k, p in sorted(self.positions.items())},
                "next_local": self.next_local, "workers": self.local,
                "counts": {"read": self.samples_read, "trained": self.samples_trained,
                           "decode_errors": self.decode_errors, "denied": self.denied, "repeats": self.repeats}}

    def load_state(self, state: dict[str, Any]) -> None:
        """Resume from ``state()``; the streams must be split as when it was saved."""
        if state["workers"] != self.local:
            raise ValueError(f"the checkpoint's data order was split over {state['workers']} loader worker(s) per "
                             f"process, this run has {self.local}: resume with --workers {state['workers']}")
        self.positions = {int(k): Position(*v) for k, v in state["positions"].items()}
        self.next_local = state["next_local"]
        counts = state["counts"]
        self.samples_read, self.samples_trained, self.decode_errors = (
            counts["read"], counts["trained"], counts["decode_errors"])
        self.denied, self.repeats = counts.get("denied", 0), counts.get("repeats", 0)


def train_captions(run: str | Path, tars: list[str], limit: int) -> Iterator[str]:
    """Up to ``limit`` train captions: from ``shards/samples/`` (no image is read), else from the tars' texts."""
    from webclip.layout import table_path
    from webclip.parquet import iter_rows, parts

    sample_parts = parts(table_path(run, "samples"))
    if sample_parts:
        rows = iter_rows(sample_parts, columns=["caption", "split"])
        captions = (r["caption"] for r in rows if r["split"] == "train")
    else:
        captions = (s["txt"].decode("utf-8") for t in tars for s in iter_tar(t))
    return itertools.islice(captions, limit)

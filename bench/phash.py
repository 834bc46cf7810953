"""Perceptual hashing + near-duplicate search: images/s per core, recall on edits, precision on distinct images."""

from __future__ import annotations

import io
import json
import time

import numpy as np
from PIL import Image

from webclip.dedupe.images import duplicate_groups, image_sha256, phash_hex
from webclip.sampleweb.concepts import concept_names
from webclip.sampleweb.draw import random_spec, render

EDITS = {
    "reencode_q50": lambda im: Image.open(io.BytesIO(_jpeg(im, 50))),
    "resize_60pct": lambda im: im.resize((int(im.width * 0.6), int(im.height * 0.6))),
    "crop_5pct": lambda im: im.crop((im.width // 20, im.height // 20, im.width - im.width // 20, im.height - im.height // 20)),
}


def _jpeg(im: Image.Image, q: int) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=q)
    return buf.getvalue()


def main(n: int = 600, thresholds: tuple[int, ...] = (0, 2, 4, 6)) -> list[dict]:
    """Measure and print one JSON line per threshold."""
    rng = np.random.default_rng(0)
    names = concept_names()
    originals = [render(random_spec(names[i % len(names)], rng, size=128)) for i in range(n)]
    started = time.perf_counter()
    hashes = [phash_hex(im) for im in originals]
    rate = n / (time.perf_counter() - started)
    copies = {kind: [phash_hex(edit(im)) for im in originals[: n // 3]] for kind, edit in EDITS.items()}
    rows = []
    for t in thresholds:
        items = [(f"o{i:05d}", image_sha256(_jpeg(im, 90)), h) for i, (im, h) in enumerate(zip(originals, hashes, strict=True))]
        false_merged = len(duplicate_groups(items, t))  # distinct drawings wrongly merged
        recall = {}
        for kind, hs in copies.items():
            found = duplicate_groups(items[: n // 3] + [(f"z{i:05d}", f"x{i}", h) for i, h in enumerate(hs)], t)
            recall[kind] = round(sum(1 for i in range(len(hs)) if f"z{i:05d}" in found) / len(hs), 3)
        started = time.perf_counter()
        duplicate_groups(items * 1, t)
        search_rate = n / (time.perf_counter() - started)
        row = {"bench": "phash", "threshold": t, "images": n, "phash_images_s": round(rate, 1),
               "search_images_s": round(search_rate), "recall": recall,
               "distinct_wrongly_merged": false_merged, "precision_proxy": round(1 - false_merged / n, 4)}
        print(json.dumps(row))
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()

"""Exact and near-duplicate grouping and the evaluation-set index."""

from __future__ import annotations

import io

from PIL import Image

from webclip.dedupe.images import HashIndex, duplicate_groups, phash_hex
from webclip.sampleweb.draw import random_spec, render


def test_groups_keep_lowest_uid() -> None:
    items = [("b", "s1", "ffffffffffffffff"), ("a", "s1", "ffffffffffffffff"), ("c", "s2", "fffffffffffffff0"),
             ("d", "s3", "0000000000000000")]
    assert duplicate_groups(items, threshold=4) == {"b": ("a", "dedupe/exact_duplicate"), "c": ("a", "dedupe/near_duplicate")}
    assert duplicate_groups(items, threshold=0) == {"b": ("a", "dedupe/exact_duplicate")}


def test_reencoded_and_resized_copies_are_near_duplicates() -> None:
    import numpy as np

    img = render(random_spec("star", np.random.default_rng(3), size=256))
    buf = io.BytesIO()
    img.resize((180, 180)).save(buf, "JPEG", quality=60)
    copy = Image.open(io.BytesIO(buf.getvalue()))
    index = HashIndex(threshold=4)
    index.add("sha-original", phash_hex(img))
    assert index.match("sha-other", phash_hex(copy)) == "near"
    assert index.match("sha-original", "0" * 16) == "exact"


def test_beam_search_equals_in_process_search(tmp_path) -> None:
    import random

    from webclip.config import BeamRunner
    from webclip.shards.neardup import duplicate_groups_beam

    rng = random.Random(0)
    items = []
    for i in range(300):
        h = rng.getrandbits(64)
        items.append((f"u{i:04d}", f"sha{i}", f"{h:016x}"))
        if i % 10 == 0:  # a near copy (2 bits flipped) and an exact copy
            items.append((f"n{i:04d}", f"shaN{i}", f"{h ^ 0b101:016x}"))
            items.append((f"e{i:04d}", f"sha{i}", f"{h:016x}"))
    local = duplicate_groups(items, threshold=2)
    assert len(local) == 60
    runner = BeamRunner(direct_num_workers=1, direct_running_mode="in_memory")
    assert duplicate_groups_beam(items, 2, runner, str(tmp_path)) == local
    assert not list(tmp_path.iterdir())  # the workers' edges went through a scratch file there, removed once read
    # With a --temp_location the scratch file goes there instead (Dataflow requires one; any Beam filesystem).
    temp = tmp_path / "temp"
    runner.pipeline_args = [f"--temp_location={temp}"]
    assert duplicate_groups_beam(items, 2, runner, str(tmp_path / "unused")) == local
    assert temp.is_dir() and not list(temp.iterdir()) and not (tmp_path / "unused").exists()

"""The real trainer: two processes agree with one, and a killed run resumes on the same samples."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import free_port
from webclip.runfolder import StageDir, atomic_write_json
from webclip.shards.tarwrite import write_tar

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 60), "blue": (40, 60, 220), "yellow": (230, 220, 40)}


def _jpeg(rgb: tuple[int, int, int], seed: int) -> bytes:
    import io

    arr = np.full((40, 40, 3), rgb, dtype=np.uint8)
    arr[np.random.default_rng(seed).integers(0, 40, 30), np.random.default_rng(seed + 1).integers(0, 40, 30)] = 0
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def shard_run(tmp_path_factory) -> Path:
    """A run folder whose shards stage holds 120 small samples in three tars."""
    run = tmp_path_factory.mktemp("trainrun")
    final = run / "shards" / "final"
    samples = []
    for i in range(120):
        name = list(COLOURS)[i % 4]
        key = f"{i:04d}"
        samples.append({"key": key, "jpg": _jpeg(COLOURS[name], i), "txt": f"a {name} square", "json": {"uid": key}})
    entries = []
    for s in range(3):
        write_tar(final / f"train-{s:05d}.tar", samples[s * 40:(s + 1) * 40])
        entries.append({"name": f"train-{s:05d}.tar", "samples": 40})
    atomic_write_json(final / "manifest.json", {"train": entries, "val": [], "totals": {"train": 120, "val": 0}})
    StageDir(run, "shards").finish({"in": 120, "kept": 120, "dropped": {}})
    return run


def _config(tmp: Path, **train) -> Path:
    base = {"model": "demo", "batch_size": 16, "steps": 4, "warmup_steps": 2, "checkpoint_every": 2, "log_every": 1,
            "shuffle_buffer": 50, "tokenizer_vocab": 300, "progress": False, "threads": 1, "log_keys": True}
    p = tmp / f"train{len(list(tmp.glob('train*.json')))}.json"
    p.write_text(json.dumps({"train": {**base, **train}}))
    return p


def _run_dir(shard_run: Path, tmp: Path, name: str) -> Path:
    run = tmp / name
    (run / "shards").mkdir(parents=True)
    (run / "shards" / "final").symlink_to(shard_run / "shards" / "final")
    for f in ("_SUCCESS", "stats.json"):
        (run / "shards" / f).write_bytes((shard_run / "shards" / f).read_bytes())
    return run


def _state(run: Path) -> dict:
    return torch.load(run / "train" / "checkpoints" / "last.pt", weights_only=True)["model"]


def test_two_processes_train_on_their_own_shards_with_full_equal_batches(shard_run, tmp_path) -> None:
    two = _run_dir(shard_run, tmp_path, "two")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                        str(free_port()), "-m", "webclip.cli", "--", "train", "--run", str(two), "--config",
                        str(_config(tmp_path, batch_size=16, accum_steps=2, steps=6))], capture_output=True,
                       text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-6000:]
    steps = [json.loads(line) for line in (two / "train" / "keys.jsonl").read_text().splitlines()]
    assert [row["step"] for row in steps] == list(range(1, 7))
    assert all(len(set(row["keys"])) == 16 for row in steps)
    stats = json.loads((two / "train" / "stats.json").read_text())
    assert stats["processes"] == 2 and stats["kept"] == 6 * 16 and stats["in"] == stats["kept"]
    ckpt = torch.load(two / "train" / "checkpoints" / "last.pt", weights_only=True)
    assert len(ckpt["loaders"]) == 2 and ckpt["step"] == 6


def test_sigkill_then_resume_repeats_no_step_and_sees_the_same_samples(shard_run, tmp_path) -> None:
    full = _run_dir(shard_run, tmp_path, "full")
    cfg = _config(tmp_path, steps=24, checkpoint_every=6)
    args = [sys.executable, "-m", "webclip.cli", "train", "--config", str(cfg), "--run"]
    assert subprocess.run([*args, str(full)], capture_output=True, timeout=300).returncode == 0
    killed = _run_dir(shard_run, tmp_path, "killed")
    p = subprocess.Popen([*args, str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = killed / "train" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not ckpt.exists():
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert not (killed / "train" / "_SUCCESS").exists()
    assert subprocess.run([*args, str(killed)], capture_output=True, timeout=300).returncode == 0
    steps = [json.loads(line)["step"] for line in (killed / "train" / "keys.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 25))
    assert (killed / "train" / "keys.jsonl").read_text() == (full / "train" / "keys.jsonl").read_text()
    stats = json.loads((killed / "train" / "stats.json").read_text())
    assert stats["steps"] == 24 and stats["in"] == stats["kept"] + sum(stats["dropped"].values())


def _shard_of(key: str) -> int:
    return int(key) // 40  # the fixture writes samples 0-39, 40-79, 80-119 into three tars


def test_each_rank_reads_only_its_own_shards_and_every_sample_once_per_epoch(shard_run) -> None:
    from webclip.model.data import ShardLoader, epoch_shards, read_manifest

    tars = read_manifest(shard_run / "shards" / "final")
    order = [int(Path(t).stem.split("-")[1]) for t in epoch_shards(tars, 3, 0)]
    seen = []
    for rank in (0, 1):
        loader = ShardLoader(tars, 32, 4, seed=3, buffer=30, rank=rank, world=2)
        it = loader.batches()
        mine = set(order[rank::2])
        keys = [k for _ in range(10 * len(mine)) for k in next(it).keys]  # this rank's epoch 0
        assert {_shard_of(k) for k in keys} == mine  # its own shards only
        seen += keys
    assert sorted(seen) == [f"{i:04d}" for i in range(120)]  # together: every sample exactly once


def test_fewer_shards_than_streams_split_by_sample(shard_run) -> None:
    from webclip.model.data import ShardLoader, read_manifest

    tars = read_manifest(shard_run / "shards" / "final")[:1]
    keys = []
    for rank in range(4):  # 4 ranks, 1 shard of 40 samples: each reads every 4th sample
        it = ShardLoader(tars, 32, 5, seed=1, buffer=10, rank=rank, world=4).batches()
        keys += [k for _ in range(2) for k in next(it).keys]
    assert sorted(keys) == [f"{i:04d}" for i in range(40)]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_resumed_loader_continues_exactly_where_it_stopped(shard_run, workers) -> None:
    from webclip.model.data import ShardLoader, read_manifest

    tars = read_manifest(shard_run / "shards" / "final")

    def loader() -> ShardLoader:
        return ShardLoader(tars, 32, 16, seed=3, buffer=30, workers=workers)

    whole = loader().batches()
    expected = [next(whole).keys for _ in range(11)]
    first = loader()
    it = first.batches()
    got = [next(it).keys for _ in range(5)]
    second = loader()
    second.load_state(first.state())
    it = second.batches()
    got += [next(it).keys for _ in range(6)]
    assert got == expected
    assert all(len(b) == 16 for b in got)  # 11 x 16 > 120: batches run on across the epoch boundary


def test_corrupt_samples_are_replaced_so_batches_stay_full(tmp_path) -> None:
    from webclip.model.data import ShardLoader

    samples = [{"key": f"{i:04d}", "jpg": _jpeg(COLOURS["red"], i) if i % 3 else b"not a jpeg", "txt": "a red square",
                "json": {}} for i in range(30)]
    write_tar(tmp_path / "00000.tar", samples)
    loader = ShardLoader([str(tmp_path / "00000.tar")], 32, 8, seed=0, buffer=10)
    it = loader.batches()
    batches = [next(it) for _ in range(2)]
    assert [len(b.keys) for b in batches] == [8, 8] and all(int(k) % 3 for b in batches for k in b.keys)
    assert loader.samples_read == loader.samples_trained + loader.decode_errors and loader.decode_errors > 0


def test_too_few_samples_is_a_clear_error_not_a_hang(shard_run, tmp_path) -> None:
    run = _run_dir(shard_run, tmp_path, "small")
    r = subprocess.run([sys.executable, "-m", "webclip.cli", "train", "--run", str(run), "--config",
                        str(_config(tmp_path, batch_size=128))], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "too few" in r.stderr and "batch_size" in r.stderr


def test_max_seconds_stops_at_a_checkpoint_and_leaves_the_stage_unfinished(shard_run, tmp_path) -> None:
    run = _run_dir(shard_run, tmp_path, "timed")
    cfg = _config(tmp_path, steps=500, max_seconds=0.5, checkpoint_every=1000)
    args = [sys.executable, "-m", "webclip.cli", "train", "--run", str(run), "--config", str(cfg)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "rerun" in r.stderr
    assert not (run / "train" / "_SUCCESS").exists()
    step = torch.load(run / "train" / "checkpoints" / "last.pt", weights_only=True)["step"]
    assert 0 < step < 500


def test_gradcache_gives_the_gradients_of_one_large_batch() -> None:
    from webclip.model.clip import CLIP
    from webclip.model.config import load_preset
    from webclip.model.gradcache import contrastive_backward

    cfg = load_preset("demo")
    cfg.vocab_size = 50
    torch.manual_seed(0)
    model = CLIP(cfg)
    images = torch.randn(16, 3, cfg.image_size, cfg.image_size)
    tokens = torch.randint(1, 50, (16, cfg.context_length))
    results = []
    for chunks in (1, 4):
        model.zero_grad()
        loss = contrastive_backward(model, images, tokens, chunks).loss
        results.append((loss, {n: p.grad.clone() for n, p in model.named_parameters()}))
    (loss1, g1), (loss4, g4) = results
    assert torch.allclose(loss1, loss4, atol=1e-6)
    for name in g1:
        assert torch.allclose(g1[name], g4[name], atol=1e-5, rtol=1e-4), name


def test_zero_shot_after_a_short_training_beats_chance_on_an_easy_split(shard_run, tmp_path) -> None:
    run = _run_dir(shard_run, tmp_path, "zs")
    heldout = tmp_path / "heldout"
    for name, rgb in COLOURS.items():
        (heldout / name).mkdir(parents=True)
        for k in range(6):
            (heldout / name / f"{k}.jpg").write_bytes(_jpeg(rgb, 1000 + k))
    (tmp_path / "classnames.json").write_text(json.dumps(list(COLOURS)))
    (tmp_path / "templates.json").write_text(json.dumps(["a {} square", "a photo of a {} square"]))
    cfg = json.loads(_config(tmp_path, steps=40, lr=2e-3, warmup_steps=5, log_keys=False).read_text())
    cfg["eval"] = {"images": str(heldout), "classnames": str(tmp_path / "classnames.json"),
                   "templates": str(tmp_path / "templates.json")}
    path = tmp_path / "zs.json"
    path.write_text(json.dumps(cfg))
    for stage in ("train", "eval"):
        r = subprocess.run([sys.executable, "-m", "webclip.cli", stage, "--run", str(run), "--config", str(path)],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
    results = json.loads((run / "eval" / "results.json").read_text())
    assert results["zero_shot"]["chance_top1"] == 0.25
    assert results["zero_shot"]["top1"] >= 0.6, results["zero_shot"]
    assert (run / "eval" / "confusion.png").exists() and (run / "train" / "curves.png").exists()
    assert list((run / "train" / "tensorboard").glob("events.out.tfevents.*"))


def test_eval_reads_a_webdataset_eval_set_like_the_image_folder(shard_run, tmp_path) -> None:
    from webclip.model.evaluate import labelled_images

    folder = tmp_path / "folder"
    samples = []
    for name, rgb in COLOURS.items():
        (folder / name).mkdir(parents=True)
        for k in range(2):
            data = _jpeg(rgb, 50 + k)
            (folder / name / f"{k}.jpg").write_bytes(data)
            samples.append({"key": f"{name}{k}", "jpg": data, "txt": name, "json": {}})
    wds_dir = tmp_path / "wds"
    import io
    import tarfile

    wds_dir.mkdir()
    with tarfile.open(wds_dir / "eval-0000.tar", "w") as tar:
        for s, label in zip(samples, [i // 2 for i in range(8)], strict=True):
            for ext, data in (("jpg", s["jpg"]), ("cls", str(label).encode())):
                info = tarfile.TarInfo(f"{s['key']}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    a = labelled_images(folder, list(COLOURS))
    b = labelled_images(wds_dir, list(COLOURS))
    assert sorted((d, y) for _, d, y in a) == sorted((d, y) for _, d, y in b) and len(b) == 8


def test_bf16_autocast_gradient_checkpointing_and_resampled_mode_train(shard_run, tmp_path) -> None:
    run = _run_dir(shard_run, tmp_path, "opts")
    cfg = _config(tmp_path, steps=3, precision="bf16", grad_checkpointing=True, data_mode="resampled", workers=0)
    r = subprocess.run([sys.executable, "-m", "webclip.cli", "train", "--run", str(run), "--config", str(cfg)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in (run / "train" / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3] and all(np.isfinite(row["loss"]) for row in rows)


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    from webclip.model.clip import CLIP
    from webclip.model.config import load_preset
    from webclip.model.loss import clip_loss

    cfg = load_preset("demo")
    cfg.vocab_size = 50
    torch.manual_seed(0)
    model = CLIP(cfg)
    images, tokens = torch.randn(4, 3, 32, 32), torch.tensor([[1, 7, 8, 2] + [0] * (cfg.context_length - 4)] * 4)
    grads = []
    for enabled in (False, True):
        model.zero_grad()
        model.set_grad_checkpointing(enabled)
        model.train()
        clip_loss(*model(images, tokens)).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads, strict=True))


def test_head_and_tail_come_from_the_training_counts_not_the_class_order() -> None:
    from webclip.model.evaluate import head_tail_report

    classes = ["ant", "bee", "cat", "dog", "eel", "fox"]
    counts = {"fox": 900, "eel": 500, "ant": 40, "bee": 30, "dog": 2}  # cat: no training sample at all
    y = torch.arange(6).repeat(2)
    logits = torch.nn.functional.one_hot(torch.tensor([1, 0, 0, 3, 4, 5] * 2), 6).float()  # right on dog, eel, fox
    report = head_tail_report(logits, y, classes, counts)
    assert report["head_classes"] == ["fox", "eel"] and report["tail_classes"] == ["dog", "cat"]
    assert report["top1_head"] == 1.0 and report["top1_tail"] == 0.5
    assert head_tail_report(logits, y, classes, None)["top1_head"] is None


def test_the_loader_never_yields_a_sample_the_denylist_names(tmp_path) -> None:
    from webclip import denylist
    from webclip.model.data import ShardLoader

    samples = [{"key": f"{i:04d}", "jpg": _jpeg(COLOURS["blue"], i), "txt": "a blue square",
                "json": {"uid": f"{i:04d}", "url": f"http://img.example/{i}.jpg", "page_url": "http://p.example/"}}
               for i in range(24)]
    write_tar(tmp_path / "train-00000.tar", samples)
    deny = denylist.build([denylist.Entry("image_url", "http://img.example/3.jpg"),
                           denylist.Entry("sha256", "0" * 64)])
    loader = ShardLoader([str(tmp_path / "train-00000.tar")], 32, 23, seed=0, buffer=8, denylist=deny)
    keys = next(loader.batches()).keys  # one epoch: the 23 samples the denylist allows
    assert sorted(keys) == [f"{i:04d}" for i in range(24) if i != 3]
    assert loader.denied == 1 and loader.samples_read == 24


def test_an_error_in_one_rank_ends_every_rank_instead_of_hanging(tmp_path) -> None:
    """Review of issue 15 (failing today): one rank's loader raises (its only shard has no readable image) while the
    other rank waits in the loss's all_gather; the raising rank must exit rather than wait in close_distributed's
    barrier, so torchrun stops the job with the error instead of both ranks hanging until the gloo timeout."""
    run = tmp_path / "onebad"
    final = run / "shards" / "final"
    good = [{"key": f"{i:04d}", "jpg": _jpeg(COLOURS["red"], i), "txt": "a red square", "json": {}} for i in range(40)]
    bad = [{"key": f"{i:04d}", "jpg": b"not a jpeg", "txt": "a red square", "json": {}} for i in range(40, 80)]
    write_tar(final / "train-00000.tar", good)
    write_tar(final / "train-00001.tar", bad)  # seed 132: rank 0's share is this shard in epochs 0-7 (EMPTY_EPOCHS)
    atomic_write_json(final / "manifest.json", {"train": [{"name": "train-00000.tar", "samples": 40},
                                                          {"name": "train-00001.tar", "samples": 40}],
                                                "val": [], "totals": {"train": 80, "val": 0}})
    StageDir(run, "shards").finish({"in": 80, "kept": 80, "dropped": {}})
    log = tmp_path / "torchrun.log"
    with open(log, "w") as out:
        p = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                              str(free_port()), "-m", "webclip.cli", "--", "train", "--run", str(run), "--config",
                              str(_config(tmp_path, steps=4, seed=132))], stdout=out, stderr=subprocess.STDOUT,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        try:
            p.wait(timeout=90)
        except subprocess.TimeoutExpired:
            _kill_tree(p.pid)  # torchrun puts each rank in its own session: kill them by pid, not by group
            pytest.fail("one rank's loader error hung the 2-process run for 90 s instead of ending it")
    err = log.read_text()
    assert p.returncode != 0 and "no readable sample" in err, err[-3000:]


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants (read from /proc before any is killed)."""
    tree, i = [pid], 0
    while i < len(tree):
        children = Path(f"/proc/{tree[i]}/task/{tree[i]}/children")
        tree += [int(c) for c in (children.read_text().split() if children.exists() else [])]
        i += 1
    for p in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)


def test_a_sample_whose_metadata_cannot_be_read_is_counted_not_fatal_when_a_denylist_is_set(tmp_path) -> None:
    import io
    import tarfile

    from webclip import denylist
    from webclip.model.data import ShardLoader

    with tarfile.open(tmp_path / "train-00000.tar", "w") as tar:
        for i in range(12):
            meta = b"\xff not json" if i == 5 else json.dumps({"url": f"http://img.example/{i}.jpg"}).encode()
            for ext, data in (("jpg", _jpeg(COLOURS["red"], i)), ("txt", b"a red square"), ("json", meta)):
                info = tarfile.TarInfo(f"{i:04d}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    deny = denylist.build([denylist.Entry("image_url", "http://img.example/3.jpg")])
    loader = ShardLoader([str(tmp_path / "train-00000.tar")], 32, 10, seed=0, buffer=4, denylist=deny)
    keys = next(loader.batches()).keys
    assert sorted(keys) == [f"{i:04d}" for i in range(12) if i not in (3, 5)]
    assert (loader.denied, loader.decode_errors, loader.samples_read) == (1, 1, 12)


def test_tokenizer_learns_from_the_samples_table_train_rows_without_reading_a_tar(shard_run, tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from webclip.model.data import train_captions

    tars = [str(shard_run / "shards" / "final" / f"train-{s:05d}.tar") for s in range(3)]
    from_tars = list(train_captions(shard_run, tars, 50))  # no samples table: the tars' texts, capped
    assert len(from_tars) == 50 and set(from_tars) == {f"a {c} square" for c in COLOURS}
    run = tmp_path / "with_samples"
    (run / "shards" / "samples").mkdir(parents=True)
    rows = pa.table({"caption": ["a train caption", "a held-out caption", "another train one"],
                     "split": ["train", "val", "train"]})
    pq.write_table(rows, run / "shards" / "samples" / "part-00000.parquet")
    missing = [str(tmp_path / "no-such.tar")]  # reading a tar would fail
    assert list(train_captions(run, missing, 10)) == ["a train caption", "another train one"]


def test_a_stream_shorter_than_a_batch_never_puts_a_sample_twice_in_one_batch(tmp_path) -> None:
    from webclip.model.data import ShardLoader

    samples = [{"key": f"{i:04d}", "jpg": _jpeg(COLOURS["green"], i), "txt": "a green square", "json": {}}
               for i in range(12)]
    write_tar(tmp_path / "train-00000.tar", samples)
    loader = ShardLoader([str(tmp_path / "train-00000.tar")], 32, 8, seed=0, buffer=12)
    it = loader.batches()
    batches = [next(it) for _ in range(6)]  # 48 samples from epochs of 12: batches cross epoch boundaries
    assert all(len(b.keys) == 8 == len(set(b.keys)) for b in batches)
    assert loader.repeats > 0  # the shuffled next epoch did bring back samples already in the batch
    assert loader.samples_read == loader.samples_trained + loader.repeats


def test_a_stream_with_fewer_distinct_samples_than_a_batch_is_a_clear_error(tmp_path) -> None:
    from webclip.model.data import ShardLoader

    samples = [{"key": f"{i:04d}", "jpg": _jpeg(COLOURS["red"], i), "txt": "a red square", "json": {}}
               for i in range(5)]
    write_tar(tmp_path / "train-00000.tar", samples)
    with pytest.raises(ValueError, match="fewer distinct readable samples than a batch of 8"):
        next(ShardLoader([str(tmp_path / "train-00000.tar")], 32, 8, seed=0, buffer=4).batches())


def test_random_crop_is_seeded_bounded_and_off_at_one() -> None:
    import random

    from webclip.model.data import random_crop

    image = Image.new("RGB", (48, 40), (10, 20, 30))
    assert random_crop(image, random.Random(0), 1.0) is image  # the default: no augmentation
    sizes = [random_crop(image, random.Random(f"crop:0:0:{k}"), 0.6).size for k in range(200)]
    assert sizes == [random_crop(image, random.Random(f"crop:0:0:{k}"), 0.6).size for k in range(200)]
    shares = [w * h / (48 * 40) for w, h in sizes]
    assert all(0.45 <= s <= 1.0 for s in shares) and min(shares) < 0.7 < max(shares)  # clipped at the edges
    assert all(3 / 4 - 0.1 <= w / h <= 4 / 3 + 0.25 for w, h in sizes)


def test_a_small_shard_whose_samples_are_all_in_the_batch_does_not_end_the_stream(tmp_path) -> None:
    """Review: a stream's share changes each epoch; one epoch adding nothing (a 5-sample shard already in the
    batch) is no proof that the stream cannot fill a batch."""
    from webclip.model.data import ShardLoader

    sizes = {"train-00000.tar": 5, "train-00001.tar": 11}
    start = 0
    for name, n in sizes.items():
        write_tar(tmp_path / name, [{"key": f"{i:04d}", "jpg": _jpeg(COLOURS["blue"], i), "txt": "a blue square",
                                     "json": {}} for i in range(start, start + n)])
        start += n
    tars = [str(tmp_path / name) for name in sizes]
    for rank in (0, 1):
        it = ShardLoader(tars, 32, 8, seed=1, buffer=16, rank=rank, world=2).batches()
        batches = [next(it) for _ in range(6)]
        assert all(len(set(b.keys)) == 8 for b in batches)

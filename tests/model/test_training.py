"""The real trainer: two processes agree with one, and a killed run resumes on the same samples."""

from __future__ import annotations

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
        write_tar(final / f"{s:05d}.tar", samples[s * 40:(s + 1) * 40])
        entries.append({"name": f"{s:05d}.tar", "samples": 40})
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


def test_two_processes_agree_with_one_process_on_the_same_global_batch(shard_run, tmp_path) -> None:
    one = _run_dir(shard_run, tmp_path, "one")
    two = _run_dir(shard_run, tmp_path, "two")
    r = subprocess.run([sys.executable, "-m", "webclip.cli", "train", "--run", str(one), "--config",
                        str(_config(tmp_path, batch_size=16))], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                        str(free_port()), "-m", "webclip.cli", "--", "train", "--run", str(two), "--config",
                        str(_config(tmp_path, batch_size=8))], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    keys = [json.loads(line)["keys"] for line in (one / "train" / "keys.jsonl").read_text().splitlines()]
    assert keys == [json.loads(line)["keys"] for line in (two / "train" / "keys.jsonl").read_text().splitlines()]
    a, b = _state(one), _state(two)
    for name in a:
        assert torch.allclose(a[name], b[name], atol=2e-5, rtol=1e-4), name


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


def test_batch_order_is_the_same_for_any_number_of_loader_workers(shard_run) -> None:
    from webclip.model.data import ShardLoader, read_manifest

    tars = read_manifest(shard_run / "shards" / "final")
    orders = []
    for workers in (0, 2):
        loader = ShardLoader(tars, 32, 16, seed=3, buffer=30, workers=workers)
        it = loader.batches()
        orders.append([next(it).keys for _ in range(12)])  # 12 x 16 > 120 samples: crosses epochs
        assert loader.remainder_dropped == 8 and loader.position.epoch == 1
    assert orders[0] == orders[1]
    assert len({k for batch in orders[0][:7] for k in batch}) == 7 * 16  # no sample twice within an epoch


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

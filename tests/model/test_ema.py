"""The weight average (``ema_decay``): its definition step by step, what evaluation loads, and exact resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.model.test_training import _config, _run_dir, shard_run  # noqa: F401  (shard_run is a fixture)
from webclip.model.train import load_model


def _train(run, cfg) -> dict:
    r = subprocess.run([sys.executable, "-m", "webclip.cli", "train", "--run", str(run), "--config", str(cfg)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return torch.load(run / "train" / "checkpoints" / "last.pt", weights_only=True)


def _ema_weights(ckpt: dict) -> dict:
    return {k.removeprefix("module."): v for k, v in ckpt["ema"].items() if k.startswith("module.")}


def test_the_average_follows_its_definition_and_evaluation_loads_it(shard_run, tmp_path) -> None:  # noqa: F811
    # Warmup covers both steps, so the first step is the same whether the run is 1 or 2 steps long.
    one = _train(_run_dir(shard_run, tmp_path, "one"), _config(tmp_path, steps=1, warmup_steps=2, ema_decay=0.9))
    two_run = _run_dir(shard_run, tmp_path, "two")
    two = _train(two_run, _config(tmp_path, steps=2, warmup_steps=2, ema_decay=0.9))
    w1, w2 = one["model"], two["model"]
    for name, value in _ema_weights(one).items():  # the first update copies the weights
        assert torch.equal(value, w1[name]), name
    changed = 0
    for name, value in _ema_weights(two).items():
        expected = 0.9 * w1[name].double() + 0.1 * w2[name].double()
        assert torch.allclose(value.double(), expected, atol=1e-6), name
        changed += not torch.equal(w1[name], w2[name])
    assert changed > 10  # the step moved the weights, so the check above could fail
    model, _, _ = load_model(two_run / "train" / "checkpoints" / "last.pt")
    for name, value in model.state_dict().items():
        assert torch.equal(value, _ema_weights(two)[name]), name


def test_without_ema_the_checkpoint_has_no_average_and_evaluation_loads_the_weights(shard_run, tmp_path) -> None:  # noqa: F811
    run = _run_dir(shard_run, tmp_path, "plain")
    ckpt = _train(run, _config(tmp_path, steps=2))
    assert "ema" not in ckpt
    model, _, _ = load_model(run / "train" / "checkpoints" / "last.pt")
    assert all(torch.equal(v, ckpt["model"][k]) for k, v in model.state_dict().items())


def test_a_killed_run_resumes_its_average_exactly(shard_run, tmp_path) -> None:  # noqa: F811
    cfg = _config(tmp_path, steps=16, checkpoint_every=4, ema_decay=0.8)
    full = _train(_run_dir(shard_run, tmp_path, "full"), cfg)
    killed = _run_dir(shard_run, tmp_path, "killed")
    args = [sys.executable, "-m", "webclip.cli", "train", "--config", str(cfg), "--run", str(killed)]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = killed / "train" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not ckpt.exists():
        time.sleep(0.02)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    if (killed / "train" / "_SUCCESS").exists():
        pytest.fail("the run finished before it could be killed: the test needs a longer run")
    resumed = _train(killed, cfg)
    for name, value in full["ema"].items():
        assert torch.equal(value, resumed["ema"][name]), name


def test_ema_decay_outside_zero_to_one_is_refused() -> None:
    from webclip.model.config import TrainConfig

    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="ema_decay"):
            TrainConfig(ema_decay=bad).validate()


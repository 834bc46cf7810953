"""Checkpoints load as weights only: a file that carries code is refused, never run."""

from __future__ import annotations

import pickle
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from webclip.model.clip import CLIP
from webclip.model.config import load_preset
from webclip.model.tokenizer import train_tokenizer
from webclip.model.train import CHECKPOINT_FORMAT, CheckpointError, load_model, save_checkpoint


class _RunsCode:
    """Unpickling this writes a marker file: what a hostile checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def _good_state() -> dict:
    cfg = load_preset("demo")
    tok = train_tokenizer(["a red square", "a blue circle"] * 20, 300)
    cfg.vocab_size = tok.get_vocab_size()
    model = CLIP(cfg)
    return {"format": CHECKPOINT_FORMAT, "model": model.state_dict(), "model_config": asdict(cfg),
            "tokenizer": tok.to_str(), "rng": torch.get_rng_state(), "step": 3}


def test_a_checkpoint_round_trips_with_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    state = _good_state()
    save_checkpoint(path, state)
    model, tok, ckpt = load_model(path)
    assert ckpt["step"] == 3 and tok.get_vocab_size() == state["model_config"]["vocab_size"]
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state["model"][name]), name


def test_a_checkpoint_carrying_code_is_refused_and_the_code_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pt"
    state = _good_state()
    state["extra"] = _RunsCode(marker)
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="weights only"):
        load_model(path)
    assert not marker.exists()
    raw = tmp_path / "raw.pkl"  # a plain pickle, not even a torch zip file
    raw.write_bytes(pickle.dumps(_RunsCode(marker)))
    with pytest.raises(CheckpointError):
        load_model(raw)
    assert not marker.exists()


def test_a_foreign_file_is_a_clear_one_line_error_from_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError, match="not a webclip checkpoint"):
        load_model(path)
    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "webclip.cli", "eval", "--run", str(run), "--checkpoint", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "not a webclip checkpoint" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]

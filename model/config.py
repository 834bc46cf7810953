"""Model, training and evaluation configs; model presets live in ``configs/model/*.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

PRESET_DIR = Path(__file__).resolve().parent.parent / "configs" / "model"


@dataclass
class ModelConfig:
    """Shapes of both towers and the shared embedding."""

    vision: str = "vit"  # "vit" or "rn"
    image_size: int = 32
    patch_size: int = 4
    vision_width: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    rn_layers: list[int] = field(default_factory=lambda: [1, 1, 1, 1])
    text_width: int = 128
    text_layers: int = 4
    text_heads: int = 4
    context_length: int = 32
    vocab_size: int = 2048
    embed_dim: int = 128
    mlp_ratio: float = 4.0


def load_preset(name_or_path: str) -> ModelConfig:
    """A preset by name (``configs/model/<name>.json``) or by path."""
    from webclip.config import build

    p = Path(name_or_path)
    if not p.suffix:
        p = PRESET_DIR / f"{name_or_path}.json"
    if not p.is_file():
        raise FileNotFoundError(f"model preset not found: {name_or_path}")
    return build(ModelConfig, json.loads(p.read_text()))


@dataclass
class TrainConfig:
    """How long and how to train, where checkpoints go."""

    # Free to change on resume (see webclip.config.runtime_fields): the batch order does not depend on them.
    RUNTIME: ClassVar[tuple[str, ...]] = ("threads", "workers", "progress")

    model: str = "demo"
    batch_size: int = 128
    steps: int = 1000
    max_seconds: float | None = None  # stop early (and checkpoint) after this much training time
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 50
    grad_clip: float = 1.0
    precision: str = "fp32"  # or "bf16"
    grad_checkpointing: bool = False
    seed: int = 0
    threads: int = 2
    workers: int = 0  # DataLoader processes decoding images; 0 decodes in the training process (best on a 2-core CPU)
    shuffle_buffer: int = 2000
    data_mode: str = "epoch"  # "epoch": every sample once per epoch; "resampled": shards drawn with replacement
    checkpoint_every: int = 200
    log_every: int = 10
    tokenizer_vocab: int | None = None  # defaults to the model's vocab_size
    device: str = "auto"
    progress: bool = True
    log_keys: bool = False  # write the sample keys of every step to keys.jsonl (provenance, resume checks)

    def validate(self) -> None:
        """Reject impossible settings."""
        if self.precision not in ("fp32", "bf16"):
            raise ValueError("precision must be fp32 or bf16")
        if self.data_mode not in ("epoch", "resampled"):
            raise ValueError("data_mode must be epoch or resampled")
        if self.batch_size < 2 or self.steps < 1:
            raise ValueError("batch_size must be >= 2 and steps >= 1")


@dataclass
class EvalConfig:
    """What to evaluate and on which data."""

    RUNTIME: ClassVar[tuple[str, ...]] = ("threads",)  # free to change on rerun (see webclip.config.runtime_fields)

    checkpoint: str = "train/checkpoints/last.pt"  # relative to the run folder
    images: str = "sampleweb/heldout"  # ImageFolder <images>/<class>/*.jpg, or WebDataset .tar(s) with .cls
    classnames: str = "sampleweb/classnames.json"
    templates: str = "sampleweb/templates.json"
    batch_size: int = 256
    probe_val_fraction: float = 0.3
    device: str = "auto"
    threads: int = 2

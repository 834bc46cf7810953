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
    RUNTIME: ClassVar[tuple[str, ...]] = ("threads", "progress")

    model: str = "demo"  # model preset in configs/model/ (demo, tiny-vit, tiny-rn, ViT-B-32, RN50) or a JSON path
    batch_size: int = 128  # samples per step over all processes (the contrastive batch)
    accum_steps: int = 1  # micro-batches per step (GradCache): the same loss and gradients, 1/N of the activations
    steps: int = 1000  # optimiser steps
    max_seconds: float | None = None  # stop after this many seconds at a checkpoint, stage left unfinished (rerun continues)
    lr: float = 1e-3  # peak learning rate (AdamW), reached after warmup, then cosine decay
    weight_decay: float = 0.1  # AdamW weight decay (not on gains, biases, embeddings or the temperature)
    warmup_steps: int = 50  # steps of linear learning-rate warmup
    grad_clip: float = 1.0  # gradient norm clip
    ema_decay: float = 0.0  # >0: also keep an exponential moving average of the weights (evaluated instead); 0: off
    precision: str = "fp32"  # or "bf16"
    grad_checkpointing: bool = False  # recompute activations in backward (less memory, more compute)
    seed: int = 0  # seed of initialisation and batch order
    threads: int = 2  # torch CPU threads per process
    workers: int = 0  # DataLoader processes per training process, each reading its own shards (part of the data order: keep it on resume); 0 decodes in the training process
    shuffle_buffer: int = 2000  # samples held for shuffling
    crop_scale: float = 1.0  # training images: a random crop of at least this share of the area (1: none)
    data_mode: str = "epoch"  # "epoch": every sample once per epoch; "resampled": shards drawn with replacement
    checkpoint_every: int = 200  # steps between checkpoints (checkpoints/last.pt)
    log_every: int = 10  # steps between metrics.jsonl rows
    tokenizer_vocab: int | None = None  # defaults to the model's vocab_size
    tokenizer_samples: int = 1_000_000  # train captions the tokenizer learns from (the first, in samples/ order)
    device: str = "auto"  # auto (CUDA when present), cpu or cuda[:N]
    progress: bool = True  # show a progress bar
    log_keys: bool = False  # write the sample keys of every step to keys.jsonl (provenance, resume checks)

    def validate(self) -> None:
        """Reject impossible settings."""
        if self.precision not in ("fp32", "bf16"):
            raise ValueError("precision must be fp32 or bf16")
        if self.data_mode not in ("epoch", "resampled"):
            raise ValueError("data_mode must be epoch or resampled")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError("ema_decay must be in [0, 1): 0 turns the weight average off")
        if self.batch_size < 2 or self.steps < 1 or self.accum_steps < 1:
            raise ValueError("batch_size must be >= 2, steps >= 1 and accum_steps >= 1")


@dataclass
class EvalConfig:
    """What to evaluate and on which data."""

    RUNTIME: ClassVar[tuple[str, ...]] = ("threads",)  # free to change on rerun (see webclip.config.runtime_fields)

    checkpoint: str = "train/checkpoints/last.pt"  # relative to the run folder
    images: str = "sampleweb/heldout"  # ImageFolder <images>/<class>/*.jpg, or WebDataset .tar(s) with .cls
    classnames: str = "sampleweb/classnames.json"  # JSON list of class names, relative to the run folder
    templates: str = "sampleweb/templates.json"  # JSON list of prompt templates with {} (the prompt ensemble)
    batch_size: int = 256  # images per forward pass
    probe_val_fraction: float = 0.3  # share of eval images the linear probe holds out to choose its L2 strength
    device: str = "auto"  # auto (CUDA when present), cpu or cuda[:N]
    threads: int = 2  # torch CPU threads per process

"""The trainer: a loop you can read top to bottom, with atomic checkpoints and exact resume."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from webclip.config import build
from webclip.model.clip import CLIP
from webclip.model.config import ModelConfig, TrainConfig, load_preset
from webclip.model.data import Position, ShardLoader, iter_tar, read_manifest
from webclip.model.loss import clip_loss
from webclip.model.tokenizer import encode_batch, train_tokenizer
from webclip.runfolder import StageDir, atomic_write_json, shards_final, stage
from webclip.stats import Tally, check_identity


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices; never gains, biases, embeddings or the temperature."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2 or "embedding" in name or "logit_scale" in name or "bn" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_at(step: int, base_lr: float, warmup: int, total: int) -> float:
    """Linear warmup to ``base_lr``, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * base_lr * (1 + math.cos(math.pi * min(1.0, progress)))


def truncate_after(path: Path, step: int) -> None:
    """Drop JSON lines whose ``step`` is past ``step`` (work lost with a killed run)."""
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in lines))


def append_keys(path: Path, step: int, keys: list[str], rank: int, world: int) -> None:
    """Record the global batch's sample keys for ``step`` (gathered from every rank)."""
    if world > 1:
        gathered: list[list[str]] = [[] for _ in range(world)]
        torch.distributed.all_gather_object(gathered, keys)
        keys = [k for part in gathered for k in part]
    if rank == 0:
        with open(path, "a") as f:
            f.write(json.dumps({"step": step, "keys": sorted(keys)}) + "\n")


def tensorboard_writer(folder: Path) -> Any:
    """A TensorBoard SummaryWriter, or None when the tensorboard package is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(folder))


def pick_device(name: str) -> torch.device:
    """CUDA when present (for ``auto``), else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save to a temporary file, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


CHECKPOINT_FORMAT = "webclip-checkpoint/1"
CHECKPOINT_KEYS = ("model", "model_config", "tokenizer")


class CheckpointError(ValueError):
    """A file that is not a checkpoint this webclip can load safely."""


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint read with ``weights_only=True``: tensors and plain data only, never pickled code.

    Config and tokenizer are stored as plain dicts and a JSON string, so nothing else is needed. A
    file carrying other objects (an old webclip checkpoint, a foreign or hostile pickle) is refused.
    """
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # torch raises UnpicklingError, RuntimeError or EOFError by file kind
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a checkpoint webclip loads safely (weights only): {first}") from e
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in CHECKPOINT_KEYS):
        raise CheckpointError(f"{path}: not a webclip checkpoint (needs {', '.join(CHECKPOINT_KEYS)})")
    if ckpt.get("format", CHECKPOINT_FORMAT) != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {ckpt['format']!r}, this webclip reads {CHECKPOINT_FORMAT}")
    return ckpt


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[CLIP, Any, dict[str, Any]]:
    """(model, tokenizer, checkpoint) from a self-describing checkpoint."""
    from tokenizers import Tokenizer

    ckpt = load_checkpoint(path, device)
    model = CLIP(build(ModelConfig, ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), Tokenizer.from_str(ckpt["tokenizer"]), ckpt


def plot_curves(metrics_path: Path, out: Path) -> None:
    """PNG of the loss and the in-batch accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    if not rows:
        return
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    axes[0].plot([r["step"] for r in rows], [r["loss"] for r in rows])
    axes[0].set(title="contrastive loss", xlabel="step")
    axes[1].plot([r["step"] for r in rows], [r["batch_acc"] for r in rows])
    axes[1].set(title="in-batch image->text accuracy", xlabel="step")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def run_train(cfg: TrainConfig, out_stage: StageDir, run: Path) -> dict[str, Any]:
    """Train on ``<run>/shards/final`` and finish ``<run>/train``; resumes from ``checkpoints/last.pt``."""
    shards = stage(run, "shards")
    if not shards.done:
        raise FileNotFoundError(f"no finished shards in {shards.path}: run `webclip shards` first")
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    out = out_stage.path
    ckpt_path = out / "checkpoints" / "last.pt"
    tars = read_manifest(shards_final(run), "train")
    mcfg = load_preset(cfg.model)

    resume = load_checkpoint(ckpt_path) if ckpt_path.exists() else None
    if resume is not None:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_str(resume["tokenizer"])
        mcfg = build(ModelConfig, resume["model_config"])
    else:
        captions = (s["txt"].decode("utf-8") for t in tars for s in iter_tar(t))
        tok = train_tokenizer(captions, cfg.tokenizer_vocab or mcfg.vocab_size)
        mcfg.vocab_size = tok.get_vocab_size()
    torch.manual_seed(cfg.seed)
    model = CLIP(mcfg).to(device)
    model.set_grad_checkpointing(cfg.grad_checkpointing)
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
    loader = ShardLoader(tars, mcfg.image_size, cfg.batch_size, cfg.seed, cfg.shuffle_buffer, rank, world, cfg.workers,
                         cfg.data_mode)
    step = 0
    counts_before = {"read": 0, "trained": 0, "decode_errors": 0}
    if resume is not None:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        torch.set_rng_state(resume["rng"])
        loader.position = Position(**resume["position"])
        step = resume["step"]
        counts_before = resume["counts"]
        loader.remainder_dropped = resume["remainder_dropped"]
    ddp = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    metrics, keys_log = out / "metrics.jsonl", out / "keys.jsonl"
    board = tensorboard_writer(out / "tensorboard") if rank == 0 else None
    if rank == 0:  # a killed run may have logged steps after its last checkpoint: they are redone
        for log in (metrics, keys_log):
            truncate_after(log, step)
    bar = tqdm(total=cfg.steps, initial=step, desc="train", unit="step", disable=not cfg.progress or rank != 0, mininterval=0.5)
    started, trained = time.monotonic(), 0
    batches = loader.batches()

    def checkpoint() -> None:
        if rank == 0:
            save_checkpoint(ckpt_path, {
                "format": CHECKPOINT_FORMAT, "model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                "model_config": asdict(mcfg), "train_config": asdict(cfg), "tokenizer": tok.to_str(),
                "rng": torch.get_rng_state(), "position": asdict(loader.position),
                "remainder_dropped": loader.remainder_dropped,
                "counts": {"read": counts_before["read"] + loader.samples_read,
                           "trained": counts_before["trained"] + trained,
                           "decode_errors": counts_before["decode_errors"] + loader.decode_errors}})

    model.train()
    while step < cfg.steps:
        if cfg.max_seconds is not None and time.monotonic() - started > cfg.max_seconds:
            break
        batch = next(batches)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg.lr, cfg.warmup_steps, cfg.steps)
        tokens = encode_batch(tok, batch.texts, mcfg.context_length).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
            img_f, txt_f, scale = ddp(batch.images.to(device), tokens)
            loss = clip_loss(img_f.float(), txt_f.float(), scale.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        trained += len(batch.keys) * world
        if rank == 0 and (step % cfg.log_every == 0 or step == cfg.steps):
            with torch.no_grad():
                acc = (img_f @ txt_f.T).argmax(1).eq(torch.arange(len(img_f), device=device)).float().mean().item()
            row = {"step": step, "loss": round(loss.item(), 5), "lr": opt.param_groups[0]["lr"],
                   "temperature": round(1 / scale.item(), 5), "batch_acc": round(acc, 4),
                   "samples_per_s": round(trained / max(1e-9, time.monotonic() - started), 2),
                   "epoch": loader.position.epoch}
            with open(metrics, "a") as f:
                f.write(json.dumps(row) + "\n")
            if board is not None:
                for name in ("loss", "lr", "temperature", "samples_per_s", "batch_acc"):
                    board.add_scalar(f"train/{name}", row[name], step)
        if cfg.log_keys:
            append_keys(keys_log, step, batch.keys, rank, world)
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        if step % cfg.checkpoint_every == 0:
            checkpoint()
    checkpoint()
    bar.close()
    if board is not None:
        board.close()
    elapsed = time.monotonic() - started
    if rank == 0 and metrics.exists():
        plot_curves(metrics, out / "curves.png")
    tally = Tally("samples read", n_in=counts_before["read"] + loader.samples_read,
                  kept=counts_before["trained"] + trained)
    tally.drop("train/epoch_remainder", loader.remainder_dropped)
    tally.drop("train/decode_error", counts_before["decode_errors"] + loader.decode_errors)
    stats = tally.as_dict()
    stats.update({"steps": step, "seconds": round(elapsed, 2), "samples_per_s": round(trained / max(elapsed, 1e-9), 2),
                  "epochs_started": loader.position.epoch + 1, "checkpoint": str(ckpt_path), "model_config": asdict(mcfg)})
    check_identity(stats)
    if rank == 0:
        atomic_write_json(out / "train_summary.json", stats)
        out_stage.finish(stats)
    return stats

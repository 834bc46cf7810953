"""The trainer: a loop you can read top to bottom, with atomic checkpoints and exact resume."""

from __future__ import annotations

import datetime
import gc
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from webclip import denylist
from webclip.config import build
from webclip.model.clip import CLIP
from webclip.model.config import ModelConfig, TrainConfig, load_preset
from webclip.model.data import Batch, ShardLoader, read_manifest_sizes, train_captions
from webclip.model.gradcache import Features, contrastive_backward
from webclip.model.tokenizer import encode_batch, train_tokenizer
from webclip.runfolder import StageDir, StageIncomplete, atomic_write_json, shards_final, stage
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
    model.load_state_dict(evaluated_weights(ckpt))
    return model.to(device).eval(), Tokenizer.from_str(ckpt["tokenizer"]), ckpt


def weight_average(model: CLIP, cfg: TrainConfig) -> Any:
    """An exponential moving average of ``model``'s parameters and buffers (None when ``ema_decay`` is 0).

    Each step: ``ema = decay * ema + (1 - decay) * weights``, starting from the first step's weights.
    """
    if not cfg.ema_decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)


def evaluated_weights(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The weights a checkpoint is evaluated with: the moving average when it has one, else the trained weights."""
    ema = ckpt.get("ema")
    if ema is None:
        return ckpt["model"]
    return {k.removeprefix("module."): v for k, v in ema.items() if k.startswith("module.")}


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


@dataclass
class Session:
    """Everything one training process holds: model, optimiser, tokenizer, data and where it stands."""

    cfg: TrainConfig
    mcfg: ModelConfig
    model: CLIP
    ddp: torch.nn.Module
    opt: torch.optim.Optimizer
    tok: Any
    loader: ShardLoader
    device: torch.device
    rank: int
    world: int
    step: int = 0
    ema: Any = None  # torch.optim.swa_utils.AveragedModel of ``model`` when ``ema_decay`` > 0


GROUP_TIMEOUT = datetime.timedelta(minutes=30)  # ranks wait this long in a collective, e.g. while rank 0 trains BPE


def init_distributed(device: str = "auto") -> tuple[int, int]:
    """(rank, world) from torchrun's environment; joins the process group when there are several processes.

    NCCL when training runs on CUDA (``device`` auto with a GPU, or cuda[:N]), gloo otherwise.
    """
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if pick_device(device).type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend, timeout=GROUP_TIMEOUT)
    return rank, world


def close_distributed(s: Session) -> None:
    """After a finished run: wait for every process, drop the model (DDP holds the group), then leave the group.

    So no process exits while another talks to it, and no gloo object is left for the interpreter's teardown
    (an object destroyed there can abort the process: "terminate called without an active exception").

    Not on an error: the failing process exits at once and torchrun stops the others (a barrier here would
    wait for ranks that sit in a collective the failing one never joins).
    """
    if s.world > 1 and torch.distributed.is_initialized():
        torch.distributed.barrier()
        s.model = s.ddp = s.opt = s.ema = None  # type: ignore[assignment]
        gc.collect()
        torch.distributed.destroy_process_group()


def rank_device(device: torch.device, world: int) -> torch.device:
    """With several processes on CUDA, each takes the GPU of its LOCAL_RANK (torchrun's), unless one was named."""
    if device.type != "cuda" or device.index is not None or world == 1:
        return device
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    torch.cuda.set_device(device)
    return device


def check_data(sizes: list[tuple[str, int]], cfg: TrainConfig, world: int) -> list[str]:
    """The non-empty train tars; a clear error when they cannot fill the batches (rather than a hang)."""
    if cfg.batch_size % world or (cfg.batch_size // world) % cfg.accum_steps:
        raise ValueError(f"batch_size {cfg.batch_size} must split evenly over {world} process(es) x "
                         f"{cfg.accum_steps} micro-batch(es)")
    total = sum(n for _, n in sizes)
    streams = world * max(1, cfg.workers)
    if total < max(cfg.batch_size, streams * (cfg.batch_size // world)):
        raise ValueError(f"the train shards hold {total} samples, too few for {world} process(es) x "
                         f"{max(1, cfg.workers)} loader stream(s) of {cfg.batch_size // world}: lower batch_size "
                         "or workers, or add data")
    return [url for url, n in sizes if n > 0]


def first_rank_says(value: Any, world: int) -> Any:
    """Rank 0's ``value`` on every rank, so all take the same branch (e.g. resume or not) and meet in its collectives."""
    if world == 1:
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def shared_tokenizer(run: Path, tars: list[str], cfg: TrainConfig, vocab: int, world: int) -> Any:
    """The run's tokenizer: trained once, by rank 0, on the train captions, and sent to the other ranks."""
    from tokenizers import Tokenizer

    rank = torch.distributed.get_rank() if world > 1 else 0
    text = train_tokenizer(train_captions(run, tars, cfg.tokenizer_samples), vocab).to_str() if rank == 0 else None
    return Tokenizer.from_str(first_rank_says(text, world))


def start_session(cfg: TrainConfig, run: Path, ckpt_path: Path, rank: int, world: int) -> Session:
    """Build (or resume from ``ckpt_path``) the model, optimiser, tokenizer and loader."""
    tars = check_data(read_manifest_sizes(shards_final(run), "train"), cfg, world)
    device = rank_device(pick_device(cfg.device), world)  # before any collective: NCCL needs each rank's GPU set
    resume = load_checkpoint(ckpt_path) if first_rank_says(ckpt_path.exists(), world) else None
    if resume is not None:
        from tokenizers import Tokenizer

        tok, mcfg = Tokenizer.from_str(resume["tokenizer"]), build(ModelConfig, resume["model_config"])
    else:
        mcfg = load_preset(cfg.model)
        tok = shared_tokenizer(run, tars, cfg, cfg.tokenizer_vocab or mcfg.vocab_size, world)
        mcfg.vocab_size = tok.get_vocab_size()
    torch.manual_seed(cfg.seed)
    model = CLIP(mcfg).to(device)
    model.set_grad_checkpointing(cfg.grad_checkpointing)
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
    loader = ShardLoader(tars, mcfg.image_size, cfg.batch_size // world, cfg.seed, cfg.shuffle_buffer, rank, world,
                         cfg.workers, cfg.data_mode, denylist.for_run(run), cfg.crop_scale)
    session = Session(cfg, mcfg, model, model, opt, tok, loader, device, rank, world, ema=weight_average(model, cfg))
    if resume is not None:
        restore(session, resume)
    if world > 1:
        session.ddp = torch.nn.parallel.DistributedDataParallel(model)
    return session


def restore(s: Session, ckpt: dict[str, Any]) -> None:
    """Continue from a checkpoint: weights, optimiser, RNG, step and this rank's data streams."""
    loaders = ckpt.get("loaders")
    if loaders is None:
        raise CheckpointError("the checkpoint was written by an older trainer and cannot be resumed: "
                              "train again with --force (its weights still evaluate)")
    if len(loaders) != s.world:
        raise ValueError(f"the checkpoint was trained by {len(loaders)} process(es), this run has {s.world}: "
                         "resume with the same number")
    s.model.load_state_dict(ckpt["model"])
    s.opt.load_state_dict(ckpt["optimizer"])
    torch.set_rng_state(ckpt["rng"])
    s.loader.load_state(loaders[s.rank])
    s.step = ckpt["step"]
    trained_with = ckpt.get("train_config", {}).get("ema_decay", 0.0) if "ema" in ckpt else 0.0
    if trained_with != s.cfg.ema_decay:
        raise ValueError(f"the checkpoint was trained with ema_decay {trained_with}, this config has "
                         f"{s.cfg.ema_decay}: resume with the same setting")
    if s.ema is not None:
        s.ema.load_state_dict(ckpt["ema"])


def gather(obj: Any, world: int) -> list[Any]:
    """``obj`` from every rank, in rank order."""
    if world == 1:
        return [obj]
    out: list[Any] = [None] * world
    torch.distributed.all_gather_object(out, obj)
    return out


def save_session(s: Session, ckpt_path: Path) -> None:
    """An atomic checkpoint by rank 0, holding every rank's data position (all ranks must call this)."""
    loaders = gather(s.loader.state(), s.world)
    if s.rank == 0:
        save_checkpoint(ckpt_path, {
            "format": CHECKPOINT_FORMAT, "model": s.model.state_dict(), "optimizer": s.opt.state_dict(),
            "step": s.step, "model_config": asdict(s.mcfg), "train_config": asdict(s.cfg), "tokenizer": s.tok.to_str(),
            "rng": torch.get_rng_state(), "loaders": loaders,
            **({"ema": s.ema.state_dict()} if s.ema is not None else {})})


def train_step(s: Session, batch: Batch) -> tuple[Features, float]:
    """One optimiser step on the global batch; returns the loss with its features and the learning rate used."""
    lr = lr_at(s.step, s.cfg.lr, s.cfg.warmup_steps, s.cfg.steps)
    for g in s.opt.param_groups:
        g["lr"] = lr
    tokens = encode_batch(s.tok, batch.texts, s.mcfg.context_length).to(s.device)
    s.opt.zero_grad(set_to_none=True)
    feats = contrastive_backward(s.ddp, batch.images.to(s.device), tokens, s.cfg.accum_steps,
                                lambda: torch.autocast(s.device.type, dtype=torch.bfloat16,
                                                       enabled=s.cfg.precision == "bf16"))
    torch.nn.utils.clip_grad_norm_(s.model.parameters(), s.cfg.grad_clip)
    s.opt.step()
    if s.ema is not None:
        s.ema.update_parameters(s.model)
    s.step += 1
    return feats, lr


def out_of_time(s: Session, started: float) -> bool:
    """Whether ``max_seconds`` has passed, decided by rank 0 for every rank (so all stop on the same step)."""
    if s.cfg.max_seconds is None:
        return False
    flag = torch.tensor([float(time.monotonic() - started > s.cfg.max_seconds)], device=s.device)  # NCCL: on the GPU
    if s.world > 1:
        torch.distributed.broadcast(flag, 0)
    return bool(flag.item())


def log_step(s: Session, batch: Batch, feats: Features, lr: float, logs: Logs) -> None:
    """metrics.jsonl, TensorBoard and keys.jsonl rows for the step just taken."""
    cfg = s.cfg
    if s.rank == 0 and (s.step % cfg.log_every == 0 or s.step == cfg.steps):
        img, txt = feats.image, feats.text
        acc = (img @ txt.T).argmax(1).eq(torch.arange(len(img), device=img.device)).float().mean().item()
        row = {"step": s.step, "loss": round(feats.loss.item(), 5), "lr": lr,
               "temperature": round(1 / feats.scale.item(), 5),
               "batch_acc": round(acc, 4), "samples_per_s": round(logs.trained(s) / logs.elapsed(), 2)}
        with open(logs.metrics, "a") as f:
            f.write(json.dumps(row) + "\n")
        if logs.board is not None:
            for name in ("loss", "lr", "temperature", "samples_per_s", "batch_acc"):
                logs.board.add_scalar(f"train/{name}", row[name], s.step)
    if cfg.log_keys:
        append_keys(logs.keys, s.step, batch.keys, s.rank, s.world)
    logs.bar.update(1)
    logs.bar.set_postfix(loss=f"{feats.loss.item():.3f}", refresh=False)


@dataclass
class Logs:
    """Where the loop reports: metrics.jsonl, keys.jsonl, TensorBoard, the progress bar and the clock."""

    metrics: Path
    keys: Path
    board: Any
    bar: Any
    started: float
    trained_before: int

    def elapsed(self) -> float:
        """Seconds of training in this process."""
        return max(1e-9, time.monotonic() - self.started)

    def trained(self, s: Session) -> int:
        """Samples trained by all ranks in this process's lifetime (rank 0's count times the world size)."""
        return (s.loader.samples_trained - self.trained_before) * s.world


def open_logs(s: Session, out: Path) -> Logs:
    """Logs for this run; a killed run's rows after its last checkpoint are dropped (those steps are redone)."""
    metrics, keys = out / "metrics.jsonl", out / "keys.jsonl"
    if s.rank == 0:
        for log in (metrics, keys):
            truncate_after(log, s.step)
    bar = tqdm(total=s.cfg.steps, initial=s.step, desc="train", unit="step",
               disable=not s.cfg.progress or s.rank != 0, mininterval=0.5)
    board = tensorboard_writer(out / "tensorboard") if s.rank == 0 else None
    return Logs(metrics, keys, board, bar, time.monotonic(), s.loader.samples_trained)


def summary(s: Session, logs: Logs, ckpt_path: Path) -> dict[str, Any]:
    """stats.json: samples read by all ranks, kept (trained) and dropped, with the run's shape."""
    counts = [c["counts"] for c in gather(s.loader.state(), s.world)]
    tally = Tally("samples read", n_in=sum(c["read"] for c in counts), kept=sum(c["trained"] for c in counts))
    tally.drop("train/decode_error", sum(c["decode_errors"] for c in counts))
    tally.drop("optout/denylisted", sum(c.get("denied", 0) for c in counts))
    tally.drop("train/repeat_in_batch", sum(c.get("repeats", 0) for c in counts))
    stats = tally.as_dict()
    epochs = max((p.epoch for p in s.loader.positions.values()), default=0)
    stats.update({"steps": s.step, "seconds": round(logs.elapsed(), 2),
                  "samples_per_s": round(logs.trained(s) / logs.elapsed(), 2), "epochs_started": epochs + 1,
                  "processes": s.world, "checkpoint": str(ckpt_path), "model_config": asdict(s.mcfg)})
    check_identity(stats)
    return stats


def run_train(cfg: TrainConfig, out_stage: StageDir, run: Path) -> dict[str, Any]:
    """Train on ``<run>/shards/final`` and finish ``<run>/train``; resumes from ``checkpoints/last.pt``.

    With ``max_seconds`` the run stops early at a checkpoint and the stage stays unfinished (exit 1):
    rerun the same command to continue.
    """
    if not stage(run, "shards").done:
        raise FileNotFoundError(f"no finished shards in {stage(run, 'shards').path}: run `webclip shards` first")
    rank, world = init_distributed(cfg.device)
    torch.set_num_threads(cfg.threads)
    ckpt_path = out_stage.path / "checkpoints" / "last.pt"
    s = start_session(cfg, run, ckpt_path, rank, world)
    logs = open_logs(s, out_stage.path)
    batches = s.loader.batches()
    s.model.train()
    while s.step < cfg.steps and not out_of_time(s, logs.started):
        batch = next(batches)
        feats, lr = train_step(s, batch)
        log_step(s, batch, feats, lr, logs)
        if s.step % cfg.checkpoint_every == 0:
            save_session(s, ckpt_path)
    save_session(s, ckpt_path)
    logs.bar.close()
    stats = summary(s, logs, ckpt_path)
    if rank == 0:
        finish_outputs(s, logs, out_stage, stats)
    del batches
    close_distributed(s)  # only here: an exception above leaves at once (see close_distributed)
    if s.step < cfg.steps:
        raise StageIncomplete(f"stopped after {s.step} of {cfg.steps} steps (max_seconds {cfg.max_seconds}): "
                              "rerun the same command to continue from the checkpoint")
    return stats


def finish_outputs(s: Session, logs: Logs, out_stage: StageDir, stats: dict[str, Any]) -> None:
    """Rank 0's closing writes: curves, the summary and, when every step ran, the stage's ``_SUCCESS``."""
    if logs.board is not None:
        logs.board.close()
    if logs.metrics.exists():
        plot_curves(logs.metrics, out_stage.path / "curves.png")
    atomic_write_json(out_stage.path / "train_summary.json", stats)
    if s.step >= s.cfg.steps:
        out_stage.finish(stats)

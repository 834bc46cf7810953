"""Two processes on halves of a batch update a model exactly as one process on the whole batch."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from webclip.model.clip import CLIP
from webclip.model.config import load_preset
from webclip.model.gradcache import contrastive_backward

BATCH = 16


def _model_and_batch() -> tuple[CLIP, torch.Tensor, torch.Tensor]:
    cfg = load_preset("demo")
    cfg.vocab_size = 50
    torch.manual_seed(0)
    model = CLIP(cfg)
    images = torch.randn(BATCH, 3, cfg.image_size, cfg.image_size)
    tokens = torch.randint(1, 50, (BATCH, cfg.context_length))
    return model, images, tokens


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def _worker(rank: int, init: str, chunks: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        model, images, tokens = _model_and_batch()
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        half = slice(rank * BATCH // 2, (rank + 1) * BATCH // 2)
        contrastive_backward(ddp, images[half], tokens[half], chunks)
        if rank == 0:
            torch.save(_grads(model), out)
        dist.barrier()
        del ddp, model  # DDP holds the group: release it before the group goes (see model/train.py)
        gc.collect()
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("chunks", [1, 2])
def test_two_processes_get_the_gradients_of_one_process_on_the_global_batch(tmp_path: Path, chunks: int) -> None:
    model, images, tokens = _model_and_batch()
    contrastive_backward(model, images, tokens)
    expected = _grads(model)
    out = tmp_path / "grads.pt"
    mp.start_processes(_worker, args=(f"file://{tmp_path / 'rendezvous'}", chunks, str(out)), nprocs=2,
                       start_method="spawn")
    got = torch.load(out, weights_only=True)
    for name, g in expected.items():
        assert torch.allclose(got[name], g, atol=1e-5, rtol=1e-4), name

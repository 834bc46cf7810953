"""Symmetric contrastive loss over the global batch; the distributed gather is isolated here."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _GatherWithGrad(torch.autograd.Function):
    """all_gather forward; backward sums every rank's gradient of the gathered tensor and keeps this rank's slice.

    Blocking collectives on any backend (gloo, NCCL) and nothing left in flight when backward returns.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone(memory_format=torch.contiguous_format)  # all_reduce works in place
        dist.all_reduce(grad)  # every rank's loss depends on every slice: the slice's gradient is the sum
        b = grad.shape[0] // dist.get_world_size()
        return grad[dist.get_rank() * b:(dist.get_rank() + 1) * b]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """All ranks' features (world*B, E), differentiable: backward routes each slice's gradient home.

    With every rank computing its local rows against all columns, and DDP averaging gradients,
    the update equals a single process on the global batch (tests/model/test_distributed.py, GradCache too).
    """
    if not _distributed():
        return x
    return _GatherWithGrad.apply(x)


def clip_loss(image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Mean of image->text and text->image cross-entropy for this rank's rows of the global batch."""
    all_img, all_txt = gather_with_grad(image_features), gather_with_grad(text_features)
    rank = dist.get_rank() if _distributed() else 0
    b = image_features.shape[0]
    labels = torch.arange(b, device=image_features.device) + rank * b
    logits_per_image = logit_scale * image_features @ all_txt.T  # (B, world*B)
    logits_per_text = logit_scale * text_features @ all_img.T  # (B, world*B)
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2

"""Symmetric contrastive loss over the global batch; the distributed gather is isolated here."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """All ranks' features (world*B, E), differentiable: backward routes each slice's gradient home.

    With every rank computing its local rows against all columns, and DDP averaging gradients,
    the update equals a single process on the global batch (tests/model/test_distributed.py, GradCache too).
    """
    if not _distributed():
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x), dim=0)


def clip_loss(image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Mean of image->text and text->image cross-entropy for this rank's rows of the global batch."""
    all_img, all_txt = gather_with_grad(image_features), gather_with_grad(text_features)
    rank = dist.get_rank() if _distributed() else 0
    b = image_features.shape[0]
    labels = torch.arange(b, device=image_features.device) + rank * b
    logits_per_image = logit_scale * image_features @ all_txt.T  # (B, world*B)
    logits_per_text = logit_scale * text_features @ all_img.T  # (B, world*B)
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2

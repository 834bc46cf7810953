"""Symmetric contrastive loss; in multi-process training, features are gathered with gradients."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """All ranks' features (world*B, E); gradients flow back to this rank's slice only (open_clip)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.zeros_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.detach())
    parts[dist.get_rank()] = x
    return torch.cat(parts, dim=0)


def clip_loss(image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Mean of image->text and text->image cross-entropy over the global batch."""
    all_img, all_txt = gather_with_grad(image_features), gather_with_grad(text_features)
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    b = image_features.shape[0]
    labels = torch.arange(b, device=image_features.device) + rank * b
    logits_per_image = logit_scale * image_features @ all_txt.T  # (B, world*B)
    logits_per_text = logit_scale * text_features @ all_img.T  # (B, world*B)
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2

"""Contrastive backward over a large batch in micro-batches, with the gradients of the whole batch (GradCache).

The contrastive loss couples every sample with every other, so plain gradient accumulation would
change it. Instead: embed all micro-batches without a graph, take the loss and its gradient with
respect to the features, then re-embed each micro-batch with a graph and push that feature gradient
through it. Parameters get the same gradient as one pass over the whole batch; only one
micro-batch's activations are held at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import NamedTuple

import torch

from webclip.model.loss import clip_loss

Autocast = Callable[[], AbstractContextManager]


class Features(NamedTuple):
    """A step's loss with the features and scale it was computed from (no graph)."""

    loss: torch.Tensor
    image: torch.Tensor
    text: torch.Tensor
    scale: torch.Tensor


def contrastive_backward(model: torch.nn.Module, images: torch.Tensor, tokens: torch.Tensor, chunks: int = 1,
                         autocast: Autocast = nullcontext) -> Features:
    """Backward of ``clip_loss`` over the batch in ``chunks`` micro-batches; returns the loss and features, detached.

    ``model`` may be wrapped in DistributedDataParallel: gradients are synchronised once, on the last
    micro-batch. Buffers (batch-norm statistics) are restored after the graph-free pass, so they are
    updated once per micro-batch, as in any accumulation.
    """
    if chunks == 1:
        with autocast():
            img, txt, scale = model(images, tokens)
        loss = clip_loss(img.float(), txt.float(), scale.float())
        loss.backward()
        return Features(loss.detach(), img.detach().float(), txt.detach().float(), scale.detach().float())
    feats, grads = feature_gradients(model, images.chunk(chunks), tokens.chunk(chunks), autocast)
    replay(model, images.chunk(chunks), tokens.chunk(chunks), grads, autocast)
    return feats


def feature_gradients(model: torch.nn.Module, images: tuple[torch.Tensor, ...], tokens: tuple[torch.Tensor, ...],
                      autocast: Autocast) -> tuple[Features, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The whole batch's loss and features, and the loss's gradient with respect to both features and scale."""
    inner = getattr(model, "module", model)
    saved = {name: b.detach().clone() for name, b in inner.named_buffers()}
    with torch.no_grad(), autocast():
        parts = [inner(i, t) for i, t in zip(images, tokens, strict=True)]
    with torch.no_grad():
        for name, b in inner.named_buffers():
            b.copy_(saved[name])
    img = torch.cat([p[0] for p in parts]).float().requires_grad_()
    txt = torch.cat([p[1] for p in parts]).float().requires_grad_()
    scale = parts[0][2].float().requires_grad_()
    loss = clip_loss(img, txt, scale)
    loss.backward()
    return Features(loss.detach(), img.detach(), txt.detach(), scale.detach()), (img.grad, txt.grad, scale.grad)


def replay(model: torch.nn.Module, images: tuple[torch.Tensor, ...], tokens: tuple[torch.Tensor, ...],
           grads: tuple[torch.Tensor, torch.Tensor, torch.Tensor], autocast: Autocast) -> None:
    """Re-embed each micro-batch with a graph and back-propagate its slice of the feature gradients."""
    g_img, g_txt, g_scale = grads
    start, last = 0, len(images) - 1
    for k, (i, t) in enumerate(zip(images, tokens, strict=True)):
        sync = nullcontext() if k == last or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            with autocast():
                img, txt, scale = model(i, t)
            rows = slice(start, start + len(i))
            surrogate = (img.float() * g_img[rows]).sum() + (txt.float() * g_txt[rows]).sum()
            # every micro-batch's forward uses the temperature, so its gradient is shared out evenly
            surrogate = surrogate + scale.float() * g_scale / len(images)
            surrogate.backward()
        start += len(i)

"""Zero-shot classification with prompt ensembling, as pure functions of (model, classnames, templates)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from webclip.model.clip import CLIP
from webclip.model.tokenizer import encode_batch


@torch.no_grad()
def classifier_weights(model: CLIP, tok, classnames: list[str], templates: list[str]) -> torch.Tensor:  # noqa: ANN001
    """(E, C): per class, embed every template, normalise, average, renormalise."""
    device = next(model.parameters()).device
    weights = []
    for name in classnames:
        tokens = encode_batch(tok, [t.format(name) for t in templates], model.cfg.context_length).to(device)
        emb = model.encode_text(tokens).mean(dim=0)
        weights.append(F.normalize(emb, dim=-1))
    return torch.stack(weights, dim=1)


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """(N,) bool: the label is among the top ``k`` predictions."""
    k = min(k, logits.shape[1])
    return logits.topk(k, dim=1).indices.eq(labels[:, None]).any(dim=1)


def accuracy_report(logits: torch.Tensor, labels: torch.Tensor, classnames: list[str]) -> dict:
    """Top-1, top-5, per-class top-1 and the confusion matrix."""
    top1 = topk_correct(logits, labels, 1)
    pred = logits.argmax(1)
    n = len(classnames)
    confusion = torch.zeros(n, n, dtype=torch.long)
    for t, p in zip(labels.tolist(), pred.tolist(), strict=True):
        confusion[t, p] += 1
    per_class = {c: (top1[labels == i].float().mean().item() if (labels == i).any() else None)
                 for i, c in enumerate(classnames)}
    return {"top1": top1.float().mean().item(), "top5": topk_correct(logits, labels, 5).float().mean().item(),
            "per_class": per_class, "confusion": confusion.tolist(), "n": len(labels)}

"""CLIP: image tower + causal text tower, linear projections, L2-normalised, learnable temperature."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from webclip.model.config import ModelConfig
from webclip.model.resnet import ModifiedResNet
from webclip.model.transformer import Transformer
from webclip.model.vit import VisionTransformer

VISION_TOWERS: dict[str, type[nn.Module]] = {"vit": VisionTransformer, "rn": ModifiedResNet}


class TextTransformer(nn.Module):
    """Token ids (B, T) -> embeddings (B, E) from the end-of-text token's feature."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.text_width)
        self.positional_embedding = nn.Parameter(torch.randn(cfg.context_length, cfg.text_width) * 0.01)
        self.transformer = Transformer(cfg.text_width, cfg.text_layers, cfg.text_heads, cfg.mlp_ratio, causal=True)
        self.ln_final = nn.LayerNorm(cfg.text_width)
        self.proj = nn.Linear(cfg.text_width, cfg.embed_dim, bias=False)
        self.eot_id = 2

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(tokens) + self.positional_embedding[: tokens.shape[1]]  # (B, T, W)
        x = self.ln_final(self.transformer(x))
        eot = (tokens == self.eot_id).int().argmax(dim=1)  # (B,) position of <eot>
        return self.proj(x[torch.arange(x.shape[0]), eot])  # (B, E)


class CLIP(nn.Module):
    """Both towers and the logit scale (log of the inverse temperature, init 1/0.07, clamped at 100)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.visual = VISION_TOWERS[cfg.vision](cfg)
        self.text = TextTransformer(cfg)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        """Recompute transformer blocks in backward to save memory."""
        for m in self.modules():
            if isinstance(m, Transformer):
                m.grad_checkpointing = enabled

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> unit vectors (B, E)."""
        return F.normalize(self.visual(images), dim=-1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T) -> unit vectors (B, E)."""
        return F.normalize(self.text(tokens), dim=-1)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Image features, text features and the clamped logit scale."""
        return self.encode_image(images), self.encode_text(tokens), self.logit_scale.clamp(max=math.log(100)).exp()

"""Vision Transformer image tower: patch embedding, class token, learned positions, pre-norm blocks."""

from __future__ import annotations

import torch
from torch import nn

from webclip.model.config import ModelConfig
from webclip.model.transformer import Transformer


class VisionTransformer(nn.Module):
    """Images (B, 3, H, W) -> embeddings (B, embed_dim) from the class token."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        w = cfg.vision_width
        self.patch_embed = nn.Conv2d(3, w, kernel_size=cfg.patch_size, stride=cfg.patch_size, bias=False)
        n_patches = (cfg.image_size // cfg.patch_size) ** 2
        self.class_embedding = nn.Parameter(torch.randn(w) * w**-0.5)
        self.positional_embedding = nn.Parameter(torch.randn(n_patches + 1, w) * w**-0.5)
        self.ln_pre = nn.LayerNorm(w)
        self.transformer = Transformer(w, cfg.vision_layers, cfg.vision_heads, cfg.mlp_ratio)
        self.ln_post = nn.LayerNorm(w)
        self.proj = nn.Linear(w, cfg.embed_dim, bias=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images).flatten(2).transpose(1, 2)  # (B, N, W)
        cls = self.class_embedding.expand(x.shape[0], 1, -1)  # (B, 1, W)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding  # (B, N+1, W)
        x = self.transformer(self.ln_pre(x))
        return self.proj(self.ln_post(x[:, 0]))  # (B, E)

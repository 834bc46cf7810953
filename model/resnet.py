"""ResNet image tower with CLIP's changes: three-conv stem, anti-aliased strides, attention pooling."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from webclip.model.config import ModelConfig


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> (avgpool if strided) -> 1x1, with an avgpool-then-conv shortcut."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()  # anti-aliased stride
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = None
        if stride > 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(nn.AvgPool2d(stride) if stride > 1 else nn.Identity(),
                                            nn.Conv2d(inplanes, planes * 4, 1, bias=False), nn.BatchNorm2d(planes * 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.avgpool(out)))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class AttentionPool2d(nn.Module):
    """Multi-head attention from the mean token over the spatial grid (plus positions)."""

    def __init__(self, spatial: int, width: int, heads: int, out_dim: int):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(spatial**2 + 1, width) / width**0.5)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.proj = nn.Linear(width, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2).transpose(1, 2)  # (B, HW, C)
        x = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1) + self.positional_embedding  # (B, HW+1, C)
        out, _ = self.attn(x[:, :1], x, x, need_weights=False)  # (B, 1, C)
        return self.proj(out[:, 0])


class ModifiedResNet(nn.Module):
    """Images (B, 3, H, W) -> embeddings (B, embed_dim)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        w = cfg.vision_width
        self.stem = nn.Sequential(
            nn.Conv2d(3, w // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w // 2), nn.ReLU(),
            nn.Conv2d(w // 2, w // 2, 3, padding=1, bias=False), nn.BatchNorm2d(w // 2), nn.ReLU(),
            nn.Conv2d(w // 2, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(), nn.AvgPool2d(2))
        layers, inplanes = [], w
        for i, blocks in enumerate(cfg.rn_layers):
            planes = w * 2**i
            for b in range(blocks):
                layers.append(Bottleneck(inplanes, planes, stride=2 if (b == 0 and i > 0) else 1))
                inplanes = planes * 4
        self.layers = nn.Sequential(*layers)
        spatial = cfg.image_size // 32
        self.attnpool = AttentionPool2d(max(1, spatial), inplanes, cfg.vision_heads, cfg.embed_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.attnpool(self.layers(self.stem(images)))

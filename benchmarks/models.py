"""The three benchmark architectures, each under ~100k parameters so CPU training is quick.

* ``resnet``: a small PreAct-ResNet (He et al. 2016 pre-activation blocks, 16/32/64 wide).
* ``vgg``: a VGG-style stack of 3×3 conv + BatchNorm + ReLU with max-pooling.
* ``vit``: a tiny Vision Transformer (patch 4, width 64, depth 2, 4 heads), attention
  written with plain matmul/softmax so the TorchScript ONNX exporter and onnx2torch both
  handle it.

Every model ends in a ``nn.Linear`` head, which ULRL re-initialises rows of.
"""

from __future__ import annotations

import torch
from torch import nn


class PreActBlock(nn.Module):
    """BN-ReLU-conv twice, with an identity (or 1×1 conv) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(x))
        short = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + short


class PreActResNetSmall(nn.Module):
    """Stem conv, three pre-activation blocks (16, 32, 64 channels), GAP, linear head."""

    def __init__(self, in_ch: int = 1, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False)
        self.layers = nn.Sequential(
            PreActBlock(16, 16, 2), PreActBlock(16, 32, 2), PreActBlock(32, 64, 2)
        )
        self.bn = nn.BatchNorm2d(64)
        self.linear = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn(self.layers(self.stem(x))))
        return self.linear(out.mean(dim=(2, 3)))


def vgg_small(in_ch: int = 1, classes: int = 10) -> nn.Sequential:
    """conv16-pool, conv32-pool, conv64, conv64-pool, GAP, FC 64→64, FC 64→classes."""

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(in_ch, 16), nn.MaxPool2d(2),
        *block(16, 32), nn.MaxPool2d(2),
        *block(32, 64), *block(64, 64), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(64, 64), nn.ReLU(),
        nn.Linear(64, classes),
    )  # fmt: skip


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        hd = d // self.heads
        qkv = self.qkv(x).reshape(n, t, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * hd**-0.5, dim=-1)
        out = torch.matmul(attn, v).permute(0, 2, 1, 3).reshape(n, t, d)
        return self.proj(out)


class _EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = _Attention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TinyViT(nn.Module):
    """Patch embedding (conv, stride = patch), learned positions, mean-pooled tokens."""

    def __init__(
        self,
        in_ch: int = 1,
        classes: int = 10,
        size: int = 28,
        patch: int = 4,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        hidden: int = 128,
    ) -> None:
        super().__init__()
        tokens = (size // patch) ** 2
        self.embed = nn.Conv2d(in_ch, dim, patch, patch)
        self.pos = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.blocks = nn.Sequential(*[_EncoderLayer(dim, heads, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x).flatten(2).transpose(1, 2) + self.pos
        return self.head(self.norm(self.blocks(tokens)).mean(dim=1))


ARCHS = ("resnet", "vgg", "vit")


def build(arch: str, in_ch: int, classes: int, size: int) -> nn.Module:
    """A freshly initialised model of ``arch`` for ``in_ch``×``size``×``size`` inputs."""
    if arch == "resnet":
        return PreActResNetSmall(in_ch, classes)
    if arch == "vgg":
        return vgg_small(in_ch, classes)
    if arch == "vit":
        return TinyViT(in_ch, classes, size=size)
    raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHS)}")


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

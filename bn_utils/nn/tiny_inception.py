"""TinyInception: a CIFAR-10 stand-in for the Inception network of Ioffe & Szegedy's ablations.

Conv → BN → nonlinearity blocks (the conv drops its bias when BN follows, since BN's beta does that
job), a 3x3 stem, and two Inception blocks of four parallel branches concatenated on channels::

    stem conv 3→w (3x3) ─ maxpool/2 ─ Inception(w→3w) ─ maxpool/2 ─ Inception(3w→3w) ─ GAP
    ─ [BN1d] ─ [dropout] ─ linear 3w→10

    Inception block: 1x1 (w/2) | 1x1 (w/2) → 3x3 (w) | 1x1 (w/2) → 5x5 (w) | maxpool 3x3 → 1x1 (w/2)

With ``width=16`` the blocks map 16→48→48 channels (branch widths 8/16/16/8), the student
reproduction's widths; a larger ``width`` scales every layer. ``five="double3x3"`` replaces each
5x5 convolution by two 3x3 ones, as the paper's Inception does.

Not the student's network: the two stride-2 max-pools (``pool1``, ``pool2``) are ours. Without
them both blocks would run at 32x32, which by the layer shapes costs 4x (block 1) and 16x
(block 2) the arithmetic, more than a CPU budget allows; chapter 05's deviations table says so.
"""

from __future__ import annotations

import torch
from torch import nn

from .models import activation

FIVES = ("5x5", "double3x3")


def conv_block(c_in: int, c_out: int, kernel: int, *, bn: bool, act: str) -> nn.Sequential:
    """Return conv (same padding; no bias when BN follows) → BatchNorm2d (if ``bn``) → activation."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(activation(act))
    return nn.Sequential(*layers)


class InceptionBlock(nn.Module):
    """Four branches on the same input, concatenated on channels: 1x1 | 1x1→3x3 | 1x1→5x5 (or
    1x1→3x3→3x3) | 3x3 max-pool→1x1. Output channels: ``b1 + b3 + b5 + pool_proj``."""

    def __init__(self, c_in: int, *, b1: int, b3_reduce: int, b3: int, b5_reduce: int, b5: int,
                 pool_proj: int, bn: bool = True, act: str = "relu", five: str = "double3x3"):
        super().__init__()
        if five not in FIVES:
            raise ValueError(f"unknown five={five!r}; choose one of {', '.join(FIVES)}")
        block = lambda i, o, k: conv_block(i, o, k, bn=bn, act=act)  # noqa: E731
        self.branch1 = block(c_in, b1, 1)
        self.branch3 = nn.Sequential(block(c_in, b3_reduce, 1), block(b3_reduce, b3, 3))
        if five == "5x5":
            self.branch5 = nn.Sequential(block(c_in, b5_reduce, 1), block(b5_reduce, b5, 5))
        else:
            self.branch5 = nn.Sequential(block(c_in, b5_reduce, 1), block(b5_reduce, b5, 3),
                                         block(b5, b5, 3))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                         block(c_in, pool_proj, 1))
        self.out_channels = b1 + b3 + b5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the four branches' outputs concatenated on channels, (N, out_channels, H, W)."""
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], 1)


class TinyInception(nn.Module):
    """The ablation network (see the module docstring). ``bn``: BN before every nonlinearity;
    ``final_bn``: per-activation BN on the pooled features (an ensemble variant of the paper);
    ``dropout``: before the classifier (0.4 in Inception); ``init_gain`` multiplies the initial
    conv weights (the paper's "increased initial weights")."""

    def __init__(self, *, width: int = 16, bn: bool = True, act: str = "relu", dropout: float = 0.0,
                 five: str = "double3x3", final_bn: bool = False, init_gain: float = 1.0,
                 num_classes: int = 10):
        super().__init__()
        if not isinstance(width, int) or width < 2 or width % 2:
            raise ValueError(f"width={width!r} must be an even integer >= 2")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout!r} must be in [0, 1)")
        half = width // 2
        widths = dict(b1=half, b3_reduce=half, b3=width, b5_reduce=half, b5=width, pool_proj=half)
        self.stem = conv_block(3, width, 3, bn=bn, act=act)
        self.pool1 = nn.MaxPool2d(3, stride=2, padding=1)          # 32x32 → 16x16
        self.block1 = InceptionBlock(width, bn=bn, act=act, five=five, **widths)
        self.pool2 = nn.MaxPool2d(3, stride=2, padding=1)          # 16x16 → 8x8
        self.block2 = InceptionBlock(self.block1.out_channels, bn=bn, act=act, five=five, **widths)
        features = self.block2.out_channels
        self.final_norm = nn.BatchNorm1d(features) if final_bn else nn.Identity()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(features, num_classes)
        self.features = features
        if init_gain != 1.0:
            with torch.no_grad():
                for m in self.modules():
                    if isinstance(m, nn.Conv2d):
                        m.weight.mul_(init_gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the class logits (N, num_classes) of images x (N, 3, H, W)."""
        x = self.block2(self.pool2(self.block1(self.pool1(self.stem(x)))))
        x = x.mean((2, 3))
        return self.classifier(self.dropout(self.final_norm(x)))


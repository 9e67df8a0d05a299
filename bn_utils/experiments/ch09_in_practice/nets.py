"""Chapter 09's networks: the small CNN (the experiments on batch statistics of images) and a
wrapper that keeps BN frozen while the rest fine-tunes. The chapter's MLPs (BN before or after
the nonlinearity, dropout where asked) are ``bn_utils.nn.models.mlp``."""

from __future__ import annotations

import torch
from torch import nn

from ...nn import models
from ...nn.registry import make_norm


def cnn(norm: str, width: int, *, groups: int = 4, renorm: dict | None = None) -> nn.Sequential:
    """Return the small CNN: two (3x3 conv with stride 2 → norm → ReLU) blocks of ``width`` and
    ``2 * width`` channels (28x28 → 14x14 → 7x7) and a linear classifier, for MNIST images."""
    layer_kwargs = {"gn": {"groups": groups}, "brn": renorm or {}}.get(norm, {})
    layers: list[nn.Module] = []
    c_in = 1
    for c in (width, 2 * width):
        layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1, bias=norm == "none"),
                   make_norm(norm, c, 2, **layer_kwargs), nn.ReLU()]
        c_in = c
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(2 * width * 49, 10))


class FrozenNorms(nn.Module):
    """Wrap a model so that its BN layers stay in eval mode (running statistics used and fixed)
    even when ``train()`` is called: the usual way to fine-tune with small batches."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.train()

    def train(self, mode: bool = True) -> "FrozenNorms":
        """Set the mode of everything but the BN layers, which stay in eval mode; return self."""
        super().train(mode)
        for m in models.bn_layers(self.model):
            m.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the wrapped model's output."""
        return self.model(x)

"""Chapter 09's networks: the small CNN (the experiments on batch statistics of images), the MLP
with BN before or after its nonlinearity and dropout where asked, and a wrapper that keeps BN
frozen while the rest fine-tunes."""

from __future__ import annotations

import torch
from torch import nn

from ...nn import models
from ...nn.registry import make_norm
from .config import DROPOUT_PLACES, PLACEMENTS


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


def practice_mlp(widths: tuple | list, *, act: str = "relu", norm: bool = True, placement: str = "before",
                 dropout: float = 0.0, dropout_place: str = "none", init_scale: float = 1.0) -> nn.Sequential:
    """Return an MLP with BN ``before`` or ``after`` each hidden nonlinearity (or none), dropout
    ``before_bn`` (Linear → Dropout → BN), ``after_bn`` (after every hidden block) or ``last_only``
    (before the classifier), and torch's default initial weights times ``init_scale``."""
    if placement not in PLACEMENTS or dropout_place not in DROPOUT_PLACES:
        raise ValueError(f"placement={placement!r} / dropout_place={dropout_place!r}: choose from "
                         f"{PLACEMENTS} / {DROPOUT_PLACES}")
    layers: list[nn.Module] = []
    hidden = list(zip(widths[:-2], widths[1:-1]))
    for i, (a, b) in enumerate(hidden):
        linear = nn.Linear(a, b, bias=not norm or placement == "after")
        with torch.no_grad():
            linear.weight.mul_(init_scale)
        layers.append(linear)
        if dropout_place == "before_bn" and dropout > 0:
            layers.append(nn.Dropout(dropout))
        block = [nn.BatchNorm1d(b)] if norm else []
        block = block + [models.activation(act)] if placement == "before" else [models.activation(act)] + block
        layers += block
        if (dropout_place == "after_bn" or (dropout_place == "last_only" and i == len(hidden) - 1)) \
                and dropout > 0:
            layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(widths[-2], widths[-1]))
    return nn.Sequential(*layers)


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

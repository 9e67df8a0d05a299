"""Model builders. BN goes where Ioffe & Szegedy put it: on ``x = Wu``, before the nonlinearity,
and the layer before it drops its bias (BN's beta does that job)."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "linear": nn.Identity,
}


def _scratch_bn1d(width: int) -> nn.Module:
    from .norms import BatchNorm1d

    return BatchNorm1d(width)


# Name -> factory(width) of a normalisation layer for dense features. Chapters register more
# (noisy BN, lp-normalisation) with ``NORMS_1D[name] = factory``.
NORMS_1D: dict[str, Callable[[int], nn.Module]] = {
    "none": lambda width: nn.Identity(),
    "bn": nn.BatchNorm1d,              # torch's fused kernel: what the experiments train with
    "bn_scratch": _scratch_bn1d,       # ours, equal to torch's (tests/test_norms.py), slower
}
INITS = ("torch_default", "gaussian", "lecun_uniform", "glorot_uniform")


def activation(name: str) -> nn.Module:
    """Return a fresh activation module by name (``sigmoid``, ``tanh``, ``relu``, ``linear``)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def init_linear(layer: nn.Linear | nn.Conv2d, scheme: str, std: float = 0.01) -> None:
    """Initialise a layer's weight in place (``gaussian`` uses ``std``); biases start at zero."""
    if scheme not in INITS:
        raise ValueError(f"unknown init {scheme!r}; choose one of {', '.join(INITS)}")
    w = layer.weight
    fan_in = w[0].numel()
    with torch.no_grad():
        if scheme == "gaussian":
            w.normal_(0.0, std)
        elif scheme == "lecun_uniform":
            bound = math.sqrt(3.0 / fan_in)
            w.uniform_(-bound, bound)
        elif scheme == "glorot_uniform":
            nn.init.xavier_uniform_(w)
        if layer.bias is not None and scheme != "torch_default":
            layer.bias.zero_()


def mlp(widths: tuple[int, ...] | list[int], *, activation_name: str = "sigmoid",
        norm: str | Callable[[int], nn.Module] = "none", init: str = "torch_default",
        init_std: float = 0.01) -> nn.Sequential:
    """Return an MLP ``widths[0] -> ... -> widths[-1]``: Linear → norm → activation per hidden
    layer (Linear without bias when a norm follows), and a plain Linear output layer (logits)."""
    if len(widths) < 2 or any(not isinstance(w, int) or w < 1 for w in widths):
        raise ValueError(f"widths={widths!r} must be two or more positive integers")
    activation(activation_name)  # fail early on a bad name
    if isinstance(norm, str):
        if norm not in NORMS_1D:
            raise ValueError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS_1D)}")
        make_norm, normed = NORMS_1D[norm], norm != "none"
    else:
        make_norm, normed = norm, True
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        last = i == len(widths) - 2
        linear = nn.Linear(fan_in, fan_out, bias=last or not normed)
        init_linear(linear, init, init_std)
        layers.append(linear)
        if not last:
            if normed:
                layers.append(make_norm(fan_out))
            layers.append(activation(activation_name))
    return nn.Sequential(*layers)


def activation_inputs(model: nn.Sequential) -> list[int]:
    """Return the indices of the modules whose output feeds a nonlinearity (the pre-activations)."""
    acts = tuple(ACTIVATIONS[a] for a in ACTIVATIONS)
    return [i - 1 for i, m in enumerate(model) if isinstance(m, acts) and i > 0]

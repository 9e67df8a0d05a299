"""Chapter 04's networks: the pair without and with BN from the same initial weights, the data
they train on, and a stack of many of them (``bn_utils.nn.stacked_mlp``)."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from ...nn import models
from ... import runtime
from ...nn.stacked_mlp import StackedMLP
from .config import MnistConfig, parse_init


def build_nets(cfg: MnistConfig, activation: str, seed: int, init: str | None = None,
               norm: str | Callable[[int], nn.Module] = "bn") -> tuple[nn.Sequential, nn.Sequential]:
    """Return the network without BN and the one with BN (``norm``) before each nonlinearity, for
    ``activation`` and ``seed``; both start from the same weights, drawn once for the first.
    ``init`` is an initialisation label (default: the config's ``init`` and ``init_std``)."""
    scheme, std = parse_init(init) if init else (cfg.init, cfg.init_std)
    widths = (784, *cfg.hidden, 10)
    runtime.seed_everything(seed)
    plain = models.mlp(widths, activation_name=activation, norm="none", init=scheme, init_std=std)
    normed = models.mlp(widths, activation_name=activation, norm=norm, init=scheme, init_std=std)
    with torch.no_grad():
        src = [m for m in plain if isinstance(m, nn.Linear)]
        dst = [m for m in normed if isinstance(m, nn.Linear)]
        for a, b in zip(src, dst):
            b.weight.copy_(a.weight)
            if b.bias is not None:   # only the output layer keeps its bias under BN
                b.bias.copy_(a.bias)
    return plain, normed


def stack_of(cfg: MnistConfig, specs: Sequence[dict], device) -> StackedMLP:
    """Return the stack of the networks described by ``specs`` (activation, init, bn, seed)."""
    cache: dict = {}
    nets = []
    for m in specs:
        key = (m["activation"], m["init"], m["seed"])
        if key not in cache:
            cache[key] = build_nets(cfg, m["activation"], m["seed"], m["init"])
        nets.append(cache[key][m["bn"]])
    return StackedMLP.from_models(nets).to(device)

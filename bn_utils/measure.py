"""Measurements of a network during training, kept apart from the training loop.

Each function reads a model in eval mode under ``torch.inference_mode`` and restores its mode, so a
measurement taken from a hook of ``train.fit`` never changes the trajectory.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

PERCENTILES = (15, 50, 85)


def module_output(model: nn.Module, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Return the output of ``module`` (a submodule of ``model``) when ``model`` runs on ``x`` in eval mode."""
    captured = []
    handle = module.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(x)
    finally:
        handle.remove()
        model.train(was_training)
    return captured[0]


def preactivation_stats(model: nn.Sequential, index: int, x: torch.Tensor, *, unit: int = 0,
                        q: tuple = PERCENTILES) -> dict:
    """Return statistics of the input to the nonlinearity after module ``index``: the layer's mean
    and std over units and examples, and percentiles ``q`` of one ``unit`` over the examples."""
    out = module_output(model, model[index], x).float()
    per_unit = out[:, unit].cpu().numpy()
    stats = {"mean": out.mean().item(), "std": out.std().item()}
    stats.update({f"p{p}": float(v) for p, v in zip(q, np.percentile(per_unit, q))})
    return stats

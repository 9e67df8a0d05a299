"""Section 5a of chapter 02 (teaching code: the layer is wrong on purpose): a Keras momentum
pasted into PyTorch, and its measured symptoms against exact population statistics."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ... import data, runtime
from ...training import train
from ...nn import models
from .config import ForwardConfig, bn_mlp, one_thread

# The PyTorch default, a Keras momentum pasted into PyTorch, and the opposite slip.
BUG_MOMENTA = {"0.1 (PyTorch default)": 0.1, "0.99 (Keras 0.99 pasted)": 0.99,
               "0.001 (too small)": 0.001}


@one_thread
def last_batch_gap(momentum: float, batches: int = 500, batch_size: int = 16,
                   seed: int = 0) -> dict:
    """Return, for torch's BatchNorm1d with ``momentum`` after ``batches`` batches of N(0, 1) data
    (8 features), max |running mean − the last batch's mean| and max |running mean − 0|, the
    population mean."""
    gen = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm1d(8, momentum=momentum).train()
    with torch.no_grad():
        for _ in range(batches):
            x = torch.randn(batch_size, 8, generator=gen)
            bn(x)
    return {"|running − last batch mean|": (bn.running_mean - x.mean(0)).abs().max().item(),
            "|running − population mean|": bn.running_mean.abs().max().item()}


def precise_bn(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Return a copy of ``model`` in eval mode whose BN layers hold the population statistics of
    their inputs over ``x`` (each layer's inputs computed with the layers below normalised by
    their own population statistics): what the running statistics try to estimate."""
    exact = copy.deepcopy(model)
    for bn in models.bn_layers(exact):
        bn.reset_running_stats()
        bn.momentum = None  # the cumulative average of one batch: that batch's statistics
    exact.train()
    with torch.no_grad():
        exact(x)  # one batch of all of x: train-mode BN normalises with population statistics
    return exact.eval()


def running_stat_errors(model: nn.Module, exact: nn.Module) -> dict:
    """Return how far ``model``'s running statistics are from ``exact``'s (from ``precise_bn``):
    the mean |Δmean| in population standard deviations and the mean |log(var / true var)|."""
    mean_err, var_err = [], []
    for bn, ref in zip(models.bn_layers(model), models.bn_layers(exact)):
        std = ref.running_var.sqrt()
        mean_err.append(((bn.running_mean - ref.running_mean).abs() / std).mean().item())
        var_err.append((bn.running_var / ref.running_var).log().abs().mean().item())
    return {"mean_error": float(np.mean(mean_err)), "var_error": float(np.mean(var_err))}


@one_thread
def momentum_bug_runs(cfg: ForwardConfig) -> dict:
    """Train the BN MLP once per momentum of ``BUG_MOMENTA`` (same seed, same batches) and return,
    every ``eval_every`` steps, the running statistics' error against the population statistics of
    the full training subset, the test accuracy, and that of the same weights with exact
    statistics."""
    device = runtime.default_device()
    x_tr, y_tr, x_te, y_te = data.mnist(cfg, device, seed=cfg.seed)
    out, final_weights = {}, []
    for label, momentum in BUG_MOMENTA.items():
        model = bn_mlp(cfg, norm=lambda w, m=momentum: nn.BatchNorm1d(w, momentum=m),
                        device=device)

        def eval_fn(m: nn.Module) -> dict:
            exact = precise_bn(m, x_tr)
            return {**running_stat_errors(m, exact),
                    "test_accuracy": train.accuracy(m, x_te, y_te),
                    "exact_accuracy": train.accuracy(exact, x_te, y_te)}

        hist = train.fit(model, data.batches(x_tr, y_tr, cfg.bug_batch_size, seed=cfg.seed),
                         steps=cfg.steps, optimizer=torch.optim.SGD(model.parameters(), lr=cfg.lr),
                         eval_fn=eval_fn, eval_every=cfg.eval_every,
                         progress=f"momentum {momentum}")
        out[label] = hist.to_dict()
        final_weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    # Momentum only touches the running statistics, which training never reads.
    out["max_weight_difference"] = max((w - final_weights[0]).abs().max().item()
                                       for w in final_weights)
    return out

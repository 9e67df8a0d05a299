"""Chapter 04's learning-rate search: the networks without BN at every rate of a grid, scored on
held-out training images; the chosen rate per activation and initialisation."""

from __future__ import annotations

import numpy as np
import torch

from ... import data, runtime
from ...nn.stacked_mlp import StackedMLP
from ...book import results
from ...training import train
from .config import MnistConfig, init_label
from .nets import stack_of
from .training import eval_schedule, train_stack


def lr_search(cfg: MnistConfig) -> dict:
    """Train the nets without BN, for every activation (main initialisation) and for the sigmoid
    net with each of ``compare_inits``, at every learning rate of ``lr_grid`` and search seed, on
    the training images less ``val_size`` held-out ones; return their validation accuracy over
    training and the chosen learning rates (``chosen_lr[init][activation]``: best final mean)."""
    x, y, _, _ = data.mnist(cfg, runtime.default_device())
    device = x.device
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(2015)).to(device)
    val, fit_idx = perm[: cfg.val_size], perm[cfg.val_size:]
    x_val, y_val = x[val], y[val]
    main = init_label(cfg.init, cfg.init_std)
    setups = [(a, main) for a in cfg.activations] + \
             [("sigmoid", i) for i in cfg.compare_inits if i != main]
    specs = [{"activation": a, "init": i, "bn": False, "seed": s, "lr": lr}
             for a, i in setups for lr in cfg.lr_grid for s in cfg.search_seeds]

    def eval_fn(st: StackedMLP) -> dict:
        return {"val_accuracy": train.correct(st(x_val), y_val).float().mean(1)}

    out = train_stack(stack_of(cfg, specs, device), x[fit_idx], y[fit_idx],
                      [m["seed"] for m in specs], steps=cfg.search_steps,
                      batch_size=cfg.batch_size, lr=[m["lr"] for m in specs], eval_fn=eval_fn,
                      eval_steps=eval_schedule(cfg.search_steps, max(1, cfg.search_steps // 10)),
                      progress="LR search")
    out["models"] = specs
    out["chosen_lr"] = choose_lr(out)
    return out


def choose_lr(search: dict | results.Record) -> dict:
    """Return ``{init: {activation: lr}}``: per setup, the learning rate with the best final
    validation accuracy (mean over the search seeds; a diverged run counts as accuracy 0; ties
    go to the smaller rate)."""
    final = np.nan_to_num(np.asarray(search["val_accuracy"])[-1], nan=0.0)
    scores: dict = {}
    for m, acc in zip(search["models"], final):
        by_lr = scores.setdefault(m["init"], {}).setdefault(m["activation"], {})
        by_lr.setdefault(m["lr"], []).append(acc)
    return {i: {a: max(by_lr, key=lambda lr: (np.mean(by_lr[lr]), -lr))
                for a, by_lr in per_act.items()} for i, per_act in scores.items()}

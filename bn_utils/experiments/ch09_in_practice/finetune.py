"""Chapter 09, experiment 9: fine-tuning a BN network with batches of 2-4.

The BN CNN is pre-trained on the digits 0-4 (batch 64); then, from the same pre-trained weights,
it is fine-tuned on a few images of the digits 5-9 with tiny batches, once with BN in training
mode (batch statistics, running statistics updated) and once with BN frozen (evaluation mode:
the pre-trained running statistics, fixed; gamma and beta still learn). We report the test
accuracy on the digits 5-9 in evaluation mode.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from ...book import results
from ... import runtime
from ...training import train
from .config import CHAPTER, PracticeConfig
from .nets import FrozenNorms, cnn
from .training import fit, mnist, seeded, test_eval

MODES = ("train", "frozen")


def finetune(cfg: PracticeConfig) -> dict:
    """Return accuracy curves (seed, eval) per (batch size, BN mode), and the pre-trained accuracy."""
    x_tr, y_tr, x_te, y_te = mnist(cfg, flatten=False)
    old_tr, new_tr, new_te = y_tr < 5, torch.nonzero(y_tr >= 5).flatten(), y_te >= 5
    new_tr = new_tr[: cfg.ft_n_train]
    xn, yn, xt, yt = x_tr[new_tr], y_tr[new_tr], x_te[new_te], y_te[new_te]
    every = max(1, cfg.ft_steps // 10)
    out = {"pretrained_new_accuracy": [], "pretrained_old_accuracy": []}
    for seed in cfg.seeds:
        base = seeded(seed, lambda: cnn("bn", cfg.cnn_width))
        fit(base, x_tr[old_tr], y_tr[old_tr], steps=cfg.ft_pretrain_steps, batch_size=64,
              lr=cfg.sweep_lr, seed=seed)
        out["pretrained_new_accuracy"].append(train.accuracy(base, xt, yt))
        out["pretrained_old_accuracy"].append(train.accuracy(base, x_te[~new_te], y_te[~new_te]))
        for b in cfg.ft_batch_sizes:
            for mode in MODES:
                model = copy.deepcopy(base)
                net = FrozenNorms(model) if mode == "frozen" else model
                h = fit(net, xn, yn, steps=cfg.ft_steps, batch_size=b, lr=cfg.ft_lr, seed=seed,
                          eval_fn=test_eval(xt, yt), eval_every=every)
                acc = h.evals["test_accuracy"]
                n = len(sorted({*range(0, cfg.ft_steps, every), cfg.ft_steps}))
                out.setdefault(f"{b}/{mode}/acc", []).append(acc + [np.nan] * (n - len(acc)))
                out[f"{b}/{mode}/steps"] = np.asarray(sorted({*range(0, cfg.ft_steps, every), cfg.ft_steps}))
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def run(cfg: PracticeConfig) -> results.Record:
    """Return the fine-tuning record (stored, or trained now)."""
    with runtime.cpu_threads(cfg.cpu_threads):
        return results.load_or_run(CHAPTER, "finetune", cfg, finetune, prefer_stored=True)


def table(record: results.Record, cfg: PracticeConfig) -> list[dict]:
    """Return the final accuracy on the new digits per batch size and BN mode."""
    rows = [{"batch": "before fine-tuning", "BN in training mode": float(np.mean(record["pretrained_new_accuracy"])),
             "BN frozen": float(np.mean(record["pretrained_new_accuracy"]))}]
    for b in cfg.ft_batch_sizes:
        rows.append({"batch": b, **{f"BN {'in training mode' if m == 'train' else 'frozen'}":
                                    float(np.nanmean(record[f"{b}/{m}/acc"][:, -1])) for m in MODES}})
    return rows

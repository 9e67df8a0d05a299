"""Chapter 09, experiment 9: fine-tuning a BN network with batches of 2-4.

The BN CNN is pre-trained on the digits 0-4 (batch 64); then, from the same pre-trained weights,
it is fine-tuned on a few images of the digits 5-9 (``PracticeConfig.FT_NEW_DIGITS``) with tiny
batches, once with BN in training mode (batch statistics, running statistics updated) and once
with BN frozen (evaluation mode: the pre-trained running statistics, fixed; gamma and beta still
learn). We report the test accuracy on the digits 5-9 in evaluation mode; guessing among them
scores :func:`chance`.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from ...book import claims, results
from ...book.page import in_words
from ... import data
from ...training import train
from .config import PracticeConfig
from .nets import FrozenNorms, cnn
from .training import fit, seeded, test_eval

MODES = ("train", "frozen")


def finetune(cfg: PracticeConfig) -> dict:
    """Return accuracy curves (seed, eval) per (batch size, BN mode), and the pre-trained accuracy."""
    x_tr, y_tr, x_te, y_te = data.mnist(cfg, flatten=False)
    new = torch.tensor(cfg.FT_NEW_DIGITS)
    is_new_tr, new_te = torch.isin(y_tr, new), torch.isin(y_te, new)
    old_tr, new_tr = ~is_new_tr, torch.nonzero(is_new_tr).flatten()
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


def table(record: results.Record, cfg: PracticeConfig) -> list[dict]:
    """Return the final accuracy on the new digits per batch size and BN mode."""
    rows = [{"batch": "before fine-tuning", "BN in training mode": float(np.mean(record["pretrained_new_accuracy"])),
             "BN frozen": float(np.mean(record["pretrained_new_accuracy"]))}]
    for b in cfg.ft_batch_sizes:
        rows.append({"batch": b, **{f"BN {'in training mode' if m == 'train' else 'frozen'}":
                                    float(np.nanmean(record[f"{b}/{m}/acc"][:, -1])) for m in MODES}})
    return rows


def chance(cfg: PracticeConfig) -> float:
    """Return the accuracy of guessing on the new digits: one over their number."""
    return 1 / len(cfg.FT_NEW_DIGITS)


def n_test_new(cfg: PracticeConfig) -> int:
    """Return about how many of the test images are of the new digits (class-stratified subset)."""
    return cfg.n_test * len(cfg.FT_NEW_DIGITS) // data.N_CLASSES


def frozen_vs_train(record: results.Record, cfg: PracticeConfig) -> dict:
    """Return per fine-tuning batch size: the seeds (``cfg.seeds``), those whose frozen-BN network
    stayed at chance (accuracy at most :func:`chance` + ``claims.LEARNED`` at every evaluation,
    diverged = 0), and how many seeds ended lower frozen than in training mode."""
    out = {}
    for b in cfg.ft_batch_sizes:
        acc = {m: np.nan_to_num(record[f"{b}/{m}/acc"], nan=0.0) for m in MODES}
        stuck = acc["frozen"].max(axis=1) <= chance(cfg) + claims.LEARNED
        out[b] = {"seeds": list(cfg.seeds), "at_chance": [s for s, k in zip(cfg.seeds, stuck) if k],
                  "frozen_below": int(np.sum(acc["frozen"][:, -1] < acc["train"][:, -1]))}
    return out


def at_chance_words(record: results.Record, cfg: PracticeConfig) -> str:
    """Return in words which seeds' frozen-BN networks stayed at chance (:func:`frozen_vs_train`)
    and where the others ended at the smallest batch: "in seed 0 frozen BN never rose above chance at
    every fine-tuning batch size (...), while at batch 2 the other seeds' frozen networks ended
    at 0.789 and 0.784"."""
    fv, b = frozen_vs_train(record, cfg), cfg.ft_batch_sizes[0]
    stuck = {size: v["at_chance"] for size, v in fv.items()}
    if not any(stuck.values()):
        return "frozen BN rose above chance in every seed"
    seeds = lambda s: f"seed{'s' * (len(s) > 1)} {', '.join(str(x) for x in s)}"  # noqa: E731
    if len({tuple(s) for s in stuck.values()}) == 1:
        where = f"in {seeds(stuck[b])} frozen BN never rose above chance at any fine-tuning batch size"
    else:
        where = "; ".join(f"at batch {size} frozen BN never rose above chance in {seeds(s)}" for size, s in stuck.items() if s)
    where += f" (accuracy never more than {claims.LEARNED:g} above it)"
    others = [f"{a:.3f}" for s, a in zip(cfg.seeds, np.nan_to_num(record[f"{b}/frozen/acc"][:, -1], nan=0.0))
              if s not in stuck[b]]
    if others:
        where += f", while at batch {b} the other seeds' frozen networks ended at {in_words(others)}"
    return where

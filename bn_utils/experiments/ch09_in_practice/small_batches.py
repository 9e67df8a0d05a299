"""Chapter 09, experiments 1-2: BN's two modes at small batches, and the alternatives to BN.

One sweep: the small CNN with each normalisation (BN, Batch Renorm, LayerNorm, GroupNorm,
RMSNorm, none) trains at each batch size for the same number of steps. For every run we keep
the test accuracy in evaluation mode (running statistics) and, for the batch-dependent layers,
in training mode (statistics of test batches of the training batch size).
"""

from __future__ import annotations

import numpy as np

from ...book import results
from ... import data
from .config import PracticeConfig
from .nets import cnn
from .training import final_accuracy, fit, seeded, test_eval, train_mode_accuracy

BATCH_DEPENDENT = ("bn", "brn")
LABELS = {"none": "no norm", "bn": "BatchNorm", "brn": "Batch Renorm", "ln": "LayerNorm",
          "gn": "GroupNorm", "rms": "RMSNorm"}


def sweep(cfg: PracticeConfig) -> dict:
    """Return ``{"eval_acc", "train_acc"}``: arrays (norm, batch size, seed) of test accuracies."""
    x_tr, y_tr, x_te, y_te = data.mnist(cfg, flatten=False)
    shape = (len(cfg.norms), len(cfg.batch_sizes), len(cfg.seeds))
    eval_acc, train_acc = np.full(shape, np.nan), np.full(shape, np.nan)
    renorm = cfg.renorm_kwargs(cfg.sweep_steps)
    for i, norm in enumerate(cfg.norms):
        for j, b in enumerate(cfg.batch_sizes):
            for k, seed in enumerate(cfg.seeds):
                model = seeded(seed, lambda: cnn(norm, cfg.cnn_width, groups=cfg.gn_groups,
                                                     renorm=renorm if norm == "brn" else None))
                hist = fit(model, x_tr, y_tr, steps=cfg.sweep_steps, batch_size=b, lr=cfg.sweep_lr,
                             seed=seed, eval_fn=test_eval(x_te, y_te))
                eval_acc[i, j, k] = final_accuracy(hist)
                if norm in BATCH_DEPENDENT and not hist.diverged:
                    train_acc[i, j, k] = train_mode_accuracy(model, x_te, y_te, b)
    return {"eval_acc": eval_acc, "train_acc": train_acc}


def breaking_batch(batch_sizes, accuracies, baseline) -> int | None:
    """Return the largest batch size at which a normalisation does worse than ``baseline`` (no
    normalisation, same batch size; a diverged run counts as worse), or None if it never does."""
    acc = np.nan_to_num(np.asarray(accuracies, float), nan=0.0)
    base = np.nan_to_num(np.asarray(baseline, float), nan=0.0)
    broken = [b for b, a, c in zip(batch_sizes, acc, base) if a < c]
    return max(broken) if broken else None


def summary(record: results.Record, cfg: PracticeConfig) -> dict:
    """Return per norm: the mean eval-mode accuracy per batch size, the train-mode one, and the
    batch size at which it breaks (does worse than no normalisation; None: never)."""
    ev, tr = np.nanmean(record["eval_acc"], 2), record["train_acc"]
    base = ev[cfg.norms.index("none")] if "none" in cfg.norms else np.zeros(len(cfg.batch_sizes))
    out = {}
    for i, norm in enumerate(cfg.norms):
        trm = np.nanmean(tr[i], 1) if not np.all(np.isnan(tr[i])) else np.full(len(cfg.batch_sizes), np.nan)
        out[norm] = {"eval": ev[i], "train": trm,
                     "breaks_at": None if norm == "none" else breaking_batch(cfg.batch_sizes, ev[i], base)}
    return out


def table(record: results.Record, cfg: PracticeConfig) -> list[dict]:
    """Return one row per normalisation: eval-mode accuracy per batch size and where it breaks."""
    rows = []
    for norm, s in summary(record, cfg).items():
        row = {"normalisation": LABELS[norm]}
        row.update({f"batch {b}": float(a) for b, a in zip(cfg.batch_sizes, s["eval"])})
        row["worse than no norm at batch ≤"] = s["breaks_at"] if s["breaks_at"] is not None else "never"
        rows.append(row)
    return rows


def mode_gap(record: results.Record, cfg: PracticeConfig) -> dict:
    """Return BN's train-mode minus eval-mode accuracy at the smallest and largest batch size."""
    s = summary(record, cfg)["bn"]
    gap = s["train"] - s["eval"]
    return {"small": float(gap[0]), "large": float(gap[-1]),
            "small_batch": cfg.batch_sizes[0], "large_batch": cfg.batch_sizes[-1]}

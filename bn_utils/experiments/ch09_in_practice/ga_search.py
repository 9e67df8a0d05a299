"""Chapter 09, experiment 6: a genetic search of learning rate and L2, with and without BN.

It sits beside a student project's search (``STUDENT_SEARCH``: an MLP with 4 hidden layers of 1000
on the Higgs data set, 10 generations of 10 new models, bounds reset from the best 3). Ours is
another genetic search (``bn_utils.training.search.genetic_search``: survivors and their mutated copies) on
MNIST, the fitness being the accuracy on a held-out part of the training subset after a fixed
number of SGD steps.
"""

from __future__ import annotations

import math

import numpy as np

from ...book import results
from ...nn import models
from ... import data
from ...training import train
from ...training.search import genetic_search
from .config import PracticeConfig, STUDENT_MLP
from .training import fit, seeded

# The student project's results (../shared/sources/003_…, Table 3.2.1: Higgs, the STUDENT_MLP).
STUDENT = {"best_lr": {"bn": 2.57, "none": 0.62}, "best_l2": {"bn": 1.26e-8, "none": 3.98e-8},
           "test_accuracy": {"bn": 0.7127, "none": 0.6872}}
# Its search (section 3.1 and Algorithm 3.2.0): every generation trains ``models`` new networks
# for ``epochs`` epochs each, at log10 LR and log10 L2 drawn at random (``Rand``) between bounds,
# [log10_low, log10_high] for both at first; the ``top`` by validation accuracy reset the bounds
# to mean ± ``std_factor`` · std of their log10 values (what it calls Gaussian mutation); the
# answer is 10^(midpoint of the last bounds), trained once more for ``epochs`` epochs and tested.
STUDENT_SEARCH = {"generations": 10, "models": 10, "epochs": 10, "top": 3, "std_factor": 1.5,
                  "log10_low": -10.0, "log10_high": 0.0}


def student_numbers() -> dict:
    """Return the student project's network, search and results as one flat dict (the chapter's
    glue names without the ``student_`` prefix)."""
    out = {**STUDENT_MLP, **STUDENT_SEARCH}
    for what, per_net in STUDENT.items():
        out.update({f"{what}_{net}": v for net, v in per_net.items()})
    return out


def search(cfg: PracticeConfig) -> dict:
    """Return per network (``bn``, ``none``): the GA's points (generation, member, [ln LR, ln L2]),
    validation scores, test accuracies, and the best point with its scores."""
    x_tr, y_tr, x_te, y_te = data.mnist(cfg, flatten=True)
    n_val = max(len(x_tr) // 6, 10)
    x_fit, y_fit, x_val, y_val = x_tr[n_val:], y_tr[n_val:], x_tr[:n_val], y_tr[:n_val]
    widths = [784] + [cfg.ga_width] * 4 + [10]
    bounds = [tuple(math.log(10.0) * v for v in cfg.ga_log10_lr),
              tuple(math.log(10.0) * v for v in cfg.ga_log10_l2)]
    out = {}
    for net in ("bn", "none"):
        tests: dict = {}

        def fitness(point, net=net, tests=tests):
            lr, l2 = math.exp(point[0]), math.exp(point[1])
            model = seeded(cfg.seeds[0], lambda: models.mlp(widths, activation_name="relu", norm=net))
            h = fit(model, x_fit, y_fit, steps=cfg.ga_steps, batch_size=cfg.ga_batch, lr=lr,
                      seed=cfg.seeds[0], momentum=0.0, weight_decay=l2)
            if h.diverged:
                tests[tuple(point)] = math.nan
                return math.nan
            tests[tuple(point)] = train.accuracy(model, x_te, y_te)
            return train.accuracy(model, x_val, y_val)

        res = genetic_search(fitness, bounds, population=cfg.ga_population, generations=cfg.ga_generations,
                             keep=cfg.ga_keep, mutation_std=cfg.ga_mutation_std, seed=cfg.seeds[0])
        out[f"{net}/points"], out[f"{net}/scores"] = res["points"], res["scores"]
        out[f"{net}/test"] = np.asarray([[tests[tuple(p)] for p in gen] for gen in res["points"]])
        out[f"{net}/best_lr"] = math.exp(res["best_point"][0])
        out[f"{net}/best_l2"] = math.exp(res["best_point"][1])
        out[f"{net}/best_val_accuracy"] = res["best_score"]
        out[f"{net}/best_test_accuracy"] = tests[tuple(res["best_point"])]
    return out


def spans(record: results.Record) -> dict:
    """Return per network (``bn``, ``none``) how widely each generation spreads: the width of the
    middle half of its members (interquartile range) in log10 learning rate and log10 L2, an
    array (generation, 2), in decades; unlike the full range, one stray member barely moves it."""
    def iqr(pts):
        q1, q3 = np.percentile(np.asarray(pts) / math.log(10.0), [25, 75], axis=1)
        return q3 - q1
    return {net: iqr(record[f"{net}/points"]) for net in ("bn", "none")}


def table(record: results.Record, cfg: PracticeConfig) -> list[dict]:
    """Return the student's and our best LR, L2 and test accuracy, with and without BN."""
    rows = []
    for net in ("bn", "none"):
        rows.append({"network": "BN" if net == "bn" else "no BN",
                     "student best LR (Higgs)": STUDENT["best_lr"][net],
                     "our best LR (MNIST)": float(record[f"{net}/best_lr"]),
                     "student best L2": STUDENT["best_l2"][net],
                     "our best L2": float(record[f"{net}/best_l2"]),
                     "student test acc.": STUDENT["test_accuracy"][net],
                     "our test acc.": float(record[f"{net}/best_test_accuracy"])})
    return rows

"""Chapter 04's claims in ``claims.row``'s shape: the paper's Figure 1 (accuracy, the sigmoid
inputs' drift) and the student reproduction's (speed, batch size 1), decided over the seeds."""

from __future__ import annotations

import numpy as np

from ...book import claims, results
from .analysis import accuracy_at, distribution_drift, select, summary

SOURCE = "Ioffe & Szegedy 2015"
STUDENT = "student reproduction"


def _per_seed(record: results.Record, bn: bool, values) -> list[float]:
    return [float(v) for v in np.asarray(values)[select(record, "sigmoid", bn)]]


def _row(text: str, source: str, theirs: str, record, measure) -> dict:
    if record is None:
        return claims.missing(text, source, theirs)
    ours, d, spread = measure(record)
    return claims.row(text, source, theirs, ours, d, spread)


def _accuracy(r: results.Record) -> tuple:
    s = summary(r)
    bn, plain = s["sigmoid", True], s["sigmoid", False]
    d = claims.greater(bn["final"], plain["final"])
    return (f"{bn['final_mean']:.4f} with BN, {plain['final_mean']:.4f} without", d,
            d.spread("points", 100, digits=2))


def _faster(r: results.Record) -> tuple:
    at = accuracy_at(r, 2500)
    bn, plain = _per_seed(r, True, at), _per_seed(r, False, at)
    d = claims.greater(bn, plain)
    return (f"accuracy at step 2,500: {np.mean(bn):.4f} with BN, {np.mean(plain):.4f} without", d,
            d.spread("points", 100))


def _drift(r: results.Record) -> tuple:
    d = distribution_drift(r)
    seeds = {bn: d[bn]["median_range"].reshape(len(select(r, "sigmoid", bn)), -1).mean(1)
             for bn in (True, False)}
    d = claims.greater(seeds[False], seeds[True])
    return (f"median of a sigmoid input moves {seeds[True].mean():.2f} with BN, "
            f"{seeds[False].mean():.2f} without", d, d.spread(digits=2))


def _batch_one(r: results.Record) -> tuple:
    """Decided by an exact check, not over seeds: with one example per batch every BN output is
    its β whatever the input, so no gradient reaches the layers below; the hidden weights of any
    seed stay bit for bit where they started."""
    hidden = r["weight_change"][:-1]           # the output layer (last) does learn
    frozen = all(change == 0.0 for change in hidden)
    acc = r["evals"]["test_accuracy"][-1]
    moved = "are bit for bit their initial values" if frozen else f"moved by up to {max(hidden):.3g}"
    ours = f"after {r['steps_done']:,} steps at batch 1 the hidden weights {moved}; test accuracy {acc:.3f}"
    return ours, claims.YES if frozen else claims.NO, "exact (no seed noise: every BN output is β)"


def run_claims(runs: results.Record | None) -> list[dict]:
    """The claims the main runs (``runs``) decide: accuracy, speed and drift, sigmoid networks."""
    return [_row("BN network reaches a higher test accuracy (MNIST, 3×100 sigmoid)", SOURCE, "Fig. 1(a)",
                 runs, _accuracy),
            _row("BN network trains faster", STUDENT, "high accuracy by ~2,500 steps", runs, _faster),
            _row("sigmoid inputs drift less with BN than without", SOURCE, "Fig. 1(b, c)", runs, _drift)]


def batch_one_claim(bs1: results.Record | None) -> dict:
    """The student's: at batch size 1, BN's hidden layers cannot learn (one network, trained at
    batch 1 in the reproduction), decided by whether its hidden weights moved at all."""
    return _row("at batch size 1 BN's hidden layers cannot learn", STUDENT, "— (the student trained at batch 1)",
                bs1, _batch_one)

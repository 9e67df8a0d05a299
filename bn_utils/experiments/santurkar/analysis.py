"""Reading chapters 7 and 8's records: runs by name and seed, their curves over seeds, whether a
network learned, and the numbers as the pages write them."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ... import data
from ...book import claims, results
from ...book.page import how_many, pm, seed_std, sig

# A network whose measurements over training are compared learned when, half-way through its
# training (the median measurement), its accuracy as trained was above twice chance (VGG) or
# its loss at most half its initial loss (DLN): a network still at its flat start there gives
# medians of a network that has not started to learn (chapter 7's standard VGG at LR 0.01 and
# chapter 8's at LR 0.5).
LEARNED_ACCURACY = 2 * data.CHANCE
LEARNED_LOSS = 0.5


def unpack(record: results.Record) -> dict[str, dict]:
    """Return a chapter record as ``{run name: {key: value}}``."""
    out: dict[str, dict] = {}
    for key, value in {**record.metrics, **record.arrays}.items():
        if "/" in key:
            name, field = key.split("/", 1)
            out.setdefault(name, {})[field] = value
    return out


def seeds_of(runs: dict, group: str) -> list[dict]:
    """Return the runs (one per seed) whose name starts with ``group`` + ``_s``."""
    return [r for name, r in sorted(runs.items()) if name.rsplit("_s", 1)[0] == group]


def seeds_per_network(record: results.Record) -> list[int]:
    """Return the distinct numbers of seeds the record's networks have (extra seeds included
    once merged), smallest first: ``[1, 3]`` when some networks have one seed and others three."""
    runs = unpack(record)
    return sorted({len(seeds_of(runs, g)) for g in {name.rsplit("_s", 1)[0] for name in runs}})


def seeds_text(record: results.Record) -> str:
    """Return the record's seeds as a figure note says them: "3 seeds per network"."""
    return f"{how_many(seeds_per_network(record), 'seed')} per network"


def seeds_shown(runs: dict, groups_by_lr: dict) -> str:
    """Return how many seeds the run groups a figure draws have, as its note says it: "3 seeds
    per network", or per learning rate where they differ ("3 seeds per network at learning rate
    0.1, 1 seed per network at learning rate 0.01"). ``groups_by_lr``: ``{lr: [group, ...]}``."""
    counts = {lr: sorted({len(seeds_of(runs, g)) for g in groups if seeds_of(runs, g)})
              for lr, groups in groups_by_lr.items()}
    counts = {lr: n for lr, n in counts.items() if n}
    if not counts:
        return "no runs"
    if len({tuple(n) for n in counts.values()}) == 1:
        return f"{how_many(next(iter(counts.values())), 'seed')} per network"
    return ", ".join(f"{how_many(n, 'seed')} per network at learning rate {lr:g}" for lr, n in counts.items())


def stacked(members: list[dict], key: str, x_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(x, seeds × points)`` of ``key`` over the seeds, NaN-padded where a run stopped
    early (diverged)."""
    series = [np.asarray(m[key], float) for m in members if key in m]
    if not series:
        return np.array([]), np.zeros((0, 0))
    longest = max(range(len(series)), key=lambda i: len(series[i]))
    x = np.asarray([m for m in members if key in m][longest][x_key], float)[: len(series[longest])]
    ys = np.full((len(series), len(x)), np.nan)
    for i, s in enumerate(series):
        ys[i, : len(s)] = s[: len(x)]
    return x, ys


def last_finite(m: dict, key: str) -> float:
    """Return the last finite value of ``key`` in one run (NaN if none)."""
    v = np.asarray(m.get(key, []), float)
    v = v[np.isfinite(v)]
    return float(v[-1]) if v.size else float("nan")


def halfway(m: dict, key: str, x_key: str) -> float:
    """Return ``key`` of one run at its finite measurement nearest the middle of its steps."""
    x, v = np.asarray(m.get(x_key, []), float), np.asarray(m.get(key, []), float)
    n = min(len(x), len(v))
    ok = np.flatnonzero(np.isfinite(v[:n]))
    if not ok.size:
        return float("nan")
    mid = (x[0] + x[n - 1]) / 2
    return float(v[ok[np.argmin(np.abs(x[ok] - mid))]])


def learned(members: list[dict], arch: str) -> bool:
    """Return whether the runs of one network (its seeds) learned, as a claim comparing its
    measurements over training needs: none diverged, and half-way through training the seeds'
    mean accuracy as trained was above ``LEARNED_ACCURACY`` (VGG) or their mean loss at most
    ``LEARNED_LOSS`` of the initial loss (DLN)."""
    if not members or any(bool(m.get("diverged")) for m in members):
        return False
    if arch == "vgg":
        acc = [halfway(m, "train_batch_accuracy", "eval_step") for m in members]
        return claims.learned(acc, data.CHANCE, LEARNED_ACCURACY - data.CHANCE)
    share = [halfway(m, "loss", "loss_step") / float(np.asarray(m["loss"], float)[0]) for m in members]
    return bool(np.mean(share) <= LEARNED_LOSS)


def learned_rule() -> str:
    """Return :func:`learned`'s rule as both pages write it (one text, so chapters 7 and 8 say
    "not comparable" in the same words): "none of its seeds diverged and, at the measurement
    nearest the middle of its training, ..."."""
    return (f"none of its seeds diverged and, at the measurement nearest the middle of its training, "
            f"its seeds' mean training accuracy as trained was above {100 * LEARNED_ACCURACY:.0f} % "
            f"(twice chance; VGG) or their mean loss was at most {100 * LEARNED_LOSS:.0f} % of the "
            "initial loss (DLN)")


def per_seed(runs: dict, group: str, fn: Callable[[dict], float]) -> dict[int, float]:
    """Return ``{seed: fn(run)}`` over the runs of a group."""
    return {int(name.rsplit("_s", 1)[1]): float(fn(m)) for name, m in sorted(runs.items())
            if name.rsplit("_s", 1)[0] == group}


def fixed_sig(value: float, digits: int = 3, sign: bool = False) -> str:
    """Return ``value`` with ``digits`` significant digits, trailing zeros kept (``book.sig`` with
    ``zeros``: ``1.00``, ``0.170``, ``2.00e+06``), as a column of measurements is written."""
    return sig(value, digits, sign, zeros=True)


def spread(d: claims.Decision, unit: str = "", seeds: bool = True) -> str:
    """Return a decision's difference as text with three significant digits (the quantities of
    chapters 7 and 8 span many orders of magnitude; :func:`fixed_sig`), its standard error with
    two: ``"+0.123 ± 0.045, 3 seeds"`` (without the seeds when ``seeds`` is false)."""
    if not np.isfinite(d.mean):
        return "—"
    se = f" ± {fixed_sig(d.se, 2)}" if np.isfinite(d.se) else ""
    n = f", {d.n} seed{'' if d.n == 1 else 's'}" if seeds else ""
    return f"{fixed_sig(d.mean, sign=True)}{se}{' ' + unit if unit else ''}{n}"


def final(runs: dict, group: str, key: str) -> tuple[float, float]:
    """Return mean and std over seeds (:func:`~bn_utils.book.seed_std`) of the last finite value of ``key`` in a run group."""
    values = [last_finite(m, key) for m in seeds_of(runs, group)]
    return (float(np.mean(values)), seed_std(values)) if values else (np.nan, np.nan)


def fmt_pm(mean: float, std: float, n: int, digits: int = 3, significant: bool = False) -> str:
    """Return ``mean ± std`` (or just the mean for one seed) as text: ``digits`` decimals, or
    with ``significant`` that many significant digits (:func:`fixed_sig`: a loss in the thousands
    ``8,900 ± 2,100``, a small change ``0.00183 ± 0.000120``)."""
    if not np.isfinite(mean):
        return "diverged"
    return pm(mean, std, n, (lambda x: fixed_sig(x, digits)) if significant else f"{{:.{digits}f}}")

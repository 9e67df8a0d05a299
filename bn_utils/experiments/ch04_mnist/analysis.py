"""What chapter 04's runs show, as numbers: per model selections, steps to a test accuracy,
summaries over seeds, how far the sigmoid inputs drift, and the tables of the chapter."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ... import book, data
from ...book import claims, results
from .config import PERCENTILES, MnistConfig, init_label

LABELS = {False: "without BN", True: "with BN"}


def select(record: results.Record | dict, activation: str, bn: bool,
           init: str | None = None) -> list[int]:
    """Return the indices of the models of ``record`` with ``activation``, BN flag ``bn`` and
    (if given) initialisation label ``init``."""
    return [i for i, m in enumerate(record["models"])
            if m["activation"] == activation and m["bn"] == bn and init in (None, m["init"])]


def truncate(record: results.Record | dict, steps: int) -> dict:
    """Return the evaluations of ``record`` up to step ``steps`` (and its models, and where they
    diverged within them) as a dict."""
    keep = np.asarray(record["eval_step"]) <= steps
    div = _diverged_at(record)
    return {"models": record["models"], "eval_step": np.asarray(record["eval_step"])[keep],
            "test_accuracy": np.asarray(record["test_accuracy"])[keep],
            "diverged_at": [d if d is not None and d <= steps else None for d in div]}


def _diverged_at(record: results.Record | dict) -> list:
    """Return per model the step at which it diverged, or None (all None for old records)."""
    try:
        return list(record["diverged_at"])
    except KeyError:
        return [None] * len(record["models"])


def steps_to(record: results.Record | dict, threshold: float) -> np.ndarray:
    """Return per model the first evaluated step with test accuracy >= ``threshold`` (NaN: never)."""
    acc = np.nan_to_num(np.asarray(record["test_accuracy"]), nan=0.0)   # (evals, S)
    steps = np.asarray(record["eval_step"], dtype=float)
    reached = acc >= threshold
    return np.where(reached.any(0), steps[reached.argmax(0)], np.nan)


def accuracy_at(record: results.Record | dict, step: int) -> np.ndarray:
    """Return per model the test accuracy at the last evaluation at or before ``step``."""
    steps = np.asarray(record["eval_step"])
    return np.asarray(record["test_accuracy"])[np.flatnonzero(steps <= step)[-1]]


def summary(record: results.Record | dict, thresholds: Sequence[float] = (0.95, 0.97, 0.98),
            at_step: int = 2500, init: str | None = None) -> dict:
    """Return per (activation, bn) the mean and std over seeds of the final test accuracy, the
    accuracy at ``at_step``, and per threshold the steps to reach it and how many seeds did
    (only the models with initialisation ``init``, if given); ``final_text`` and
    ``at_step_text`` say the same for prose, or where the seeds diverged."""
    out = {}
    models = [m for m in record["models"] if init in (None, m["init"])]
    for a in dict.fromkeys(m["activation"] for m in models):
        for bn in (False, True):
            idx = select(record, a, bn, init)
            if not idx:
                continue
            final = np.asarray(record["test_accuracy"])[-1, idx]
            early = accuracy_at(record, at_step)[idx]
            div = [_diverged_at(record)[i] for i in idx]
            row = {"final_mean": float(np.mean(final)), "final_std": float(np.std(final)),
                   "at_step_mean": float(np.mean(early)), "n_seeds": len(idx),
                   "lr": record["models"][idx[0]]["lr"], "final": final.tolist(),
                   "diverged_at": div, "final_text": book.mean_std(final, diverged_at=div),
                   "at_step_text": book.mean_std(early, diverged_at=div, spread=False)}
            for t in thresholds:
                s = steps_to(record, t)[idx]
                row[f"steps_to_{t}"] = s.tolist()
                row[f"steps_to_{t}_mean"] = float(np.nanmean(s)) if np.isfinite(s).any() else None
            out[a, bn] = row
    return out


def activation_table(record: results.Record | dict,
                     thresholds: Sequence[float] = (0.95, 0.97, 0.98)) -> list[dict]:
    """Return table rows: per activation and BN, the learning rate, final test accuracy and the
    steps to each threshold, as mean ± std over seeds (k/n: only k of n seeds got there)."""
    rows = []
    for (a, bn), r in summary(record, thresholds).items():
        row = {"activation": activation_name(a), "BN": "yes" if bn else "no", "lr": f"{r['lr']:g}",
               f"test accuracy at step {int(record['eval_step'][-1]):,}": r["final_text"]}
        for t in thresholds:
            row[f"steps to {t:.0%}"] = book.mean_std(r[f"steps_to_{t}"], "{:,.0f}", r["diverged_at"])
        rows.append(row)
    return rows


def distribution_drift(record: results.Record | dict, activation: str = "sigmoid") -> dict:
    """Return, without and with BN, how far the input distribution of the recorded units of the
    last hidden layer moves over training (after step 0): per unit and seed, the range (max −
    min) of its median, the same over the second half of training, and the range of its 15–85th
    percentile spread; each as an array over units × seeds."""
    steps = np.asarray(record["eval_step"])
    after, late = steps > 0, steps >= steps[-1] / 2
    out = {}
    for bn in (False, True):
        idx = select(record, activation, bn)
        p15, p50, p85 = (np.asarray(record[f"p{p}"])[:, idx] for p in PERCENTILES)
        spread = p85 - p15
        div = [_diverged_at(record)[i] for i in idx]
        out[bn] = {"median_range": np.ptp(p50[after], 0).ravel(),
                   "late_median_range": np.ptp(p50[late], 0).ravel(),
                   "spread_range": np.ptp(spread[after], 0).ravel(),
                   "diverged_at": [d for d in div for _ in range(p50.shape[2])]}
    return out


def drift_ratios(record: results.Record | dict, activation: str = "sigmoid") -> dict:
    """Return, as prose, how far the median and the spread move with BN relative to without
    (``"43%"``, means over the units × seeds that did not diverge; or why there is no ratio)."""
    d = distribution_drift(record, activation)
    out = {}
    for name, key in (("drift_ratio", "median_range"), ("spread_ratio", "spread_range")):
        with_bn, without = (np.asarray(d[bn][key], dtype=float) for bn in (True, False))
        ok_bn, ok_plain = with_bn[np.isfinite(with_bn)], without[np.isfinite(without)]
        if not len(ok_bn) or not len(ok_plain):
            out[name] = "not measurable (the runs diverged)"
        elif ok_plain.mean() == 0:
            out[name] = "not measurable (without BN it does not move)"
        else:
            out[name] = f"{ok_bn.mean() / ok_plain.mean():.0%}"
    return out


def drift_table(record: results.Record | dict, activation: str = "sigmoid") -> list[dict]:
    """Return table rows of ``distribution_drift``: mean ± std over units × seeds."""
    rows = []
    for bn, d in distribution_drift(record, activation).items():
        rows.append({"network": f"{activation}, {LABELS[bn]}",
                     "range of the median": book.mean_std(d["median_range"], "{:.2f}",
                                                      d["diverged_at"]),
                     "… over the second half": book.mean_std(d["late_median_range"], "{:.2f}",
                                                         d["diverged_at"]),
                     "range of the 15–85th spread": book.mean_std(d["spread_range"], "{:.2f}",
                                                              d["diverged_at"]),
                     "units × seeds": len(d["median_range"])})
    return rows


def _init_sources(inits: results.Record | dict, record: results.Record | dict,
                  cfg: MnistConfig) -> list[tuple[str, results.Record | dict]]:
    """Return ``(initialisation, record holding it)`` for the comparison: the paper's one first,
    from ``record`` cut at the comparison's length, then each one ``inits`` trained."""
    sources = [(init_label(cfg.init, cfg.init_std), truncate(record, min(cfg.compare_steps, cfg.steps)))]
    return sources + [(i, inits) for i in dict.fromkeys(m["init"] for m in inits["models"])]


def init_table(inits: results.Record | dict, record: results.Record | dict,
               cfg: MnistConfig) -> list[dict]:
    """Return table rows: the sigmoid net without and with BN for each initialisation (the main
    one from ``record``, cut at the comparison's length), test accuracy at the end of the
    comparison and steps to the lower thresholds, mean ± std over seeds."""
    steps = min(cfg.compare_steps, cfg.steps)
    rows = []
    for init, source in _init_sources(inits, record, cfg):
        for bn in (False, True):
            r = summary(source, cfg.thresholds[:2], init=init)["sigmoid", bn]
            row = {"initialisation": init_words(init), "BN": "yes" if bn else "no", "lr": f"{r['lr']:g}",
                   f"test accuracy at step {steps:,}": r["final_text"]}
            for t in cfg.thresholds[:2]:
                row[f"steps to {t:.0%}"] = book.mean_std(r[f"steps_to_{t}"], "{:,.0f}",
                                                     r["diverged_at"])
            rows.append(row)
    return rows


def activation_name(activation: str) -> str:
    """Return a nonlinearity's name as prose writes it ("ReLU", "sigmoid", "tanh")."""
    return {"relu": "ReLU"}.get(activation, activation)


def activation_gaps(record: results.Record | dict, threshold: float = 0.95) -> str:
    """Return, as a clause for prose, how BN's lead differs between the nonlinearities: the lead
    in final test accuracy (points, mean over seeds) and how many times fewer steps BN needed to
    reach ``threshold`` (ratio of the mean steps), each naming the nonlinearity it is largest for."""
    s = summary(record, [threshold])
    acts = [a for a in dict.fromkeys(m["activation"] for m in record["models"])
            if (a, False) in s and (a, True) in s]
    lead = {a: 100 * (s[a, True]["final_mean"] - s[a, False]["final_mean"]) for a in acts}
    key = f"steps_to_{threshold}_mean"
    faster = {a: s[a, False][key] / s[a, True][key] for a in acts
              if s[a, False][key] and s[a, True][key]}
    text = ("in final accuracy BN leads by "
            + ", ".join(f"{lead[a]:.1f} points with {activation_name(a)}" for a in acts)
            + f" (largest with {activation_name(max(lead, key=lead.get))})")
    if faster:
        text += (f"; to {threshold:.0%} it needs " + ", ".join(
                     f"{faster[a]:.1f}x fewer steps with {activation_name(a)}" for a in faster)
                 + f" (largest with {activation_name(max(faster, key=faster.get))})")
    return text


def init_words(label: str) -> str:
    """Return an initialisation label ("gaussian:0.1", "lecun_uniform") in words."""
    kind, _, std = label.partition(":")
    return {"gaussian": f"Gaussian (std {std})", "lecun_uniform": "LeCun-uniform"}.get(kind, label)


def init_reading(inits: results.Record | dict, record: results.Record | dict, cfg: MnistConfig) -> dict:
    """Return, per better-scaled initialisation of ``inits``, what its table rows say as text:
    which network reached the first threshold sooner (mean steps over seeds) and how many points
    BN led by at the end of the comparison; that lead from the paper's initialisation
    (``"main_lead"``); and which network reached the threshold first from every better-scaled
    start (``"first"``), for the chapter's sentence on how much of BN's head start is the
    initialisation's."""
    steps, t = min(cfg.compare_steps, cfg.steps), cfg.thresholds[0]
    main = init_label(cfg.init, cfg.init_std)
    out, firsts = {}, set()
    for init, source in _init_sources(inits, record, cfg):
        s = summary(source, [t], init=init)
        plain, bn = s["sigmoid", False], s["sigmoid", True]
        lead = 100 * (bn["final_mean"] - plain["final_mean"])
        if init == main:
            out["main_lead"] = f"{lead:.1f} points"
            continue
        p, b = plain[f"steps_to_{t}_mean"], bn[f"steps_to_{t}_mean"]   # None: not reached
        when = lambda n: "not reached" if n is None else f"{n:,.0f} steps"  # noqa: E731
        if p is None and b is None:
            first = "neither network"
            reached = f"neither network reached {t:.0%} within {steps:,} steps"
        else:
            first = "the network " + ("without BN" if b is None or (p is not None and p < b) else "with BN")
            reached = f"{first} reached {t:.0%} first ({when(p)} without BN, {when(b)} with)"
        firsts.add(first)
        out[init] = (f"from {init_words(init)} weights {reached} and BN led by {lead:.1f} points at "
                     f"step {steps:,}")
    only = firsts.pop() if len(firsts) == 1 else None
    out["first"] = (f"which network reached {t:.0%} first depended on the initialisation" if only is None
                    else f"neither network reached {t:.0%}" if only == "neither network"
                    else f"{only} reached {t:.0%} first")
    return out


def _who(m: dict, models: list[dict]) -> str:
    """Return a searched setup in words: its nonlinearity, and its initialisation if not the main one."""
    return activation_name(m["activation"]) + ("" if m["init"] == models[0]["init"] else f", {init_words(m['init'])} init")


def _at_rates(rates: dict[str, list[str]]) -> list[str]:
    """Return ``{setup in words: [rates]}`` as clauses: "ReLU at rates 1 and 3"."""
    return [f"{who} at rate{'s' if len(r) > 1 else ''} {' and '.join(r)}" for who, r in rates.items()]


def search_failures(search: results.Record | dict) -> str:
    """Return, as a clause for prose, how the search's runs failed: whether every network ended
    at chance at the largest rate (best final validation accuracy there), and which setups'
    loss became infinite at which rates (the figure's crosses)."""
    final = np.asarray(search["val_accuracy"], dtype=float)[-1]
    models, diverged = search["models"], search["diverged_at"]
    top = max(m["lr"] for m in models)
    at_top = [np.nan_to_num(final[i], nan=0.0) for i, m in enumerate(models) if m["lr"] == top]
    learned = any(claims.learned([a], data.CHANCE, claims.LEARNED) for a in at_top)
    text = (f"at the largest rate of the grid, {top:g}, every network ends at chance (validation "
            f"accuracy at most {max(at_top):.2f})" if not learned else
            f"at the largest rate of the grid, {top:g}, the best network reaches {max(at_top):.2f}")
    low: dict = {}   # below the top rate: networks that did not diverge yet end at chance
    for i, (m, d) in enumerate(zip(models, diverged)):
        if m["lr"] < top and d is None and not claims.learned([np.nan_to_num(final[i], nan=0.0)],
                                                             data.CHANCE, claims.LEARNED):
            low.setdefault(_who(m, models), []).append(f"{m['lr']:g}")
    if low:
        text += "; below it, " + " and ".join(_at_rates(low)) + " end at chance too"
    blown: dict = {}
    for m, d in zip(models, diverged):
        if d is not None:
            blown.setdefault(_who(m, models), []).append(f"{m['lr']:g}")
    if blown:
        text += "; the loss became infinite (× in the figure) for " + "; ".join(_at_rates(blown))
    else:
        text += "; no run's loss became infinite"
    return text


def lr_table(search: results.Record | dict) -> list[dict]:
    """Return table rows: per searched setup, the chosen learning rate and the validation
    accuracy it reached (mean over the search seeds)."""
    final = np.asarray(search["val_accuracy"])[-1]
    rows = []
    for init, per_act in search["chosen_lr"].items():
        for a, lr in per_act.items():
            idx = [i for i, m in enumerate(search["models"])
                   if (m["activation"], m["init"], m["lr"]) == (a, init, lr)]
            rows.append({"activation": a, "initialisation": init_words(init),
                         "chosen learning rate": f"{lr:g}",
                         "validation accuracy": f"{float(np.nanmean(final[idx])):.4f}"})
    return rows

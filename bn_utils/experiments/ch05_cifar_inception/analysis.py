"""What chapter 05's runs show: accuracy curves, the steps each row needs to reach the Inception
row's best accuracy, the speed-ups over Inception with their resolution, and the comparison with
the paper's Figure 3 and the student reproduction."""

from __future__ import annotations

import numpy as np

from ... import data
from ...book import claims, results
from ...book.page import in_words, pm, seed_std
from .config import ROWS, TARGET_ROW


# Ioffe & Szegedy (2015), Figure 3 (ImageNet, Inception): steps to reach Inception's 72.2 %
# top-1 validation accuracy, and the best accuracy reached. None: never reached. The paper's
# speed-ups (e.g. BN-x5's 14.8x) are computed from these by paper_speedups(), never typed.
PAPER = {
    "Inception": {"steps": 31.0e6, "max_accuracy": 72.2},
    "BN-Baseline": {"steps": 13.3e6, "max_accuracy": 72.7},
    "BN-x5": {"steps": 2.1e6, "max_accuracy": 73.0},
    "BN-x30": {"steps": 2.7e6, "max_accuracy": 74.8},
    "BN-x5-Sigmoid": {"steps": None, "max_accuracy": 69.8},
}
# The student reproduction on CIFAR-10 with a TinyInception (references.bib: student_reproduction):
# best test accuracy (%) and epochs to reach the Inception row's best accuracy.
STUDENT = {
    "Inception": {"max_accuracy": 57.77, "epochs": 99},
    "BN-Baseline": {"max_accuracy": 68.47, "epochs": 13},
    "BN-x5": {"max_accuracy": 68.0, "epochs": 7},
    "BN-x30": {"max_accuracy": 73.0, "epochs": 4},
    "BN-x5-Sigmoid": {"max_accuracy": 55.92, "epochs": None},
}
STUDENT_BN_EPOCHS = 30   # the student's budget for every BN row (its Inception: 100 epochs)



def _evaluations(h: dict) -> tuple[np.ndarray, np.ndarray]:
    """Return a history's test evaluations, regular and dense (hook) ones, sorted by step."""
    steps = list(h["eval_step"]) + list(h.get("measure_step", []))
    acc = list(h["evals"]["accuracy"]) + list(h.get("measures", {}).get("accuracy", []))
    order = np.argsort(steps, kind="stable")
    return (np.asarray(steps)[order],
            np.array([np.nan if acc[i] is None else acc[i] for i in order], dtype=float))


def curve(row: dict) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(eval steps, accuracy per seed)`` of a row, the dense early evaluations included
    (NaN where a diverged seed stopped)."""
    evals = [_evaluations(h) for h in row["history"]]
    steps = max(evals, key=lambda e: len(e[0]))[0]
    acc = np.full((len(evals), len(steps)), np.nan)
    for i, (_, a) in enumerate(evals):
        acc[i, : len(a)] = a
    return steps, acc


def mean_curve(row: dict) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(eval steps, mean accuracy over the seeds that did not diverge)`` (all seeds if
    every one diverged)."""
    steps, acc = curve(row)
    ok = ~np.asarray(row["diverged"])
    return steps, np.nanmean(acc[ok] if ok.any() else acc, 0)


def steps_to_reach(steps: np.ndarray, accuracy: np.ndarray, target: float) -> int | None:
    """Return the first step whose accuracy is >= ``target``, or None if it never gets there."""
    hit = np.flatnonzero(np.nan_to_num(accuracy, nan=-1.0) >= target - 1e-12)
    return int(steps[hit[0]]) if len(hit) else None


def ordered_rows(record: results.Record) -> list[str]:
    """Return the record's rows in table order (stored JSON sorts its keys; the table does not)."""
    return sorted(record.metrics, key=lambda r: list(ROWS).index(r) if r in ROWS else len(ROWS))


def diverged_at(row: dict) -> int | None:
    """Return the first step at which a seed of ``row`` diverged if every seed did, else None."""
    if not row["diverged"] or not all(row["diverged"]):
        return None
    steps = [h.get("diverged_at") for h in row["history"]]
    return min((s for s in steps if s is not None), default=None)


LEVEL_TAIL = 0.2         # "levelled off": the last fifth of training ...
LEVEL_GAIN = 0.01        # ... raised the best accuracy by less than one percentage point
EARLY_EPOCHS = 1.0       # "at first": the best accuracy over the first epoch (dense evaluations)


def early_accuracy(row: dict, epochs: float = EARLY_EPOCHS) -> list[float]:
    """Return each seed's best test accuracy over its first ``epochs`` of training (NaN if it
    has no evaluation there): how fast a row starts."""
    out = []
    for h in row["history"]:
        steps, acc = _evaluations(h)
        early = (steps <= epochs * row["steps_per_epoch"]) & np.isfinite(acc)
        out.append(float(acc[early].max()) if early.any() else float("nan"))
    return out


def levelling(steps: np.ndarray, accuracy: np.ndarray, tail: float = LEVEL_TAIL) -> dict:
    """Return how much the best accuracy rose over the last ``tail`` of the steps (``gain``) and
    whether that is below ``LEVEL_GAIN`` (``levelled``): is the curve still climbing at its end?"""
    acc = np.nan_to_num(np.asarray(accuracy, float), nan=-1.0)
    late = np.asarray(steps) > (1 - tail) * steps[-1]
    if late.all() or not late.any():
        return {"gain": float("nan"), "levelled": False}
    gain = float(max(acc[late].max() - acc[~late].max(), 0.0))
    return {"gain": gain, "levelled": gain < LEVEL_GAIN}


def seed_levelling(row: dict) -> list[float]:
    """Return each seed's own ``levelling`` gain (the rise of its best accuracy over the last
    fifth of its run): the spread behind the mean curve's one gain."""
    steps, acc = curve(row)
    return [levelling(steps, a)["gain"] for a in acc]


def late_gains_text(record: results.Record, rows, epochs: float | None = None) -> str:
    """Return how far the mean curve of each of ``rows`` rose over the last fifth of its run
    (:func:`levelling`), in points, and what that says by the same < 1 point rule: "BN-x5 1.3
    and BN-x30 1.2 points: none had levelled off by the same rule, so each best accuracy is where
    its run stops, not a plateau" ("not run" when no row is in the record). With ``epochs``, each
    curve is cut after that many epochs first: where a shorter run of the same rows would stop
    (then "none" ends "so a run stopped there would end before its plateau")."""
    def gain(row: dict) -> float:
        steps, acc = mean_curve(row)
        keep = steps <= (steps[-1] if epochs is None else epochs * row["steps_per_epoch"])
        return levelling(steps[keep], acc[keep])["gain"]

    gains = {r: gain(record.metrics[r]) for r in rows if r in record.metrics}
    if not gains:
        return "not run"
    flat = [r for r, g in gains.items() if g < LEVEL_GAIN]
    said = in_words([f"{r} {100 * g:.1f}" for r, g in gains.items()]) + " points"
    if not flat:
        return f"{said}: none had levelled off by the same rule, so " + (
            "each best accuracy is where its run stops, not a plateau" if epochs is None else
            "a run stopped there would end before its plateau")
    if len(flat) == len(gains):
        return f"{said}: all had levelled off by the same rule"
    return f"{said}: only {in_words(flat)} had levelled off by the same rule"


def crossing_interval(steps: np.ndarray, reach: int | None) -> float:
    """Return the steps between the evaluation at ``reach`` and the one before it: how precisely
    the crossing is known (NaN if never reached)."""
    if reach is None:
        return float("nan")
    i = int(np.searchsorted(steps, reach))
    return float(steps[i] - steps[i - 1]) if i > 0 else float(max(reach, 1))


def summary(record: results.Record) -> dict:
    """Return per row: best accuracy (mean, std over seeds), the target (best of the Inception
    row's mean curve, with whether that curve had levelled off), steps and epochs for the row's
    mean curve to reach it, the speed-up over Inception, its resolution (the evaluation interval
    before the crossing over the steps to target, summed for the two rows), how many seeds
    diverged and, if all did, where. A target at chance level (Inception diverged or never
    learned) is no target: no steps and no speed-ups then."""
    rows = record.metrics
    target, level = None, {"gain": float("nan"), "levelled": False}
    if TARGET_ROW in rows:
        base_steps, base_mean = mean_curve(rows[TARGET_ROW])
        target = float(np.nanmax(base_mean))
        level = levelling(base_steps, base_mean)
    at_chance = target is not None and not target >= data.CHANCE + claims.LEARNED
    out = {}
    for name in ordered_rows(record):
        row = rows[name]
        steps, mean = mean_curve(row)
        best = np.asarray(row["max_accuracy"], dtype=float)
        reach = steps_to_reach(steps, mean, target) if target is not None and not at_chance \
            else None
        interval = crossing_interval(steps, reach)
        out[name] = {"max_accuracy": float(best.mean()), "max_accuracy_std": seed_std(best),
                     "n_seeds": len(best), "n_diverged": int(sum(row["diverged"])),
                     "diverged_at": diverged_at(row), "target": target,
                     "target_at_chance": at_chance, "target_levelled": level["levelled"],
                     "target_late_gain": level["gain"], "steps_to_target": reach,
                     "eval_interval": interval,
                     "epochs_to_target": None if reach is None else reach / row["steps_per_epoch"],
                     "max_accuracy_seeds": [float(b) for b in best],
                     "diverged_seeds": [bool(d) for d in row["diverged"]],
                     "last_step": int(steps[-1]),
                     "early_accuracy_seeds": early_accuracy(row),
                     "reach_seeds": [None if target is None or at_chance else
                                     steps_to_reach(*_evaluations(h), target) for h in row["history"]]}
    base = out.get(TARGET_ROW, {})
    for s in out.values():
        ok = base.get("steps_to_target") and s["steps_to_target"]
        s["speedup"] = base["steps_to_target"] / s["steps_to_target"] if ok else None
        s["speedup_seeds"] = [base["steps_to_target"] / r if r and base.get("steps_to_target") else None
                              for r in s["reach_seeds"]]
        s["speedup_resolution"] = (s["eval_interval"] / s["steps_to_target"]
                                   + base["eval_interval"] / base["steps_to_target"]) if ok else None
    return out


def target_sensitivity(record: results.Record, fractions=(0.99, 0.98)) -> dict:
    """Return, per fraction ``f`` of the target, how the mean-curve speed-ups move when the target
    is ``f`` times Inception's peak: ``{f: {"target", "inception_steps", "speedups": {row: x}}}``
    (a row that never gets there: None). Where Inception's curve is flat near its peak, a slightly
    lower target is reached much sooner by Inception, and every speed-up shrinks or grows with it."""
    summ = summary(record)
    base = summ.get(TARGET_ROW)
    if not base or base["target"] is None or base["target_at_chance"]:
        return {}
    curves = {name: mean_curve(record.metrics[name]) for name in ordered_rows(record)}   # once, for every f
    out = {}
    for f in fractions:
        target = f * base["target"]
        b = steps_to_reach(*curves[TARGET_ROW], target)
        rows = {}
        for name in (n for n in curves if n != TARGET_ROW):
            r = steps_to_reach(*curves[name], target)
            rows[name] = b / r if b and r else None
        out[f] = {"target": target, "inception_steps": b, "speedups": rows}
    return out


def reach_text(s: dict | None) -> str:
    """Return how a row of ``summary`` reached the target, as prose: ``1,234 steps (3.1 epochs)``,
    ``diverged at step N``, ``never (in this run)``, or why there is no target."""
    if s is None:
        return "never (in this run)"
    if s["steps_to_target"] is not None:
        return f"{s['steps_to_target']:,} steps ({s['epochs_to_target']:.1f} epochs)"
    if s["diverged_at"] is not None:
        return f"diverged at step {s['diverged_at']:,}"
    if s["target_at_chance"]:
        return f"no target: the best accuracy of {TARGET_ROW} is at chance level"
    return "never (in this run)"


def reach_sentence(summ: dict, row: str, epochs: int) -> str:
    """Return a clause for the chapter's prose on how ``row`` of ``summ`` reached the Inception
    row's best (its steps, epochs and speed-up with its resolution, beside the paper's), or that
    it did not within its ``epochs``, diverged, or was not run."""
    if row not in summ:
        return "was not run"
    s = summ[row]
    if s["steps_to_target"] is None and (s["diverged_at"] is not None or s["target_at_chance"]):
        return reach_text(s)   # "diverged at step N", or why there is no target
    if s["steps_to_target"] is None:
        return f"did not reach it within its {epochs} epochs (best: {100 * s['max_accuracy']:.1f} %)"
    paper, done = paper_speedups().get(row), f"reached it after {s['steps_to_target']:,} steps"
    if s["speedup"] is None:   # Inception's best came at step 0: no speed-up to speak of
        return done
    return (f"{done} ({s['epochs_to_target']:.1f} epochs): {s['speedup']:.1f}x fewer steps than "
            f"{TARGET_ROW}, ± {100 * s['speedup_resolution']:.0f} %"
            + ("" if row not in PAPER else f" (the paper: {paper:.1f}x)" if paper
               else " (in the paper it never did)"))


def paper_speedups() -> dict:
    """Return the paper's speed-ups over Inception (its Figure 3: Inception's steps to 72.2 %
    divided by each row's), None where a row never reached it."""
    base = PAPER[TARGET_ROW]["steps"]
    return {row: None if p["steps"] is None else base / p["steps"] for row, p in PAPER.items()}


def percent_pm(mean: float, std: float, n: int, scale: float = 100.0) -> str:
    """Return a fraction as percent text, ``mean ± std`` over ``n`` seeds (the mean alone for one)."""
    return pm(scale * mean, scale * std, n, "{:.1f}")


def comparison(summ: dict) -> list[dict]:
    """Return the results table: ours (speed-ups with their resolution) beside the paper's
    ImageNet numbers (its Figure 3) and the student reproduction's."""
    out, paper_x, student_x = [], paper_speedups(), student_speedups()
    for name, s in summ.items():
        paper, student = PAPER.get(name, {}), STUDENT.get(name, {})
        steps = s["steps_to_target"]
        out.append({
            "row": name,
            "max acc. % (ours)": percent_pm(s["max_accuracy"], s["max_accuracy_std"], s["n_seeds"]),
            "steps to target (ours)": f"{steps:,}" if steps is not None else
            "—" if s["diverged_at"] is None else f"diverged at step {s['diverged_at']:,}",
            "epochs to target (ours)": "—" if steps is None else f"{s['epochs_to_target']:.1f}",
            "speed-up (ours)": "—" if s["speedup"] is None else
                               f"{s['speedup']:.1f}x ± {100 * s['speedup_resolution']:.0f} %",
            "diverged": f"{s['n_diverged']}/{s['n_seeds']}",
            "paper max % (Fig. 3)": paper.get("max_accuracy"),
            "paper steps to 72.2 % (Fig. 3)": _millions(paper.get("steps")) if paper else None,
            "paper speed-up": _speedup_text(paper_x[name]) if paper else None,
            "student max %": student.get("max_accuracy"),
            "student epochs to its Inception's best": (student.get("epochs") or "never") if student else None,
            "student speed-up": _speedup_text(student_x[name]) if student else None,
        })
    return out


def _millions(steps: float | None) -> str:
    return "never" if steps is None else f"{steps / 1e6:.1f}M"


def _speedup_text(speedup: float | None) -> str:
    return "never" if speedup is None else f"{speedup:.1f}x"


def student_speedups() -> dict:
    """Return the student reproduction's speed-ups over its Inception row: its Inception's epochs
    to its own best accuracy divided by each row's (None where a row never reached it)."""
    base = STUDENT[TARGET_ROW]["epochs"]
    return {row: None if s["epochs"] is None else base / s["epochs"] for row, s in STUDENT.items()}


def seeds_against_target(histories: dict, summ: dict) -> dict:
    """Return, per stored seed of one row (``{seed: history}``, e.g. from
    :func:`~.experiment.stored_runs`), its best accuracy, its steps to the target of ``summ`` and
    its speed-up over the Inception row of ``summ``: the seed noise of numbers the table shows
    for one seed."""
    base = summ.get(TARGET_ROW, {})
    target, base_steps = base.get("target"), base.get("steps_to_target")
    out = {}
    for seed, h in sorted(histories.items()):
        steps, acc = _evaluations(h)
        reach = steps_to_reach(steps, acc, target) if target is not None else None
        out[seed] = {"max_accuracy": float(np.nanmax(acc)), "steps_to_target": reach,
                     "speedup": base_steps / reach if reach and base_steps else None}
    return out


def at_equal_steps(record: results.Record, row: str, base: str = TARGET_ROW) -> dict | None:
    """Return the best accuracy of ``row``'s and ``base``'s mean curves up to the last step
    ``row`` evaluated (``{"step", "row", "base"}``): the two compared on the same number of SGD
    steps, whatever their budgets. None if either row is missing."""
    if row not in record.metrics or base not in record.metrics:
        return None
    steps, acc = mean_curve(record.metrics[row])
    base_steps, base_acc = mean_curve(record.metrics[base])
    last = int(steps[np.isfinite(acc)][-1])
    upto = base_steps <= last
    return {"step": last, "row": float(np.nanmax(acc)),
            "base": float(np.nanmax(base_acc[upto])) if upto.any() else float("nan")}


def _ranked(values: dict, fmt) -> str:
    """Return ``values``'s keys, largest value first, each with its formatted value, then the keys
    whose value is None as not reaching the target: ``"BN-x30 (17.2x), BN-x5 (8.2x); not reached:
    BN-Baseline"``."""
    kept = sorted((k for k, v in values.items() if v is not None), key=lambda k: -values[k])
    never = [k for k, v in values.items() if v is None]
    return ", ".join(f"{k} ({fmt(values[k])})" for k in kept) + (f"; not reached: {', '.join(never)}" if never else "")


def orderings(summ: dict) -> dict:
    """Return the rows of the paper's table ordered by speed-up and by best accuracy, ours (from
    ``summ``) and the paper's (its Figure 3; by speed-up also the student reproduction's), as
    ``"BN-x30 (17.2x), BN-x5 (8.2x)"`` strings: whether the ordering survives the change of scale.
    Rows that never reached the target have no speed-up and are left out of that ordering."""
    rows = [r for r in summ if r in PAPER and r != TARGET_ROW]
    with_target = rows + [TARGET_ROW] * (TARGET_ROW in summ)
    paper_x, student_x = paper_speedups(), student_speedups()
    times, percent = "{:.1f}x".format, "{:.1f} %".format
    return {
        "speed_ours": _ranked({r: summ[r]["speedup"] for r in rows}, times) or "no row reached the target",
        "speed_paper": _ranked({r: paper_x[r] for r in rows}, times),
        "speed_student": _ranked({r: student_x.get(r) for r in rows}, times),
        "acc_ours": _ranked({r: 100 * summ[r]["max_accuracy"] for r in with_target}, percent),
        "acc_paper": _ranked({r: PAPER[r]["max_accuracy"] for r in with_target}, percent),
    }


def seed_spread(per_seed: dict) -> dict | None:
    """Return the spread over the seeds of :func:`seeds_against_target`: ``{"n", "acc",
    "speedup"}``, each of the last two ``(mean, std, min, max)`` with the sample std (best
    accuracy in %; the speed-up over the seeds that reached the target, None if fewer than two
    did). None if fewer than two seeds are stored."""
    if len(per_seed) < 2:
        return None
    spread = lambda v: (v.mean(), v.std(ddof=1), v.min(), v.max())  # noqa: E731
    acc = np.array([100 * v["max_accuracy"] for v in per_seed.values()])
    fast = np.array([v["speedup"] for v in per_seed.values() if v["speedup"]])
    return {"n": len(acc), "acc": spread(acc), "speedup": spread(fast) if len(fast) > 1 else None}


def seeds_rows(per_seed: dict) -> list[dict]:
    """Return table rows of :func:`seeds_against_target` (one per seed, then mean ± std over the
    seeds when there are several), as strings."""
    fmt = lambda v, f: "never" if v is None else format(v, f)  # noqa: E731
    rows = [{"seed": str(s), "best acc. %": f"{100 * v['max_accuracy']:.1f}",
             "steps to target": fmt(v["steps_to_target"], ","), "speed-up": fmt(v["speedup"], ".1f")
             + ("x" if v["speedup"] else "")} for s, v in per_seed.items()]
    spread = seed_spread(per_seed)
    if spread:
        (acc, acc_sd, *_), fast = spread["acc"], spread["speedup"]
        rows.append({"seed": "mean ± std", "best acc. %": f"{acc:.1f} ± {acc_sd:.1f}",
                     "steps to target": "—", "speed-up": f"{fast[0]:.1f} ± {fast[1]:.1f}x" if fast else "—"})
    return rows

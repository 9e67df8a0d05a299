"""What the book found: every chapter's headline claims beside the stored records (chapter 10).

Each claim names its source (the paper or a student reproduction) and the number behind it
there; ``ours`` is computed from the best record stored under ``results/`` (full > reference >
quick > smoke), with its profile and seeds; a chapter without records says "not run at this
scale". Nothing here trains: it only reads records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from . import results

RANK = ("full", "reference", "quick", "smoke")
NOT_RUN = "not run at this scale"


def claim(claim: str, source: str, theirs: str, measure: Callable, available: bool = True) -> dict:
    """Return one headline row of a chapter (its ``headlines`` function): the claim, its source,
    their number, ours and whether ours shows the claim, from ``measure() -> (text, bool)``; a
    claim that needs a run the record lacks (``available`` false) is "not run"."""
    if not available:
        ours, shown = "—", "not run"
    else:
        ours, ok = measure()
        shown = "yes" if ok else "no"
    return {"claim": claim, "source": source, "their number": theirs, "ours": ours, "shown?": shown}


def best_record(chapter: str, name: str, folder: Path | None = None) -> results.Record | None:
    """Return the stored record ``name`` of ``chapter`` from the best profile there is, or None."""
    folder = (folder or results.results_dir()) / chapter
    found = []
    for path in folder.glob(f"{name}__*.json"):
        profile = path.name[len(name) + 2:].split("__")[0]
        if profile in RANK:
            found.append((RANK.index(profile), -path.stat().st_mtime, path))
    for _, _, path in sorted(found):
        record = results.read(path)
        if record is not None:
            return record
    return None


def _scale(record: results.Record) -> str:
    seeds = record.config.get("seeds")
    n = len(seeds) if isinstance(seeds, list) else 1
    return f"{record.profile}, {n} seed{'s' if n != 1 else ''}"


def _verdict(shown: str, record: results.Record) -> str:
    """Return the "holds at our scale?" entry: a chapter's "yes"/"no", except that a smoke record
    (a few steps on a few images, made to test the code) or a claim it could not test judges nothing."""
    if record.profile == "smoke":
        return "not tested at this scale (smoke record only)"
    return shown if shown in ("yes", "no") else "not tested at this scale"


def _row(chapter: str, claim: str, source: str, theirs: str, record, measure: Callable) -> dict:
    """Return one verdict row; ``measure(record)`` returns (ours as text, holds: bool)."""
    if record is None:
        return {"chapter": chapter, "claim": claim, "source": source, "their number": theirs,
                "ours (profile, seeds)": NOT_RUN, "holds at our scale?": "not tested at this scale"}
    ours, ok = measure(record)
    return {"chapter": chapter, "claim": claim, "source": source, "their number": theirs,
            "ours (profile, seeds)": f"{ours} ({_scale(record)})",
            "holds at our scale?": _verdict("yes" if ok else "no", record)}


def _ch01(folder) -> list[dict]:
    from .experiments import covariate_shift

    rec = best_record(covariate_shift.CHAPTER, "shift", folder)

    def stable(r):
        s = covariate_shift.summary(r)
        return (f"range of the watched layer's mean: {s['bn']['mean_range']:.2f} with BN, "
                f"{s['no_bn']['mean_range']:.2f} without", s["bn"]["mean_range"] < s["no_bn"]["mean_range"])
    return [_row("01", "BN keeps a layer's input distribution stable while the layers below learn",
                 "Ioffe & Szegedy 2015", "Fig. 1(b, c), qualitative", rec, stable)]


def _ch02(folder) -> list[dict]:
    from .experiments import forward_pass

    est = best_record(forward_pass.CHAPTER, "running_estimates", folder)
    branch = best_record(forward_pass.CHAPTER, "eval_branch", folder)

    def population(r):
        m, v = r["paper_mean"], r["paper_var"]
        err = max(abs(m - r["true_mean"]) / r["true_var"] ** 0.5, abs(v - r["true_var"]) / r["true_var"])
        return f"mean {m:.2f} (true {r['true_mean']:g}), variance {v:.2f} (true {r['true_var']:g})", err < 0.05

    def eval_branch(r):
        acc = {k: r[k]["evals"]["test_accuracy"][-1] for k in r.metrics}
        bug, ok = acc.get("eval-branch BN (buggy) @ lr 2"), acc.get("torch BN @ lr 2")
        return f"test accuracy at LR 2: {bug:.3f} with the bug, {ok:.3f} with BN", bug < ok
    return [_row("02", "population statistics (mean of batch means, unbiased batch variance) "
                       "recover the data's mean and variance", "Ioffe & Szegedy 2015", "Alg. 2", est, population),
            _row("02", "normalising with running statistics during training loses BN's benefit",
                 "book (a common bug)", "—", branch, eval_branch)]


def _ch04(folder) -> list[dict]:
    from .experiments import mnist

    runs = best_record(mnist.CHAPTER, "runs", folder)
    bs1 = best_record(mnist.CHAPTER, "batch_size_one", folder)

    def accuracy(r):
        s = mnist.summary(r)
        bn, plain = s["sigmoid", True], s["sigmoid", False]
        return f"{bn['final_mean']:.4f} with BN, {plain['final_mean']:.4f} without", bn["final_mean"] > plain["final_mean"]

    def faster(r):
        s = mnist.summary(r)
        bn, plain = s["sigmoid", True], s["sigmoid", False]
        return (f"accuracy at step 2,500: {bn['at_step_mean']:.4f} with BN, {plain['at_step_mean']:.4f} without",
                bn["at_step_mean"] > plain["at_step_mean"])

    def drift(r):
        d = mnist.distribution_drift(r)
        a, b = float(np.mean(d[True]["median_range"])), float(np.mean(d[False]["median_range"]))
        return f"median of a sigmoid input moves {a:.2f} with BN, {b:.2f} without", a < b

    def batch_one(r):
        acc = r["evals"]["test_accuracy"][-1]
        return f"test accuracy {acc:.3f} at batch 1", acc < 0.2
    return [_row("04", "BN network reaches a higher test accuracy (MNIST, 3×100 sigmoid)",
                 "Ioffe & Szegedy 2015", "Fig. 1(a)", runs, accuracy),
            _row("04", "BN network trains faster", "student reproduction", "high accuracy by ~2,500 steps",
                 runs, faster),
            _row("04", "sigmoid inputs stay stable with BN and drift without", "Ioffe & Szegedy 2015",
                 "Fig. 1(b, c)", runs, drift),
            _row("04", "at batch size 1 BN's hidden layers cannot learn", "student reproduction",
                 "trained at batch 1 by mistake", bs1, batch_one)]


def _from_headlines(chapter: str, rec, headlines: Callable, claim: str, source: str, theirs: str) -> list[dict]:
    """Rows of a chapter whose module lists its headline claims (``headlines(record)``)."""
    if rec is None:
        return [_row(chapter, claim, source, theirs, None, None)]
    return [{"chapter": chapter, "claim": h["claim"], "source": h["source"], "their number": h["their number"],
             "ours (profile, seeds)": f"{h['ours']} ({_scale(rec)})", "holds at our scale?": _verdict(h["shown?"], rec)}
            for h in headlines(rec)]


def _ch05_to_08(folder) -> list[dict]:
    from .experiments import ensemble, inception, noise, smoothness

    return (_from_headlines("05", best_record(inception.CHAPTER, "ablation", folder),
                            lambda rec: inception.headlines(inception.summary(rec)),
                            "BN lets Inception reach its accuracy in fewer steps", "Ioffe & Szegedy 2015", "Fig. 3")
            + _from_headlines("06", best_record(ensemble.CHAPTER, "ensemble", folder), ensemble.headlines,
                              "an ensemble of BN networks is more accurate than its best member",
                              "Ioffe & Szegedy 2015", "Table 3")
            + _from_headlines("07", best_record(noise.CHAPTER, "noise", folder), noise.headlines,
                              "BN's benefit does not come from stable layer inputs", "Santurkar et al. 2018",
                              "Figs. 2, 3")
            + _from_headlines("08", best_record(smoothness.CHAPTER, "smoothness", folder),
                              smoothness.headlines, "BN makes the loss landscape smoother",
                              "Santurkar et al. 2018", "Fig. 4"))


def _ch09(folder) -> list[dict]:
    from .experiments import in_practice as P
    from .experiments import in_practice_claims as C
    from .experiments import in_practice_search as S

    names = ("batch_sweep", "placement", "dropout", "initialisation", "ga_search", "cost",
             "weight_decay", "finetune")
    recs = {n: best_record(P.CHAPTER, n, folder) for n in names}
    if any(r is None for r in recs.values()):
        return [_row("09", "the practitioners' claims about BN (chapter 9)", "practitioners' advice", "—",
                     None, None)]
    cfg = P.PracticeConfig.from_record(recs["batch_sweep"])
    scale = f"{_scale(recs['batch_sweep'])}; the GA and the timings: one"
    rows = []
    for c in C.claims(recs, cfg):
        rows.append({"chapter": "09", "claim": c["claim"], "source": "practitioners' advice (chapter 9)",
                     "their number": "—", "ours (profile, seeds)": f"{c['measured']} ({scale})",
                     "holds at our scale?": _verdict(c["holds?"], recs["batch_sweep"])})
    ga, theirs = recs["ga_search"], S.STUDENT["best_lr"]
    rows.append({"chapter": "09", "claim": "the GA finds a larger best learning rate with BN",
                 "source": "student project (Higgs)",
                 "their number": f"{theirs['bn']:g} with BN, {theirs['none']:g} without",
                 "ours (profile, seeds)": f"{float(ga['bn/best_lr']):.3g} with BN, {float(ga['none/best_lr']):.3g} "
                                          f"without ({ga.profile}, one training seed per candidate)",
                 "holds at our scale?": _verdict("yes" if float(ga["bn/best_lr"]) > float(ga["none/best_lr"])
                                                 else "no", ga)})
    return rows


def verdicts(folder: Path | None = None) -> list[dict]:
    """Return the book's verdict rows, chapter by chapter, from the stored records."""
    return [*_ch01(folder), *_ch02(folder), *_ch04(folder), *_ch05_to_08(folder), *_ch09(folder)]


def tally(rows: list[dict]) -> dict:
    """Return how many claims hold, do not hold, or were not tested at our scale."""
    out = {"yes": 0, "no": 0, "not tested": 0}
    for r in rows:
        v = r["holds at our scale?"]
        out["yes" if v == "yes" else "no" if v == "no" else "not tested"] += 1
    return out

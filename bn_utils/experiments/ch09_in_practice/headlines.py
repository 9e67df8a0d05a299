"""Chapter 09: the practitioners' claims about BN (and the student project's GA claim), each
decided by the book's rule (:mod:`bn_utils.book.claims`) over the seeds the records hold.

A seed is one training run of every network of an experiment (initialisation and minibatch
order), so a claim is decided on one difference per seed (``claims.paired``), except the GA
(one search per seed, both networks) and the timings (one timing run counts as a seed). Every
seed is scored on the same test images, so the seeds' spread leaves out the test set's own
sampling error; where a claim compares accuracies of different networks on those images (what
decides chapter 09's close verdicts: 2,000 test images, about half a point of binomial error per
accuracy) that error is added, bounded by independent binomial errors of the mean accuracies
compared (:func:`_with_test_set`). It is not added to the gap between BN's two modes: one network
scored twice on the same images, whose independent bound would overstate it many times.
A claim that compares networks is decided only where every one of them learned (:func:`_learned`:
above chance, the task's own; one in five for the new digits of fine-tuning), the book's claims.

Some records have extra runs stored as their own records (``PracticeConfig.extra_records``,
trained by ``tools/train_runs.py``): more GA searches and timing runs, more seeds of the batch
sweep, the placement runs scored on all 10,000 test images. :func:`claim_rows` loads those stored
under exactly their configs; more seeds join the record's, a record with more test images
replaces it (a protocol is never mixed with another).
"""

from __future__ import annotations

import math

import numpy as np

from ...book import claims
from ... import data
from ...nn import models
from . import cost, finetune, ga_search, small_batches
from .experiment import load_extra
from .config import PracticeConfig, STUDENT_MLP

SOURCE = "practitioners' advice"
PLACEMENT_MARGIN = 0.02   # "makes little difference": |before − after| below this
FOLDED_MAX = 1.1          # "folding removes the inference cost": folded / no BN below this


def _test_se(accuracies, n: int) -> float:
    """Return the bound on the test-set error of a combination (+/−) of mean accuracies measured
    on the same ``n`` images: independent binomial errors added in quadrature."""
    p = np.clip(np.asarray(accuracies, float), 0.0, 1.0)
    return float(np.sqrt(np.sum(p * (1 - p)) / n))


def _with_test_set(d: claims.Decision, test_se: float, margin: float = 0.0) -> claims.Decision:
    """Return ``d`` decided again with the test set's error ``test_se`` added to the seeds' SE."""
    return claims.decide(d.mean, math.sqrt(d.se ** 2 + test_se ** 2), d.n, margin)


def _learned(*accuracies, chance: float = data.CHANCE) -> bool:
    """Return whether every network compared learned: each one's seeds' mean accuracy (diverged =
    0) above ``chance`` (ten classes' unless given) by the book's margin (``claims.LEARNED``)."""
    return all(claims.learned(np.nan_to_num(a, nan=0.0), chance, claims.LEARNED) for a in accuracies)


def _pts(d: claims.Decision) -> str:
    return d.spread("points", 100)


def _row(text: str, ours: str, decision, spread: str | None = None, source: str = SOURCE,
         theirs: str = "—") -> dict:
    return claims.row(text, source, theirs, ours, decision, spread)


def _stored_extra(experiment: str, extra: dict, cfg: PracticeConfig) -> list:
    """Return the stored extra records (``extra``) of ``experiment``, in ``cfg.extra_records`` order."""
    return [extra[n] for n, (e, _) in cfg.extra_records().items() if e == experiment and n in extra]


def sweep_with_extra_seeds(sweep, extra: dict, cfg: PracticeConfig) -> tuple[np.ndarray, np.ndarray, int]:
    """Return the batch sweep's (eval_acc, train_acc) arrays (norm, batch, seed) of the record
    ``sweep`` with the stored extra seeds of the same protocol (``extra``) joined on the seed axis,
    and the number of test images: what the small-batch claims decide on."""
    ev, tr = np.asarray(sweep["eval_acc"]), np.asarray(sweep["train_acc"])
    for more in _stored_extra("batch_sweep", extra, cfg):
        ev = np.concatenate([ev, np.asarray(more["eval_acc"])], axis=2)
        tr = np.concatenate([tr, np.asarray(more["train_acc"])], axis=2)
    return ev, tr, cfg.n_test


def _small_batch_rows(rec: dict, extra: dict, cfg: PracticeConfig) -> list[dict]:
    ev, tr, n_test = sweep_with_extra_seeds(rec["batch_sweep"], extra, cfg)
    i = cfg.norms.index("bn")
    small, large = cfg.batch_sizes[0], cfg.batch_sizes[-1]
    n_seeds = ev.shape[2]
    rows = []
    # 1. train-mode vs eval-mode accuracy of the same BN network (a measurement: BN must learn)
    gap = tr[i] - ev[i]
    text = ("BN uses batch statistics in training and running averages at test time; with small "
            f"batches the two disagree (|train-mode − eval-mode accuracy| larger at batch {small} than at {large})")
    ours = f"{np.nanmean(np.abs(gap[0])):.3f} vs {np.nanmean(np.abs(gap[-1])):.3f} ({n_seeds} seeds)"
    if not (_learned(ev[i][0]) and _learned(ev[i][-1])):
        rows.append(_row(text, ours + "; BN did not learn at one of the batch sizes", claims.NOT_COMPARABLE))
    else:
        d = claims.paired(np.abs(gap[0]) - np.abs(gap[-1]))
        rows.append(_row(text, ours, d, _pts(d) + " (the seeds' spread only: one network scored twice)"))
    # 2. BN's drop from the largest to the smallest batch exceeds LayerNorm's and GroupNorm's
    drop = {n: ev[cfg.norms.index(n)][-1] - ev[cfg.norms.index(n)][0] for n in cfg.norms}
    indep = [n for n in ("ln", "gn") if n in drop]
    if indep:
        parts, spreads = [], []
        for n in indep:
            j = cfg.norms.index(n)
            accs = [np.nanmean(ev[i][-1]), np.nanmean(ev[i][0]), np.nanmean(ev[j][-1]), np.nanmean(ev[j][0])]
            d = _with_test_set(claims.paired(drop["bn"] - drop[n]), _test_se(accs, n_test))
            parts.append(d)
            spreads.append(f"BN − {small_batches.LABELS[n]}: {_pts(d)}")
        text = (f"BN loses more accuracy at tiny batches than batch-independent layers (BN's drop from batch "
                f"{large} to {small} larger than LayerNorm's and GroupNorm's)")
        ours = ", ".join(f"{small_batches.LABELS[n]} {np.nanmean(drop[n]):.3f}" for n in ["bn", *indep])
        rows.append(_row(text, f"drop: {ours}", claims.all_of(parts),
                         "; ".join(spreads) + f" (seeds and {n_test:,} test images)"))
    # 3. Batch Renorm recovers accuracy BN loses at the smallest batch
    if "brn" in cfg.norms:
        j = cfg.norms.index("brn")
        d = _with_test_set(claims.paired(ev[j][0] - ev[i][0]),
                           _test_se([np.nanmean(ev[j][0]), np.nanmean(ev[i][0])], n_test))
        rows.append(_row("Batch Renormalization recovers accuracy that BN loses at small batches "
                         f"(Batch Renorm − BN accuracy at batch {small} > 0)",
                         f"{np.nanmean(ev[j][0]):.3f} vs {np.nanmean(ev[i][0]):.3f}", d,
                         _pts(d) + f" (seeds and {n_test:,} test images)"))
    return rows


def placement_gaps(placement, extra: dict, cfg: PracticeConfig) -> dict:
    """Return what the placement claim decides on: the record scored on all 10,000 test images when
    it is stored (``extra``), else ``placement``; its number of test images ``n_test``; and per
    activation (``relu``, ``sigmoid``) BN before − after final accuracy over the seeds, ``gap``
    (mean, seeds' SE, seeds), its SE with the test set's error added, ``se``, and ``part``, the
    equivalence |before − after| < ``PLACEMENT_MARGIN`` decided on them."""
    pl = next(iter(_stored_extra("placement", extra, cfg)), placement)
    out = {"n_test": PracticeConfig.from_record(pl).n_test}
    for act in ("relu", "sigmoid"):
        before, after = pl[f"{act}/before/acc"][:, -1], pl[f"{act}/after/acc"][:, -1]
        d = claims.paired(before - after)
        se = _with_test_set(d, _test_se([np.mean(before), np.mean(after)], out["n_test"])).se
        out[act] = {"gap": d, "se": se, "part": claims.decide(PLACEMENT_MARGIN - abs(d.mean), se, d.n)}
    return out


def _placement_row(rec: dict, extra: dict, cfg: PracticeConfig) -> dict:
    """BN before or after the nonlinearity: |before − after| below ``PLACEMENT_MARGIN`` for ReLU
    and sigmoid, an equivalence (yes when the whole two-SE interval of the mean difference lies
    inside ± the margin, no when it lies outside); from the record on all 10,000 test images when
    it is stored (:func:`placement_gaps`)."""
    g = placement_gaps(rec["placement"], extra, cfg)
    n_test, acts = g["n_test"], ("relu", "sigmoid")
    parts = [g[act]["part"] for act in acts]
    texts = [f"{act} {g[act]['gap'].mean:+.3f}" for act in acts]
    spreads = [f"{act}: {100 * g[act]['gap'].mean:+.1f} ± {100 * g[act]['se']:.1f} points" for act in acts]
    return _row(f"BN before or after the nonlinearity makes little difference (|before − after| final "
                f"accuracy < {PLACEMENT_MARGIN:g} for ReLU and sigmoid)",
                f"before − after: {', '.join(texts)} ({n_test:,} test images)", claims.all_of(parts),
                "; ".join(spreads) + f", {parts[0].n} seeds and {n_test:,} test images")


def _ga_row(rec: dict, extra: dict, cfg: PracticeConfig) -> dict:
    """The GA finds a larger best learning rate with BN: one search per seed for both networks;
    decided on log10(best LR with BN / without), one value per search."""
    runs = [rec["ga_search"], *_stored_extra("ga_search", extra, cfg)]
    ratio = [math.log10(float(r["bn/best_lr"]) / float(r["none/best_lr"])) for r in runs]
    d = claims.paired(ratio)
    theirs = ga_search.STUDENT["best_lr"]
    bn = ", ".join(f"{float(r['bn/best_lr']):.3g}" for r in runs)
    none = ", ".join(f"{float(r['none/best_lr']):.3g}" for r in runs)
    return _row("the GA finds a larger best learning rate with BN (BN allows a larger learning rate)",
                f"best LR {bn} with BN, {none} without ({len(runs)} search{'es' if len(runs) > 1 else ''})", d,
                f"log10(BN / no BN): {d.spread(digits=2)}", source="student project (Higgs)",
                theirs=f"{theirs['bn']:g} with BN, {theirs['none']:g} without")


def timing_runs(timing, extra: dict, cfg: PracticeConfig) -> list:
    """Return the timing runs the cost claim decides on: the record ``timing`` and the stored extra
    timing runs (``extra``)."""
    return [timing, *_stored_extra("cost", extra, cfg)]


def _cost_row(rec: dict, extra: dict, cfg: PracticeConfig) -> dict:
    """BN costs time in training (MLP: BN / no BN > 1) and folding removes the inference cost
    (folded / no BN < ``FOLDED_MAX``): one value per timing run."""
    r = cost.over_runs(timing_runs(rec["cost"], extra, cfg))
    costs = claims.paired([v - 1 for v in r["train"]["runs"]])
    folded = claims.paired([FOLDED_MAX - v for v in r["folded inference"]["runs"]])
    student = cost.student_ratios()
    mean = lambda k: r[k]["mean"]  # noqa: E731
    n = len(r["train"]["runs"])
    return _row("BN costs time in training and at inference; folding it into the layer before removes the "
                f"inference cost (MLP: BN/no-BN train ratio > 1, folded/no-BN inference ratio < {FOLDED_MAX:g})",
                f"train ×{mean('train'):.2f}, inference ×{mean('inference'):.2f}, folded ×{mean('folded inference'):.2f} "
                f"({n} timing run{'s' if n > 1 else ''})", claims.all_of([costs, folded]),
                f"train − 1: {costs.spread(digits=2)}; {FOLDED_MAX:g} − folded: {folded.spread(digits=2)}",
                source=f"{SOURCE}; student project (Higgs)",
                theirs=f"student: train ×{student['train']:.2f}, inference ×{student['inference']:.2f}")


def step_ratios(wd, cfg: PracticeConfig, net: str = "bn") -> np.ndarray:
    """Return per seed the weight-decay record ``wd``'s late relative step of network ``net``
    ("bn", "none") with weight decay over that without (medians over the second half of training)."""
    late = [np.median(wd[f"{net}/{w:g}/rel_step"][:, wd[f"{net}/{w:g}/rel_step"].shape[1] // 2:], axis=1)
            for w in (0.0, cfg.weight_decay)]
    return late[1] / late[0]


def _finetune_row(ft, cfg: PracticeConfig) -> dict:
    """When fine-tuning with tiny batches, freeze BN: frozen − training-mode accuracy at the smallest
    fine-tuning batch, per seed (diverged = 0), both networks scored against guessing among the new
    digits (:func:`.finetune.chance`)."""
    b, chance = cfg.ft_batch_sizes[0], finetune.chance(cfg)
    frozen = np.nan_to_num(ft[f"{b}/frozen/acc"][:, -1], nan=0.0)
    trained = np.nan_to_num(ft[f"{b}/train/acc"][:, -1], nan=0.0)
    n_new = finetune.n_test_new(cfg)
    text = f"when fine-tuning with tiny batches, freeze BN (frozen − training-mode accuracy after fine-tuning at batch {b} > 0)"
    ours = f"{frozen.mean():.3f} frozen vs {trained.mean():.3f} in training mode (diverged = 0)"
    if not _learned(frozen, trained, chance=chance):
        return _row(text, ours + f" (frozen or training-mode BN did not learn the new digits: chance {chance:g})",
                    claims.NOT_COMPARABLE)
    fv = finetune.frozen_vs_train(ft, cfg)[b]
    ours += f"; frozen lower in {fv['frozen_below']} of {len(fv['seeds'])} seeds"
    if fv["at_chance"]:
        ours += (f"; frozen never rose above chance ({chance:g}) in seed{'s' * (len(fv['at_chance']) > 1)} "
                 f"{', '.join(str(s) for s in fv['at_chance'])}")
    d = _with_test_set(claims.paired(frozen - trained), _test_se([frozen.mean(), trained.mean()], n_new))
    return _row(text, ours, d, _pts(d) + f" (seeds and about {n_new:,} test images)")


def claim_rows(rec: dict, cfg: PracticeConfig) -> list[dict]:
    """Return all of chapter 09's claims in :func:`bn_utils.book.claims.row`'s shape from the records
    ``rec`` (keys: batch_sweep, placement, dropout, initialisation, ga_search, cost, weight_decay,
    finetune), with their extra records stored so far (:func:`.experiment.load_extra`)."""
    extra = load_extra(cfg)
    rows = _small_batch_rows(rec, extra, cfg)
    rows.append(_placement_row(rec, extra, cfg))
    # dropout: mean |log(test var / running var)| over the BN layers, per seed
    drop = rec["dropout"]
    shift = {p: np.mean(np.abs(np.log(drop[f"{p}/shift"])), axis=1) for p in models.DROPOUT_PLACES}
    d = claims.paired(shift["before_bn"] - shift["last_only"])
    ours = ", ".join(f"{label} {shift[p].mean():.3f}" for p, label in
                     (("before_bn", "before BN"), ("last_only", "last only"), ("none", "none")))
    rows.append(_row("dropout before BN shifts the variance BN sees at test time; dropout after the last BN "
                     "does not (mean |log(test var / running var)| larger with dropout before BN)",
                     f"mean |log ratio|: {ours}", d, d.spread(digits=3)))
    # initialisation: spread of final accuracy over the weight scales, per seed (diverged = 0)
    init = rec["initialisation"]
    final = {n: np.nan_to_num(np.array([init[f"{n}/{s:g}/acc"][:, -1] for s in cfg.init_scales]), nan=0.0)
             for n in ("none", "bn")}                           # (scale, seed)
    spread = {n: np.ptp(v, axis=0) for n, v in final.items()}
    ends = [v.mean(1)[k] for v in final.values() for k in (v.mean(1).argmax(), v.mean(1).argmin())]
    d = _with_test_set(claims.paired(spread["none"] - spread["bn"]), _test_se(ends, cfg.n_test))
    rows.append(_row("BN makes training less sensitive to the scale of the initial weights (spread of final "
                     f"accuracy over weight scales {', '.join(f'{s:g}' for s in cfg.init_scales)}, diverged = 0: "
                     "BN < no BN)", f"each seed's spread, mean: BN {spread['bn'].mean():.3f}, no BN {spread['none'].mean():.3f}",
                     d, _pts(d) + f" (seeds and {cfg.n_test:,} test images)"))
    rows.append(_ga_row(rec, extra, cfg))
    rows.append(_cost_row(rec, extra, cfg))
    # weight decay on the BN network's scale-invariant weights, per seed
    wd = rec["weight_decay"]
    k0, k1 = "bn/0", f"bn/{cfg.weight_decay:g}"
    norm = {k: wd[f"{k}/norm"][:, -1] for k in (k0, k1)}
    ratio = {net: step_ratios(wd, cfg, net) for net in ("bn", "none")}
    smaller, larger = claims.paired(norm[k0] - norm[k1]), claims.paired(np.log(ratio["bn"]))
    text = ("with BN, weight decay shrinks the weights and so raises the effective step size (BN net: ‖W‖ "
            "smaller and ‖ΔW‖/‖W‖ larger with weight decay than without)")
    geo = {net: float(np.exp(np.mean(np.log(v)))) for net, v in ratio.items()}
    ours = (f"‖W‖ {norm[k1].mean():.2f} vs {norm[k0].mean():.2f}; each seed's step ratio, geometric mean "
            f"{geo['bn']:.2f} (no-BN net: {geo['none']:.2f})")
    if not _learned(wd[f"{k0}/test_accuracy"], wd[f"{k1}/test_accuracy"]):
        rows.append(_row(text, ours + " (a BN net did not learn)", claims.NOT_COMPARABLE))
    else:
        rows.append(_row(text, ours, claims.all_of([smaller, larger]),
                         f"‖W‖ without − with: {smaller.spread(digits=2)}; ln step ratio: {larger.spread(digits=2)}"))
    rows.append(_finetune_row(rec["finetune"], cfg))
    return rows


def student_deviations(cfg: PracticeConfig) -> list[str]:
    """Return how our GA search and timing differ from the student project's."""
    s, net = ga_search.STUDENT_SEARCH, STUDENT_MLP
    layers = f"{net['hidden_layers']}×{net['hidden_width']}"
    return [
        "data: MNIST (10 classes, images) instead of Higgs (2 classes, 28 tabular features), which is not available offline",
        f"network: 4 hidden ReLU layers of {cfg.ga_width} (student: {layers}; activation not stated, ReLU assumed)",
        f"search: {cfg.ga_generations} generations of {cfg.ga_population}; the best {cfg.ga_keep} survive and the "
        f"others are their copies with Gaussian noise of std {cfg.ga_mutation_std:g} on ln LR and ln L2, inside "
        f"log10 LR {_interval(cfg.ga_log10_lr)} and log10 L2 {_interval(cfg.ga_log10_l2)}; the answer is the best "
        f"network trained (student: {s['generations']} generations of {s['models']} new models drawn at random "
        f"between bounds, [{s['log10_low']:g}, {s['log10_high']:g}] in log10 for both at first, reset each generation "
        f"to the mean ± {s['std_factor']:g} std of the best {s['top']} in log10; the answer is 10^(midpoint of the "
        "last bounds), trained once more)",
        f"training per candidate: {cfg.ga_steps} plain-SGD steps at batch {cfg.ga_batch}; L2 is SGD weight decay "
        f"(student: {s['epochs']} epochs per model; the optimiser is not named beyond gradient descent)",
        "fitness: accuracy on a held-out sixth of the training subset; the test accuracy of the best candidate is reported",
        f"timing: MLP 4×{cfg.cost_width} at batch {cfg.cost_batch} (student: {layers} at {net['batch']}), on the "
        "device the timing record names, medians of alternating repetitions",
    ]


def _interval(bounds) -> str:
    return f"[{bounds[0]:g}, {bounds[1]:g}]"

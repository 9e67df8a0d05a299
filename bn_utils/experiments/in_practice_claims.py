"""Chapter 09: the practitioner's claims about BN, each beside what this chapter measured.

Every row is computed from the experiments' records with a stated test; "holds?" is that test's
answer at the scale of the record (profile and seeds in the chapter's captions), not a verdict
on the claim in general.
"""

from __future__ import annotations

import math

import numpy as np

from . import in_practice as P
from . import in_practice_batch as B
from . import in_practice_cost as C
from . import in_practice_finetune as F
from . import in_practice_mlp as M
from . import in_practice_search as S


def _yes(ok: bool) -> str:
    return "yes" if ok else "no"


def claims(rec: dict, cfg: P.PracticeConfig) -> list[dict]:
    """Return rows {claim, test, measured, holds?} from the records ``rec`` (keys: batch_sweep,
    placement, dropout, initialisation, ga_search, cost, weight_decay, finetune)."""
    rows = []
    s = B.summary(rec["batch_sweep"], cfg)
    gap = B.mode_gap(rec["batch_sweep"], cfg)
    rows.append({"claim": "BN uses batch statistics in training and running averages at test time; "
                          "with small batches the two disagree",
                 "test": f"|train-mode − eval-mode accuracy| larger at batch {gap['small_batch']} than at {gap['large_batch']}",
                 "measured": f"{abs(gap['small']):.3f} vs {abs(gap['large']):.3f}",
                 "holds?": _yes(abs(gap["small"]) > abs(gap["large"]))})
    drop = {n: float(v["eval"][-1] - v["eval"][0]) for n, v in s.items()}
    indep = [n for n in ("ln", "gn") if n in drop]
    rows.append({"claim": "BN loses more accuracy at tiny batches than batch-independent layers",
                 "test": f"BN's drop from batch {cfg.batch_sizes[-1]} to {cfg.batch_sizes[0]} > LayerNorm's and GroupNorm's",
                 "measured": ", ".join(f"{B.LABELS[n]} {drop[n]:.3f}" for n in ["bn", *indep]),
                 "holds?": _yes(all(drop["bn"] > drop[n] for n in indep))})
    if "brn" in s:
        d = float(s["brn"]["eval"][0] - s["bn"]["eval"][0])
        rows.append({"claim": "Batch Renormalization recovers accuracy that BN loses at small batches",
                     "test": f"Batch Renorm − BN accuracy at batch {cfg.batch_sizes[0]} > 0",
                     "measured": f"{d:+.3f}", "holds?": _yes(d > 0)})
    pl = rec["placement"]
    diffs = {a: M.last(pl, f"{a}/before") - M.last(pl, f"{a}/after") for a in ("relu", "sigmoid")}
    rows.append({"claim": "BN before or after the nonlinearity makes little difference",
                 "test": "|before − after| final accuracy < 0.02 for ReLU and sigmoid",
                 "measured": ", ".join(f"{a} {v:+.3f}" for a, v in diffs.items()),
                 "holds?": _yes(all(abs(v) < 0.02 for v in diffs.values()))})
    shift = {p: float(np.mean(np.abs(np.log(rec["dropout"][f"{p}/shift"])))) for p in M.DROPOUT_RUNS}
    rows.append({"claim": "dropout before BN shifts the variance BN sees at test time; dropout after "
                          "the last BN does not",
                 "test": "mean |log(test var / running var)| larger with dropout before BN than after the last BN",
                 "measured": f"before BN {shift['before_bn']:.3f}, last only {shift['last_only']:.3f}, none {shift['none']:.3f}",
                 "holds?": _yes(shift["before_bn"] > shift["last_only"])})
    init = rec["initialisation"]
    # a diverged run counts as accuracy 0: the most sensitive outcome there is
    spread = {n: float(np.ptp(np.nan_to_num([M.last(init, f"{n}/{sc:g}") for sc in cfg.init_scales])))
              for n in ("none", "bn")}
    rows.append({"claim": "BN makes training less sensitive to the scale of the initial weights",
                 "test": f"spread of final accuracy over weight scales {', '.join(f'{s:g}' for s in cfg.init_scales)} "
                         "(diverged = 0): BN < no BN",
                 "measured": f"BN {spread['bn']:.3f}, no BN {spread['none']:.3f}",
                 "holds?": _yes(spread["bn"] < spread["none"])})
    ga = rec["ga_search"]
    ratio = float(ga["bn/best_lr"]) / float(ga["none/best_lr"])
    rows.append({"claim": "BN allows (and its best setting uses) a larger learning rate",
                 "test": "GA's best LR with BN / without > 1",
                 "measured": f"{float(ga['bn/best_lr']):.3g} / {float(ga['none/best_lr']):.3g} = {ratio:.2f}",
                 "holds?": _yes(ratio > 1)})
    r = C.ratios(rec["cost"])["MLP"]
    rows.append({"claim": "BN costs time in training and at inference; folding it into the layer "
                          "before removes the inference cost",
                 "test": "MLP: BN/no-BN train ratio > 1 and folded/no-BN inference ratio < 1.1",
                 "measured": f"train {r['train']:.2f}, inference {r['inference']:.2f}, folded {r['folded inference']:.2f}",
                 "holds?": _yes(r["train"] > 1 and r["folded inference"] < 1.1)})
    wd = M.wd_summary(rec["weight_decay"], cfg)
    k0, k1 = "bn/0", f"bn/{cfg.weight_decay:g}"
    step_ratio = wd[k1]["‖ΔW‖/‖W‖ (late median)"] / wd[k0]["‖ΔW‖/‖W‖ (late median)"]
    rows.append({"claim": "with BN, weight decay shrinks the weights and so raises the effective step size",
                 "test": "BN net: ‖W‖ smaller and ‖ΔW‖/‖W‖ larger with weight decay than without",
                 "measured": f"‖W‖ {wd[k1]['final ‖W‖']:.2f} vs {wd[k0]['final ‖W‖']:.2f}; step ratio {step_ratio:.2f}",
                 "holds?": _yes(wd[k1]["final ‖W‖"] < wd[k0]["final ‖W‖"] and step_ratio > 1)})
    ft = rec["finetune"]
    b = cfg.ft_batch_sizes[0]
    d = float(np.nanmean(ft[f"{b}/frozen/acc"][:, -1]) - np.nanmean(ft[f"{b}/train/acc"][:, -1]))
    rows.append({"claim": "when fine-tuning with tiny batches, freeze BN (use its running statistics)",
                 "test": f"frozen − training-mode accuracy after fine-tuning at batch {b} > 0",
                 "measured": f"{d:+.3f}" if math.isfinite(d) else "diverged",
                 "holds?": _yes(math.isfinite(d) and d > 0)})
    return rows


def student_deviations(cfg: P.PracticeConfig) -> list[str]:
    """Return how our GA search and timing differ from the student project's."""
    s, net = S.STUDENT_SEARCH, P.STUDENT_MLP
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
        f"timing: MLP 4×{cfg.cost_width} at batch {cfg.cost_batch} (student: {layers} at {net['batch']}), on this run's "
        "device, medians of alternating repetitions",
    ]


def _interval(bounds) -> str:
    return f"[{bounds[0]:g}, {bounds[1]:g}]"

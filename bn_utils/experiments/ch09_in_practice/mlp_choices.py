"""Chapter 09, experiments 3-5 and 8 on an MLP: BN's placement, dropout before or after BN,
the scale of the initial weights, and weight decay on scale-invariant weights."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...nn import models
from ...book import results
from ... import data
from .config import PracticeConfig
from .training import final_accuracy, fit, seeded, test_eval

PLACEMENT_RUNS = [(act, place) for act in ("relu", "sigmoid") for place in ("none", "before", "after")]
DROPOUT_LABELS = {"none": "no dropout", "before_bn": "before each BN", "after_bn": "after each hidden block",
                  "last_only": "last hidden layer only"}


def _widths(cfg: PracticeConfig) -> list[int]:
    return [784] + [cfg.mlp_width] * cfg.mlp_depth + [10]


def _curves(cfg: PracticeConfig, make, **fit_kwargs) -> dict:
    """Train ``make()`` once per seed; return {"steps", "acc" (seeds, evals), "loss_steps", "loss"}."""
    x_tr, y_tr, x_te, y_te = data.mnist(cfg, flatten=True)
    steps = cfg.mlp_steps
    eval_steps = sorted({*range(0, steps, cfg.eval_every), steps})
    log = max(1, min(50, steps // 5))
    loss_steps = sorted({*range(log, steps + 1, log), steps})
    acc, loss, models = [], [], []
    for seed in cfg.seeds:
        model = seeded(seed, make)
        kwargs = {"steps": steps, "batch_size": cfg.mlp_batch, "lr": cfg.mlp_lr, **fit_kwargs}
        h = fit(model, x_tr, y_tr, seed=seed, eval_fn=test_eval(x_te, y_te),
                  eval_every=cfg.eval_every, **kwargs)
        a, lv = h.evals["test_accuracy"], h.loss   # a diverged run stops early: pad with NaN
        acc.append(a + [np.nan] * (len(eval_steps) - len(a)))
        loss.append(lv + [np.nan] * (len(loss_steps) - len(lv)))
        models.append(model)
    return {"steps": np.asarray(eval_steps), "acc": np.asarray(acc), "loss_steps": np.asarray(loss_steps),
            "loss": np.asarray(loss), "models": models}


# ---------------------------------------------------------------------------------------------
# 3. placement, 4. dropout, 5. initialisation


def placement(cfg: PracticeConfig) -> dict:
    """Return test-accuracy curves of the MLP without BN, with BN before and after the
    nonlinearity, for ReLU and sigmoid."""
    out = {}
    for act, place in PLACEMENT_RUNS:
        c = _curves(cfg, lambda: models.mlp(_widths(cfg), activation_name=act, norm="none" if place == "none" else "bn",
                                              placement="before" if place == "none" else place))
        out[f"{act}/{place}/steps"], out[f"{act}/{place}/acc"] = c["steps"], c["acc"]
    return out


def bn_variance_shift(model: nn.Module, x: torch.Tensor) -> list[float]:
    """Return, per BN layer, mean over units of (variance of its input in eval mode on x) /
    (its running variance): 1 when the statistics BN uses at test time fit what it sees."""
    bns = models.bn_layers(model)
    seen: dict = {}
    handles = [bn.register_forward_pre_hook(lambda mod, inp, i=i: seen.__setitem__(i, inp[0]))
               for i, bn in enumerate(bns)]
    was = model.training
    model.eval()
    with torch.inference_mode():
        model(x)
    model.train(was)
    for h in handles:
        h.remove()
    return [float((seen[i].var(0) / bn.running_var).mean()) for i, bn in enumerate(bns)]


def dropout(cfg: PracticeConfig) -> dict:
    """Return per dropout placement: accuracy curves and the variance shift of every BN layer."""
    _, _, x_te, _ = data.mnist(cfg, flatten=True)
    out = {}
    for place in models.DROPOUT_PLACES:
        c = _curves(cfg, lambda: models.mlp(_widths(cfg), activation_name="relu", norm="bn",
                                            dropout=cfg.dropout, dropout_place=place))
        out[f"{place}/steps"], out[f"{place}/acc"] = c["steps"], c["acc"]
        out[f"{place}/shift"] = np.asarray([bn_variance_shift(m, x_te) for m in c["models"]])
    return out


def initialisation(cfg: PracticeConfig) -> dict:
    """Return train-loss and accuracy curves for every initial weight scale, with and without BN."""
    out = {}
    for bn in (False, True):
        for scale in cfg.init_scales:
            c = _curves(cfg, lambda: models.mlp(_widths(cfg), activation_name="relu",
                                                norm="bn" if bn else "none", init_scale=scale))
            key = f"{'bn' if bn else 'none'}/{scale:g}"
            out[f"{key}/loss_steps"], out[f"{key}/loss"] = c["loss_steps"], c["loss"]
            out[f"{key}/steps"], out[f"{key}/acc"] = c["steps"], c["acc"]
    return out


# ---------------------------------------------------------------------------------------------
# 8. weight decay on scale-invariant weights


def weight_decay(cfg: PracticeConfig) -> dict:
    """Return, with and without BN and with and without weight decay, the norm of the second
    hidden layer's weights and its relative step ||dW|| / ||W|| along training (plain SGD)."""
    out = {}
    every = max(1, cfg.mlp_steps // 30)
    for bn in (True, False):
        for wd in (0.0, cfg.weight_decay):
            norms, rel, steps, acc = [], [], [], []
            for seed in cfg.seeds:
                model = seeded(seed, lambda: models.mlp(_widths(cfg), activation_name="relu",
                                                             norm="bn" if bn else "none"))
                layer = [m for m in model if isinstance(m, nn.Linear)][1]
                prev: dict = {}

                def hook(step, m, x, y, layer=layer, prev=prev):
                    w = layer.weight.detach().clone()
                    last = prev.get("w")
                    prev["w"] = w
                    if step % every == 0 and last is not None:
                        return {"norm": float(w.norm()), "rel_step": float((w - last).norm() / last.norm())}
                    return None
                x_tr, y_tr, x_te, y_te = data.mnist(cfg, flatten=True)
                h = fit(model, x_tr, y_tr, steps=cfg.mlp_steps, batch_size=cfg.mlp_batch, lr=cfg.wd_lr,
                          seed=seed, momentum=0.0, weight_decay=wd, eval_fn=test_eval(x_te, y_te),
                          hooks=hook)
                norms.append(h.measures.get("norm", []))
                rel.append(h.measures.get("rel_step", []))
                steps, acc = h.measure_step, acc + [final_accuracy(h)]
            key = f"{'bn' if bn else 'none'}/{wd:g}"
            n = min(len(v) for v in norms)
            out[f"{key}/steps"] = np.asarray(steps[:n])
            out[f"{key}/norm"] = np.asarray([v[:n] for v in norms])
            out[f"{key}/rel_step"] = np.asarray([v[:n] for v in rel])
            out[f"{key}/test_accuracy"] = float(np.nanmean(acc))
    return out


def last(record: results.Record, key: str) -> float:
    """Return the final accuracy of curve ``key`` averaged over seeds (NaN if any diverged)."""
    return float(np.mean(record[f"{key}/acc"][:, -1]))


def dropout_table(record: results.Record) -> list[dict]:
    """Return per dropout placement: final accuracy and the variance ratio of every BN layer."""
    rows = []
    for place in models.DROPOUT_PLACES:
        shift = record[f"{place}/shift"].mean(0)
        row = {"dropout": DROPOUT_LABELS.get(place, place), "test accuracy": last(record, place)}
        row.update({f"BN {i + 1}: test var / running var": float(s) for i, s in enumerate(shift)})
        rows.append(row)
    return rows


def init_table(record: results.Record, cfg: PracticeConfig) -> list[dict]:
    """Return per network and initial scale: final test accuracy."""
    return [{"network": "BN" if net == "bn" else "no BN",
             **{f"× {s:g}": last(record, f"{net}/{s:g}") for s in cfg.init_scales}}
            for net in ("none", "bn")]


def wd_summary(record: results.Record, cfg: PracticeConfig) -> dict:
    """Return per run (``"bn/0"``, ``"none/0.01"``, ...): final weight norm, median relative
    step over the second half, accuracy."""
    out = {}
    for net in ("bn", "none"):
        for wd in (0.0, cfg.weight_decay):
            key = f"{net}/{wd:g}"
            rel = record[f"{key}/rel_step"]
            out[key] = {"final ‖W‖": float(record[f"{key}/norm"][:, -1].mean()),
                        "‖ΔW‖/‖W‖ (late median)": float(np.median(rel[:, rel.shape[1] // 2:])),
                        "test accuracy": float(record[f"{key}/test_accuracy"])}
    return out


def wd_table(summary: dict) -> dict:
    """Return :func:`wd_summary` keyed by readable row names: "BN, weight decay 0.01"."""
    def name(key: str) -> str:
        net, wd = key.split("/")
        return f"{'BN' if net == 'bn' else 'no BN'}, weight decay {float(wd):g}"
    return {name(k): v for k, v in summary.items()}

"""Chapter 09, experiments 3-5 and 8 on an MLP: BN's placement, dropout before or after BN,
the scale of the initial weights, and weight decay on scale-invariant weights."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...nn import models
from ...book import plotting, results
from ...book.page import how_many
from ... import runtime
from .config import CHAPTER, PracticeConfig
from .training import final_accuracy, fit, mnist, seeded, test_eval

PLACEMENT_RUNS = [(act, place) for act in ("relu", "sigmoid") for place in ("none", "before", "after")]
DROPOUT_LABELS = {"none": "no dropout", "before_bn": "before each BN", "after_bn": "after each hidden block",
                  "last_only": "last hidden layer only"}


def _widths(cfg: PracticeConfig) -> list[int]:
    return [784] + [cfg.mlp_width] * cfg.mlp_depth + [10]


def _curves(cfg: PracticeConfig, make, **fit_kwargs) -> dict:
    """Train ``make()`` once per seed; return {"steps", "acc" (seeds, evals), "loss_steps", "loss"}."""
    x_tr, y_tr, x_te, y_te = mnist(cfg, flatten=True)
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
    _, _, x_te, _ = mnist(cfg, flatten=True)
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
                x_tr, y_tr, x_te, y_te = mnist(cfg, flatten=True)
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


def run(cfg: PracticeConfig, name: str) -> results.Record:
    """Return the record of one MLP experiment: ``placement``, ``dropout``, ``initialisation``
    or ``weight_decay`` (stored, or trained now)."""
    fns = {"placement": placement, "dropout": dropout, "initialisation": initialisation,
           "weight_decay": weight_decay}
    if name not in fns:
        raise ValueError(f"unknown MLP experiment {name!r}; choose one of {', '.join(fns)}")
    with runtime.cpu_threads(cfg.cpu_threads):
        return results.load_or_run(CHAPTER, name, cfg, fns[name], prefer_stored=True)


# ---------------------------------------------------------------------------------------------
# Figures and numbers


def last(record: results.Record, key: str) -> float:
    """Return the final accuracy of curve ``key`` averaged over seeds (NaN if any diverged)."""
    return float(np.mean(record[f"{key}/acc"][:, -1]))


def _note(cfg: PracticeConfig, what: str, steps: int | None = None, lr: float | None = None) -> str:
    return (f"MLP of {cfg.mlp_depth} hidden layers of {cfg.mlp_width} units, {what}, "
            f"{steps or cfg.mlp_steps:,} SGD steps (batch {cfg.mlp_batch}, learning rate "
            f"{lr or cfg.mlp_lr:g}) on {cfg.n_train:,} MNIST images, scored on {cfg.n_test:,} test "
            f"images; band: mean ± std over {how_many(len(cfg.seeds), 'seed')}.")


PLACE_STYLE = {"none": ("no BN", plotting.PALETTE["no_bn"]),
               "before": ("BN before the nonlinearity", plotting.PALETTE["bn"]),
               "after": ("BN after it", plotting.series_colors(1)[0])}


def plot_placement(record: results.Record, cfg: PracticeConfig):
    """Figure (experiment 3): test accuracy along training, BN before/after the nonlinearity."""
    fig, axes = plotting.panels(2, height=3.0, sharey=True)
    for ax, act in zip(axes, ("relu", "sigmoid")):
        for place, (label, colour) in PLACE_STYLE.items():
            plotting.band(ax, record[f"{act}/{place}/steps"], record[f"{act}/{place}/acc"], label=label,
                          color=colour)
            ax.lines[-1].set_linestyle("--" if place == "after" else "-")
        plotting.label(ax, title=f"{'ReLU' if act == 'relu' else 'sigmoid'} units", xlabel="SGD step",
                       ylabel="test accuracy", legend=False)
    plotting.legend_below(fig, axes, ncols=3)
    plotting.note(fig, _note(cfg, "with ReLU or sigmoid units"))
    return fig


def dropout_table(record: results.Record) -> list[dict]:
    """Return per dropout placement: final accuracy and the variance ratio of every BN layer."""
    rows = []
    for place in models.DROPOUT_PLACES:
        shift = record[f"{place}/shift"].mean(0)
        row = {"dropout": DROPOUT_LABELS.get(place, place), "test accuracy": last(record, place)}
        row.update({f"BN {i + 1}: test var / running var": float(s) for i, s in enumerate(shift)})
        rows.append(row)
    return rows


def plot_initialisation(record: results.Record, cfg: PracticeConfig):
    """Figure (experiment 5): training loss for each initial weight scale, without and with BN."""
    from matplotlib.ticker import LogLocator, NullFormatter

    fig, axes = plotting.panels(2, height=3.0, sharey=True)
    colors = plotting.series_colors(len(cfg.init_scales))
    for ax, net in zip(axes, ("none", "bn")):
        for scale, colour in zip(cfg.init_scales, colors):
            key = f"{net}/{scale:g}"
            plotting.band(ax, record[f"{key}/loss_steps"], record[f"{key}/loss"],
                          label=f"weights × {scale:g}", color=colour)
        ax.set_yscale("log")   # a diverging run spans many decades: ticks at powers of ten
        ax.yaxis.set_major_locator(LogLocator(base=10, numticks=6))
        ax.yaxis.set_minor_formatter(NullFormatter())
        plotting.label(ax, title="with BN" if net == "bn" else "without BN", xlabel="SGD step",
                       ylabel="training loss", legend=False)
    plotting.legend_below(fig, axes, ncols=len(cfg.init_scales))
    plotting.note(fig, _note(cfg, "ReLU units, without and with BN")
                  + " Training loss: the mean over each logging interval.")
    return fig


def init_table(record: results.Record, cfg: PracticeConfig) -> list[dict]:
    """Return per network and initial scale: final test accuracy."""
    return [{"network": "BN" if net == "bn" else "no BN",
             **{f"× {s:g}": last(record, f"{net}/{s:g}") for s in cfg.init_scales}}
            for net in ("none", "bn")]


def plot_weight_decay(record: results.Record, cfg: PracticeConfig):
    """Figure (experiment 8): weight norm and relative step of a hidden layer, with and without
    weight decay, with and without BN (BN red, no BN teal; with weight decay dashed)."""
    fig, axes = plotting.panels(2, height=3.0)
    for net in ("bn", "none"):
        colour = plotting.PALETTE["bn" if net == "bn" else "no_bn"]
        for wd in (0.0, cfg.weight_decay):
            key = f"{net}/{wd:g}"
            label = f"{'BN' if net == 'bn' else 'no BN'}, weight decay {wd:g}"
            for ax, what in zip(axes, ("norm", "rel_step")):
                plotting.band(ax, record[f"{key}/steps"], record[f"{key}/{what}"], label=label, color=colour)
                ax.lines[-1].set_linestyle("--" if wd else "-")
    axes[1].set_yscale("log")
    plotting.plain_log_ticks(axes[1])
    plotting.label(axes[0], title="Norm of layer 2's weights", xlabel="SGD step",
                   ylabel="‖W‖ (Frobenius)", legend=False)
    plotting.label(axes[1], title="Relative step", xlabel="SGD step", ylabel="‖ΔW‖ / ‖W‖ per step",
                   legend=False)
    plotting.legend_below(fig, axes, ncols=2)
    plotting.note(fig, _note(cfg, "ReLU units, without and with BN, plain SGD (no momentum)", lr=cfg.wd_lr)
                  + " Layer 2: the second hidden layer.")
    return fig


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


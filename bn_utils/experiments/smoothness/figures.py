"""Chapter 08's figures: the landscape along training (the paper's Figs. 4, 10-13), the gradient
change against the step size, the training curves and the larger learning rate."""

from __future__ import annotations

import numpy as np

from ... import plotting, results
from .. import santurkar as S
from .experiment import PAPER_NETS, SmoothnessConfig, record_lr, record_norms


def _what(record: results.Record, arch: str) -> str:
    c = record.config
    if arch == "vgg":
        return f"{c['vgg']} × width {c['width']:g} on {c['n_train']} CIFAR-10 images, batch {c['batch_size']}"
    return f"{c['dln_depth']}-layer linear network of width {c['dln_width']}, full batch of {c['dln_examples']}"


def plot_landscape(record: results.Record, arch: str = "vgg", norms: tuple | None = None):
    """Figure (the paper's Figs. 4, 10, 12, 13): over training, (a) the range of the loss along
    the gradient direction, (b) the range of the gradient change ("gradient predictiveness"),
    (c) the effective beta-smoothness; one colour per network (range: min–max over step sizes,
    averaged over seeds)."""
    import matplotlib.pyplot as plt

    runs, lr = S.unpack(record), record_lr(record, arch)
    norms = norms or PAPER_NETS
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.9))
    for norm in norms:
        members = [m for m in S.seeds_of(runs, S.group(arch, norm, lr)) if "ls_losses" in m]
        if not members:
            continue
        color, label = S.COLORS[norm], S.LABELS[norm]
        for ax, key in zip(axes[:2], ("ls_losses", "ls_grad_diffs")):
            lo = [{"v": np.nanmin(np.asarray(m[key], float), 1), "s": m["measure_step"]} for m in members]
            hi = [{"v": np.nanmax(np.asarray(m[key], float), 1), "s": m["measure_step"]} for m in members]
            x, ylo = S.stacked(lo, "v", "s")
            _, yhi = S.stacked(hi, "v", "s")
            ax.fill_between(x, np.nanmean(ylo, 0), np.nanmean(yhi, 0), color=color, alpha=0.3, lw=0)
            ax.plot(x, np.nanmean(ylo, 0), color=color, lw=0.8)
            ax.plot(x, np.nanmean(yhi, 0), color=color, lw=0.8, label=label)
        S.plot_curve(axes[2], runs, S.group(arch, norm, lr), "ls_beta", "measure_step", label=label, color=color)
    c = record.config
    lo_hi = c["step_range"] if arch == "vgg" else c["dln_step_range"]
    plotting.label(axes[0], title="(a) loss landscape: loss along the gradient", xlabel="training step",
                   ylabel="loss (min–max over step sizes)")
    plotting.label(axes[1], title="(b) gradient predictiveness", xlabel="training step",
                   ylabel="‖∇L(x − ηg) − ∇L(x)‖₂ (min–max)")
    plotting.label(axes[2], title="(c) effective β-smoothness", xlabel="training step",
                   ylabel="max_η ‖∇L(x − ηg) − g‖ / ‖ηg‖")
    for ax in axes:
        ax.set_yscale("log")
    plotting.caption(fig, f"{arch.upper()}: {_what(record, arch)}, LR {lr:g}; η from {lo_hi[0]:g} to "
                          f"{lo_hi[1]:g} × LR ({c['n_step_sizes']} sizes). Source: {record.caption()}")
    fig.tight_layout()
    return fig


def plot_step_profile(record: results.Record, arch: str = "vgg", seed: int | None = None):
    """Figure (the paper's Fig. 11): the gradient change ‖∇L(x − ηg) − ∇L(x)‖ against the step
    size η, at every measured training step (colour: early to late), without and with BN."""
    import matplotlib.pyplot as plt
    from matplotlib import cm

    runs, lr = S.unpack(record), record_lr(record, arch)
    seed = record.config["seeds"][0] if seed is None else seed
    cfg = SmoothnessConfig.from_record(record)
    eta = cfg.step_sizes(arch)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    for ax, norm in zip(axes, PAPER_NETS):
        r = runs.get(S.group(arch, norm, lr) + f"_s{seed}", {})
        diffs = np.asarray(r.get("ls_grad_diffs", np.zeros((0, len(eta)))), float)
        steps = np.asarray(r.get("measure_step", []))[: len(diffs)]
        for i, (step, row) in enumerate(zip(steps, diffs)):
            ax.plot(eta, row, color=cm.viridis(i / max(1, len(diffs) - 1)), marker=".",
                    label=f"step {step}" if i in (0, len(diffs) - 1) else None)
        ax.set_xscale("log"), ax.set_yscale("log")
        plotting.label(ax, title=f"{arch.upper()}, {S.LABELS[norm]}", xlabel="step size η along the gradient",
                       ylabel="‖∇L(x − ηg) − ∇L(x)‖₂")
    plotting.caption(fig, f"{_what(record, arch)}, LR {lr:g}; seed {seed}. Source: {record.caption()}")
    fig.tight_layout()
    return fig


def plot_training(record: results.Record):
    """Figure (the paper's Fig. 5): VGG training and test accuracy and DLN training loss for
    every normalisation."""
    import matplotlib.pyplot as plt

    runs = S.unpack(record)
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.9))
    for norm in record_norms(record, "vgg"):
        for ax, key in zip(axes[:2], ("train_accuracy", "test_accuracy")):
            S.plot_curve(ax, runs, S.group("vgg", norm, record.config["lr"]), key, "eval_step",
                         label=S.LABELS[norm], color=S.COLORS[norm])
    for norm in record_norms(record, "dln"):
        S.plot_curve(axes[2], runs, S.group("dln", norm, record.config["dln_lr"]), "loss", "loss_step",
                     label=S.LABELS[norm], color=S.COLORS[norm])
    plotting.label(axes[0], title=f"VGG training accuracy, LR {record.config['lr']:g}",
                   xlabel="training step", ylabel="training accuracy (fraction)")
    plotting.label(axes[1], title="VGG test accuracy", xlabel="training step", ylabel="test accuracy (fraction)")
    plotting.label(axes[2], title=f"DLN training loss, LR {record.config['dln_lr']:g}",
                   xlabel="training step", ylabel="loss (sum of squares)")
    axes[2].set_yscale("log")
    plotting.caption(fig, f"VGG: {_what(record, 'vgg')}. DLN: {_what(record, 'dln')}. "
                          f"ℓp statistic per {record.config['lp_over']}. Source: {record.caption()}")
    fig.tight_layout()
    return fig


def plot_large_lr(record: results.Record):
    """Figure (the paper's Fig. 1): standard and BN VGGs at the two learning rates."""
    import matplotlib.pyplot as plt

    runs, c = S.unpack(record), record.config
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for lr, style in ((c["lr"], "-"), (c["large_lr"], "--")):
        for norm in PAPER_NETS:
            for ax, key in zip(axes, ("train_accuracy", "test_accuracy")):
                if S.plot_curve(ax, runs, S.group("vgg", norm, lr), key, "eval_step",
                                label=f"{S.LABELS[norm]}, LR {lr:g}", color=S.COLORS[norm]):
                    ax.lines[-1].set_linestyle(style)
    plotting.label(axes[0], title="VGG training accuracy", xlabel="training step", ylabel="training accuracy (fraction)")
    plotting.label(axes[1], title="VGG test accuracy", xlabel="training step", ylabel="test accuracy (fraction)")
    plotting.caption(fig, f"{_what(record, 'vgg')}. A run that diverged stops where its loss "
                          f"became infinite. Source: {record.caption()}")
    fig.tight_layout()
    return fig

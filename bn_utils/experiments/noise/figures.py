"""Chapter 07's figures: the four VGGs' accuracy, their layers' input distributions and how much
those move (the paper's Figs. 2 and 8), and gradient-based ICS (its Fig. 3)."""

from __future__ import annotations

import numpy as np

from ... import plotting, results
from .. import santurkar as S
from .experiment import ICS_NETS, NOISE_NETS
from .tables import moment_changes


ACCURACIES = {   # key in a run's record -> what it measures
    "train_batch_accuracy": "Training accuracy as trained (noise on, batches trained on)",
    "train_accuracy": "Training accuracy, evaluation mode (noise off)",
    "test_accuracy": "Test accuracy, evaluation mode",
}


def plot_training(record: results.Record):
    """Figure: accuracy of the four VGGs (standard, BN, noisy BN, standard + noise) at the first
    learning rate: as they train (noise on, on their training batches: the paper's training
    accuracy), in evaluation mode on training images (noise off), and on the test set."""
    import matplotlib.pyplot as plt

    runs, lr = S.unpack(record), record.config["vgg_lrs"][0]
    keys = [k for k in ACCURACIES if any(k in r for r in runs.values())]
    fig, axes = plt.subplots(1, len(keys), figsize=(5.2 * len(keys), 3.8), squeeze=False)
    for norm in NOISE_NETS:
        for ax, key in zip(axes[0], keys):
            S.plot_curve(ax, runs, S.group("vgg", norm, lr), key, "eval_step",
                         label=S.LABELS[norm], color=S.COLORS[norm])
    for ax, key in zip(axes[0], keys):
        plotting.label(ax, title=ACCURACIES[key], xlabel="training step", ylabel="accuracy (fraction)")
        ax.axhline(0.1, color="0.6", lw=0.8, ls=":")
    plotting.caption(fig, f"VGG on CIFAR-10, LR {lr:g}: {_arch(record)}; the first panel averages each "
                          f"network's own training batches since the previous point. Band: ± std over "
                          f"seeds. Source: {record.caption()}")
    fig.tight_layout()
    return fig


def _arch(record: results.Record) -> str:
    c = record.config
    return (f"{c['vgg']} × width {c['width']:g}, batch {c['batch_size']}, "
            f"{c['n_train']} training images")


def plot_distributions(record: results.Record, seed: int | None = None):
    """Figure: the distribution over a fixed batch (training mode, noise on) of one random unit's
    input to the ReLU, for each watched layer (rows) and network (columns), over training:
    median, 15-85th and 5-95th percentile bands."""
    import matplotlib.pyplot as plt

    runs, lr = S.unpack(record), record.config["vgg_lrs"][0]
    seed = record.config["seeds"][0] if seed is None else seed
    layers = record.config["watch_layers"]
    fig, axes = plt.subplots(len(layers), len(NOISE_NETS), figsize=(3.3 * len(NOISE_NETS), 2.5 * len(layers)),
                             squeeze=False)
    for col, norm in enumerate(NOISE_NETS):
        r = runs.get(S.group("vgg", norm, lr) + f"_s{seed}", {})
        for row, k in enumerate(layers):
            ax = axes[row, col]
            if f"act_pct_L{k}" not in r:
                ax.set_axis_off()
                continue
            steps, p = np.asarray(r["measure_step"])[: len(r[f"act_pct_L{k}"])], np.asarray(r[f"act_pct_L{k}"])
            color = S.COLORS[norm]
            ax.fill_between(steps, p[:, 0], p[:, 4], color=color, alpha=0.15, lw=0, label="5–95th pct")
            ax.fill_between(steps, p[:, 1], p[:, 3], color=color, alpha=0.35, lw=0, label="15–85th pct")
            ax.plot(steps, p[:, 2], color=color, lw=1.2, label="median")
            plotting.label(ax, title=f"{S.LABELS[norm]}, layer {k}", xlabel="training step",
                           ylabel="input to ReLU", legend=(row == 0 and col == 0))
    plotting.caption(fig, f"One random unit per layer (the same in every network), {record.config['batch_size']} "
                          f"fixed training images; each panel has its own scale. Seed {seed}. "
                          f"Source: {record.caption()}")
    fig.tight_layout()
    return fig



def plot_moment_changes(record: results.Record):
    """Figure (the paper's Fig. 8): per watched layer, the mean over units of |Δ mean| and
    |Δ variance| of the ReLU inputs between successive measurements."""
    import matplotlib.pyplot as plt

    runs, lr = S.unpack(record), record.config["vgg_lrs"][0]
    layers = record.config["watch_layers"]
    fig, axes = plt.subplots(2, len(layers), figsize=(4 * len(layers), 6.2), squeeze=False)
    for col, k in enumerate(layers):
        for norm in NOISE_NETS:
            members = [m for m in S.seeds_of(runs, S.group("vgg", norm, lr)) if f"act_mean_L{k}" in m]
            if not members:
                continue
            changes = [moment_changes(m, k) for m in members]
            for row, key in enumerate(("d_mean", "d_var")):
                x, ys = S.stacked(changes, key, "step")
                plotting.band(axes[row, col], x, ys, label=S.LABELS[norm], color=S.COLORS[norm])
        plotting.label(axes[0, col], title=f"Layer {k}: change of the mean", xlabel="training step",
                       ylabel="|μ(t+Δ) − μ(t)| (mean over units)", legend=col == 0)
        plotting.label(axes[1, col], title=f"Layer {k}: change of the variance", xlabel="training step",
                       ylabel="|σ²(t+Δ) − σ²(t)| (mean over units)", legend=False)
        for row in range(2):
            axes[row, col].set_yscale("log")
    every = record.config["measure_every"]
    plotting.caption(fig, f"Δ = {every} steps; inputs to the ReLU on a fixed batch in training mode. "
                          f"Source: {record.caption()}")
    fig.tight_layout()
    return fig



def plot_ics(record: results.Record, arch: str = "vgg"):
    """Figure (the paper's Fig. 3): per learning rate (columns), the training accuracy (VGG) or
    loss (DLN), then for each measured layer the ℓ2 difference and the cosine between G and G'."""
    import matplotlib.pyplot as plt

    runs = S.unpack(record)
    c = record.config
    lrs = c["vgg_lrs"] if arch == "vgg" else c["dln_lrs"]
    layers = c["ics_layers"] if arch == "vgg" else c["dln_ics_layers"]
    n_rows = 1 + 2 * len(layers)
    fig, axes = plt.subplots(n_rows, len(lrs), figsize=(5.2 * len(lrs), 2.3 * n_rows), squeeze=False,
                             sharex="col")
    for col, lr in enumerate(lrs):
        for norm in ICS_NETS:
            group, kw = S.group(arch, norm, lr), {"label": S.LABELS[norm], "color": S.COLORS[norm]}
            if arch == "vgg":
                S.plot_curve(axes[0, col], runs, group, "train_accuracy", "eval_step", **kw)
            else:
                S.plot_curve(axes[0, col], runs, group, "loss", "loss_step", **kw)
            for i, k in enumerate(layers):
                S.plot_curve(axes[1 + 2 * i, col], runs, group, f"ics_l2_L{k}", "measure_step", **kw)
                S.plot_curve(axes[2 + 2 * i, col], runs, group, f"ics_cos_L{k}", "measure_step", **kw)
        top = "training accuracy" if arch == "vgg" else "training loss (sum of squares)"
        plotting.label(axes[0, col], title=f"{arch.upper()}, LR {lr:g}", xlabel="", ylabel=top)
        if arch == "dln":
            axes[0, col].set_yscale("log")
        for i, k in enumerate(layers):
            plotting.label(axes[1 + 2 * i, col], title=f"Layer {k}: ‖G − G′‖₂", xlabel="",
                           ylabel="ℓ2 difference", legend=False)
            axes[1 + 2 * i, col].set_yscale("log")
            plotting.label(axes[2 + 2 * i, col], title=f"Layer {k}: cos(G, G′)",
                           xlabel="training step" if i == len(layers) - 1 else "",
                           ylabel="cosine", legend=False)
            axes[2 + 2 * i, col].set_ylim(-1.05, 1.05)
    what = _arch(record) if arch == "vgg" else (f"{c['dln_depth']}-layer linear network of width "
                                                f"{c['dln_width']}, full batch of {c['dln_examples']}")
    plotting.caption(fig, f"{what}; G, G′: gradient of the layer's weights before/after the earlier "
                          f"layers' SGD step. Source: {record.caption()}")
    fig.tight_layout()
    return fig


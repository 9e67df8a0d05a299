"""Chapter 07's figures: the four VGGs' accuracy, their layers' input distributions and how much
those move (the paper's Figs. 2 and 8), and gradient-based ICS (its Fig. 3). Each is made for
the page (``plotting.panels``: at most two panels per row, one legend below, a note under it)."""

from __future__ import annotations

import numpy as np

from ...book import plotting, results
from .. import santurkar
from .config import ICS_NETS, NOISE_NETS
from .analysis import moment_changes

ACCURACIES = {   # key in a run's record -> what it measures
    "train_batch_accuracy": "Training accuracy as trained (noise on, the batches trained on)",
    "train_accuracy": "Training images, eval mode",
    "test_accuracy": "Test images, eval mode",
}
# The book's palette, one colour per network: BN red, standard teal, noisy BN yellow (noise on
# a BN network), the standard network with the same noise purple.
COLORS = {"none": plotting.PALETTE["no_bn"], "bn": plotting.PALETTE["bn"],
          "noisy_bn": plotting.PALETTE["noisy_bn"], "noise": plotting.PALETTE["extra"]}


def _arch(record: results.Record) -> str:
    c = record.config
    return (f"{c['vgg']} × width {c['width']:g}, batch {c['batch_size']}, "
            f"{c['n_train']:,} training images")


def plot_training(record: results.Record):
    """Figure: accuracy of the four VGGs (standard, BN, noisy BN, standard + noise) at the first
    learning rate, on one scale: as they train (noise on, on their training batches: the paper's
    training accuracy; a whole row), in evaluation mode on training images (noise off), and on
    the test set."""
    runs, lr = santurkar.unpack(record), record.config["vgg_lrs"][0]
    keys = [k for k in ACCURACIES if any(k in r for r in runs.values())]
    fig, axes = plotting.panels(len(keys), wide=(0,), height=2.6, sharey=True, sharex=True)
    for ax, key in zip(axes, keys):
        for norm in NOISE_NETS:
            santurkar.plot_curve(ax, runs, santurkar.group("vgg", norm, lr), key, "eval_step",
                         label=santurkar.LABELS[norm], color=COLORS[norm])
        ax.axhline(0.1, color=plotting.PALETTE["muted"], lw=1, ls=":", label="chance")
        plotting.label(ax, title=ACCURACIES[key], xlabel="training step",
                       ylabel="accuracy" if ax is axes[0] or ax is axes[1] else "", legend=False)
    plotting.legend_below(fig, axes, ncols=5)
    shown = santurkar.seeds_shown(runs, {lr: [santurkar.group("vgg", norm, lr) for norm in NOISE_NETS]})
    plotting.note(
        fig,
        f"VGG on CIFAR-10 at learning rate {lr:g}: {_arch(record)}; {shown} "
        "(band: ± std over seeds). The top panel averages each network's own "
        "training batches since the previous point; the lower two are measured "
        "in evaluation mode (noise off, running statistics).",
    )
    return fig


def _bands(ax, steps, p, color) -> None:
    ax.fill_between(steps, p[:, 0], p[:, 4], color=color, alpha=0.2, lw=0)
    ax.fill_between(steps, p[:, 1], p[:, 3], color=color, alpha=0.45, lw=0)
    ax.plot(steps, p[:, 2], color=color, lw=1.5)


def plot_distributions(record: results.Record, layer: int | None = None, seed: int | None = None):
    """Figure: over training, the distribution over a fixed batch (training mode, noise on) of
    one random unit's input to the ReLU at ``layer`` (default: the deepest watched layer), one
    panel per network on one scale: median, 15-85th and 5-95th percentile bands."""
    from matplotlib.patches import Patch
    from matplotlib.lines import Line2D

    runs, lr = santurkar.unpack(record), record.config["vgg_lrs"][0]
    seed = record.config["seeds"][0] if seed is None else seed
    k = record.config["watch_layers"][-1] if layer is None else layer
    fig, axes = plotting.panels(len(NOISE_NETS), height=2.3, sharey=True, sharex=True)
    for i, (ax, norm) in enumerate(zip(axes, NOISE_NETS)):
        r = runs.get(santurkar.group("vgg", norm, lr) + f"_s{seed}", {})
        if f"act_pct_L{k}" in r:
            p = np.asarray(r[f"act_pct_L{k}"], float)
            _bands(ax, np.asarray(r["measure_step"])[: len(p)], p, COLORS[norm])
        plotting.label(ax, title=santurkar.LABELS[norm], legend=False,
                       xlabel="training step" if i >= len(axes) - 2 else "",
                       ylabel=f"input to ReLU, layer {k}" if i % 2 == 0 else "")
        if i < len(axes) - 2:
            ax.tick_params(labelbottom=False)
    grey = plotting.PALETTE["muted"]
    handles = [Line2D([], [], color=grey, lw=1.5, label="median"),
               Patch(color=grey, alpha=0.6, label="15–85th percentile"),
               Patch(color=grey, alpha=0.25, label="5–95th percentile")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3)
    plotting.note(fig, f"Layer {k} of {_arch(record)}, learning rate {lr:g}: one random unit (the "
                       f"same in every network), over {record.config['batch_size']} fixed training "
                       f"images in training mode (noise on); seed {seed}.")
    return fig


def plot_moment_changes(record: results.Record):
    """Figure (the paper's Fig. 8): per watched layer (rows), the mean over units of |Δ mean|
    (left) and |Δ variance| (right) of the ReLU inputs between successive measurements; each
    column on one scale. Bands: minimum to maximum over seeds (on a log axis a mean − std band can
    fall below zero)."""
    runs, lr = santurkar.unpack(record), record.config["vgg_lrs"][0]
    layers = record.config["watch_layers"]
    fig, axes = plotting.panels(2 * len(layers), height=2.1, sharex=True)
    for row, k in enumerate(layers):
        mean_ax, var_ax = axes[2 * row], axes[2 * row + 1]
        if row:
            mean_ax.sharey(axes[0])
            var_ax.sharey(axes[1])
        for norm in NOISE_NETS:
            members = [
                m
                for m in santurkar.seeds_of(runs, santurkar.group("vgg", norm, lr))
                if f"act_mean_L{k}" in m
            ]
            changes = [moment_changes(m, k) for m in members]
            for ax, key in ((mean_ax, "d_mean"), (var_ax, "d_var")):
                if changes:
                    x, ys = santurkar.stacked(changes, key, "step")
                    plotting.band(ax, x, ys, label=santurkar.LABELS[norm], color=COLORS[norm],
                                  kind="minmax")
        last = row == len(layers) - 1
        if not last:
            mean_ax.tick_params(labelbottom=False)
            var_ax.tick_params(labelbottom=False)
        plotting.label(mean_ax, title=f"Layer {k}: change of the mean", legend=False,
                       xlabel="training step" if last else "", ylabel="|Δμ|")
        plotting.label(var_ax, title=f"Layer {k}: change of the variance", legend=False,
                       xlabel="training step" if last else "", ylabel="|Δσ²|")
        for ax in (mean_ax, var_ax):
            ax.set_yscale("log")
            plotting.plain_log_ticks(ax, decades=True)
    plotting.legend_below(fig, axes, ncols=4)
    plotting.note(
        fig,
        f"{_arch(record)}, learning rate {lr:g}; "
        f"{santurkar.seeds_shown(runs, {lr: [santurkar.group('vgg', n, lr) for n in NOISE_NETS]})} "
        "(line: mean over seeds; band: their minimum to maximum). "
        f"μ and σ² are a unit's mean and variance over a fixed batch of training "
        f"images in training mode; Δ is the change between two measurements "
        f"{record.config['measure_every']} steps apart, averaged over the layer's units.",
    )
    return fig


def plot_ics(record: results.Record, arch: str = "vgg"):
    """Figure (the paper's Fig. 3): one column per learning rate; the training accuracy (VGG) or
    loss (DLN) on top, then for each measured layer the ℓ2 difference ‖G − G′‖ and the cosine
    between G and G′, each row on one scale. Bands: minimum to maximum over seeds (a cosine's
    band then stays within [−1, 1], a distance's above zero on its log axis)."""
    runs, c = santurkar.unpack(record), record.config
    lrs = c["vgg_lrs"] if arch == "vgg" else c["dln_lrs"]
    layers = c["ics_layers"] if arch == "vgg" else c["dln_ics_layers"]
    rows = [("progress", None)] + [(kind, k) for k in layers for kind in ("l2", "cos")]
    fig, axes = plotting.panels(len(rows) * len(lrs), ncols=len(lrs), height=1.9, sharex=True)
    grid = [axes[r * len(lrs):(r + 1) * len(lrs)] for r in range(len(rows))]
    for (kind, k), row in zip(rows, grid):
        for col, (ax, lr) in enumerate(zip(row, lrs)):
            if col:
                ax.sharey(row[0])
                ax.tick_params(labelleft=False)
            for norm in ICS_NETS:
                group, kw = santurkar.group(arch, norm, lr), {
                    "label": santurkar.LABELS[norm],
                    "color": COLORS[norm],
                }
                if kind == "progress":
                    if arch == "vgg":
                        santurkar.plot_curve(ax, runs, group, "train_accuracy", "eval_step",
                                             kind="minmax", **kw)
                    else:
                        santurkar.plot_curve(ax, runs, group, "loss", "loss_step", kind="minmax", **kw)
                else:
                    santurkar.plot_curve(ax, runs, group, f"ics_{kind}_L{k}", "measure_step",
                                         kind="minmax", **kw)
            if kind == "progress":
                title = f"learning rate {lr:g}"
                ylabel = "training accuracy" if arch == "vgg" else "training loss"
            else:
                title = f"layer {k}: " + ("‖G − G′‖" if kind == "l2" else "cos(G, G′)")
                ylabel = "ℓ2 difference" if kind == "l2" else "cosine"
            plotting.label(ax, title=title, legend=False, ylabel=ylabel if col == 0 else "",
                           xlabel="training step" if row is grid[-1] else "")
            if row is not grid[-1]:
                ax.tick_params(labelbottom=False)
            if kind == "cos":
                ax.set_ylim(-1.1, 1.1)
            elif kind == "l2" or arch == "dln":
                ax.set_yscale("log")
                plotting.plain_log_ticks(ax, decades=kind == "l2")
    plotting.legend_below(fig, axes, ncols=2)
    what = _arch(record) if arch == "vgg" else (f"{c['dln_depth']}-layer linear network of width "
                                                f"{c['dln_width']}, full batch of {c['dln_examples']:,}")
    shown = santurkar.seeds_shown(runs, {lr: [santurkar.group(arch, n, lr) for n in ICS_NETS]
                                         for lr in lrs})
    plotting.note(
        fig,
        f"{what}; {shown} (line: mean over seeds; band: their minimum to maximum). G: the "
        "gradient of the layer's weights on the step's batch; G′: the same gradient after the "
        "layers below it took their SGD step."
        + (
            " Training accuracy in evaluation mode on a fixed " "subset of training images."
            if arch == "vgg"
            else " Training loss: sum of squares over the batch."
        ),
    )
    return fig

"""Chapter 08's figures: the landscape along training (the paper's Figs. 4, 10-13), the gradient
change against the step size, the training curves and the larger learning rate. Each is made
for the page (``plotting.panels``: at most two panels per row, one legend below, a note under
it). The smoothness constant is written λ (β is BN's shift in this book) and the step sizes of a
landscape measurement α (η is the learning rate); the records keep the paper's field name
``ls_beta``."""

from __future__ import annotations

import warnings

import numpy as np

from ...book import plotting, results
from .. import santurkar
from .config import PAPER_NETS, SmoothnessConfig
from .experiment import record_lr, record_norms
from .analysis import landscape_series

# The book's palette: standard teal, BN red, the three ℓp normalisations in colours for series
# that are neither, the two furthest from teal (purple, brown) for the ℓp lines that run on top
# of the standard network's (ℓ∞ and ℓ1 in the DLN), blue for ℓ2.
COLORS = {"none": plotting.PALETTE["no_bn"], "bn": plotting.PALETTE["bn"],
          "l1": plotting.PALETTE["brown"], "l2": plotting.PALETTE["other"],
          "linf": plotting.PALETTE["extra"]}
# ℓp lines dashed, each with its own marker, so that a line on top of another is still told apart
STYLES = {"l1": "--", "l2": "--", "linf": "--"}
MARKERS = {"l1": "o", "l2": "s", "linf": "^"}
N_MARKERS = 8   # markers per line, spread evenly along it


def _mark(line, norm: str) -> None:
    """Give an ℓp network's line its dash and marker (the standard and BN lines stay solid)."""
    line.set_linestyle(STYLES.get(norm, "-"))
    if norm in MARKERS:
        n = max(1, len(line.get_xdata()))
        line.set_marker(MARKERS[norm])
        line.set_markersize(4.5)
        line.set_markevery(max(1, n // N_MARKERS))
LAMBDA = "effective smoothness λ"


def _what(record: results.Record, arch: str) -> str:
    c = record.config
    if arch == "vgg":
        return f"{c['vgg']} × width {c['width']:g} on {c['n_train']:,} CIFAR-10 images, batch {c['batch_size']}"
    return f"{c['dln_depth']}-layer linear network of width {c['dln_width']}, full batch of {c['dln_examples']:,}"


def _steps(record: results.Record, arch: str) -> str:
    c = record.config
    lo, hi = c["step_range"] if arch == "vgg" else c["dln_step_range"]
    return f"step sizes α from {lo:g} to {hi:g} × the learning rate ({c['n_step_sizes']}, log-spaced)"


def _range(members: list[dict], key: str) -> tuple:
    """Return ``(steps, low, high)``: the min and max over step sizes of ``key``, averaged over seeds."""
    lo = [{"v": np.nanmin(np.asarray(m[key], float), 1), "s": m["measure_step"]} for m in members]
    hi = [{"v": np.nanmax(np.asarray(m[key], float), 1), "s": m["measure_step"]} for m in members]
    x, ylo = santurkar.stacked(lo, "v", "s")
    _, yhi = santurkar.stacked(hi, "v", "s")
    return x, np.nanmean(ylo, 0), np.nanmean(yhi, 0)


def plot_landscape(record: results.Record, arch: str = "vgg"):
    """Figure (the paper's Figs. 4 and 10): over training, for the standard and BN networks, (a)
    the range of the loss along the gradient direction, (b) the range of the gradient change
    ("gradient predictiveness"), (c) the effective smoothness λ (a whole row); range: min–max over
    the step sizes, averaged over seeds; (c)'s band: min to max over the seeds."""
    runs, lr = santurkar.unpack(record), record_lr(record, arch)
    fig, axes = plotting.panels(3, wide=(2,), height=2.6, sharex=True)
    for norm in PAPER_NETS:
        members = [m for m in santurkar.seeds_of(runs, santurkar.group(arch, norm, lr)) if "ls_losses" in m]
        if not members:
            continue
        color, label = COLORS[norm], santurkar.LABELS[norm]
        for ax, key in zip(axes[:2], ("ls_losses", "ls_grad_diffs")):
            x, lo, hi = _range(members, key)
            ax.fill_between(x, lo, hi, color=color, alpha=0.3, lw=0)
            ax.plot(x, lo, color=color, lw=1)
            line, = ax.plot(x, hi, color=color, lw=1, label=label)
            line.bn_series = (label, len(members))   # averaged over these seeds: the legend's n
        # on a log axis a mean − std band can fall below zero and vanish: min to max over seeds
        santurkar.plot_curve(
            axes[2],
            runs,
            santurkar.group(arch, norm, lr),
            "ls_beta",
            "measure_step",
            label=label,
            color=color,
            kind="minmax",
        )
    plotting.label(axes[0], title="(a) loss along the gradient", xlabel="training step",
                   ylabel="loss, min to max over α", legend=False)
    plotting.label(axes[1], title="(b) gradient predictiveness", xlabel="training step",
                   ylabel="gradient change, min to max", legend=False)
    plotting.label(axes[2], title=f"(c) {LAMBDA}", xlabel="training step", ylabel="λ", legend=False)
    for ax in axes:
        ax.set_yscale("log")
        plotting.plain_log_ticks(ax, decades=True)
    plotting.legend_below(fig, axes, ncols=2)
    plotting.note(
        fig,
        f"{arch.upper()}: {_what(record, arch)}, learning rate {lr:g}; {santurkar.seeds_text(record)}; "
        f"{_steps(record, arch)}. λ = max over α of ‖∇L(w − αg) − g‖ / ‖αg‖; in (c) the line is "
        "the mean over seeds, the band their minimum to maximum.",
    )
    return fig


def _line(members: list[dict], what: str) -> tuple:
    """Return ``(steps, values)`` of one summary of a landscape measurement, averaged over seeds:
    the loss range (max − min over the step sizes), the largest gradient change, or λ."""
    rows = []
    for m in members:
        v = landscape_series(m, what)
        with np.errstate(invalid="ignore"):
            rows.append({"v": np.where(v > 0, v, np.nan), "s": m["measure_step"]})
    x, ys = santurkar.stacked(rows, "v", "s")
    with warnings.catch_warnings():   # a step no seed measured stays NaN, silently
        warnings.simplefilter("ignore", RuntimeWarning)
        return x, np.nanmean(ys, 0) if ys.size else ys


def plot_normalisations(record: results.Record):
    """Figure (the paper's Figs. 12 and 13): for every normalisation the record trained, the VGG
    (left) and the deep linear network (right) over training: the loss range along the gradient
    (max − min over the step sizes), the largest gradient change and the effective smoothness λ,
    one line per network (means over seeds)."""
    runs = santurkar.unpack(record)
    archs = ("vgg", "dln")
    what = (("loss_range", "loss range along g"), ("grad_change", "largest gradient change"),
            ("beta", "λ"))
    fig, axes = plotting.panels(2 * len(what), height=2.3)
    for col, arch in enumerate(archs):
        lr = record_lr(record, arch)
        column = axes[col::2]
        for row, ((key, ylabel), ax) in enumerate(zip(what, column)):
            if row:
                ax.sharex(column[0])
            for norm in record_norms(record, arch):
                members = [
                    m
                    for m in santurkar.seeds_of(runs, santurkar.group(arch, norm, lr))
                    if "ls_losses" in m
                ]
                if members:
                    x, y = _line(members, key)
                    line, = ax.plot(x, y, color=COLORS[norm], lw=1.4, label=santurkar.LABELS[norm])
                    _mark(line, norm)
            ax.set_yscale("log")
            plotting.plain_log_ticks(ax, decades=True)
            last = row == len(what) - 1
            plotting.label(ax, title=f"{arch.upper()}: {ylabel}" if row else
                           f"{arch.upper()}, η = {lr:g}: {ylabel}",
                           xlabel="training step" if last else "", ylabel=ylabel if col == 0 else "",
                           legend=False)
            if not last:
                ax.tick_params(labelbottom=False)
    plotting.legend_below(fig, axes, ncols=5)
    plotting.note(
        fig,
        f"VGG: {_what(record, 'vgg')}; DLN: {_what(record, 'dln')}; {santurkar.seeds_text(record)} "
        f"(lines: means over seeds); ℓp statistic per {record.config['lp_over']}. "
        f"VGG {_steps(record, 'vgg')}; DLN {_steps(record, 'dln')}.",
    )
    return fig


def _shade(color: str, t: float) -> tuple:
    """Return ``color`` mixed with white: pale at ``t`` = 0 (early), the colour itself at 1 (late)."""
    from matplotlib.colors import to_rgb

    rgb = np.asarray(to_rgb(color))
    return tuple(1 - (0.2 + 0.8 * t) * (1 - rgb))


def plot_step_profile(record: results.Record, arch: str = "vgg", seed: int | None = None):
    """Figure (the paper's Fig. 11): the gradient change ‖∇L(w − αg) − ∇L(w)‖ against the step
    size α, one line per measured training step (pale: early, full colour: late), the standard
    network (left) and BN (right) on one scale."""
    runs, lr = santurkar.unpack(record), record_lr(record, arch)
    seed = record.config["seeds"][0] if seed is None else seed
    alphas = SmoothnessConfig.from_record(record).step_sizes(arch)
    fig, axes = plotting.panels(2, height=3.0, sharey=True)
    for ax, norm in zip(axes, PAPER_NETS):
        r = runs.get(santurkar.group(arch, norm, lr) + f"_s{seed}", {})
        diffs = np.asarray(r.get("ls_grad_diffs", np.zeros((0, len(alphas)))), float)
        steps = np.asarray(r.get("measure_step", []))[: len(diffs)]
        for i, (step, row) in enumerate(zip(steps, diffs)):
            t = i / max(1, len(diffs) - 1)
            ax.plot(alphas, row, color=_shade(COLORS[norm], t), marker=".", lw=1,
                    label=f"{santurkar.LABELS[norm]}, step {step:,}" if i in (0, len(diffs) - 1) else None)
        ax.set_xscale("log"), ax.set_yscale("log")
        plotting.plain_log_ticks(ax, "x")
        plotting.plain_log_ticks(ax, decades=True)
        plotting.label(
            ax,
            title=f"{arch.upper()}, {santurkar.LABELS[norm]}",
            xlabel="step size α",
            ylabel="‖∇L(w − αg) − ∇L(w)‖" if norm == PAPER_NETS[0] else "",
            legend=False,
        )
    plotting.legend_below(fig, axes, ncols=2)
    plotting.note(fig, f"{_what(record, arch)}, learning rate {lr:g}; seed {seed}; one line per "
                       f"measurement, every {record.config['measure_every']} steps.")
    return fig


def plot_training(record: results.Record):
    """Figure (the paper's Fig. 5): VGG training and test accuracy (one scale) and DLN training
    loss (a whole row) for every normalisation."""
    runs, c = santurkar.unpack(record), record.config
    fig, axes = plotting.panels(3, wide=(2,), height=2.6)
    axes[1].sharey(axes[0])
    axes[1].tick_params(labelleft=False)
    for norm in record_norms(record, "vgg"):
        for ax, key in zip(axes[:2], ("train_accuracy", "test_accuracy")):
            if santurkar.plot_curve(ax, runs, santurkar.group("vgg", norm, c["lr"]), key, "eval_step",
                            label=santurkar.LABELS[norm], color=COLORS[norm]):
                _mark(ax.lines[-1], norm)
                ax.lines[-1].set_zorder(4 if norm == "bn" else 2)   # BN on top: the ℓp curves lie close
    for norm in record_norms(record, "dln"):
        # bands for the standard and BN networks only: five ± std bands over the close ℓp
        # curves merge into one mass in which no line can be followed
        if santurkar.plot_curve(axes[2], runs, santurkar.group("dln", norm, c["dln_lr"]), "loss", "loss_step",
                                label=santurkar.LABELS[norm], color=COLORS[norm],
                                kind="std" if norm in PAPER_NETS else "mean"):
            _mark(axes[2].lines[-1], norm)
            axes[2].lines[-1].set_zorder(4 if norm == "bn" else 2)
    plotting.label(axes[0], title="VGG, training images", xlabel="training step",
                   ylabel="accuracy", legend=False)
    plotting.label(axes[1], title="VGG, test images", xlabel="training step", ylabel="", legend=False)
    plotting.label(axes[2], title=f"DLN training loss, learning rate {c['dln_lr']:g}",
                   xlabel="training step", ylabel="loss (sum of squares)", legend=False)
    axes[2].set_yscale("log")
    plotting.plain_log_ticks(axes[2])
    plotting.legend_below(fig, axes, ncols=5)
    plotting.note(
        fig,
        f"VGG: {_what(record, 'vgg')}, learning rate {c['lr']:g}, accuracy in evaluation "
        f"mode. DLN: {_what(record, 'dln')}. {santurkar.seeds_text(record)} (line: mean; band: ± std, "
        f"in the DLN for the standard and BN networks only); ℓp statistic per {c['lp_over']}.",
    )
    return fig


def plot_large_lr(record: results.Record):
    """Figure (the paper's Fig. 1): standard and BN VGGs at the two learning rates (the larger
    dashed), training and test accuracy on one scale."""
    runs, c = santurkar.unpack(record), record.config
    fig, axes = plotting.panels(2, height=3.0, sharey=True)
    for lr, style in ((c["lr"], "-"), (c["large_lr"], "--")):
        for norm in PAPER_NETS:
            for ax, key in zip(axes, ("train_accuracy", "test_accuracy")):
                if santurkar.plot_curve(ax, runs, santurkar.group("vgg", norm, lr), key, "eval_step",
                                label=f"{santurkar.LABELS[norm]}, η = {lr:g}", color=COLORS[norm]):
                    ax.lines[-1].set_linestyle(style)
    for ax in axes:
        ax.axhline(0.1, color=plotting.PALETTE["muted"], lw=1, ls=":", label="chance")
    plotting.label(axes[0], title="VGG, training images", xlabel="training step", ylabel="accuracy",
                   legend=False)
    plotting.label(axes[1], title="VGG, test images", xlabel="training step", ylabel="", legend=False)
    plotting.legend_below(fig, axes, ncols=3)
    plotting.note(
        fig,
        f"{_what(record, 'vgg')}; {santurkar.seeds_text(record)} (band: ± std); accuracy in evaluation "
        "mode. A run that diverged stops where its loss became infinite.",
    )
    return fig

"""Chapter 09's figures, one per experiment; each takes the experiment's stored record and the
chapter's config, and returns the figure with its note (data, seeds, settings) attached."""

from __future__ import annotations

import math

import numpy as np

from ...book import plotting, results
from ...book.page import how_many
from . import finetune, ga_search, small_batches
from .config import PracticeConfig


# Experiments 1-2: the batch sweep (small_batches)

def _norm_colors(norms) -> dict:
    """Return a colour per normalisation: BN red, none teal, the others the series colours."""
    others = [n for n in norms if n not in ("bn", "none")]
    colors = dict(zip(others, plotting.series_colors(len(others))))
    return {**colors, "bn": plotting.PALETTE["bn"], "none": plotting.PALETTE["no_bn"]}


# A marker of its own per normalisation: where lines bunch (the smallest batches) the colour alone
# does not tell them apart.
MARKERS = {"bn": "o", "none": "o", "brn": "s", "ln": "^", "gn": "D", "rms": "v"}


def _batch_axis(ax, cfg: PracticeConfig) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(cfg.batch_sizes, [str(b) for b in cfg.batch_sizes])
    ax.minorticks_off()


def _accuracy_bars(ax, cfg: PracticeConfig, acc, dodge: float = 0.0, **style) -> None:
    """Draw one line of test accuracy against batch size: the mean over seeds, bars ± their std;
    ``dodge`` moves its points sideways by that fraction of an octave, so that the points and bars
    of several lines at one batch size do not hide one another."""
    x = np.asarray(cfg.batch_sizes, float) * 2.0 ** dodge
    ax.errorbar(x, np.nanmean(acc, 1), yerr=np.nanstd(acc, 1, ddof=1), capsize=3, **style)


def _dodges(n: int, step: float = 0.07) -> list[float]:
    """Return ``n`` sideways offsets (in octaves) centred on 0."""
    return [step * (k - (n - 1) / 2) for k in range(n)]


def _cnn_note(cfg: PracticeConfig) -> str:
    return (f"The CNN (width {cfg.cnn_width}) trained for {cfg.sweep_steps:,} SGD steps at every batch "
            f"size on {cfg.n_train:,} MNIST images, scored on {cfg.n_test:,} test images; mean ± std "
            f"over {how_many(len(cfg.seeds), 'seed')}; the points of one batch size are set "
            "slightly apart sideways.")


def _batch_figure(fig, ax, cfg: PracticeConfig, *, title: str, xlabel: str, ylabel: str, ncols: int):
    """Finish a figure of the CNN against batch size: the batch axis, labels, legend and note."""
    _batch_axis(ax, cfg)
    plotting.label(ax, title=title, xlabel=xlabel, ylabel=ylabel, legend=False)
    plotting.legend_below(fig, [ax], ncols=ncols)
    plotting.note(fig, _cnn_note(cfg))
    return fig


def plot_modes(record: results.Record, cfg: PracticeConfig):
    """Figure (experiment 1): BN's test accuracy in train and eval mode against the batch size."""
    fig, (ax,) = plotting.panels(1, height=3.2)
    i = cfg.norms.index("bn")
    for (key, style, colour, label), dodge in zip((
            ("eval_acc", "-o", plotting.PALETTE["bn"], "eval mode (running statistics)"),
            ("train_acc", "--s", plotting.PALETTE["noisy_bn"], "train mode (each test batch's statistics)")),
            _dodges(2)):
        _accuracy_bars(ax, cfg, record[key][i], dodge=dodge, fmt=style, color=colour, label=label)
    return _batch_figure(fig, ax, cfg, title="The BN CNN scored in its two modes",
                         xlabel="batch size (training and scoring)", ylabel="test accuracy", ncols=2)


def plot_alternatives(record: results.Record, cfg: PracticeConfig):
    """Figure (experiment 2): eval-mode test accuracy of every normalisation against batch size."""
    fig, (ax,) = plotting.panels(1, height=3.4)
    colors = _norm_colors(cfg.norms)
    for i, (norm, dodge) in enumerate(zip(cfg.norms, _dodges(len(cfg.norms)))):
        _accuracy_bars(ax, cfg, record["eval_acc"][i], dodge=dodge, fmt=("--" if norm == "none" else "-")
                       + MARKERS.get(norm, "o"), label=small_batches.LABELS[norm], ms=5,
                       color=colors[norm])
    return _batch_figure(fig, ax, cfg, title="Same CNN, same steps: each normalisation",
                         xlabel="batch size", ylabel="test accuracy (eval mode)", ncols=3)


# Experiments 3, 5 and 8: the MLP choices (mlp_choices)

def _mlp_note(cfg: PracticeConfig, what: str, steps: int | None = None, lr: float | None = None) -> str:
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
    plotting.note(fig, _mlp_note(cfg, "with ReLU or sigmoid units"))
    return fig


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
    plotting.note(fig, _mlp_note(cfg, "ReLU units, without and with BN")
                  + " Training loss: the mean over each logging interval.")
    return fig


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
    plotting.note(fig, _mlp_note(cfg, "ReLU units, without and with BN, plain SGD (no momentum)", lr=cfg.wd_lr)
                  + " Layer 2: the second hidden layer.")
    return fig


# Experiment 6: the GA search (ga_search)

def plot_ga_search(record: results.Record, cfg: PracticeConfig):
    """Figure: the population of every generation in (log10 LR, log10 L2), with and without BN."""
    from matplotlib.colors import to_rgb

    fig, axes = plotting.panels(2, height=3.2, sharex=True, sharey=True)
    for ax, net in zip(axes, ("none", "bn")):
        pts = record[f"{net}/points"] / math.log(10.0)
        name, colour = ("BN", plotting.PALETTE["bn"]) if net == "bn" else ("no BN", plotting.PALETTE["no_bn"])
        last = len(pts) - 1
        for g, gen in enumerate(pts):   # the net's colour, pale in the first generation, full in the last
            t = 0.25 + 0.75 * (g / last if last else 1.0)
            shade = tuple(1 - t * (1 - c) for c in to_rgb(colour))
            ax.scatter(gen[:, 0], gen[:, 1], color=shade, s=20, zorder=2,
                       label=f"{name}: generation {g + 1}" if g in (0, last) else None)
        ax.scatter([math.log10(record[f"{net}/best_lr"])], [math.log10(record[f"{net}/best_l2"])],
                   marker="*", s=220, color=plotting.PALETTE["reference"], edgecolor="white", zorder=3,
                   label="best network trained")
        ax.axvline(math.log10(ga_search.STUDENT["best_lr"][net]), color=plotting.PALETTE["muted"], ls="--", lw=1.2,
                   label="student's best rate")
        plotting.label(ax, title="with BN" if net == "bn" else "without BN", xlabel="log10 learning rate",
                       ylabel="log10 L2 (weight decay)", legend=False)
    plotting.legend_below(fig, axes, ncols=3)   # no BN | best, student | BN
    plotting.note(fig, f"{len(pts)} generations of {pts.shape[1]} MLPs (4 hidden layers of {cfg.ga_width}), "
                       f"each trained for {cfg.ga_steps:,} SGD steps (batch {cfg.ga_batch}) on MNIST; "
                       f"one seed per candidate.")
    return fig


# Experiment 9: fine-tuning at small batches (finetune)

def plot_finetune(record: results.Record, cfg: PracticeConfig):
    """Figure: test accuracy on the new digits along fine-tuning, BN in training mode vs frozen."""
    fig, axes = plotting.panels(len(cfg.ft_batch_sizes), height=3.0, sharey=True)
    # BN on the statistics of a tiny batch is a noisy BN (yellow); frozen BN, in eval mode, red
    for ax, b in zip(axes, cfg.ft_batch_sizes):
        for mode, color in zip(finetune.MODES, (plotting.PALETTE["noisy_bn"], plotting.PALETTE["bn"])):
            plotting.band(ax, record[f"{b}/{mode}/steps"], record[f"{b}/{mode}/acc"],
                          label=f"BN {'in training mode' if mode == 'train' else 'frozen (eval mode)'}",
                          color=color)
        plotting.label(ax, title=f"Batches of {b}", xlabel="fine-tuning step",
                       ylabel="test accuracy on digits 5–9", legend=False)
    plotting.legend_below(fig, axes, ncols=2)
    plotting.note(fig, f"The BN CNN (width {cfg.cnn_width}) pre-trained for {cfg.ft_pretrain_steps:,} "
                       f"steps (batch 64) on the digits 0–4, then fine-tuned for {cfg.ft_steps:,} steps "
                       f"(learning rate {cfg.ft_lr:g}) on {cfg.ft_n_train:,} images of the digits 5–9; "
                       f"scored in eval mode on the test images of 5–9; band: mean ± std over "
                       f"{how_many(len(cfg.seeds), 'seed')}.")
    return fig

"""Chapter 04's figures: the learning-rate search, the paper's Figure 1, every activation, the
initialisations, and batch size 1."""

from __future__ import annotations

import math

import numpy as np

from ...book import plotting, results
from .config import PERCENTILES, MnistConfig, init_label
from .analysis import LABELS, activation_name, init_words, select, truncate

COLORS = {False: plotting.PALETTE["no_bn"], True: plotting.PALETTE["bn"]}


def _note(fig, record: results.Record, extra: str = "") -> None:
    """Attach what the figure shows (the network, what it averages over) for its source note."""
    widths = "-".join(map(str, (784, *record.config["hidden"], 10)))
    plotting.note(fig, f"MNIST, {widths} MLP. {extra}")


def plot_lr_search(search: results.Record):
    """Figure: final validation accuracy of the nets without BN against the learning rate, one
    line per activation (and per other initialisation of the sigmoid net)."""
    fig, (ax,) = plotting.panels(1, height=3.4)
    final = np.asarray(search["val_accuracy"])[-1]
    models = search["models"]
    main = models[0]["init"]
    lines = list(dict.fromkeys((m["activation"], m["init"]) for m in models))
    markers = "osD^v"   # lines that coincide stay apart by their markers
    for k, ((a, init), color, marker) in enumerate(zip(lines, plotting.series_colors(len(lines)),
                                                       markers)):
        idx = [i for i, m in enumerate(models) if (m["activation"], m["init"]) == (a, init)]
        lrs = np.array([models[i]["lr"] for i in idx])
        grid = np.unique(lrs)
        mean = np.array([np.nanmean(final[idx][lrs == lr]) if np.isfinite(final[idx][lrs == lr]).any()
                         else np.nan for lr in grid])
        chosen = search["chosen_lr"][init][a]
        label = (a if init == main else f"{a}, {init_words(init)} init") + f" (★ {chosen:g})"
        line, = ax.plot(grid, mean, marker + ("-" if init == main else "--"), label=label, color=color,
                        mfc="none" if init != main else color)
        # Stars of lines that chose the same rate coincide: each is drawn smaller than the one
        # before it and edged in white, so every one stays visible; the legend gives each rate.
        ax.plot([chosen], [mean[grid == chosen][0]], "*", ms=20 - 3 * k, color=line.get_color(),
                mec="white", mew=0.8, zorder=3 + k)
        for lr in grid[~np.isfinite(mean)]:
            ax.plot([lr], [0.1], "x", ms=10, mew=2.2, color=line.get_color(), zorder=10)  # over the markers at chance
    ax.set_xscale("log")
    plotting.plain_log_ticks(ax, "x")
    others = any(init != main for _, init in lines)   # dashed lines: other initialisations
    title = (f"Learning-rate search without BN; solid lines: {init_words(main)} init" if others
             else f"Learning-rate search without BN, {init_words(main)} init")
    plotting.label(ax, title=title,
                   xlabel="learning rate (log scale)",
                   ylabel=f"val. accuracy, step {int(search['eval_step'][-1]):,}", legend=False)
    plotting.legend_below(fig, [ax], ncols=2)
    _note(fig, search, "★ chosen, × diverged; mean over the search seeds. ")
    return fig


def plot_figure1(record: results.Record, activation: str = "sigmoid", unit: int = 0,
                 seed_index: int = 0):
    """Figure 1 of the paper: (a) test accuracy over training without and with BN (mean ± std over
    seeds); (b, c) the 15th/50th/85th percentiles of the input to one nonlinearity (``unit``) of
    the last hidden layer over training, without and with BN, for one seed."""
    fig, axes = plotting.panels(3, height=2.8, wide=(0,))
    steps = np.asarray(record["eval_step"])
    acc = np.asarray(record["test_accuracy"])
    for bn in (False, True):
        plotting.band(axes[0], steps, acc[:, select(record, activation, bn)].T, label=LABELS[bn],
                      color=COLORS[bn])
    axes[0].set_ylim(0.7, 1.0)   # as in the paper
    plotting.label(axes[0], title=f"(a) Test accuracy, {activation}", xlabel="training step",
                   ylabel="test accuracy")
    for ax, bn, tag in ((axes[1], False, "(b)"), (axes[2], True, "(c)")):
        i = select(record, activation, bn)[seed_index]
        p15, p50, p85 = (np.asarray(record[f"p{p}"])[:, i, unit] for p in PERCENTILES)
        plotting.percentile_bands(ax, steps, p15, p50, p85, color=COLORS[bn])
        plotting.label(ax, title=f"{tag} {LABELS[bn]}", xlabel="training step",
                       ylabel=f"input to the {activation}", legend=False)
    plotting.percentile_legend(fig)   # median and band, in grey: each panel has its colour
    lo = min(ax.get_ylim()[0] for ax in axes[1:])
    hi = max(ax.get_ylim()[1] for ax in axes[1:])
    for ax in axes[1:]:
        ax.set_ylim(lo, hi)   # one scale: the two networks' drift compares by eye
    seed = record["models"][select(record, activation, False)[seed_index]]["seed"]
    _note(fig, record, f"(a) mean ± std over {len(select(record, activation, True))} seeds; "
                       f"(b, c) unit {unit} of hidden layer {len(record.config['hidden'])}, seed "
                       f"{seed}, percentiles over the test images. ")
    return fig


def plot_activations(record: results.Record):
    """Figure: test accuracy over training without and with BN for each activation (mean ± std
    over seeds), on a log step axis so that the early steps and the end both show."""
    acts = list(dict.fromkeys(m["activation"] for m in record["models"]))
    fig, axes = plotting.panels(len(acts), height=2.8, sharey=True)
    steps = np.asarray(record["eval_step"])
    acc = np.asarray(record["test_accuracy"])
    keep = steps > 0
    for ax, a in zip(axes, acts):
        for bn in (False, True):
            plotting.band(ax, steps[keep], acc[keep][:, select(record, a, bn)].T, label=LABELS[bn],
                          color=COLORS[bn])
        ax.set_xscale("log")
        ax.set_ylim(0.8, 1.0)
        plotting.label(ax, title=activation_name(a), xlabel="training step (log scale)", ylabel="test accuracy",
                       legend=False)
    plotting.legend_below(fig, axes, ncols=2)
    _note(fig, record, "Mean ± std over seeds. ")
    return fig


def plot_batch_size_one(bs1: results.Record, record: results.Record):
    """Figure: training loss and test accuracy of the sigmoid net with BN at batch size 1, beside
    the same network (same seed, initial weights and learning rate) at the main runs' batch."""
    fig, axes = plotting.panels(2, height=3.0)
    i = [j for j in select(record, "sigmoid", True) if record["models"][j]["seed"] == bs1["seed"]][0]
    batch = record.config["batch_size"]
    log_steps, eval_steps = np.asarray(record["log_step"]), np.asarray(record["eval_step"])
    upto = bs1["steps_done"]
    k, e = log_steps <= upto, eval_steps <= upto
    axes[0].plot(log_steps[k], np.asarray(record["train_loss"])[k, i], color=COLORS[True],
                 label=f"batch {batch}")
    axes[0].plot(bs1["step"], bs1["loss"], color=plotting.PALETTE["noisy_bn"], label="batch 1")
    axes[0].axhline(math.log(10), color=plotting.PALETTE["muted"], ls=":", lw=1,
                    label="log 10 (uniform guess)")
    axes[1].plot(eval_steps[e], np.asarray(record["test_accuracy"])[e, i], "o-", ms=3,
                 color=COLORS[True], label=f"batch {batch}")
    axes[1].plot(bs1["eval_step"], bs1["evals"]["test_accuracy"], "o-", ms=3,
                 color=plotting.PALETTE["noisy_bn"], label="batch 1")
    plotting.label(axes[0], title="Training loss", xlabel="training step",
                   ylabel="cross-entropy", legend=False)
    plotting.label(axes[1], title="Test accuracy (eval mode)", xlabel="training step",
                   ylabel="test accuracy", legend=False)
    axes[1].set_ylim(0, 1)
    plotting.legend_below(fig, axes, ncols=3)
    _note(fig, bs1, f"Sigmoid network with BN, seed {bs1['seed']}, learning rate "
                    f"{bs1['learning_rate']:g}; batch {batch} from the main runs. ")
    return fig


def plot_inits(inits: results.Record, record: results.Record, cfg: MnistConfig):
    """Figure: test accuracy of the sigmoid net without and with BN for each initialisation (the
    main one from the main runs), mean ± std over seeds, log step axis."""
    steps = min(cfg.compare_steps, cfg.steps)
    main = truncate(record, steps)
    sources = [(init_label(cfg.init, cfg.init_std), main)]
    sources += [(i, inits) for i in dict.fromkeys(m["init"] for m in inits["models"])]
    fig, axes = plotting.panels(len(sources), height=2.8, sharey=True)
    for ax, (init, src) in zip(axes, sources):
        x = np.asarray(src["eval_step"])
        keep = x > 0
        for bn in (False, True):
            idx = select(src, "sigmoid", bn, init)
            plotting.band(ax, x[keep], np.asarray(src["test_accuracy"])[keep][:, idx].T,
                          label=LABELS[bn], color=COLORS[bn])
        ax.set_xscale("log")
        ax.set_ylim(0.5, 1.0)
        lr = src["models"][select(src, "sigmoid", False, init)[0]]["lr"]
        plotting.label(ax, title=f"{init_words(init)}, lr {lr:g}",
                       xlabel="training step (log scale)", ylabel="test accuracy", legend=False)
    plotting.legend_below(fig, axes, ncols=2)
    _note(fig, inits if inits["models"] else record, "Sigmoid networks; mean ± std over seeds. ")
    return fig

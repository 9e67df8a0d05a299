"""Chapter 02's figures and tables, drawn from the stored records of sections 3 to 5."""

from __future__ import annotations

import numpy as np
from matplotlib import patheffects
from matplotlib.ticker import NullFormatter

from ...book import plotting, results
from .eval_branch_bug import EVAL_BRANCH_NETS
from .momentum_bug import BUG_MOMENTA
from .running_stats import STREAM_MEAN, STREAM_STD


def convention_checks(record: results.Record) -> dict:
    """Return max |difference| of Keras 0.99 vs PyTorch 0.01 (running mean and variance) and of
    the paper's population statistics vs PyTorch's cumulative average (momentum None)."""
    out = {}
    if "0.01" in record["momenta"]:
        out["Keras momentum 0.99 vs torch momentum=0.01"] = max(
            np.abs(record["keras_0.99_mean"] - record["mean_0.01"]).max(),
            np.abs(record["keras_0.99_var"] - record["var_0.01"]).max())
    out["paper's formula vs torch momentum=None"] = max(abs(record["paper_mean"] - record["mean_None"][-1]),
                                                 abs(record["paper_var"] - record["var_None"][-1]))
    return out


def plot_running_estimates(record: results.Record):
    """Figure: the running mean and variance over the stream of batches, per momentum, against
    the true values (and the cumulative average of biased variances); one legend below."""
    fig, axes = plotting.panels(2, height=3.0)
    steps = np.arange(1, len(record["mean_None"]) + 1)
    colors = plotting.series_colors(len(record["momenta"]))
    # the jittery large momentum drawn first, so the smoother curves stay visible on top of it
    for z, (color, m) in enumerate(zip(colors, record["momenta"]), start=2):
        label = "momentum None (cumulative average)" if m == "None" else f"momentum {m}"
        axes[0].plot(steps, record[f"mean_{m}"], color=color, label=label, lw=1.2, zorder=z)
        axes[1].plot(steps, record[f"var_{m}"], color=color, label=label, lw=1.2, zorder=z)
    # on top of every momentum trace (past ~100 batches it runs through momentum 0.1's jitter),
    # thick, dark and edged in white so that it stays visible there
    axes[1].plot(steps, record["var_None_biased"], color=plotting.PALETTE["brown"], ls=(0, (1, 1)),
                 lw=2.6, label="cumulative average of biased variances", zorder=z + 1,
                 path_effects=[patheffects.withStroke(linewidth=4.0, foreground="white")])
    for ax, true in ((axes[0], record["true_mean"]), (axes[1], record["true_var"])):
        ax.axhline(true, color=plotting.PALETTE["reference"], ls="--", lw=1, label="true value",
                   zorder=z + 2)
        ax.set_xscale("log")
    plotting.label(axes[0], title="Running mean", xlabel="batches seen (log scale)",
                   ylabel="estimate of E[x]", legend=False)
    plotting.label(axes[1], title="Running variance", xlabel="batches seen (log scale)",
                   ylabel="estimate of Var[x]", legend=False)
    plotting.legend_below(fig, axes, ncols=2)
    plotting.note(fig, f"A stream of batches of {record.config['stream_batch_size']} values from "
                       f"N({STREAM_MEAN:g}, {STREAM_STD:g}²); the running statistics start at "
                       "mean 0, variance 1.")
    return fig


def plot_variance_bias(record: results.Record):
    """Figure: the average biased (÷N) and unbiased (÷(N − 1)) batch variance of N(0, 1)
    samples over the true variance, against the batch size N, with the law 1 − 1/N."""
    fig, (ax,) = plotting.panels(1, height=3.0)
    n = np.array(record["bias_sizes"])
    grid = np.linspace(n.min(), n.max(), 200)
    ax.plot(grid, 1 - 1 / grid, color=plotting.PALETTE["reference"], ls="--", lw=1,
            label="theory: 1 − 1/N")
    biased, unbiased = plotting.series_colors(2)
    ax.plot(n, record["bias_biased"], "o", color=biased, label="biased (÷N), measured")
    ax.plot(n, record["bias_unbiased"], "s", color=unbiased, label="unbiased (÷(N − 1)), measured")
    ax.set_xscale("log", base=2)
    ax.set_xticks(n, [str(v) for v in n])
    plotting.label(ax, title="Average batch variance over the true variance",
                   xlabel="batch size N (log scale)", ylabel="E[batch variance] / Var[x]")
    plotting.note(fig, f"Each point: the average over {record.config['bias_batches']:,} batches of "
                       "N(0, 1) samples.")
    return fig


def plot_batch_dependence(record: results.Record):
    """Figure: one example's true-class logit over random batches per batch size (vs its eval
    value), and the spread of train-mode outputs against batch size."""
    fig, axes = plotting.panels(2, height=3.2)
    sizes = np.array(record["batch_sizes"])
    label = int(record["labels"][0])
    logits = record["example_logits"]  # (sizes, draws): example 0's true-class logit
    pos = np.arange(len(sizes))
    parts = axes[0].violinplot(list(logits), positions=pos, showmedians=True)
    for body in parts["bodies"]:
        body.set_facecolor(plotting.PALETTE["bn"])
    for key in ("cmedians", "cmins", "cmaxes", "cbars"):
        parts[key].set_color(plotting.PALETTE["bn"])
    axes[0].axhline(record["eval_outputs"][0, label], color=plotting.PALETTE["reference"], ls="--",
                    label="eval mode")
    axes[0].set_xticks(pos, [str(s) for s in sizes])
    spread = np.array(record["spread"])
    axes[1].loglog(sizes, spread, "o-", color=plotting.PALETTE["bn"], label="std over batch mates")
    axes[1].loglog(sizes, np.array(record["offset"]), "s-", color=plotting.PALETTE["other"],
                   label="|mean − eval output|")
    axes[1].loglog(sizes, spread[0] * np.sqrt(sizes[0] / sizes), color=plotting.PALETTE["reference"],
                   ls=":", lw=1.5, zorder=3, label="∝ 1/√B")   # on top: where it hides the red, they agree
    plotting.plain_log_ticks(axes[1], "y", subs=(1, 2, 3, 5))   # about one decade: 0.3 and 3 too
    axes[1].set_xticks(sizes, [str(s) for s in sizes])
    axes[1].xaxis.set_minor_formatter(NullFormatter())
    plotting.label(axes[0], title=f"One test image (a {label}), train mode", xlabel="batch size N",
                   ylabel=f"logit of class {label}", legend=False)
    plotting.label(axes[1], title="How much batch mates move it", xlabel="batch size N",
                   ylabel="logit difference", legend=False)
    plotting.legend_below(fig, axes, ncols=2)   # below: inside, it covered the curves
    plotting.note(fig, f"MNIST {record.config['activation']} BN MLP after "
                       f"{record.config['steps']} steps; {record.config['spread_draws']} random "
                       "batches per size; right: averaged over classes and images.")
    return fig


def momentum_bug_table(record: results.Record) -> dict:
    """Return, per momentum, the running-statistic errors and the eval-accuracy gap to exact
    statistics, averaged over the second half of training, and the final test accuracy."""
    rows = {}
    for label in BUG_MOMENTA:
        ev = record[label]["evals"]
        half = len(ev["test_accuracy"]) // 2
        gap = _accuracy_gap(ev, half, None)
        rows[label] = {"running-mean error (σ)": float(np.mean(ev["mean_error"][half:])),
                       "running-var error |log ratio|": float(np.mean(ev["var_error"][half:])),
                       "mean |accuracy gap|": float(np.mean(np.abs(gap))),
                       "std of accuracy gap": float(np.std(gap)),
                       "final test accuracy": ev["test_accuracy"][-1],
                       "with exact statistics": ev["exact_accuracy"][-1]}
    return rows


def early_accuracy_gap(record: results.Record) -> dict:
    """Return, per momentum, the mean |accuracy gap| to exact statistics over the *first* half of
    training (the table's columns average the second): where a lagging estimate costs most."""
    out = {}
    for label in BUG_MOMENTA:
        ev = record[label]["evals"]
        out[label] = float(np.mean(np.abs(_accuracy_gap(ev, 1, len(ev["test_accuracy"]) // 2))))
    return out


def _accuracy_gap(evals: dict, start: int, stop: int | None) -> np.ndarray:
    """Test accuracy with the running statistics minus with exact ones, evaluations start:stop."""
    return np.array(evals["test_accuracy"][start:stop]) - np.array(evals["exact_accuracy"][start:stop])


def plot_momentum_bugs(record: results.Record):
    """Figure: running-statistic errors (top row) and test accuracy (bottom, the whole width)
    over training, per momentum; one legend below."""
    fig, axes = plotting.panels(3, height=2.8, wide=(2,))
    for color, label in zip(plotting.series_colors(len(BUG_MOMENTA)), BUG_MOMENTA):
        h = record[label]
        steps, ev = np.array(h["eval_step"][1:]), h["evals"]
        axes[0].plot(steps, ev["mean_error"][1:], color=color)
        axes[1].plot(steps, ev["var_error"][1:], color=color)
        axes[2].plot(steps, ev["test_accuracy"][1:], color=color, label=f"momentum {label}")
    first = record[next(iter(BUG_MOMENTA))]
    axes[2].plot(first["eval_step"][1:], first["evals"]["exact_accuracy"][1:],
                 color=plotting.PALETTE["reference"], ls="--", lw=1, zorder=5,
                 label="exact population statistics")
    for ax in axes[:2]:
        ax.set_yscale("log")
        plotting.plain_log_ticks(ax)
    plotting.label(axes[0], title="Error of the running mean", xlabel="training step",
                   ylabel="|Δμ| / σ (population)")
    plotting.label(axes[1], title="Error of the running variance", xlabel="training step",
                   ylabel="|log(running / true var)|")
    plotting.label(axes[2], title="Test accuracy in eval mode", xlabel="training step",
                   ylabel="accuracy", legend=False)
    plotting.legend_below(fig, axes, ncols=2)
    plotting.note(fig, f"MNIST {record.config['activation']} BN MLP, batch size "
                       f"{record.config['bug_batch_size']}, the same weights in all three runs; "
                       "errors are means over the BN layers' features.")
    return fig


def eval_branch_table(record: results.Record) -> dict:
    """Return, per run, the final train loss (mean of the last logged interval), whether it
    diverged, the final test accuracy, hidden weight norm and fraction of saturated sigmoids."""
    rows = {}
    runs = record.metrics if isinstance(record, results.Record) else record  # or the raw dict
    for key, h in runs.items():
        ev = h["evals"]
        rows[key] = {"final train loss": h["loss"][-1] if h["loss"] else float("nan"),
                     "diverged": "yes" if h["diverged"] else "no",
                     "final test accuracy": ev["test_accuracy"][-1],
                     "hidden weight norm": ev["weight_norm"][-1],
                     "saturated sigmoids": ev["saturation"][-1]}
    return rows


def plot_eval_branch(record: results.Record):
    """Figure: training loss of the three normalisations, at the usual and at the high LR."""
    lrs = (record.config["lr"], record.config["bug_lr"])
    fig, axes = plotting.panels(2, height=3.0, sharey=True)
    colors = {"torch BN": plotting.PALETTE["bn"], "no BN": plotting.PALETTE["no_bn"],
              "eval-branch BN (buggy)": plotting.PALETTE["noisy_bn"]}
    for ax, lr in zip(axes, lrs):
        for name in EVAL_BRANCH_NETS:
            h = record[f"{name} @ lr {lr:g}"]
            loss = np.array(h["loss"], dtype=float)
            ax.plot(h["step"], np.clip(loss, None, 10.0), color=colors[name],
                    label=name + (" (diverged)" if h["diverged"] else ""))
        ax.set_yscale("log")
        plotting.plain_log_ticks(ax)
        plotting.label(ax, title=f"SGD learning rate {lr:g}", xlabel="training step",
                       ylabel="train loss (clipped at 10)" if ax is axes[0] else "", legend=False)
    plotting.legend_below(fig, axes, ncols=3)
    plotting.note(fig, f"MNIST {record.config['activation']} MLP, batch size "
                       f"{record.config['batch_size']}; cross-entropy of each training batch.")
    return fig

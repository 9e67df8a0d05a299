"""Chapter 05's figures: the accuracy curves of every row (the whole run and the early steps
where the rows cross Inception's best) and the training-loss curves, drawn from a stored record."""

from __future__ import annotations

import numpy as np

from ...book import plotting, results
from ...book.page import how_many, in_words
from .config import TARGET_ROW
from .analysis import curve, ordered_rows, summary


# Rows without BN in the no-BN colour (the sanity rows dashed and dotted), BN-Baseline in BN's,
# the accelerated BN rows in colours of their own.
STYLE = {"Inception": ("no_bn", "-"), "Inception-x30": ("no_bn", "--"),
         "Inception-x5-Sigmoid": ("no_bn", ":"), "BN-Baseline": ("bn", "-"), "BN-x5": ("brown", "-"),
         "BN-x30": ("extra", "-"), "BN-x5-Sigmoid": ("green", "-")}


def _style(name: str) -> tuple[str, str]:
    colour, line = STYLE.get(name, ("muted", "-"))
    return plotting.PALETTE[colour], line


def _note(record: results.Record, band: bool = True) -> str:
    cfg = record.config
    seeds = sorted({len(record.metrics[r]["seeds"]) for r in record.metrics})
    return (f"TinyInception width {cfg['width']}, {cfg['n_train']:,} training / {cfg['n_test']:,} "
            f"test images, {how_many(seeds, 'seed')} per row; "
            + ("band: mean ± std over seeds." if band else "one line per seed."))


def plot(record: results.Record, early_epochs: float | None = None):
    """Figure: test accuracy vs SGD steps, every row, over the whole run (top) and over its first
    ``early_epochs`` (bottom; default: the dense evaluations' epochs), where the rows cross the
    target; the target as a dashed line, each row's crossing as a dot, a divergence as a cross."""
    summ = summary(record)
    fig, axes = plotting.panels(2, wide=(0, 1), height=3.2)
    per_epoch = next(iter(record.metrics.values()))["steps_per_epoch"]
    early = early_epochs or record.config.get("dense_epochs") or 1.0
    target = next(iter(summ.values()))["target"] if summ else None
    for ax in axes:
        for i, name in enumerate(ordered_rows(record)):
            row, (colour, line) = record.metrics[name], _style(name)
            steps, acc = curve(row)
            n_div = summ[name]["n_diverged"]
            plotting.band(ax, steps, 100 * acc, color=colour,
                          label=name + (f" ({n_div}/{len(acc)} diverged)" if n_div else ""))
            ax.lines[-1].set_linestyle(line)
            reach = summ[name]["steps_to_target"]
            if reach is not None:   # later rows draw smaller dots, so rows reaching together show
                ax.plot([reach], [100 * summ[name]["target"]], "o", color=colour,
                        ms=max(5, 10 - i), mec="white", mew=0.8, zorder=3 + i)
            for h in row["history"]:
                if h["diverged"]:
                    ax.plot([h["diverged_at"]], [10.0], "x", color=colour, ms=9, mew=2)
        if target is not None:
            ax.axhline(100 * target, color=plotting.PALETTE["reference"], ls="--", lw=1,
                       label=f"{TARGET_ROW}'s best ({100 * target:.1f} %)")
    axes[1].set_xlim(0, early * per_epoch)
    early_rows = [n for n in ordered_rows(record) if n != TARGET_ROW
                  and (summ[n]["steps_to_target"] or np.inf) <= early * per_epoch]
    plotting.label(axes[0], title="CIFAR-10 test accuracy, the whole run", xlabel="SGD step",
                   ylabel="test accuracy (%)", legend=False)
    plotting.label(axes[1], title=f"The first {early:g} epochs: "
                   + (f"{in_words(early_rows)} "
                      f"cross{'es' if len(early_rows) == 1 else ''} the dashed line" if early_rows
                      else "no row crosses the dashed line yet"),
                   xlabel="SGD step", ylabel="test accuracy (%)", legend=False)
    plotting.legend_below(fig, axes, ncols=3)
    plotting.note(fig, _note(record))
    return fig


def plot_loss(record: results.Record):
    """Figure: training loss (mean over each logging interval) vs SGD steps, every seed of every
    row; a divergence as a dotted vertical line."""
    fig, (ax,) = plotting.panels(1, height=3.4)
    for name in ordered_rows(record):
        for j, h in enumerate(record.metrics[name]["history"]):
            loss = np.array([np.nan if v is None else v for v in h["loss"]], dtype=float)
            colour, line = _style(name)
            ax.plot(h["step"], loss, color=colour, ls=line, lw=1, alpha=0.8, label=name if j == 0 else None)
            if h["diverged"]:
                ax.axvline(h["diverged_at"], color=colour, ls=":", lw=1)
    plotting.label(ax, title="Training loss, every seed of every row", xlabel="SGD step",
                   ylabel="cross-entropy (nats)", legend=False)
    plotting.legend_below(fig, [ax], ncols=4)
    plotting.note(fig, _note(record, band=False))
    return fig

"""Chapter 05's figure: the accuracy and loss curves of every row, drawn from a stored record."""

from __future__ import annotations

import numpy as np

from ... import plotting, results
from .config import ROWS, TARGET_ROW
from .speedups import curve, ordered_rows, summary


def plot(record: results.Record):
    """Figure: test accuracy and training loss vs SGD steps, all rows; the target accuracy as a
    dashed line, where each row reaches it as a dot, where a seed diverged as a cross."""
    import matplotlib.pyplot as plt

    summ = summary(record)
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(13, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, name in enumerate(ordered_rows(record)):
        row = record.metrics[name]
        colour = colours[list(ROWS).index(name) % len(colours)] if name in ROWS else "0.5"
        steps, acc = curve(row)
        n_div = summ[name]["n_diverged"]
        label = name + (f" ({n_div}/{len(acc)} diverged)" if n_div else "")
        plotting.band(ax_acc, steps, 100 * acc, label=label, color=colour)
        reach = summ[name]["steps_to_target"]
        if reach is not None:  # later rows draw smaller dots, so rows reaching together all show
            ax_acc.plot([reach], [100 * summ[name]["target"]], "o", color=colour,
                        ms=max(3, 10 - 1.5 * i), zorder=3 + i)
        for h in row["history"]:
            loss = np.array([np.nan if v is None else v for v in h["loss"]], dtype=float)
            ax_loss.plot(h["step"], loss, color=colour, lw=1, alpha=0.8)
            if h["diverged"]:
                ax_acc.plot([h["diverged_at"]], [10.0], "x", color=colour, ms=9, mew=2)
                ax_loss.axvline(h["diverged_at"], color=colour, ls=":", lw=1)
    target = next(iter(summ.values()))["target"] if summ else None
    if target is not None:
        ax_acc.axhline(100 * target, color="0.4", ls="--", lw=1,
                       label=f"{TARGET_ROW}'s best ({100 * target:.1f} %)")
    plotting.label(ax_acc, title="CIFAR-10 test accuracy (dot: reaches Inception's best; "
                   "x: diverged)", xlabel="SGD step", ylabel="test accuracy (%)", legend=False)
    plotting.label(ax_loss, title="Training loss (mean over each quarter epoch)",
                   xlabel="SGD step", ylabel="cross-entropy (nats)", legend=False)
    fig.legend(*ax_acc.get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1.0, 0.5))
    cfg = record.config
    plotting.caption(fig, f"TinyInception width {cfg['width']}, {cfg['n_train']:,} training / "
                          f"{cfg['n_test']:,} test images, seeds {cfg['seeds']}. "
                          f"Source: {record.caption()}")
    fig.tight_layout()
    return fig


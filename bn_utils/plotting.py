"""One figure style for the whole book, and the few plot types the chapters share."""

from __future__ import annotations

import warnings
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

STYLE = {
    "figure.figsize": (7.0, 4.0),
    "figure.dpi": 110,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
}
COLORS = {"bn": "#d1495b", "no_bn": "#00798c", "noisy_bn": "#edae49", "other": "#30638e"}


def use_style() -> None:
    """Apply the book's matplotlib style (called once by each chapter's setup cell)."""
    plt.rcParams.update(STYLE)


def band(ax, x: Sequence, runs: Sequence[Sequence[float]], *, label: str, color=None,
         kind: str = "std") -> None:
    """Plot the mean of ``runs`` (seeds × points) with a mean ± std (or min–max) band."""
    ys = np.asarray(runs, dtype=float)
    if ys.ndim == 1:
        ys = ys[None]
    with warnings.catch_warnings():   # a point no run measured (all NaN) stays NaN, silently
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nanmean(ys, 0), np.nanstd(ys, 0)
        lo, hi = (mean - std, mean + std) if kind == "std" else (np.nanmin(ys, 0), np.nanmax(ys, 0))
    line, = ax.plot(x, mean, label=label if len(ys) == 1 else f"{label} (n={len(ys)})", color=color)
    if len(ys) > 1:
        ax.fill_between(x, lo, hi, alpha=0.25, color=line.get_color(), linewidth=0)


def percentile_bands(ax, x: Sequence, p15, p50, p85, *, label: str = "", color=None) -> None:
    """Plot a median line with the 15th–85th percentile band (the paper's Fig. 1(b, c) style)."""
    line, = ax.plot(x, p50, color=color, label=f"{label} median" if label else "median")
    ax.plot(x, p15, color=line.get_color(), lw=0.8, ls="--")
    ax.plot(x, p85, color=line.get_color(), lw=0.8, ls="--")
    ax.fill_between(x, p15, p85, color=line.get_color(), alpha=0.15, linewidth=0,
                    label=f"{label} 15th–85th pct" if label else "15th–85th percentile")


def label(ax, *, title: str, xlabel: str, ylabel: str, legend: bool = True) -> None:
    """Set a subplot's title and axis labels (with units), and show its legend."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend()


def caption(fig, text: str) -> None:
    """Write a source line (profile, commit, device) under a figure."""
    fig.text(0.01, -0.02, text, fontsize=8, color="0.35", ha="left", va="top")

"""What chapters 7 and 8's figures share: one run group's curve, its mean and a band over seeds."""

from __future__ import annotations

import warnings

import numpy as np

from ...book import plotting
from .analysis import seeds_of, stacked


def plot_curve(ax, runs: dict, group: str, key: str, x_key: str, *, label: str, color=None,
               column: int | None = None, kind: str = "std") -> bool:
    """Plot ``key`` of a run group over ``x_key`` (mean with a band over seeds: ``kind`` "std"
    or "minmax"; "mean": the mean alone, where the bands of close curves would merge); return
    whether there was anything to plot. ``column`` picks one column of a 2-D measure."""
    members = seeds_of(runs, group)
    if column is not None:
        members = [{**m, key: np.asarray(m[key])[:, column]} for m in members if key in m]
    x, ys = stacked(members, key, x_key)
    if ys.size == 0:
        return False
    if kind != "mean":
        plotting.band(ax, x, ys, label=label, color=color, kind=kind)
        return True
    with warnings.catch_warnings():   # a point no seed measured stays NaN, silently
        warnings.simplefilter("ignore", RuntimeWarning)
        line, = ax.plot(x, np.nanmean(ys, 0), label=label, color=color)
    line.bn_series = (label, len(ys))   # legend_below writes the seed count, as for a band
    return True

"""One figure style for the whole book, and the few plot types the chapters share.

A figure is made for the page: ``panels`` lays out at most two panels per row at the width of the
book's text column, and the style's fonts are at least 10 pt at that size. Colours come from one
palette with one meaning each in every chapter (red = with BN, teal = without BN, ...), and
what the figure's numbers come from goes to a note (``note``) that ``book.show_figure`` prints
under the figure, where the book folds it into a collapsed "Source" line."""

from __future__ import annotations

import warnings
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from cycler import cycler

# The book's one palette. A role keeps its colour in every chapter: what is drawn red is BN.
PALETTE = {
    "bn": "#d1495b",         # red: with BN (standard, correct BN)
    "no_bn": "#00798c",      # teal: without BN (the plain network)
    "noisy_bn": "#edae49",   # yellow: BN with injected noise, or a broken BN
    "other": "#30638e",      # blue: another normalisation or a variant
    "extra": "#6a4c93",      # purple: a further variant
    "green": "#66a182",      # green and brown: the third and fourth of several variants
    "brown": "#9c6644",
    "reference": "#222222",  # near black: a true value, a theory curve, an exact statistic
    "muted": "#8c8c8c",      # grey: context (chance level, guide lines)
}
# Series that are neither BN nor no-BN (momenta, activations, initialisations, other
# normalisations) take these, in order; they are also matplotlib's default cycle, so an unnamed
# line is never red or teal, nor the yellow that marks a noisy or broken BN.
SERIES = ("other", "extra", "green", "brown", "muted")

# The text column is 688 px wide at a 1280 px window; a figure PAGE_WIDTH inches wide at DPI
# dots per inch is shown at (nearly) its natural size, so 10 pt in matplotlib is 10 pt on screen.
PAGE_WIDTH = 6.8
DPI = 100
MAX_PANELS_PER_ROW = 2
MIN_FONT_PT = 10

STYLE = {
    "figure.figsize": (PAGE_WIDTH, 3.4),
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "font.size": MIN_FONT_PT,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": MIN_FONT_PT + 1,
    "axes.labelsize": MIN_FONT_PT,
    "xtick.labelsize": MIN_FONT_PT,
    "ytick.labelsize": MIN_FONT_PT,
    "legend.fontsize": MIN_FONT_PT,
    "legend.title_fontsize": MIN_FONT_PT,
    "figure.titlesize": MIN_FONT_PT + 1,
    "legend.frameon": False,
    "axes.prop_cycle": cycler(color=[PALETTE[k] for k in SERIES]),
}


def use_style() -> None:
    """Apply the book's matplotlib style (called once by each chapter's setup cell)."""
    plt.rcParams.update(STYLE)


def series_colors(n: int) -> list[str]:
    """Return ``n`` colours for series that are neither BN nor no-BN (never red or teal)."""
    if n > len(SERIES):
        raise ValueError(f"{n} series: the palette has {len(SERIES)} colours besides BN/no-BN; "
                         "split the figure")
    return [PALETTE[k] for k in SERIES[:n]]


def panels(n: int = 1, *, ncols: int | None = None, height: float = 3.0, wide: Sequence[int] = (),
           sharex: bool = False, sharey: bool = False):
    """Return ``(fig, axes)``: a figure of the page's width with ``n`` panels in rows of at most
    two (``ncols``, default ``min(n, 2)``), each row ``height`` inches tall; panels listed in
    ``wide`` take a whole row. ``sharey``/``sharex`` share one scale across all panels (use it
    when the prose compares panels). The figure uses constrained layout (no tight_layout)."""
    ncols = min(n, MAX_PANELS_PER_ROW) if ncols is None else ncols
    if not 1 <= ncols <= MAX_PANELS_PER_ROW:
        raise ValueError(f"ncols={ncols}: at most {MAX_PANELS_PER_ROW} panels per row fit the "
                         "page; use more rows or another figure")
    if n < 1 or any(not 0 <= i < n for i in wide):
        raise ValueError(f"n={n} panels, wide={tuple(wide)}")
    rows, row, col = [], 0, 0          # (row, first column, columns spanned) of each panel
    for i in range(n):
        if i in wide or ncols == 1:
            if col:
                row, col = row + 1, 0
            rows.append((row, 0, ncols))
            row += 1
        else:
            rows.append((row, col, 1))
            col += 1
            if col == ncols:
                row, col = row + 1, 0
    nrows = row + (col > 0)
    fig = plt.figure(figsize=(PAGE_WIDTH, height * nrows), layout="constrained")
    grid = fig.add_gridspec(nrows, ncols)
    axes = []
    for r, c, span in rows:
        share = {}
        if axes and sharey:
            share["sharey"] = axes[0]
        if axes and sharex:
            share["sharex"] = axes[0]
        axes.append(fig.add_subplot(grid[r, c:c + span], **share))
        if sharey and c > 0:            # one scale: its numbers once, on the row's first panel
            axes[-1].tick_params(labelleft=False)
    return fig, axes


def plain_log_ticks(ax, axis: str = "y", decades: bool = False,
                    subs: tuple = (1.0, 2.0, 5.0)) -> None:
    """Label a log axis with plain numbers (0.2, 0.5, 1, 2, 5, ...) instead of powers of ten,
    and no minor labels, so that its ticks stay legible at the page's size; ``decades``: ticks
    at powers of ten only (0.001, 0.01, 0.1, 1), for an axis that spans several; ``subs``: the
    ticks within a decade (``(1, 2, 3, 5)`` for an axis of about one decade)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    subs = (1.0,) if decades else tuple(subs)
    target.set_major_locator(LogLocator(base=10, subs=subs, numticks=6 if decades else 8))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())


def panels_per_row(fig) -> int:
    """Return the largest number of panels (axes that are not colour bars) side by side in a row
    of ``fig``: two axes share a row when their vertical extents overlap by more than half."""
    boxes = [ax.get_position() for ax in fig.axes
             if ax.get_label() not in ("<colorbar>", "<legend>") and ax.get_visible()]
    most = 0
    for b in boxes:
        same_row = [o for o in boxes
                    if min(b.y1, o.y1) - max(b.y0, o.y0) > 0.5 * min(b.height, o.height)]
        most = max(most, len(same_row))
    return most


def note(fig, text: str) -> None:
    """Attach to ``fig`` what its numbers are (data, seeds, settings): ``book.show_figure`` prints
    it with the record's provenance under the figure, not inside the image."""
    fig.bn_note = text


def _empty_cell(axes):
    """Return the free cells at the right of the last row of ``axes``' grid (as a subplot spec),
    or None when that row is full or the axes are not on one grid."""
    specs = [ax.get_subplotspec() for ax in axes]
    if not specs or any(s is None for s in specs):
        return None
    grid = specs[0].get_gridspec()
    if any(s.get_gridspec() is not grid for s in specs):
        return None
    nrows, ncols = grid.get_geometry()
    used = max((s.colspan.stop for s in specs if s.rowspan.stop == nrows), default=ncols)
    return grid[nrows - 1, used:] if ncols > 1 and used < ncols else None


def legend_below(fig, axes, ncols: int = 2):
    """Put one legend for all panels under the figure (the handles of the first panel that has
    labels, plus any labels only later panels have), or in the free cell beside the last panel
    when an odd panel out leaves one (rather than an empty slot and a legend below it), in at
    most ``ncols`` columns: fewer when
    that many would be wider than the figure (a legend wider than the page widens the saved
    image, and the page then shrinks the whole figure to fit)."""
    handles, labels, seeds = [], [], {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            # one entry per series: "BN (n=3)" in one panel and "BN" (one seed) in another merge;
            # band() keeps the series name and its seed count on the line it draws
            base, n = getattr(h, "bn_series", (lab, 1))
            if base not in seeds:
                handles.append(h)
                labels.append(base)
                seeds[base] = set()
            seeds[base].add(n)
    labels = [base if seeds[base] == {1} else
              f"{base} (n={'–'.join(str(k) for k in sorted({min(seeds[base]), max(seeds[base])}))})"
              for base in labels]
    gap = _empty_cell(axes)
    if gap is not None:                 # an odd panel out leaves a cell free: the legend goes there
        holder = fig.add_subplot(gap)
        holder.axis("off")
        holder.set_label("<legend>")
        return holder.legend(handles, labels, loc="center", ncols=1)
    renderer = fig.canvas.get_renderer()
    for n in range(max(1, min(ncols, len(labels))), 0, -1):
        legend = fig.legend(handles, labels, loc="outside lower center", ncols=n)
        if n == 1 or legend.get_window_extent(renderer).width <= fig.bbox.width:
            return legend
        legend.remove()


def band(ax, x: Sequence, runs: Sequence[Sequence[float]], *, label: str, color=None,
         kind: str = "std") -> None:
    """Plot the mean of ``runs`` (seeds × points) with a mean ± std (or min–max) band."""
    ys = np.asarray(runs, dtype=float)
    if ys.ndim == 1:
        ys = ys[None]
    with warnings.catch_warnings():   # a point no run measured (all NaN) stays NaN, silently
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(ys, 0)
        std = np.nanstd(ys, 0, ddof=1) if len(ys) > 1 else np.zeros_like(mean)   # the sample std
        lo, hi = (mean - std, mean + std) if kind == "std" else (np.nanmin(ys, 0), np.nanmax(ys, 0))
    line, = ax.plot(x, mean, label=label if len(ys) == 1 else f"{label} (n={len(ys)})", color=color)
    line.bn_series = (label, len(ys))   # what legend_below merges across panels
    if len(ys) > 1:
        ax.fill_between(x, lo, hi, alpha=0.25, color=line.get_color(), linewidth=0)


def percentile_bands(ax, x: Sequence, p15, p50, p85, *, label: str = "", color=None) -> None:
    """Plot a median line with the 15th–85th percentile band (the paper's Fig. 1(b, c) style)."""
    line, = ax.plot(x, p50, color=color, label=f"{label} median" if label else "median")
    ax.plot(x, p15, color=line.get_color(), lw=0.8, ls="--")
    ax.plot(x, p85, color=line.get_color(), lw=0.8, ls="--")
    ax.fill_between(x, p15, p85, color=line.get_color(), alpha=0.15, linewidth=0,
                    label=f"{label} 15th–85th pct" if label else "15th–85th percentile")


def percentile_legend(fig):
    """Put under ``fig`` the legend of its :func:`percentile_bands` panels in grey, since each
    panel draws them in its own network's colour (a teal swatch would name BN's red band too)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    grey = PALETTE["muted"]
    handles = [Line2D([], [], color=grey), Patch(facecolor=grey, alpha=0.3, edgecolor=grey, ls="--")]
    return fig.legend(handles, ["median", "15th–85th percentile (colours as above)"],
                      loc="outside lower center", ncols=2)


def label(ax, *, title: str, xlabel: str, ylabel: str, legend: bool = True) -> None:
    """Set a subplot's title and axis labels (with units), and show its legend. A linear axis of
    training steps gets at most five ticks written 10k, 20k, ... (legible in a half-width panel)."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if "step" in xlabel.lower() and ax.get_xscale() == "linear":
        compact_steps(ax)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend()


def compact_steps(ax, axis: str = "x") -> None:
    """Write a linear axis of counts with at most five ticks, thousands as 10k (0, 10k, 20k)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 5, 10], integer=True, min_n_ticks=3))
    target.set_major_formatter(FuncFormatter(
        lambda v, _: f"{v / 1000:g}k" if abs(v) >= 1000 else f"{v:g}"))

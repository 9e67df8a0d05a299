"""What every chapter's setup cell needs: the style, the device line, and glue for prose numbers."""

from __future__ import annotations

import os
import platform
import re
from typing import Any, Callable, Sequence

import numpy as np

from .profiles import Config


def setup(cfg: Config | None = None):
    """Apply the plot style, print the profile, device and where stored results come from, and
    return the device."""
    import torch

    from . import plotting
    from .results import device_description
    from ..runtime import default_device

    _inline_figures()
    plotting.use_style()
    device = default_device()
    profile = cfg.profile if cfg is not None else "none (this page trains nothing)"
    changes = cfg.changes() if cfg is not None else {}
    extra = f" with {', '.join(f'{k}={v!r}' for k, v in changes.items())}" if changes else ""
    print(f"profile: {profile}{extra}\ndevice: {device_description(device)}\n"
          f"torch {torch.__version__}, python {platform.python_version()}\n{stored_results_line()}")
    return device


def _inline_figures() -> None:
    """In a notebook kernel, show figures inline even if MPLBACKEND=Agg was inherited (with Agg a
    kernel draws every figure and displays none: the book would have no plots), and at twice their
    dots per inch, shown at their natural size (sharp on a high-density screen)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return
    import matplotlib

    if "inline" not in matplotlib.get_backend():
        shell.run_line_magic("matplotlib", "inline")
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats("retina")   # a PNG of 2x the pixels, with its natural size as metadata


def stored_results_line() -> str:
    """Return one line saying where stored results are read from and how many records are there."""
    from .results import REPO_DIR, results_dir

    root = results_dir()
    count = sum(1 for _ in root.glob("*/*.json")) if root.is_dir() else 0
    if os.environ.get("BN_RESULTS_DIR"):
        where = "$BN_RESULTS_DIR"
    elif root.parent == REPO_DIR:
        where = "the checkout's results/"
    else:
        where = "./results"
    if count == 0:
        return f"stored results: none found in {where}; every experiment runs at this profile"
    return f"stored results: {count} records in {where}"


# The line book.show_figure prints under a figure; the book (tools/book_html.py) folds a printed
# line that starts with it into a collapsed note inside the figure, under its caption.
SOURCE_PREFIX = "Source: "


def provenance(source: Any) -> str:
    """Return one line saying where a figure's numbers come from: a Record's profile, commit,
    device and date; for a Config (a figure computed on the page) its profile and this checkout's
    commit and device; text as it is."""
    from .results import Record, device_description, git_commit

    if source is None or isinstance(source, str):
        return source or ""
    if isinstance(source, Record):
        return source.caption()
    if isinstance(source, Config):
        return f"{source.profile} profile (this run: commit {git_commit()}, {device_description()})"
    raise TypeError(f"a figure's source is a Record, a Config or text, not {type(source).__name__}")


def show_figure(fig, source: Any = None) -> None:
    """Show ``fig`` (the caption, label and alt text are its cell's ``mystnb`` metadata), close
    it, and print under it what it shows (``plotting.note``) and where its numbers come from
    (``source``: a Record, a Config or text), which the book folds into a collapsed note."""
    import matplotlib.pyplot as plt

    from .plotting import MAX_PANELS_PER_ROW, panels_per_row

    side_by_side = panels_per_row(fig)
    if side_by_side > MAX_PANELS_PER_ROW:   # a figure made for the page, or no figure
        plt.close(fig)
        raise ValueError(f"the figure puts {side_by_side} panels side by side: at most "
                         f"{MAX_PANELS_PER_ROW} per row are legible at the page's width "
                         "(lay it out with plotting.panels)")
    try:
        from IPython.display import display
    except ImportError:   # plain Python: nothing to show on
        display = None
    if display is not None:
        display(fig)
    plt.close(fig)
    parts = [getattr(fig, "bn_note", ""), provenance(source)]
    print(SOURCE_PREFIX + " ".join(p.strip() for p in parts if p and p.strip()))


def glue(name: str, value: Any) -> Any:
    """Make ``value`` quotable in the chapter's prose as {glue:text}`name:.2f`; a no-op outside
    Jupyter Book (e.g. in Colab). Returns the value."""
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return value
    # a NumPy scalar's text is "np.float64(0.5)", which {glue:text}`name:.2f` cannot format; a
    # glued sentence wraps between its values, never inside one ("± 4 %")
    shown = value.item() if isinstance(value, np.generic) else whole_numbers(value) if isinstance(value, str) else value
    _glue(name, shown, display=False)
    return value


def sig(value: float, digits: int = 3, sign: bool = False, zeros: bool = False) -> str:
    """Return ``value`` rounded to ``digits`` significant digits, written as a reader writes it:
    ``14,900`` and ``440`` (a value with at least ``digits`` digits before the point is a whole
    number, with thousands separators), ``0.0367`` and ``18.9`` in decimals, and in scientific
    notation only below 0.0001 or from a million on (``1.35e-06``, ``8.2e+14``), never
    ``1.49e+04``. ``sign`` writes a ``+`` before a positive value; ``zeros`` keeps trailing zeros
    (``1.00``, ``0.170``, ``2.00e+06``: in a column of measurements a bare ``1`` beside ``0.613``
    reads as exact). The book's one format for quantities that span orders of magnitude
    (chapters 7 and 8's landscape measures)."""
    value = float(value)
    plus = "+" if sign else ""
    if not np.isfinite(value) or value == 0:
        return f"{value:{plus}g}"
    rounded = float(f"{value:.{digits - 1}e}")
    if 10 ** (digits - 1) <= abs(rounded) < 1e6:
        return f"{rounded:{plus},.0f}"
    return f"{rounded:{plus}{'#' if zeros else ''}.{digits}g}"


def _readable(value: float) -> str:
    """Return a float as text without hiding its size: a whole number without decimals (with
    thousands separators, below a million), anything else with 4 significant digits (:func:`sig`)."""
    if value == int(value) and abs(value) < 1e6:
        return f"{int(value):,}"
    return sig(value, 4)


# A space between a number and its unit or spread ("72.7 ± 1.0 %", "3 seeds") becomes a no-break
# space, so a long cell wraps between values, never inside one.
_UNIT_SPACE = re.compile(r"(?<=\d) (?=(?:%|±|points?\b|x\b|seeds?\b|members?\b))|(?<=±) (?=[-+−.\d])")


# A hyphen that stands for a negative number's sign ("-5.8 ± 4.5", "(-0.03)") is set as a minus
# sign (U+2212); one inside a word, a date, a range or an exponent ("BN-x5", "1e-06") stays.
_MINUS = re.compile(r"(?<![\w.,\-])-(?=\.?\d)")


def whole_numbers(text: str) -> str:
    """Return ``text`` as the page sets it: the spaces inside each number-with-unit
    ("74.8 ± 0.4 %") no-break, and a negative number's sign a minus (−), not a hyphen."""
    return _MINUS.sub("\u2212", _UNIT_SPACE.sub("\u00a0", text))


# A number in scientific notation ("1e-06", "1.2e+14") breaks after its exponent's sign on a
# narrow screen; in a table's HTML it is kept on one line.
_SCIENTIFIC = r"(?<![\w.])\d+(?:\.\d+)?e[-+]\d+"
# A short formula ("‖G − G′‖/‖G‖", "cos(G, G′)") or a measure's name ("top-1 %") read as one word.
_FORMULA = r"‖[^‖<>]{1,12}‖(?:\s?/\s?‖[^‖<>]{1,12}‖)?|cos\([^()<>]{1,12}\)|top-\d+(?:\s?%)?"
_UNBROKEN = re.compile(f"{_SCIENTIFIC}|{_FORMULA}")


def _unbroken_html(text: str) -> str:
    """Return ``text`` (already through :func:`whole_numbers`) for an HTML cell: each number in
    scientific notation and each short formula wrapped in a no-wrap span."""
    return _UNBROKEN.sub(lambda m: f'<span style="white-space:nowrap">{m.group(0)}</span>', text)


class Table:
    """A small table that shows as HTML in the book, Markdown in Colab and text in a console."""

    def __init__(self, rows: dict[str, dict[str, Any]] | list[dict[str, Any]],
                 fmt: str | Callable | dict[str, str | Callable] | None = None, index: str = "", empty: str = ""):
        if isinstance(rows, dict):
            rows = [{index: name, **values} for name, values in rows.items()]
        self.rows = rows
        self.empty = empty      # shown instead of a table with no rows
        self.columns = list(dict.fromkeys(k for r in rows for k in r))
        self.fmt = fmt

    def cell(self, column: str, value: Any) -> str:
        """Return one value as text: floats through the column's format (a format string or a
        function such as :func:`sig`; by default a readable one), the rest with str."""
        fmt = self.fmt.get(column) if isinstance(self.fmt, dict) else self.fmt
        if isinstance(value, float):
            if value != value:
                return "diverged"
            return fmt(value) if callable(fmt) else fmt.format(value) if fmt else _readable(value)
        return "—" if value is None else str(value)

    def text_rows(self) -> list[list[str]]:
        return [[self.cell(c, r.get(c)) for c in self.columns] for r in self.rows]

    def transposed(self, header: Sequence[str], index: str = "", label=None) -> "Table":
        """Return this table with rows and columns swapped, for a table of few rows and many
        columns that would not fit the page: each row becomes a column named by its ``header``
        fields (joined by spaces, or ``label(row)``), every other column a row named ``index``. A string format
        (``fmt``) carries over; a per-column one cannot (its columns become rows)."""
        if isinstance(self.fmt, dict):
            raise ValueError("a per-column format does not survive transposing: give one format string")
        keep = [c for c in self.columns if c not in header]
        names = [label(r) if label else " ".join(str(r.get(h, "")) for h in header) for r in self.rows]
        if len(set(names)) != len(names):
            raise ValueError(f"header {tuple(header)} does not tell the rows apart: {names}")
        return Table({c: {n: r.get(c) for n, r in zip(names, self.rows)} for c in keep},
                     fmt=self.fmt, index=index, empty=self.empty)

    def _repr_markdown_(self) -> str:
        if not self.rows:
            return self.empty

        def esc(text: str) -> str:  # a "|" inside a cell (e.g. "max |x − y|") would split it
            return str(text).replace("|", "\\|")

        head = "| " + " | ".join(map(esc, self.columns)) + " |\n|" + "---|" * len(self.columns)
        return head + "".join("\n| " + " | ".join(map(esc, r)) + " |" for r in self.text_rows())

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<p>{self.empty}</p>" if self.empty else ""
        th = "".join(f"<th>{_unbroken_html(whole_numbers(str(c)))}</th>" for c in self.columns)

        def td(raw: Any, text: str) -> str:   # numbers and short labels ("4 × 5") never wrap
            text = whole_numbers(text)
            if isinstance(raw, (int, float, np.number)) and not isinstance(raw, bool):
                return f'<td class="bn-num">{text}</td>'   # the class keeps it on one line
            short, text = len(text) <= 14, _unbroken_html(text)
            return f'<td class="bn-short">{text}</td>' if short else f"<td>{text}</td>"

        body = "".join("<tr>" + "".join(td(r.get(c), v) for c, v in zip(self.columns, texts)) + "</tr>"
                       for r, texts in zip(self.rows, self.text_rows()))
        return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        if not self.rows:
            return self.empty
        rows = [self.columns, *self.text_rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.columns))]
        return "\n".join("  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in rows)


def differences(cfg: Config, shown: dict) -> Table:
    """Return a table of the parameters where the record ``shown`` (its config, a dict) differs
    from this run's ``cfg``, or one sentence saying that it was made with this run's values."""
    return Table(cfg.differences(shown),
                 empty=f"The record shown was made with this run's configuration ({cfg.profile}).")


class RecordShown:
    """Which record a chapter's numbers come from, in one line, with the settings where it differs
    from this run folded under it (a collapsed note in the book; both lines in plain text): the
    reader's own run and the stored record the page shows are told apart without a table of
    settings in the reading flow."""

    def __init__(self, cfg: Config, record: Any):
        self.table = differences(cfg, record.config)
        n = len(self.table.rows)
        self.summary = (f"Numbers from the {record.caption()}" + (
            f"; {'1 of its settings differs' if n == 1 else f'{n} of its settings differ'} from this "
            f"run's ({cfg.profile}):" if n
            else f", made with this run's configuration ({cfg.profile})."))

    def _repr_html_(self) -> str:
        import html

        # a date never breaks at its hyphens ("2026-" / "12-03")
        text = re.sub(r"(\d{4}-\d{2}-\d{2})", r'<span class="bn-nobr">\1</span>', html.escape(self.summary))
        if not self.table.rows:
            return f'<p class="bn-record">{text}</p>'
        return f'<details class="bn-record"><summary>{text}</summary>{self.table._repr_html_()}</details>'

    def __repr__(self) -> str:
        return self.summary + ("\n" + repr(self.table) if self.table.rows else "")


def record_shown(cfg: Config, record: Any) -> RecordShown:
    """Return which record the page shows (its profile, commit, device and date) and, folded,
    where its settings differ from this run's ``cfg`` (:func:`differences`)."""
    return RecordShown(cfg, record)


class Source:
    """The source code of a function, shown as a highlighted block (one hop from prose to code)."""

    def __init__(self, obj: Any):
        import inspect

        self.code = inspect.getsource(obj)
        self.where = f"{obj.__module__}.{obj.__qualname__}"

    def _repr_markdown_(self) -> str:
        return f"`{self.where}`\n\n```python\n{self.code}```"

    def __repr__(self) -> str:
        return self.code


def show_source(obj: Any) -> Source:
    """Return a displayable view of ``obj``'s source code (a function or class of bn_utils)."""
    return Source(obj)


def in_words(items: Sequence[str]) -> str:
    """Return ``items`` as a list in prose: "A", "A and B", "A, B and C" ("" for none)."""
    items = list(items)
    return " and ".join([", ".join(items[:-1]), items[-1]]) if len(items) > 1 else "".join(items)


def how_many(n, noun: str, plural: str | None = None) -> str:
    """Return a count with its noun in agreeing number: ``how_many(1, "seed")`` is "1 seed",
    ``how_many(3, "search", "searches")`` "3 searches"; several counts give their range,
    ``how_many([1, 3], "seed")`` "1–3 seeds"."""
    ns = sorted(set(n)) if isinstance(n, (list, tuple, set, frozenset)) else [n]
    if not ns:
        raise ValueError(f"how_many: no count of {noun!r} given")
    text = f"{ns[0]}" + (f"–{ns[-1]}" if len(ns) > 1 else "")
    return f"{text} {noun if ns[-1] == 1 else (plural or noun + 's')}"


def seed_std(values) -> float:
    """Return the spread over seeds of ``values`` (one per seed): the sample standard deviation
    (ddof=1), as every "± std" of the book, and 0 for a single seed."""
    v = np.asarray(values, dtype=float)
    return float(v.std(ddof=1)) if v.size > 1 else 0.0


def pm(mean: float, std: float, n: int, fmt="{:.4f}") -> str:
    """Return ``mean ± std`` as text, the mean alone for one seed: the one way the book writes a
    result over seeds (``fmt`` a format string or a function of a number)."""
    text = fmt.format if isinstance(fmt, str) else fmt
    return text(mean) + (f" ± {text(std)}" if n > 1 else "")


def mean_std(values, fmt: str = "{:.4f}", diverged_at=None, spread: bool = True) -> str:
    """Return ``mean ± std`` of the finite values as text (:func:`seed_std`; with ``(k/n)`` if
    some are missing; a
    missing value of a run that diverged says ``diverged at step N``, given ``diverged_at`` per
    value; ``spread=False``: the mean alone), written by :func:`pm`."""
    v = np.asarray(values, dtype=float)
    ok = v[np.isfinite(v)]
    div = sorted({int(diverged_at[i]) for i in np.flatnonzero(~np.isfinite(v))
                  if diverged_at is not None and diverged_at[i] is not None})
    note = ("diverged at step " + ", ".join(f"{d:,}" for d in div)) if div else ""
    if not len(ok):
        return note or f"not reached (0/{len(v)})"
    text = pm(ok.mean(), seed_std(ok), len(ok) if spread else 1, fmt)
    if len(ok) < len(v):
        text += f" ({len(ok)}/{len(v)}" + (f"; {note}" if note else "") + ")"
    return text

"""bn_utils.book.plotting and book.show_figure: figures made for the page (two panels per row at
most, the column's width, fonts of 10 pt or more), one palette, and the source line that the
book folds into a note under each figure (tools/book_html.py)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from docutils import nodes  # noqa: E402
from docutils.frontend import get_default_settings  # noqa: E402
from docutils.parsers.rst import Parser  # noqa: E402
from docutils.utils import new_document  # noqa: E402

from bn_utils import book
from bn_utils.book import plotting  # noqa: E402
from tools import book_html  # noqa: E402


@pytest.fixture(autouse=True)
def _style():
    with plt.rc_context():
        plotting.use_style()
        yield
    plt.close("all")


@pytest.mark.parametrize("n, wide, rows", [(1, (), 1), (2, (), 1), (3, (), 2), (3, (0,), 2),
                                           (4, (), 2), (5, (2,), 3)])
def test_panels_put_at_most_two_panels_in_a_row_at_the_page_width(n, wide, rows):
    fig, axes = plotting.panels(n, wide=wide, height=2.5)
    assert len(axes) == n and plotting.panels_per_row(fig) <= 2
    assert tuple(fig.get_size_inches()) == (plotting.PAGE_WIDTH, 2.5 * rows)
    assert fig.dpi * plotting.PAGE_WIDTH <= 688   # the text column's width at a 1280 px window


def test_panels_refuse_three_in_a_row_and_panels_per_row_counts_them():
    with pytest.raises(ValueError, match="at most 2 panels per row"):
        plotting.panels(3, ncols=3)
    fig, _ = plt.subplots(1, 3)
    assert plotting.panels_per_row(fig) == 3


def test_shared_y_axis_gives_every_panel_one_scale():
    fig, axes = plotting.panels(2, sharey=True)
    axes[0].plot([0, 1], [0, 10])
    axes[1].plot([0, 1], [0, 1])
    assert axes[0].get_ylim() == axes[1].get_ylim()


def test_every_font_of_the_style_is_at_least_10_pt():
    from matplotlib.font_manager import FontProperties

    for key in ("font.size", "axes.titlesize", "axes.labelsize", "xtick.labelsize",
                "ytick.labelsize", "legend.fontsize"):
        size = plt.rcParams[key]
        points = size if isinstance(size, (int, float)) else FontProperties(size=size).get_size_in_points()
        assert points >= plotting.MIN_FONT_PT, key


def test_the_default_colour_cycle_never_draws_red_or_teal():
    cycle = [c["color"] for c in plt.rcParams["axes.prop_cycle"]]
    assert plotting.PALETTE["bn"] not in cycle and plotting.PALETTE["no_bn"] not in cycle
    assert plotting.series_colors(3) == cycle[:3]
    with pytest.raises(ValueError):
        plotting.series_colors(len(plotting.SERIES) + 1)


def test_show_figure_prints_the_note_and_the_source_after_the_figure(capsys):
    from bn_utils.experiments.ch03_backprop import BackpropConfig

    fig, _ = plotting.panels(1)
    plotting.note(fig, "One feature, batch of 8.")
    book.show_figure(fig, BackpropConfig.for_profile("smoke"))
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert out.startswith(book.SOURCE_PREFIX + "One feature, batch of 8. smoke profile (this run")
    assert not plt.fignum_exists(fig.number)
    assert book_html.SOURCE_PREFIX == book.SOURCE_PREFIX   # the extension imports no bn_utils
    with pytest.raises(TypeError):
        book.provenance(3)


def test_show_figure_refuses_three_panels_in_a_row_with_a_clear_error(capsys):
    fig, _ = plt.subplots(1, 3)                  # made without plotting.panels
    with pytest.raises(ValueError, match="3 panels side by side: at most 2"):
        book.show_figure(fig, "a test")
    assert not plt.fignum_exists(fig.number) and capsys.readouterr().out == ""
    fig, _ = plotting.panels(3)                  # two, then one: shown
    book.show_figure(fig, "a test")


def _doctree_with(figure: bool, printed: str):
    doc = new_document("test", get_default_settings(Parser))
    cell = nodes.container()
    if figure:
        cell += nodes.figure("", nodes.image(uri="x.png"), nodes.caption("", "What to see."))
    cell += nodes.literal_block(printed, printed, classes=["output", "stream"])
    doc += cell
    return doc, cell


def test_the_book_folds_the_source_line_into_a_collapsed_note_inside_the_figure():
    doc, cell = _doctree_with(True, "Source: quick profile (commit abc, cpu)\nmore output\n")
    book_html._fold_sources(None, doc)
    fig = cell.children[0]
    raw = [n for n in fig.children if isinstance(n, nodes.raw)]
    assert len(raw) == 1 and raw[0].astext().startswith('<details class="bn-source">')
    assert "quick profile (commit abc, cpu)" in raw[0].astext()
    assert [b.astext() for b in cell.findall(nodes.literal_block)] == ["more output\n"]


def test_a_source_line_without_a_figure_becomes_a_note_in_its_place_and_is_escaped():
    doc, cell = _doctree_with(False, "Source: <b>x</b>\n")
    book_html._fold_sources(None, doc)
    assert not list(cell.findall(nodes.literal_block))
    assert "&lt;b&gt;x&lt;/b&gt;" in cell.children[0].astext()


def test_the_book_leaves_the_nbval_marker_out_of_a_cells_listing_and_keeps_the_rest():
    doc = new_document("cell", get_default_settings(Parser))
    source = "# NBVAL_CHECK_OUTPUT\nprint(1)\n"
    doc += nodes.literal_block(source, source, classes=["cell_input"], language="ipython3")
    printed = "# NBVAL_CHECK_OUTPUT\n"        # a cell's output that happens to print it stays
    doc += nodes.literal_block(printed, printed, classes=["output", "stream"], language="none")
    book_html._drop_nbval_marker(None, doc)
    listing, output = doc.findall(nodes.literal_block)
    assert listing.astext() == "print(1)\n" and listing["language"] == "ipython3"
    assert "cell_input" in listing["classes"] and output.astext() == printed


@pytest.mark.parametrize("text, whole", [
    ("an error of 1.2e-07 for one image", ["1.2e-07"]),
    ("4 % every 8 epochs, 74.8 ± 0.4 % over seeds", ["4 %", "74.8 ± 0.4 %"]),
    ("18.7–21.8x fewer steps, −0.3 ± 0.5 points", ["18.7–21.8x", "−0.3 ± 0.5"]),
    # names, dates and numbers without a place to break are left as they are
    ("BN-x5's top-1 % on 2026-11-25: 10,250 steps, 12.4x", []),
])
def test_the_book_keeps_each_number_with_its_exponent_range_and_unit_in_one_piece(text, whole):
    pieces = book_html.whole_number_pieces(text)
    assert "".join(p for p, _ in pieces) == text
    assert [p for p, keep in pieces if keep] == whole


def test_numbers_in_prose_and_printed_lines_go_in_no_wrap_spans_and_short_literals_stay_whole():
    doc = new_document("page", get_default_settings(Parser))
    doc += nodes.paragraph("", "", nodes.Text("sooner by 4 % with "),
                           nodes.literal("1e-5", "1e-5"), nodes.Text("."))
    printed = "error <1.2e-07> for one image\n"
    doc += nodes.literal_block(printed, printed, classes=["output", "stream"])
    book_html._keep_numbers_whole(None, doc)
    spans = [n for n in doc.findall(nodes.inline) if "bn-nobr" in n["classes"]]
    assert [s.astext() for s in spans] == ["4 %"]
    assert doc.children[0].astext() == "sooner by 4 % with 1e-5."
    assert "bn-short" in next(iter(doc.findall(nodes.literal)))["classes"]
    raw = next(iter(doc.findall(nodes.raw))).astext()
    assert '<span class="bn-nobr">1.2e-07</span>' in raw and "&lt;" in raw   # escaped
    assert 'class="output stream' in raw


def test_a_linear_step_axis_gets_few_compact_ticks_and_log_axes_plain_numbers():
    fig, (ax, log) = plotting.panels(2)
    ax.plot([0, 50_000], [0, 1])
    plotting.label(ax, title="t", xlabel="training step", ylabel="y")
    log.plot([0.01, 10], [1, 2])
    log.set_xscale("log")
    plotting.plain_log_ticks(log, "x")
    fig.canvas.draw()
    lo, hi = ax.get_xlim()
    steps = [t.get_text() for t in ax.get_xticklabels() if t.get_text() and lo <= t.get_position()[0] <= hi]
    assert 3 <= len(steps) <= 6 and steps[0] == "0" and all(t.endswith("k") for t in steps[1:]), steps
    assert {"0.01", "0.1", "1", "10"} <= {t.get_text() for t in log.get_xticklabels()}


def _saved_width(fig) -> int:
    """The width in page pixels at which the notebook shows ``fig`` (its PNG holds twice as
    many, for a high-density screen, and gives this width)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return Image.open(buf).size[0]


def test_a_legend_below_takes_fewer_columns_when_it_would_widen_the_figure():
    fig, axes = plotting.panels(2)
    labels = ["standard (n=3)", "BN (n=3)", "noisy BN (n=3)", "standard + noise (n=3)", "chance"]
    for lab in labels:
        axes[0].plot([0, 1], [0, 1], label=lab)
    legend = plotting.legend_below(fig, axes, ncols=5)
    assert len(legend.get_texts()) == 5 and legend._ncols < 5
    assert _saved_width(fig) <= plotting.PAGE_WIDTH * fig.dpi + 20   # the page shows it unshrunk
    fig2, (ax,) = plotting.panels(1)
    for lab in "abcde":
        ax.plot([0, 1], [0, 1], label=lab)
    assert plotting.legend_below(fig2, [ax], ncols=5)._ncols == 5   # short labels keep a row


def test_a_legend_below_merges_one_series_drawn_with_different_seed_counts():
    fig, axes = plotting.panels(2)
    plotting.band(axes[0], [0, 1], [[0, 1], [0, 2], [0, 3]], label="BN", color="red")
    plotting.band(axes[1], [0, 1], [[0, 1]], label="BN", color="red")       # one seed: "BN"
    plotting.band(axes[1], [0, 1], [[1, 1], [1, 2]], label="standard")
    axes[1].plot([0, 1], [0.1, 0.1], label="chance")
    texts = [t.get_text() for t in plotting.legend_below(fig, axes, ncols=4).get_texts()]
    assert texts == ["BN (n=1–3)", "standard (n=2)", "chance"]


def test_an_odd_panel_out_puts_the_legend_in_the_free_cell_beside_it():
    fig, axes = plotting.panels(3)
    for ax in axes:
        plotting.band(ax, [0, 1], [[0, 1], [0, 2]], label="BN", color="red")
    legend = plotting.legend_below(fig, axes)
    holder = legend.axes
    assert holder is not None and holder not in axes and not holder.axison
    fig.canvas.draw()
    last, box = axes[2].get_position(), holder.get_position()
    assert box.x0 >= last.x1 and abs(box.y0 - last.y0) < 0.05      # beside the third panel
    assert plotting.panels_per_row(fig) == 2
    assert [t.get_text() for t in legend.get_texts()] == ["BN (n=2)"]
    fig2, axes2 = plotting.panels(4)                                 # a full last row: below
    axes2[0].plot([0, 1], [0, 1], label="a")
    assert plotting.legend_below(fig2, axes2).axes is None
    plt.close(fig)
    plt.close(fig2)


def test_the_percentile_legend_is_grey_so_it_names_every_panels_colour_alike():
    fig, (a, b) = plotting.panels(2)
    for ax, colour in ((a, plotting.PALETTE["no_bn"]), (b, plotting.PALETTE["bn"])):
        plotting.percentile_bands(ax, [0, 1], [0, 0], [1, 1], [2, 2], color=colour)
    legend = plotting.percentile_legend(fig)
    grey = matplotlib.colors.to_rgba(plotting.PALETTE["muted"])
    assert [t.get_text().split(" (")[0] for t in legend.get_texts()] == ["median", "15th–85th percentile"]
    assert legend.legend_handles[0].get_color() == plotting.PALETTE["muted"]
    assert legend.legend_handles[1].get_facecolor()[:3] == grey[:3]
    plt.close(fig)

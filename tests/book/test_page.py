"""bn_utils.book: tables that render the same in the book, in Colab and in a console."""

import numpy as np
import pytest

from bn_utils import book


def test_markdown_table_escapes_pipes_so_cells_stay_whole():
    table = book.Table([{"max |x − y|": 0.5, "name": "a|b"}])
    lines = table._repr_markdown_().splitlines()
    # An unescaped "|" would add columns: every line has as many cell separators as the header.
    count = [line.replace("\\|", "").count("|") for line in lines]
    assert count == [3, 3, 3]
    assert "max \\|x − y\\|" in lines[0] and "a\\|b" in lines[2]
    assert "<th>max |x − y|</th>" in table._repr_html_()


def test_default_float_format_keeps_small_and_large_values_readable():
    table = book.Table([{"wd": 5e-4, "lr": 0.0075, "steps": 50000.0, "acc": 0.97264, "eps": 1e-5,
                         "loss": 14904.7}])
    assert table.text_rows() == [["0.0005", "0.0075", "50,000", "0.9726", "1e-05", "14,900"]]
    mixed = book.Table([{"a": 0.123456, "b": 0.5, "c": 1.48e6}], fmt={"a": "{:.2f}", "c": book.sig})
    assert mixed.text_rows() == [["0.12", "0.5", "1.48e+06"]]


@pytest.mark.parametrize("value, digits, sign, text", [
    (14904.7, 3, False, "14,900"),     # never 1.49e+04
    (499.3, 3, False, "499"),
    (440.1, 2, False, "440"),          # never 4.4e+02
    (0.03674, 3, False, "0.0367"),
    (18.94, 3, True, "+18.9"),
    (-339000.0, 3, True, "-339,000"),
    (999.7, 3, False, "1,000"),        # rounding carries into the next power of ten
    (1.48e6, 3, False, "1.48e+06"),
    (1.352e-6, 3, False, "1.35e-06"),
    (0.0, 3, True, "+0"),
    (float("nan"), 3, False, "nan"),
])
def test_sig_rounds_to_significant_digits_and_writes_them_as_a_reader_would(value, digits, sign, text):
    assert book.sig(value, digits, sign) == text


@pytest.mark.parametrize("value, text", [(1.0, "1.00"), (0.17, "0.170"), (2e6, "2.00e+06"),
                                         (2.031e6, "2.03e+06"), (14904.7, "14,900"), (1e-6, "1.00e-06")])
def test_sig_with_zeros_keeps_every_significant_digit_of_a_measurement(value, text):
    assert book.sig(value, 3, zeros=True) == text


def test_setup_line_says_when_no_stored_records_were_found(tmp_path, monkeypatch):
    monkeypatch.setenv("BN_RESULTS_DIR", str(tmp_path))
    assert book.stored_results_line() == ("stored results: none found in $BN_RESULTS_DIR; "
                                          "every experiment runs at this profile")
    (tmp_path / "01_covariate_shift").mkdir()
    (tmp_path / "01_covariate_shift" / "run__full__abc.json").write_text("{}")
    assert book.stored_results_line() == "stored results: 1 records in $BN_RESULTS_DIR"


def test_setup_prints_no_absolute_paths(capsys):
    book.setup(None)
    out = capsys.readouterr().out
    assert "python 3." in out and "/" not in out.split("python", 1)[1].splitlines()[0]


def test_seed_std_is_the_sample_std_over_seeds_and_zero_for_one_seed():
    assert book.seed_std([0.5, 0.7, 0.9]) == pytest.approx(np.std([0.5, 0.7, 0.9], ddof=1))
    assert book.seed_std([0.5]) == 0.0


def test_mean_std_formats_finite_values_and_says_what_is_missing():
    # the sample standard deviation (ddof=1), as every "± std" of the book
    assert book.mean_std([0.5, 0.7]) == f"0.6000 ± {np.std([0.5, 0.7], ddof=1):.4f}"
    assert book.mean_std([0.5, 0.7], spread=False) == "0.6000"
    assert book.mean_std([1200.0], "{:,.0f}") == "1,200"
    assert book.mean_std([0.5, np.nan]) == "0.5000 (1/2)"
    assert book.mean_std([0.5, np.nan], diverged_at=[None, 300]) == \
        "0.5000 (1/2; diverged at step 300)"
    assert book.mean_std([np.nan, np.nan]) == "not reached (0/2)"
    assert book.mean_std([np.nan], diverged_at=[4000]) == "diverged at step 4,000"


def test_html_table_keeps_numbers_and_short_labels_on_one_line():
    html = book.Table([{"N × D": "4 × 5", "err": 6.0e-7, "note": "a long sentence that may wrap"}],
                      fmt="{:.1e}")._repr_html_()
    assert '<td class="bn-short">4 × 5</td>' in html and '<td class="bn-num">6.0e-07</td>' in html
    assert "<td>a long sentence that may wrap</td>" in html


def test_record_shown_names_the_record_and_folds_the_settings_that_differ():
    from bn_utils.book import results
    from bn_utils.experiments.ch01_covariate_shift import ShiftConfig

    cfg = ShiftConfig.for_profile("smoke")
    mine = results.Record("01", "shift", cfg.to_dict(), {})
    same = book.record_shown(cfg, mine)
    assert same.summary == f"Numbers from the {mine.caption()}, made with this run's configuration (smoke)."
    assert "<details" not in same._repr_html_() and repr(same) == same.summary
    other = results.Record("01", "shift", {**cfg.to_dict(), "profile": "reference", "seed": cfg.seed + 1}, {})
    shown = book.record_shown(cfg, other)
    assert shown.summary.endswith("; 1 of its settings differs from this run's (smoke):")
    html = shown._repr_html_()
    assert html.startswith('<details class="bn-record"><summary>Numbers from the reference profile')
    assert "<table" in html and html.endswith("</table></details>")
    dated = book.page.RecordShown(cfg, other)
    dated.summary = "Numbers from the reference profile (stored: commit abc, cpu, 2026-12-03)."
    assert '<span class="bn-nobr">2026-12-03</span>' in dated._repr_html_()
    assert repr(shown).splitlines()[0] == shown.summary and "seed" in repr(shown)


def test_differences_lists_changed_parameters_or_says_there_are_none():
    from bn_utils.experiments.ch01_covariate_shift import ShiftConfig

    cfg = ShiftConfig.for_profile("smoke")
    same = book.page.differences(cfg, cfg.to_dict())
    assert same.rows == [] and "this run's configuration (smoke)" in same._repr_markdown_()
    assert "<table" not in same._repr_html_() and repr(same) == same.empty
    other = {**cfg.to_dict(), "profile": "reference", "seed": cfg.seed + 1}
    table = book.page.differences(cfg, other)
    assert [r["parameter"] for r in table.rows] == ["seed"]
    assert table.rows[0]["shown record (reference)"] == cfg.seed + 1
    assert "<table" in table._repr_html_()


def test_how_many_agrees_the_noun_with_its_count_or_range():
    assert book.how_many(1, "seed") == "1 seed" and book.how_many(3, "seed") == "3 seeds"
    assert book.how_many(2, "search", "searches") == "2 searches"
    assert book.how_many([3, 1, 3], "seed") == "1–3 seeds" and book.how_many({1}, "seed") == "1 seed"
    with pytest.raises(ValueError, match="no count"):
        book.how_many([], "seed")


def test_a_long_table_cell_wraps_between_values_never_inside_one():
    text = "74.8 ± 0.4 % vs 65.4 ± 0.9 %; +9.4 ± 0.7 points, 3 seeds"
    assert book.page.whole_numbers(text) == (
        "74.8\u00a0±\u00a00.4\u00a0% vs 65.4\u00a0±\u00a00.9\u00a0%; +9.4\u00a0±\u00a00.7\u00a0points, 3\u00a0seeds")
    html = book.Table([{"ours": text}])._repr_html_()
    assert "0.4\u00a0%" in html and "% vs 65.4" in html     # breaks stay between the values


def test_a_number_in_scientific_notation_stays_on_one_line_in_a_table_and_its_header():
    html = book.Table([{"case": "DLN LR 1e-06 layer 17", "steps to 72.2 % (Fig. 3)": "1.2e-07"}])._repr_html_()
    assert '<span style="white-space:nowrap">1e-06</span>' in html
    assert "72.2\u00a0%" in html                      # the header's number keeps its unit too
    assert "BN-x5" in book.Table([{"row": "BN-x5"}])._repr_html_()   # a name is not a number


def test_a_short_formula_or_measure_name_stays_on_one_line_in_a_table():
    html = book.Table([{"top-1 %": "a", "spread": "‖G − G′‖/‖G‖ +0.04, cos(G, G′) +0.03"}])._repr_html_()
    for whole in ("top-1", "‖G − G′‖/‖G‖", "cos(G, G′)"):
        assert f'<span style="white-space:nowrap">{whole}' in html, whole


@pytest.mark.parametrize("text, shown", [
    ("-5.8 ± 4.5 points", "\u22125.8\u00a0±\u00a04.5\u00a0points"),
    ("BN − LayerNorm: +0.9, BN − GroupNorm: -5.8", "BN − LayerNorm: +0.9, BN − GroupNorm: \u22125.8"),
    ("(-0.03) and -.5", "(\u22120.03) and \u2212.5"),
    # hyphens inside names, sizes, dates, exponents, ranges and options stay hyphens
    ("BN-x5 784-100-10 2026-11-25 1e-06; seeds 1-2 -p seeds --profile",
     "BN-x5 784-100-10 2026-11-25 1e-06; seeds 1-2 -p seeds --profile"),
])
def test_a_negative_numbers_sign_is_set_as_a_minus_and_other_hyphens_stay(text, shown):
    assert book.page.whole_numbers(text) == shown


def test_a_table_sets_negative_numbers_with_a_minus_sign_in_html_only():
    t = book.Table([{"name": "BN-x5", "difference": -0.026, "spread": "-2.6 ± 0.4 points, 3 seeds"}],
                   fmt={"difference": "{:+.3f}", "spread": "{}"})
    html = t._repr_html_()
    assert "\u22120.026" in html and "\u22122.6" in html and "BN-x5" in html and "-0" not in html
    assert "-0.026" in t._repr_markdown_()      # Colab's Markdown and the console keep ASCII


def test_a_wide_table_transposed_swaps_rows_and_columns_and_keeps_its_format():
    rows = [{"module": "BN1d", "dtype": "float32", "output": 5.9e-07, "grad": 3.5e-07},
            {"module": "BN1d", "dtype": "float64", "output": 1e-15, "grad": 2e-15}]
    t = book.Table(rows, fmt="{:.1e}").transposed(["module", "dtype"], index="max |difference|")
    assert t.columns == ["max |difference|", "BN1d float32", "BN1d float64"]
    assert [r["max |difference|"] for r in t.rows] == ["output", "grad"]
    assert t.text_rows()[0] == ["output", "5.9e-07", "1.0e-15"]
    with pytest.raises(ValueError, match="does not tell the rows apart"):
        book.Table(rows).transposed(["module"])
    with pytest.raises(ValueError, match="per-column format"):
        book.Table(rows, fmt={"output": "{:.1e}"}).transposed(["module", "dtype"])


def test_pm_writes_mean_and_spread_and_the_mean_alone_for_one_seed():
    assert book.page.pm(0.5, 0.25, 3, "{:.2f}") == "0.50 ± 0.25"
    assert book.page.pm(0.5, 0.25, 1, "{:.2f}") == "0.50"
    assert book.page.pm(1234.0, 56.0, 2, lambda x: f"{x:,.0f}") == "1,234 ± 56"


def test_in_words_lists_items_as_prose():
    assert [book.in_words(x) for x in ([], ["A"], ["A", "B"], ["A", "B", "C"])] == \
        ["", "A", "A and B", "A, B and C"]

"""The book's verdict rule: a difference decided on its seeds' spread (bn_utils.book.claims)."""

import numpy as np
import pytest

from bn_utils.book import claims


def test_a_difference_beyond_two_standard_errors_is_yes_and_below_is_no():
    a, b = [0.70, 0.71, 0.72], [0.60, 0.61, 0.62]
    d = claims.greater(a, b)
    se = np.sqrt(np.var(a, ddof=1) / 3 + np.var(b, ddof=1) / 3)
    assert d.mean == pytest.approx(0.10) and d.se == pytest.approx(se) and d.n == 3
    assert d.verdict == claims.YES
    assert claims.greater(b, a).verdict == claims.NO


def test_a_difference_inside_two_standard_errors_is_inside_the_noise():
    a, b = [0.70, 0.74, 0.66], [0.69, 0.71, 0.67]
    d = claims.greater(a, b)
    assert abs(d.mean) < 2 * d.se
    assert d.verdict == claims.NOISE


def test_the_margin_is_cleared_by_two_standard_errors_not_by_the_mean_alone():
    a = [0.70, 0.71, 0.72]
    assert claims.greater(a, 0.60, margin=0.05).verdict == claims.YES
    assert claims.greater(a, 0.60, margin=0.13).verdict == claims.NO
    # mean 0.71 against 0.60 + 0.10: the 0.01 left over is inside two SE (0.0115)
    assert claims.greater(a, 0.60, margin=0.10).verdict == claims.NOISE


def test_one_seed_is_not_decided_whatever_its_difference():
    assert claims.greater([0.9], [0.1]).verdict == "1 seed: not decided"
    assert claims.greater([0.9, 0.91], [0.1]).verdict == "1 seed: not decided"
    assert claims.paired([0.3]).verdict == "1 seed: not decided"
    assert claims.greater([0.9, 0.8, 0.85], 0.1, min_seeds=4).verdict == "3 seeds: not decided"


def test_a_fixed_threshold_has_no_variance_of_its_own():
    a = [0.5, 0.6, 0.7]
    d = claims.greater(a, 0.2)
    assert d.se == pytest.approx(np.std(a, ddof=1) / np.sqrt(3))


def test_paired_differences_use_the_spread_of_the_differences():
    d = claims.paired([0.1, 0.12, 0.08])
    assert d.se == pytest.approx(np.std([0.1, 0.12, 0.08], ddof=1) / np.sqrt(3))
    assert d.verdict == claims.YES


def test_learned_means_clearly_above_chance():
    assert claims.learned([0.5, 0.6], chance=0.1, margin=0.05)
    assert not claims.learned([0.12, 0.11], chance=0.1, margin=0.05)


def test_a_row_has_one_shape_and_takes_the_decisions_spread():
    d = claims.greater([0.70, 0.71, 0.72], [0.60, 0.61, 0.62])
    r = claims.row("A beats B", "paper", "1 %", "70 % vs 60 %", d)
    assert set(r) == {"claim", "source", "their number", "ours", "spread", "verdict", "kind"}
    assert r["verdict"] == claims.YES and r["spread"] == d.spread() and r["kind"] == "paper"
    assert d.spread("points", scale=100) == "+10.0 ± 0.8 points, 3 seeds"
    m = claims.missing("A beats B", "paper", "1 %", kind="book")
    assert m["verdict"] == claims.NOT_RUN and m["ours"] == "—" and m["kind"] == "book"


def test_every_chapter_shows_its_claims_in_the_same_columns():
    d = claims.greater([0.70, 0.71, 0.72], [0.60, 0.61, 0.62])
    rows = [claims.row("A beats B", "Fig. 2", "1 %", "70 % vs 60 %", d),
            claims.missing("C beats D", "Sec. 3", "—")]
    t = claims.table(rows)
    assert t.columns == ["claim", "verdict", "ours", "spread", "theirs (source)"]
    assert [r["theirs (source)"] for r in t.rows] == ["1 % (Fig. 2)", "— (Sec. 3)"]
    assert t.rows[0]["verdict"] == claims.YES and t.rows[1]["verdict"] == claims.NOT_RUN
    # the closing page adds the record its rows come from, before their number
    t = claims.table([{**r, "record": "full, 3 seeds"} for r in rows], extra=("record",))
    assert t.columns == ["claim", "verdict", "ours", "spread", "record", "theirs (source)"]


@pytest.mark.parametrize("bad", [[[0.1, 0.2]], np.ones((2, 2))])
def test_measurements_that_are_not_one_number_per_seed_are_refused(bad):
    with pytest.raises(ValueError, match="one number per seed"):
        claims.greater(bad, [0.1, 0.2])


def test_a_kind_other_than_paper_or_book_is_refused():
    with pytest.raises(ValueError, match="kind"):
        claims.row("c", "s", "t", "o", claims.YES, kind="mine")


def test_a_claim_of_several_parts_is_no_on_one_decided_no_and_yes_only_when_every_part_is():
    yes, no = claims.greater([0.7, 0.71, 0.72], [0.6, 0.61, 0.62]), claims.greater([0.6, 0.61], [0.7, 0.71])
    noise = claims.greater([0.70, 0.74, 0.66], [0.69, 0.71, 0.67])
    assert claims.all_of([yes, yes]) == claims.YES
    assert claims.all_of([yes, no, claims.not_decided(1)]) == claims.NO   # one counterexample decides
    assert claims.all_of([yes, noise]) == claims.NOISE
    assert claims.all_of([yes, claims.not_decided(2), claims.not_decided(1), noise]) == "1 seed: not decided"
    assert claims.all_of([yes, claims.NOT_COMPARABLE, noise]) == claims.NOT_COMPARABLE
    assert claims.all_of([yes, claims.NOT_RUN, claims.NOT_COMPARABLE]) == claims.NOT_RUN
    reason = "not decided: its run ends before the target"     # a chapter's own undecided reason
    assert claims.all_of([yes, reason]) == reason and claims.all_of([noise, reason]) == reason
    with pytest.raises(ValueError, match="no part"):
        claims.all_of([])


def test_a_difference_that_is_not_a_number_is_not_measured_and_not_tallied_as_noise():
    d = claims.decide(float("nan"), 0.1, 3)
    assert d.verdict == claims.NOT_MEASURED and d.spread() == "—"
    assert claims.counts([d.verdict])[claims.UNDECIDED] == 1


def test_negating_a_verdict_swaps_yes_and_no_and_keeps_the_rest():
    assert claims.negated(claims.YES) == claims.NO and claims.negated(claims.NO) == claims.YES
    for v in (claims.NOISE, claims.not_decided(1), claims.NOT_COMPARABLE, claims.NOT_RUN):
        assert claims.negated(v) == v


def test_counts_text_counts_each_verdict_in_agreeing_grammar_and_leaves_out_zeros():
    assert claims.counts_text(["yes"] * 4 + ["no"] * 3 + ["inside the noise", "1 seed: not decided"]) == (
        "4 hold, 3 do not, 1 sits inside the noise and 1 is not decided")
    assert claims.counts_text(["yes", "not comparable", "not run"]) == "1 holds and 2 are not decided"
    assert claims.counts_text(["no"]) == "1 does not" and claims.counts_text([]) == "none"


def test_the_rules_confidence_is_students_t_coverage_of_two_standard_errors():
    import math

    assert math.isclose(claims.confidence(1), 2 / math.pi * math.atan(2), rel_tol=1e-6)   # Cauchy
    assert math.isclose(claims.confidence(2), 2 / math.sqrt(6), rel_tol=1e-6)          # t/√(2 + t²)
    assert math.isclose(claims.confidence(10 ** 6), math.erf(2 / math.sqrt(2)), rel_tol=1e-4)
    assert claims.confidence(2) < claims.confidence(4) < claims.confidence(30) < 0.96
    with pytest.raises(ValueError, match="df"):
        claims.confidence(0)


@pytest.mark.parametrize("mean, n, verdict", [
    (claims.N_SE * 0.1 + 1e-9, 3, claims.YES),     # just past two SE above the margin
    (claims.N_SE * 0.1, 3, claims.NOISE),          # exactly two SE: not beyond them
    (-claims.N_SE * 0.1, 3, claims.NOISE),
    (-claims.N_SE * 0.1 - 1e-9, 3, claims.NO),
    (10.0, claims.MIN_SEEDS, claims.YES),          # the fewest seeds that decide
    (10.0, claims.MIN_SEEDS - 1, claims.not_decided(claims.MIN_SEEDS - 1)),
    (float("nan"), 1, claims.not_decided(1)),      # too few seeds says so before "not measured"
])
def test_decide_at_its_boundaries(mean, n, verdict):
    assert claims.decide(mean + 0.5, 0.1, n, margin=0.5).verdict == verdict


def test_an_infinite_standard_error_decides_nothing():
    assert claims.decide(5.0, float("inf"), 3).verdict == claims.not_decided(3)

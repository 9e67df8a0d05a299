"""Chapter 03's checks: what the chapter asserts must hold for other seeds too."""

import numpy as np
import pytest

from bn_utils.experiments import ch03_backprop as backprop


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closed_form_matches_finite_differences_for_every_case(seed):
    rows = backprop.gradient_check_rows(backprop.BackpropConfig.for_profile("smoke", seed=seed))
    assert len(rows) == len(backprop.CHECK_CASES)
    for row in rows:
        assert max(v for k, v in row.items() if k.endswith("whole")) < 1e-8, row
        assert max(v for k, v in row.items() if k.endswith("element-wise")) < 1e-6, row
        assert row["closed vs naive"] < 1e-10


def test_gradient_is_orthogonal_to_shift_and_scale_of_each_feature():
    proj = backprop.gradient_projection(backprop.BackpropConfig.for_profile("smoke"), eps=0.0)
    assert max(proj["sum_dx"], proj["sum_dx_xhat"]) < 1e-12 * proj["scale"]


def test_jacobian_equals_the_closed_form_expression():
    n, eps = 6, 1e-5
    jac = backprop.jacobian(n=n, seed=3, eps=eps)
    x = np.random.default_rng(3).normal(size=n)
    sigma = np.sqrt(x.var() + eps)
    xhat = (x - x.mean()) / sigma
    expected = (np.eye(n) - 1 / n - np.outer(xhat, xhat) / n) / sigma
    np.testing.assert_allclose(jac, expected, atol=1e-9)
    np.testing.assert_allclose(jac.sum(1), 0, atol=1e-12)  # a common shift changes no output


def test_autograd_checks_pass_and_timings_are_positive():
    cfg = backprop.BackpropConfig.for_profile("smoke")
    assert all(r["gradcheck"] and r["gradgradcheck"] for r in backprop.autograd_checks(cfg))
    rows = backprop.timing_rows(cfg.replace(timing_repeats=1))
    assert len(rows) == 5 and all(r["median ms"] > 0 for r in rows)
    assert [r["timed"] for r in rows] == ["forward + backward"] * 3 + ["backward only"] * 2


@pytest.mark.parametrize("overrides, message", [({"timing_shape": (1, 8)}, "must be >= 2"),
                                                ({"eps": -1.0}, "must be >= 0")])
def test_bad_parameters_raise(overrides, message):
    with pytest.raises(ValueError, match=message):
        backprop.BackpropConfig.for_profile("quick", **overrides)


def test_speed_words_stay_true_when_the_closed_form_is_slower():
    assert backprop.speed_words(2.14) == "2.1× faster than"
    assert backprop.speed_words(7.90 / 11.54) == f"{11.54 / 7.90:.1f}× slower than"   # 7.90 ms against 11.54 ms
    with pytest.raises(ValueError):
        backprop.speed_words(0.0)

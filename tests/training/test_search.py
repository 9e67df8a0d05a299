"""The genetic hyper-parameter search (chapter 9)."""

import numpy as np
import pytest

from bn_utils.training.search import genetic_search


def test_finds_the_optimum_of_a_toy_2d_function():
    optimum = np.array([1.0, -2.0])
    calls = []

    def fitness(p):
        calls.append(p)
        return -float(np.sum((p - optimum) ** 2))

    out = genetic_search(fitness, [(-5, 5), (-5, 5)], population=20, generations=25, keep=4,
                         mutation_std=0.5, seed=0)
    assert np.linalg.norm(out["best_point"] - optimum) < 0.15, out["best_point"]
    assert out["points"].shape == (25, 20, 2) and out["scores"].shape == (25, 20)
    # every point is evaluated once: the first generation, then the children of each next one
    assert len(calls) == 20 + 24 * 16
    # survivors are kept: the best score never gets worse from one generation to the next
    assert np.all(np.diff(out["scores"].max(1)) >= 0)
    assert np.all(out["points"] >= -5) and np.all(out["points"] <= 5)


def test_same_seed_same_search_and_nan_ranks_last():
    f = lambda p: float("nan") if p[0] > 0 else -abs(p[0] + 1)  # noqa: E731
    a = genetic_search(f, [(-3, 3)], population=6, generations=4, keep=2, seed=3)
    b = genetic_search(f, [(-3, 3)], population=6, generations=4, keep=2, seed=3)
    assert np.array_equal(a["points"], b["points"])
    assert a["best_point"][0] <= 0 and np.isfinite(a["best_score"])


@pytest.mark.parametrize("kwargs, word", [({"population": 1}, "population=1"),
                                          ({"keep": 5, "population": 5}, "keep=5"),
                                          ({"generations": 0}, "generations=0"),
                                          ({"mutation_std": 0.0}, "mutation_std=0.0")])
def test_rejects_bad_settings_before_any_evaluation(kwargs, word):
    def fitness(p):
        raise AssertionError("fitness must not run")
    with pytest.raises(ValueError, match=word):
        genetic_search(fitness, [(0, 1)], **kwargs)


def test_rejects_inverted_bounds_by_value():
    with pytest.raises(ValueError, match=r"bounds\[1\]=\(3.0, -3.0\)"):
        genetic_search(lambda p: 0.0, [(0, 1), (3, -3)])

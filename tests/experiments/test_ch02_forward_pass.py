"""Properties of chapter 02's experiment module: the momentum conventions, the buggy layers (they
really have their bugs), the train-vs-eval measurement, folding, and the configuration."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from bn_utils.nn import norms
from bn_utils.experiments import ch02_forward_pass as fwd
from conftest import needs_mnist


def _batches(k, n, d, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return [2 + 3 * torch.randn(n, d, generator=gen, dtype=dtype) for _ in range(k)]


# ---------------------------------------------------------------------------------------------
# Configuration


@pytest.mark.parametrize("profile", ["smoke", "quick", "full"])
def test_every_profile_is_a_valid_config(profile):
    cfg = fwd.ForwardConfig.for_profile(profile)
    assert cfg.profile == profile and cfg.is_profile_default()


@pytest.mark.parametrize("overrides, message", [
    ({"batch_size": 5000, "n_train": 1000}, "batch_size=5000"),
    ({"bug_batch_size": 2000, "n_train": 1000}, "bug_batch_size=2000"),
    ({"spread_batch_sizes": (2, 4096), "n_train": 1000}, "spread_batch_sizes"),
    ({"spread_examples": 50, "n_test": 20}, "spread_examples=50"),
    ({"momenta": (0.1, 1.5)}, "momenta"),
    ({"momenta": (0.0,)}, "momenta"),
    ({"steps": 0}, "steps=0"),
    ({"batch_size": 1}, "batch_size=1"),
    ({"activation": "swish"}, "activation='swish'"),
])
def test_nonsense_values_fail_before_any_work_naming_the_value(overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fwd.ForwardConfig.for_profile("smoke", **overrides)


def test_unknown_parameter_is_rejected_with_the_allowed_names():
    with pytest.raises(ValueError, match="unknown parameter momentum.*allowed: .*bug_lr"):
        fwd.ForwardConfig.for_profile("smoke", momentum=0.9)


# ---------------------------------------------------------------------------------------------
# Momentum conventions


@pytest.mark.parametrize("keras, torch_m", [(0.99, 0.01), (0.9, 0.1), (0.999, 0.001), (0.0, 1.0)])
def test_keras_momentum_converts_to_one_minus_it(keras, torch_m):
    assert fwd.keras_to_torch_momentum(keras) == pytest.approx(torch_m, abs=1e-15)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_momentum_outside_zero_one_is_rejected(bad):
    with pytest.raises(ValueError, match="must lie in"):
        fwd.keras_to_torch_momentum(bad)


def _torch_update(running, batch, momentum: float):
    """PyTorch's running estimate after one batch: (1 − m)·running + m·batch."""
    return (1 - momentum) * running + momentum * batch


def test_keras_update_with_m_equals_torch_update_with_one_minus_m():
    running = moving = np.zeros(3)
    for batch in np.random.default_rng(0).normal(size=(50, 3)):
        running = _torch_update(running, batch, fwd.keras_to_torch_momentum(0.99))
        moving = fwd.keras_update(moving, batch, 0.99)
    np.testing.assert_allclose(running, moving, rtol=1e-13, atol=1e-15)


def test_the_torch_update_rule_is_what_torch_batchnorm_does_to_its_running_mean():
    bn = nn.BatchNorm1d(3, momentum=0.3, dtype=torch.float64)
    expected = torch.zeros(3, dtype=torch.float64)
    for x in _batches(4, 6, 3):
        bn.train()(x)
        expected = _torch_update(expected, x.mean(0), 0.3)
    torch.testing.assert_close(bn.running_mean, expected, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("module", [nn.BatchNorm1d, norms.BatchNorm1d])
def test_paper_population_statistics_equal_the_momentum_none_cumulative_average(module):
    batches = _batches(7, 5, 4)
    bn = module(4, momentum=None, dtype=torch.float64).train()
    for x in batches:
        bn(x)
    for k in range(4):
        means = [x[:, k].mean().item() for x in batches]
        variances = [x[:, k].var(correction=0).item() for x in batches]  # biased, as σ²_B
        mean, var = fwd.paper_population_stats(means, variances, batch_size=5)
        assert mean == pytest.approx(bn.running_mean[k].item(), rel=1e-13)
        assert var == pytest.approx(bn.running_var[k].item(), rel=1e-13)


def test_paper_population_statistics_need_batches_of_two():
    with pytest.raises(ValueError, match="batch_size=1"):
        fwd.paper_population_stats([0.0], [1.0], batch_size=1)


def test_running_estimates_confirm_both_conversions_and_the_variance_bias():
    cfg = fwd.ForwardConfig.for_profile("smoke", stream_steps=50, bias_batches=2000)
    out = fwd.running_estimates(cfg)
    assert max(fwd.convention_checks(out).values()) < 1e-12
    assert out["momenta"] == ["0.1", "0.01", "None"] and len(out["mean_None"]) == 50
    sizes = out["bias_sizes"]
    # E[biased var] = 1 − 1/N; with 2000 batches the sampling error is a few per cent at most.
    np.testing.assert_allclose(out["bias_biased"], 1 - 1 / sizes, atol=0.06)
    np.testing.assert_allclose(out["bias_unbiased"], 1.0, atol=0.1)
    assert out["bias_biased"][0] < 0.6  # N = 2: half the variance is missing


def _population_record(mean, var):
    return {"paper_mean": mean, "paper_var": var, "true_mean": 2.0, "true_var": 9.0}


def test_population_claim_is_an_exact_check_of_one_run_against_its_tolerance():
    row = fwd.population_claim(_population_record(1.94, 9.12))   # error max(0.06/3, 0.12/9) = 0.02
    assert row["verdict"] == "yes" and "mean 1.94 (true 2)" in row["ours"]
    assert "one run checked against a tolerance" in row["claim"]
    assert "exact check of one run" in row["spread"] and "error 0.020" in row["spread"]
    check = fwd.population_check(_population_record(1.94, 9.12))
    assert check["error"] == pytest.approx(0.02) and check["tolerance"] == fwd.headlines.TOLERANCE
    # an error past the tolerance refutes it: one run, no seeds, so no "inside the noise"
    assert fwd.population_claim(_population_record(2.0, 9.0 * 1.06))["verdict"] == "no"
    assert fwd.population_claim(_population_record(2.0 + 3 * 0.06, 9.0))["verdict"] == "no"


def test_running_estimates_figure_draws_the_biased_average_on_top_of_every_momentum():
    import matplotlib
    matplotlib.use("Agg")
    from bn_utils.book import results

    cfg = fwd.ForwardConfig.for_profile("smoke", stream_steps=20, bias_batches=10)
    out = fwd.running_estimates(cfg)   # arrays and numbers alike: Record.__getitem__ reads both
    fig = fwd.plot_running_estimates(results.Record(fwd.CHAPTER, "running_estimates", cfg.to_dict(), out))
    lines = {ln.get_label(): ln for ln in fig.axes[1].get_lines()}
    dotted = lines["cumulative average of biased variances"]
    momenta = [ln for label, ln in lines.items() if label.startswith("momentum")]
    assert all(dotted.get_zorder() > ln.get_zorder() for ln in momenta)
    assert all(dotted.get_linewidth() > ln.get_linewidth() for ln in momenta)


# ---------------------------------------------------------------------------------------------
# Bug (a): a Keras momentum pasted into PyTorch


def test_pasted_keras_momentum_makes_the_running_mean_the_last_batch_mean():
    bn = torch.nn.BatchNorm1d(4, momentum=0.99)   # the bug: Keras' 0.99 given to torch unconverted
    batches = _batches(6, 10, 4, dtype=torch.float32)
    with torch.no_grad():
        for x in batches:
            before = bn.running_mean.clone()
            bn.train()(x)
    last = batches[-1].mean(0)
    # running = 0.01·before + 0.99·last: within 1 % of the gap between the two
    gap = (before - last).abs()
    assert torch.all((bn.running_mean - last).abs() <= 0.0101 * gap + 1e-6)


def test_last_batch_gap_separates_pasted_from_converted_momentum():
    pasted = fwd.last_batch_gap(0.99)
    converted = fwd.last_batch_gap(0.01)
    assert pasted["|running − last batch mean|"] < 0.1 * pasted["|running − population mean|"]
    assert converted["|running − population mean|"] < 0.5 * pasted["|running − population mean|"]


def test_precise_bn_holds_the_population_statistics_of_each_bn_input():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5, bias=False), nn.BatchNorm1d(5, momentum=0.9),
                          nn.Sigmoid(), nn.Linear(5, 4, bias=False), nn.BatchNorm1d(4),
                          nn.Sigmoid())
    x = torch.randn(300, 6, dtype=torch.float32) * 2 + 1
    exact = fwd.precise_bn(model, x)
    assert not exact.training and model[1].momentum == 0.9  # the original is untouched
    h1 = model[0](x).detach()
    torch.testing.assert_close(exact[1].running_mean, h1.mean(0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(exact[1].running_var, h1.var(0), rtol=1e-5, atol=1e-5)
    # Layer 2's inputs: layer 1 normalised by its population statistics, as in eval mode.
    h2 = model[3](torch.sigmoid(exact[1](h1))).detach()
    torch.testing.assert_close(exact[4].running_mean, h2.mean(0), rtol=1e-5, atol=1e-5)
    errors = fwd.running_stat_errors(exact, exact)
    assert errors == {"mean_error": 0.0, "var_error": 0.0}


# ---------------------------------------------------------------------------------------------
# Bug (b): the output computed only in the eval branch


def test_eval_branch_bn_differs_from_torch_in_train_mode():
    x = _batches(1, 12, 5, dtype=torch.float32)[0]
    buggy, ref = fwd.EvalBranchBatchNorm1d(5), nn.BatchNorm1d(5)
    out, expected = buggy.train()(x), ref.train()(x)
    assert (out - expected).abs().max() > 0.5
    # The buggy output is not normalised per batch: its batch mean is far from β = 0.
    assert out.mean(0).abs().max() > 0.5 and expected.mean(0).abs().max() < 1e-5


def test_eval_branch_bn_updates_running_stats_like_torch_and_is_right_in_eval_mode():
    buggy, ref = fwd.EvalBranchBatchNorm1d(5), nn.BatchNorm1d(5)
    for x in _batches(3, 12, 5, dtype=torch.float32):
        buggy.train()(x)
        ref.train()(x)
    torch.testing.assert_close(buggy.running_mean, ref.running_mean)
    torch.testing.assert_close(buggy.running_var, ref.running_var)
    probe = _batches(1, 7, 5, seed=1, dtype=torch.float32)[0]
    torch.testing.assert_close(buggy.eval()(probe), ref.eval()(probe))  # an eval-only test passes


def test_eval_branch_bn_passes_no_gradient_through_the_batch_statistics():
    x = _batches(1, 12, 5, dtype=torch.float64)[0].requires_grad_(True)
    buggy = fwd.EvalBranchBatchNorm1d(5).double()
    dout = torch.randn(12, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    (dx,) = torch.autograd.grad(buggy.train()(x), x, dout)
    # After the update, dy/dx is the constant γ / sqrt(running var + ε): an affine map.
    torch.testing.assert_close(dx, dout * torch.rsqrt(buggy.running_var + buggy.eps))
    assert dx.sum(0).abs().max() > 1e-3  # correct BN's input gradient sums to 0 per feature


@needs_mnist
def test_eval_branch_symptoms_table_shows_the_bug_and_our_module_equal_to_torch():
    rows = fwd.eval_branch_symptoms(fwd.ForwardConfig.for_profile("smoke"))
    torch_row, ours_row, buggy_row = rows
    assert ours_row["max |out − torch|"] < 1e-5 and buggy_row["max |out − torch|"] > 0.1
    assert buggy_row["max |Σ ∂L/∂x| over batch"] > 1.0 > 1e3 * torch_row["max |Σ ∂L/∂x| over batch"]


# ---------------------------------------------------------------------------------------------
# Bug (c): batch size 1


def test_batch_size_one_fails_the_same_way_in_torch_and_ours_except_for_conv_maps():
    rows = {(r["module"], r["input"], r["mode"]): r for r in fwd.batch_size_one_rows()}
    assert all(r["torch"] == r["ours"] for r in rows.values())
    assert rows[("BatchNorm1d", "1×4", "train")]["ours"].startswith(
        "ValueError: Expected more than 1 value per channel when training")
    assert rows[("BatchNorm2d", "1×4×1×1", "train")]["ours"].startswith("ValueError")
    assert rows[("BatchNorm2d", "1×4×5×5", "train")]["ours"] == "ok"
    assert rows[("BatchNorm1d", "1×4", "eval")]["ours"] == "ok"


def test_train_mode_bn2d_on_one_image_is_instance_norm():
    assert fwd.single_image_is_instance_norm(seed=3) < 1e-5


# ---------------------------------------------------------------------------------------------
# Train vs eval


def _random_bn_mlp(seed=0, bn1d=nn.BatchNorm1d):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 8, bias=False), bn1d(8), nn.Sigmoid(),
                          nn.Linear(8, 8, bias=False), bn1d(8), nn.Sigmoid(),
                          nn.Linear(8, 3))
    with torch.no_grad():  # non-trivial running statistics, so eval differs from train
        model.train()(torch.randn(64, 6) * 2 + 1)
    return model


@pytest.mark.parametrize("bn1d", [nn.BatchNorm1d, norms.BatchNorm1d], ids=["torch_bn", "our_bn"])
def test_stacked_train_forward_equals_one_train_mode_call_per_batch(bn1d):
    model = _random_bn_mlp(bn1d=bn1d)
    batches = torch.randn(5, 9, 6, generator=torch.Generator().manual_seed(1))
    stacked = fwd.stacked_train_forward(model, batches)
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    for k in range(5):
        expected = copy.deepcopy(model).train()(batches[k])
        torch.testing.assert_close(stacked[k], expected, rtol=1e-5, atol=1e-6)
    for k, v in model.named_buffers():  # the running statistics were not touched
        torch.testing.assert_close(v, buffers[k])


@pytest.mark.parametrize("bn1d", [nn.BatchNorm1d, norms.BatchNorm1d], ids=["torch_bn", "our_bn"])
def test_batch_dependence_spread_shrinks_as_the_batch_grows(bn1d):
    model = _random_bn_mlp(bn1d=bn1d)
    gen = torch.Generator().manual_seed(2)
    pool, examples = torch.randn(500, 6, generator=gen), torch.randn(3, 6, generator=gen)
    out = fwd.batch_dependence(model, examples, pool, (2, 8, 64), draws=100, seed=0)
    assert out["outputs"].shape == (3, 3, 100, 3)
    assert out["spread"][0] > out["spread"][1] > out["spread"][2] > 0
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(out["eval_outputs"]), model.eval()(examples))


# ---------------------------------------------------------------------------------------------
# Inference: folding


def test_compare_with_torch_agrees_to_round_off_in_float64():
    diffs = fwd.compare_with_torch("BatchNorm2d", (3, 2, 4, 5), torch.float64, None, steps=3)
    assert set(diffs) == {"output", "∂L/∂x", "∂L/∂γ", "∂L/∂β", "running mean", "running var",
                          "eval output"}
    assert max(diffs.values()) < 1e-12


# ---------------------------------------------------------------------------------------------
# The chapter's MNIST runs, tiny


@needs_mnist
def test_momentum_changes_the_running_stats_but_not_the_weights():
    cfg = fwd.ForwardConfig.for_profile("smoke", steps=30, eval_every=15, n_train=300, n_test=50,
                                        spread_batch_sizes=(2, 8))
    out = fwd.momentum_bug_runs(cfg)
    assert out["max_weight_difference"] == 0.0
    table = fwd.momentum_bug_table(out)  # a dict reads like a stored Record
    small, default = table["0.001 (too small)"], table["0.1 (PyTorch default)"]
    assert small["running-mean error (σ)"] > 2 * default["running-mean error (σ)"]


def test_the_early_accuracy_gap_averages_the_first_half_without_step_zero():
    evals = {"test_accuracy": [0.1, 0.5, 0.7, 0.9, 0.9, 0.9], "exact_accuracy": [0.9] * 6}
    record = {label: {"evals": evals} for label in fwd.BUG_MOMENTA}
    gaps = fwd.early_accuracy_gap(record)
    assert set(gaps) == set(fwd.BUG_MOMENTA)
    assert all(abs(g - 0.3) < 1e-12 for g in gaps.values())      # steps 1 and 2: 0.4 and 0.2


@needs_mnist
def test_normalisation_rows_give_zero_mean_unit_std_for_1d_and_2d():
    rows = fwd.normalisation_rows(fwd.ForwardConfig.for_profile("smoke"))
    assert [r["reduced over"] for r in rows] == ["N", "N, H, W"]
    for r in rows:
        assert r["max |mean| after"] < 1e-5 and r["max |std − 1| after"] < 1e-3

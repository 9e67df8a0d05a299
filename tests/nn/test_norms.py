"""Properties of bn_utils.nn.norms: the NumPy maths, the autograd Function, the modules, folding."""

import copy
import functools
import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bn_utils.training.checks import numerical_gradient, rel_error
from bn_utils.nn.norms import (
    BatchNorm1d, BatchNorm2d, BatchNormFunction, batchnorm_backward, batchnorm_backward_naive,
    batchnorm_forward, bn_affine, fold_batchnorm)


# float64 comparisons are between two correct computations done in a different order, so they
# agree to a few ulps. float32 ones carry ~6e-8 relative rounding per operation, and torch's
# kernel sums a channel in another order and precision than our mean/sum, so results
# differ by a few ulps times the reduction depth: ~1e-6 for 64x64 maps. 1e-5 leaves margin.
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-12, atol=1e-12)}


def _numpy_case(n, d, seed, scale=3.0):
    """Return (x, gamma, beta, dout), float64; x has std `scale` and a non-zero mean per feature."""
    rng = np.random.default_rng(seed)
    x = scale * rng.standard_normal((n, d)) + rng.standard_normal(d)
    gamma = rng.standard_normal(d)
    beta = rng.standard_normal(d)
    dout = rng.standard_normal((n, d))
    return x, gamma, beta, dout


# ---------------------------------------------------------------------------------------------
# 1. NumPy forward
# ---------------------------------------------------------------------------------------------


def test_forward_output_has_zero_mean_and_unit_biased_std_per_feature():
    x, _, _, _ = _numpy_case(4, 5, seed=0)
    out, _ = batchnorm_forward(x, np.ones(5), np.zeros(5), eps=1e-12)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-12)
    # Biased std (ddof=0): that is the variance the forward pass divides by.
    np.testing.assert_allclose(out.std(axis=0, ddof=0), 1.0, rtol=1e-9)


def test_forward_scales_by_gamma_then_shifts_by_beta():
    x, gamma, beta, _ = _numpy_case(4, 5, seed=1)
    xhat, _ = batchnorm_forward(x, np.ones(5), np.zeros(5))
    out, _ = batchnorm_forward(x, gamma, beta)
    np.testing.assert_allclose(out, gamma * xhat + beta, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out.mean(axis=0), beta, atol=1e-12)


@pytest.mark.parametrize("n", [4, 2])
def test_forward_matches_torch_functional_batch_norm_in_training_mode(n):
    x, gamma, beta, _ = _numpy_case(n, 5, seed=2)
    out, _ = batchnorm_forward(x, gamma, beta, eps=1e-5)
    ref = F.batch_norm(torch.from_numpy(x), None, None, torch.from_numpy(gamma),
                       torch.from_numpy(beta), training=True, eps=1e-5)
    assert rel_error(out, ref) < 1e-12


def test_forward_rejects_input_that_is_not_two_dimensional():
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        batchnorm_forward(np.ones((2, 3, 4)), np.ones(3), np.zeros(3))


# ---------------------------------------------------------------------------------------------
# 2. NumPy backward: closed form and chain rule against finite differences and each other
# ---------------------------------------------------------------------------------------------

# With N=2 the output is +-sqrt(var / (var + eps)) per feature: x matters only through eps, so
# with eps=1e-5 dx is ~eps / var^1.5, below what a finite difference of an O(1) output resolves
# to 1e-8. Unit-variance data and eps=1 keep dx O(1), so the check still tests the formula.
BACKWARD_CASES = [pytest.param(4, 5, 1e-5, 3.0, id="N4-D5"),
                  pytest.param(2, 5, 1.0, 1.0, id="N2-D5")]


@pytest.mark.parametrize("backward", [batchnorm_backward, batchnorm_backward_naive],
                         ids=["closed_form", "naive"])
@pytest.mark.parametrize("n, d, eps, scale", BACKWARD_CASES)
def test_backward_matches_finite_differences_in_float64(backward, n, d, eps, scale):
    x, gamma, beta, dout = _numpy_case(n, d, seed=3, scale=scale)
    _, cache = batchnorm_forward(x, gamma, beta, eps)
    dx, dgamma, dbeta = backward(dout, cache)

    dx_num = numerical_gradient(lambda v: batchnorm_forward(v, gamma, beta, eps)[0], x, dout)
    dgamma_num = numerical_gradient(lambda v: batchnorm_forward(x, v, beta, eps)[0], gamma, dout)
    dbeta_num = numerical_gradient(lambda v: batchnorm_forward(x, gamma, v, eps)[0], beta, dout)
    for name, analytic, numeric in [("dx", dx, dx_num), ("dgamma", dgamma, dgamma_num),
                                    ("dbeta", dbeta, dbeta_num)]:
        err = rel_error(analytic, numeric)
        assert err < 1e-8, f"{name} disagrees with finite differences: {err:.1e}"


@pytest.mark.parametrize("n, d, eps, scale",
                         BACKWARD_CASES + [pytest.param(64, 3, 1e-5, 3.0, id="N64-D3")])
def test_closed_form_backward_equals_naive_chain_rule(n, d, eps, scale):
    x, gamma, beta, dout = _numpy_case(n, d, seed=4, scale=scale)
    _, cache = batchnorm_forward(x, gamma, beta, eps)
    pairs = zip(batchnorm_backward(dout, cache), batchnorm_backward_naive(dout, cache))
    for closed, naive in pairs:
        err = rel_error(closed, naive)
        assert err < 1e-12, f"the two derivations disagree: {err:.1e}"


def test_input_gradient_sums_to_zero_over_the_batch():
    # Adding a constant to a feature does not change BN's output, so dx has no component along it.
    x, gamma, beta, dout = _numpy_case(4, 5, seed=5)
    dx, _, _ = batchnorm_backward(dout, batchnorm_forward(x, gamma, beta)[1])
    np.testing.assert_allclose(dx.sum(axis=0), 0.0, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# 3. BatchNormFunction: autograd checks and agreement with torch
# ---------------------------------------------------------------------------------------------

FUNCTION_SHAPES = [(4, 5), (2, 3, 4, 5)]


def _function_inputs(shape, seed, affine=True):
    """Return (x, gamma, beta) float64 tensors that require grad; gamma/beta None if not affine."""
    g = torch.Generator().manual_seed(seed)
    c = shape[1]
    x = (2.0 * torch.randn(shape, generator=g, dtype=torch.float64) + 0.5).requires_grad_()
    if not affine:
        return x, None, None
    gamma = torch.randn(c, generator=g, dtype=torch.float64).requires_grad_()
    beta = torch.randn(c, generator=g, dtype=torch.float64).requires_grad_()
    return x, gamma, beta


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no_affine"])
@pytest.mark.parametrize("shape", FUNCTION_SHAPES, ids=str)
def test_function_passes_gradcheck_and_gradgradcheck(shape, affine):
    x, gamma, beta = _function_inputs(shape, seed=6, affine=affine)
    if affine:
        fn, args = (lambda v, g, b: BatchNormFunction.apply(v, g, b, 1e-5)), (x, gamma, beta)
    else:
        fn, args = (lambda v: BatchNormFunction.apply(v, None, None, 1e-5)), (x,)
    assert torch.autograd.gradcheck(fn, args)
    assert torch.autograd.gradgradcheck(fn, args)


@pytest.mark.parametrize("shape", FUNCTION_SHAPES, ids=str)
def test_function_output_and_gradients_equal_torch_autograd(shape):
    ours = _function_inputs(shape, seed=7)
    ref = [t.detach().clone().requires_grad_() for t in ours]
    dout = torch.randn(shape, generator=torch.Generator().manual_seed(8), dtype=torch.float64)

    out = BatchNormFunction.apply(*ours, 1e-5)
    out_ref = F.batch_norm(ref[0], None, None, ref[1], ref[2], training=True, eps=1e-5)
    torch.testing.assert_close(out, out_ref, **TOL[torch.float64])

    grads = torch.autograd.grad(out, ours, dout)
    grads_ref = torch.autograd.grad(out_ref, ref, dout)
    for name, g, g_ref in zip(["dx", "dgamma", "dbeta"], grads, grads_ref):
        torch.testing.assert_close(g, g_ref, **TOL[torch.float64], msg=f"{name} differs from torch")


@pytest.mark.parametrize("shape", FUNCTION_SHAPES, ids=str)
def test_function_second_derivatives_equal_torch(shape):
    # Double backward: differentiate <grad(out, x), v> once more, as gradient penalties do.
    ours = _function_inputs(shape, seed=9)
    ref = [t.detach().clone().requires_grad_() for t in ours]
    gen = torch.Generator().manual_seed(10)
    dout = torch.randn(shape, generator=gen, dtype=torch.float64)
    v = torch.randn(shape, generator=gen, dtype=torch.float64)

    def second(inputs, forward):
        (dx,) = torch.autograd.grad(forward(*inputs), inputs[0], dout, create_graph=True)
        # dx does not depend on beta (a shift is normalised away), so only x and gamma.
        return torch.autograd.grad((dx * v).sum(), inputs[:2])

    ours_2 = second(ours, lambda *a: BatchNormFunction.apply(*a, 1e-5))
    ref_2 = second(ref, lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True, eps=1e-5))
    for g, g_ref in zip(ours_2, ref_2):
        torch.testing.assert_close(g, g_ref, rtol=1e-10, atol=1e-10)


def test_function_rejects_one_dimensional_input():
    with pytest.raises(ValueError, match="1D"):
        BatchNormFunction.apply(torch.randn(5), None, None, 1e-5)


# ---------------------------------------------------------------------------------------------
# 4. Modules against torch.nn, five training steps then eval
# ---------------------------------------------------------------------------------------------

SHAPES = [(BatchNorm1d, nn.BatchNorm1d, s) for s in [(2, 1), (4, 5), (8, 3, 7)]] + [
    (BatchNorm2d, nn.BatchNorm2d, s) for s in [(2, 1, 3, 3), (4, 3, 5, 6), (3, 2, 64, 64)]]
SHAPE_IDS = [f"{ours.__name__}-{'x'.join(map(str, s))}" for ours, _, s in SHAPES]

# torch.nn's BN got a keyword-only `bias` in recent releases; compare it only where torch has it.
TORCH_HAS_BN_BIAS = "bias" in inspect.signature(nn.BatchNorm1d.__init__).parameters
needs_torch_bn_bias = pytest.mark.skipif(not TORCH_HAS_BN_BIAS, reason="torch BN has no bias=")

CONFIGS = {
    "default": {},
    "momentum_none": {"momentum": None},
    "momentum_0.3": {"momentum": 0.3},
    "affine_false": {"affine": False},
    "bias_false": {"bias": False},
    "no_running_stats": {"track_running_stats": False},
}
DTYPES = [torch.float32, torch.float64]


def _make_pair(ours_cls, torch_cls, num_features, dtype, **kwargs):
    """Return (ours, torch's) BN with the same random weight and bias, so gradients are generic."""
    ours = ours_cls(num_features, dtype=dtype, **kwargs)
    ref = torch_cls(num_features, dtype=dtype, **kwargs)
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for name in ("weight", "bias"):
            if getattr(ref, name) is not None:
                value = 1.0 + 0.5 * torch.randn(num_features, generator=g, dtype=dtype)
                getattr(ref, name).copy_(value)
                getattr(ours, name).copy_(value)
    return ours, ref


def _step(module, x, dout):
    """Return (output, input gradient, {param name: gradient}) of one forward/backward."""
    module.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    out = module(x)
    out.backward(dout)
    params = {name: p.grad for name, p in module.named_parameters()}
    return out.detach(), x.grad, params


@functools.lru_cache(maxsize=None)  # three tests read each run; none of them changes it
def _run_five_steps_then_eval(ours_cls, torch_cls, shape, dtype, config):
    """Return (ours, torch's, per-step train results, eval results) after five random batches."""
    ours, ref = _make_pair(ours_cls, torch_cls, shape[1], dtype, **CONFIGS[config])
    g = torch.Generator().manual_seed(12)
    # Batches with channel means and scales away from 0 and 1, different every step, so the
    # running statistics move and the momentum convention shows.
    offset = 2.0 * torch.randn([1, shape[1]] + [1] * (len(shape) - 2), generator=g, dtype=dtype)
    train = []
    for _ in range(5):
        x = 1.5 * torch.randn(shape, generator=g, dtype=dtype) + offset
        dout = torch.randn(shape, generator=g, dtype=dtype)
        train.append((_step(ours, x, dout), _step(ref, x, dout)))
    ours.eval()
    ref.eval()
    x = 1.5 * torch.randn(shape, generator=g, dtype=dtype) + offset
    dout = torch.randn(shape, generator=g, dtype=dtype)
    return ours, ref, train, (_step(ours, x, dout), _step(ref, x, dout))


def _assert_step_equal(ours_step, ref_step, dtype, when):
    (out, dx, params), (out_ref, dx_ref, params_ref) = ours_step, ref_step
    torch.testing.assert_close(out, out_ref, **TOL[dtype], msg=f"{when}: output differs")
    torch.testing.assert_close(dx, dx_ref, **TOL[dtype], msg=f"{when}: input gradient differs")
    assert params.keys() == params_ref.keys()
    for name in params:
        torch.testing.assert_close(params[name], params_ref[name], **TOL[dtype],
                                   msg=f"{when}: gradient of {name} differs")


dtype_cases = pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
shape_cases = pytest.mark.parametrize("ours_cls, torch_cls, shape", SHAPES, ids=SHAPE_IDS)
config_cases = pytest.mark.parametrize("config", [
    pytest.param(c, marks=needs_torch_bn_bias) if c == "bias_false" else c for c in CONFIGS])


@dtype_cases
@shape_cases
@config_cases
def test_train_outputs_and_gradients_match_torch_for_five_steps(ours_cls, torch_cls, shape, dtype,
                                                                config):
    _, _, train, _ = _run_five_steps_then_eval(ours_cls, torch_cls, shape, dtype, config)
    for i, (ours_step, ref_step) in enumerate(train):
        _assert_step_equal(ours_step, ref_step, dtype, f"train step {i}")


@dtype_cases
@shape_cases
@config_cases
def test_running_stats_match_torch_after_five_steps(ours_cls, torch_cls, shape, dtype, config):
    ours, ref, _, _ = _run_five_steps_then_eval(ours_cls, torch_cls, shape, dtype, config)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        mine, theirs = getattr(ours, name), getattr(ref, name)
        if theirs is None:
            assert mine is None, f"{name} should be None with {config}"
        else:
            assert mine.dtype == theirs.dtype
            torch.testing.assert_close(mine, theirs, **TOL[dtype], msg=f"{name} differs")


@dtype_cases
@shape_cases
@config_cases
def test_eval_outputs_and_gradients_match_torch_after_five_steps(ours_cls, torch_cls, shape,
                                                                 dtype, config):
    _, _, _, (ours_step, ref_step) = _run_five_steps_then_eval(ours_cls, torch_cls, shape, dtype,
                                                               config)
    _assert_step_equal(ours_step, ref_step, dtype, "eval")


def test_momentum_none_running_mean_is_the_plain_average_of_batch_means():
    bn = BatchNorm1d(3, momentum=None, dtype=torch.float64)
    g = torch.Generator().manual_seed(13)
    batches = [torch.randn(6, 3, generator=g, dtype=torch.float64) + k for k in range(5)]
    for x in batches:
        bn(x)
    expected_mean = torch.stack([x.mean(0) for x in batches]).mean(0)
    expected_var = torch.stack([x.var(0, correction=1) for x in batches]).mean(0)
    torch.testing.assert_close(bn.running_mean, expected_mean, **TOL[torch.float64])
    torch.testing.assert_close(bn.running_var, expected_var, **TOL[torch.float64])
    assert int(bn.num_batches_tracked) == 5


def test_running_var_is_unbiased_while_normalising_uses_biased_var():
    # momentum=1 replaces the running estimates by this batch's, which exposes the estimator.
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(14), dtype=torch.float64)
    bn = BatchNorm1d(5, momentum=1.0, affine=False, dtype=torch.float64)
    out = bn(x)
    torch.testing.assert_close(bn.running_var, x.var(0, correction=1), **TOL[torch.float64])
    torch.testing.assert_close(out.var(0, correction=0), torch.ones(5, dtype=torch.float64),
                               rtol=1e-4, atol=0)  # 1 - eps / var, eps = 1e-5


def test_running_stats_follow_pytorch_momentum_convention():
    # running = (1 - momentum) * running + momentum * batch, starting from mean 0, var 1.
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(15), dtype=torch.float64) + 4
    bn = BatchNorm1d(3, momentum=0.3, dtype=torch.float64)
    bn(x)
    torch.testing.assert_close(bn.running_mean, 0.3 * x.mean(0), **TOL[torch.float64])
    torch.testing.assert_close(bn.running_var, 0.7 + 0.3 * x.var(0), **TOL[torch.float64])


def test_eval_mode_does_not_update_running_stats():
    bn = BatchNorm2d(3).eval()
    bn(torch.randn(4, 3, 5, 6) + 3)
    assert torch.equal(bn.running_mean, torch.zeros(3))
    assert torch.equal(bn.running_var, torch.ones(3))
    assert int(bn.num_batches_tracked) == 0


def test_empty_batch_counts_but_leaves_running_stats_like_torch():
    ours, ref = BatchNorm1d(3), nn.BatchNorm1d(3)
    for bn in (ours, ref):
        assert bn(torch.randn(0, 3)).shape == (0, 3)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        assert torch.equal(getattr(ours, name), getattr(ref, name)), name


@needs_torch_bn_bias  # also: older torch's repr has no "bias=" field
def test_constructor_matches_torch_parameters_buffers_and_repr():
    for kwargs in [{}, {"affine": False}, {"track_running_stats": False}, {"bias": False},
                   {"momentum": None, "eps": 1e-3}]:
        ours, ref = BatchNorm2d(4, **kwargs), nn.BatchNorm2d(4, **kwargs)
        assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
        assert [n for n, _ in ours.named_buffers()] == [n for n, _ in ref.named_buffers()]
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            assert (getattr(ours, name) is None) == (getattr(ref, name) is None), name
        assert repr(ours) == repr(ref)


def test_device_and_dtype_arguments_reach_parameters_and_buffers():
    bn = BatchNorm1d(3, device="cpu", dtype=torch.float64)
    assert bn.weight.dtype == bn.running_var.dtype == torch.float64
    assert bn.num_batches_tracked.dtype == torch.long  # a count, whatever the float dtype


# ---------------------------------------------------------------------------------------------
# 5. state_dict: same keys, loads both ways
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    pytest.param({}, id="default"), pytest.param({"affine": False}, id="affine_false"),
    pytest.param({"track_running_stats": False}, id="no_running_stats"),
    pytest.param({"bias": False}, id="bias_false", marks=needs_torch_bn_bias)])
def test_state_dict_keys_equal_torch(kwargs):
    ours, ref = BatchNorm2d(3, **kwargs), nn.BatchNorm2d(3, **kwargs)
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert ours.state_dict()._metadata[""]["version"] == ref.state_dict()._metadata[""]["version"]


def _trained(bn, steps=3):
    """Return bn after a few training steps on shifted random batches, switched to eval."""
    g = torch.Generator().manual_seed(16)
    with torch.no_grad():
        bn.weight.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
        bn.bias.copy_(torch.randn(bn.num_features, generator=g))
    for _ in range(steps):
        bn(2 * torch.randn(4, bn.num_features, 5, 6, generator=g) + 1)
    return bn.eval()


@pytest.mark.parametrize("src_cls, dst_cls", [(BatchNorm2d, nn.BatchNorm2d),
                                              (nn.BatchNorm2d, BatchNorm2d)],
                         ids=["ours_to_torch", "torch_to_ours"])
def test_load_state_dict_reproduces_eval_outputs(src_cls, dst_cls):
    src = _trained(src_cls(3))
    dst = dst_cls(3).eval()
    dst.load_state_dict(src.state_dict())  # strict: keys must match exactly
    assert int(dst.num_batches_tracked) == int(src.num_batches_tracked) == 3
    x = torch.randn(2, 3, 5, 6, generator=torch.Generator().manual_seed(17))
    torch.testing.assert_close(dst(x), src(x), **TOL[torch.float32])


def test_state_dict_without_num_batches_tracked_loads_like_torch():
    # Checkpoints from before state_dict version 2 lack num_batches_tracked.
    old = _trained(nn.BatchNorm2d(3)).state_dict()
    del old["num_batches_tracked"]
    old._metadata[""]["version"] = 1
    ours, ref = BatchNorm2d(3), nn.BatchNorm2d(3)
    for bn in (ours, ref):
        bn.num_batches_tracked.fill_(7)
        bn.load_state_dict(copy.deepcopy(old))
    assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked) == 7  # count kept
    assert torch.equal(ours.running_mean, ref.running_mean)


# ---------------------------------------------------------------------------------------------
# 6. Batch size 1 and bad input, as torch reports them
# ---------------------------------------------------------------------------------------------

ONE_VALUE_PER_CHANNEL = [(BatchNorm1d, nn.BatchNorm1d, (1, 3)),
                         (BatchNorm1d, nn.BatchNorm1d, (1, 3, 1)),
                         (BatchNorm2d, nn.BatchNorm2d, (1, 3, 1, 1))]


def _raised(module, x):
    """Return (exception type, message) that module(x) raises."""
    with pytest.raises(Exception) as info:
        module(x)
    return info.type, str(info.value)


@pytest.mark.parametrize("ours_cls, torch_cls, shape", ONE_VALUE_PER_CHANNEL, ids=str)
def test_one_value_per_channel_in_training_raises_value_error_like_torch(ours_cls, torch_cls,
                                                                         shape):
    x = torch.randn(shape)
    ours, ref = _raised(ours_cls(3), x), _raised(torch_cls(3), x)
    assert ours[0] is ref[0] is ValueError
    assert ours[1] == ref[1]
    assert "Expected more than 1 value per channel when training" in ours[1]


@pytest.mark.parametrize("ours_cls, torch_cls, shape", ONE_VALUE_PER_CHANNEL, ids=str)
def test_one_value_per_channel_in_eval_raises_only_without_running_stats(ours_cls, torch_cls,
                                                                         shape):
    x = torch.randn(shape)
    # With running statistics eval needs no batch statistics: batch size 1 is fine.
    torch.testing.assert_close(ours_cls(3).eval()(x), torch_cls(3).eval()(x))
    # Without them eval normalises with the batch, and torch raises the same "training" error.
    kw = {"track_running_stats": False}
    ours, ref = _raised(ours_cls(3, **kw).eval(), x), _raised(torch_cls(3, **kw).eval(), x)
    assert ours == ref and ours[0] is ValueError


def test_rejected_batch_leaves_all_state_untouched():
    # torch increments num_batches_tracked before it rejects the batch; we count only batches
    # that were used (a deliberate difference, on the error path only).
    bn = BatchNorm1d(3)
    with pytest.raises(ValueError):
        bn(torch.randn(1, 3))
    assert int(bn.num_batches_tracked) == 0
    assert torch.equal(bn.running_mean, torch.zeros(3))


@pytest.mark.parametrize("ours_cls, torch_cls, shape",
                         [(BatchNorm2d, nn.BatchNorm2d, (1, 3, 4, 5)),
                          (BatchNorm1d, nn.BatchNorm1d, (1, 3, 7))], ids=str)
def test_batch_of_one_with_spatial_extent_trains_like_torch(ours_cls, torch_cls, shape):
    # Statistics are per channel over N x H x W (or N x L): one image still has many values.
    ours, ref, train, _ = _run_five_steps_then_eval(ours_cls, torch_cls, shape, torch.float64,
                                                    "default")
    for i, (ours_step, ref_step) in enumerate(train):
        _assert_step_equal(ours_step, ref_step, torch.float64, f"train step {i}")
    torch.testing.assert_close(ours.running_var, ref.running_var, **TOL[torch.float64])


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("kwargs", [{}, {"affine": False}, {"track_running_stats": False}],
                         ids=["default", "affine_false", "no_running_stats"])
def test_wrong_channel_count_raises_like_torch_and_changes_nothing(kwargs, training):
    x = torch.randn(4, 5)
    ours = BatchNorm1d(3, **kwargs).train(training)
    ref = nn.BatchNorm1d(3, **kwargs).train(training)
    assert _raised(ours, x) == _raised(ref, x)
    if ours.num_batches_tracked is not None:
        assert int(ours.num_batches_tracked) == 0  # torch counts the rejected batch in training


def test_zero_eps_in_training_raises_value_error_like_torch():
    x = torch.randn(4, 3)
    ours = _raised(BatchNorm1d(3, eps=0.0), x)
    assert ours[0] is ValueError  # a constant channel would divide by zero
    try:
        nn.BatchNorm1d(3, eps=0.0)(x)
    except Exception as err:  # torch checks this in recent releases (not in 2.5)
        assert ours == (type(err), str(err))


@pytest.mark.parametrize("ours_cls, torch_cls, shape", [
    (BatchNorm1d, nn.BatchNorm1d, (5,)), (BatchNorm1d, nn.BatchNorm1d, (2, 3, 4, 5)),
    (BatchNorm2d, nn.BatchNorm2d, (4, 3)), (BatchNorm2d, nn.BatchNorm2d, (2, 3, 4)),
    (BatchNorm2d, nn.BatchNorm2d, (2, 3, 4, 5, 6))], ids=str)
def test_wrong_number_of_dims_raises_value_error_like_torch(ours_cls, torch_cls, shape):
    x = torch.randn(shape)
    ours, ref = _raised(ours_cls(3), x), _raised(torch_cls(3), x)
    assert ours == ref and ours[0] is ValueError


# ---------------------------------------------------------------------------------------------
# 7. Inference: bn_affine and fold_batchnorm
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bn_factory", [
    lambda: _trained(BatchNorm2d(3)),
    lambda: _trained(nn.BatchNorm2d(3)),
    lambda: _trained_no_affine(BatchNorm2d(3, affine=False)),
    lambda: _trained_no_affine(BatchNorm2d(3, bias=False)),
], ids=["ours", "torch", "ours_affine_false", "ours_bias_false"])
def test_bn_affine_reproduces_eval_batchnorm(bn_factory):
    bn = bn_factory()
    scale, shift = bn_affine(bn)
    assert scale.shape == shift.shape == (3,)
    x = torch.randn(2, 3, 5, 6, generator=torch.Generator().manual_seed(18))
    expected = bn(x)
    torch.testing.assert_close(scale.view(1, 3, 1, 1) * x + shift.view(1, 3, 1, 1), expected,
                               **TOL[torch.float32])


def _trained_no_affine(bn):
    """Return bn (with weight or bias off) after a few training steps, in eval mode."""
    g = torch.Generator().manual_seed(19)
    if bn.weight is not None:
        with torch.no_grad():
            bn.weight.copy_(torch.rand(3, generator=g) + 0.5)
    for _ in range(3):
        bn(2 * torch.randn(4, 3, 5, 6, generator=g) - 1)
    return bn.eval()


def test_bn_affine_refuses_bn_without_running_stats():
    with pytest.raises(ValueError, match="running statistics"):
        bn_affine(BatchNorm2d(3, track_running_stats=False))


def _bn_trained_on(layer, bn_cls, x_shape, affine=True):
    """Return a BN (eval mode) trained for a few steps on layer's outputs for random inputs."""
    g = torch.Generator().manual_seed(20)
    out_channels = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
    bn = bn_cls(out_channels, affine=affine)
    if affine:
        with torch.no_grad():
            bn.weight.copy_(torch.rand(out_channels, generator=g) + 0.5)
            bn.bias.copy_(torch.randn(out_channels, generator=g))
    with torch.no_grad():
        for _ in range(4):
            bn(layer(3 * torch.randn(x_shape, generator=g) + 1))
    return bn.eval()


FOLD_CASES = {
    "linear": (lambda: nn.Linear(5, 4), (6, 5)),
    "linear_no_bias": (lambda: nn.Linear(5, 4, bias=False), (6, 5)),
    "conv": (lambda: nn.Conv2d(4, 6, 3), (2, 4, 9, 8)),
    "conv_no_bias": (lambda: nn.Conv2d(4, 6, 3, bias=False), (2, 4, 9, 8)),
    "conv_stride2_pad1_groups2": (
        lambda: nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=False), (2, 4, 9, 8)),
    "conv_dilation2_reflect_pad": (
        lambda: nn.Conv2d(4, 6, 3, dilation=2, padding=2, padding_mode="reflect"), (2, 4, 9, 8)),
}


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "affine_false"])
@pytest.mark.parametrize("bn_kind", ["ours", "torch"])
@pytest.mark.parametrize("case", list(FOLD_CASES))
def test_folded_layer_equals_layer_then_eval_bn(case, bn_kind, affine):
    torch.manual_seed(21)
    make_layer, x_shape = FOLD_CASES[case]
    layer = make_layer()
    is_linear = isinstance(layer, nn.Linear)
    bn_cls = {("ours", True): BatchNorm1d, ("ours", False): BatchNorm2d,
              ("torch", True): nn.BatchNorm1d, ("torch", False): nn.BatchNorm2d}[bn_kind, is_linear]
    bn = _bn_trained_on(layer, bn_cls, x_shape, affine=affine)
    assert not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))  # non-trivial stats
    layer_before = copy.deepcopy(layer.state_dict())
    bn_before = copy.deepcopy(bn.state_dict())

    folded = fold_batchnorm(layer, bn)

    assert type(folded) is type(layer) and folded is not layer and folded.bias is not None
    x = 3 * torch.randn(x_shape, generator=torch.Generator().manual_seed(22)) + 1
    with torch.no_grad():
        torch.testing.assert_close(folded(x), bn(layer(x)), **TOL[torch.float32])
    for before, module in [(layer_before, layer), (bn_before, bn)]:
        for key, value in module.state_dict().items():
            assert torch.equal(value, before[key]), f"fold_batchnorm changed {key}"
    assert not bn.training  # folding must not flip modes either


def test_fold_batchnorm_rejects_mismatched_channels_and_unsupported_layers():
    bn = BatchNorm1d(3).eval()
    with pytest.raises(ValueError, match="channels"):
        fold_batchnorm(nn.Linear(5, 4), bn)
    with pytest.raises(TypeError):
        fold_batchnorm(nn.ConvTranspose2d(4, 3, 3), BatchNorm2d(3).eval())
    with pytest.raises(ValueError, match="running statistics"):
        fold_batchnorm(nn.Linear(5, 3), BatchNorm1d(3, track_running_stats=False))


# ---------------------------------------------------------------------------------------------
# allow_single_value: a batch of one example, which torch refuses


def test_allow_single_value_equals_torch_for_batches_of_two_or_more():
    torch.manual_seed(0)
    ours, ref = BatchNorm1d(6, allow_single_value=True), nn.BatchNorm1d(6)
    with torch.no_grad():
        ours.weight.normal_()
        ref.weight.copy_(ours.weight)
    for n in (2, 5):
        x = torch.randn(n, 6) * 3 + 1
        torch.testing.assert_close(ours(x), ref(x))
    torch.testing.assert_close(ours.running_mean, ref.running_mean)
    torch.testing.assert_close(ours.running_var, ref.running_var)
    ours.eval(), ref.eval()
    x = torch.randn(4, 6)
    torch.testing.assert_close(ours(x), ref(x))


def test_allow_single_value_normalises_one_example_to_beta_with_zero_gradient():
    bn = BatchNorm1d(5, allow_single_value=True, momentum=0.5)
    with torch.no_grad():
        bn.bias.normal_()
    x = (torch.randn(1, 5) * 100).requires_grad_(True)
    out = bn(x)
    assert torch.equal(out, bn.bias.detach().view(1, 5))
    out.sum().backward()
    assert torch.equal(x.grad, torch.zeros(1, 5))
    # the running variance takes the biased batch variance, 0 (the unbiased one is 0/0)
    torch.testing.assert_close(bn.running_var, torch.full((5,), 0.5))
    torch.testing.assert_close(bn.running_mean, 0.5 * x.detach()[0])
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm1d(5)(torch.randn(1, 5))    # without the flag: refused, as torch does

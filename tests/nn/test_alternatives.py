"""Batch Renormalization, RMSNorm and the GroupNorm/LayerNorm wrapper (chapter 9)."""

import pytest
import torch
from torch import nn

from bn_utils.nn import alternatives


def _batches(shape, n=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [3 * torch.randn(*shape, generator=gen, dtype=torch.float64) + 1 for _ in range(n)]


@pytest.mark.parametrize("shape", [(8, 5), (4, 5, 3, 2)])
def test_batch_renorm_with_tight_limits_equals_batchnorm_outputs_grads_and_running_stats(shape):
    brn = alternatives.BatchRenorm(5, rmax=1.0, dmax=0.0).double()
    bn = (nn.BatchNorm1d(5) if len(shape) == 2 else nn.BatchNorm2d(5)).double()
    with torch.no_grad():
        for layer in (brn, bn):
            layer.weight.copy_(torch.linspace(0.5, 2, 5))
            layer.bias.copy_(torch.linspace(-1, 1, 5))
    for x in _batches(shape):
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yb = brn(xa), bn(xb)
        torch.testing.assert_close(ya, yb, rtol=1e-12, atol=1e-12)
        dout = torch.randn_like(ya)
        (ya * dout).sum().backward()
        (yb * dout).sum().backward()
        torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(brn.running_mean, bn.running_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(brn.running_var, bn.running_var, rtol=1e-12, atol=1e-12)
    assert int(brn.num_batches_tracked) == 5
    brn.eval(), bn.eval()
    x = _batches(shape, 1, seed=9)[0]
    torch.testing.assert_close(brn(x), bn(x), rtol=1e-12, atol=1e-12)


def test_batch_renorm_running_stats_move_towards_the_batch_statistics():
    brn = alternatives.BatchRenorm(3, momentum=0.5)
    x = torch.randn(64, 3) * 2 + 4
    brn(x)
    torch.testing.assert_close(brn.running_mean, 0.5 * x.mean(0))
    torch.testing.assert_close(brn.running_var, 0.5 + 0.5 * x.var(0, unbiased=True))


def test_batch_renorm_with_loose_limits_gives_the_eval_output_in_training():
    # r and d unclipped: (x - mu_B)/sigma_B * sigma_B/sigma + (mu_B - mu)/sigma = (x - mu)/sigma
    brn = alternatives.BatchRenorm(4, rmax=1e6, dmax=1e6).double()
    brn.running_mean.fill_(0.7)
    brn.running_var.fill_(2.5)
    x = _batches((10, 4), 1)[0]
    expected = (x - 0.7) / torch.sqrt(torch.tensor(2.5, dtype=torch.float64) + brn.eps)
    torch.testing.assert_close(brn(x), expected, rtol=1e-10, atol=1e-10)


def test_batch_renorm_gradient_treats_r_and_d_as_constants():
    x = _batches((6, 3), 1)[0].requires_grad_()
    mean, var = torch.full((3,), 0.5, dtype=torch.float64), torch.full((3,), 4.0, dtype=torch.float64)
    y, r, d = alternatives.batch_renorm(x, mean, var, None, None, rmax=1e6, dmax=1e6)
    assert not r.requires_grad and not d.requires_grad
    dout = torch.randn_like(y)
    (dx,) = torch.autograd.grad((y * dout).sum(), x)
    # the same function with r and d frozen at this batch's values: BN's graph times r, plus d
    x2 = x.detach().clone().requires_grad_()
    mu, std = x2.mean(0), torch.sqrt(x2.var(0, unbiased=False) + 1e-5)
    (dx_ref,) = torch.autograd.grad((((x2 - mu) / std * r + d) * dout).sum(), x2)
    torch.testing.assert_close(dx, dx_ref, rtol=1e-10, atol=1e-12)
    # and a finite-difference check of that documented gradient (r, d held fixed)
    frozen = lambda z: (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5) * r + d  # noqa: E731
    assert torch.autograd.gradcheck(frozen, (x.detach().clone().requires_grad_(),))


def test_batch_renorm_gradcheck_where_clipping_holds_r_and_d_fixed():
    # running statistics far from the batch's: r = 1/rmax and d = -dmax exactly, so the
    # stop-gradient and the true derivative agree and gradcheck must pass on the module itself
    brn = alternatives.BatchRenorm(3, rmax=2.0, dmax=0.5).double()
    brn.running_mean.fill_(10.0)
    brn.running_var.fill_(100.0)
    x = _batches((6, 3), 1)[0]
    _, r, d = alternatives.batch_renorm(x, brn.running_mean, brn.running_var, None, None, rmax=2.0, dmax=0.5)
    assert torch.all(r == 0.5) and torch.all(d == -0.5)
    brn.momentum = 0.0   # gradcheck calls forward many times: keep the running statistics fixed
    assert torch.autograd.gradcheck(brn, (x.requires_grad_(),))


def test_renorm_schedule_warms_up_then_ramps_linearly():
    assert alternatives.renorm_limits(0, 3.0, 5.0, warmup_steps=10, ramp_steps=20) == (1.0, 0.0)
    assert alternatives.renorm_limits(20, 3.0, 5.0, warmup_steps=10, ramp_steps=20) == (2.0, 2.5)
    assert alternatives.renorm_limits(99, 3.0, 5.0, warmup_steps=10, ramp_steps=20) == (3.0, 5.0)
    brn = alternatives.BatchRenorm(2, rmax=3.0, dmax=5.0, warmup_steps=1, ramp_steps=2)
    seen = []
    for _ in range(4):
        seen.append(brn.limits())
        brn(torch.randn(8, 2))
    assert seen == [(1.0, 0.0), (1.0, 0.0), (2.0, 2.5), (3.0, 5.0)]


@pytest.mark.parametrize("kwargs, word", [({"rmax": 0.5}, "rmax=0.5"), ({"dmax": -1.0}, "dmax=-1.0"),
                                          ({"rmax": float("nan")}, "rmax=nan")])
def test_batch_renorm_rejects_bad_limits_by_name(kwargs, word):
    with pytest.raises(ValueError, match=word):
        alternatives.BatchRenorm(4, **kwargs)


def test_batch_renorm_rejects_wrong_channels():
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        alternatives.BatchRenorm(4)(torch.randn(3, 5))


def test_rms_norm_matches_torch_and_ignores_the_input_scale():
    rms = alternatives.RMSNorm(6).double()
    with torch.no_grad():
        rms.weight.copy_(torch.linspace(0.5, 2, 6))
    x = _batches((4, 6), 1)[0]
    ref = torch.nn.functional.rms_norm(x, (6,), rms.weight, eps=1e-5)
    torch.testing.assert_close(rms(x), ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(rms(7.0 * x), rms(x), rtol=1e-6, atol=1e-6)
    img = _batches((2, 6, 3, 5), 1)[0]
    out = rms(img)
    assert out.shape == img.shape
    # unit root mean square per example before the gain
    rms.weight.data.fill_(1.0)
    torch.testing.assert_close(rms(img).pow(2).mean((1, 2, 3)), torch.ones(2, dtype=torch.float64),
                               rtol=1e-4, atol=1e-4)
    # no centring: a shift of the input changes the output (unlike LayerNorm)
    assert not torch.allclose(rms(img + 1.0), rms(img))


def test_group_norm_with_one_group_is_layer_norm_and_is_batch_independent():
    gn = alternatives.GroupNorm(6, 1).double()
    x = _batches((4, 6, 3, 5), 1)[0]
    torch.testing.assert_close(gn(x), torch.nn.functional.layer_norm(x, x.shape[1:]), rtol=1e-10, atol=1e-10)
    # each example is normalised on its own: the output of one example ignores the others
    torch.testing.assert_close(gn(x)[:1], gn(x[:1]))
    g3 = alternatives.GroupNorm(6, 3)
    assert g3(torch.randn(2, 6, 4, 4)).shape == (2, 6, 4, 4)
    torch.testing.assert_close(g3(5 * x.float() + 2), g3(x.float()), rtol=1e-4, atol=1e-4)


def test_group_norm_rejects_groups_that_do_not_divide_channels():
    with pytest.raises(ValueError, match="groups=4 for 6 channels"):
        alternatives.GroupNorm(6, 4)

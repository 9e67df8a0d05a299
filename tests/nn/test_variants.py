"""Noisy BN, the paper's activation noise, and the ℓp normalisation layers."""

import math

import pytest
import torch
from torch import nn

from bn_utils.nn import variants


def _train_both(a: nn.Module, b: nn.Module, steps: int = 5) -> None:
    gen = torch.Generator().manual_seed(0)
    a.train(), b.train()
    for _ in range(steps):
        x = 3 * torch.randn(16, 6, 5, 4, generator=gen) + 1
        a(x), b(x)


def test_noisy_bn_in_eval_mode_equals_bn_eval():
    torch.manual_seed(0)
    bn, noisy = nn.BatchNorm2d(6), variants.NoisyBatchNorm2d(6)
    with torch.no_grad():
        for layer in (bn, noisy):
            layer.weight.copy_(torch.linspace(0.5, 2, 6))
            layer.bias.copy_(torch.linspace(-1, 1, 6))
    _train_both(bn, noisy)
    # the noise comes after the normalisation, so the running statistics are BN's
    assert torch.equal(bn.running_mean, noisy.running_mean)
    assert torch.equal(bn.running_var, noisy.running_var)
    assert noisy.state_dict().keys() == bn.state_dict().keys()
    bn.eval(), noisy.eval()
    x = torch.randn(7, 6, 3, 3)
    assert torch.equal(noisy(x), bn(x))


def test_noisy_bn1d_in_eval_mode_equals_bn_eval():
    bn, noisy = nn.BatchNorm1d(5), variants.NoisyBatchNorm1d(5)
    x = torch.randn(32, 5)
    bn(x), noisy(x)
    bn.eval(), noisy.eval()
    assert torch.equal(noisy(x), bn(x))


def test_noise_has_the_papers_moments_and_changes_every_step():
    torch.manual_seed(1)
    a = torch.randn(4096, 8)
    a = (a - a.mean(0)) / a.std(0, unbiased=False)            # BN output with gamma=1, beta=0
    first, second = variants.activation_noise(a), variants.activation_noise(a)
    for out in (first, second):
        mean, std = out.mean(0), out.std(0)
        # mean ~ mu in [-0.5, 0.5] (± r_mu = 0.1 jitter), std ~ sigma in [1, 1.25] (+ r_sigma spread)
        assert mean.abs().max() < 0.5 + 0.1, mean
        assert (std > 0.95).all() and (std < 1.25 + 0.1).all(), std
    assert (first.mean(0) - second.mean(0)).abs().max() > 0.05  # a new distribution each call


def test_noise_on_convolutions_is_drawn_per_pixel():
    torch.manual_seed(2)
    out = variants.activation_noise(torch.zeros(2, 3, 8, 8))           # zero input: out = m
    # one distribution per channel (its mean mu within ±0.5), fresh values per example and pixel
    assert (out.amax((0, 2, 3)) - out.amin((0, 2, 3)) <= 0.2 + 1e-6).all()
    assert (out.std((0, 2, 3)) > 0.02).all()
    assert (out.mean((0, 2, 3)).abs() < 0.5 + 0.1).all()


def test_activation_noise_is_identity_in_eval_and_rejects_bad_constants():
    layer = variants.ActivationNoise(4).eval()
    x = torch.randn(3, 4)
    assert layer(x) is x
    with pytest.raises(ValueError, match="n_sigma"):
        variants.ActivationNoise(4, n_sigma=0.5)


@pytest.mark.parametrize("p", [1.0, 2.0, math.inf])
@pytest.mark.parametrize("shape", [(64, 7), (16, 5, 4, 3)])
def test_lp_layer_output_has_unit_average_lp_norm(p, shape):
    torch.manual_seed(3)
    x = 5 * torch.randn(shape) + 2
    layer = variants.LpNorm(shape[1], p).train()
    out = layer(x)
    units_last = out.movedim(1, -1).reshape(-1, shape[1])       # examples (and pixels) × units
    assert units_last.mean(0).abs().max() < 1e-5                 # centred per unit
    per_example = units_last.abs().amax(1) if math.isinf(p) else units_last.abs().pow(p).mean(1).pow(1 / p)
    assert abs(per_example.mean().item() - 1) < 1e-4


@pytest.mark.parametrize("p", [1.0, 2.0, math.inf])
def test_lp_layer_per_unit_reading_has_unit_norm_per_unit(p):
    torch.manual_seed(4)
    x = torch.randn(50, 6) * torch.arange(1, 7)
    out = variants.LpNorm(6, p, over="unit").train()(x)
    norms = out.abs().amax(0) if math.isinf(p) else out.abs().pow(p).mean(0).pow(1 / p)
    assert torch.allclose(norms, torch.ones(6), atol=1e-4)


def test_lp2_per_unit_is_batchnorm():
    torch.manual_seed(5)
    x = torch.randn(40, 6, 3, 3) * 4
    ours = variants.LpNorm(6, 2.0, over="unit", eps=1e-8)(x)
    bn = nn.BatchNorm2d(6, eps=1e-8)(x)
    assert torch.allclose(ours, bn, atol=1e-5)


def test_lp_layer_eval_uses_running_statistics():
    torch.manual_seed(6)
    layer = variants.LpNorm(4, 1.0, momentum=1.0)
    x = torch.randn(32, 4) * 3 + 1
    train_out = layer(x)
    layer.eval()
    assert torch.allclose(layer(x), train_out, atol=1e-5)       # momentum 1: running = last batch

"""The one registry of normalisation layers: every name builds a layer that keeps the shape, in
training and eval mode; bad names and dimensions fail by name; builders decide biases by it."""

import pytest
import torch
from torch import nn

from bn_utils.nn import models, alternatives, registry, variants, norms


CENTRED = {"bn", "bn_scratch", "l1", "l2", "linf"}   # centre each channel over the batch (Batch Renorm
# corrects toward its running statistics, so a shifted batch stays shifted)


def test_every_name_of_chapters_7_8_and_9_is_registered():
    assert set(variants.NORM_NAMES) | set(alternatives.ALTERNATIVES) <= set(registry.NORMS)


@pytest.mark.parametrize("name", sorted(registry.NORMS))
@pytest.mark.parametrize("dims, shape", [(1, (4, 8)), (2, (4, 8, 5, 5))])
def test_every_norm_keeps_the_shape_in_training_and_eval(name, dims, shape):
    layer = registry.make_norm(name, 8, dims)
    x = 3 * torch.randn(*shape) + 2
    out = layer(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    if name in CENTRED:   # in training mode, fresh (γ = 1, β = 0): each channel's batch mean is 0
        over = (0,) if dims == 1 else (0, 2, 3)
        assert out.mean(over).abs().max() < 1e-5
    layer.eval()
    assert layer(x).shape == x.shape


def test_the_names_build_the_layers_they_say():
    make = registry.make_norm
    assert type(make("bn", 3, 1)) is nn.BatchNorm1d and type(make("bn", 3, 2)) is nn.BatchNorm2d
    assert type(make("bn_scratch", 3, 1)) is norms.BatchNorm1d
    assert type(make("bn_scratch", 3, 2)) is norms.BatchNorm2d
    assert type(make("noisy_bn", 3, 2)) is variants.NoisyBatchNorm2d
    assert make("linf", 3, 2).p == float("inf") and make("l1", 3, 1, over="unit").over == "unit"
    assert make("gn", 8, 2, groups=2).num_groups == 2 and make("ln", 8, 2).num_groups == 1
    assert make("noisy_bn", 3, 1, n_mu=0.0).noise["n_mu"] == 0.0


def test_bad_names_dimensions_and_arguments_fail_before_a_model_is_built():
    with pytest.raises(ValueError, match="unknown norm 'batch'"):
        registry.make_norm("batch", 8)
    with pytest.raises(ValueError, match="dims"):
        registry.norm_factory("bn", dims=3)
    with pytest.raises(ValueError, match="n_sigma"):
        registry.norm_factory("noise", n_sigma=0.5)
    assert registry.norm_factory("gn", groups=3)(6).num_groups == 3


@pytest.mark.parametrize("name, shift", [("none", False), ("bn", True), ("noise", False),
                                         ("noisy_bn", True), ("l2", True), ("rms", False)])
def test_a_layer_before_a_norm_keeps_its_bias_only_without_a_learned_shift(name, shift):
    layer = registry.make_norm(name, 4, 1)
    assert registry.has_shift(layer) is shift
    net = models.deep_linear(3, 4, norm=name)   # deep linear nets are bias-free whatever the norm
    assert all(m.bias is None for m in models.weight_layers(net))
    mlp = models.mlp((6, 4, 2), norm=name)
    assert (mlp[0].bias is None) is shift and mlp[-1].bias is not None
    vgg = models.vgg("vgg11", width=1 / 16, norm=name)
    assert all((c.bias is None) is shift for c in vgg if isinstance(c, nn.Conv2d))

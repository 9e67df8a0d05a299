"""Model builders: shapes, where BN sits, biases, initialisations, and bad arguments."""

import math

import pytest
import torch
from torch import nn

from bn_utils import models


def test_mlp_maps_inputs_to_logits_of_the_right_shape():
    model = models.mlp((784, 100, 100, 100, 10))
    assert model(torch.randn(7, 784)).shape == (7, 10)


def test_bn_sits_between_the_linear_map_and_the_nonlinearity_and_replaces_its_bias():
    model = models.mlp((784, 100, 100, 100, 10), activation_name="sigmoid", norm="bn")
    kinds = [type(m) for m in model]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.Sigmoid] * 3 + [nn.Linear]
    assert all(m.bias is None for m in model[:-1] if isinstance(m, nn.Linear))
    assert model[-1].bias is not None  # the output layer has no BN after it
    assert models.activation_inputs(model) == [1, 4, 7]


def test_without_norm_every_linear_keeps_its_bias():
    model = models.mlp((10, 5, 3), activation_name="tanh")
    assert [type(m) for m in model] == [nn.Linear, nn.Tanh, nn.Linear]
    assert all(m.bias is not None for m in model if isinstance(m, nn.Linear))
    assert models.activation_inputs(model) == [0]


def test_a_norm_factory_can_be_passed_directly():
    model = models.mlp((6, 4, 2), norm=lambda w: nn.LayerNorm(w))
    assert isinstance(model[1], nn.LayerNorm) and model[0].bias is None


def test_scratch_bn_is_available_by_name():
    model = models.mlp((6, 4, 2), norm="bn_scratch")
    assert type(model[1]).__module__ == "bn_utils.norms"


def test_gaussian_init_has_the_requested_std_and_zero_bias():
    torch.manual_seed(0)
    layer = nn.Linear(1000, 500)
    models.init_linear(layer, "gaussian", std=0.05)
    assert layer.weight.std().item() == pytest.approx(0.05, rel=0.02)
    assert layer.bias.abs().sum() == 0


def test_lecun_uniform_init_is_bounded_by_sqrt_3_over_fan_in():
    layer = nn.Linear(300, 200)
    models.init_linear(layer, "lecun_uniform")
    bound = math.sqrt(3 / 300)
    assert layer.weight.abs().max() <= bound
    assert layer.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.03)


@pytest.mark.parametrize("kwargs, message", [
    ({"widths": (784,)}, "two or more positive integers"),
    ({"widths": (784, 0, 10)}, "two or more positive integers"),
    ({"widths": (4, 2), "activation_name": "swish"}, "unknown activation 'swish'"),
    ({"widths": (4, 2), "norm": "groupnorm"}, "unknown norm 'groupnorm'"),
    ({"widths": (4, 2), "init": "orthogonal"}, "unknown init 'orthogonal'"),
])
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.mlp(**kwargs)

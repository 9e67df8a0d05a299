"""Model builders: shapes, where BN sits, biases, initialisations, and bad arguments."""

import math

import pytest
import torch
from torch import nn

from bn_utils.nn import models, registry, variants, norms


def test_mlp_computes_linear_sigmoid_blocks_then_plain_logits():
    model = models.mlp((784, 100, 100, 100, 10))
    x = torch.randn(7, 784)
    lin = [m for m in model if isinstance(m, nn.Linear)]
    h = x
    for layer in lin[:-1]:                      # by hand: sigmoid(W h + b) per hidden layer
        h = torch.sigmoid(h @ layer.weight.T + layer.bias)
    torch.testing.assert_close(model(x), h @ lin[-1].weight.T + lin[-1].bias)
    assert [m.out_features for m in lin] == [100, 100, 100, 10]


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
    assert type(model[1]).__module__ == "bn_utils.nn.norms"


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


# The VGG and the deep linear network of chapters 7 and 8


@pytest.mark.parametrize("norm", ["none", "bn", "noisy_bn", "noise", "l1", "l2", "linf"])
def test_vgg16_shapes_layers_and_biases(norm):
    torch.manual_seed(0)
    net = models.vgg("vgg16", width=1 / 16, norm=norm)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    convs = [m for m in models.weight_layers(net) if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13 and len(models.weight_layers(net)) == 14
    assert [c.out_channels for c in convs[:3]] == [4, 4, 8]           # 64, 64, 128 × 1/16
    assert len(models.relu_inputs(net)) == 13
    # a convolution keeps its bias only when no learned shift (beta) follows it
    shifted = norm in ("bn", "noisy_bn", "l1", "l2", "linf")
    assert all((c.bias is None) == shifted for c in convs)


def test_vgg_glorot_init_and_bad_arguments():
    torch.manual_seed(0)
    conv = models.weight_layers(models.vgg("vgg11", width=0.5))[1]     # 32 -> 64 channels, 3x3
    bound = (6 / (32 * 9 + 64 * 9)) ** 0.5
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.9 * bound
    assert torch.all(conv.bias == 0)
    with pytest.raises(ValueError, match="unknown VGG"):
        models.vgg("vgg99")
    with pytest.raises(ValueError, match="unknown norm"):
        models.vgg(norm="layer")


def test_vgg_takes_a_norm_factory():
    net = models.vgg("vgg11", width=1 / 16, norm=registry.norm_factory("noisy_bn", n_mu=0.0))
    noisy = [m for m in net if isinstance(m, variants.NoisyBatchNorm2d)]
    assert len(noisy) == 8 and noisy[0].noise["n_mu"] == 0.0


def test_deep_linear_network_structure():
    net = models.deep_linear(25, 10, norm="bn")
    assert len(models.weight_layers(net)) == 25
    assert sum(isinstance(m, nn.BatchNorm1d) for m in net) == 24
    assert all(m.bias is None for m in models.weight_layers(net))
    plain = models.deep_linear(25, 10)
    assert len(models.weight_layers(plain)) == 25 and plain(torch.randn(3, 10)).shape == (3, 10)


def test_deep_linear_network_with_bn_trains_on_a_toy_batch():
    torch.manual_seed(0)
    net = models.deep_linear(25, 10, norm="bn")
    x = torch.randn(100, 10)
    y = x @ torch.randn(10, 10).T
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    losses = []
    for _ in range(150):
        loss = (net(x) - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(map(math.isfinite, losses)) and losses[-1] < 0.35 * losses[0], (losses[0], losses[-1])


# ---------------------------------------------------------------------------------------------
# BN layers, the small conv net and folding


def test_bn_layers_finds_torchs_and_ours_in_order_and_nothing_else():
    model = nn.Sequential(nn.Linear(3, 4), norms.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 4),
                          nn.BatchNorm1d(4), nn.LayerNorm(4))
    assert models.bn_layers(model) == [model[1], model[4]]
    assert [models.is_bn_layer(m) for m in model] == [False, True, False, False, True, False]


def test_small_convnet_maps_mnist_images_to_ten_logits():
    net = models.small_convnet((4, 6, 5))
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert len(models.bn_layers(net)) == 3


@pytest.mark.parametrize("bn2d", [nn.BatchNorm2d, norms.BatchNorm2d])
def test_fold_model_removes_every_bn_and_keeps_the_eval_outputs(bn2d):
    torch.manual_seed(0)
    model = models.small_convnet((4, 6, 5))
    for i, m in enumerate(model):
        if isinstance(m, nn.BatchNorm2d):
            model[i] = bn2d(m.num_features)
    with torch.no_grad():
        for bn in models.bn_layers(model):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_(0, 0.3)
        model.train()(torch.randn(16, 1, 12, 12) * 2 + 0.5)
    model.eval()
    folded = models.fold_model(model)
    assert not models.bn_layers(folded) and len(folded) == len(model) - 3
    assert not folded.training
    x = torch.randn(5, 1, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-5)
    assert models.bn_layers(model)  # the original keeps its BN layers


def test_fold_nested_gives_the_eval_outputs_of_a_nested_net_with_fewer_bn_layers():
    from bn_utils.nn import tiny_inception

    torch.manual_seed(0)
    net = tiny_inception.TinyInception(width=4, bn=True).to(memory_format=torch.channels_last)
    for m in models.bn_layers(net):   # statistics and affine parameters far from the defaults
        m.running_mean.normal_()
        m.running_var.uniform_(0.5, 2.0)
        m.weight.data.uniform_(0.5, 1.5)
        m.bias.data.normal_()
    x = torch.randn(5, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    folded = models.fold_nested(net)
    with torch.no_grad():
        expected = net.eval()(x)
        got = folded(x)
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
    assert models.bn_layers(folded) == [] and len(models.bn_layers(net)) > 0
    assert net.stem[1].__class__.__name__ == "BatchNorm2d"   # the original is untouched


def test_mlp_puts_bn_before_or_after_the_nonlinearity_and_dropout_where_asked():
    kinds = lambda m: [type(x).__name__ for x in m]  # noqa: E731
    before = models.mlp([5, 4, 4, 3], norm="bn", placement="before")
    after = models.mlp([5, 4, 4, 3], norm="bn", placement="after")
    assert kinds(before)[:3] == ["Linear", "BatchNorm1d", "Sigmoid"] and before[0].bias is None
    assert kinds(after)[:3] == ["Linear", "Sigmoid", "BatchNorm1d"] and after[0].bias is not None
    drop = models.mlp([5, 4, 4, 3], activation_name="relu", norm="bn", dropout=0.5, dropout_place="before_bn")
    assert kinds(drop)[:4] == ["Linear", "Dropout", "BatchNorm1d", "ReLU"] and drop[0].bias is None
    every = models.mlp([5, 4, 4, 3], norm="bn", dropout=0.5, dropout_place="after_bn")
    assert kinds(every).count("Dropout") == 2 and kinds(every)[3] == "Dropout"
    last = models.mlp([5, 4, 4, 3], norm="bn", dropout=0.5, dropout_place="last_only")
    assert kinds(last).count("Dropout") == 1 and kinds(last)[-2] == "Dropout"
    assert "Dropout" not in kinds(models.mlp([5, 4, 3], dropout_place="after_bn"))   # rate 0: none
    for bad in ({"placement": "middle"}, {"dropout_place": "everywhere"}, {"dropout": 1.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            models.mlp([5, 4, 3], **bad)


def test_init_scale_scales_the_hidden_weights_and_bn_undoes_it():
    """The same draw times ``init_scale`` on the hidden layers (the output layer keeps torch's
    default); BN after each hidden Linear makes the training-mode output scale-invariant."""
    torch.manual_seed(0)
    a = models.mlp([6, 5, 5, 3], activation_name="relu", norm="bn")
    torch.manual_seed(0)
    b = models.mlp([6, 5, 5, 3], activation_name="relu", norm="bn", init_scale=10.0)
    linears = lambda m: [x for x in m if isinstance(x, nn.Linear)]  # noqa: E731
    for (la, lb), scale in zip(zip(linears(a), linears(b)), (10.0, 10.0, 1.0)):
        torch.testing.assert_close(lb.weight, scale * la.weight)
    x = torch.randn(8, 6)
    torch.testing.assert_close(a(x), b(x), rtol=1e-4, atol=1e-4)

"""``bn_utils.nn.stacked_mlp.StackedMLP``: S networks as one equal S ordinary ``models.mlp`` ones
(BN in training and eval mode, conversion both ways), its per-model loss and accuracy, and
``StackedSGD``: S runs of torch's SGD, each with its own learning rate and weight decay."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bn_utils.nn import models
from bn_utils.nn.stacked_mlp import StackedMLP, StackedSGD, per_model_loss
from conftest import assert_stack_equals_nets_in_eval_mode, max_state_error, small_nets


def test_stacked_batch_norm_equals_torch_batchnorm1d_in_training_mode():
    specs = [("sigmoid", True, 0), ("relu", True, 1), ("tanh", True, 2)]
    nets = small_nets(specs)
    stack = StackedMLP.from_models(nets)
    x = torch.randn(3, 9, 20)
    _, pre = stack.preactivations(x)
    for i, net in enumerate(nets):
        bn_out = net[1](net[0](x[i]))       # the first BN of the ordinary net, training mode
        torch.testing.assert_close(pre[0][i].t(), bn_out, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(stack.running_mean0[i], net[1].running_mean)
        torch.testing.assert_close(stack.running_var0[i], net[1].running_var)


def test_from_models_and_to_models_round_trip():
    nets = small_nets([("relu", True, 5), ("sigmoid", False, 6)])
    for net in nets:   # non-trivial BN state
        for m in net:
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2)
                m.weight.data.normal_()
    back = StackedMLP.from_models(nets).to_models()
    for a, b in zip(nets, back):
        assert max_state_error(a, b) == 0.0


def test_eval_mode_on_shared_inputs_equals_each_ordinary_net():
    nets = small_nets([("sigmoid", False, 0), ("relu", True, 1), ("tanh", True, 2)])
    for net in nets:   # non-trivial running statistics
        for m in net:
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2)
    assert_stack_equals_nets_in_eval_mode(StackedMLP.from_models(nets), nets, torch.randn(13, 20))


def test_per_model_loss_matches_torch_per_model():
    logits, y = torch.randn(3, 10, 8), torch.randint(0, 10, (8,))
    loss = per_model_loss(logits, y)
    for i in range(3):
        torch.testing.assert_close(loss[i], F.cross_entropy(logits[i].t(), y))
    y_per_model = torch.randint(0, 10, (3, 8))
    torch.testing.assert_close(per_model_loss(logits, y_per_model)[1],
                               F.cross_entropy(logits[1].t(), y_per_model[1]))


def test_bad_widths_activations_and_mixed_widths_are_refused():
    with pytest.raises(ValueError, match="unknown activation"):
        StackedMLP((4, 3, 2), ["swish"], [True])
    with pytest.raises(ValueError, match="three or more positive integers"):
        StackedMLP((4, 2), ["relu"], [True])
    a = models.mlp((20, 16, 12, 10), activation_name="relu", norm="bn")
    b = models.mlp((20, 8, 12, 10), activation_name="relu", norm="bn")
    with pytest.raises(ValueError, match="same widths"):
        StackedMLP.from_models([a, b])
    assert np.isfinite(StackedMLP.from_models([a]).weight[0].detach().numpy()).all()


def test_hand_written_backward_equals_autograd_of_each_ordinary_net_in_float64():
    """Mixed nonlinearities and BN flags: every gradient (weights, biases, gamma, beta) and the
    running statistics equal those of the ordinary nets, to float64 round-off."""
    specs = [("sigmoid", False, 0), ("sigmoid", True, 1), ("relu", True, 2), ("tanh", False, 3),
             ("linear", True, 4)]
    nets = [n.double() for n in small_nets(specs)]
    stack = StackedMLP.from_models(nets).double()
    x, y = torch.randn(len(nets), 9, 20, dtype=torch.double), torch.randint(0, 10, (len(nets), 9))
    per_model_loss(stack(x), y).sum().backward()
    for i, net in enumerate(nets):
        F.cross_entropy(net(x[i]), y[i]).backward()
        for layer, lin in enumerate(m for m in net if isinstance(m, nn.Linear)):
            torch.testing.assert_close(stack.weight[layer].grad[i], lin.weight.grad, rtol=0, atol=1e-13)
            if lin.bias is not None:
                torch.testing.assert_close(stack.bias[layer].grad[i, :, 0], lin.bias.grad, rtol=0, atol=1e-13)
        for layer, bn in enumerate(m for m in net if isinstance(m, nn.BatchNorm1d)):
            torch.testing.assert_close(stack.gamma[layer].grad[i, :, 0], bn.weight.grad, rtol=0, atol=1e-13)
            torch.testing.assert_close(stack.beta[layer].grad[i, :, 0], bn.bias.grad, rtol=0, atol=1e-13)
            torch.testing.assert_close(getattr(stack, f"running_var{layer}")[i], bn.running_var,
                                       rtol=0, atol=1e-13)


def test_stacked_sgd_equals_torch_sgd_per_model_with_its_own_rate_weight_decay_and_momentum():
    specs = [("relu", True, 0), ("sigmoid", True, 1), ("tanh", True, 2)]
    lrs, wds = (0.1, 0.03, 0.2), (1e-3, 0.0, 5e-3)
    nets = [n.double() for n in small_nets(specs)]
    stack = StackedMLP.from_models(nets).double()
    opt = StackedSGD(stack.parameters(), len(nets), lr=0.5, momentum=0.9, weight_decay=wds,
                     model_lr=[lr / 0.5 for lr in lrs])
    own = [torch.optim.SGD(n.parameters(), lr=lr, momentum=0.9, weight_decay=wd)
           for n, lr, wd in zip(nets, lrs, wds)]
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        x = torch.randn(len(nets), 9, 20, generator=gen, dtype=torch.double)
        y = torch.randint(0, 10, (len(nets), 9), generator=gen)
        opt.zero_grad()
        per_model_loss(stack(x), y).sum().backward()
        opt.step()
        for i, (net, o) in enumerate(zip(nets, own)):
            o.zero_grad()
            F.cross_entropy(net(x[i]), y[i]).backward()
            o.step()
    for i, net in enumerate(nets):
        linears = [m for m in net if isinstance(m, nn.Linear)]
        bns = [m for m in net if isinstance(m, nn.BatchNorm1d)]
        pairs = [(stack.weight[k][i], lin.weight) for k, lin in enumerate(linears)]
        pairs += [(stack.bias[-1][i, :, 0], linears[-1].bias)]
        pairs += [(stack.gamma[k][i, :, 0], bn.weight) for k, bn in enumerate(bns)]
        pairs += [(stack.beta[k][i, :, 0], bn.bias) for k, bn in enumerate(bns)]
        for got, want in pairs:
            torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    opt.stop_model(1)
    assert opt.model_lr == [lrs[0] / 0.5, 0.0, lrs[2] / 0.5]
    with pytest.raises(ValueError, match="one learning rate per model"):
        opt.model_lr = [1.0, 2.0]


@pytest.mark.parametrize("norm", ["bn_scratch", "noisy_bn"])
def test_from_models_refuses_a_norm_it_would_stack_as_something_else(norm):
    # the package's own BN is not torch's class, noisy BN is torch's class plus noise: stacked as
    # torch's BN (or as no BN) they would train as another network, silently
    torch.manual_seed(0)
    nets = [models.mlp((4, 8, 8, 3), activation_name="relu", norm=norm) for _ in range(2)]
    with pytest.raises(ValueError, match="torch.nn.BatchNorm1d"):
        StackedMLP.from_models(nets)

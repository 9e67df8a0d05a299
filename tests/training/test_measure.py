"""Gradient-based measurements: ICS (Santurkar et al.'s Definition 2.1), the landscape along the
gradient, and training-mode activation statistics."""

import numpy as np
import pytest
import torch
from torch import nn

from bn_utils.training import measure
from bn_utils.nn import models


def _linear_net(seed: int = 0) -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 5, bias=False), nn.Linear(5, 3, bias=False),
                        nn.Linear(3, 2, bias=False)).double()
    x = torch.randn(6, 4, dtype=torch.float64)
    t = torch.randn(6, 2, dtype=torch.float64)
    return net, x, t


def _hand_ics(w1, w2, w3, x, t, lr):
    """G and G' of layers 2 and 3 of f = W3 W2 W1 x with L = ½||f - t||², by the chain rule."""
    X = x.T                                                     # features × examples

    def grads(a, b, c):
        r = c @ b @ a @ X - t.T                                  # residual
        return ((c @ b).T @ r @ X.T, c.T @ r @ (a @ X).T, r @ (b @ a @ X).T)

    g1, g2, g3 = grads(w1, w2, w3)
    w1_new, w2_new = w1 - lr * g1, w2 - lr * g2
    g2_after = grads(w1_new, w2, w3)[1]                         # layer 2 sees the new layer 1
    g3_after = grads(w1_new, w2_new, w3)[2]                     # layer 3 sees new layers 1 and 2
    return (g2, g2_after), (g3, g3_after)


def test_ics_matches_a_hand_computation_on_a_three_layer_net():
    net, x, t = _linear_net()
    lr = 0.05
    rows = measure.gradient_ics(net, lambda m: 0.5 * (m(x) - t).pow(2).sum(),
                                [layer.weight for layer in net], lr)
    w1, w2, w3 = (layer.weight.detach().numpy() for layer in net)
    expected = _hand_ics(w1, w2, w3, x.numpy(), t.numpy(), lr)
    # layer 1 has no earlier layer: no shift
    assert rows[0]["l2"] == 0.0 and rows[0]["cos"] == pytest.approx(1.0)
    for row, (g, g_after) in zip(rows[1:], expected):
        diff = np.linalg.norm(g - g_after)
        cos = (g * g_after).sum() / (np.linalg.norm(g) * np.linalg.norm(g_after))
        assert diff > 1e-3                                       # the check is not vacuous
        assert row["l2"] == pytest.approx(diff, rel=1e-10)
        assert row["cos"] == pytest.approx(cos, rel=1e-10)
        assert row["norm"] == pytest.approx(np.linalg.norm(g), rel=1e-10)


def test_ics_leaves_the_model_untouched_and_vanishes_with_the_learning_rate():
    net, x, t = _linear_net(1)
    before = [p.detach().clone() for p in net.parameters()]
    loss_of = lambda m: 0.5 * (m(x) - t).pow(2).sum()  # noqa: E731
    small = measure.gradient_ics(net, loss_of, [net[2].weight], 1e-9)[0]
    assert small["l2"] / small["norm"] < 1e-7 and small["cos"] == pytest.approx(1.0)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert all(p.grad is None for p in net.parameters())
    with pytest.raises(ValueError, match="not parameters"):
        measure.gradient_ics(net, loss_of, [nn.Parameter(torch.ones(2))], 0.1)


class _Quadratic(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w.clone())


def _quadratic(eigenvalues, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(eigenvalues), len(eigenvalues), generator=gen, dtype=torch.float64))
    h = q @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ q.T
    return h, q


def test_smoothness_of_a_quadratic_is_its_largest_eigenvalue():
    lams = [5.0, 3.0, 2.0, 1.0, 0.5, 0.1]
    h, q = _quadratic(lams)
    loss_of = lambda m: 0.5 * m.w @ h @ m.w  # noqa: E731
    steps = np.geomspace(1e-3, 0.3, 6)
    # from the top eigenvector the gradient direction stays there: lambda = lambda_max exactly
    out = measure.gradient_landscape(_Quadratic(q[:, 0]), loss_of, steps)
    assert out["smoothness"] == pytest.approx(max(lams), rel=1e-9)
    assert out["losses"] == pytest.approx([0.5 * 5 * (1 - 5 * s) ** 2 for s in steps], rel=1e-9)
    assert out["grad_norm"] == pytest.approx(5.0, rel=1e-9)
    # from anywhere, lambda_min <= smoothness <= lambda_max, and the gradient change is linear in eta
    w = torch.randn(6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = measure.gradient_landscape(_Quadratic(w), loss_of, steps)
    assert min(lams) <= out["smoothness"] <= max(lams) + 1e-9
    ratios = np.array(out["grad_diffs"]) / steps
    assert np.allclose(ratios, ratios[0], rtol=1e-9)


def test_smoothness_of_an_isotropic_quadratic_from_a_random_point():
    h = 2.5 * torch.eye(4, dtype=torch.float64)
    w = torch.randn(4, dtype=torch.float64)
    out = measure.gradient_landscape(_Quadratic(w), lambda m: 0.5 * m.w @ h @ m.w, [0.01, 0.1, 0.5])
    assert out["smoothness"] == pytest.approx(2.5, rel=1e-12)


def test_landscape_leaves_the_model_untouched_and_rejects_bad_steps():
    model = _Quadratic(torch.ones(3, dtype=torch.float64))
    loss_of = lambda m: m.w.pow(4).sum()  # noqa: E731
    measure.gradient_landscape(model, loss_of, [0.1, 1.0])
    assert torch.equal(model.w.detach(), torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="positive"):
        measure.gradient_landscape(model, loss_of, [0.0, 1.0])


def test_stochastic_layers_see_the_same_noise_within_one_measurement():
    torch.manual_seed(0)
    net = models.vgg("vgg11", width=1 / 32, norm="noisy_bn")
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    loss_of = lambda m: nn.functional.cross_entropy(m(x), y)  # noqa: E731
    rows = measure.gradient_ics(net, loss_of, [models.weight_layers(net)[0].weight], 0.1, seed=3)
    assert rows[0]["l2"] == 0.0        # the first layer: same noise, same gradient
    a = measure.gradient_landscape(net, loss_of, [0.01], seed=3)
    b = measure.gradient_landscape(net, loss_of, [0.01], seed=3)
    assert a == b


def test_train_mode_activations_reports_batch_statistics_of_the_chosen_modules():
    torch.manual_seed(0)
    net = models.vgg("vgg11", width=1 / 16, norm="bn")
    bn = models.relu_inputs(net)[1]
    buffers = bn.running_mean.clone()
    stats = measure.train_mode_activations(net, [bn], torch.randn(16, 3, 32, 32), units=[2])[0]
    # BN in training mode with gamma=1, beta=0: every unit has mean 0 and variance 1 on the batch
    assert np.allclose(stats["mean"], 0, atol=1e-5) and np.allclose(stats["var"], 1, atol=1e-3)
    assert len(stats["percentiles"]) == 5 and stats["percentiles"] == sorted(stats["percentiles"])
    assert torch.equal(bn.running_mean, buffers) and net.training

"""benchmarks/stacked_convnets.py, the stacked conv nets that benchmarks/throughput_vs_torch.py
times: K networks trained as one equal K separate runs (weights, BN running statistics, outputs),
with a learning rate and weight decay per model (``stacked_mlp.StackedSGD``), under ``train.fit``
too."""

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from bn_utils.nn import models
from bn_utils.nn.tiny_inception import TinyInception
from bn_utils.nn.stacked_mlp import StackedSGD

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import stacked_convnets as stacked  # noqa: E402

K, N = 3, 6
LRS = (0.1, 0.03, 0.2)
WDS = (1e-3, 0.0, 5e-3)


def _tiny(seed, **kw):
    torch.manual_seed(seed)
    return TinyInception(width=4, **kw).double()


def _vgg(seed, norm="bn"):
    torch.manual_seed(seed)
    return models.vgg("vgg11", width=1 / 16, norm=norm).double()


def _batches(steps, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(K, N, 3, 32, 32, generator=gen, dtype=torch.float64),
             torch.randint(0, 10, (K, N), generator=gen)) for _ in range(steps)]


def _train_separately(nets, batches, momentum=0.9):
    for k, net in enumerate(nets):
        opt = torch.optim.SGD(net.parameters(), lr=LRS[k], momentum=momentum, weight_decay=WDS[k])
        for x, y in batches:
            loss = F.cross_entropy(net(x[k]), y[k])
            opt.zero_grad()
            loss.backward()
            opt.step()


def _train_stacked(net, batches, momentum=0.9, lr_factor=1.0):
    opt = StackedSGD(net.parameters(), K, lr=lr_factor, momentum=momentum,
                             weight_decay=WDS, model_lr=[lr / lr_factor for lr in LRS])
    for x, y in batches:
        loss = stacked.cross_entropy(net(stacked.stack_inputs(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def _assert_same(a, b, tol=1e-9):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.allclose(sa[name].double(), sb[name].double(), rtol=tol, atol=tol), name


@pytest.mark.parametrize("make, channels_last", [
    (lambda s: _tiny(s), True), (lambda s: _tiny(s, bn=False, act="sigmoid"), False),
    (lambda s: _tiny(s, final_bn=True, five="5x5"), False), (lambda s: _vgg(s), True)])
def test_a_stacked_run_equals_separate_runs_with_per_model_lr_and_weight_decay(make, channels_last):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    separate = [make(seed).to(memory_format=fmt) for seed in range(K)]
    net = stacked.stack(separate)
    expected = [make(seed).to(memory_format=fmt) for seed in range(K)]
    batches = _batches(3)
    _train_separately(expected, batches)
    _train_stacked(net, batches, lr_factor=0.5)
    trained = [make(10 + seed) for seed in range(K)]      # other weights, overwritten below
    stacked.unstack_into(net, trained)
    for got, want in zip(trained, expected):
        _assert_same(got, want)                            # weights and BN running statistics
    x = _batches(1, seed=7)[0][0]
    for mode in ("train", "eval"):
        getattr(net, mode)()
        out = stacked.split_outputs(net(stacked.stack_inputs(x)), K)
        for k, want in enumerate(expected):
            getattr(want, mode)()
            assert torch.allclose(out[k], want(x[k]), atol=1e-9), (mode, k)


def test_stacked_losses_are_each_models_own_mean_cross_entropy():
    nets = [_tiny(s) for s in range(K)]
    net = stacked.stack(nets)
    x, y = _batches(1)[0]
    losses = stacked.model_losses(net(stacked.stack_inputs(x)), y)
    want = torch.stack([F.cross_entropy(m(x[k]), y[k]) for k, m in enumerate(nets)])
    assert torch.allclose(losses.double(), want, atol=1e-6)


def test_the_learning_rate_schedule_multiplies_every_models_rate():
    nets = [_vgg(s, norm="none") for s in range(K)]
    net = stacked.stack(nets)
    opt = StackedSGD(net.parameters(), K, lr=0.5, model_lr=[1.0, 2.0, 0.0])
    before = [p.detach().clone() for p in net.parameters()]
    x, y = _batches(1)[0]
    stacked.cross_entropy(net(stacked.stack_inputs(x)), y).backward()
    opt.step()
    w0, w = before[0].chunk(K), next(net.parameters()).detach().chunk(K)
    g = next(net.parameters()).grad.chunk(K)
    for k, factor in enumerate((0.5, 1.0, 0.0)):
        assert torch.allclose(w[k], w0[k] - factor * g[k], atol=1e-12)
    with pytest.raises(ValueError, match="one learning rate per model"):
        opt.model_lr = [1.0, 2.0]


def test_models_of_different_shapes_or_unknown_layers_are_refused():
    with pytest.raises(ValueError, match="one architecture"):
        stacked.stack([_tiny(0), TinyInception(width=6)])
    with pytest.raises(TypeError, match="cannot stack"):
        stacked.stack([_vgg(0, norm="l2"), _vgg(1, norm="l2")])


def _fit(net, streams, opt, loss_fn, eval_x, k=None, lr=1.0):
    from bn_utils.training import train

    @torch.no_grad()
    def eval_fn(m):
        if k is None:
            return {"loss": F.cross_entropy(m(eval_x), torch.zeros(len(eval_x), dtype=torch.long))}
        out = stacked.split_outputs(stacked.SameInput(m, k)(eval_x), k)
        return {"loss": [F.cross_entropy(o, torch.zeros(len(eval_x), dtype=torch.long)) for o in out]}
    def lr_at(step):
        return lr * 0.5 ** (step // 3) if k is None else [r * 0.5 ** (step // 3) for r in lr]
    return train.fit(net, streams, steps=6, optimizer=opt, loss_fn=loss_fn, eval_fn=eval_fn,
                     eval_every=2, log_every=2, lr_at=lr_at, progress=False,
                     stop_model=None if k is None else opt.stop_model)


def test_train_fit_trains_a_stack_like_separate_runs_and_splits_its_history():
    """One model diverges (lr 1e6): it stops there, as its own run does; the others go on."""
    from bn_utils import data

    lrs = (0.1, 1e6, 0.05)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, 32, 32, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 10, (40,), generator=gen)
    eval_x = x[:8]
    separate = []
    for seed, lr in enumerate(lrs):
        net = _vgg(seed)
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
        hist = _fit(net, data.batches(x, y, 8, seed=seed), opt, F.cross_entropy, eval_x, lr=lr)
        separate.append((net, hist))
    net = stacked.stack([_vgg(seed) for seed in range(K)])
    opt = StackedSGD(net.parameters(), K, momentum=0.9)   # per-model schedules
    streams = stacked.StackedBatches([data.batches(x, y, 8, seed=s) for s in range(K)])
    hist = _fit(net, streams, opt, stacked.model_losses, eval_x, k=K, lr=lrs)
    split = stacked.split_history(hist, K)
    assert [h.diverged for h in split] == [h.diverged for _, h in separate] == [False, True, False]
    trained = [_vgg(10 + s) for s in range(K)]
    stacked.unstack_into(net, trained)
    for k, ((want_net, want), got) in enumerate(zip(separate, split)):
        assert (got.step, got.eval_step, got.diverged_at, got.steps_done) == \
               (want.step, want.eval_step, want.diverged_at, want.steps_done), k
        assert got.lr == pytest.approx(want.lr)
        assert torch.allclose(torch.tensor(got.loss), torch.tensor(want.loss), rtol=1e-5, equal_nan=True)
        assert torch.allclose(torch.tensor(got.evals["loss"]), torch.tensor(want.evals["loss"]), rtol=1e-6)
        if not want.diverged:
            _assert_same(trained[k], want_net, tol=1e-8)

"""Several conv nets of one shape trained as one: the stacked-models path that
``throughput_vs_torch.py`` measures against plain PyTorch (no chapter trains this way).

K models of the same architecture (seeds of a row, rows that share an architecture) become one
network whose every layer holds the K models side by side on the channel axis, model-major:

* ``Conv2d(c_in, c_out)`` → ``Conv2d(K·c_in, K·c_out, groups=K·groups)``: model k's filters see
  only model k's channels;
* ``BatchNorm1d/2d(c)`` → ``BatchNorm(K·c)``: statistics are per channel, so per model, exactly
  as in K separate layers (running statistics included);
* ``Linear(i, o)`` → :class:`StackedLinear` (K, o, i): one batched matmul;
* an Inception block concatenates its branches per model (:class:`StackedInceptionBlock`);
* ReLU, sigmoid, pooling, flatten and identity work on each channel alone and are kept.

Model k gets its own minibatch: the stacked input is ``(N, K·C, H, W)`` (:func:`stack_inputs`)
and the output ``(N, K·classes)``. The loss is the sum of the K models' losses
(:func:`cross_entropy`), whose gradient in model k's parameters is model k's own;
``bn_utils.nn.stacked_mlp.StackedSGD`` is momentum SGD with a learning rate and weight decay per
model. A stacked run equals K separate runs to float tolerance (``tests/test_benchmark_stacked_convnets.py``)
except for dropout, whose random masks are drawn differently. :func:`unstack_into` copies the
trained weights and running statistics back into the K separate models; :func:`split_history`
cuts the ``train.fit`` history of a stack into the K models' own.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from bn_utils.nn.tiny_inception import InceptionBlock, TinyInception
from bn_utils.training.train import History

# Modules that act on each channel (or each element) alone: kept as they are.
CHANNELWISE = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.Identity, nn.MaxPool2d, nn.AvgPool2d,
               nn.Flatten, nn.Dropout)


class StackedLinear(nn.Module):
    """K linear layers ``in_features → out_features`` applied to (N, K·in) inputs as one batched
    matmul; ``weight`` is (K, out, in), ``bias`` (K, out)."""

    def __init__(self, k: int, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.k, self.in_features, self.out_features = k, in_features, out_features
        self.weight = nn.Parameter(torch.empty(k, out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(k, out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return (N, K·out): model k's layer applied to model k's slice of ``x`` (N, K·in)."""
        xs = x.reshape(len(x), self.k, self.in_features).transpose(0, 1)       # (K, N, in)
        if self.bias is None:
            out = torch.bmm(xs, self.weight.transpose(1, 2))
        else:
            out = torch.baddbmm(self.bias.unsqueeze(1), xs, self.weight.transpose(1, 2))
        return out.transpose(0, 1).reshape(len(x), self.k * self.out_features)


class StackedInceptionBlock(nn.Module):
    """An Inception block of K models: the stacked branches, concatenated per model (model k's
    channels stay together, as the next grouped convolution needs)."""

    def __init__(self, block: InceptionBlock, k: int):
        super().__init__()
        self.k = k
        self.branch1, self.branch3 = block.branch1, block.branch3
        self.branch5, self.branch_pool = block.branch5, block.branch_pool
        self.out_channels = block.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return (N, K·out_channels, H, W): per model, its four branches on channels."""
        outs = [self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)]
        n, _, h, w = outs[0].shape
        if outs[0].is_contiguous(memory_format=torch.channels_last):
            # (N, H, W, K, c) views: concatenating on the last axis keeps channels_last, no copy
            parts = [o.permute(0, 2, 3, 1).unflatten(3, (self.k, -1)) for o in outs]
            return torch.cat(parts, 4).flatten(3).permute(0, 3, 1, 2)
        return torch.cat([o.unflatten(1, (self.k, -1)) for o in outs], 2).flatten(1, 2)


def _cat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.detach() for t in tensors], 0)


def _stack_module(mods: list[nn.Module]) -> nn.Module:
    """Return the stacked version of K same-shaped modules (recursing into containers)."""
    first, k = mods[0], len(mods)
    if isinstance(first, nn.Conv2d):
        c = first
        out = nn.Conv2d(k * c.in_channels, k * c.out_channels, c.kernel_size, c.stride, c.padding,
                        c.dilation, k * c.groups, c.bias is not None, c.padding_mode)
        with torch.no_grad():
            out.weight.copy_(_cat([m.weight for m in mods]))
            if c.bias is not None:
                out.bias.copy_(_cat([m.bias for m in mods]))
        return out.to(c.weight)
    if isinstance(first, (nn.BatchNorm1d, nn.BatchNorm2d)) and type(first).__module__.startswith("torch"):
        b = first
        out = type(b)(k * b.num_features, b.eps, b.momentum, b.affine, b.track_running_stats)
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                if getattr(b, name) is not None:
                    getattr(out, name).copy_(_cat([getattr(m, name) for m in mods]))
            if b.track_running_stats:
                out.num_batches_tracked.copy_(b.num_batches_tracked)
        return out.to(next(iter(b.state_dict().values())))  # device and dtype of the original
    if isinstance(first, nn.Linear):
        out = StackedLinear(k, first.in_features, first.out_features, first.bias is not None)
        with torch.no_grad():
            out.weight.copy_(torch.stack([m.weight.detach() for m in mods]))
            if first.bias is not None:
                out.bias.copy_(torch.stack([m.bias.detach() for m in mods]))
        return out.to(first.weight)
    if isinstance(first, CHANNELWISE):
        return copy.deepcopy(first)
    if isinstance(first, InceptionBlock):
        return StackedInceptionBlock(_stack_children(mods), k)
    if isinstance(first, (nn.Sequential, TinyInception)):
        return _stack_children(mods)
    raise TypeError(f"cannot stack {type(first).__name__}: only convolutions, torch's BatchNorm, "
                    f"linear layers, channel-wise layers, Inception blocks and their containers")


def _stack_children(mods: list[nn.Module]) -> nn.Module:
    """Return a shallow copy of the first module whose children are the stacked children."""
    out = copy.copy(mods[0])
    out._modules = {name: _stack_module([m._modules[name] for m in mods])
                    for name in mods[0]._modules}
    out._parameters, out._buffers = {}, {}
    if any(p is not None for p in mods[0]._parameters.values()) or mods[0]._buffers:
        raise TypeError(f"cannot stack {type(mods[0]).__name__}: it holds its own parameters")
    return out


def stack(models: Sequence[nn.Module]) -> nn.Module:
    """Return one network that trains ``models`` (same architecture) side by side: input
    (N, K·C, H, W) from :func:`stack_inputs`, output (N, K·classes), same memory format."""
    models = list(models)
    if not models:
        raise ValueError("stack() needs at least one model")
    shapes = [[(n, tuple(t.shape)) for n, t in m.state_dict().items()] for m in models]
    if any(s != shapes[0] for s in shapes):
        raise ValueError("stack() needs models of one architecture (same parameter shapes)")
    out = _stack_module(models)
    first = next(models[0].parameters())
    if first.ndim == 4 and first.is_contiguous(memory_format=torch.channels_last):
        out = out.to(memory_format=torch.channels_last)
    out.train(models[0].training)
    return out


def unstack_into(stacked: nn.Module, models: Sequence[nn.Module]) -> None:
    """Copy the stacked network's parameters and buffers back into the K separate ``models``."""
    k = len(models)
    state = stacked.state_dict()
    for i, model in enumerate(models):
        own = model.state_dict()
        model.load_state_dict({name: (state[name] if t.ndim == 0 else
                                      state[name].chunk(k, 0)[i].reshape(t.shape))
                               for name, t in own.items()})


def stack_inputs(xs: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """Return K minibatches (each (N, C, H, W) or (N, D)) as one (N, K·C, H, W) or (N, K·D)
    input, channels_last when the first one is."""
    xs = list(xs)
    out = torch.cat(xs, 1) if xs[0].ndim == 2 else torch.stack(xs, 1).flatten(1, 2)
    if xs[0].ndim == 4 and xs[0].is_contiguous(memory_format=torch.channels_last):
        out = out.contiguous(memory_format=torch.channels_last)
    return out


class StackedBatches:
    """K minibatch streams as one: ``next`` returns ``(stack_inputs(xs), labels (K, N))``, model
    k's from stream k (e.g. ``data.batches`` with model k's seed, augmented); ``skip(n)`` skips
    every stream (so ``train.fit`` resumes a checkpointed stacked run)."""

    def __init__(self, streams: Sequence):
        self.streams = list(streams)

    def __iter__(self) -> "StackedBatches":
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = zip(*(next(s) for s in self.streams))
        return stack_inputs(xs), torch.stack(ys)

    def skip(self, n: int) -> None:
        """Skip ``n`` minibatches of every stream."""
        for s in self.streams:
            if hasattr(s, "skip"):
                s.skip(n)
            else:
                for _ in range(n):
                    next(s)


class SameInput(nn.Module):
    """A stacked network fed one input for all of its K models (evaluation on a shared test
    set): ``forward(x)`` with x (N, C, H, W) returns (N, K·classes)."""

    def __init__(self, net: nn.Module, k: int):
        super().__init__()
        self.net, self.k = net, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the K models' outputs on ``x``, side by side."""
        return self.net(stack_inputs([x] * self.k))


def model_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Return the K models' mean cross-entropies (K,), from logits (N, K·classes) and targets
    (K, N) (model k's labels in row k)."""
    k = len(targets)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # bf16 logits: float32 loss
    per_example = F.cross_entropy(logits.reshape(len(logits), k, -1).transpose(1, 2),
                                  targets.T, reduction="none")            # (N, K)
    return per_example.mean(0)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Return the sum of the K models' mean cross-entropies: its gradient in model k's
    parameters is model k's own loss gradient."""
    return model_losses(logits, targets).sum()


def split_outputs(out: torch.Tensor, k: int) -> torch.Tensor:
    """Return a stacked network's output (N, K·classes) as (K, N, classes)."""
    return out.reshape(len(out), k, -1).transpose(0, 1)


def split_history(hist: History, k: int) -> list[History]:
    """Return the K histories of a stacked run (losses and metrics are lists of K values), each
    cut where its model diverged, as that model's own run would have stopped; each gets its
    share (1/K) of the wall time."""
    out = []
    for i in range(k):
        at = hist.diverged_at[i] if isinstance(hist.diverged_at, list) else None
        logs = [j for j, s in enumerate(hist.step) if at is None or s <= at]
        evals = [j for j, s in enumerate(hist.eval_step) if at is None or s < at]
        out.append(History(
            step=[hist.step[j] for j in logs], loss=[hist.loss[j][i] for j in logs],
            eval_step=[hist.eval_step[j] for j in evals],
            evals={name: [v[j][i] for j in evals] for name, v in hist.evals.items()},
            lr=[hist.lr[j][i] if isinstance(hist.lr[j], list) else hist.lr[j] for j in logs],
            diverged=at is not None, diverged_at=at,
            start_loss=(hist.start_loss[i] if isinstance(hist.start_loss, list)
                        else hist.start_loss),
            steps_done=at if at is not None else hist.steps_done, seconds=hist.seconds / k))
    return out

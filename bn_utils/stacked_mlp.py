"""``StackedMLP``: ``S`` independent MLPs that train as one.

Model ``s`` has its own weights (``weight[l][s]``, shaped like ``nn.Linear.weight``), its own BN
over its own minibatch and its own learning rate (given by whoever trains it), so the stack is
exactly ``S`` independent runs (``tests/test_stacked_mlp.py`` checks it against ``S`` ordinary
``torch.nn`` models), but each layer is one batched matrix product (``torch.bmm``) for all of
them, and a test set is evaluated for all of them with one matrix product per layer.
"""

from __future__ import annotations

import itertools
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import models

ACT_FNS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}


def _activation_name(module: nn.Module) -> str | None:
    """Return the name of an activation module (``sigmoid``, ``tanh``, ``relu``), else None."""
    for name in ACT_FNS:
        if isinstance(module, models.ACTIVATIONS[name]):
            return name
    return None


class StackedMLP(nn.Module):
    """``S`` independent MLPs that train as one. Layer ``l`` of model ``s`` is ``weight[l][s]``
    (fan_out × fan_in, like ``nn.Linear.weight``) with bias ``bias[l][s]``; if ``normed[s]``, BN
    with ``gamma[l][s]``, ``beta[l][s]`` and running statistics comes before the nonlinearity (the
    hidden-layer biases are then unused: BN's beta does their job). Model ``s`` applies
    ``activations[s]``.

    Activations are laid out features × batch, ``(S, C, B)``: every layer is then one ``bmm`` on
    contiguous blocks, and BN of all models is one call of torch's kernel (see ``_batch_norm``).
    ``forward(x)`` takes ``x`` of shape ``(S, B, fan_in)`` (model ``s`` sees ``x[s]``) or, to
    evaluate every model on the same data, ``(N, fan_in)``, and returns logits ``(S, classes, B)``.
    """

    def __init__(self, widths: Sequence[int], activations: Sequence[str], normed: Sequence[bool],
                 *, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        if len(widths) < 3 or any(not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"widths={widths!r} must be three or more positive integers")
        if len(activations) != len(normed) or not activations:
            raise ValueError(f"need one activation and one normed flag per model, got "
                             f"{len(activations)} and {len(normed)}")
        for a in activations:
            if a not in ACT_FNS:
                raise ValueError(f"unknown activation {a!r}; choose one of {', '.join(ACT_FNS)}")
        n = len(activations)
        self.widths, self.activations = tuple(widths), tuple(activations)
        self.momentum, self.eps = momentum, eps
        pairs = list(zip(widths[:-1], widths[1:]))
        self.weight = nn.ParameterList([nn.Parameter(torch.zeros(n, o, i)) for i, o in pairs])
        self.bias = nn.ParameterList([nn.Parameter(torch.zeros(n, o, 1)) for _, o in pairs])
        self.gamma = nn.ParameterList([nn.Parameter(torch.ones(n, c, 1)) for c in widths[1:-1]])
        self.beta = nn.ParameterList([nn.Parameter(torch.zeros(n, c, 1)) for c in widths[1:-1]])
        for layer, c in enumerate(widths[1:-1]):
            self.register_buffer(f"running_mean{layer}", torch.zeros(n, c))
            self.register_buffer(f"running_var{layer}", torch.ones(n, c))
        self.register_buffer("normed", torch.tensor([bool(b) for b in normed]).view(n, 1, 1))
        self.n_normed = sum(bool(b) for b in normed)
        # runs of consecutive models with the same nonlinearity: one call per run
        self.segments, start = [], 0
        for name, run in itertools.groupby(activations):
            size = len(list(run))
            self.segments.append((name, start, start + size))
            start += size

    @property
    def n_models(self) -> int:
        """Return the number of models in the stack."""
        return len(self.activations)

    def _linear(self, h: torch.Tensor, layer: int) -> torch.Tensor:
        """Return ``weight[layer] @ h`` per model, ``(S, fan_out, B)``, without the bias; ``h``
        is ``(S, fan_in, B)``, or the input ``(S, B, fan_in)`` or ``(N, fan_in)``."""
        w = self.weight[layer]
        if layer > 0:
            return torch.bmm(w, h)
        if h.dim() == 2:  # the same inputs for every model: one matrix product for all of them
            n_models, fan_out, fan_in = w.shape
            return (w.reshape(n_models * fan_out, fan_in) @ h.t()).view(n_models, fan_out, -1)
        return torch.bmm(w, h.transpose(1, 2))

    def _batch_norm(self, h: torch.Tensor, layer: int) -> torch.Tensor:
        """Return BN of each model's features over that model's own batch, ``(S, C, B)``.

        S BNs of C features each are one BN of S·C channels: ``h`` viewed as ``(1, S·C, B)`` is
        what ``F.batch_norm`` normalises per channel over its last axis. So torch's own kernel
        does the work, running statistics included (PyTorch's convention: unbiased variance,
        ``running = (1 - momentum) * running + momentum * batch``)."""
        n_models, width, batch = h.shape
        out = F.batch_norm(h.reshape(1, n_models * width, batch),
                           getattr(self, f"running_mean{layer}").view(-1),
                           getattr(self, f"running_var{layer}").view(-1),
                           self.gamma[layer].view(-1), self.beta[layer].view(-1),
                           self.training, self.momentum, self.eps)
        return out.view(n_models, width, batch)

    def _normalise(self, h: torch.Tensor, layer: int) -> torch.Tensor:
        """Return the input to the nonlinearity: BN of ``h`` for the normed models, ``h`` plus the
        bias for the others."""
        if not self.training:
            # With running statistics BN is a fixed affine map per feature, and so is adding a
            # bias: one fused multiply-add does every model (evaluation runs on big batches).
            var = getattr(self, f"running_var{layer}").unsqueeze(-1)
            mean = getattr(self, f"running_mean{layer}").unsqueeze(-1)
            scale = torch.where(self.normed, self.gamma[layer] * torch.rsqrt(var + self.eps), 1.0)
            shift = torch.where(self.normed, self.beta[layer] - mean * scale, self.bias[layer])
            return torch.addcmul(shift, h, scale)
        if self.n_normed == 0:
            return h + self.bias[layer]
        normed = self._batch_norm(h, layer)
        if self.n_normed == self.n_models:
            return normed
        return torch.where(self.normed, normed, h + self.bias[layer])

    def _activate(self, h: torch.Tensor) -> torch.Tensor:
        """Return each model's nonlinearity applied to its slice of ``h``."""
        if len(self.segments) == 1:
            return ACT_FNS[self.segments[0][0]](h)
        return torch.cat([ACT_FNS[name](h[a:b]) for name, a, b in self.segments])

    def preactivations(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return the logits ``(S, classes, B)`` and, per hidden layer, the inputs to its
        nonlinearity ``(S, C, B)``."""
        h, pre = x, []
        for layer in range(len(self.weight) - 1):
            h = self._normalise(self._linear(h, layer), layer)
            pre.append(h)
            h = self._activate(h)
        return self._linear(h, len(self.weight) - 1) + self.bias[-1], pre

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the logits ``(S, classes, B)``."""
        return self.preactivations(x)[0]

    @classmethod
    def from_models(cls, nets: Sequence[nn.Sequential]) -> "StackedMLP":
        """Return a stack holding copies of ``nets`` (built by ``models.mlp``, with or without
        ``nn.BatchNorm1d``): the stack then computes what each of them computes."""
        specs = [_spec(net) for net in nets]
        widths = specs[0]["widths"]
        if any(s["widths"] != widths for s in specs):
            raise ValueError("all nets of a stack must have the same widths")
        bns = [s["bns"] for s in specs if s["bns"]]
        momentum, eps = (bns[0][0].momentum, bns[0][0].eps) if bns else (0.1, 1e-5)
        stack = cls(widths, [s["activation"] for s in specs], [bool(s["bns"]) for s in specs],
                    momentum=momentum, eps=eps)
        with torch.no_grad():
            for i, s in enumerate(specs):
                for layer, lin in enumerate(s["linears"]):
                    stack.weight[layer][i].copy_(lin.weight)
                    if lin.bias is not None:
                        stack.bias[layer][i, :, 0].copy_(lin.bias)
                for layer, bn in enumerate(s["bns"]):
                    if (bn.momentum, bn.eps) != (momentum, eps):
                        raise ValueError("all BN layers of a stack must share momentum and eps")
                    stack.gamma[layer][i, :, 0].copy_(bn.weight)
                    stack.beta[layer][i, :, 0].copy_(bn.bias)
                    getattr(stack, f"running_mean{layer}")[i].copy_(bn.running_mean)
                    getattr(stack, f"running_var{layer}")[i].copy_(bn.running_var)
        return stack.to(next(nets[0].parameters()).device)

    def to_models(self) -> list[nn.Sequential]:
        """Return the models of the stack as ordinary ``models.mlp`` networks (copies)."""
        nets = []
        with torch.no_grad():
            for i, (act, normed) in enumerate(zip(self.activations, self.normed.view(-1).tolist())):
                net = models.mlp(self.widths, activation_name=act, norm="bn" if normed else "none")
                spec = _spec(net)
                for layer, lin in enumerate(spec["linears"]):
                    lin.weight.copy_(self.weight[layer][i])
                    if lin.bias is not None:
                        lin.bias.copy_(self.bias[layer][i, :, 0])
                for layer, bn in enumerate(spec["bns"]):
                    bn.momentum, bn.eps = self.momentum, self.eps
                    bn.weight.copy_(self.gamma[layer][i, :, 0])
                    bn.bias.copy_(self.beta[layer][i, :, 0])
                    bn.running_mean.copy_(getattr(self, f"running_mean{layer}")[i])
                    bn.running_var.copy_(getattr(self, f"running_var{layer}")[i])
                nets.append(net.to(self.weight[0].device))
        return nets


def _spec(net: nn.Sequential) -> dict:
    """Return the widths, activation, Linear layers and BN layers of a ``models.mlp`` network."""
    linears = [m for m in net if isinstance(m, nn.Linear)]
    bns = [m for m in net if isinstance(m, nn.BatchNorm1d)]
    acts = {_activation_name(m) for m in net} - {None}
    if len(acts) != 1 or not linears or (bns and len(bns) != len(linears) - 1):
        raise ValueError("expected a models.mlp network: Linear (→ BatchNorm1d) → activation "
                         "per hidden layer, one activation type, a Linear output layer")
    widths = (linears[0].in_features, *(lin.out_features for lin in linears))
    return {"widths": widths, "activation": acts.pop(), "linears": linears, "bns": bns}


def per_model_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return each model's mean cross-entropy ``(S,)`` from logits ``(S, classes, B)`` and labels
    ``(S, B)`` (or ``(B,)``, the same labels for every model)."""
    return F.cross_entropy(logits, y.expand(logits.shape[0], -1), reduction="none").mean(1)


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return each model's accuracy ``(S,)`` from logits ``(S, classes, B)`` and labels."""
    return (logits.argmax(1) == y).float().mean(1)

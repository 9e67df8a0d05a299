"""``StackedMLP``: ``S`` independent MLPs that train as one.

Model ``s`` has its own weights (``weight[l][s]``, shaped like ``nn.Linear.weight``), its own BN
over its own minibatch and its own learning rate (given by whoever trains it), so the stack is
exactly ``S`` independent runs (``tests/nn/test_stacked_mlp.py`` checks it against ``S`` ordinary
``torch.nn`` models), but each layer is one batched matrix product (``torch.bmm``) for all of
them, and a test set is evaluated for all of them with one matrix product per layer.

In training mode the forward and backward passes are written out (:class:`_StackedTraining`):
per layer one ``bmm`` forward and two backward, BN by :mod:`bn_utils.nn.norms` (its batch
statistics and closed-form backward, so the BN maths lives in one place), and autograd sees one
node instead of some forty. Measured against the same stack built from torch's autograd and
``F.batch_norm`` it is as fast, not faster: about 55 % of a training step is the ``bmm`` calls,
which neither changes (``benchmarks/mnist_steps_per_second.py``).

:class:`StackedSGD` trains such a stack (or any network whose parameters hold K models along
their first axis): momentum SGD with a learning rate and weight decay per model, and a model
that diverged stopped alone.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import models, norms

# Per ``models.ACTIVATIONS`` name: the nonlinearity applied in place, and its backward from its
# output ``a`` (the kernels autograd itself uses: the same rounding as an ordinary network).
ACT_OPS = {
    "sigmoid": (torch.sigmoid_, torch.ops.aten.sigmoid_backward),
    "tanh": (torch.tanh_, torch.ops.aten.tanh_backward),
    "relu": (torch.relu_, lambda g, a: torch.ops.aten.threshold_backward(g, a, 0)),
    "linear": (lambda h: h, lambda g, a: g),
}


def _activation_name(module: nn.Module) -> str | None:
    """Return the name of an activation module (``models.ACTIVATIONS``), else None."""
    for name, cls in models.ACTIVATIONS.items():
        if isinstance(module, cls):
            return name
    return None


class StackedMLP(nn.Module):
    """``S`` independent MLPs that train as one. Layer ``l`` of model ``s`` is ``weight[l][s]``
    (fan_out × fan_in, like ``nn.Linear.weight``) with bias ``bias[l][s]``; if ``normed[s]``, BN
    with ``gamma[l][s]``, ``beta[l][s]`` and running statistics comes before the nonlinearity (the
    hidden-layer biases are then unused: BN's beta does their job). Model ``s`` applies
    ``activations[s]``.

    Activations are laid out features × batch, ``(S, C, B)``: every layer is then one ``bmm`` on
    contiguous blocks, and BN of every model is one pass over the stack (see ``_normalise``).
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
            models.activation(a)   # fails on an unknown name
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
        self.segments = _runs(activations)
        self.plain_runs = [(a, b) for flag, a, b in _runs([bool(f) for f in normed]) if not flag]

    @property
    def n_models(self) -> int:
        """Return the number of models in the stack."""
        return len(self.activations)

    def _row(self, t: torch.Tensor) -> torch.Tensor:
        """Return a per-feature parameter ``(S, C, 1)`` as the row ``(S, 1, C)`` (a view) that
        broadcasts against activations ``(S, B, C)``."""
        return t.transpose(1, 2)

    def _linear(self, h: torch.Tensor, layer: int) -> torch.Tensor:
        """Return ``h @ weight[layer].T`` per model, ``(S, B, fan_out)``, without the bias; ``h``
        is ``(S, B, fan_in)``, or ``(N, fan_in)``: the same inputs for every model."""
        w = self.weight[layer]
        if h.dim() == 2:
            return torch.matmul(h, w.transpose(1, 2))
        return torch.bmm(h, w.transpose(1, 2))

    def _normalise(self, z: torch.Tensor, layer: int) -> tuple[torch.Tensor, tuple | None]:
        """Return the input to the nonlinearity, ``(S, B, C)``: BN of ``z`` for the normed models
        (over each model's own batch in training, with the running statistics in eval), ``z``
        plus the bias for the others; and, in training, what the backward pass needs (BN's
        ``xhat`` and ``gamma / std``). ``z`` may be overwritten."""
        bias = self._row(self.bias[layer])
        if self.n_normed == 0:
            return z.add_(bias), None
        gamma, beta = self._row(self.gamma[layer]), self._row(self.beta[layer])
        mean, var = (getattr(self, f"running_{k}{layer}").unsqueeze(1) for k in ("mean", "var"))
        bn = None
        if not self.training:   # a fixed affine map per feature
            scale, shift = norms.affine_from_stats(mean, var, gamma, beta, self.eps)
            out = torch.addcmul(shift, z, scale)
        else:
            batch = z.shape[1]
            if batch < 2:
                raise ValueError(f"Expected more than 1 value per channel when training, got a "
                                 f"batch of {batch}")
            xhat, batch_mean, batch_var, inv_std = norms.batch_statistics(z, self.eps, dims=[1])
            # every model's statistics are updated; the plain models' are never read
            norms.update_running(mean, var, batch_mean, batch_var * (batch / (batch - 1)),
                                 self.momentum)
            out, bn = xhat * gamma + beta, (xhat, gamma * inv_std)
        for a, b in self.plain_runs:   # the models without BN: z plus their bias
            torch.add(z[a:b], bias[a:b], out=out[a:b])
        return out, bn

    def _activate_(self, h: torch.Tensor) -> torch.Tensor:
        """Return ``h`` with each model's nonlinearity applied to its slice, in place."""
        for name, a, b in self.segments:
            ACT_OPS[name][0](h[a:b] if len(self.segments) > 1 else h)
        return h

    def _run(self, x: torch.Tensor, keep_pre: bool = False):
        """Return the logits ``(S, B, classes)``, the inputs to the nonlinearities (copies, if
        ``keep_pre``) and, per hidden layer, what the backward pass needs: ``(input, BN's
        (xhat, scale), output)``."""
        h, pre, saved = x, [], []
        for layer in range(len(self.weight) - 1):
            u, bn = self._normalise(self._linear(h, layer), layer)
            if keep_pre:
                pre.append(u.clone())
            saved.append((h, bn, self._activate_(u)))
            h = u
        return self._linear(h, len(self.weight) - 1) + self._row(self.bias[-1]), pre, saved

    def _backward(self, saved: list, dlogits: torch.Tensor) -> list:
        """Return the gradients of every parameter (the order of :meth:`_parameters_in_order`;
        None where a parameter is unused) from the logits' gradient ``(S, B, classes)`` and
        :meth:`_run`'s record."""
        n_layers = len(self.weight)
        dw, db = [None] * n_layers, [None] * n_layers
        dgamma, dbeta = [None] * (n_layers - 1), [None] * (n_layers - 1)
        dw[-1] = torch.bmm(dlogits.transpose(1, 2), saved[-1][2])
        db[-1] = dlogits.sum(1, keepdim=True)
        grad = torch.bmm(dlogits, self.weight[-1])
        for layer in reversed(range(n_layers - 1)):
            h, bn, out = saved[layer]
            dz = du = self._activation_grad(grad, out)
            if bn is None:
                db[layer] = du.sum(1, keepdim=True)
            else:
                dz, dgamma[layer], dbeta[layer] = norms.batchnorm_grads(du, bn[0], bn[1], dims=[1])
                if self.plain_runs:
                    db[layer] = torch.zeros_like(dbeta[layer])
                for a, b in self.plain_runs:
                    dz[a:b] = du[a:b]
                    dgamma[layer][a:b] = dbeta[layer][a:b] = 0.0
                    db[layer][a:b] = du[a:b].sum(1, keepdim=True)
            if h.dim() == 2:   # the same inputs (N, fan_in) for every model
                dw[layer] = torch.matmul(dz.transpose(1, 2), h)
            else:
                dw[layer] = torch.bmm(dz.transpose(1, 2), h)
            if layer > 0:
                grad = torch.bmm(dz, self.weight[layer])
        return [*dw, *(None if g is None else self._row(g) for g in (*db, *dgamma, *dbeta))]

    def _activation_grad(self, grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Return ``grad`` times each model's nonlinearity's derivative, from its output."""
        if len(self.segments) == 1:
            return ACT_OPS[self.segments[0][0]][1](grad, out)
        du = torch.empty_like(grad)
        for name, a, b in self.segments:
            du[a:b] = ACT_OPS[name][1](grad[a:b], out[a:b])
        return du

    def _parameters_in_order(self) -> list[nn.Parameter]:
        """Return weights, biases, gammas, betas: the inputs of :class:`_StackedTraining`."""
        return [*self.weight, *self.bias, *self.gamma, *self.beta]

    def preactivations(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return the logits ``(S, classes, B)`` and, per hidden layer, the inputs to its
        nonlinearity ``(S, C, B)`` (no gradients)."""
        with torch.no_grad():
            logits, pre, _ = self._run(x, keep_pre=True)
        return logits.transpose(1, 2), [p.transpose(1, 2) for p in pre]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the logits ``(S, classes, B)``."""
        if self.training and torch.is_grad_enabled():
            logits = _StackedTraining.apply(self, x, *self._parameters_in_order())
        else:
            logits = self._run(x)[0]
        return logits.transpose(1, 2)

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


def _runs(values: Sequence) -> list[tuple]:
    """Return ``(value, start, end)`` for each run of equal consecutive ``values``."""
    out, start = [], 0
    for value, run in itertools.groupby(values):
        size = len(list(run))
        out.append((value, start, start + size))
        start += size
    return out


class _StackedTraining(torch.autograd.Function):
    """A training-mode forward of a :class:`StackedMLP` as one autograd node, whose backward is
    :meth:`StackedMLP._backward` (the input gets no gradient)."""

    @staticmethod
    def forward(ctx, stack: StackedMLP, x: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        """Return the logits; keep what the backward pass needs."""
        logits, _, ctx.saved = stack._run(x)
        ctx.stack = stack
        return logits

    @staticmethod
    def backward(ctx, dlogits: torch.Tensor):
        """Return None for the stack and the input, then every parameter's gradient."""
        grads = ctx.stack._backward(ctx.saved, dlogits.contiguous())
        ctx.saved = None
        return (None, None, *grads)


def _spec(net: nn.Sequential) -> dict:
    """Return the widths, activation, Linear layers and BN layers of a ``models.mlp`` network."""
    linears = [m for m in net if isinstance(m, nn.Linear)]
    bns = [m for m in net if models.is_bn_layer(m)]
    other = sorted({type(m).__name__ for m in bns if type(m) is not nn.BatchNorm1d})
    if other:   # stacked as torch's BN (or as none) they would train as another network
        raise ValueError(f"a stack holds torch.nn.BatchNorm1d layers only, not {', '.join(other)}")
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


class StackedSGD(torch.optim.Optimizer):
    """Momentum SGD (PyTorch's rule: ``buf = m·buf + g + wd·p``, ``p -= lr·buf``) for a stacked
    network: model k's slice of every parameter uses the learning rate ``lr_k · model_lr[k]``,
    where ``lr_k`` is the group's ``lr`` (a float, or one per model: ``train.fit``'s ``lr_at``
    may return K rates, K schedules), and the group's ``weight_decay`` (a float, or one per model)."""

    def __init__(self, params, k: int, *, lr: float | Sequence[float] = 1.0, momentum: float = 0.0,
                 weight_decay: float | Sequence[float] = 0.0,
                 model_lr: Sequence[float] | None = None):
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})
        self.k = k
        self._per_model: dict = {}
        self.model_lr = [1.0] * k if model_lr is None else model_lr

    @property
    def model_lr(self) -> list[float]:
        """Return the per-model learning-rate factors."""
        return self._model_lr

    @model_lr.setter
    def model_lr(self, values: Sequence[float]) -> None:
        self._model_lr = self._per_model_values(values, "model_lr")

    def _per_model_values(self, values, name: str) -> list[float]:
        """Return ``values`` (one number, or K) as K floats, or raise ValueError."""
        values = [float(v) for v in (values if isinstance(values, (list, tuple)) else [values] * self.k)]
        if len(values) != self.k:
            raise ValueError(f"{name} needs one learning rate per model ({self.k}), got {values}")
        return values

    def _expand(self, values: list[float], p: torch.Tensor, which: str) -> torch.Tensor:
        """Return K per-model ``values`` repeated along p's first axis, broadcastable to p (cached
        while the values stay the same)."""
        key, values = (id(p), which), tuple(values)
        if key not in self._per_model or self._per_model[key][0] != values:
            v = torch.tensor(values, dtype=p.dtype, device=p.device)
            self._per_model[key] = (values, v.repeat_interleave(p.shape[0] // self.k).reshape(
                -1, *[1] * (p.ndim - 1)))
        return self._per_model[key][1]

    @torch.no_grad()
    def step(self, closure=None):
        """Take one step for every parameter (no closure support); return None."""
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            wd = self._per_model_values(group["weight_decay"], "weight_decay")
            if any(wd):
                grads = torch._foreach_add(grads, torch._foreach_mul(
                    params, [self._expand(wd, p, "wd") for p in params]))
            if group["momentum"]:
                bufs = [self.state[p].get("momentum_buffer") for p in params]
                if any(b is None for b in bufs):
                    bufs = [torch.clone(g).detach() for g in grads]
                    for p, b in zip(params, bufs):
                        self.state[p]["momentum_buffer"] = b
                else:
                    torch._foreach_mul_(bufs, group["momentum"])
                    torch._foreach_add_(bufs, grads)
                grads = bufs
            lr = self._per_model_values(group["lr"], "lr")
            rates = [-a * b for a, b in zip(lr, self.model_lr)]
            torch._foreach_addcmul_(params, grads, [self._expand(rates, p, "lr") for p in params])
        return None

    def stop_model(self, i: int) -> None:
        """Set model ``i``'s learning rate to 0 (a diverged model of a stack stops there)."""
        self.model_lr = [0.0 if j == i else r for j, r in enumerate(self.model_lr)]

"""Chapter 04: the MNIST experiment of Ioffe & Szegedy (2015, §4.1), reproduced and extended.

The paper trains a 784-100-100-100-10 sigmoid MLP on MNIST for 50,000 SGD steps of 60 examples,
with and without BN before each nonlinearity, and shows (Fig. 1) the test accuracy over training
and the 15th/50th/85th percentiles of the input to a typical sigmoid of the last hidden layer.
This module runs that protocol for several seeds and for sigmoid, tanh and ReLU after a small
learning-rate search on the networks without BN; it also compares initialisations of the sigmoid
net and trains it at batch size 1.

Speed: the networks of a sweep are trained together as one :class:`StackedMLP`. Model ``s`` has
its own weights (``weight[l][s]``, shaped like ``nn.Linear.weight``), its own BN over its own
minibatch, its own minibatch order (``data.Batches`` with its seed) and its own learning rate, so
the stack is exactly ``S`` independent runs (``tests/test_mnist.py`` checks it against ``S``
ordinary ``torch.nn`` models), but each layer is one batched matrix product (``torch.bmm``) for
all of them, and the test set is evaluated for all of them with one matrix product per layer.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import data, models, plotting, results, train
from ..profiles import SEED_MAX, Config, param

CHAPTER = "04_mnist"
ACTIVATIONS = ("sigmoid", "tanh", "relu")
ACT_FNS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}
INITS = ("gaussian", "lecun_uniform")
PERCENTILES = (15, 50, 85)
LABELS = {False: "without BN", True: "with BN"}
COLORS = {False: plotting.COLORS["no_bn"], True: plotting.COLORS["bn"]}


@dataclass(frozen=True)
class MnistConfig(Config):
    """The MNIST experiment (defaults: the paper's protocol, the ``full`` profile)."""

    steps: int = param(50_000, "SGD steps per network (paper: 50,000)", min=1)
    batch_size: int = param(60, "examples per minibatch (paper: 60)", min=1)
    hidden: tuple = param((100, 100, 100), "hidden layer widths (paper: 3 x 100)", item_min=1)
    activations: tuple = param(ACTIVATIONS, "hidden nonlinearities compared (paper: sigmoid)",
                               choices=ACTIVATIONS)
    seeds: tuple = param((0, 1, 2), "seeds: initial weights and minibatch order", item_min=0, max=SEED_MAX)
    init: str = param("gaussian", "initial weights: gaussian (paper) or lecun_uniform "
                      "(the student reproduction)", choices=INITS)
    init_std: float = param(0.01, "std of the Gaussian initial weights (paper: 'small')",
                            min=1e-6, max=10.0)
    lr: float = param(0.0, "SGD learning rate of both nets; 0: the search's choice per activation",
                      min=0.0, max=100.0)
    lr_grid: tuple = param((0.03, 0.1, 0.3, 1.0, 3.0, 10.0), "learning rates the search tries",
                           item_min=1e-6)
    search_steps: int = param(5000, "SGD steps of each search run (nets without BN)", min=1)
    search_seeds: tuple = param((0,), "seeds of the search runs", item_min=0, max=SEED_MAX)
    val_size: int = param(10_000, "training images held out to score the search", min=10)
    eval_every: int = param(2500, "steps between evaluations on the test set", min=1)
    evals_per_decade: int = param(20, "more evaluations, log-spaced: this many per factor of 10 "
                                  "in steps", min=0)
    thresholds: tuple = param((0.95, 0.97, 0.98), "test accuracies whose first step we report",
                              item_min=0.0)
    unit: int = param(0, "unit of the last hidden layer drawn in Fig. 1(b, c)", min=0)
    probe_units: int = param(10, "units of the last hidden layer whose percentiles are recorded",
                             min=1)
    compare_inits: tuple = param(("gaussian:0.1", "lecun_uniform"), "other initialisations "
                                 "tried on the sigmoid net ('gaussian:STD' or 'lecun_uniform'; "
                                 "the main one alone: none)")
    compare_steps: int = param(10_000, "SGD steps of the initialisation comparison", min=1)
    bs1_steps: int = param(3000, "SGD steps of the batch-size-1 demonstration", min=1)
    n_train: int = param(60_000, "training images used (stratified subset below 60,000)",
                         min=100, max=60_000)
    n_test: int = param(10_000, "test images used (stratified subset below 10,000)",
                        min=10, max=10_000)
    checkpoint_every: int = param(10_000, "steps between checkpoints of the long runs (0: none)",
                                  min=0)

    PROFILES: ClassVar[dict] = {
        "full": {},
        # the paper's protocol fits the 2-core CPU: the book shows the stored full record
        "reference": {},
        "quick": {"steps": 5000, "search_steps": 2000, "compare_steps": 2000, "eval_every": 500,
                  "evals_per_decade": 10, "bs1_steps": 2000, "checkpoint_every": 0},
        "smoke": {"steps": 60, "activations": ("sigmoid", "relu"), "seeds": (0,),
                  "lr_grid": (0.3, 3.0), "search_steps": 30, "compare_inits": ("lecun_uniform",),
                  "compare_steps": 30, "val_size": 500, "eval_every": 30, "evals_per_decade": 4,
                  "bs1_steps": 20, "n_train": 3000, "n_test": 1000, "checkpoint_every": 0},
    }

    def validate(self) -> None:
        """Check the cross-field constraints (batch size, probed units, held-out split)."""
        if self.batch_size < 2:
            raise ValueError(f"parameter batch_size={self.batch_size} must be >= 2: BN in "
                             "training mode normalises over the minibatch, and over a batch of "
                             "one example every feature is 0 (see the chapter's batch-size-1 "
                             "section)")
        if "sigmoid" not in self.activations:
            raise ValueError(f"parameter activations={self.activations!r} must include 'sigmoid' "
                             "(the paper's network, which Fig. 1 shows)")
        if len(set(self.activations)) != len(self.activations) or \
                len(set(self.seeds)) != len(self.seeds):
            raise ValueError("parameters activations and seeds must not repeat a value")
        if self.probe_units > self.hidden[-1]:
            raise ValueError(f"parameter probe_units={self.probe_units} must be <= the last "
                             f"hidden layer's width {self.hidden[-1]}")
        if self.unit >= self.probe_units:
            raise ValueError(f"parameter unit={self.unit} must be < probe_units="
                             f"{self.probe_units} (only those units are recorded)")
        if self.val_size + self.batch_size > self.n_train:
            raise ValueError(f"parameter val_size={self.val_size} leaves fewer than batch_size="
                             f"{self.batch_size} of the n_train={self.n_train} images to train on")
        for label in self.compare_inits:
            parse_init(label)
        if any(t > 1 for t in self.thresholds):
            raise ValueError(f"parameter thresholds={self.thresholds} must be accuracies <= 1")


# ---------------------------------------------------------------------------------------------
# S networks as one


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


def eval_schedule(steps: int, every: int, per_decade: int = 0) -> list[int]:
    """Return the sorted steps at which to evaluate: 0, every ``every`` steps (for the curves),
    ``per_decade`` log-spaced steps per factor of ten from step 100 on (for "steps to reach x%",
    which then has the same relative resolution early and late), and the last step."""
    points = {0, steps, *range(every, steps, every)}
    if per_decade and steps > 100:
        n = int(math.floor(per_decade * math.log10(steps / 100))) + 1
        # two significant digits: 112 -> 110, 2512 -> 2500 (which the linear grid may hold)
        points |= {int(float(f"{100 * 10 ** (i / per_decade):.2g}")) for i in range(n)}
    return sorted(p for p in points if p <= steps)


def train_stack(stack: StackedMLP, x: torch.Tensor, y: torch.Tensor, seeds: Sequence[int], *,
                steps: int, batch_size: int, lr: float | Sequence[float],
                eval_fn: Callable[[StackedMLP], dict] | None = None,
                eval_steps: Sequence[int] = (), log_every: int = 100,
                checkpoint: Path | str | None = None, checkpoint_every: int = 0,
                progress: str | None = None) -> dict:
    """Train every model of ``stack`` with plain SGD (learning rate ``lr[s]``) on minibatches of
    ``(x, y)`` drawn in the order of ``data.batches(..., seed=seeds[s])``; return NumPy arrays.

    ``eval_fn(stack)`` (run in eval mode without gradients at ``eval_steps``) returns per-model
    metrics, arrays with a leading model axis; they come back stacked as ``(evals, S, ...)``.
    A model whose loss diverges (``train.is_diverged``: NaN, infinite, or far above its first
    minibatch's) stops there (its learning rate is set to 0 and its later metrics are NaN)
    while the others go on. With ``checkpoint``, the state is saved
    every ``checkpoint_every`` steps and a restarted run resumes from it.
    """
    n_models = stack.n_models
    if len(seeds) != n_models:
        raise ValueError(f"need one seed per model: {len(seeds)} seeds for {n_models} models")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} must be a positive integer")
    device = x.device
    step_size = torch.as_tensor(lr, dtype=torch.float32, device=device).expand(n_models).clone()
    hist = {"log_step": [], "train_loss": [], "eval_step": [], "evals": {},
            "diverged_at": [None] * n_models, "start_loss": None, "train_seconds": 0.0,
            "eval_seconds": 0.0}
    start = 0
    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt is not None and ckpt.exists():
        state = train.load_checkpoint(ckpt)   # NumPy arrays were stored as lists
        stack.load_state_dict(state["stack"])
        hist, start, step_size = state["hist"], state["step"], state["step_size"].to(device)
        hist["train_loss"] = [np.asarray(v, dtype=np.float32) for v in hist["train_loss"]]
        hist["evals"] = {k: [np.asarray(v, dtype=np.float32) for v in vs]
                         for k, vs in hist["evals"].items()}
    streams = [data.batches(x, y, batch_size, seed=s) for s in seeds]
    for stream in streams:
        stream.skip(start)
    wanted = set(eval_steps)

    def run_eval(step: int) -> None:
        t0 = time.perf_counter()
        stack.eval()
        with torch.inference_mode():
            metrics = {k: torch.as_tensor(v).float().cpu().numpy() for k, v in eval_fn(stack).items()}
        stack.train()
        for i, at in enumerate(hist["diverged_at"]):
            if at is not None:
                for v in metrics.values():
                    v[i] = np.nan
        hist["eval_step"].append(step)
        for k, v in metrics.items():
            hist["evals"].setdefault(k, []).append(v)
        hist["eval_seconds"] += time.perf_counter() - t0

    if eval_fn is not None and start == 0 and 0 in wanted:
        run_eval(0)
    params = list(stack.parameters())
    running, since_log = torch.zeros(n_models, device=device), 0
    bar = None
    if progress and os.environ.get("BN_PROGRESS", "1") != "0":
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=start, desc=progress, leave=False, mininterval=1.0)
    stack.train()
    t_start = time.perf_counter()
    for step in range(start, steps):
        idx = torch.stack([stream.next_indices() for stream in streams])   # (S, B)
        losses = per_model_loss(stack(x[idx]), y[idx])
        if hist["start_loss"] is None:
            hist["start_loss"] = losses.detach().cpu().tolist()
        grads = torch.autograd.grad(losses.sum(), params, allow_unused=True)
        with torch.no_grad():
            neg = (-step_size).view(n_models, 1, 1)   # every parameter is (S, ., .)
            for p, g in zip(params, grads):
                if g is not None:   # None: hidden biases of BN-only stacks, BN of BN-free ones
                    p.addcmul_(neg, g)
        running += losses.detach()
        since_log += 1
        done = step + 1
        if done % log_every == 0 or done == steps:
            mean = (running / since_log).cpu().numpy()
            running.zero_()
            since_log = 0
            hist["log_step"].append(done)
            hist["train_loss"].append(mean)
            for i in np.flatnonzero(train.is_diverged(mean, hist["start_loss"])):
                if hist["diverged_at"][i] is None:
                    hist["diverged_at"][i] = done
                    step_size[i] = 0.0
        if eval_fn is not None and (done in wanted or done == steps):
            hist["train_seconds"] += time.perf_counter() - t_start
            run_eval(done)
            t_start = time.perf_counter()
        if bar is not None:
            bar.update(1)
        if ckpt is not None and checkpoint_every and done % checkpoint_every == 0 and done < steps:
            hist["train_seconds"] += time.perf_counter() - t_start
            t_start = time.perf_counter()
            train.save_checkpoint(ckpt, {"stack": stack.state_dict(), "hist": hist, "step": done,
                         "step_size": step_size})
    hist["train_seconds"] += time.perf_counter() - t_start
    if bar is not None:
        bar.close()
    out = {"log_step": np.array(hist["log_step"]), "train_loss": np.array(hist["train_loss"]),
           "eval_step": np.array(hist["eval_step"]),
           "diverged_at": hist["diverged_at"], "train_seconds": hist["train_seconds"],
           "eval_seconds": hist["eval_seconds"], "steps": steps,
           "model_steps_per_second": n_models * (steps - start) / max(hist["train_seconds"], 1e-9)
           if start == 0 else None}
    out.update({k: np.stack(v) for k, v in hist["evals"].items()})
    return out


# ---------------------------------------------------------------------------------------------
# The experiment: the learning-rate search, the main runs, batch size 1


class AnyBatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` written out so that it also runs on a batch of one example, which torch
    refuses: what a framework that allows it computes. Equal to ``nn.BatchNorm1d`` for batches
    of two or more; for one example the normalised features are all 0 and the running variance
    is updated with the (biased) batch variance, 0, since the unbiased one is 0/0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return BN of ``x`` (N, C) over the batch (training) or with the running statistics."""
        if not self.training:
            return super().forward(x)
        n = x.shape[0]
        mean, var = x.mean(0), x.var(0, unbiased=False)
        with torch.no_grad():
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * (n / max(n - 1, 1)), self.momentum)
            self.num_batches_tracked += 1
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


def init_label(init: str, std: float) -> str:
    """Return the label of an initialisation: ``gaussian:0.01`` or ``lecun_uniform``."""
    return f"gaussian:{std:g}" if init == "gaussian" else init


def parse_init(label: str) -> tuple[str, float]:
    """Return ``(scheme, std)`` of an initialisation label (the inverse of ``init_label``)."""
    if label == "lecun_uniform":
        return label, 0.0
    scheme, _, std = label.partition(":")
    try:
        value = float(std)
    except ValueError:
        value = float("nan")
    if scheme != "gaussian" or not 0 < value <= 10:
        raise ValueError(f"initialisation {label!r} must be 'lecun_uniform' or 'gaussian:STD' "
                         "with 0 < STD <= 10")
    return scheme, value


def build_nets(cfg: MnistConfig, activation: str, seed: int, init: str | None = None,
               norm: str | Callable[[int], nn.Module] = "bn") -> tuple[nn.Sequential, nn.Sequential]:
    """Return the network without BN and the one with BN (``norm``) before each nonlinearity, for
    ``activation`` and ``seed``; both start from the same weights, drawn once for the first.
    ``init`` is an initialisation label (default: the config's ``init`` and ``init_std``)."""
    scheme, std = parse_init(init) if init else (cfg.init, cfg.init_std)
    widths = (784, *cfg.hidden, 10)
    train.seed_everything(seed)
    plain = models.mlp(widths, activation_name=activation, norm="none", init=scheme, init_std=std)
    normed = models.mlp(widths, activation_name=activation, norm=norm, init=scheme, init_std=std)
    with torch.no_grad():
        src = [m for m in plain if isinstance(m, nn.Linear)]
        dst = [m for m in normed if isinstance(m, nn.Linear)]
        for a, b in zip(src, dst):
            b.weight.copy_(a.weight)
            if b.bias is not None:   # only the output layer keeps its bias under BN
                b.bias.copy_(a.bias)
    return plain, normed


def load_data(cfg: MnistConfig, device=None) -> tuple[torch.Tensor, ...]:
    """Return MNIST ``(x_train, y_train, x_test, y_test)`` as flat, standardised tensors."""
    return data.tensors("mnist", device, flatten=True, n_train=cfg.n_train, n_test=cfg.n_test,
                        seed=0)


def _on_device(cfg: MnistConfig):
    """Return the device and the data on it."""
    device = train.default_device()
    return device, load_data(cfg, device)


def _stack(cfg: MnistConfig, specs: Sequence[dict], device) -> StackedMLP:
    """Return the stack of the networks described by ``specs`` (activation, init, bn, seed)."""
    cache: dict = {}
    nets = []
    for m in specs:
        key = (m["activation"], m["init"], m["seed"])
        if key not in cache:
            cache[key] = build_nets(cfg, m["activation"], m["seed"], m["init"])
        nets.append(cache[key][m["bn"]])
    return StackedMLP.from_models(nets).to(device)


def lr_search(cfg: MnistConfig) -> dict:
    """Train the nets without BN, for every activation (main initialisation) and for the sigmoid
    net with each of ``compare_inits``, at every learning rate of ``lr_grid`` and search seed, on
    the training images less ``val_size`` held-out ones; return their validation accuracy over
    training and the chosen learning rates (``chosen_lr[init][activation]``: best final mean)."""
    device, (x, y, _, _) = _on_device(cfg)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(2015)).to(device)
    val, fit_idx = perm[: cfg.val_size], perm[cfg.val_size:]
    x_val, y_val = x[val], y[val]
    main = init_label(cfg.init, cfg.init_std)
    setups = [(a, main) for a in cfg.activations] + \
             [("sigmoid", i) for i in cfg.compare_inits if i != main]
    specs = [{"activation": a, "init": i, "bn": False, "seed": s, "lr": lr}
             for a, i in setups for lr in cfg.lr_grid for s in cfg.search_seeds]

    def eval_fn(st: StackedMLP) -> dict:
        return {"val_accuracy": accuracy(st(x_val), y_val)}

    out = train_stack(_stack(cfg, specs, device), x[fit_idx], y[fit_idx],
                      [m["seed"] for m in specs], steps=cfg.search_steps,
                      batch_size=cfg.batch_size, lr=[m["lr"] for m in specs], eval_fn=eval_fn,
                      eval_steps=eval_schedule(cfg.search_steps, max(1, cfg.search_steps // 10)),
                      progress="LR search")
    out["models"] = specs
    out["chosen_lr"] = choose_lr(out)
    return out


def choose_lr(search: dict | results.Record) -> dict:
    """Return ``{init: {activation: lr}}``: per setup, the learning rate with the best final
    validation accuracy (mean over the search seeds; a diverged run counts as accuracy 0; ties
    go to the smaller rate)."""
    final = np.nan_to_num(np.asarray(search["val_accuracy"])[-1], nan=0.0)
    scores: dict = {}
    for m, acc in zip(search["models"], final):
        by_lr = scores.setdefault(m["init"], {}).setdefault(m["activation"], {})
        by_lr.setdefault(m["lr"], []).append(acc)
    return {i: {a: max(by_lr, key=lambda lr: (np.mean(by_lr[lr]), -lr))
                for a, by_lr in per_act.items()} for i, per_act in scores.items()}


def learning_rates(cfg: MnistConfig, init: str | None = None) -> dict:
    """Return the learning rate per activation for initialisation ``init`` (default: the main
    one): ``cfg.lr`` if set, else the search's choice."""
    init = init or init_label(cfg.init, cfg.init_std)
    if cfg.lr > 0:
        return {a: cfg.lr for a in cfg.activations}
    return dict(search(cfg)["chosen_lr"][init])


def test_metrics(stack: StackedMLP, x: torch.Tensor, y: torch.Tensor, units: int,
                 chunk: int = 1000) -> dict:
    """Return per model the test accuracy and loss and the 15th/50th/85th percentiles over the
    test images of the input to the first ``units`` nonlinearities of the last hidden layer.

    The images go through in chunks, so that every intermediate fits in the CPU's cache."""
    correct, loss, probe = 0.0, 0.0, []
    for start in range(0, len(x), chunk):
        logits, pre = stack.preactivations(x[start: start + chunk])
        target = y[start: start + chunk]
        correct = correct + (logits.argmax(1) == target).float().sum(1)
        loss = loss + F.cross_entropy(logits, target.expand(len(logits), -1),
                                      reduction="none").sum(1)
        probe.append(pre[-1][:, :units])
    q = torch.tensor([p / 100 for p in PERCENTILES], device=x.device)
    pct = torch.quantile(torch.cat(probe, dim=2), q, dim=2)   # (3, S, units)
    out = {"test_accuracy": correct / len(x), "test_loss": loss / len(x)}
    out.update({f"p{p}": pct[i] for i, p in enumerate(PERCENTILES)})
    return out


def _train(cfg: MnistConfig, specs: list[dict], steps: int, name: str) -> dict:
    """Train the networks ``specs`` as one stack for ``steps`` steps on the training set; return
    the test metrics and percentiles over training, and ``specs`` as ``models``."""
    device, (x_tr, y_tr, x_te, y_te) = _on_device(cfg)
    ckpt = results.checkpoint_path(CHAPTER, name, cfg) if cfg.checkpoint_every else None
    out = train_stack(_stack(cfg, specs, device), x_tr, y_tr, [m["seed"] for m in specs],
                      steps=steps, batch_size=cfg.batch_size, lr=[m["lr"] for m in specs],
                      eval_fn=lambda st: test_metrics(st, x_te, y_te, cfg.probe_units),
                      eval_steps=eval_schedule(steps, cfg.eval_every, cfg.evals_per_decade),
                      checkpoint=ckpt, checkpoint_every=cfg.checkpoint_every,
                      progress=f"{len(specs)} networks")
    if ckpt is not None:
        ckpt.unlink(missing_ok=True)
    out["models"] = specs
    return out


def train_all(cfg: MnistConfig) -> dict:
    """Train every activation × (without BN, with BN) × seed for ``cfg.steps`` steps, with the
    main initialisation and the learning rate the search chose for the activation."""
    init = init_label(cfg.init, cfg.init_std)
    lrs = learning_rates(cfg, init)
    specs = [{"activation": a, "init": init, "bn": bn, "seed": s, "lr": lrs[a]}
             for a in cfg.activations for bn in (False, True) for s in cfg.seeds]
    return _train(cfg, specs, cfg.steps, "runs")


def train_inits(cfg: MnistConfig) -> dict:
    """Train the sigmoid net without and with BN for each of ``compare_inits`` (other than the
    main one) and seed, for ``compare_steps`` steps, at the rate the search chose for it."""
    main = init_label(cfg.init, cfg.init_std)
    specs = [{"activation": "sigmoid", "init": i, "bn": bn, "seed": s,
              "lr": learning_rates(cfg, i)["sigmoid"]}
             for i in cfg.compare_inits if i != main for bn in (False, True) for s in cfg.seeds]
    if not specs:
        return {"models": []}
    return _train(cfg, specs, min(cfg.compare_steps, cfg.steps), "inits")


def batch_size_one(cfg: MnistConfig) -> dict:
    """Train the sigmoid net with BN (``AnyBatchNorm1d``, which allows it) of the first seed at
    batch size 1 for ``bs1_steps`` steps at the main runs' learning rate; return its history,
    how far each layer's weights moved, and how much its training-mode output varies across
    single test images."""
    lr = learning_rates(cfg)["sigmoid"]
    device, (x_tr, y_tr, x_te, y_te) = _on_device(cfg)
    seed = cfg.seeds[0]
    net = build_nets(cfg, "sigmoid", seed, norm=AnyBatchNorm1d)[1].to(device)
    before = [m.weight.detach().clone() for m in net if isinstance(m, nn.Linear)]
    hist = train.fit(net, data.batches(x_tr, y_tr, 1, seed=seed), steps=cfg.bs1_steps,
                     optimizer=torch.optim.SGD(net.parameters(), lr=lr),
                     eval_fn=lambda m: {"test_accuracy": train.accuracy(m, x_te, y_te)},
                     eval_every=max(1, cfg.bs1_steps // 10), log_every=max(1, cfg.bs1_steps // 60),
                     progress="batch size 1, with BN")
    after = [m.weight.detach() for m in net if isinstance(m, nn.Linear)]
    out = {**hist.to_dict(), "learning_rate": lr, "seed": seed}
    out["weight_change"] = [float((a - b).abs().max()) for a, b in zip(after, before)]
    with torch.no_grad():   # each test image alone, in training mode, as SGD saw them
        single = torch.stack([net(x_te[i: i + 1])[0] for i in range(min(100, len(x_te)))])
    out["train_mode_output_spread"] = float((single - single[0]).abs().max())
    return out


# ---------------------------------------------------------------------------------------------
# Stored runs


def search(cfg: MnistConfig) -> results.Record:
    """Return the stored learning-rate search of ``cfg`` (running it if needed)."""
    return results.load_or_run(CHAPTER, "lr_search", cfg, lr_search, prefer_full=True)


def runs(cfg: MnistConfig) -> results.Record:
    """Return the stored main runs of ``cfg`` (training them if needed)."""
    return results.load_or_run(CHAPTER, "runs", cfg, train_all, prefer_full=True)


def inits(cfg: MnistConfig) -> results.Record:
    """Return the stored initialisation comparison of ``cfg`` (training it if needed)."""
    return results.load_or_run(CHAPTER, "inits", cfg, train_inits, prefer_full=True)


def batch_one(cfg: MnistConfig) -> results.Record:
    """Return the stored batch-size-1 run of ``cfg`` (training it if needed)."""
    return results.load_or_run(CHAPTER, "batch_size_one", cfg, batch_size_one, prefer_full=True)


def config_of(record: results.Record) -> MnistConfig:
    """Return the configuration a stored record was made with (the ``full`` one, when a chapter
    at the ``quick`` profile shows the stored full runs)."""
    return MnistConfig(**record.config)


def run_all(cfg: MnistConfig) -> dict:
    """Return the chapter's stored records: ``search``, ``runs``, ``inits``, ``batch_size_one``."""
    return {"search": search(cfg), "runs": runs(cfg), "inits": inits(cfg),
            "batch_size_one": batch_one(cfg)}


# ---------------------------------------------------------------------------------------------
# What the runs show: tables and figures


def select(record: results.Record | dict, activation: str, bn: bool,
           init: str | None = None) -> list[int]:
    """Return the indices of the models of ``record`` with ``activation``, BN flag ``bn`` and
    (if given) initialisation label ``init``."""
    return [i for i, m in enumerate(record["models"])
            if m["activation"] == activation and m["bn"] == bn and init in (None, m["init"])]


def truncate(record: results.Record | dict, steps: int) -> dict:
    """Return the evaluations of ``record`` up to step ``steps`` (and its models, and where they
    diverged within them) as a dict."""
    keep = np.asarray(record["eval_step"]) <= steps
    div = _diverged_at(record)
    return {"models": record["models"], "eval_step": np.asarray(record["eval_step"])[keep],
            "test_accuracy": np.asarray(record["test_accuracy"])[keep],
            "diverged_at": [d if d is not None and d <= steps else None for d in div]}


def _diverged_at(record: results.Record | dict) -> list:
    """Return per model the step at which it diverged, or None (all None for old records)."""
    try:
        return list(record["diverged_at"])
    except KeyError:
        return [None] * len(record["models"])


def steps_to(record: results.Record | dict, threshold: float) -> np.ndarray:
    """Return per model the first evaluated step with test accuracy >= ``threshold`` (NaN: never)."""
    acc = np.nan_to_num(np.asarray(record["test_accuracy"]), nan=0.0)   # (evals, S)
    steps = np.asarray(record["eval_step"], dtype=float)
    reached = acc >= threshold
    return np.where(reached.any(0), steps[reached.argmax(0)], np.nan)


def accuracy_at(record: results.Record | dict, step: int) -> np.ndarray:
    """Return per model the test accuracy at the last evaluation at or before ``step``."""
    steps = np.asarray(record["eval_step"])
    return np.asarray(record["test_accuracy"])[np.flatnonzero(steps <= step)[-1]]


def _mean_std(values, fmt: str = "{:.4f}", diverged_at=None, spread: bool = True) -> str:
    """Return ``mean ± std`` of the finite values (with ``(k/n)`` if some are missing; a missing
    value of a model that diverged says ``diverged at step N``, given ``diverged_at`` per value)."""
    v = np.asarray(values, dtype=float)
    ok = v[np.isfinite(v)]
    div = sorted({int(diverged_at[i]) for i in np.flatnonzero(~np.isfinite(v))
                  if diverged_at is not None and diverged_at[i] is not None})
    note = ("diverged at step " + ", ".join(f"{d:,}" for d in div)) if div else ""
    if not len(ok):
        return note or f"not reached (0/{len(v)})"
    text = fmt.format(ok.mean()) + (" ± " + fmt.format(ok.std()) if spread and len(ok) > 1 else "")
    if len(ok) < len(v):
        text += f" ({len(ok)}/{len(v)}" + (f"; {note}" if note else "") + ")"
    return text


def summary(record: results.Record | dict, thresholds: Sequence[float] = (0.95, 0.97, 0.98),
            at_step: int = 2500, init: str | None = None) -> dict:
    """Return per (activation, bn) the mean and std over seeds of the final test accuracy, the
    accuracy at ``at_step``, and per threshold the steps to reach it and how many seeds did
    (only the models with initialisation ``init``, if given); ``final_text`` and
    ``at_step_text`` say the same for prose, or where the seeds diverged."""
    out = {}
    models = [m for m in record["models"] if init in (None, m["init"])]
    for a in dict.fromkeys(m["activation"] for m in models):
        for bn in (False, True):
            idx = select(record, a, bn, init)
            if not idx:
                continue
            final = np.asarray(record["test_accuracy"])[-1, idx]
            early = accuracy_at(record, at_step)[idx]
            div = [_diverged_at(record)[i] for i in idx]
            row = {"final_mean": float(np.mean(final)), "final_std": float(np.std(final)),
                   "at_step_mean": float(np.mean(early)), "n_seeds": len(idx),
                   "lr": record["models"][idx[0]]["lr"], "final": final.tolist(),
                   "diverged_at": div, "final_text": _mean_std(final, diverged_at=div),
                   "at_step_text": _mean_std(early, diverged_at=div, spread=False)}
            for t in thresholds:
                s = steps_to(record, t)[idx]
                row[f"steps_to_{t}"] = s.tolist()
                row[f"steps_to_{t}_mean"] = float(np.nanmean(s)) if np.isfinite(s).any() else None
            out[a, bn] = row
    return out


def activation_table(record: results.Record | dict,
                     thresholds: Sequence[float] = (0.95, 0.97, 0.98)) -> list[dict]:
    """Return table rows: per activation and BN, the learning rate, final test accuracy and the
    steps to each threshold, as mean ± std over seeds (k/n: only k of n seeds got there)."""
    rows = []
    for (a, bn), r in summary(record, thresholds).items():
        row = {"activation": a, "BN": "yes" if bn else "no", "lr": f"{r['lr']:g}",
               f"test accuracy at step {int(record['eval_step'][-1]):,}": r["final_text"]}
        for t in thresholds:
            row[f"steps to {t:.0%}"] = _mean_std(r[f"steps_to_{t}"], "{:,.0f}", r["diverged_at"])
        rows.append(row)
    return rows


def distribution_drift(record: results.Record | dict, activation: str = "sigmoid") -> dict:
    """Return, without and with BN, how far the input distribution of the recorded units of the
    last hidden layer moves over training (after step 0): per unit and seed, the range (max −
    min) of its median, the same over the second half of training, and the range of its 15–85th
    percentile spread; each as an array over units × seeds."""
    steps = np.asarray(record["eval_step"])
    after, late = steps > 0, steps >= steps[-1] / 2
    out = {}
    for bn in (False, True):
        idx = select(record, activation, bn)
        p15, p50, p85 = (np.asarray(record[f"p{p}"])[:, idx] for p in PERCENTILES)
        spread = p85 - p15
        div = [_diverged_at(record)[i] for i in idx]
        out[bn] = {"median_range": np.ptp(p50[after], 0).ravel(),
                   "late_median_range": np.ptp(p50[late], 0).ravel(),
                   "spread_range": np.ptp(spread[after], 0).ravel(),
                   "diverged_at": [d for d in div for _ in range(p50.shape[2])]}
    return out


def drift_ratios(record: results.Record | dict, activation: str = "sigmoid") -> dict:
    """Return, as prose, how far the median and the spread move with BN relative to without
    (``"43%"``, means over the units × seeds that did not diverge; or why there is no ratio)."""
    d = distribution_drift(record, activation)
    out = {}
    for name, key in (("drift_ratio", "median_range"), ("spread_ratio", "spread_range")):
        with_bn, without = (np.asarray(d[bn][key], dtype=float) for bn in (True, False))
        ok_bn, ok_plain = with_bn[np.isfinite(with_bn)], without[np.isfinite(without)]
        if not len(ok_bn) or not len(ok_plain):
            out[name] = "not measurable (the runs diverged)"
        elif ok_plain.mean() == 0:
            out[name] = "not measurable (without BN it does not move)"
        else:
            out[name] = f"{ok_bn.mean() / ok_plain.mean():.0%}"
    return out


def drift_table(record: results.Record | dict, activation: str = "sigmoid") -> list[dict]:
    """Return table rows of ``distribution_drift``: mean ± std over units × seeds."""
    rows = []
    for bn, d in distribution_drift(record, activation).items():
        rows.append({"network": f"{activation}, {LABELS[bn]}",
                     "range of the median": _mean_std(d["median_range"], "{:.2f}",
                                                      d["diverged_at"]),
                     "… over the second half": _mean_std(d["late_median_range"], "{:.2f}",
                                                         d["diverged_at"]),
                     "range of the 15–85th spread": _mean_std(d["spread_range"], "{:.2f}",
                                                              d["diverged_at"]),
                     "units × seeds": len(d["median_range"])})
    return rows


def init_table(inits: results.Record | dict, record: results.Record | dict,
               cfg: MnistConfig) -> list[dict]:
    """Return table rows: the sigmoid net without and with BN for each initialisation (the main
    one from ``record``, cut at the comparison's length), test accuracy at the end of the
    comparison and steps to the lower thresholds, mean ± std over seeds."""
    steps = min(cfg.compare_steps, cfg.steps)
    rows = []
    sources = [(init_label(cfg.init, cfg.init_std), truncate(record, steps))]
    sources += [(i, inits) for i in dict.fromkeys(m["init"] for m in inits["models"])]
    for init, source in sources:
        for bn in (False, True):
            r = summary(source, cfg.thresholds[:2], init=init)["sigmoid", bn]
            row = {"initialisation": init, "BN": "yes" if bn else "no", "lr": f"{r['lr']:g}",
                   f"test accuracy at step {steps:,}": r["final_text"]}
            for t in cfg.thresholds[:2]:
                row[f"steps to {t:.0%}"] = _mean_std(r[f"steps_to_{t}"], "{:,.0f}",
                                                     r["diverged_at"])
            rows.append(row)
    return rows


def comparison_table(record: results.Record, bs1: results.Record, inits: results.Record,
                     cfg: MnistConfig) -> list[dict]:
    """Return the rows that set our numbers beside the paper's claims and the earlier student
    reproduction's takeaway (sigmoid networks; ours as mean ± std over seeds)."""
    s = summary(record, cfg.thresholds)
    plain, bn = s["sigmoid", False], s["sigmoid", True]
    drift = distribution_drift(record)
    moved = {k: _mean_std(d["median_range"], "{:.2f}", d["diverged_at"]) for k, d in drift.items()}
    last = int(record["eval_step"][-1])
    at = min(2500, last)
    t_mid = cfg.thresholds[len(cfg.thresholds) // 2]
    n = bn["n_seeds"]
    rows = [
        {"claim": "BN net reaches higher test accuracy",
         "paper": "yes (Fig. 1a)",
         "student reproduction": "—",
         "ours": f"{bn['final_text']} vs {plain['final_text']} without BN at step "
                 f"{last:,} (n={n})"},
        {"claim": "BN net trains faster",
         "paper": "Fig. 1(a), not quantified",
         "student reproduction": "high accuracy by ~2,500 steps",
         "ours": f"at step {at:,}: {bn['at_step_text']} vs {plain['at_step_text']}; "
                 f"steps to {t_mid:.0%}: "
                 f"{_mean_std(bn[f'steps_to_{t_mid}'], '{:,.0f}', bn['diverged_at'])} vs "
                 f"{_mean_std(plain[f'steps_to_{t_mid}'], '{:,.0f}', plain['diverged_at'])}"},
        {"claim": "sigmoid inputs stable with BN, drifting without",
         "paper": "yes (Fig. 1b, c)",
         "student reproduction": "distributions stable with BN",
         "ours": f"median moves by {moved[True]} with BN vs {moved[False]} without "
                 f"({len(drift[True]['median_range'])} units × seeds)"},
    ]
    if inits["models"] and "lecun_uniform" in {m["init"] for m in inits["models"]}:
        li = summary(inits, cfg.thresholds, init="lecun_uniform")
        lp, lb = li["sigmoid", False], li["sigmoid", True]
        steps = int(inits["eval_step"][-1])
        rows.append({"claim": "initial weights", "paper": "small random Gaussian",
                     "student reproduction": "LeCun uniform",
                     "ours": f"Gaussian, std {cfg.init_std:g}; with LeCun uniform, at step "
                             f"{steps:,}: {lb['final_text']} with BN vs "
                             f"{lp['final_text']} without"})
    rows.append({"claim": "minibatch size", "paper": "60", "student reproduction": "1 (by mistake)",
                 "ours": f"{cfg.batch_size}; at 1, BN's hidden layers never learn (weights moved "
                         f"by {max(bs1['weight_change'][:-1]):.1g}), test accuracy "
                         f"{bs1['evals']['test_accuracy'][-1]:.3f}"})
    return rows


def _caption(fig, record: results.Record, extra: str = "") -> None:
    """Put the source line (and what the figure averages over) under a figure."""
    widths = "-".join(map(str, (784, *record.config["hidden"], 10)))
    plotting.caption(fig, f"MNIST, {widths} MLP. {extra}Source: {record.caption()}")


def lr_table(search: results.Record | dict) -> list[dict]:
    """Return table rows: per searched setup, the chosen learning rate and the validation
    accuracy it reached (mean over the search seeds)."""
    final = np.asarray(search["val_accuracy"])[-1]
    rows = []
    for init, per_act in search["chosen_lr"].items():
        for a, lr in per_act.items():
            idx = [i for i, m in enumerate(search["models"])
                   if (m["activation"], m["init"], m["lr"]) == (a, init, lr)]
            rows.append({"activation": a, "initialisation": init,
                         "chosen learning rate": f"{lr:g}",
                         "validation accuracy": f"{float(np.nanmean(final[idx])):.4f}"})
    return rows


def plot_lr_search(search: results.Record):
    """Figure: final validation accuracy of the nets without BN against the learning rate, one
    line per activation (and per other initialisation of the sigmoid net)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.0))
    final = np.asarray(search["val_accuracy"])[-1]
    models = search["models"]
    main = models[0]["init"]
    for a, init in dict.fromkeys((m["activation"], m["init"]) for m in models):
        idx = [i for i, m in enumerate(models) if (m["activation"], m["init"]) == (a, init)]
        lrs = np.array([models[i]["lr"] for i in idx])
        grid = np.unique(lrs)
        mean = np.array([np.nanmean(final[idx][lrs == lr]) if np.isfinite(final[idx][lrs == lr]).any()
                         else np.nan for lr in grid])
        label = a if init == main else f"{a}, init {init}"
        line, = ax.plot(grid, mean, "o-" if init == main else "o--", label=label)
        chosen = search["chosen_lr"][init][a]
        ax.plot([chosen], [mean[grid == chosen][0]], "*", ms=15, color=line.get_color())
        for lr in grid[~np.isfinite(mean)]:
            ax.plot([lr], [0.1], "x", ms=9, color=line.get_color())
    ax.set_xscale("log")
    plotting.label(ax, title=f"Learning-rate search (networks without BN, init {main})",
                   xlabel="learning rate (log scale)",
                   ylabel=f"validation accuracy after {int(search['eval_step'][-1]):,} steps",
                   legend=False)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
    _caption(fig, search, "★ chosen, × diverged. ")
    fig.tight_layout()
    return fig


def plot_figure1(record: results.Record, activation: str = "sigmoid", unit: int = 0,
                 seed_index: int = 0):
    """Figure 1 of the paper: (a) test accuracy over training without and with BN (mean ± std over
    seeds); (b, c) the 15th/50th/85th percentiles of the input to one nonlinearity (``unit``) of
    the last hidden layer over training, without and with BN, for one seed."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    steps = np.asarray(record["eval_step"])
    acc = np.asarray(record["test_accuracy"])
    for bn in (False, True):
        plotting.band(axes[0], steps, acc[:, select(record, activation, bn)].T, label=LABELS[bn],
                      color=COLORS[bn])
    axes[0].set_ylim(0.7, 1.0)   # as in the paper
    plotting.label(axes[0], title=f"(a) Test accuracy, {activation}", xlabel="training step",
                   ylabel="test accuracy")
    for ax, bn, tag in ((axes[1], False, "(b)"), (axes[2], True, "(c)")):
        i = select(record, activation, bn)[seed_index]
        p15, p50, p85 = (np.asarray(record[f"p{p}"])[:, i, unit] for p in PERCENTILES)
        plotting.percentile_bands(ax, steps, p15, p50, p85, color=COLORS[bn])
        plotting.label(ax, title=f"{tag} Input to a {activation}, {LABELS[bn]}",
                       xlabel="training step",
                       ylabel=f"unit {unit} of hidden layer {len(record.config['hidden'])}")
    lo = min(ax.get_ylim()[0] for ax in axes[1:])
    hi = max(ax.get_ylim()[1] for ax in axes[1:])
    for ax in axes[1:]:
        ax.set_ylim(lo, hi)
    seed = record["models"][select(record, activation, False)[seed_index]]["seed"]
    _caption(fig, record, f"(a) mean ± std over {len(select(record, activation, True))} seeds; "
                          f"(b, c) seed {seed}, percentiles over the test images. ")
    fig.tight_layout()
    return fig


def plot_activations(record: results.Record):
    """Figure: test accuracy over training without and with BN for each activation (mean ± std
    over seeds), on a log step axis so that the early steps and the end both show."""
    import matplotlib.pyplot as plt

    acts = list(dict.fromkeys(m["activation"] for m in record["models"]))
    fig, axes = plt.subplots(1, len(acts), figsize=(5 * len(acts), 3.8), sharey=True,
                             squeeze=False)
    steps = np.asarray(record["eval_step"])
    acc = np.asarray(record["test_accuracy"])
    keep = steps > 0
    for ax, a in zip(axes[0], acts):
        for bn in (False, True):
            plotting.band(ax, steps[keep], acc[keep][:, select(record, a, bn)].T, label=LABELS[bn],
                          color=COLORS[bn])
        ax.set_xscale("log")
        ax.set_ylim(0.8, 1.0)
        plotting.label(ax, title=a, xlabel="training step (log scale)", ylabel="test accuracy")
    _caption(fig, record, "Mean ± std over seeds. ")
    fig.tight_layout()
    return fig


def plot_batch_size_one(bs1: results.Record, record: results.Record):
    """Figure: training loss and test accuracy of the sigmoid net with BN at batch size 1, beside
    the same network (same seed, initial weights and learning rate) at the main runs' batch."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    i = [j for j in select(record, "sigmoid", True) if record["models"][j]["seed"] == bs1["seed"]][0]
    batch = record.config["batch_size"]
    log_steps, eval_steps = np.asarray(record["log_step"]), np.asarray(record["eval_step"])
    upto = bs1["steps_done"]
    k, e = log_steps <= upto, eval_steps <= upto
    axes[0].plot(log_steps[k], np.asarray(record["train_loss"])[k, i], color=COLORS[True],
                 label=f"batch {batch}")
    axes[0].plot(bs1["step"], bs1["loss"], color="0.2", label="batch 1")
    axes[0].axhline(math.log(10), color="0.5", ls=":", lw=1, label="log 10 (uniform guess)")
    axes[1].plot(eval_steps[e], np.asarray(record["test_accuracy"])[e, i], "o-", ms=3,
                 color=COLORS[True], label=f"batch {batch}")
    axes[1].plot(bs1["eval_step"], bs1["evals"]["test_accuracy"], "o-", ms=3, color="0.2",
                 label="batch 1")
    plotting.label(axes[0], title="Training loss, sigmoid net with BN", xlabel="training step",
                   ylabel="cross-entropy (training batches)")
    plotting.label(axes[1], title="Test accuracy (inference mode)", xlabel="training step",
                   ylabel="test accuracy")
    axes[1].set_ylim(0, 1)
    _caption(fig, bs1, f"Seed {bs1['seed']}, learning rate {bs1['learning_rate']:g}; batch {batch} from the "
                       "main runs. ")
    fig.tight_layout()
    return fig


def plot_inits(inits: results.Record, record: results.Record, cfg: MnistConfig):
    """Figure: test accuracy of the sigmoid net without and with BN for each initialisation (the
    main one from the main runs), mean ± std over seeds, log step axis."""
    import matplotlib.pyplot as plt

    steps = min(cfg.compare_steps, cfg.steps)
    main = truncate(record, steps)
    sources = [(init_label(cfg.init, cfg.init_std), main)]
    sources += [(i, inits) for i in dict.fromkeys(m["init"] for m in inits["models"])]
    fig, axes = plt.subplots(1, len(sources), figsize=(5 * len(sources), 3.8), sharey=True,
                             squeeze=False)
    for ax, (init, src) in zip(axes[0], sources):
        x = np.asarray(src["eval_step"])
        keep = x > 0
        for bn in (False, True):
            idx = select(src, "sigmoid", bn, init)
            plotting.band(ax, x[keep], np.asarray(src["test_accuracy"])[keep][:, idx].T,
                          label=LABELS[bn], color=COLORS[bn])
        ax.set_xscale("log")
        ax.set_ylim(0.5, 1.0)
        lr = src["models"][select(src, "sigmoid", False, init)[0]]["lr"]
        plotting.label(ax, title=f"sigmoid, init {init} (lr {lr:g})",
                       xlabel="training step (log scale)", ylabel="test accuracy")
    _caption(fig, inits if inits["models"] else record, "Mean ± std over seeds. ")
    fig.tight_layout()
    return fig

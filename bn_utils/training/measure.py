"""Measurements of a network during training, kept apart from the training loop.

Each function either reads a model in eval mode under ``torch.inference_mode`` and restores its
mode, or works on a deep copy of it (the gradient-based measurements of chapters 7 and 8), so a
measurement taken from a hook of ``train.fit`` never changes the trajectory. Stochastic layers
(noisy BN) draw from a forked, seeded generator: every forward pass of one measurement sees the
same noise, and the training run's generator is untouched.
"""

from __future__ import annotations

import contextlib
import copy
import math
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

PERCENTILES = (15, 50, 85)


def module_output(model: nn.Module, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Return the output of ``module`` (a submodule of ``model``) when ``model`` runs on ``x`` in eval mode."""
    captured = []
    handle = module.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(x)
    finally:
        handle.remove()
        model.train(was_training)
    return captured[0]


def preactivation_stats(model: nn.Sequential, index: int, x: torch.Tensor, *, unit: int = 0,
                        q: tuple = PERCENTILES) -> dict:
    """Return statistics of the input to the nonlinearity after module ``index``: the layer's mean
    and std over units and examples, and percentiles ``q`` of one ``unit`` over the examples."""
    out = module_output(model, model[index], x).float()
    per_unit = out[:, unit].cpu().numpy()
    stats = {"mean": out.mean().item(), "std": out.std().item()}
    stats.update({f"p{p}": float(v) for p, v in zip(q, np.percentile(per_unit, q))})
    return stats


# ---------------------------------------------------------------------------------------------
# Gradient-based measurements (Santurkar et al. 2018): internal covariate shift and smoothness.
# ``loss_of(model)`` returns the scalar loss of a model on a fixed batch, in training mode.


@contextlib.contextmanager
def exact_fp32() -> Iterator[None]:
    """Turn off TF32 in CUDA matmuls and convolutions for the duration (gradient differences are
    small; TF32's 10-bit mantissa would add noise of the same size), then restore the flags."""
    flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags


def _devices(model: nn.Module) -> list:
    return sorted({p.device.index for p in model.parameters() if p.device.type == "cuda"})


def loss_and_grads(model: nn.Module, loss_of: Callable[[nn.Module], torch.Tensor],
                   params: Sequence[torch.Tensor], seed: int = 0) -> tuple[float, list[torch.Tensor]]:
    """Return ``(loss, d loss / d params)`` of ``loss_of(model)``, with torch's generators forked
    and seeded with ``seed`` (the same seed gives the same noise in stochastic layers)."""
    with torch.random.fork_rng(devices=_devices(model)):
        torch.manual_seed(seed)
        loss = loss_of(model)
        if loss.dtype in (torch.float16, torch.bfloat16):
            loss = loss.float()
        grads = torch.autograd.grad(loss, list(params))
    return loss.item(), [g.detach() for g in grads]


def _working_copy(model: nn.Module) -> tuple[nn.Module, list[nn.Parameter]]:
    work = copy.deepcopy(model)
    work.train()
    for p in work.parameters():
        p.grad = None
    return work, list(work.parameters())


def _flat_norm(tensors: Sequence[torch.Tensor]) -> float:
    return math.sqrt(sum(float(t.double().pow(2).sum()) for t in tensors))


def gradient_ics(model: nn.Module, loss_of: Callable[[nn.Module], torch.Tensor],
                 weights: Sequence[nn.Parameter], lr: float, *, seed: int = 0) -> list[dict]:
    """Return, per parameter in ``weights``, the gradient-based internal covariate shift of
    Santurkar et al.'s Definition 2.1: ``{"l2": ||G - G'||, "cos": cos(G, G'), "norm": ||G||}``.

    G is the gradient of ``loss_of`` with respect to the weight at the current parameters; G' the
    same gradient after every parameter registered *before* it (the earlier layers, in forward
    order) took its plain SGD step ``p - lr * grad`` on the same batch, the later ones unchanged.
    Works on a copy of ``model``.
    """
    order = {id(p): i for i, p in enumerate(model.parameters())}
    missing = [i for i, w in enumerate(weights) if id(w) not in order]
    if missing:
        raise ValueError(f"weights {missing} are not parameters of the model")
    with exact_fp32():
        work, params = _working_copy(model)
        _, grads = loss_and_grads(work, loss_of, params, seed)
        out: dict[int, dict] = {}
        done = 0  # params[:done] hold their updated values
        for k in sorted({order[id(w)] for w in weights}):
            with torch.no_grad():
                for i in range(done, k):
                    params[i].sub_(lr * grads[i])
            done = k
            _, (g_new,) = loss_and_grads(work, loss_of, [params[k]], seed)
            g = grads[k].double().flatten()
            g_new = g_new.double().flatten()
            norms = g.norm() * g_new.norm()
            cos = float(g @ g_new / norms) if norms > 0 else float("nan")
            out[k] = {"l2": float((g - g_new).norm()), "cos": cos, "norm": float(g.norm())}
    return [out[order[id(w)]] for w in weights]


def gradient_landscape(model: nn.Module, loss_of: Callable[[nn.Module], torch.Tensor],
                       step_sizes: Sequence[float], *, seed: int = 0) -> dict:
    """Walk from the current parameters x along the negative gradient g and return what
    Santurkar et al. (Sec. 3.2, App. A.2.2) measure there, for each step size eta:

    ``losses``: L(w - eta g); ``grad_diffs``: ||grad L(w - eta g) - g||; and ``smoothness``, the
    "effective" smoothness constant (the paper's beta, the book's lambda)
    max_eta ||grad L(w - eta g) - g|| / ||eta g||; plus ``loss``
    = L(w) and ``grad_norm`` = ||g||. All over all parameters; works on a copy of ``model``.
    """
    steps = [float(s) for s in step_sizes]
    if not steps or any(not (s > 0) for s in steps):
        raise ValueError(f"step_sizes={step_sizes!r} must be positive numbers")
    with exact_fp32():
        work, params = _working_copy(model)
        loss0, g = loss_and_grads(work, loss_of, params, seed)
        g_norm = _flat_norm(g)
        start = [p.detach().clone() for p in params]
        losses, diffs = [], []
        for eta in steps:
            with torch.no_grad():
                for p, p0, gi in zip(params, start, g):
                    p.copy_(p0 - eta * gi)
            loss, g_new = loss_and_grads(work, loss_of, params, seed)
            losses.append(loss)
            diffs.append(_flat_norm([a - b for a, b in zip(g_new, g)]))
    ratios = [d / (eta * g_norm) if g_norm > 0 else float("nan") for d, eta in zip(diffs, steps)]
    finite = [r for r in ratios if math.isfinite(r)]
    return {"loss": loss0, "grad_norm": g_norm, "losses": losses, "grad_diffs": diffs,
            "smoothness": max(finite) if finite else float("nan")}


def train_mode_activations(model: nn.Module, modules: Sequence[nn.Module], x: torch.Tensor, *,
                           units: Sequence[int], q: Sequence[float] = (5, 15, 50, 85, 95),
                           seed: int = 0) -> list[dict]:
    """Return, per module in ``modules``, statistics of its output when a copy of ``model`` runs
    on ``x`` in training mode (batch statistics, noise on, drawn with ``seed``): ``percentiles``
    ``q`` of unit ``units[i]`` over the examples (and pixels), and every unit's ``mean`` and ``var``."""
    if len(units) != len(modules):
        raise ValueError("give one unit per module")
    index = {id(m): i for i, m in enumerate(model.modules())}
    work = copy.deepcopy(model)
    work.train()
    copies = list(work.modules())
    captured: dict[int, torch.Tensor] = {}
    handles = [copies[index[id(m)]].register_forward_hook(
        lambda _m, _i, out, k=k: captured.__setitem__(k, out.detach()))
        for k, m in enumerate(modules)]
    try:
        with torch.random.fork_rng(devices=_devices(model)), torch.no_grad():
            torch.manual_seed(seed)
            work(x)
    finally:
        for h in handles:
            h.remove()
    stats = []
    for k, unit in enumerate(units):
        out = captured[k].float()
        per_unit = out.movedim(1, 0).reshape(out.shape[1], -1)   # units × (examples, pixels)
        values = per_unit[unit].cpu().numpy()
        stats.append({"percentiles": [float(v) for v in np.percentile(values, q)],
                      "mean": per_unit.mean(1).cpu().tolist(),
                      "var": per_unit.var(1, unbiased=False).cpu().tolist()})
    return stats

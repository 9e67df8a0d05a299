"""Sections 1 and 2 of chapter 02: what training-mode BN reduces over (1d: the batch; 2d: the
batch and every position), that it really gives zero mean and unit variance per feature, that γ
and β can undo it; and our module (``bn_utils.nn.norms``) against torch's."""

from __future__ import annotations

import torch
from torch import nn

from ... import data, runtime
from ...nn import norms
from .config import ForwardConfig, channel_stats, one_thread


def normalisation_rows(cfg: ForwardConfig) -> list[dict]:
    """Return, for a dense (N, D) and a convolutional (N, C, H, W) input made from one real MNIST
    batch, what BN reduces over and each feature's mean and std before and after train-mode BN."""
    x_tr, _, _, _ = data.tensors("mnist", n_train=cfg.n_train, n_test=10, seed=cfg.seed)
    images = x_tr[: cfg.batch_size]
    runtime.seed_everything(cfg.seed)
    with torch.no_grad():
        dense = nn.Linear(784, cfg.hidden[0], bias=False)(images.flatten(1))
        conv = nn.Conv2d(1, 8, 5, bias=False)(images)
    rows = []
    for name, x, bn, reduced in (("BatchNorm1d", dense, norms.BatchNorm1d(dense.shape[1]), "N"),
                                 ("BatchNorm2d", conv, norms.BatchNorm2d(conv.shape[1]),
                                  "N, H, W")):
        with torch.no_grad():
            out = bn.train()(x)
        mean_in, std_in = channel_stats(x)
        mean_out, std_out = channel_stats(out)
        rows.append({
            "layer": name, "input shape": "×".join(map(str, x.shape)),
            "statistics shape": f"({x.shape[1]},)", "reduced over": reduced,
            "values per statistic": x.numel() // x.shape[1],
            "mean before (range)": f"{mean_in.min():.2f} … {mean_in.max():.2f}",
            "std before (range)": f"{std_in.min():.2f} … {std_in.max():.2f}",
            "max |mean| after": mean_out.abs().max().item(),
            "max |std − 1| after": (std_out - 1).abs().max().item(),
        })
    return rows


def identity_check(cfg: ForwardConfig) -> float:
    """Return max |BN(x) − x| for BN with γ = sqrt(σ²_B + ε) and β = μ_B: BN can be the identity."""
    gen = torch.Generator().manual_seed(cfg.seed)
    x = 3.0 * torch.randn(cfg.batch_size, 7, generator=gen, dtype=torch.float64) + 1.5
    bn = norms.BatchNorm1d(7, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(torch.sqrt(x.var(0, correction=0) + bn.eps))
        bn.bias.copy_(x.mean(0))
        return (bn.train()(x) - x).abs().max().item()


COMPARISON_CASES = (  # (module, input shape, dtype, momentum)
    ("BatchNorm1d", (16, 10), torch.float32, 0.1),
    ("BatchNorm2d", (8, 6, 12, 12), torch.float32, 0.1),
    ("BatchNorm1d", (16, 10), torch.float32, None),
    ("BatchNorm2d", (8, 6, 12, 12), torch.float64, 0.1),
)


def compare_with_torch(module: str, shape: tuple, dtype: torch.dtype, momentum: float | None,
                       steps: int, seed: int = 0) -> dict:
    """Return the largest |ours − torch| of every quantity over ``steps`` SGD steps of one BN
    layer on random inputs, then in eval mode: outputs, ∂L/∂x, ∂L/∂γ, ∂L/∂β, running stats."""
    gen = torch.Generator().manual_seed(seed)
    c = shape[1]
    ours = getattr(norms, module)(c, momentum=momentum, dtype=dtype)
    ref = getattr(nn, module)(c, momentum=momentum, dtype=dtype)
    with torch.no_grad():  # a non-trivial γ, β, the same in both
        gamma, beta = 1 + 0.5 * torch.randn(c, generator=gen), 0.5 * torch.randn(c, generator=gen)
        for m in (ours, ref):
            m.weight.copy_(gamma)
            m.bias.copy_(beta)
    opt_ours = torch.optim.SGD(ours.parameters(), lr=0.1)
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.1)
    worst = dict.fromkeys(("output", "∂L/∂x", "∂L/∂γ", "∂L/∂β", "running mean", "running var",
                           "eval output"), 0.0)

    def note(key, a, b):
        worst[key] = max(worst[key], (a - b).abs().max().item())

    for _ in range(steps):
        # Inputs far from standard (mean 2, std 3), so normalising has work to do.
        x = (2 + 3 * torch.randn(shape, generator=gen)).to(dtype)
        dout = torch.randn(shape, generator=gen).to(dtype)
        outs, grads = [], []
        for m, opt in ((ours, opt_ours), (ref, opt_ref)):
            xi = x.clone().requires_grad_(True)
            out = m.train()(xi)
            opt.zero_grad()
            out.backward(dout)
            outs.append(out.detach())
            grads.append((xi.grad, m.weight.grad.clone(), m.bias.grad.clone()))
            opt.step()
        note("output", *outs)
        for key, a, b in zip(("∂L/∂x", "∂L/∂γ", "∂L/∂β"), *grads):
            note(key, a, b)
        note("running mean", ours.running_mean, ref.running_mean)
        note("running var", ours.running_var, ref.running_var)
    x = (2 + 3 * torch.randn(shape, generator=gen)).to(dtype)
    with torch.no_grad():
        note("eval output", ours.eval()(x), ref.eval()(x))
    return worst


@one_thread
def torch_comparison_rows(cfg: ForwardConfig) -> list[dict]:
    """Return one row per case of ``COMPARISON_CASES``: the largest |ours − torch| per quantity."""
    rows = []
    for module, shape, dtype, momentum in COMPARISON_CASES:
        diffs = compare_with_torch(module, shape, dtype, momentum, cfg.compare_steps, cfg.seed)
        rows.append({"module": module, "input": "×".join(map(str, shape)),
                     "dtype": str(dtype).removeprefix("torch."), "momentum": f"momentum={momentum}",
                     **diffs})
    return rows

"""Chapter 03: the backward pass of BN, checked three ways and timed.

Everything here is pure: arrays in, tables out. The maths lives in ``bn_utils.norms``; this
module only arranges the checks (finite differences, gradcheck) and the timings the chapter shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from .. import checks, norms
from ..profiles import SEED_MAX, WIDTH_MAX, Config, param
from ..runtime import median_seconds

CHAPTER = "03_backprop"
# Shapes (N, D) that break things: not square, N = 2 (the smallest batch BN accepts), D = 1.
# With N = 2 a feature always normalises to about ±1, so dL/dx is of the order of eps: the check
# of that case uses eps = 1, where the gradient is not degenerate.
CHECK_CASES = (((4, 5), None), ((2, 3), 1.0), ((7, 1), None), ((16, 10), None))


@dataclass(frozen=True)
class BackpropConfig(Config):
    """What the chapter checks and times (the maths does not depend on a profile; the timing does)."""

    seed: int = param(0, "seed of the random inputs and upstream gradients", min=0, max=SEED_MAX)
    eps: float = param(1e-5, "BN's epsilon", min=0.0, max=1.0)
    timing_shape: tuple = param((256, 4096), "(N, D) of the timed batch", item_min=2, max=WIDTH_MAX)
    timing_repeats: int = param(50, "timed repetitions (the median is reported)", min=1, max=10_000)

    PROFILES: ClassVar[dict] = {
        "full": {},
        # the paper's protocol fits the 2-core CPU: the book shows the stored full record
        "reference": {},
        "quick": {},
        "smoke": {"timing_shape": (64, 256), "timing_repeats": 5},
    }


def _case(shape: tuple, seed: int, scale: float = 3.0):
    """Return float64 x, gamma, beta and a random upstream gradient (never all ones)."""
    rng = np.random.default_rng(seed)
    n, d = shape
    x = rng.normal(2.0, scale, (n, d))
    gamma, beta = rng.normal(1.0, 0.5, d), rng.normal(0.0, 0.5, d)
    return x, gamma, beta, rng.normal(size=(n, d))


def gradient_check_rows(cfg: BackpropConfig) -> list[dict]:
    """Return, per case, the relative errors of the closed-form backward against central finite
    differences (element-wise, CS231n's measure, and of the whole array), and its largest
    difference to the step-by-step backward."""
    rows = []
    for shape, eps in CHECK_CASES:
        eps = cfg.eps if eps is None else eps
        x, gamma, beta, dout = _case(shape, cfg.seed, scale=3.0 if eps == cfg.eps else 1.0)
        _, cache = norms.batchnorm_forward(x, gamma, beta, eps)
        closed = norms.batchnorm_backward(dout, cache)
        naive = norms.batchnorm_backward_naive(dout, cache)
        numeric = (
            checks.numerical_gradient(lambda v: norms.batchnorm_forward(v, gamma, beta, eps)[0], x, dout),
            checks.numerical_gradient(lambda v: norms.batchnorm_forward(x, v, beta, eps)[0], gamma, dout),
            checks.numerical_gradient(lambda v: norms.batchnorm_forward(x, gamma, v, eps)[0], beta, dout),
        )
        row = {"N × D": f"{shape[0]} × {shape[1]}", "ε": eps}
        for name, i in (("dx", 0), ("dγ", 1), ("dβ", 2)):
            row[f"{name} element-wise"] = checks.rel_error(closed[i], numeric[i])
            row[f"{name} whole"] = checks.norm_rel_error(closed[i], numeric[i])
        row["closed vs naive"] = max(checks.rel_error(a, b) for a, b in zip(closed, naive))
        rows.append(row)
    return rows


def gradient_projection(cfg: BackpropConfig, shape: tuple = (8, 3), eps: float = 0.0) -> dict:
    """Return per-feature sums of dx and of dx·x̂ and the largest |dx|. Both sums vanish for
    eps = 0 (BN's gradient is orthogonal to a shift and to a rescaling of each feature across the
    batch); with eps > 0 the second is a fraction eps / (var + eps) of the gradient's scale."""
    x, gamma, beta, dout = _case(shape, cfg.seed)
    _, cache = norms.batchnorm_forward(x, gamma, beta, eps)
    dx, _, _ = norms.batchnorm_backward(dout, cache)
    xhat = (x - x.mean(0)) / np.sqrt(x.var(0) + eps)
    return {"sum_dx": np.abs(dx.sum(0)).max(), "sum_dx_xhat": np.abs((dx * xhat).sum(0)).max(),
            "scale": np.abs(dx).max()}


def autograd_checks(cfg: BackpropConfig) -> list[dict]:
    """Return gradcheck / gradgradcheck verdicts of ``BatchNormFunction`` and its largest
    difference to autograd through ``F.batch_norm``, for a dense and a convolutional input."""
    rows = []
    gen = torch.Generator().manual_seed(cfg.seed)
    for shape in ((4, 5), (2, 3, 4, 5)):
        x = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
        c = shape[1]
        gamma = torch.randn(c, generator=gen, dtype=torch.float64, requires_grad=True)
        beta = torch.randn(c, generator=gen, dtype=torch.float64, requires_grad=True)

        def fn(a, g, b):
            return norms.BatchNormFunction.apply(a, g, b, cfg.eps)

        dout = torch.randn(shape, generator=gen, dtype=torch.float64)
        ours = torch.autograd.grad(fn(x, gamma, beta), (x, gamma, beta), dout)
        ref_out = F.batch_norm(x, None, None, gamma, beta, training=True, eps=cfg.eps)
        ref = torch.autograd.grad(ref_out, (x, gamma, beta), dout)
        rows.append({
            "input": "×".join(map(str, shape)),
            "gradcheck": torch.autograd.gradcheck(fn, (x, gamma, beta)),
            "gradgradcheck": torch.autograd.gradgradcheck(fn, (x, gamma, beta)),
            "max |ours − torch|": max((a - b).abs().max().item() for a, b in zip(ours, ref)),
        })
    return rows


def jacobian(n: int = 8, seed: int = 0, eps: float = 1e-5) -> np.ndarray:
    """Return ∂y_i/∂x_j of one feature over a batch of ``n`` (γ = 1): (I − 1/n − x̂x̂ᵀ/n)/σ."""
    x = torch.from_numpy(np.random.default_rng(seed).normal(size=(n, 1)))
    jac = torch.autograd.functional.jacobian(
        lambda v: F.batch_norm(v, None, None, training=True, eps=eps), x)
    return jac[:, 0, :, 0].numpy()


def _naive_torch_bn(x, gamma, beta, eps):
    """BN written as plain tensor ops, so autograd traces every intermediate (the baseline)."""
    mu = x.mean(0)
    var = ((x - mu) ** 2).mean(0)
    xhat = (x - mu) / torch.sqrt(var + eps)
    return gamma * xhat + beta


def timing_rows(cfg: BackpropConfig) -> list[dict]:
    """Return the median time of one forward+backward for three implementations (printed, not
    asserted: timings depend on the machine)."""
    n, d = cfg.timing_shape
    gen = torch.Generator().manual_seed(cfg.seed)
    x = torch.randn(n, d, generator=gen, requires_grad=True)
    gamma = torch.ones(d, requires_grad=True)
    beta = torch.zeros(d, requires_grad=True)
    dout = torch.randn(n, d, generator=gen)
    impls = {
        "autograd through plain tensor ops": lambda: _naive_torch_bn(x, gamma, beta, cfg.eps),
        "BatchNormFunction (closed-form backward)":
            lambda: norms.BatchNormFunction.apply(x, gamma, beta, cfg.eps),
        "torch F.batch_norm (fused kernel)":
            lambda: F.batch_norm(x, None, None, gamma, beta, training=True, eps=cfg.eps),
    }
    rows = []
    for name, forward in impls.items():
        seconds = median_seconds(lambda: torch.autograd.grad(forward(), (x, gamma, beta), dout),
                                  cfg.timing_repeats)
        rows.append({"implementation": name, "forward + backward (ms)": seconds * 1e3})
    base = rows[0]["forward + backward (ms)"]
    for row in rows:
        row["speed-up vs autograd"] = base / row["forward + backward (ms)"]
    x_np, g_np, b_np, d_np = _case((n, d), cfg.seed)
    _, cache = norms.batchnorm_forward(x_np, g_np, b_np, cfg.eps)
    for name, backward in (("NumPy naive (chain rule step by step)", norms.batchnorm_backward_naive),
                           ("NumPy closed form", norms.batchnorm_backward)):
        seconds = median_seconds(lambda: backward(d_np, cache), cfg.timing_repeats)
        rows.append({"implementation": name + ", backward only", "forward + backward (ms)": seconds * 1e3,
                     "speed-up vs autograd": None})
    return rows


def plot_jacobian(jac: np.ndarray, caption: str):
    """Figure: the Jacobian of one feature's BN output over a batch, as a heat map."""
    import matplotlib.pyplot as plt

    from .. import plotting

    fig, ax = plt.subplots(figsize=(4.6, 4))
    lim = np.abs(jac).max()
    im = ax.imshow(jac, cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.colorbar(im, ax=ax, label="∂y_i / ∂x_j")
    plotting.label(ax, title="BN couples the examples of a batch", xlabel="input example j",
                   ylabel="output example i", legend=False)
    ax.grid(False)
    plotting.caption(fig, caption)
    fig.tight_layout()
    return fig

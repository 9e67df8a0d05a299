"""Chapter 03: the backward pass of BN, checked three ways and timed.

Everything here is pure: arrays in, tables out. The maths lives in ``bn_utils.nn.norms``; this
module only arranges the checks (finite differences, gradcheck) and the timings the chapter shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ..training import checks
from ..nn import norms
from ..book.profiles import SEED_MAX, WIDTH_MAX, Config, param
from ..runtime import median_seconds

CHAPTER = "03_backprop"
# Shapes (N, D) that break things: not square, N = 2 (the smallest batch BN accepts), D = 1.
# With N = 2 a feature always normalises to about ±1, so dL/dx is of the order of eps: the check
# of that case uses eps = 1, where the gradient is not degenerate.
CHECK_CASES = (((4, 5), None), ((7, 1), None), ((2, 3), 1.0), ((16, 10), None))  # the chapter's order


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
    """Return the median time (``median ms``) of one forward+backward of an (N, D) =
    ``cfg.timing_shape`` batch for three torch implementations, and of the backward alone for the
    two NumPy ones (``timed`` says which; printed, not asserted: timings depend on the machine)."""
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
        rows.append({"implementation": name, "timed": "forward + backward", "median ms": seconds * 1e3})
    base = rows[0]["median ms"]
    for row in rows:
        row["speed-up vs autograd"] = base / row["median ms"]
    x_np, g_np, b_np, d_np = _case((n, d), cfg.seed)
    _, cache = norms.batchnorm_forward(x_np, g_np, b_np, cfg.eps)
    for name, backward in (("NumPy naive (chain rule step by step)", norms.batchnorm_backward_naive),
                           ("NumPy closed form", norms.batchnorm_backward)):
        seconds = median_seconds(lambda: backward(d_np, cache), cfg.timing_repeats)
        rows.append({"implementation": name, "timed": "backward only", "median ms": seconds * 1e3,
                     "speed-up vs autograd": None})
    return rows


def speed_words(speedup: float) -> str:
    """Return a speed-up (time of the reference over time of the method) as words that stay true
    either way: "2.1× faster than" or, below one, "1.5× slower than"."""
    if not speedup > 0:
        raise ValueError(f"speed-up {speedup} must be positive")
    return f"{speedup:.1f}× faster than" if speedup >= 1 else f"{1 / speedup:.1f}× slower than"


def plot_jacobian(jac: np.ndarray):
    """Figure: the Jacobian of one feature's BN output over a batch, as a heat map."""
    from ..book import plotting

    fig, (ax,) = plotting.panels(1, height=3.6)
    lim = np.abs(jac).max()
    im = ax.imshow(jac, cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.colorbar(im, ax=ax, label=r"$\partial y_i / \partial x_j$")
    n = len(jac)
    ax.set_xticks(range(n), [str(j + 1) for j in range(n)])
    ax.set_yticks(range(n), [str(i + 1) for i in range(n)])
    plotting.label(ax, title="BN couples the examples of a batch", xlabel="input example j",
                   ylabel="output example i", legend=False)
    ax.grid(False)
    plotting.note(fig, f"One feature, a batch of {n} standard normal values, γ = 1; autograd "
                       "through F.batch_norm.")
    return fig


# The computational graph of one feature's BN, drawn with forward values and backward gradients.
GRAPH_EXAMPLE = {"x": (1.0, 2.0, 6.0), "gamma": 2.0, "beta": 0.5, "dout": (0.5, -1.0, 0.25)}
_NODES = {  # name: (label, position in the drawing)
    "x": ("$x$", (0.3, 3.6)), "mu": (r"$\mu$", (1.6, 5.8)), "xc": (r"$x - \mu$", (3.4, 3.6)),
    "var": (r"$\sigma^2$", (3.6, 1.0)), "std": (r"$\sigma$", (6.3, 1.0)),
    "xhat": (r"$\hat x$", (6.3, 3.6)), "gamma": (r"$\gamma$", (7.9, 5.8)),
    "beta": (r"$\beta$", (10.2, 5.8)), "y": ("$y$", (9.2, 3.6)), "L": ("$L$", (9.2, 1.0)),
}
_OPS = ("μ = mean(x),   σ² = mean((x − μ)²),\nσ = √(σ² + ε),   x̂ = (x − μ) / σ,   y = γx̂ + β")
# (from, to, where the labels go, how far along the edge): the forward value on the edge is ``from``'s; the gradient is
# what flows back along it to ``from`` (a node's total gradient is the sum over its out-edges).
_EDGES = (("x", "mu", "left", 0.5), ("x", "xc", "above", 0.45), ("mu", "xc", "right", 0.5),
          ("xc", "var", "right", 0.5), ("xc", "xhat", "above", 0.55), ("var", "std", "above", 0.5),
          ("std", "xhat", "right", 0.5), ("xhat", "y", "above", 0.5), ("gamma", "y", "left", 0.5),
          ("beta", "y", "right", 0.5), ("y", "L", "left", 0.75))


def graph_values(x=GRAPH_EXAMPLE["x"], gamma=GRAPH_EXAMPLE["gamma"], beta=GRAPH_EXAMPLE["beta"],
                 dout=GRAPH_EXAMPLE["dout"], eps: float = 1e-5) -> dict:
    """Return, for one feature over a small batch, each node's forward value (``value``), each
    edge's backward gradient (``edge``: what flows back along it, (from, to) keyed) and each
    input's total gradient (``grad``), computed node by node as in the chapter's staged code."""
    x, dout = np.asarray(x, dtype=float), np.asarray(dout, dtype=float)
    n = len(x)
    mu = x.mean()
    xc = x - mu
    var = (xc ** 2).mean()
    std = np.sqrt(var + eps)
    xhat = xc / std
    y = gamma * xhat + beta
    dxhat = gamma * dout
    dstd = -(dxhat * xc).sum() / std ** 2
    dvar = dstd / (2 * std)
    dxc_via_xhat, dxc_via_var = dxhat / std, 2 * xc * dvar / n
    dxc = dxc_via_xhat + dxc_via_var
    dmu = -dxc.sum()
    edge = {("x", "mu"): np.full(n, dmu / n), ("x", "xc"): dxc, ("mu", "xc"): dmu,
            ("xc", "var"): dxc_via_var, ("xc", "xhat"): dxc_via_xhat, ("var", "std"): dvar,
            ("std", "xhat"): dstd, ("xhat", "y"): dxhat, ("gamma", "y"): (dout * xhat).sum(),
            ("beta", "y"): dout.sum(), ("y", "L"): dout}
    value = {"x": x, "mu": mu, "xc": xc, "var": var, "std": std, "xhat": xhat, "gamma": gamma,
             "beta": beta, "y": y}
    grad = {"x": dxc + dmu / n, "gamma": edge["gamma", "y"], "beta": edge["beta", "y"]}
    return {"value": value, "edge": edge, "grad": grad, "eps": eps}


def _short(v) -> str:
    """Return a value as short text: a number to 2 decimals, a vector in parentheses."""
    def one(a: float) -> str:
        text = f"{a:.2f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text.replace("-", "−")
    v = np.asarray(v, dtype=float)
    return one(float(v)) if v.ndim == 0 else "(" + ", ".join(one(a) for a in v) + ")"


def plot_graph(values: dict):
    """Figure: the computational graph of BN's forward pass for one feature; on every edge the
    value flowing forward (black) and the gradient of the loss flowing back (red)."""
    from ..book import plotting

    fig, (ax,) = plotting.panels(1, height=4.8)
    ax.set_xlim(-0.2, 10.4)
    ax.set_ylim(0.0, 6.4)
    ax.axis("off")
    red, box = plotting.PALETTE["bn"], dict(boxstyle="round,pad=0.35", fc="#f4f4f4", ec="0.4")
    patches = {}
    for name, (label, (px, py)) in _NODES.items():
        patches[name] = ax.text(px, py, label, ha="center", va="center", fontsize=12, bbox=box,
                                zorder=3)
    ax.text(10.4, 0.05, _OPS, ha="right", va="bottom", fontsize=10, color="0.3", linespacing=1.5)
    fig.canvas.draw()   # the boxes' sizes, so that arrows end at their borders
    for a, b, side, along in _EDGES:
        (xa, ya), (xb, yb) = _NODES[a][1], _NODES[b][1]
        ax.annotate("", xy=(xb, yb), xytext=(xa, ya), zorder=1,
                    arrowprops=dict(arrowstyle="-|>", color="0.3", lw=1.2, mutation_scale=14,
                                    patchA=patches[a].get_bbox_patch(),
                                    patchB=patches[b].get_bbox_patch()))
        mx, my = xa + along * (xb - xa), ya + along * (yb - ya)
        fwd, bwd = _short(values["value"][a]), _short(values["edge"][a, b])
        if side == "above":
            # above and below the boxes' height, so that a label may reach past a box's side
            spots = ((mx, my + 0.26, "center", "bottom"), (mx, my - 0.26, "center", "top"))
        else:
            off, ha = (0.15, "left") if side == "right" else (-0.15, "right")
            spots = ((mx + off, my + 0.05, ha, "bottom"), (mx + off, my - 0.05, ha, "top"))
        for text, color, (tx, ty, ha, va) in zip((fwd, bwd), ("black", red), spots):
            ax.text(tx, ty, text, ha=ha, va=va, fontsize=10, color=color, zorder=2)
    px, py = _NODES["x"][1]
    ax.text(px - 0.5, py - 0.8, r"$\partial L/\partial x$ = " + _short(values["grad"]["x"]),
            ha="left", va="top", color=red, fontsize=10)
    ax.text(-0.2, 0.05, "black: the value flowing forward\nred: the gradient of $L$ flowing back",
            fontsize=10, color="0.25", ha="left", va="bottom")
    plotting.note(fig, f"One feature over a batch of {len(values['value']['x'])}; "
                       f"γ = {values['value']['gamma']:g}, β = {values['value']['beta']:g}, "
                       f"ε = {values['eps']:g}; the upstream gradient ∂L/∂y is the red vector on "
                       "the last edge.")
    return fig

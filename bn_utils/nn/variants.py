"""Normalisation layers that Santurkar et al. (2018) use to pull BN's effects apart.

* :class:`ActivationNoise`: the paper's time-varying noise (its Algorithm 1). At every forward
  pass in training mode, each unit j draws the parameters of a fresh distribution,
  ``mu_j ~ U(-n_mu, n_mu)`` and ``sigma_j ~ U(1, n_sigma)``; every activation a of that unit (every
  example, and for convolutions every pixel: height and width count as batch) is then replaced
  by ``s * a + m`` with ``m ~ U(mu_j - r_mu, mu_j + r_mu)`` and ``s ~ N(sigma_j, r_sigma)``
  (``r_sigma`` read as a standard deviation). The identity in eval mode.
* :class:`NoisyBatchNorm1d`/``2d``: torch's BN followed by that noise ("noisy BN"); in eval
  mode exactly BN.
* :class:`LpNorm`: centre each unit over the batch as BN does, then divide by an ℓp statistic
  of the centred activations instead of the standard deviation (p = 1, 2, ∞).

The paper describes the ℓp layers in one sentence; our reading of it (``over="layer"``, the
default) is: for every example (for convolutions: every pixel of every example) take the ℓp
norm of its centred activation vector over the units, and divide the layer by the average of
these norms over the batch. We use the *mean-normalised* norm ``(mean_j |c_j|^p)^(1/p)`` (and
``max_j |c_j|`` for p = ∞), which differs from the plain norm by the constant ``d^(1/p)`` and keeps
activations of order one, like BN's. One scalar per layer: unlike BN, the scale of each unit is
not controlled, which is the point of the paper's comparison. ``over="unit"`` is the other
reading (a per-unit statistic over the batch); for p = 2 it is BN itself.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# The paper's noise constants (Appendix A.2.1), the defaults of every noisy layer here and of
# chapter 7's configuration (NoiseConfig.noise_*)
N_MU, N_SIGMA, R_MU, R_SIGMA = 0.5, 1.25, 0.1, 0.1
LP_NORMS = {"l1": 1.0, "l2": 2.0, "linf": math.inf}
# the layers chapters 7 and 8 compare (built by name with bn_utils.nn.registry.make_norm)
NORM_NAMES = ("none", "bn", "noisy_bn", "noise", *LP_NORMS)


def activation_noise(a: torch.Tensor, *, n_mu: float = N_MU, n_sigma: float = N_SIGMA,
                     r_mu: float = R_MU, r_sigma: float = R_SIGMA) -> torch.Tensor:
    """Return ``s * a + nu`` for ``a`` of shape (N, C, ...), chapter 07's notation: per unit (dim 1)
    a fresh centre ``nu_bar ~ U(-n_mu, n_mu)`` and scale ``s_bar ~ U(1, n_sigma)``, per element a
    shift ``nu ~ U(nu_bar ± r_mu)`` and scale ``s ~ N(s_bar, r_sigma)`` (the constants keep the
    paper's names). Draws from torch's global generator of ``a``'s device."""
    if a.ndim < 2:
        raise ValueError(f"activation_noise needs (N, C, ...) input, got shape {tuple(a.shape)}")
    unit_shape = (1, a.shape[1]) + (1,) * (a.ndim - 2)
    opts = {"device": a.device, "dtype": a.dtype}
    nu_bar = torch.empty(unit_shape, **opts).uniform_(-n_mu, n_mu)
    s_bar = torch.empty(unit_shape, **opts).uniform_(1.0, n_sigma)
    nu = nu_bar + torch.empty_like(a).uniform_(-r_mu, r_mu)
    s = s_bar + r_sigma * torch.randn_like(a)
    return s * a + nu


class ActivationNoise(nn.Module):
    """The paper's time-varying, non-zero-mean, non-unit-variance noise; identity in eval mode."""

    def __init__(self, num_features: int | None = None, *, n_mu: float = N_MU,
                 n_sigma: float = N_SIGMA, r_mu: float = R_MU, r_sigma: float = R_SIGMA):
        super().__init__()
        if n_mu < 0 or n_sigma < 1 or r_mu < 0 or r_sigma < 0:
            raise ValueError(f"noise needs n_mu >= 0, n_sigma >= 1, r_mu >= 0, r_sigma >= 0; got "
                             f"{n_mu}, {n_sigma}, {r_mu}, {r_sigma}")
        self.num_features = num_features
        self.noise = {"n_mu": n_mu, "n_sigma": n_sigma, "r_mu": r_mu, "r_sigma": r_sigma}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the perturbed activations (training) or ``x`` itself (eval)."""
        return activation_noise(x, **self.noise) if self.training else x

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.noise.items())


class _NoisyBN:
    """BN's output, then :func:`activation_noise` in training mode."""

    def _init_noise(self, n_mu, n_sigma, r_mu, r_sigma) -> None:
        ActivationNoise(n_mu=n_mu, n_sigma=n_sigma, r_mu=r_mu, r_sigma=r_sigma)  # validates
        self.noise = {"n_mu": n_mu, "n_sigma": n_sigma, "r_mu": r_mu, "r_sigma": r_sigma}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return activation_noise(out, **self.noise) if self.training else out


class NoisyBatchNorm1d(_NoisyBN, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` (same arguments, buffers and eval output) plus the paper's noise."""

    def __init__(self, num_features: int, *, n_mu: float = N_MU, n_sigma: float = N_SIGMA,
                 r_mu: float = R_MU, r_sigma: float = R_SIGMA, **bn_kwargs):
        nn.BatchNorm1d.__init__(self, num_features, **bn_kwargs)
        self._init_noise(n_mu, n_sigma, r_mu, r_sigma)


class NoisyBatchNorm2d(_NoisyBN, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` (same arguments, buffers and eval output) plus the paper's noise."""

    def __init__(self, num_features: int, *, n_mu: float = N_MU, n_sigma: float = N_SIGMA,
                 r_mu: float = R_MU, r_sigma: float = R_SIGMA, **bn_kwargs):
        nn.BatchNorm2d.__init__(self, num_features, **bn_kwargs)
        self._init_noise(n_mu, n_sigma, r_mu, r_sigma)


def lp_scale(c: torch.Tensor, p: float, over: str = "layer") -> torch.Tensor:
    """Return the ℓp statistic of centred activations ``c`` (N, C, ...): ``over="layer"``: the
    batch average of each example's mean-normalised ℓp norm over units (shape (1,)); ``"unit"``:
    each unit's mean-normalised ℓp norm over the batch (shape (C,))."""
    if over == "layer":
        flat = c.movedim(1, -1).reshape(-1, c.shape[1])       # examples (and pixels) × units
        dim = 1
    elif over == "unit":
        flat = c.movedim(1, 0).reshape(c.shape[1], -1)         # units × examples (and pixels)
        dim = 1
    else:
        raise ValueError(f"over={over!r} must be 'layer' or 'unit'")
    if math.isinf(p):
        norms = flat.abs().amax(dim)
    else:
        norms = flat.abs().pow(p).mean(dim).pow(1.0 / p)
    return norms.mean().reshape(1) if over == "layer" else norms


class LpNorm(nn.Module):
    """Centre each unit over the batch, divide by an ℓp statistic (:func:`lp_scale`), then the
    affine ``gamma * x + beta``; running averages of the mean and the scale are used in eval mode.
    Works for (N, C) and (N, C, H, W) inputs."""

    def __init__(self, num_features: int, p: float, *, over: str = "layer", eps: float = 1e-5,
                 momentum: float = 0.1, affine: bool = True):
        super().__init__()
        if not (p >= 1):
            raise ValueError(f"p={p!r} must be >= 1 (1, 2 or inf)")
        if over not in ("layer", "unit"):
            raise ValueError(f"over={over!r} must be 'layer' or 'unit'")
        self.num_features, self.p, self.over, self.eps, self.momentum = num_features, p, over, eps, momentum
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_scale", torch.ones(1 if over == "layer" else num_features))
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the ℓp-normalised ``x`` (batch statistics in training, running ones in eval)."""
        if x.ndim < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"expected (N, {self.num_features}, ...) input, got {tuple(x.shape)}")
        shape = (1, -1) + (1,) * (x.ndim - 2)
        dims = [0, *range(2, x.ndim)]
        if self.training:
            mean = x.mean(dims)
            c = x - mean.view(shape)
            scale = lp_scale(c, self.p, self.over)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
                self.running_scale.lerp_(scale.detach().to(self.running_scale.dtype), self.momentum)
        else:
            c = x - self.running_mean.view(shape).to(x.dtype)
            scale = self.running_scale.to(x.dtype)
        scale_shape = shape if self.over == "unit" else (1,) * x.ndim
        out = c / (scale.view(scale_shape) + self.eps)
        if self.weight is not None:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out

    def extra_repr(self) -> str:
        return f"{self.num_features}, p={self.p}, over={self.over!r}, eps={self.eps}"

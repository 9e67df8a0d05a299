"""Alternatives to BN that chapter 9 compares: Batch Renormalization, RMSNorm, GroupNorm/LayerNorm.

* :class:`BatchRenorm` (Ioffe 2017): BN whose training-mode output is corrected towards the
  running statistics. With the batch's mean ``mu_B`` and standard deviation ``sigma_B`` and the
  running ones ``mu``, ``sigma = sqrt(running_var + eps)``::

      r = clip(sigma_B / sigma, 1/rmax, rmax),   d = clip((mu_B - mu) / sigma, -dmax, dmax)
      y = gamma * ((x - mu_B) / sigma_B * r + d) + beta

  ``r`` and ``d`` are treated as constants by backpropagation (the paper's ``stop_gradient``).
  With ``rmax = 1, dmax = 0`` it is BN; with unbounded limits its training output equals the
  evaluation output. Running statistics follow PyTorch's BN (momentum convention, unbiased
  variance), and ``rmax``/``dmax`` grow from 1 and 0 to their limits on a schedule counted in
  the layer's own training steps (``num_batches_tracked``): BN for ``warmup_steps``, then a
  linear ramp over ``ramp_steps``, as in the paper (which keeps BN for 5k steps and ramps over
  tens of thousands).
* :class:`RMSNorm`: divide by the root mean square over every non-batch dimension (no centring),
  then a per-channel gain.
* :class:`GroupNorm`: ``torch.nn.GroupNorm`` that names the bad value when the groups do not
  divide the channels; ``groups=1`` is LayerNorm over (C, H, W) with a per-channel affine map.
"""

from __future__ import annotations

import torch
from torch import nn


def renorm_limits(step: int, rmax: float, dmax: float, warmup_steps: int = 0,
                  ramp_steps: int = 0) -> tuple[float, float]:
    """Return ``(rmax, dmax)`` at training ``step``: (1, 0) during warm-up, then a linear ramp
    to the final limits over ``ramp_steps`` (at once when ``ramp_steps`` is 0)."""
    if step < warmup_steps:
        return 1.0, 0.0
    frac = 1.0 if ramp_steps <= 0 else min(1.0, (step - warmup_steps) / ramp_steps)
    return 1.0 + frac * (rmax - 1.0), frac * dmax


def batch_renorm(x: torch.Tensor, running_mean: torch.Tensor, running_var: torch.Tensor,
                 weight: torch.Tensor | None, bias: torch.Tensor | None, *, rmax: float,
                 dmax: float, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return ``(y, r, d)``: training-mode Batch Renorm of x (N, C, ...) against the running
    statistics (not updated here); r and d (C,) are detached, so gradients treat them as constants."""
    dims = [0] + list(range(2, x.ndim))
    shape = [1, -1] + [1] * (x.ndim - 2)
    mean = x.mean(dims)
    std = torch.sqrt(x.var(dims, unbiased=False) + eps)
    sigma = torch.sqrt(running_var + eps)
    r = (std / sigma).clamp(1.0 / rmax, rmax).detach()
    d = ((mean - running_mean) / sigma).clamp(-dmax, dmax).detach()
    y = (x - mean.view(shape)) / std.view(shape) * r.view(shape) + d.view(shape)
    if weight is not None:
        y = y * weight.view(shape) + bias.view(shape)
    return y, r, d


class BatchRenorm(nn.Module):
    """Batch Renormalization for (N, C) or (N, C, H, W) inputs (see the module docstring)."""

    def __init__(self, num_features: int, *, rmax: float = 3.0, dmax: float = 5.0,
                 warmup_steps: int = 0, ramp_steps: int = 0, eps: float = 1e-5,
                 momentum: float = 0.1, affine: bool = True):
        super().__init__()
        if not rmax >= 1.0:
            raise ValueError(f"BatchRenorm needs rmax >= 1 (r is clipped to [1/rmax, rmax]); got rmax={rmax!r}")
        if not dmax >= 0.0:
            raise ValueError(f"BatchRenorm needs dmax >= 0 (d is clipped to [-dmax, dmax]); got dmax={dmax!r}")
        if warmup_steps < 0 or ramp_steps < 0:
            raise ValueError(f"warmup_steps={warmup_steps!r} and ramp_steps={ramp_steps!r} must be >= 0")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.rmax, self.dmax, self.warmup_steps, self.ramp_steps = rmax, dmax, warmup_steps, ramp_steps
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def limits(self) -> tuple[float, float]:
        """Return the ``(rmax, dmax)`` the next training step uses (the schedule's current value)."""
        return renorm_limits(int(self.num_batches_tracked), self.rmax, self.dmax,
                             self.warmup_steps, self.ramp_steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the renormalised x: batch statistics corrected by r, d in training mode, the
        running statistics in evaluation mode (then it is BN's evaluation output)."""
        if x.ndim not in (2, 4) or x.shape[1] != self.num_features:
            raise ValueError(f"BatchRenorm({self.num_features}) needs (N, {self.num_features}) or "
                             f"(N, {self.num_features}, H, W) input, got {tuple(x.shape)}")
        if not self.training:
            return nn.functional.batch_norm(x, self.running_mean, self.running_var, self.weight,
                                            self.bias, False, 0.0, self.eps)
        if x.numel() // x.shape[1] < 2:
            raise ValueError(f"BatchRenorm needs more than one value per channel in training, got {tuple(x.shape)}")
        rmax, dmax = self.limits()
        y, _, _ = batch_renorm(x, self.running_mean, self.running_var, self.weight, self.bias,
                               rmax=rmax, dmax=dmax, eps=self.eps)
        with torch.no_grad():   # PyTorch's convention: unbiased variance for the running estimate
            dims = [0] + list(range(2, x.ndim))
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(m * x.mean(dims))
            self.running_var.mul_(1 - m).add_(m * x.var(dims, unbiased=True))
            self.num_batches_tracked += 1
        return y

    def extra_repr(self) -> str:
        return (f"{self.num_features}, rmax={self.rmax}, dmax={self.dmax}, "
                f"warmup_steps={self.warmup_steps}, ramp_steps={self.ramp_steps}")


class RMSNorm(nn.Module):
    """x / sqrt(mean(x²) + eps) over every non-batch dimension, times a per-channel gain."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.weight = nn.Parameter(torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return x divided by its root mean square per example, times the gain (same shape)."""
        if x.ndim < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"RMSNorm({self.num_features}) needs (N, {self.num_features}, ...) "
                             f"input, got {tuple(x.shape)}")
        dims = list(range(1, x.ndim))
        rms = torch.sqrt(x.pow(2).mean(dims, keepdim=True) + self.eps)
        return x / rms * self.weight.view([1, -1] + [1] * (x.ndim - 2))

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


class GroupNorm(nn.GroupNorm):
    """torch's GroupNorm(groups, channels) that rejects groups not dividing the channels by name."""

    def __init__(self, num_channels: int, groups: int, eps: float = 1e-5):
        if not isinstance(groups, int) or groups < 1 or num_channels % groups:
            raise ValueError(f"GroupNorm needs groups that divide the channels; got groups={groups!r} "
                             f"for {num_channels} channels")
        super().__init__(groups, num_channels, eps=eps)


# the normalisations chapter 9 compares (built by name with bn_utils.nn.registry.make_norm)
ALTERNATIVES = ("none", "bn", "brn", "ln", "gn", "rms")

"""Every normalisation layer by name: the one registry the model builders and experiments use.

``make_norm(name, num_features, dims)`` returns a fresh layer for (N, C) (``dims=1``) or
(N, C, H, W) (``dims=2``) inputs; keyword arguments go to the layer. The names:

* ``none`` (the identity), ``bn`` (torch's BatchNorm: the fused kernel every experiment trains
  with), ``bn_scratch`` (ours, ``bn_utils.nn.norms``: equal to torch's, slower);
* Santurkar et al.'s variants (``bn_utils.nn.variants``, chapters 7 and 8): ``noisy_bn``,
  ``noise`` (the noise without BN), ``l1``, ``l2``, ``linf``;
* the alternatives of chapter 9 (``bn_utils.nn.alternatives``): ``brn`` (Batch Renorm),
  ``ln`` (GroupNorm with one group), ``gn`` (``groups`` groups, default 4), ``rms``.

A builder decides whether the layer before a norm keeps its bias with :func:`has_shift`.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from . import norms
from .alternatives import BatchRenorm, GroupNorm, RMSNorm
from .variants import LP_NORMS, ActivationNoise, LpNorm, NoisyBatchNorm1d, NoisyBatchNorm2d


def _by_dims(one: Callable[..., nn.Module], two: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    return lambda n, dims, **kw: (one if dims == 1 else two)(n, **kw)


def _lp(p: float) -> Callable[..., nn.Module]:
    return lambda n, dims, **kw: LpNorm(n, p, **kw)


# name -> maker(num_features, dims, **kwargs)
NORMS: dict[str, Callable[..., nn.Module]] = {
    "none": lambda n, dims, **kw: nn.Identity(),
    "bn": _by_dims(nn.BatchNorm1d, nn.BatchNorm2d),
    "bn_scratch": _by_dims(norms.BatchNorm1d, norms.BatchNorm2d),
    "noisy_bn": _by_dims(NoisyBatchNorm1d, NoisyBatchNorm2d),
    "noise": lambda n, dims, **kw: ActivationNoise(n, **kw),
    **{name: _lp(p) for name, p in LP_NORMS.items()},
    "brn": lambda n, dims, **kw: BatchRenorm(n, **kw),
    "ln": lambda n, dims: GroupNorm(n, 1),
    "gn": lambda n, dims, groups=4: GroupNorm(n, groups),
    "rms": lambda n, dims: RMSNorm(n),
}


def make_norm(name: str, num_features: int, dims: int = 2, **kwargs) -> nn.Module:
    """Return a fresh normalisation layer ``name`` for ``num_features`` features (see the module
    docstring for the names); ``kwargs`` go to the layer (noise constants, ``over`` for the ℓp
    layers, ``groups`` for ``gn``, Batch Renorm's limits for ``brn``)."""
    if dims not in (1, 2):
        raise ValueError(f"dims={dims!r} must be 1 (dense) or 2 (convolutional)")
    if name not in NORMS:
        raise ValueError(f"unknown norm {name!r}; choose one of {', '.join(NORMS)}")
    return NORMS[name](num_features, dims, **kwargs)


def norm_factory(name: str, dims: int = 2, **kwargs) -> Callable[[int], nn.Module]:
    """Return ``width -> make_norm(name, width, dims, **kwargs)`` (what the model builders take)."""
    probe = kwargs.get("groups", 4) if name == "gn" else 1   # a width every group count divides
    make_norm(name, probe, dims, **kwargs)  # fail now on a bad name or argument, not deep in a builder
    return lambda width: make_norm(name, width, dims, **kwargs)


def has_shift(layer: nn.Module) -> bool:
    """Return True if a norm layer adds its own learned bias (then the layer before it needs none)."""
    return isinstance(getattr(layer, "bias", None), nn.Parameter)

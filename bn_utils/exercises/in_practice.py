"""Checkers of chapter 09's exercises (BN in practice): Batch Renorm at its tightest clipping,
RMSNorm, and the variance shift that dropout before BN causes."""

from __future__ import annotations

import numpy as np

from .checker import Result, Wrong, call, close, diagnose, expect_shape, rng, verdict

EPS = 1e-5


def check_renorm_tight(fn) -> Result:
    """Check fn(x (N, D)) -> Batch Renorm with rmax = 1, dmax = 0 (no affine, eps = 1e-5)."""
    def run():
        x = rng(9).normal(size=(8, 5)) * 3 + 1
        out = call(fn, x)
        expect_shape(out, x.shape)
        mu = x.mean(0)
        want = (x - mu) / np.sqrt(x.var(0) + EPS)
        if close(out, want):
            return
        diagnose(out, {
            "with r = 1 and d = 0 nothing is corrected: use the batch's own mean and variance, "
            "as training-mode BN does": x,
            "you divided by N - 1: BN normalises with the biased batch variance (divide by N)":
                (x - mu) / np.sqrt(x.var(0, ddof=1) + EPS),
            "you normalised each example over its features (axis 1), not each feature over the "
            "batch (axis 0)": (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + EPS),
        })
        raise Wrong("r = 1 and d = 0 leave plain training-mode BN: (x - mean) / sqrt(var + eps)")
    return verdict(run)


def check_rms_norm(fn) -> Result:
    """Check fn(x (N, D)) -> x / sqrt(mean over the features of x**2 + 1e-5), no gain."""
    def run():
        x = rng(10).normal(size=(6, 7)) * 2 + 0.5
        out = call(fn, x)
        expect_shape(out, x.shape)
        ms = (x ** 2).mean(1, keepdims=True)
        if close(out, x / np.sqrt(ms + EPS)):
            return
        centred = x - x.mean(1, keepdims=True)
        diagnose(out, {
            "you subtracted the mean: that is LayerNorm; RMSNorm only divides by the root mean "
            "square": centred / np.sqrt(x.var(1, keepdims=True) + EPS),
            "you took the mean over the batch (axis 0): RMSNorm works on each example's features":
                x / np.sqrt((x ** 2).mean(0, keepdims=True) + EPS),
            "you divided by the mean square itself; take its square root": x / (ms + EPS),
        })
        raise Wrong("RMSNorm is x / sqrt(mean of x**2 over the features + eps)")
    return verdict(run)


def check_dropout_variance(fn) -> Result:
    """Check fn(v, mu, q) -> the training-time variance of inverted dropout (keep probability q)
    applied to a unit of mean mu and variance v: (v + mu**2) / q - mu**2."""
    def run():
        cases = [(2.25, 0.7, 0.6), (1.0, 0.0, 0.5), (0.3, -1.2, 0.9)]
        got = np.array([float(call(fn, v, mu, q)) for v, mu, q in cases])
        want = np.array([(v + mu ** 2) / q - mu ** 2 for v, mu, q in cases])
        if close(got, want):
            return
        diagnose(got, {
            "the mean contributes too: with mu != 0, E[(x m / q)^2] = (v + mu^2) / q":
                np.array([v / q for v, mu, q in cases]),
            "you subtracted the mean twice or not at all: Var = E[(x m / q)^2] - mu^2, and the "
            "mean stays mu": np.array([(v + mu ** 2) / q for v, mu, q in cases]),
            "inverted dropout divides by q (the keep probability), so the variance grows":
                np.array([v * q for v, mu, q in cases]),
        })
        raise Wrong("Var(x m / q) = (v + mu^2) / q - mu^2 for m ~ Bernoulli(q)")
    return verdict(run)

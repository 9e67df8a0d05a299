"""Exercises of why BN works (chapters 07-08): the noise of Santurkar et al. and their smoothness
measures."""

from __future__ import annotations

import math

import numpy as np

from .checker import Result, Wrong, as_array, call, check_number, close, diagnose, expect_shape, rng, verdict

# --- chapter 07 -------------------------------------------------------------------------------

def _fit_per_unit(a, out):
    """Return per-unit (slope, intercept, largest residual) of out ~ slope * a + intercept."""
    a = a.swapaxes(0, 1).reshape(a.shape[1], -1)
    out = out.swapaxes(0, 1).reshape(out.shape[1], -1)
    am = a - a.mean(1, keepdims=True)
    slope = (am * out).sum(1) / (am * am).sum(1)
    icpt = out.mean(1) - slope * a.mean(1)
    return slope, icpt, float(np.abs(out - slope[:, None] * a - icpt[:, None]).max())


def check_noisy_bn(fn) -> Result:
    """Check fn(a (N, C, ...) tensor, n_mu, n_sigma, r_mu, r_sigma) -> the paper's noise
    s * a + nu (per unit the centre nu_bar ~ U(-n_mu, n_mu) and scale s_bar ~ U(1, n_sigma); per
    element nu ~ U(nu_bar +- r_mu), s ~ N(s_bar, r_sigma)), chapter 7's symbols."""
    import torch

    from ..nn.variants import N_MU, N_SIGMA, R_MU, R_SIGMA

    def run():
        torch.manual_seed(0)
        a = torch.randn(50, 300, dtype=torch.float64)
        out = as_array(call(fn, a.clone(), N_MU, N_SIGMA, 0.0, 0.0))
        expect_shape(out, a.shape)
        s, m, resid = _fit_per_unit(a.numpy(), out)
        if resid > 1e-8:
            raise Wrong("draw the centre nu_bar and the scale s_bar once per unit (dim 1), shared "
                        "by every example of that unit; with r_mu = r_sigma = 0 each unit is then "
                        "an affine map")
        if np.ptp(s) < 1e-6 or np.ptp(m) < 1e-6:
            raise Wrong("every unit got the same nu_bar and s_bar: draw them per unit (shape (1, C))")
        if s.min() < 1 - 1e-9 or s.max() > N_SIGMA + 1e-9 or abs(s.mean() - (1 + N_SIGMA) / 2) > 0.02:
            raise Wrong("s_bar must be uniform on [1, n_sigma]")
        if np.abs(m).max() > N_MU + 1e-9 or abs(m.mean()) > 0.06:
            raise Wrong("nu_bar must be uniform on [-n_mu, n_mu]")
        s2, _, _ = _fit_per_unit(a.numpy(), as_array(call(fn, a.clone(), N_MU, N_SIGMA, 0.0, 0.0)))
        if close(s, s2):
            raise Wrong("the noise must be redrawn at every call (every training step)")
        img = torch.randn(4, 30, 3, 3, dtype=torch.float64)
        _, _, resid = _fit_per_unit(img.numpy(), as_array(call(fn, img.clone(), N_MU, N_SIGMA, 0.0, 0.0)))
        if resid > 1e-8:
            raise Wrong("in a convolutional layer a unit is a channel: every pixel of every "
                        "example of the channel shares its nu_bar and s_bar")
        ones = torch.ones(2000, 20, dtype=torch.float64)
        spread = as_array(call(fn, ones, N_MU, N_SIGMA, R_MU, R_SIGMA)).std(0).mean()
        expected = math.sqrt(R_SIGMA ** 2 + R_MU ** 2 / 3)   # the paper's constants: 0.115
        if not 0.78 * expected < spread < 1.22 * expected:
            raise Wrong(f"the per-element jitter has spread {spread:.3f}, expected about {expected:.3f}: "
                        "nu ~ U(nu_bar - r_mu, nu_bar + r_mu), s ~ N(s_bar, r_sigma) for every element")
    return verdict(run)


def check_gradient_ics(fn) -> Result:
    """Check fn(G (P,), G2 (P,)) -> (||G - G2||, cos(G, G2)), Santurkar et al.'s Definition 2.1."""
    def run():
        r = rng(13)
        g, g2 = r.normal(size=7) * 3, r.normal(size=7)
        out = call(fn, g.copy(), g2.copy())
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Wrong("return the pair (distance, cosine)")
        dist, cos = out
        ref_d, ref_c = np.linalg.norm(g - g2), g @ g2 / np.linalg.norm(g) / np.linalg.norm(g2)
        if close(dist, ref_c) and close(cos, ref_d):
            raise Wrong("return them in the order (distance, cosine)")
        diagnose(dist, {"the definition uses the plain distance ||G - G'||, not divided by ||G||":
                        ref_d / np.linalg.norm(g)})
        if not close(dist, ref_d):
            raise Wrong("the distance is the Euclidean norm of G - G'")
        diagnose(cos, {"divide the dot product by both norms to get the cosine": g @ g2})
        if not close(cos, ref_c):
            raise Wrong("the cosine is G . G' / (||G|| ||G'||)")
    return verdict(run)


def check_noise_mean_scale(answer) -> Result:
    """Check a number: the mean of the multiplicative noise s for the paper's n_sigma (1.25: 1.125)."""
    from ..nn.variants import N_SIGMA

    return check_number(answer, (1 + N_SIGMA) / 2, {
        N_SIGMA: "n_sigma is the upper end of s_bar's range; s_bar ~ U(1, n_sigma) has mean "
                 "(1 + n_sigma) / 2",
        1.0: "s_bar is drawn from U(1, n_sigma), so the scale is never below 1 on average"},
        "the mean of s")


# --- chapter 08 -------------------------------------------------------------------------------

def check_effective_smoothness(fn) -> Result:
    """Check fn(g0 (P,), grads (K, P), alphas (K,)) -> max over k of ||grads[k] - g0|| / ||alphas[k] g0||
    (chapter 8: alpha the step sizes of a landscape measurement, lambda the smoothness)."""
    def run():
        r = rng(14)
        g0, grads, alphas = r.normal(size=6) * 2, r.normal(size=(4, 6)), np.array([0.05, 0.1, 0.2, 0.4])
        out = call(fn, g0.copy(), grads.copy(), alphas.copy())
        if np.ndim(as_array(out)) != 0:
            raise Wrong("return one number, the largest ratio over the step sizes")
        d = np.linalg.norm(grads - g0, axis=1)
        ratios = d / (alphas * np.linalg.norm(g0))
        if close(out, ratios.max()):
            return
        diagnose(out, {"divide by the length of the step, ||alpha g||, not by alpha alone":
                       (d / alphas).max(),
                       "lambda is the largest ratio over the step sizes, not the mean": ratios.mean(),
                       "divide each gradient change by the length of its step, alpha * ||g||":
                       d.max() / np.linalg.norm(g0)})
        raise Wrong("lambda = max over the step sizes alpha of ||grad(w - alpha g) - g|| / ||alpha g||")
    return verdict(run)


def check_safe_lr(fn) -> Result:
    """Check fn(lam) -> the largest learning rate for which a gradient step on a lambda-smooth
    loss is guaranteed to decrease it (2 / lam)."""
    def run():
        for lam in (0.5, 4.0, 30.0):
            out = call(fn, lam)
            diagnose(out, {"1 / lambda is the learning rate with the best guaranteed decrease; the loss "
                           "still decreases for any rate below 2 / lambda": 1 / lam,
                           "a smoother loss (smaller lambda) allows a larger rate: invert lambda":
                           lam / 2})
            if not close(out, 2 / lam):
                raise Wrong("from L(w - eta g) <= L(w) - eta (1 - lambda eta / 2) ||g||^2, find where "
                            "the bracket turns negative")
    return verdict(run)


def check_lp_divisor(fn) -> Result:
    """Check fn(c (N, C), p) -> the batch average of each example's mean-normalised lp norm over
    units, (mean_j |c_ij|^p)^(1/p) (max_j |c_ij| for p = inf): the lp layer's divisor."""
    def run():
        c = rng(15).normal(size=(6, 5))
        for p in (1.0, 2.0, math.inf):
            out = call(fn, c.copy(), p)
            if as_array(out).size != 1:
                raise Wrong("return one number for the whole layer: average the examples' norms")
            out = float(as_array(out).ravel()[0])
            per_ex = np.abs(c).max(1) if math.isinf(p) else (np.abs(c) ** p).mean(1) ** (1 / p)
            if close(out, per_ex.mean()):
                continue
            mistakes = {} if math.isinf(p) else {
                "use the mean over units, (mean_j |c_j|^p)^(1/p), not the sum":
                    ((np.abs(c) ** p).sum(1) ** (1 / p)).mean(),
                "take each example's norm first, then average the norms over the batch":
                    (np.abs(c) ** p).mean() ** (1 / p)}
            diagnose(out, mistakes)
            raise Wrong(f"wrong for p = {p:g}; for p = inf the norm is the largest |c_j| of the example")
    return verdict(run)

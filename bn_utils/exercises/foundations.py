"""Exercises of the foundations (chapters 01-03, BN's maths): batch statistics, BN's forward
pass and its running estimates, folding, GroupNorm, the backward pass and a numerical gradient."""

from __future__ import annotations

import numpy as np

from .checker import Result, Wrong, as_array, call, check_number, close, diagnose, expect_shape, rng, verdict

UNBIASED = "you divided by N - 1: BN normalises with the biased batch variance (divide by N)"


def _bn(x, axes, eps, gamma=1.0, beta=0.0, ddof=0):
    """Return gamma * (x - mean) / sqrt(var + eps) + beta with statistics over ``axes``."""
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True, ddof=ddof)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta


# --- chapter 01 -------------------------------------------------------------------------------

def check_batch_stats(fn) -> Result:
    """Check fn(x (N, D)) -> (mean (D,), var (D,)): each feature's batch mean and biased variance."""
    def run():
        x = rng().normal(2.0, 3.0, size=(6, 4))
        out = call(fn, x)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Wrong("return two things, the mean and the variance: `return mu, var`")
        mu, var = out
        if as_array(mu).shape == (6,):
            raise Wrong("you averaged over the features (axis 1); BN's statistics are per feature, "
                        "over the batch (axis 0)")
        expect_shape(mu, (4,), "the mean")
        expect_shape(var, (4,), "the variance")
        if not close(mu, x.mean(0)):
            raise Wrong("the mean is not the average of each column of x")
        diagnose(var, {UNBIASED: x.var(0, ddof=1),
                       "you returned the standard deviation; the exercise asks for the variance":
                           x.std(0)})
        if not close(var, x.var(0)):
            raise Wrong("the variance is not mean((x - mu) ** 2) over the batch")
    return verdict(run)


def check_bn_train(fn) -> Result:
    """Check fn(x (N, D), gamma (D,), beta (D,), eps) -> training-mode BN of x, shape (N, D)."""
    def run():
        r = rng(1)
        x, g, b, eps = r.normal(2, 3, (5, 3)), r.uniform(0.5, 2, 3), r.normal(size=3), 0.5
        out = call(fn, x, g, b, eps)
        expect_shape(out, x.shape)
        if close(out, _bn(x, 0, eps, g, b)):
            return
        diagnose(out, {
            "you normalised each example over its features (axis 1): BN normalises each feature "
            "over the batch (axis 0)": _bn(x, 1, eps, g, b),
            UNBIASED: _bn(x, 0, eps, g, b, ddof=1),
            "eps goes inside the square root: (x - mu) / sqrt(var + eps)":
                g * (x - x.mean(0)) / (x.std(0) + eps) + b,
            "you left out eps: (x - mu) / sqrt(var + eps)": _bn(x, 0, 0.0, g, b),
            "scale, then shift: y = gamma * xhat + beta": g * (_bn(x, 0, eps) + b),
            "gamma scales and beta shifts, not the other way round": _bn(x, 0, eps, b, g)})
        raise Wrong("the output is not gamma * (x - mu) / sqrt(var + eps) + beta with the batch's "
                    "mean and variance per feature")
    return verdict(run)


def check_drift(fn) -> Result:
    """Check fn(values (T,)) -> max minus min of the measurements after step 0, a float."""
    def run():
        v = np.array([5.0, 1.0, 1.5, 0.5, 0.8])
        out = call(fn, v.copy())
        if np.ndim(as_array(out)) != 0:
            raise Wrong("return one number, the range of the measurements after step 0")
        diagnose(out, {
            "you included the measurement at step 0; the drift is measured after it": 4.5,
            "that is the net change from first to last; the drift is the range (max - min)": 4.2,
            "that is the change from the first to the last measurement after step 0; "
            "the drift is their range (max - min)": 0.2})
        if not close(out, 1.0):
            raise Wrong("the drift is max(values[1:]) - min(values[1:])")
    return verdict(run)


def check_sigmoid_slope(answer) -> Result:
    """Check a number: the largest slope of the sigmoid (0.25, at input 0)."""
    return check_number(answer, 0.25, {
        1.0: "1 is the slope of tanh (or of a linear unit) at 0; the sigmoid's is "
             "sigmoid(0) * (1 - sigmoid(0))",
        0.5: "0.5 is sigmoid(0), the value at 0, not the slope"},
        "the largest slope of the sigmoid")


# --- chapter 02 -------------------------------------------------------------------------------

def check_bn_nhwc(fn) -> Result:
    """Check fn(x (N, H, W, C), gamma (C,), beta (C,), eps) -> training-mode BN, shape of x."""
    def run():
        r = rng(2)
        x, g, b, eps = r.normal(1, 2, (4, 3, 5, 2)), r.uniform(0.5, 2, 2), r.normal(size=2), 1e-5
        out = call(fn, x, g, b, eps)
        expect_shape(out, x.shape)
        if close(out, _bn(x, (0, 1, 2), eps, g, b)):
            return
        diagnose(out, {
            "you normalised each position on its own (over N only); a channel's statistics run "
            "over N, H and W": _bn(x, 0, eps, g, b),
            "you normalised each image on its own (over H and W): that is instance norm; BN "
            "includes the batch axis N": _bn(x, (1, 2), eps, g, b),
            "you normalised over the channels (the last axis); channels are the features BN "
            "keeps apart": _bn(x, 3, eps, g, b),
            UNBIASED: _bn(x, (0, 1, 2), eps, g, b, ddof=1)})
        raise Wrong("the output is not BN per channel (last axis) over N, H and W")
    return verdict(run)


def check_running_update(fn) -> Result:
    """Check fn(running_mean, running_var, x (N, D), momentum) -> new (running_mean, running_var),
    PyTorch's convention."""
    def run():
        r = rng(3)
        rm, rv, x, m = r.normal(size=3), r.uniform(0.5, 2, 3), r.normal(1, 2, (4, 3)), 0.1
        out = call(fn, rm.copy(), rv.copy(), x, m)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Wrong("return the new running mean and running variance as a pair")
        mean, var = out
        expect_shape(mean, (3,), "the running mean")
        expect_shape(var, (3,), "the running variance")
        keras = ((m * rm + (1 - m) * x.mean(0)), m * rv + (1 - m) * x.var(0, ddof=1))
        if close(mean, keras[0]):
            raise Wrong("you weighted the old value by momentum (Keras' convention); in PyTorch "
                        "momentum is the weight of the new batch: (1 - m) * running + m * batch")
        if not close(mean, (1 - m) * rm + m * x.mean(0)):
            raise Wrong("the running mean should be (1 - momentum) * running_mean + momentum * "
                        "batch mean")
        diagnose(var, {"the running variance uses the unbiased batch variance (divide by N - 1), "
                       "since it estimates the population's": (1 - m) * rv + m * x.var(0)})
        if not close(var, (1 - m) * rv + m * x.var(0, ddof=1)):
            raise Wrong("the running variance should be (1 - momentum) * running_var + momentum * "
                        "unbiased batch variance")
    return verdict(run)


def check_batch_of_two(answer) -> Result:
    """Check a number: |xhat| of each example of a batch of two (gamma 1, beta 0, eps -> 0): 1."""
    return check_number(answer, 1.0, {
        0.0: "0 is what a batch of one gives; with two examples each sits one (biased) standard "
             "deviation from their mean",
        2 ** 0.5: "sqrt(2) comes from the unbiased variance; BN normalises with the biased one",
        0.5: "each example is half the difference from the mean, and so is the (biased) "
             "standard deviation: their ratio is 1"},
        "|xhat| for each example of a batch of two")


def check_fold_linear(fn) -> Result:
    """Check fn(W (out, in), b (out,), gamma, beta, mean, var, eps) -> (W', b') with
    x @ W'.T + b' equal to eval-mode BN of x @ W.T + b."""
    def run():
        r = rng(4)
        w, b = r.normal(size=(3, 5)), r.normal(size=3)
        g, be, mu, var, eps = r.uniform(0.5, 2, 3), r.normal(size=3), r.normal(size=3), \
            r.uniform(0.5, 2, 3), 1e-5
        out = call(fn, w, b, g, be, mu, var, eps)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Wrong("return the folded weight and bias as a pair")
        w2, b2 = out
        expect_shape(w2, w.shape, "the folded weight")
        expect_shape(b2, b.shape, "the folded bias")
        s = g / np.sqrt(var + eps)
        if not close(w2, w * s[:, None]):
            raise Wrong("each output row c of W is scaled by gamma_c / sqrt(var_c + eps) (scale "
                        "the rows, W's first axis)")
        diagnose(b2, {"the old bias goes through BN too: b' = s * (b - mean) + beta": be - mu * s,
                      "you forgot to subtract the running mean: b' = s * (b - mean) + beta": s * b + be})
        if not close(b2, s * (b - mu) + be):
            raise Wrong("the folded bias is s * (b - mean) + beta, with s = gamma / sqrt(var + eps)")
    return verdict(run)


def check_group_norm(fn) -> Result:
    """Check fn(x (N, C, H, W), groups, eps) -> GroupNorm of x (no gamma, beta), shape of x."""
    def run():
        r = rng(5)
        x, groups, eps = r.normal(1, 2, (3, 6, 2, 4)), 3, 1e-5
        out = call(fn, x, groups, eps)
        expect_shape(out, x.shape)
        grouped = x.reshape(3, groups, -1)
        if close(out, _bn(grouped, 2, eps).reshape(x.shape)):
            return
        diagnose(out, {
            "you normalised over the batch: that is BN; GroupNorm uses each example on its own":
                _bn(x, (0, 2, 3), eps),
            "each channel on its own is instance norm; put C / groups channels in a group":
                _bn(x, (2, 3), eps),
            "all channels together is layer norm; split them into `groups` groups":
                _bn(x, (1, 2, 3), eps),
            UNBIASED: _bn(grouped, 2, eps, ddof=1).reshape(x.shape)})
        raise Wrong("reshape x to (N, groups, -1), normalise over the last axis, reshape back")
    return verdict(run)


# --- chapter 03 -------------------------------------------------------------------------------

def check_dgamma_dbeta(fn) -> Result:
    """Check fn(dout (N, D), xhat (N, D)) -> (dgamma (D,), dbeta (D,))."""
    def run():
        r = rng(6)
        dout, xhat = r.normal(size=(5, 3)), r.normal(size=(5, 3))
        out = call(fn, dout, xhat)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Wrong("return the pair (dgamma, dbeta)")
        dg, db = out
        if as_array(dg).shape == (5,) or as_array(db).shape == (5,):
            raise Wrong("sum over the batch (axis 0): gamma and beta have one entry per feature")
        ref_g, ref_b = (dout * xhat).sum(0), dout.sum(0)
        if close(dg, ref_b) and close(db, ref_g):
            raise Wrong("you swapped them: dbeta = sum(dout), dgamma = sum(dout * xhat)")
        if close(dg, ref_g / 5) or close(db, ref_b / 5):
            raise Wrong("sum over the batch, do not average: every example adds its part")
        if not close(dg, ref_g):
            raise Wrong("dgamma = sum over the batch of dout * xhat")
        if not close(db, ref_b):
            raise Wrong("dbeta = sum over the batch of dout")
    return verdict(run)


def check_bn_backward(fn) -> Result:
    """Check fn(dout (N, D), x (N, D), gamma (D,), eps) -> dx (N, D) of training-mode BN."""
    def run():
        r = rng(7)
        x, dout, g, eps = r.normal(1, 2, (6, 4)), r.normal(size=(6, 4)), r.uniform(0.5, 2, 4), 1e-5
        out = call(fn, dout, x, g, eps)
        expect_shape(out, x.shape)
        n, inv = x.shape[0], 1.0 / np.sqrt(x.var(0) + eps)
        xhat = (x - x.mean(0)) * inv
        sd, sdx = dout.sum(0), (dout * xhat).sum(0)
        if close(out, g * inv / n * (n * dout - sd - xhat * sdx)):
            return
        diagnose(out, {
            "you treated the mean and variance as constants: x also reaches the loss through them":
                g * inv * dout,
            "the term through the mean is missing: subtract sum(dout) / N":
                g * inv / n * (n * dout - xhat * sdx),
            "the term through the variance is missing: subtract xhat * sum(dout * xhat) / N":
                g * inv / n * (n * dout - sd),
            "gamma is missing: dL/dxhat = gamma * dout": inv / n * (n * dout - sd - xhat * sdx)})
        raise Wrong("compare with dx = gamma / (N sqrt(var + eps)) * (N dout - sum(dout) - "
                    "xhat * sum(dout * xhat))")
    return verdict(run)


def check_numerical_gradient(fn) -> Result:
    """Check fn(f, x, dout, h) -> the gradient of sum(f(x) * dout) w.r.t. x by central differences."""
    def run():
        r = rng(8)
        x, dout, h = r.normal(size=(3, 2)), r.normal(size=(3, 2)), 1e-4
        f = lambda z: z ** 3 + np.sin(z).sum()  # noqa: E731  (couples the entries through the sum)
        x0 = x.copy()
        out = call(fn, f, x, dout, h)
        if not np.array_equal(x, x0):
            raise Wrong("x changed: put every perturbed entry back to its old value")
        expect_shape(out, x.shape)
        exact = 3 * x ** 2 * dout + np.cos(x) * dout.sum()
        if close(out, exact, 1e-6):
            return
        if close(out, 2 * exact, 1e-4):
            raise Wrong("divide by 2h: f(x + h) - f(x - h) spans two steps of h")
        unweighted = 3 * x ** 2 + np.cos(x) * x.size
        if close(out, unweighted, 1e-4):
            raise Wrong("weight the change of f's output by dout before summing: sum((f+ - f-) * dout)")
        if close(out, exact, 1e-2):
            raise Wrong("that is a one-sided difference (error ~ h); use (f(x + h) - f(x - h)) / 2h "
                        "(error ~ h^2)")
        raise Wrong("the gradient differs from the true one; perturb one entry at a time")
    return verdict(run)


def check_jacobian_row_sum(answer) -> Result:
    """Check a number: what each row of BN's Jacobian dy_i/dx_j sums to (gamma = 1): 0."""
    return check_number(answer, 0.0, {
        1.0: "adding the same amount to every x_j changes no output: BN subtracts the mean"},
        "the sum of a row of BN's Jacobian", tol=0.0)


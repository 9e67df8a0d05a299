"""Gradient checks: compare an analytic gradient with finite differences.

The CS231n recipe, with one change of habit: a check here is a number that a test or a
notebook ``assert``s on, never something that is only printed.

    err = rel_error(dx, numerical_gradient(f, x, dout))
    assert err < 1e-8, f"backward disagrees with finite differences: {err:.1e}"

Use float64 inputs: with float32 the central difference's rounding error (about
eps_float32 / h) swamps the quantity being checked.
"""

import numpy as np


def as_array(a):
    """Return ``a`` (NumPy array, torch tensor or number) as a float64 NumPy array."""
    if hasattr(a, "detach"):  # a torch tensor; checked by duck typing so NumPy users need no torch
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def rel_error(x, y):
    """Return the largest elementwise relative error max(|x-y| / max(1e-8, |x|+|y|)), a float."""
    x, y = as_array(x), as_array(y)
    if x.shape != y.shape:
        # NumPy would broadcast (5,) against (4, 5) and report a meaningless small error.
        raise ValueError(f"rel_error needs equal shapes, got {x.shape} and {y.shape}")
    if x.size == 0:
        return 0.0
    # The 1e-8 floor keeps entries where both are (nearly) zero from dividing by zero.
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def norm_rel_error(x, y):
    """Return ||x - y|| / max(||x||, ||y||): a relative error of the whole array, which, unlike
    ``rel_error``, is not dominated by entries that are nearly zero."""
    x, y = as_array(x), as_array(y)
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {x.shape} vs {y.shape}")
    scale = max(np.linalg.norm(x), np.linalg.norm(y))
    return 0.0 if scale == 0 else float(np.linalg.norm(x - y) / scale)


def numerical_gradient(f, x, dout, h=1e-5):
    """Return the gradient of sum(f(x) * dout) w.r.t. x (shape of x), by central differences.

    This is what a backward pass computes when handed the upstream gradient ``dout``;
    ``x`` is modified in place temporarily and restored. The two outputs are subtracted
    elementwise *before* they are weighted and summed: outputs that the perturbation does not
    touch then cancel exactly, instead of leaving round-off of the size of the whole sum
    (which, divided by 2h, would swamp small gradient entries).
    """
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise TypeError("numerical gradients need a float NumPy array x (float64 for checks)")
    dout = np.asarray(dout)
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        out_plus = np.array(f(x), dtype=np.float64, copy=True)
        x[ix] = old - h
        out_minus = np.array(f(x), dtype=np.float64, copy=True)
        x[ix] = old  # restore the saved value, not old + h - h, which may round differently
        grad[ix] = np.sum((out_plus - out_minus) * dout) / (2 * h)
        it.iternext()
    return grad

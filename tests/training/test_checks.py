"""Properties of the gradient-check helpers in bn_utils.training.checks."""

import numpy as np
import pytest
import torch

from bn_utils.training.checks import numerical_gradient, rel_error


def test_rel_error_is_zero_for_equal_arrays():
    x = np.random.default_rng(0).standard_normal((4, 5))
    assert rel_error(x, x.copy()) == 0.0


def test_rel_error_is_the_largest_elementwise_ratio():
    # |1 - 3| / (1 + 3) = 0.5 beats |2 - 2.2| / 4.2 ~ 0.048
    assert rel_error(np.array([1.0, 2.0]), np.array([3.0, 2.2])) == pytest.approx(0.5)


def test_rel_error_floor_keeps_zeros_finite():
    # Both zero: 0 / max(1e-8, 0) = 0, not nan.
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    # Tiny absolute differences near zero are measured against the 1e-8 floor.
    assert rel_error(np.array([0.0]), np.array([1e-10])) == pytest.approx(1e-2)


def test_rel_error_accepts_torch_tensors_and_returns_float():
    x = torch.tensor([[1.0, 2.0]], requires_grad=True)
    err = rel_error(x, np.array([[1.0, 4.0]]))
    assert isinstance(err, float)
    assert err == pytest.approx(2.0 / 6.0)


def test_rel_error_refuses_to_broadcast():
    with pytest.raises(ValueError, match="equal shapes"):
        rel_error(np.ones((4, 5)), np.ones(5))


def test_numerical_gradient_of_matrix_product_is_dout_times_weight_transposed():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 5))
    w = rng.standard_normal((5, 3))
    dout = rng.standard_normal((4, 3))
    num = numerical_gradient(lambda z: z @ w, x, dout)
    err = rel_error(num, dout @ w.T)
    assert err < 1e-8, f"finite differences of a linear map are off: {err:.1e}"


def test_numerical_gradient_of_elementwise_square_is_two_x_dout():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 5))
    dout = rng.standard_normal((4, 5))
    err = rel_error(numerical_gradient(lambda z: z**2, x, dout), 2 * x * dout)
    assert err < 1e-8, f"finite differences of x**2 are off: {err:.1e}"


def test_numerical_gradient_restores_x_bit_for_bit():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 5))
    before = x.copy()
    numerical_gradient(np.tanh, x, rng.standard_normal((4, 5)))
    assert np.array_equal(x, before)


def test_numerical_gradient_of_a_scalar_function_is_its_gradient():
    x = np.random.default_rng(4).standard_normal((2, 3, 4))
    err = rel_error(numerical_gradient(lambda z: np.sum(z**2), x, 1.0), 2 * x)
    assert err < 1e-8, f"gradient of sum(x**2) is off: {err:.1e}"


def test_numerical_gradient_rejects_integer_arrays():
    # On an int array x + h rounds back to x, and the "gradient" would silently be zero.
    with pytest.raises(TypeError):
        numerical_gradient(np.sum, np.arange(4), 1.0)

"""The referee itself (2.6, numerical approximation): central differences on functions whose
gradient is known in closed form, relative_error, and that the checks catch a wrong backward."""

import numpy as np
import pytest
from helpers import dev, host

from tiefnet.backend import xp
from tiefnet.gradcheck import check_layer, check_loss, numerical_gradient, relative_error
from tiefnet.nn import Dense, Quadratic, Sigmoid

SHAPES = [(1, 1), (2, 3), (4, 5)]


@pytest.mark.parametrize("n_out, n_in", SHAPES)
def test_gradient_of_matrix_vector_product(n_out, n_in):
    """f = W x: d(sum(f * u))/dW = u x^T and d/dx = W^T u."""
    rng = np.random.default_rng(n_out * 10 + n_in)
    W_h, x_h, u_h = rng.standard_normal((n_out, n_in)), rng.standard_normal(n_in), rng.standard_normal(n_out)
    W, x, u = dev(W_h), dev(x_h), dev(u_h)
    f = lambda: W @ x  # noqa: E731
    np.testing.assert_allclose(host(numerical_gradient(f, W, u)), np.outer(u_h, x_h), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(host(numerical_gradient(f, x, u)), W_h.T @ u_h, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("shape", [(1,), (3, 4), (2, 3, 2)])
def test_gradient_of_elementwise_functions(shape):
    v_h = np.random.default_rng(len(shape)).standard_normal(shape)
    v = dev(v_h)
    sin_grad = numerical_gradient(lambda: xp.sin(v), v, dev(np.ones(shape)))
    np.testing.assert_allclose(host(sin_grad), np.cos(v_h), rtol=1e-7, atol=1e-9)
    cube_grad = numerical_gradient(lambda: xp.asarray((v**3).sum()), v, dev(1.0))
    np.testing.assert_allclose(host(cube_grad), 3 * v_h**2, rtol=1e-7, atol=1e-8)


def test_gradient_of_a_scalar_cost_is_exact_for_a_quadratic():
    """Central differences are exact (up to rounding) for polynomials of degree <= 2."""
    v = dev(np.array([1.0, -2.0, 0.5]))
    grad = numerical_gradient(lambda: xp.asarray(0.5 * (v**2).sum() + 3 * v[0] * v[1]), v, dev(1.0), h=1e-3)
    np.testing.assert_allclose(host(grad), [1.0 + 3 * -2.0, -2.0 + 3 * 1.0, 0.5], rtol=1e-9)


def test_numerical_gradient_restores_v_exactly():
    v = dev(np.random.default_rng(0).standard_normal((3, 3)))
    before = host(v).copy()
    numerical_gradient(lambda: v * 2, v, dev(np.ones((3, 3))))
    np.testing.assert_array_equal(host(v), before)


def test_numerical_gradient_of_a_non_contiguous_array():
    base = dev(np.random.default_rng(0).standard_normal((3, 2)))
    v = base.T  # (2, 3), a view that is not C-contiguous
    grad = numerical_gradient(lambda: xp.sin(v), v, dev(np.ones(v.shape)))
    np.testing.assert_allclose(host(grad), np.cos(host(v)), rtol=1e-7)


def test_relative_error_basics():
    a, zeros, empty = dev(np.array([1.0, -2.0, 4.0])), dev(np.zeros(3)), dev(np.zeros(0))
    assert relative_error(a, a) == 0.0
    assert relative_error(a, 2 * a) == pytest.approx(0.5)  # max|a - 2a| / max|2a| = 4 / 8
    assert relative_error(a, a + 1e-9) == pytest.approx(1e-9 / 4, rel=1e-6)
    assert relative_error(a, zeros) == 1.0
    assert relative_error(zeros, zeros) == 0.0
    assert relative_error(empty, empty) == 0.0
    assert relative_error(a, b := a * 1.001) == relative_error(b, a)  # symmetric
    assert relative_error(1e3 * a, 1e3 * (a + 0.01)) == pytest.approx(relative_error(a, a + 0.01))  # scale-free


def test_check_layer_reports_every_name_and_passes_a_correct_layer(float64):
    layer = Dense(3, 2, rng=np.random.default_rng(0))
    errors = check_layer(layer, dev(np.random.default_rng(1).standard_normal((4, 3))))
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < 1e-7


class WrongSigmoid(Sigmoid):
    """A planted bug: sigma'(z) written as sigma(z) (1 + sigma(z))."""

    def backward(self, delta, need_input_grad=True):
        a = self._require_cache("output")
        return delta * a * (1 + a)


class ForgetsTheBatchSum(Dense):
    """A planted bug: dC/db from the first sample only."""

    def backward(self, delta, need_input_grad=True):
        dx = super().backward(delta, need_input_grad)
        self.grads["b"] = delta[0]
        return dx


def test_check_layer_catches_a_wrong_backward(float64):
    x = dev(np.random.default_rng(1).standard_normal((4, 3)))
    assert check_layer(WrongSigmoid(), x)["x"] > 0.1
    errors = check_layer(ForgetsTheBatchSum(3, 2, rng=np.random.default_rng(0)), x)
    assert errors["b"] > 0.1 and errors["W"] < 1e-7 and errors["x"] < 1e-7


class QuadraticWithoutMean(Quadratic):
    """A planted bug: the grad forgets the 1/N of the mean cost."""

    def grad(self, a, y):
        return a - y


def test_check_loss_catches_a_missing_one_over_n(float64):
    rng = np.random.default_rng(0)
    a, y = dev(rng.random((4, 3))), dev(rng.random((4, 3)))
    assert check_loss(Quadratic(), a, y) < 1e-7
    assert check_loss(QuadraticWithoutMean(), a, y) == pytest.approx(0.75, rel=1e-4)  # |g - g/4| / |g|

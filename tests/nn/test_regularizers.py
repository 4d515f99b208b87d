"""Weight regularisation (2.7.3): L2 = lambda/(2n) sum w^2, L1 = lambda/n sum |w|, and their gradients."""

import numpy as np
import pytest
from helpers import dev, host

from tiefnet.errors import ConfigError
from tiefnet.gradcheck import numerical_gradient, relative_error
from tiefnet.nn import L1, L2, REGULARIZERS

W1 = dev(np.array([[1.0, -2.0], [0.0, 3.0]]))  # weights live on the device
W2 = dev(np.array([[0.5, 0.0, -0.5]]))


def test_l2_cost_by_hand():
    """lambda/(2n) sum w^2 = 5/(2*10) * (1 + 4 + 0 + 9 + 0.25 + 0 + 0.25) = 0.25 * 14.5 = 3.625."""
    assert L2(5.0).cost([W1, W2], n=10) == pytest.approx(3.625, rel=1e-12)


def test_l1_cost_by_hand():
    """lambda/n sum |w| = 5/10 * (1 + 2 + 0 + 3 + 0.5 + 0 + 0.5) = 3.5."""
    assert L1(5.0).cost([W1, W2], n=10) == pytest.approx(3.5, rel=1e-12)


def test_l2_grad_is_lambda_over_n_w():
    np.testing.assert_allclose(host(L2(5.0).grad(W1, n=10)), 0.5 * host(W1), rtol=1e-12)


def test_l1_grad_is_lambda_over_n_sign_with_sgn0_zero():
    np.testing.assert_array_equal(host(L1(5.0).grad(W1, n=10)), [[0.5, -0.5], [0.0, 0.5]])
    np.testing.assert_array_equal(host(L1(5.0).grad(W2, n=10)), [[0.5, 0.0, -0.5]])  # sgn(0) = 0


@pytest.mark.parametrize("cls", [L1, L2])
@pytest.mark.parametrize("shape", [(1, 1), (3, 4), (7, 2)])
def test_regularizer_grad_is_derivative_of_cost(float64, cls, shape):
    W = np.random.default_rng(sum(shape)).standard_normal(shape)
    W[np.abs(W) < 0.05] = 0.3  # keep |w| off the kink of L1
    W = dev(W)
    reg, n = cls(0.7), 13
    numeric = numerical_gradient(lambda: np.asarray(reg.cost([W], n)), W, np.asarray(1.0))
    assert relative_error(reg.grad(W, n), numeric) < 1e-6


@pytest.mark.parametrize("cls", [L1, L2])
def test_zero_lambda_costs_nothing(cls):
    assert cls(0.0).cost([W1, W2], n=3) == 0.0
    np.testing.assert_array_equal(host(cls(0.0).grad(W1, n=3)), np.zeros(W1.shape))


@pytest.mark.parametrize("cls", [L1, L2])
@pytest.mark.parametrize("lmbda", [-0.1, float("nan")])
def test_bad_lambda_is_a_config_error(cls, lmbda):
    with pytest.raises(ConfigError, match="lmbda="):
        cls(lmbda)


def test_registry_and_repr():
    assert REGULARIZERS == {"l2": L2, "l1": L1}
    assert repr(L2(0.5)) == "L2(lmbda=0.5)"

"""Costs (2.5, 2.7.1, 2.7.2): values by hand, gradients by central differences, and the fused
delta^L = a - y of cross-entropy after a sigmoid and log-likelihood after a softmax."""

import math

import numpy as np
import pytest
from helpers import dev, host

from tiefnet.backend import xp
from tiefnet.errors import ShapeError
from tiefnet.gradcheck import check_loss, numerical_gradient, relative_error
from tiefnet.nn import LOSSES, CrossEntropy, Dense, LogLikelihood, Quadratic, Sequential, Sigmoid, Softmax, Tanh
from tiefnet.nn.layer import Layer

# The tiny example: N = 2 samples, K = 2 outputs (on the device).
A = dev(np.array([[0.8, 0.2], [0.4, 0.6]]))
Y = dev(np.array([[1.0, 0.0], [0.0, 1.0]]))
SHAPES = [(1, 1), (1, 3), (4, 2), (6, 10)]  # (N, K)


def test_quadratic_by_hand():
    """C = 1/(2N) sum ||y - a||^2 = 1/4 ((0.2^2 + 0.2^2) + (0.4^2 + 0.4^2)) = 0.1."""
    assert Quadratic().cost(A, Y) == pytest.approx(0.1, rel=1e-12)
    np.testing.assert_allclose(host(Quadratic().grad(A, Y)), [[-0.1, 0.1], [0.2, -0.2]], rtol=1e-12)


def test_cross_entropy_by_hand():
    """C = -1/2 [ln 0.8 + ln(1 - 0.2) + ln(1 - 0.4) + ln 0.6] = -(ln 0.8 + ln 0.6) = 0.7339691751."""
    assert CrossEntropy().cost(A, Y) == pytest.approx(-(math.log(0.8) + math.log(0.6)), rel=1e-12)
    assert CrossEntropy().cost(A, Y) == pytest.approx(0.7339691751, rel=1e-9)
    # dC/da_j = (a_j - y_j) / (a_j (1 - a_j)) / N
    expected = np.array([[-0.2 / 0.16, 0.2 / 0.16], [0.4 / 0.24, -0.4 / 0.24]]) / 2
    np.testing.assert_allclose(host(CrossEntropy().grad(A, Y)), expected, rtol=1e-12)


def test_log_likelihood_by_hand():
    """C = -1/2 (ln 0.8 + ln 0.6) = 0.3669845875: only the true class's output counts."""
    assert LogLikelihood().cost(A, Y) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2, rel=1e-12)
    np.testing.assert_allclose(host(LogLikelihood().grad(A, Y)), [[-1 / 0.8 / 2, 0.0], [0.0, -1 / 0.6 / 2]],
                               rtol=1e-12)


@pytest.mark.parametrize("loss", [Quadratic(), CrossEntropy(), LogLikelihood()], ids=lambda l: l.name)
def test_call_returns_cost_and_grad(loss):
    cost, grad = loss(A, Y)
    assert cost == loss.cost(A, Y)
    np.testing.assert_array_equal(host(grad), host(loss.grad(A, Y)))
    assert isinstance(cost, float)


def test_perfect_output_costs_nothing():
    assert Quadratic().cost(Y, Y) == 0.0
    assert CrossEntropy().cost(Y, Y) == pytest.approx(0.0, abs=1e-10)
    assert LogLikelihood().cost(Y, Y) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saturated_outputs_give_finite_costs(dtype):
    """A saturated a = 0 or 1 on the wrong class: ln 0 is kept finite by a clip."""
    a, y = dev(np.array([[0.0, 1.0]], dtype=dtype)), dev(np.array([[1.0, 0.0]], dtype=dtype))
    with np.errstate(all="raise"):  # NumPy backend only; CuPy never raises
        for loss in (CrossEntropy(), LogLikelihood()):
            assert math.isfinite(loss.cost(a, y)) and loss.cost(a, y) > 10
            assert np.isfinite(host(loss.grad(a, y))).all()


def test_registry():
    assert LOSSES == {"quadratic": Quadratic, "cross-entropy": CrossEntropy, "log-likelihood": LogLikelihood}


def test_cancels_only_its_output_layer():
    assert CrossEntropy().cancels(Sigmoid()) and not CrossEntropy().cancels(Softmax())
    assert LogLikelihood().cancels(Softmax()) and not LogLikelihood().cancels(Sigmoid())
    assert not Quadratic().cancels(Sigmoid()) and not Quadratic().cancels(Softmax())
    assert not CrossEntropy().cancels(Tanh())


# --- gradients by central differences --------------------------------------------------------
def inputs(loss, N, K, seed):
    """(a, y) on the device."""
    rng = np.random.default_rng(seed)
    if isinstance(loss, LogLikelihood) and K > 1:  # a softmax output and one-hot targets
        z = rng.standard_normal((N, K))
        a = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        return dev(a), dev(np.eye(K)[rng.integers(0, K, N)])
    a = 0.05 + 0.9 * rng.random((N, K))  # inside (0, 1), away from the clip (a K=1 softmax is 1.0)
    return dev(a), dev(rng.random((N, K)))  # soft targets in [0, 1] work as well as one-hot


@pytest.mark.parametrize("N, K", SHAPES)
@pytest.mark.parametrize("loss", [Quadratic(), CrossEntropy(), LogLikelihood()], ids=lambda l: l.name)
def test_loss_gradcheck(float64, loss, N, K):
    a, y = inputs(loss, N, K, seed=N * 10 + K)
    assert check_loss(loss, a, y) < 1e-6


# --- the fused path: delta^L = a - y ------------------------------------------------------------
class Spy(Layer):
    """Identity layer recording the dC/dz^L that reaches it from above."""

    def forward(self, x, train=False):
        self.output = x
        return x

    def backward(self, delta, need_input_grad=True):
        self.delta = delta.copy()
        return delta


FUSED = [(CrossEntropy, Sigmoid), (LogLikelihood, Softmax)]


@pytest.mark.parametrize("N, K", [(1, 2), (3, 3), (8, 5)])
@pytest.mark.parametrize("loss_cls, output_cls", FUSED, ids=["ce-sigmoid", "ll-softmax"])
def test_fused_delta_equals_chain_rule_and_a_minus_y(float64, loss_cls, output_cls, N, K):
    """(2.7.1, 2.7.2) the fused delta^L = (a - y)/N agrees with dC/da . sigma'(z) (the unfused path)
    at the output and in every parameter gradient below it."""
    rng = np.random.default_rng(N + K)
    x = dev(rng.standard_normal((N, 4)))
    y = dev(np.eye(K)[rng.integers(0, K, N)])
    loss = loss_cls()

    def build():
        layers_rng = np.random.default_rng(0)
        spy = Spy()
        return Sequential(Dense(4, 6, rng=layers_rng), Tanh(), Dense(6, K, rng=layers_rng), spy, output_cls()), spy

    fused, fused_spy = build()
    a = fused.forward(x, train=True)
    dx_fused = fused.backward_from(loss, y, need_input_grad=True)

    unfused, unfused_spy = build()
    unfused.forward(x, train=True)
    dx_unfused = unfused.backward(loss.grad(a, y))  # (BP1): nabla_a C (.) sigma'(z^L), then (BP2)

    np.testing.assert_allclose(host(fused_spy.delta), host((a - y) / N), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(host(loss.delta(a, y)), host((a - y) / N), rtol=1e-12, atol=1e-15)
    assert relative_error(unfused_spy.delta, fused_spy.delta) < 1e-10
    assert relative_error(dx_unfused, dx_fused) < 1e-10
    assert fused.grads.keys() == unfused.grads.keys()
    for name in fused.grads:
        assert relative_error(unfused.grads[name], fused.grads[name]) < 1e-10, name


@pytest.mark.parametrize("loss_cls, output_cls", FUSED, ids=["ce-sigmoid", "ll-softmax"])
def test_fused_path_survives_saturation(float64, loss_cls, output_cls):
    """Where a = 1 exactly on the wrong class the chain rule divides 0 by 0; a - y stays exact."""
    z = dev(np.array([[60.0, -60.0], [-60.0, 60.0]]))
    y = dev(np.array([[0.0, 1.0], [0.0, 1.0]]))
    model = Sequential(Dense(2, 2, rng=np.random.default_rng(0)), output_cls())
    model.layers[0].params["W"][...] = dev(np.eye(2))
    model.layers[0].params["b"][...] = 0.0
    a = model.forward(z, train=True)
    assert model.backward_from(loss_cls(), y) is None  # by default no dC/dx is computed
    np.testing.assert_allclose(host(model.grads["0.b"]), host(((a - y) / 2).sum(axis=0)), rtol=1e-12)
    np.testing.assert_allclose(host(model.grads["0.b"]), [0.5, -0.5], atol=1e-12)


def test_quadratic_after_sigmoid_is_not_fused(float64):
    """Quadratic cost keeps sigma'(z^L) (BP1): delta^L = (a - y) sigma'(z) / N."""
    spy = Spy()
    model = Sequential(spy, Sigmoid())
    z = dev(np.array([[0.3, -1.2]]))
    y = dev(np.array([[1.0, 0.0]]))
    a = model.forward(z, train=True)
    model.backward_from(Quadratic(), y, need_input_grad=True)
    np.testing.assert_allclose(host(spy.delta), host((a - y) * a * (1 - a)), rtol=1e-12)


def test_log_likelihood_of_sequences_sums_over_steps_and_averages_over_sequences():
    """a, y (N, T, K): C = 1/N sum_n sum_t -ln a^t_{n, y} (C = sum_t C^t, 4.2)."""
    rng = np.random.default_rng(0)
    a, y = rng.dirichlet(np.ones(5), (3, 4)), np.eye(5)[rng.integers(0, 5, (3, 4))]
    expected = -np.log((a * y).sum(axis=-1)).sum(axis=1).mean()
    assert LogLikelihood().cost(dev(a), dev(y)) == pytest.approx(expected, rel=1e-6)


# --- the mask of variable-length sequences (captions, 4.4.1) ------------------------------------
def sequences(seed, N=3, T=5, K=4):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((N, T, K))
    a = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    y = np.eye(K)[rng.integers(0, K, (N, T))]
    lengths = [T, 2, 1][:N]
    mask = (np.arange(T)[None, :] < np.array(lengths)[:, None]).astype(np.float64)  # (N, T)
    return a, y, mask, lengths


def test_masked_log_likelihood_is_the_cost_of_the_unpadded_steps(float64):
    a, y, mask, lengths = sequences(0)
    expected = -sum(np.log((a[n, :L] * y[n, :L]).sum(axis=-1)).sum() for n, L in enumerate(lengths)) / len(lengths)
    assert LogLikelihood().cost(dev(a), dev(y), dev(mask)) == pytest.approx(expected, rel=1e-12)
    assert LogLikelihood().cost(dev(a), dev(y), dev(np.ones_like(mask))) == pytest.approx(
        LogLikelihood().cost(dev(a), dev(y)), rel=1e-12)


def test_masked_log_likelihood_gradcheck_and_no_gradient_at_padding(float64):
    a, y, mask, _ = sequences(1)
    loss = LogLikelihood()
    a, y, m = dev(a), dev(y), dev(mask)
    numeric = numerical_gradient(lambda: xp.asarray(loss.cost(a, y, m)), a, xp.asarray(1.0))
    assert relative_error(loss.grad(a, y, m), numeric) < 1e-6
    padded = host(mask) == 0
    assert not host(loss.grad(a, y, m))[padded].any() and not host(loss.delta(a, y, m))[padded].any()


def test_masked_delta_through_softmax_equals_the_chain_rule(float64):
    """delta^L = mask (a - y)/N through backward_from(loss, y, mask) equals dC/da . softmax'(z)."""
    a_np, y_np, mask, _ = sequences(2)
    z = dev(np.log(a_np))
    fused, unfused = Sequential(Softmax()), Sequential(Spy(), Softmax())
    fused.forward(z, train=True)
    dz_fused = fused.backward_from(LogLikelihood(), dev(y_np), dev(mask), need_input_grad=True)
    a = unfused.forward(z, train=True)
    dz_unfused = unfused.backward(LogLikelihood().grad(a, dev(y_np), dev(mask)))
    assert relative_error(dz_fused, dz_unfused) < 1e-10


def test_mask_of_the_wrong_shape_is_a_shape_error():
    a, y, mask, _ = sequences(3)
    with pytest.raises(ShapeError, match=r"mask of shape \(5, 3\)"):
        LogLikelihood().cost(dev(a), dev(y), dev(mask.T))

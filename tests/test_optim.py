"""Gradient-descent steps (2.5), their regularised forms (2.7.3), momentum, Adam, and the
learning-rate schedule. The PyTorch comparisons live in tests/nn/test_torch_reference.py."""

import math

import numpy as np
import pytest
from helpers import dev, host

from tiefnet.backend import xp
from tiefnet.errors import ConfigError
from tiefnet.nn import L1, L2, Dense, Sequential, Sigmoid
from tiefnet.optim import OPTIMIZERS, SGD, Adam, Momentum, ReduceOnPlateau, RMSProp


def make_model(seed=0):
    """Two Dense layers, one nested, with fixed gradients written into them."""
    rng = np.random.default_rng(seed)
    model = Sequential(Dense(3, 4, rng=rng), Sigmoid(), Sequential(Dense(4, 2, rng=rng)))
    model.layers[0].params["W"][0, 0] = 0.0  # a weight at exactly 0 (sgn(0) = 0 for L1)
    for layer in model.param_layers():
        for name, p in layer.params.items():
            layer.grads[name] = dev(rng.standard_normal(p.shape), dtype=p.dtype)
    return model


def snapshot(arrays):
    """NumPy copies of a model's params or grads."""
    return {k: host(v).copy() for k, v in arrays.items()}


def test_bind_regularises_weights_only_and_flattens_containers():
    model = make_model()
    optimizer = SGD(0.1).bind(model, n=50)
    assert optimizer.n == 50
    weights, biases = optimizer.groups
    assert (weights.decayed, biases.decayed) == (True, False)
    assert (weights.p.size, biases.p.size) == (3 * 4 + 4 * 2, 4 + 2)  # nested Dense included
    inner = model.layers[2].layers[0]
    for layer in (model.layers[0], inner):  # parameters and gradients are views of the groups
        # (xp.shares_memory: host() copies CuPy arrays, so np.shares_memory would always say no)
        assert xp.shares_memory(layer.params["W"], weights.p)
        assert xp.shares_memory(layer.grads["W"], weights.g)
        assert xp.shares_memory(layer.params["b"], biases.p)


def test_sgd_step_is_w_minus_eta_grad():
    model = make_model()
    before, grads = snapshot(model.params), snapshot(model.grads)
    SGD(0.3).bind(model, n=10).step()
    for name, p in model.params.items():
        np.testing.assert_array_equal(host(p), before[name] - 0.3 * grads[name])


@pytest.mark.parametrize("eta, lmbda, n", [(0.5, 5.0, 1000), (3.0, 0.1, 50000), (0.1, 2.0, 7)])
def test_sgd_l2_step_is_the_lectures_rescaling(eta, lmbda, n):
    """(2.7.3) w -> (1 - eta lambda/n) w - eta dC_0/dw exactly; b -> b - eta dC_0/db (no decay)."""
    model = make_model()
    before, grads = snapshot(model.params), snapshot(model.grads)
    SGD(eta, regularizer=L2(lmbda)).bind(model, n).step()
    for name, p in model.params.items():
        if name.endswith("W"):
            expected = (1 - eta * lmbda / n) * before[name] - eta * grads[name]
        else:
            expected = before[name] - eta * grads[name]
        np.testing.assert_array_equal(host(p), expected)
        assert p.dtype == np.float32


def test_sgd_l1_step():
    """(2.7.3) w -> w - (eta lambda/n) sgn(w) - eta dC_0/dw; a weight at 0 gets no L1 push."""
    eta, lmbda, n = 0.5, 4.0, 20
    model = make_model()
    before, grads = snapshot(model.params), snapshot(model.grads)
    SGD(eta, regularizer=L1(lmbda)).bind(model, n).step()
    for name, p in model.params.items():
        shrink = (eta * lmbda / n) * np.sign(before[name]) if name.endswith("W") else 0.0
        np.testing.assert_allclose(host(p), before[name] - shrink - eta * grads[name], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(float(model.params["0.W"][0, 0]), -eta * grads["0.W"][0, 0], rtol=1e-6)


@pytest.mark.parametrize("cls", [SGD, Momentum, Adam])
def test_zero_lambda_is_no_regularisation(cls):
    a, b = make_model(), make_model()
    cls(0.1).bind(a, 10).step()
    cls(0.1, regularizer=L2(0.0)).bind(b, 10).step()
    for name in a.params:
        np.testing.assert_array_equal(host(a.params[name]), host(b.params[name]))


def test_momentum_by_hand():
    """v -> mu v - eta g; w -> w + v, three steps with changing gradients (scalars: no shapes to hide in)."""
    layer = Dense(1, 1)
    layer.params["W"][...] = 1.0
    layer.params["b"][...] = 0.0
    optimizer = Momentum(0.1, mu=0.5).bind(layer, 1)
    w, v = 1.0, 0.0
    for g in (1.0, -2.0, 0.5):
        layer.grads["W"] = dev(np.full((1, 1), g, np.float32))
        layer.grads["b"] = dev(np.zeros(1, np.float32))
        optimizer.step()
        v = 0.5 * v - 0.1 * g
        w = w + v
        assert float(layer.params["W"][0, 0]) == pytest.approx(w, rel=1e-6)
    assert w == pytest.approx(1.0 - 0.1 + (-0.05 + 0.2) + (0.075 - 0.05))


def test_momentum_with_regularisation_adds_lambda_over_n():
    layer = Dense(1, 1)
    layer.params["W"][...] = 2.0
    layer.grads["W"], layer.grads["b"] = dev(np.zeros((1, 1), np.float32)), dev(np.zeros(1, np.float32))
    Momentum(0.1, mu=0.9, regularizer=L2(1.0)).bind(layer, 4).step()
    assert float(layer.params["W"][0, 0]) == pytest.approx(2.0 - 0.1 * 2.0 / 4)
    layer.params["W"][...] = 2.0
    Momentum(0.1, mu=0.9, regularizer=L1(1.0)).bind(layer, 4).step()
    assert float(layer.params["W"][0, 0]) == pytest.approx(2.0 - 0.1 / 4)


def test_adam_by_hand():
    """m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; w -= eta m_hat / (sqrt(v_hat) + eps)."""
    layer = Dense(1, 1)
    layer.params["W"][...] = 1.0
    eta, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    optimizer = Adam(eta, beta1=b1, beta2=b2, eps=eps).bind(layer, 1)
    w, m, v = 1.0, 0.0, 0.0
    for t, g in enumerate((1.0, -3.0, 0.25, 2.0), start=1):
        layer.grads["W"] = dev(np.full((1, 1), g, np.float32))
        layer.grads["b"] = dev(np.zeros(1, np.float32))
        optimizer.step()
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w -= eta * (m / (1 - b1**t)) / (math.sqrt(v / (1 - b2**t)) + eps)
        assert float(layer.params["W"][0, 0]) == pytest.approx(w, rel=1e-6)
    assert optimizer.t == 4


def test_adam_first_step_is_eta_times_sign():
    """With bias correction, the first step is eta * g / |g| whatever the size of g."""
    model = make_model()
    before, grads = snapshot(model.params), snapshot(model.grads)
    Adam(0.01).bind(model, 10).step()
    for name, p in model.params.items():
        np.testing.assert_allclose(host(p), before[name] - 0.01 * np.sign(grads[name]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [Momentum, Adam, RMSProp])
def test_state_dict_round_trip_continues_identically(cls):
    a = make_model()
    opt_a = cls(0.05).bind(a, 10)
    opt_a.step()
    meta, arrays = opt_a.state_dict()
    b = make_model()
    for name, p in a.params.items():
        b.params[name][...] = p
    opt_b = cls(1.0).bind(b, 10)
    opt_b.load_state_dict(meta, {k: v.copy() for k, v in arrays.items()})
    assert opt_b.eta == 0.05
    opt_a.step()
    opt_b.step()
    for name in a.params:
        np.testing.assert_array_equal(host(a.params[name]), host(b.params[name]))


def test_sgd_state_dict_is_eta():
    opt = SGD(0.25)
    assert opt.state_dict() == ({"eta": 0.25}, {})
    opt.load_state_dict({"eta": 0.5}, {})
    assert opt.eta == 0.5


def test_registry():
    assert OPTIMIZERS == {"sgd": SGD, "momentum": Momentum, "adam": Adam}


# --- settings are validated in the constructor ---------------------------------------------------
@pytest.mark.parametrize("cls", [SGD, Momentum, Adam])
@pytest.mark.parametrize("eta", [0, 0.0, -1.0, float("nan"), float("inf"), "0.1", None])
def test_bad_eta_is_a_config_error(cls, eta):
    with pytest.raises(ConfigError, match=f"{cls.__name__}: eta="):
        cls(eta)


@pytest.mark.parametrize("cls", [SGD, Momentum, Adam])
@pytest.mark.parametrize("eta", [np.float32(0.5), np.int64(2)])
def test_numpy_scalar_eta_is_accepted(cls, eta):
    assert cls(eta).eta == float(eta)


@pytest.mark.parametrize("mu", [-0.1, 1.0, 1.5, float("nan")])
def test_bad_mu_is_a_config_error(mu):
    with pytest.raises(ConfigError, match="Momentum: mu="):
        Momentum(0.1, mu=mu)


@pytest.mark.parametrize("betas", [(1.0, 0.999), (0.9, 1.0), (-0.1, 0.9), (0.9, -0.5), (float("nan"), 0.9)])
def test_bad_betas_are_a_config_error(betas):
    with pytest.raises(ConfigError, match="Adam: beta1="):
        Adam(0.001, beta1=betas[0], beta2=betas[1])


def test_good_settings_are_kept():
    assert SGD(np.float64(0.5)).eta == 0.5 and SGD(3).eta == 3.0
    assert Momentum(0.1, mu=0.0).mu == 0.0
    adam = Adam()
    assert (adam.eta, adam.beta1, adam.beta2, adam.eps) == (1e-3, 0.9, 0.999, 1e-8)


# --- ReduceOnPlateau --------------------------------------------------------------------------------
def test_reduce_on_plateau_halves_eta_after_patience_bad_epochs():
    optimizer = SGD(1.0)
    schedule = ReduceOnPlateau(patience=3)
    accuracies = [0.5, 0.6, 0.6, 0.55, 0.59, 0.7, 0.7, 0.7, 0.7]
    etas, lowered = [], []
    for accuracy in accuracies:
        lowered.append(schedule.update(optimizer, accuracy))
        etas.append(optimizer.eta)
    # epochs 3, 4, 5 do not beat 0.6: eta halves at the third; 0.7 improves; then 3 more bad epochs
    assert lowered == [False, False, False, False, True, False, False, False, True]
    assert etas == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25]


def test_reduce_on_plateau_factor_and_floor():
    optimizer = SGD(1.0)
    schedule = ReduceOnPlateau(patience=1, factor=10.0, min_eta=0.05)
    for accuracy in (0.5, 0.5, 0.5, 0.5):
        schedule.update(optimizer, accuracy)
    assert optimizer.eta == 0.05  # 1.0 -> 0.1 -> 0.05 (floor) -> 0.05


def test_reduce_on_plateau_state_round_trip():
    schedule = ReduceOnPlateau(patience=4)
    optimizer = SGD(1.0)
    for accuracy in (0.3, 0.2, 0.1):
        schedule.update(optimizer, accuracy)
    other = ReduceOnPlateau(patience=4)
    other.load_state(schedule.state())
    assert (other.best, other.bad_epochs) == (0.3, 2)


@pytest.mark.parametrize("patience, factor", [(0, 2.0), (-1, 2.0), (3, 1.0), (3, 0.5)])
def test_reduce_on_plateau_rejects_bad_settings(patience, factor):
    with pytest.raises(ConfigError, match="ReduceOnPlateau"):
        ReduceOnPlateau(patience=patience, factor=factor)


def test_arrays_assigned_after_bind_are_still_trained():
    """bind packs parameters into flat groups; a layer that assigns new arrays (the plain
    ``self.grads["W"] = ...`` style) or code that assigns a parameter is copied in, not lost."""
    model = make_model()
    optimizer = SGD(0.5).bind(model, n=10)
    dense = model.layers[0]
    dense.params["W"] = dev(np.ones((4, 3)), dtype=dense.params["b"].dtype)
    dense.grads["W"] = dev(np.full((4, 3), 2.0), dtype=dense.params["b"].dtype)
    optimizer.step()
    np.testing.assert_allclose(host(dense.params["W"]), np.ones((4, 3)) - 0.5 * 2.0)
    assert xp.shares_memory(dense.params["W"], optimizer.groups[0].p)


# --- RMSProp (5.3, Mnih et al. 2015) -------------------------------------------------------------
def test_rmsprop_by_hand():
    """v = alpha v + (1 - alpha) g^2; w -> w - eta g / (sqrt(v) + eps), two steps with the same g."""
    model = make_model()
    before, grads = snapshot(model.params), snapshot(model.grads)
    eta, alpha, eps = 0.01, 0.9, 1e-6
    opt = RMSProp(eta, alpha=alpha, eps=eps).bind(model, 10)
    opt.step()
    opt.step()
    for name, p in model.params.items():
        g = grads[name]
        v1 = (1 - alpha) * g * g
        w1 = before[name] - eta * g / (np.sqrt(v1) + eps)
        v2 = alpha * v1 + (1 - alpha) * g * g
        np.testing.assert_allclose(host(p), w1 - eta * g / (np.sqrt(v2) + eps), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs", [{"alpha": 1.0}, {"alpha": -0.1}, {"eps": 0.0}, {"eta": 0.0}])
def test_rmsprop_bad_settings_are_a_config_error(kwargs):
    with pytest.raises(ConfigError, match="RMSProp"):
        RMSProp(**{"eta": 0.01, **kwargs})

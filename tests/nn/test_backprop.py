"""Backpropagation (2.6): BP1-BP4 worked by hand on tiny sigmoid networks, and whole-network
gradient checks of the cost C(w, b) by central differences.

The lecture writes one sample as a column vector:
    (BP1) delta^L = nabla_a C (.) sigma'(z^L)
    (BP2) delta^l = ((w^{l+1})^T delta^{l+1}) (.) sigma'(z^l)
    (BP3) dC/db^l_j = delta^l_j
    (BP4) dC/dw^l_jk = a^{l-1}_k delta^l_j
and the mini-batch gradient is the mean of the per-sample gradients. The reference below is written
in plain Python loops over j and k, independent of the library's matrix form.
"""

import math

import numpy as np
import pytest
from helpers import dev, fixed_mask, host

from tiefnet.gradcheck import numerical_gradient, relative_error
from tiefnet.nn import (
    Conv2d, CrossEntropy, Dense, Dropout, Flatten, LogLikelihood, MaxPool2d, Quadratic, ReLU, Reshape, Sequential,
    Sigmoid, Softmax, Tanh,
)


def sigma(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def sigma_prime(z: float) -> float:
    return sigma(z) * (1.0 - sigma(z))


def backprop_by_hand(weights, biases, x, y, cost="quadratic"):
    """One sample: lists of lists, scalar arithmetic only. Returns (dW per layer, db per layer)."""
    activations, zs = [list(x)], []
    for W, b in zip(weights, biases):  # feedforward: z^l = w^l a^{l-1} + b^l, a^l = sigma(z^l)
        a_prev = activations[-1]
        z = [sum(W[j][k] * a_prev[k] for k in range(len(a_prev))) + b[j] for j in range(len(b))]
        zs.append(z)
        activations.append([sigma(zj) for zj in z])
    a_L, z_L = activations[-1], zs[-1]
    if cost == "quadratic":  # (BP1) with nabla_a C = a - y for C = 1/2 ||y - a||^2
        delta = [(a_L[j] - y[j]) * sigma_prime(z_L[j]) for j in range(len(a_L))]
    else:  # cross-entropy after a sigmoid: sigma' cancels, delta^L = a - y (2.7.1)
        delta = [a_L[j] - y[j] for j in range(len(a_L))]
    dWs, dbs = [None] * len(weights), [None] * len(weights)
    for l in range(len(weights) - 1, -1, -1):
        a_prev = activations[l]
        dbs[l] = list(delta)  # (BP3)
        dWs[l] = [[a_prev[k] * delta[j] for k in range(len(a_prev))] for j in range(len(delta))]  # (BP4)
        if l > 0:  # (BP2)
            W = weights[l]
            delta = [sum(W[j][k] * delta[j] for j in range(len(delta))) * sigma_prime(zs[l - 1][k])
                     for k in range(len(a_prev))]
    return dWs, dbs


def library_grads(weights, biases, x, y, loss):
    layers = []
    for W, b in zip(weights, biases):
        dense = Dense(len(W[0]), len(W))
        dense.params["W"][...] = dev(W)
        dense.params["b"][...] = dev(b)
        layers += [dense, Sigmoid()]
    model = Sequential(*layers)
    model.forward(dev(x, dtype=np.float64), train=True)
    model.backward_from(loss, dev(y, dtype=np.float64))
    return model


def test_bp1_to_bp4_on_a_2_2_1_network_by_hand(float64):
    """w^1 = 0, b^1 = 0: a^1 = (0.5, 0.5); w^2 = (1, -1), b^2 = 0: z^2 = 0, a^2 = 0.5; x = (1, 2), y = 1.
    (BP1) delta^2 = (0.5 - 1) * sigma'(0) = -0.5 * 0.25 = -0.125
    (BP2) delta^1 = sigma'(0) * (1, -1) * -0.125 = (-0.03125, 0.03125)
    (BP3) dC/db^2 = -0.125, dC/db^1 = (-0.03125, 0.03125)
    (BP4) dC/dw^2 = a^1 delta^2 = (-0.0625, -0.0625); dC/dw^1_jk = x_k delta^1_j."""
    weights = [[[0.0, 0.0], [0.0, 0.0]], [[1.0, -1.0]]]
    biases = [[0.0, 0.0], [0.0]]
    model = library_grads(weights, biases, [[1.0, 2.0]], [[1.0]], Quadratic())
    g = {name: host(grad) for name, grad in model.grads.items()}
    np.testing.assert_allclose(g["2.b"], [-0.125], rtol=1e-12)
    np.testing.assert_allclose(g["2.W"], [[-0.0625, -0.0625]], rtol=1e-12)
    np.testing.assert_allclose(g["0.b"], [-0.03125, 0.03125], rtol=1e-12)
    np.testing.assert_allclose(g["0.W"], [[-0.03125, -0.0625], [0.03125, 0.0625]], rtol=1e-12)
    # Cross-entropy: delta^2 = a - y = -0.5 (no sigma'(z^2)), delta^1 = 0.25 * (1, -1) * -0.5
    model = library_grads(weights, biases, [[1.0, 2.0]], [[1.0]], CrossEntropy())
    g = {name: host(grad) for name, grad in model.grads.items()}
    np.testing.assert_allclose(g["2.b"], [-0.5], rtol=1e-12)
    np.testing.assert_allclose(g["2.W"], [[-0.25, -0.25]], rtol=1e-12)
    np.testing.assert_allclose(g["0.W"], [[-0.125, -0.25], [0.125, 0.25]], rtol=1e-12)


@pytest.mark.parametrize("sizes", [(2, 2, 1), (2, 3, 2), (3, 4, 2, 2)])
@pytest.mark.parametrize("cost, loss", [("quadratic", Quadratic()), ("cross-entropy", CrossEntropy())])
@pytest.mark.parametrize("seed", [0, 1])
def test_mini_batch_of_3_equals_mean_of_per_sample_bp(float64, sizes, cost, loss, seed):
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((n_out, n_in)).tolist() for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    biases = [rng.standard_normal(n_out).tolist() for n_out in sizes[1:]]
    x = rng.standard_normal((3, sizes[0])).tolist()
    y = rng.random((3, sizes[-1])).round().tolist()

    mean_dW = [np.zeros((n_out, n_in)) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    mean_db = [np.zeros(n_out) for n_out in sizes[1:]]
    for xs, ys in zip(x, y):
        dWs, dbs = backprop_by_hand(weights, biases, xs, ys, cost)
        for l in range(len(weights)):
            mean_dW[l] += np.array(dWs[l]) / 3  # C = 1/n sum_x C_x: the gradient is the mean
            mean_db[l] += np.array(dbs[l]) / 3

    model = library_grads(weights, biases, x, y, loss)
    for l in range(len(weights)):
        np.testing.assert_allclose(host(model.grads[f"{2 * l}.W"]), mean_dW[l], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(host(model.grads[f"{2 * l}.b"]), mean_db[l], rtol=1e-10, atol=1e-14)


# --- whole-network gradient checks --------------------------------------------------------------
def cost_of(model, loss, x, y, train=False):
    return lambda: np.asarray(loss.cost(model.forward(x, train), y))


def check_network(model, loss, x, y, train=False):
    """Relative error per parameter of backward_from's gradient vs central differences of C."""
    model.forward(x, train=True)
    model.backward_from(loss, y)
    analytic = {name: g.copy() for name, g in model.grads.items()}
    f = cost_of(model, loss, x, y, train)
    return {name: relative_error(analytic[name], numerical_gradient(f, p, np.asarray(1.0)))
            for name, p in model.params.items()}



NETWORKS = {
    "tanh-relu-sigmoid-ce": (lambda r: [Dense(20, 7, rng=r), Tanh(), Dense(7, 5, init="he", rng=r), ReLU(),
                                        Dense(5, 3, rng=r), Sigmoid()], CrossEntropy),
    "relu-tanh-softmax-ll": (lambda r: [Dense(20, 7, init="he", rng=r), ReLU(), Dense(7, 5, rng=r), Tanh(),
                                        Dense(5, 3, rng=r), Softmax()], LogLikelihood),
    "sigmoid-quadratic": (lambda r: [Dense(20, 7, rng=r), Sigmoid(), Dense(7, 5, rng=r), Sigmoid(),
                                     Dense(5, 3, rng=r), Sigmoid()], Quadratic),
    "softmax-quadratic": (lambda r: [Dense(20, 7, rng=r), Tanh(), Dense(7, 3, rng=r), Softmax()], Quadratic),
    "dropout-softmax-ll": (lambda r: [Dense(20, 7, rng=r), Tanh(), fixed_mask(Dropout(0.5), 3),
                                      Dense(7, 5, rng=r), ReLU(), Dense(5, 3, rng=r), Softmax()], LogLikelihood),
    "nested-ce": (lambda r: [Sequential(Dense(20, 7, rng=r), Tanh()), Dense(7, 3, rng=r), Sigmoid()], CrossEntropy),
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize("N", [1, 4])
def test_whole_network_gradient(float64, name, N):
    build, loss_cls = NETWORKS[name]
    model = Sequential(*build(np.random.default_rng(5)))
    rng = np.random.default_rng(N)
    x = dev(rng.standard_normal((N, 20)))
    y = dev(np.eye(3)[rng.integers(0, 3, N)])
    errors = check_network(model, loss_cls(), x, y, train="dropout" in name)
    assert max(errors.values()) < 1e-6, errors



def assert_sampled_gradients(model, loss, x, y, rng, count, h=1e-6):
    """backward_from's gradient against central differences of C on ``count`` random entries of
    each parameter array (the full quotient would need two forward passes per entry)."""
    model.forward(x, train=True)
    model.backward_from(loss, y)
    for name, p in model.params.items():
        flat, grad = p.reshape(-1), host(model.grads[name]).reshape(-1)  # flat: a view of p
        picks = rng.choice(flat.size, size=min(count, flat.size), replace=False)
        numeric = np.empty(len(picks))
        for i, j in enumerate(picks.tolist()):
            old = float(flat[j])  # a number: CuPy's flat[j] is a 0-d view that the writes below would change
            flat[j] = old + h
            plus = loss.cost(model.forward(x), y)
            flat[j] = old - h
            minus = loss.cost(model.forward(x), y)
            flat[j] = old
            numeric[i] = (plus - minus) / (2 * h)
        assert relative_error(grad[picks], numeric) < 1e-6, name

def test_mnist_sized_network_gradient_on_sampled_entries(float64):
    """784-30-10 (the lecture's net), cross-entropy: 40 random entries of each array by central
    differences (the full quotient would need 2 x 23,860 forward passes)."""
    model = Sequential(Dense(784, 30, rng=np.random.default_rng(0)), Sigmoid(),
                       Dense(30, 10, rng=np.random.default_rng(1)), Sigmoid())
    rng = np.random.default_rng(2)
    x, y = dev(rng.random((5, 784))), dev(np.eye(10)[rng.integers(0, 10, 5)])
    loss = CrossEntropy()
    assert_sampled_gradients(model, loss, x, y, rng, count=40)


def test_small_cnn_gradient_on_sampled_entries(float64):
    """Reshape -> Conv2d -> ReLU -> MaxPool2d -> Flatten -> Dense -> Softmax with the log-likelihood
    cost (3.2's (BP1)-(BP4)-conv chained with the dense layers): backward_from's gradient against
    central differences of C on 20 random entries of each parameter array."""
    model = Sequential(Reshape((1, 8, 8)), Conv2d(1, 3, 3, padding=1, rng=np.random.default_rng(0)), ReLU(),
                       MaxPool2d(2), Flatten(), Dense(48, 5, rng=np.random.default_rng(1)), Softmax())
    model.layers[1].params["b"][...] = dev(np.random.default_rng(2).standard_normal(3) * 0.1)
    rng = np.random.default_rng(3)
    x, y = dev(rng.standard_normal((4, 64))), dev(np.eye(5)[rng.integers(0, 5, 4)])
    loss = LogLikelihood()
    assert_sampled_gradients(model, loss, x, y, rng, count=20)

"""Layers, costs and optimizers against PyTorch (float64, copied weights): forward values and
autograd's backward. PyTorch is the test-only referee; without it this module is skipped.
"""

import numpy as np
import pytest
from helpers import dev

torch = pytest.importorskip("torch")
F = torch.nn.functional

from torch_helpers import RTOL, close, data, leaf  # noqa: E402

from tiefnet.nn import (  # noqa: E402  (after the importorskip)
    L2, CrossEntropy, Dense, Dropout, LogLikelihood, Quadratic, ReLU, Sequential, Sigmoid, Softmax, Tanh,
)
from tiefnet.optim import SGD, Adam, Momentum  # noqa: E402

SHAPES = [(1, 3, 2), (5, 4, 3), (8, 10, 7)]  # (N, n_in, n_out)




# --- layers ------------------------------------------------------------------------------------
@pytest.mark.parametrize("N, n_in, n_out", SHAPES)
def test_dense_matches_torch_linear(float64, N, n_in, n_out):
    layer = Dense(n_in, n_out, rng=np.random.default_rng(n_in))
    x, upstream = data((N, n_in), 1), data((N, n_out), 2)
    W, b, xt = leaf(layer.params["W"]), leaf(layer.params["b"]), leaf(x)  # W is (out, in) in both
    zt = F.linear(xt, W, b)
    zt.backward(torch.tensor(upstream))
    close(layer.forward(dev(x), train=True), zt)
    close(layer.backward(dev(upstream)), xt.grad)
    close(layer.grads["W"], W.grad)
    close(layer.grads["b"], b.grad)


TORCH_ACTIVATIONS = {
    "Sigmoid": (Sigmoid, torch.sigmoid),
    "Tanh": (Tanh, torch.tanh),
    "ReLU": (ReLU, F.relu),
    "Softmax": (Softmax, lambda z: F.softmax(z, dim=-1)),
}


@pytest.mark.parametrize("shape", [(1, 1), (4, 3), (3, 2, 5)])
@pytest.mark.parametrize("name", sorted(TORCH_ACTIVATIONS))
def test_activation_matches_torch(float64, name, shape):
    ours_cls, theirs = TORCH_ACTIVATIONS[name]
    u = data(shape, 3)
    z = np.sign(u) * (0.1 + np.abs(u)) * 2  # away from ReLU's kink
    upstream = data(shape, 4)
    layer = ours_cls()
    zt = leaf(z)
    at = theirs(zt)
    at.backward(torch.tensor(upstream))
    close(layer.forward(dev(z), train=True), at)
    close(layer.backward(dev(upstream)), zt.grad)


@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("p", [0.3, 0.5])
def test_dropout_matches_torch_with_the_same_mask(float64, p, per_sample):
    shape = (6, 5)
    x, upstream = data(shape, 5), data(shape, 6)
    layer = Dropout(p, per_sample=per_sample, rng=np.random.default_rng(8))
    out = layer.forward(dev(x), train=True)
    keep = torch.tensor(np.random.default_rng(8).random(shape if per_sample else (1, 5)) >= p)
    xt = leaf(x)
    at = xt * keep / (1 - p)  # inverted dropout with our mask
    at.backward(torch.tensor(upstream))
    close(out, at)
    close(layer.backward(dev(upstream)), xt.grad)


def test_sequential_matches_torch(float64):
    rng = np.random.default_rng(0)
    model = Sequential(Dense(6, 5, rng=rng), Tanh(), Dense(5, 4, rng=rng), ReLU(), Dense(4, 3, rng=rng), Softmax())
    x, upstream = data((7, 6), 1), data((7, 3), 2)
    params = {k: leaf(v) for k, v in model.params.items()}
    xt = leaf(x)
    h = torch.tanh(F.linear(xt, params["0.W"], params["0.b"]))
    h = F.relu(F.linear(h, params["2.W"], params["2.b"]))
    at = F.softmax(F.linear(h, params["4.W"], params["4.b"]), dim=-1)
    at.backward(torch.tensor(upstream))
    close(model.forward(dev(x), train=True), at)
    close(model.backward(dev(upstream)), xt.grad)
    for name, g in model.grads.items():
        close(g, params[name].grad)


# --- costs ---------------------------------------------------------------------------------------
def probabilities(shape, seed):
    return 0.05 + 0.9 * np.random.default_rng(seed).random(shape)


def one_hot_targets(N, K, seed):
    labels = np.random.default_rng(seed).integers(0, K, N)
    return labels, np.eye(K)[labels]


@pytest.mark.parametrize("N, K", [(1, 2), (4, 3), (10, 10)])
def test_quadratic_is_mse_sum_over_2n(float64, N, K):
    a, y = probabilities((N, K), 1), np.random.default_rng(2).random((N, K))
    at = leaf(a)
    cost = F.mse_loss(at, torch.tensor(y), reduction="sum") / (2 * N)
    cost.backward()
    loss = Quadratic()
    assert loss.cost(dev(a), dev(y)) == pytest.approx(cost.item(), rel=RTOL)
    close(loss.grad(dev(a), dev(y)), at.grad)


@pytest.mark.parametrize("N, K", [(1, 2), (4, 3), (10, 10)])
@pytest.mark.parametrize("soft", [False, True])
def test_cross_entropy_is_bce_summed_over_outputs_over_n(float64, N, K, soft):
    a = probabilities((N, K), 1)
    y = np.random.default_rng(2).random((N, K)) if soft else one_hot_targets(N, K, 2)[1]
    at = leaf(a)
    cost = F.binary_cross_entropy(at, torch.tensor(y), reduction="sum") / N
    cost.backward()
    loss = CrossEntropy()
    assert loss.cost(dev(a), dev(y)) == pytest.approx(cost.item(), rel=RTOL)
    close(loss.grad(dev(a), dev(y)), at.grad)


@pytest.mark.parametrize("N, K", [(1, 2), (4, 3), (10, 10)])
def test_cross_entropy_after_sigmoid_is_bce_with_logits(float64, N, K):
    z, (_, y) = 3 * data((N, K), 1), one_hot_targets(N, K, 2)
    zt = leaf(z)
    cost = F.binary_cross_entropy_with_logits(zt, torch.tensor(y), reduction="sum") / N
    cost.backward()
    model = Sequential(Sigmoid())
    a = model.forward(dev(z), train=True)
    loss = CrossEntropy()
    assert loss.cost(a, dev(y)) == pytest.approx(cost.item(), rel=RTOL)
    close(model.backward_from(loss, dev(y), need_input_grad=True), zt.grad)  # delta^L = (a - y)/N


@pytest.mark.parametrize("N, K", [(1, 2), (4, 3), (10, 10)])
def test_log_likelihood_is_nll_of_log_softmax(float64, N, K):
    z, (labels, y) = 3 * data((N, K), 1), one_hot_targets(N, K, 2)
    zt = leaf(z)
    cost = F.nll_loss(F.log_softmax(zt, dim=1), torch.tensor(labels))  # mean over the batch
    cost.backward()
    model = Sequential(Softmax())
    a = model.forward(dev(z), train=True)
    loss = LogLikelihood()
    assert loss.cost(a, dev(y)) == pytest.approx(cost.item(), rel=RTOL)
    close(model.backward_from(loss, dev(y), need_input_grad=True), zt.grad)  # fused: (a - y)/N
    close(model.backward(loss.grad(a, dev(y))), zt.grad)  # unfused: softmax Jacobian . dC/da


@pytest.mark.parametrize("N, K", [(1, 2), (4, 3)])
def test_log_likelihood_grad_wrt_a_matches_torch(float64, N, K):
    a = probabilities((N, K), 1)
    labels, y = one_hot_targets(N, K, 2)
    at = leaf(a)
    F.nll_loss(torch.log(at), torch.tensor(labels)).backward()
    close(LogLikelihood().grad(dev(a), dev(y)), at.grad)


# --- optimizers on a quadratic ------------------------------------------------------------------
def quadratic_problem(seed=0):
    """A Dense(4 -> 3) layer fitted to fixed targets by the quadratic cost: a smooth bowl."""
    rng = np.random.default_rng(seed)
    layer = Dense(4, 3, rng=rng)
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    return layer, x, y


def run_ours(optimizer, steps, n=6):
    layer, x, y = quadratic_problem()
    x, y = dev(x), dev(y)
    model = Sequential(layer)
    optimizer.bind(model, n)
    loss = Quadratic()
    for _ in range(steps):
        model.forward(x, train=True)
        model.backward_from(loss, y)
        optimizer.step()
    return layer.params["W"], layer.params["b"]


def run_torch(make_optimizer, steps):
    layer, x, y = quadratic_problem()
    W, b = leaf(layer.params["W"]), leaf(layer.params["b"])
    optimizer = make_optimizer(W, b)
    xt, yt = torch.tensor(x), torch.tensor(y)
    for _ in range(steps):
        optimizer.zero_grad()
        (F.mse_loss(F.linear(xt, W, b), yt, reduction="sum") / (2 * len(x))).backward()
        optimizer.step()
    return W, b


@pytest.mark.parametrize("steps", [1, 2, 7])
@pytest.mark.parametrize("lmbda", [0.0, 0.6])
def test_sgd_matches_torch(float64, steps, lmbda):
    """(1 - eta lambda/n) w - eta g is torch's weight_decay = lambda/n, on weights only."""
    eta, n = 0.1, 6
    W, b = run_ours(SGD(eta, regularizer=L2(lmbda)), steps, n)
    Wt, bt = run_torch(lambda W, b: torch.optim.SGD(
        [{"params": [W], "weight_decay": lmbda / n}, {"params": [b]}], lr=eta), steps)
    close(W, Wt)
    close(b, bt)


@pytest.mark.parametrize("steps", [1, 2, 7])
@pytest.mark.parametrize("mu", [0.5, 0.9])
@pytest.mark.parametrize("lmbda", [0.0, 0.6])
def test_momentum_matches_torch(float64, steps, mu, lmbda):
    """Ours: v = mu v - eta g, w += v. Torch: B = mu B + g, w -= lr B (B_1 = g_1). With a constant
    eta, v = -eta B at every step, so the parameter trajectories are the same."""
    eta, n = 0.05, 6
    W, b = run_ours(Momentum(eta, mu=mu, regularizer=L2(lmbda)), steps, n)
    Wt, bt = run_torch(lambda W, b: torch.optim.SGD(
        [{"params": [W], "weight_decay": lmbda / n}, {"params": [b]}], lr=eta, momentum=mu, dampening=0), steps)
    close(W, Wt)
    close(b, bt)


@pytest.mark.parametrize("steps", [1, 2, 10])
@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.9)])
@pytest.mark.parametrize("lmbda", [0.0, 0.6])
def test_adam_matches_torch(float64, steps, betas, lmbda):
    """Adam with L2 added to the gradient (torch's Adam weight_decay, not AdamW). Our eps sits in
    the Kingma-Ba 'efficient' place (eps-hat), which differs from torch's by O(eps/sqrt(v))."""
    eta, n = 0.01, 6
    W, b = run_ours(Adam(eta, beta1=betas[0], beta2=betas[1], regularizer=L2(lmbda)), steps, n)
    Wt, bt = run_torch(lambda W, b: torch.optim.Adam(
        [{"params": [W], "weight_decay": lmbda / n}, {"params": [b]}], lr=eta, betas=betas, eps=1e-8), steps)
    close(W, Wt)
    close(b, bt)

"""AlphaGo Zero's cost (5.4), nn.PolicyValue: L = (z - nu)^2 - pi . log softmax(logits), the mean over N.

Values by hand, dL/dlogits and dL/dnu by central differences in float64, the same cost in PyTorch
autograd, the error messages, and the c ||theta||^2 term that ``learner.make_optimizer`` adds as
L2 with lmbda = 2c and n = 1 (its gradient 2 c W).
"""

import math

import numpy as np
import pytest
from helpers import dev, host

from tiefnet.backend import xp
from tiefnet.errors import ShapeError
from tiefnet.gradcheck import numerical_gradient, relative_error
from tiefnet.nn import Dense, Parallel, PolicyValue, Sequential, Tanh
from tiefnet.rl.alphazero.learner import make_optimizer

SHAPES = [(1, 1), (1, 4), (3, 2), (5, 9), (8, 7)]  # (N, A)


def batch(N, A, seed, normalised=True):
    """(logits (N, A), nu (N, 1) in (-1, 1), pi (N, A), z (N,) in {-1, 0, 1}) as float64 on the device."""
    rng = np.random.default_rng(seed)
    logits = 2.0 * rng.standard_normal((N, A))
    nu = np.tanh(rng.standard_normal((N, 1)))
    pi = rng.random((N, A)) + 0.01
    if normalised:
        pi /= pi.sum(axis=1, keepdims=True)
    z = rng.integers(-1, 2, N).astype(np.float64)
    return dev(logits), dev(nu), dev(pi), dev(z)


def test_by_hand():
    """N = 2, A = 2: logits 0 (p = 1/2 each) and ln 3 vs 0 (p = 3/4, 1/4).
    value: ((1 - 0.5)^2 + (-1 - 0)^2) / 2 = 0.625; policy: (ln 2 - (0.5 ln 3/4 + 0.5 ln 1/4)) / 2."""
    logits = dev(np.array([[0.0, 0.0], [math.log(3.0), 0.0]]))
    nu = dev(np.array([[0.5], [0.0]]))
    pi = dev(np.array([[1.0, 0.0], [0.5, 0.5]]))
    z = dev(np.array([1.0, -1.0]))
    loss = PolicyValue()
    value, policy = loss.parts((logits, nu), pi, z)
    assert value == pytest.approx(0.625, rel=1e-12)
    assert policy == pytest.approx((math.log(2) - 0.5 * (math.log(0.75) + math.log(0.25))) / 2, rel=1e-12)
    assert loss.cost((logits, nu), pi, z) == pytest.approx(value + policy, rel=1e-12)
    dlogits, dnu = loss.grad((logits, nu), pi, z)
    np.testing.assert_allclose(host(dlogits), [[-0.25, 0.25], [0.125, -0.125]], rtol=1e-12)  # (p - pi) / N
    np.testing.assert_allclose(host(dnu), [[-0.5], [1.0]], rtol=1e-12)  # 2 (nu - z) / N


def test_call_and_z_shapes():
    logits, nu, pi, z = batch(4, 3, seed=0)
    loss = PolicyValue()
    cost, (dlogits, dnu) = loss((logits, nu), pi, z)
    assert isinstance(cost, float) and cost == loss.cost((logits, nu), pi, z)
    assert dlogits.shape == (4, 3) and dnu.shape == (4, 1)
    # z as (N,) or (N, 1): the same cost and gradients
    assert loss.cost([logits, nu], pi, z.reshape(4, 1)) == cost
    np.testing.assert_array_equal(host(loss.grad((logits, nu), pi, z.reshape(4, 1))[1]), host(dnu))


def test_no_overflow_for_large_logits():
    logits = dev(np.array([[1000.0, 0.0, -1000.0]]))
    nu, pi, z = dev(np.array([[0.0]])), dev(np.array([[0.0, 1.0, 0.0]])), dev(np.array([0.0]))
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # exp(-2000) may underflow to 0
        cost = PolicyValue().cost((logits, nu), pi, z)
        dlogits, _ = PolicyValue().grad((logits, nu), pi, z)
    assert cost == pytest.approx(1000.0)
    np.testing.assert_allclose(host(dlogits), [[1.0, -1.0, 0.0]], atol=1e-12)


@pytest.mark.parametrize("normalised", [True, False], ids=["pi-sums-to-1", "pi-any"])
@pytest.mark.parametrize("N, A", SHAPES)
def test_gradcheck(float64, N, A, normalised):
    """dL/dlogits and dL/dnu against central differences of L (pi need not sum to 1 for the formula)."""
    logits, nu, pi, z = batch(N, A, seed=10 * N + A, normalised=normalised)
    loss = PolicyValue()
    dlogits, dnu = loss.grad((logits, nu), pi, z)
    cost = lambda: xp.asarray(loss.cost((logits, nu), pi, z))
    one = xp.asarray(1.0)
    assert relative_error(dlogits, numerical_gradient(cost, logits, one)) < 1e-7
    assert relative_error(dnu, numerical_gradient(cost, nu, one)) < 1e-7


@pytest.mark.parametrize(
    "outputs, pi_shape, z_shape, fragment",
    [
        ("single", (2, 3), (2,), "the pair (logits, nu)"),
        ("triple", (2, 3), (2,), "the pair (logits, nu)"),
        (((2, 3), (2, 1)), (2, 4), (2,), "pi (2, 4)"),
        (((2, 3), (2,)), (2, 3), (2,), "nu (2,)"),
        (((2, 3), (2, 1)), (2, 3), (3,), "z (3,)"),
        (((6,), (6, 1)), (6,), (6,), "logits (6,)"),
    ],
    ids=["one-array", "three-arrays", "pi-shape", "nu-1d", "z-size", "logits-1d"],
)
def test_bad_shapes(outputs, pi_shape, z_shape, fragment):
    if outputs == "single":
        outputs = dev(np.zeros((2, 3)))
    elif outputs == "triple":
        outputs = (dev(np.zeros((2, 3))), dev(np.zeros((2, 1))), dev(np.zeros((2, 1))))
    else:
        outputs = tuple(dev(np.zeros(shape)) for shape in outputs)
    pi, z = dev(np.full(pi_shape, 0.25)), dev(np.zeros(z_shape))
    for method in (PolicyValue().cost, PolicyValue().grad, PolicyValue().parts):
        with pytest.raises(ShapeError, match="PolicyValue") as error:
            method(outputs, pi, z)
        assert fragment in str(error.value)


# --- the c ||theta||^2 term ------------------------------------------------------------------------
def two_heads(seed):
    """A tiny (logits, nu) net: Parallel(Dense 3 -> 4, Dense 3 -> 1 - tanh)."""
    rng = np.random.default_rng(seed)
    return Parallel(Dense(3, 4, rng=rng), Sequential(Dense(3, 1, rng=rng), Tanh()))


def test_make_optimizer_is_l2_with_lambda_2c_and_n_1():
    for name in ("adam", "momentum"):
        opt = make_optimizer(two_heads(0), name, 1e-3, c=0.05)
        assert opt.name == name and opt.n == 1
        assert opt.regularizer.lmbda == pytest.approx(0.1)
        W = dev(np.arange(6.0).reshape(2, 3))
        np.testing.assert_allclose(host(opt.regularizer.grad(W, opt.n)), 2 * 0.05 * host(W))  # d(c ||W||^2)/dW


def test_one_momentum_step_includes_2cW(float64):
    """From v = 0, one Momentum step is w -> w - eta (dL/dw + 2 c w) for the weights, w - eta dL/dw for
    the biases (not regularised, 2.7.3)."""
    eta, c = 0.1, 0.05
    net = two_heads(1)
    opt = make_optimizer(net, "momentum", eta, c)
    logits, nu, pi, z = batch(5, 4, seed=2)
    x = dev(np.random.default_rng(3).standard_normal((5, 3)))
    before = {k: host(v).copy() for k, v in net.params.items()}
    net.forward(x, True)
    net.backward_from(PolicyValue(), pi, z)
    grads = {k: host(g).copy() for k, g in net.grads.items()}
    opt.step()
    for key, w in before.items():
        extra = 2 * c * w if key.endswith("W") else 0.0
        np.testing.assert_allclose(host(net.params[key]), w - eta * (grads[key] + extra), rtol=1e-12, atol=1e-15)


# --- PyTorch as the referee ---------------------------------------------------------------------------
torch_cases = pytest.mark.parametrize("N, A", [(1, 3), (4, 9), (16, 7)])


@torch_cases
def test_matches_torch(float64, N, A):
    torch = pytest.importorskip("torch")
    from torch_helpers import close, leaf

    logits, nu, pi, z = batch(N, A, seed=N + 100 * A)
    lt, vt = leaf(logits), leaf(nu)
    pit, zt = torch.tensor(host(pi)), torch.tensor(host(z)).reshape(N, 1)
    value = ((zt - vt) ** 2).mean()
    policy = -(pit * torch.log_softmax(lt, dim=1)).sum(1).mean()
    (value + policy).backward()
    loss = PolicyValue()
    ours_value, ours_policy = loss.parts((logits, nu), pi, z)
    assert ours_value == pytest.approx(value.item(), rel=1e-12)
    assert ours_policy == pytest.approx(policy.item(), rel=1e-12)
    # torch's own soft-target cross-entropy is the same policy cost
    assert ours_policy == pytest.approx(torch.nn.functional.cross_entropy(lt, pit).item(), rel=1e-12)
    dlogits, dnu = loss.grad((logits, nu), pi, z)
    close(dlogits, lt.grad, rtol=1e-10)
    close(dnu, vt.grad, rtol=1e-10)


def test_regularised_cost_matches_torch(float64):
    """L + c ||W||^2 over the weights in torch: its gradient is what one Momentum step of
    make_optimizer's optimizer applies (w_before - w_after) / eta."""
    torch = pytest.importorskip("torch")
    from torch_helpers import close, leaf

    eta, c = 0.05, 0.02
    net = two_heads(4)
    opt = make_optimizer(net, "momentum", eta, c)
    logits, nu, pi, z = batch(6, 4, seed=5)
    x = np.random.default_rng(6).standard_normal((6, 3))
    policy_dense, value_dense = net.heads[0], net.heads[1][0]
    W1, b1 = leaf(policy_dense.params["W"]), leaf(policy_dense.params["b"])
    W2, b2 = leaf(value_dense.params["W"]), leaf(value_dense.params["b"])
    xt = torch.tensor(x)
    lt, vt = xt @ W1.T + b1, torch.tanh(xt @ W2.T + b2)
    zt = torch.tensor(host(z)).reshape(-1, 1)
    L = ((zt - vt) ** 2).mean() - (torch.tensor(host(pi)) * torch.log_softmax(lt, 1)).sum(1).mean()
    (L + c * ((W1 ** 2).sum() + (W2 ** 2).sum())).backward()
    before = {k: host(v).copy() for k, v in net.params.items()}
    net.forward(dev(x), True)
    net.backward_from(PolicyValue(), pi, z)
    opt.step()
    step = {k: (before[k] - host(net.params[k])) / eta for k in before}
    close(step["0.W"], W1.grad, rtol=1e-9)
    close(step["0.b"], b1.grad, rtol=1e-9)
    close(step["1.0.W"], W2.grad, rtol=1e-9)
    close(step["1.0.b"], b2.grad, rtol=1e-9)

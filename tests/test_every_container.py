"""Every container nested in every other (issue 9, acceptance 2): an AlphaGo-Zero-shaped network —
Residual blocks inside Sequentials inside Parallel heads, with BatchNorm — trains (every parameter
moves), saves and restores every buffer, passes a float64 finite-difference check as a whole and
matches PyTorch; Taps read two of its layers in one backward pass; a resumed fit restores the
BatchNorm statistics bit for bit."""

import numpy as np
import pytest
from helpers import dev, host

from tiefnet.backend import xp
from tiefnet.checkpoint import load_model, save_model
from tiefnet.gradcheck import numerical_gradient, relative_error
from tiefnet.nn import (BatchNorm1d, BatchNorm2d, Conv2d, CrossEntropy, Dense, Flatten, LogLikelihood, Parallel,
                        Quadratic, Residual, Sequential, Sigmoid, Softmax, Tanh, Taps)
from tiefnet.optim import SGD
from tiefnet.train import fit, predict, train_step

N, C_IN, SIDE, MOVES = 4, 2, 4, 5


def block(C, rng):
    """x -> g(x) + x with g = conv, tanh, batch norm, conv, tanh (5.5; tanh instead of ReLU keeps the
    finite differences off kinks; the norm after the nonlinearity leaves every conv bias a gradient)."""
    return Residual(Sequential(Conv2d(C, C, 3, padding=1, rng=rng), Tanh(), BatchNorm2d(C),
                               Conv2d(C, C, 3, padding=1, rng=rng), Tanh()))


def network(seed=0):
    rng = np.random.default_rng(seed)
    trunk = Sequential(Conv2d(C_IN, 3, 3, padding=1, rng=rng), Tanh(), BatchNorm2d(3), block(3, rng))
    policy = Sequential(block(3, rng), Conv2d(3, 1, 1, rng=rng), Flatten(), Dense(SIDE * SIDE, MOVES, rng=rng),
                        Softmax())
    value = Sequential(Conv2d(3, 2, 1, rng=rng), Tanh(), BatchNorm2d(2), Flatten(), Dense(2 * SIDE * SIDE, 1, rng=rng),
                       Tanh())
    return Sequential(trunk, Parallel(policy, value))


class PolicyValueCost:
    """A stand-in for 5.4's cost (z - nu)^2 - pi^T ln p: log-likelihood on p plus quadratic on nu."""

    def cancels(self, layer):
        return False

    def grad(self, outputs, pi, z):
        p, nu = outputs
        return LogLikelihood().grad(p, pi), Quadratic().grad(nu, z)


def batch(seed):
    rng = np.random.default_rng(seed)
    x = dev(rng.standard_normal((N, C_IN, SIDE, SIDE)))
    pi = dev(rng.dirichlet(np.ones(MOVES), N))
    z = dev(rng.choice([-1.0, 1.0], (N, 1)))
    return x, pi, z


def test_every_parameter_trains_and_every_buffer_is_saved_and_restored(tmp_path, float64):
    net = network()
    before = {key: host(p).copy() for key, p in net.params.items()}
    buffers_before = {key: host(b).copy() for key, b in net.buffers.items()}
    assert len(before) == 26 and len(buffers_before) == 8  # 9 conv/dense layers (W, b), 4 batch norms (gamma, beta)
    optimizer = SGD(0.1).bind(net, N)
    for step in range(3):
        train_step(net, PolicyValueCost(), optimizer, *batch(step))
    unmoved = [key for key, p in net.params.items() if not np.abs(host(p) - before[key]).max() > 1e-8]
    assert not unmoved, f"parameters that did not train: {unmoved}"
    unchanged = [key for key, b in net.buffers.items() if np.array_equal(host(b), buffers_before[key])]
    assert not unchanged, f"running statistics that did not update: {unchanged}"

    save_model(tmp_path, net, {"kind": "test"})
    loaded, _ = load_model(tmp_path)
    assert list(loaded.arrays()) == list(net.arrays())
    for key, a in net.arrays().items():
        np.testing.assert_array_equal(host(loaded.arrays()[key]), host(a), err_msg=key)
    x = batch(9)[0]
    for ours, theirs in zip(net.forward(x), loaded.forward(x)):  # evaluation: the running statistics
        np.testing.assert_array_equal(host(ours), host(theirs))


def test_the_whole_network_passes_a_finite_difference_check(float64):
    net = network()
    x, _, _ = batch(1)
    rng = np.random.default_rng(2)
    up_p, up_nu = dev(rng.standard_normal((N, MOVES))), dev(rng.standard_normal((N, 1)))
    net.forward(x, train=True)
    dx = net.backward((up_p, up_nu))
    analytic = {"x": dx, **{k: g.copy() for k, g in net.grads.items()}}

    def cost():
        p, nu = net.forward(x, train=True)  # training mode: batch statistics, a smooth function of x and theta
        return xp.asarray(float((p * up_p).sum() + (nu * up_nu).sum()))

    errors = {"x": relative_error(analytic["x"], numerical_gradient(cost, x, xp.asarray(1.0)))}
    for key, p in net.params.items():
        errors[key] = relative_error(analytic[key], numerical_gradient(cost, p, xp.asarray(1.0)))
    bad = {k: e for k, e in errors.items() if not e < 1e-5}
    assert not bad, bad


def test_taps_read_the_nested_trunk_in_one_backward_pass(float64):
    trunk = network().layers[0]
    taps = Taps(trunk, {"stem": 2, "block": 3})
    x = batch(3)[0]
    rng = np.random.default_rng(4)
    up = {"stem": dev(rng.standard_normal((N, 3, SIDE, SIDE))), "block": dev(rng.standard_normal((N, 3, SIDE, SIDE)))}
    taps.forward(x, train=True)
    dx = taps.backward(up)

    def cost():
        out = taps.forward(x, train=True)
        return xp.asarray(float(sum((out[k] * up[k]).sum() for k in up)))

    assert relative_error(dx, numerical_gradient(cost, x, xp.asarray(1.0))) < 1e-6
    key = "0.3.0.0.W"  # the first conv of the residual block, below the "block" tap only
    assert relative_error(taps.grads[key], numerical_gradient(cost, taps.params[key], xp.asarray(1.0))) < 1e-6


def test_the_whole_network_matches_torch(float64):
    torch = pytest.importorskip("torch")
    from torch_helpers import close, leaf

    F = torch.nn.functional
    net = network()
    x, pi, z = batch(5)
    t = {k: leaf(v) for k, v in net.params.items()}
    running = {k: torch.tensor(host(v).copy()) for k, v in net.buffers.items()}

    def conv(h, key, padding):
        return F.conv2d(h, t[key + "W"], t[key + "b"], padding=padding)

    def bn(h, key):
        return F.batch_norm(h, running[key + "running_mean"], running[key + "running_var"], t[key + "gamma"],
                            t[key + "beta"], training=True, momentum=0.1, eps=1e-5)

    def res(h, key):
        g = torch.tanh(conv(h, key + "0.0.", 1))
        g = torch.tanh(conv(bn(g, key + "0.2."), key + "0.3.", 1))
        return g + h

    xt = leaf(x)
    h = res(bn(torch.tanh(conv(xt, "0.0.", 1)), "0.2."), "0.3.")
    pt = F.softmax(F.linear(conv(res(h, "1.0.0."), "1.0.1.", 0).flatten(1), t["1.0.3.W"], t["1.0.3.b"]), dim=-1)
    vt = torch.tanh(F.linear(bn(torch.tanh(conv(h, "1.1.0.", 0)), "1.1.2.").flatten(1), t["1.1.4.W"], t["1.1.4.b"]))
    cost = -(torch.tensor(host(pi)) * torch.log(pt)).sum() / N + ((vt - torch.tensor(host(z))) ** 2).sum() / (2 * N)
    cost.backward()

    p, nu = net.forward(x, train=True)
    close(p, pt)
    close(nu, vt)
    net.backward_from(PolicyValueCost(), pi, z, need_input_grad=True)
    for key, g in net.grads.items():
        close(g, t[key].grad)
    for key, b in net.buffers.items():
        close(b, running[key])


def test_resume_restores_the_batch_norm_statistics_bit_for_bit(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    x = (np.array([[-1.0, -1.0], [1.0, 1.0]])[labels] + rng.standard_normal((200, 2))).astype(np.float32)

    def train(epochs, checkpoint, resume=False):
        layer_rng = np.random.default_rng(1)
        net = Sequential(Dense(2, 6, rng=layer_rng), BatchNorm1d(6), Tanh(), Dense(6, 2, rng=layer_rng), Sigmoid())
        fit(net, CrossEntropy(), SGD(0.5), (x, labels), epochs, batch_size=20, rng=np.random.default_rng(2),
            classes=2, checkpoint=checkpoint, resume=resume)
        return net

    whole = train(4, tmp_path / "a.npz")
    train(2, tmp_path / "b.npz")
    resumed = train(4, tmp_path / "b.npz", resume=True)
    for key, a in whole.arrays().items():
        np.testing.assert_array_equal(host(resumed.arrays()[key]), host(a), err_msg=key)
    np.testing.assert_array_equal(host(predict(resumed, dev(x))), host(predict(whole, dev(x))))

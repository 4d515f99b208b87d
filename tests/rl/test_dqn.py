"""DQN's pieces (5.3): epsilon-greedy, the targets y_j, one training step (checked by central
differences in float64), the target network theta^- as a copy, the settings."""

import numpy as np
import pytest
from helpers import dev, host

from tiefnet.backend import xp
from tiefnet.errors import ConfigError
from tiefnet.gradcheck import numerical_gradient, relative_error
from tiefnet.nn import Dense, Sequential
from tiefnet.nn.losses import TDError
from tiefnet.optim import SGD
from tiefnet.rl.dqn import (DQNConfig, as_input, clone, epsilon_at, greedy_action, hidden_sizes, mlp_q_network,
                            select_action, sync_target, td_targets, train_step)
from tiefnet.rl.replay import Transitions


def batch(B=6, n_obs=4, A=3, seed=0):
    rng = np.random.default_rng(seed)
    return Transitions(rng.standard_normal((B, n_obs)).astype(np.float32), rng.integers(A, size=B),
                       rng.standard_normal(B).astype(np.float32), rng.standard_normal((B, n_obs)).astype(np.float32),
                       (np.arange(B) % 3 == 0).astype(np.float32))


def linear_net(W, b):
    net = Sequential(Dense(len(W[0]), len(W)))
    net.layers[0].params["W"][...] = dev(np.array(W))
    net.layers[0].params["b"][...] = dev(np.array(b))
    return net


# --- epsilon-greedy ------------------------------------------------------------------------------
def test_epsilon_falls_linearly_then_stays():
    config = DQNConfig(epsilon_start=1.0, epsilon_end=0.1, epsilon_steps=100)
    assert epsilon_at(0, config) == 1.0
    assert epsilon_at(50, config) == pytest.approx(0.55)
    assert epsilon_at(100, config) == pytest.approx(0.1)
    assert epsilon_at(10_000, config) == pytest.approx(0.1)


def test_greedy_action_is_the_argmax():
    net = linear_net([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], [0.0, 0.0, 0.0])
    assert greedy_action(net, np.array([2.0, 1.0], np.float32)) == 0
    assert greedy_action(net, np.array([-2.0, 1.0], np.float32)) == 1
    assert greedy_action(net, np.array([-2.0, -3.0], np.float32)) == 2
    rng = np.random.default_rng(0)
    assert all(select_action(net, np.array([-2.0, 1.0], np.float32), 0.0, 3, rng) == 1 for _ in range(20))


def test_epsilon_one_plays_uniformly_at_random_and_reproducibly():
    net = linear_net([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], [0.0, 0.0, 0.0])
    obs = np.array([2.0, 1.0], np.float32)
    actions = [select_action(net, obs, 1.0, 3, np.random.default_rng(7)) for _ in range(3)]
    assert len(set(actions)) == 1  # same seed, same action
    rng = np.random.default_rng(1)
    counts = np.bincount([select_action(net, obs, 1.0, 3, rng) for _ in range(3000)], minlength=3)
    assert np.all(np.abs(counts / 3000 - 1 / 3) < 0.04)
    rng = np.random.default_rng(2)
    greedy = np.mean([select_action(net, obs, 0.3, 3, rng) == 0 for _ in range(3000)])
    assert greedy == pytest.approx(0.7 + 0.3 / 3, abs=0.04)


def test_frames_are_scaled_to_the_unit_interval():
    x = host(as_input(np.array([[0, 51, 255]], dtype=np.uint8)))
    np.testing.assert_allclose(x, [[0.0, 0.2, 1.0]], rtol=1e-6)
    np.testing.assert_array_equal(host(as_input(np.array([[0.5, 3.0]], np.float32))), [[0.5, 3.0]])


# --- targets and the training step ----------------------------------------------------------------
def test_td_targets_by_hand():
    """y_j = r_j if terminal, else r_j + gamma max_a' Q(phi_{j+1}, a'; theta^-)."""
    target = linear_net([[1.0, 0.0], [0.0, 2.0]], [0.0, 1.0])  # Q(s') = (s'_0, 2 s'_1 + 1)
    b = Transitions(np.zeros((3, 2), np.float32), np.zeros(3, np.int64), np.array([1.0, 2.0, -1.0], np.float32),
                    np.array([[3.0, 0.0], [0.0, 3.0], [5.0, 5.0]], np.float32), np.array([0.0, 0.0, 1.0], np.float32))
    np.testing.assert_allclose(host(td_targets(target, b, 0.5)), [1 + 0.5 * 3.0, 2 + 0.5 * 7.0, -1.0], rtol=1e-6)


@pytest.mark.parametrize("delta_max", [1.0, None])
def test_train_step_gradient_matches_central_differences(float64, delta_max):
    """The whole step: gather of Q(phi_j, a_j), the clipped error, BP through the MLP; with SGD,
    (theta_before - theta_after) / eta is dC/dtheta."""
    rng = np.random.default_rng(3)
    q_net = mlp_q_network(4, 3, [5, 4], rng)
    target_net = clone(q_net)
    for p in target_net.params.values():
        p[...] += dev(0.3 * rng.standard_normal(p.shape))
    b, gamma, eta, loss = batch(), 0.9, 0.5, TDError(delta_max)
    for layer in q_net.param_layers():  # biases off zero: a more general point
        layer.params["b"][...] = dev(0.5 * rng.standard_normal(layer.params["b"].shape))
    before = {k: host(v).copy() for k, v in q_net.params.items()}
    y = td_targets(target_net, b, gamma)
    obs, actions = as_input(b.obs), xp.asarray(b.action)
    cost = train_step(q_net, target_net, loss, SGD(eta).bind(q_net, 1), b, gamma)
    after = {k: host(v).copy() for k, v in q_net.params.items()}
    for name, p in q_net.params.items():
        p[...] = dev(before[name])
    assert cost == pytest.approx(loss.cost(q_net.forward(obs), actions, y), rel=1e-12)
    error = np.abs(host(q_net.forward(obs))[np.arange(len(b.action)), b.action] - host(y))  # |Q(phi_j, a_j) - y_j|
    if delta_max:  # both branches of the clipped error are exercised
        assert (error > delta_max).any() and (error < delta_max).any(), error
    for name, p in q_net.params.items():
        numeric = numerical_gradient(lambda: dev(loss.cost(q_net.forward(obs), actions, y)), p, dev(1.0))
        assert relative_error(dev((before[name] - after[name]) / eta), numeric) < 1e-6, name


def test_train_step_leaves_the_target_network_alone():
    rng = np.random.default_rng(0)
    q_net = mlp_q_network(4, 3, [8], rng)
    target_net = clone(q_net)
    frozen = {k: host(v).copy() for k, v in target_net.params.items()}
    train_step(q_net, target_net, TDError(), SGD(0.1).bind(q_net, 1), batch(), 0.99)
    for k, v in target_net.params.items():
        np.testing.assert_array_equal(host(v), frozen[k])
    assert any(not np.array_equal(host(q_net.params[k]), frozen[k]) for k in frozen)


def test_clone_copies_and_never_shares():
    q_net = mlp_q_network(3, 2, [4], np.random.default_rng(0))
    twin = clone(q_net)
    assert twin.describe() == q_net.describe()
    for k, v in q_net.params.items():
        np.testing.assert_array_equal(host(twin.params[k]), host(v))
    q_net.params["0.W"][...] += 1
    assert not np.array_equal(host(twin.params["0.W"]), host(q_net.params["0.W"]))
    sync_target(twin, q_net)
    np.testing.assert_array_equal(host(twin.params["0.W"]), host(q_net.params["0.W"]))


def test_mlp_q_network_shapes():
    net = mlp_q_network(4, 2, [16, 8], np.random.default_rng(0))
    assert net.forward(dev(np.zeros((5, 4), np.float32))).shape == (5, 2)
    assert [l.n_out for l in net.param_layers()] == [16, 8, 2]
    assert all(not host(l.params["b"]).any() for l in net.param_layers())


# --- settings --------------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value", [("steps", 0), ("memory", 0), ("batch_size", 0), ("target_every", 0),
                                          ("eta", 0.0), ("eta", float("nan")), ("gamma", 1.5), ("epsilon_end", -0.1),
                                          ("epsilon_start", 2.0), ("optimizer", "sgd"), ("error_clip", -1.0),
                                          ("hidden", "64,x"), ("hidden", "0"), ("env", ""), ("train_every", 0)])
def test_bad_settings_are_config_errors(field, value):
    with pytest.raises(ConfigError, match=field.split("_")[0]):
        DQNConfig(**{field: value})


def test_hidden_sizes():
    assert hidden_sizes("64, 32") == [64, 32]
    assert hidden_sizes("") == []

"""The DQN cost (5.3): the squared TD error with its error term clipped to [-1, 1] (Huber, delta 1),
on Q(phi_j, a_j) gathered from the network's (B, A) output. Values by hand, central differences."""

import numpy as np
import pytest
from helpers import dev, host

from tiefnet.errors import ConfigError, ShapeError
from tiefnet.gradcheck import numerical_gradient, relative_error
from tiefnet.nn.losses import TDError

# B = 3 samples, A = 2 actions
Q = dev(np.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]]))
ACTIONS = dev(np.array([1, 0, 0]))
Y = dev(np.array([1.5, 3.0, 3.2]))  # errors Q - y: 0.5, -2.5, -0.2


def test_clipped_cost_by_hand():
    """h(0.5) = 0.125, h(-2.5) = 2.5 - 0.5 = 2.0 (linear part), h(-0.2) = 0.02; C = 2.145 / 3."""
    assert TDError().cost(Q, ACTIONS, Y) == pytest.approx((0.125 + 2.0 + 0.02) / 3, rel=1e-12)


def test_clipped_delta_by_hand_is_zero_except_at_the_actions():
    """dC/dQ[j, a_j] = clip(Q - y, -1, 1) / B: 0.5/3, -1/3 (clipped), -0.2/3; 0 elsewhere."""
    expected = np.array([[0.0, 0.5], [-1.0, 0.0], [-0.2, 0.0]]) / 3
    np.testing.assert_allclose(host(TDError().grad(Q, ACTIONS, Y)), expected, rtol=1e-12, atol=1e-15)


def test_unclipped_is_half_the_squared_error():
    loss = TDError(None)
    assert loss.cost(Q, ACTIONS, Y) == pytest.approx((0.25 + 6.25 + 0.04) / 2 / 3, rel=1e-12)
    expected = np.array([[0.0, 0.5], [-2.5, 0.0], [-0.2, 0.0]]) / 3
    np.testing.assert_allclose(host(loss.grad(Q, ACTIONS, Y)), expected, rtol=1e-12, atol=1e-15)


def test_call_returns_cost_and_delta():
    cost, delta = TDError()(Q, ACTIONS, Y)
    assert isinstance(cost, float) and cost == TDError().cost(Q, ACTIONS, Y)
    np.testing.assert_array_equal(host(delta), host(TDError().grad(Q, ACTIONS, Y)))


@pytest.mark.parametrize("delta_max", [1.0, 0.3, None])
@pytest.mark.parametrize("B, A", [(1, 1), (4, 2), (7, 5)])
def test_delta_matches_central_differences(float64, B, A, delta_max):
    rng = np.random.default_rng(B * 10 + A)
    q = dev(rng.standard_normal((B, A)) * 2)
    actions = dev(rng.integers(A, size=B))
    y = dev(rng.standard_normal(B) * 2)
    loss = TDError(delta_max)
    numeric = numerical_gradient(lambda: dev(loss.cost(q, actions, y)), q, dev(1.0))
    assert relative_error(loss.grad(q, actions, y), numeric) < 1e-7


def test_repeated_rows_of_one_action_add_up_per_row():
    """Each row has its own a_j: two rows choosing the same action do not share an entry."""
    q, y = dev(np.zeros((2, 3))), dev(np.array([1.0, -1.0]))
    delta = host(TDError().grad(q, dev(np.array([2, 2])), y))
    np.testing.assert_allclose(delta, [[0, 0, -0.5], [0, 0, 0.5]])


@pytest.mark.parametrize("delta_max", [0.0, -1.0, float("inf"), float("nan")])
def test_bad_clip_is_a_config_error(delta_max):
    with pytest.raises(ConfigError, match="delta_max"):
        TDError(delta_max)


def test_shapes_are_checked():
    with pytest.raises(ShapeError, match=r"\(B, A\)"):
        TDError().cost(Q, ACTIONS[:2], Y)
    with pytest.raises(ShapeError):
        TDError().grad(Q[0], ACTIONS, Y)

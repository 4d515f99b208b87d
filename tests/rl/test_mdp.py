"""MDPs and dynamic programming (lecture 5.1): the lecture's grid world solved by value iteration,
policy iteration and modified policy iteration, the stopping rule and its error bound, exact policy
evaluation, and the MDP's validation."""
from __future__ import annotations

import numpy as np
import pytest

from tiefnet.errors import ConfigError
from tiefnet.rl.gridworld import lecture_gridworld
from tiefnet.rl.mdp import (MDP, NO_ACTION, bellman, bellman_q, bellman_residual, greedy_policy, q_values, modified_policy_iteration,
                            policy_evaluation, policy_iteration, proper_policy, solve, value_iteration)

# U of the lecture's grid world, gamma = 1, R = -0.04 (Russell & Norvig, Fig. 17.3), by (x, y)
LECTURE_U = {(1, 3): 0.812, (2, 3): 0.868, (3, 3): 0.918, (4, 3): 1.0,
             (1, 2): 0.762, (3, 2): 0.660, (4, 2): -1.0,
             (1, 1): 0.705, (2, 1): 0.655, (3, 1): 0.611, (4, 1): 0.388}
# the optimal policy drawn in lecture 5.1 ("Beispiel"), by (x, y)
LECTURE_PI = {(1, 3): "→", (2, 3): "→", (3, 3): "→", (1, 2): "↑", (3, 2): "↑",
              (1, 1): "↑", (2, 1): "←", (3, 1): "←", (4, 1): "←", (4, 3): "E+1", (4, 2): "E-1"}
METHODS = ("value", "policy", "modified")


def random_mdp(S: int, A: int, gamma: float, seed: int, terminals: int = 0) -> MDP:
    rng = np.random.default_rng(seed)
    P = rng.random((A, S, S)) ** 4  # (A, S, S), uneven rows
    P /= P.sum(axis=2, keepdims=True)
    P[:, :terminals, :] = 0.0
    return MDP(P, rng.normal(size=S), gamma)


@pytest.mark.parametrize("method", METHODS)
def test_lecture_gridworld_U_and_policy(method):
    world = lecture_gridworld()
    solution = solve(world.mdp, method)
    assert solution.converged
    for s, cell in enumerate(world.cells):
        assert round(solution.U[s], 3) == pytest.approx(LECTURE_U[cell], abs=1e-9), cell
    assert dict(zip(world.cells, world.arrows(solution.pi))) == LECTURE_PI


@pytest.mark.parametrize("gamma", [0.9, 0.99, 1.0])
def test_the_three_methods_agree(gamma):
    mdp = lecture_gridworld(gamma=gamma).mdp
    exact = policy_iteration(mdp)
    for method in ("value", "modified"):
        solution = solve(mdp, method, epsilon=1e-8)
        np.testing.assert_allclose(solution.U, exact.U, atol=1e-8)
        np.testing.assert_array_equal(solution.pi, exact.pi)
    assert bellman_residual(mdp, exact.U) < 1e-12  # U solves the Bellman equation


@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
def test_value_iteration_stopping_rule_and_bound(gamma):
    mdp = random_mdp(12, 3, gamma, seed=1)
    epsilon = 1e-3
    exact = policy_iteration(mdp).U
    solution = value_iteration(mdp, epsilon=epsilon)
    assert solution.converged and solution.error_bound < epsilon
    error = np.abs(solution.U - exact).max()
    assert error <= solution.error_bound + 1e-12  # the lecture's bound holds ...
    # ... and the iteration stopped at the first i with ||U_i - U_{i-1}|| <= epsilon (1 - gamma) / gamma
    earlier = value_iteration(mdp, epsilon=epsilon, max_sweeps=solution.iterations - 1)
    assert not earlier.converged
    delta = np.abs(solution.U - earlier.U).max()
    assert delta <= epsilon * (1 - gamma) / gamma
    assert solution.error_bound == pytest.approx(gamma / (1 - gamma) * delta)


def test_value_iteration_contraction():
    """||B(U) - B(U')|| <= gamma ||U - U'|| (the Bellman step contracts in the max norm)."""
    mdp = random_mdp(10, 4, 0.8, seed=2)
    rng = np.random.default_rng(0)
    for _ in range(20):
        U, V = rng.normal(size=10), rng.normal(size=10)
        assert np.abs(bellman(mdp, U) - bellman(mdp, V)).max() <= 0.8 * np.abs(U - V).max() + 1e-12


def test_sweep_limit_for_gamma_one():
    """gamma = 1 with a positive reward: the utilities grow without bound; the sweep limit stops it."""
    mdp = lecture_gridworld(reward=0.1, gamma=1.0).mdp
    solution = value_iteration(mdp, max_sweeps=50)
    assert solution.iterations == 50 and not solution.converged and solution.error_bound == float("inf")


def test_policy_evaluation_matches_iterated_evaluation():
    mdp = random_mdp(8, 3, 0.9, seed=3, terminals=1)
    pi = np.random.default_rng(1).integers(0, 3, size=8)
    U = policy_evaluation(mdp, pi)
    V = np.zeros(8)
    P_pi = mdp.dense()[pi, np.arange(8)]  # (S, S)
    for _ in range(2000):
        V = mdp.R + mdp.gamma * P_pi @ V
    np.testing.assert_allclose(U, V, atol=1e-10)
    assert U[0] == mdp.R[0]  # a terminal state: U(s) = R(s)


def test_one_state_by_hand():
    """A single state looping to itself with reward r: U = r / (1 - gamma)."""
    mdp = MDP(np.ones((1, 1, 1)), np.array([2.0]), gamma=0.75)
    for method in METHODS:
        assert solve(mdp, method, **({} if method == "policy" else {"epsilon": 1e-10})).U[0] == pytest.approx(8.0)


def test_modified_with_one_sweep_is_value_iteration():
    mdp = random_mdp(15, 4, 0.95, seed=4, terminals=2)
    vi, mpi = value_iteration(mdp, epsilon=1e-6), modified_policy_iteration(mdp, k=1, epsilon=1e-6)
    np.testing.assert_allclose(mpi.U, vi.U, atol=1e-12)
    assert (mpi.iterations, mpi.sweeps) == (vi.iterations, vi.sweeps)
    fewer = modified_policy_iteration(mdp, k=20, epsilon=1e-6)
    assert fewer.iterations < vi.iterations  # k evaluation sweeps per policy: fewer improvements


@pytest.mark.parametrize("seed", [5, 6])
def test_random_mdps_agree_with_brute_force_over_policies(seed):
    """The optimal policy is the best of all |A|^|S| deterministic policies, evaluated exactly."""
    mdp = random_mdp(4, 3, 0.9, seed)
    best = max((np.array(pi) for pi in np.ndindex(3, 3, 3, 3)), key=lambda pi: policy_evaluation(mdp, pi).sum())
    for method in METHODS:
        np.testing.assert_array_equal(solve(mdp, method).pi, best)


def test_greedy_policy_marks_terminals_and_keeps_ties():
    mdp = lecture_gridworld().mdp
    pi = greedy_policy(mdp, np.zeros(mdp.n_states))  # every action ties
    assert (pi[mdp.terminal] == NO_ACTION).all() and (pi[~mdp.terminal] == 0).all()
    keep = np.where(mdp.terminal, NO_ACTION, 2)
    assert (greedy_policy(mdp, np.zeros(mdp.n_states), keep) == keep).all()


def test_policy_iteration_needs_a_proper_policy_for_gamma_one():
    mdp = lecture_gridworld().mdp
    assert np.isfinite(policy_evaluation(mdp, proper_policy(mdp))).all()
    always_left = np.full(mdp.n_states, 3)  # ← into the wall forever from (1, y)
    with pytest.raises(ConfigError, match="singular"):
        policy_iteration(mdp, pi0=always_left)
    assert policy_iteration(lecture_gridworld(gamma=0.9).mdp, pi0=always_left).converged


@pytest.mark.parametrize("P, R, gamma, message", [
    (np.ones((2, 3)), np.zeros(3), 1.0, "shape"),
    (np.full((1, 2, 2), 0.5), np.zeros(3), 1.0, "R has shape"),
    (np.full((1, 2, 2), 0.4), np.zeros(2), 1.0, "sums to"),
    (np.full((1, 2, 2), 0.5), np.zeros(2), 0.0, "gamma"),
    (np.full((1, 2, 2), 0.5), np.zeros(2), 1.5, "gamma"),
    (np.array([[[1.5, -0.5], [0.5, 0.5]]]), np.zeros(2), 1.0, "non-negative"),
])
def test_mdp_validation(P, R, gamma, message):
    with pytest.raises(ConfigError, match=message):
        MDP(P, R, gamma)


def test_solver_options_validated():
    mdp = lecture_gridworld().mdp
    with pytest.raises(ConfigError, match="method"):
        solve(mdp, "qlearning")
    with pytest.raises(ConfigError, match="epsilon"):
        value_iteration(mdp, epsilon=0)
    with pytest.raises(ConfigError, match="k=0"):
        modified_policy_iteration(mdp, k=0)
    with pytest.raises(ConfigError, match="pi0"):
        policy_iteration(mdp, pi0=np.full(mdp.n_states, 7))
    with pytest.raises(ConfigError, match="one action per state"):
        policy_iteration(mdp, pi0=np.zeros(mdp.n_states + 1, dtype=int))


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_q_star_gives_U_and_the_policy_and_solves_its_bellman_equation(gamma):
    """5.2: U*(s) = max_a Q*(s, a), pi*(s) = argmax_a Q*(s, a); 5.2.1: Q* = R + gamma P max_a' Q*,
    reached from Q = 0 by iterating that equation, as value iteration reaches U*."""
    world = lecture_gridworld(gamma=gamma)
    solution = value_iteration(world.mdp, epsilon=1e-12)
    Q = q_values(world.mdp, solution.U)  # (S, A)
    assert Q.shape == (world.mdp.n_states, world.mdp.n_actions)
    np.testing.assert_allclose(Q.max(axis=1), solution.U, atol=1e-10)
    free = ~world.mdp.terminal
    np.testing.assert_array_equal(Q.argmax(axis=1)[free], solution.pi[free])
    np.testing.assert_allclose(bellman_q(world.mdp, Q), Q, atol=1e-10)
    Q_i = np.zeros_like(Q)
    for _ in range(2000):
        Q_i = bellman_q(world.mdp, Q_i)
    np.testing.assert_allclose(Q_i, Q, atol=1e-9)

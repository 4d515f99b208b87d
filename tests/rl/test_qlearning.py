"""Tabular Q-learning (lecture 5.2.2): the update rule by hand, the learning-rate schedule, the end of
an episode, agreement with value iteration on the lecture's grid world, gymnasium environments, and
the run folder."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tiefnet.checkpoint import read_npz
from tiefnet.errors import ConfigError
from tiefnet.rl.gridworld import GridWorldEnv, lecture_gridworld
from tiefnet.rl.mdp import value_iteration
from tiefnet.rl.qlearning import EtaSchedule, GymEnv, evaluate, greedy, q_learning
from tiefnet.rl.qlearning_run import Config, run


class Script:
    """A scripted environment: each step returns the next (s', r, terminated, truncated) of ``steps``
    and records the actions it was given."""

    def __init__(self, steps, n_states=3, n_actions=2, start=0):
        self.steps, self.n_states, self.n_actions, self.start = list(steps), n_states, n_actions, start
        self.actions = []

    def reset(self):
        return self.start

    def step(self, a):
        self.actions.append(a)
        return self.steps.pop(0)


def test_update_rule_by_hand():
    """Q_{i+1}(s,a) = (1 - eta) Q_i(s,a) + eta (r + gamma max_a' Q_i(s', a')), the rest unchanged."""
    env = Script([(1, 2.0, False, False), (2, -1.0, False, False), (0, 5.0, True, False)])
    eta = EtaSchedule("constant", eta=0.5)
    learned = q_learning(env, 3, gamma=0.9, epsilon=0.0, eta=eta, rng=np.random.default_rng(0), Q0=1.0)
    a0, a1, a2 = env.actions
    Q = np.ones((3, 2))
    Q[0, a0] = 0.5 * 1.0 + 0.5 * (2.0 + 0.9 * 1.0)  # bootstraps from max_a' Q(1, a') = 1
    Q[1, a1] = 0.5 * 1.0 + 0.5 * (-1.0 + 0.9 * 1.0)
    Q[2, a2] = 0.5 * 1.0 + 0.5 * 5.0  # terminated: no successor
    np.testing.assert_allclose(learned.Q, Q)
    assert learned.n.sum() == 3 and learned.episodes == 1 and learned.returns == [6.0]


def test_truncation_still_bootstraps():
    env = Script([(1, 0.0, False, True)])
    learned = q_learning(env, 1, gamma=0.5, epsilon=0.0, eta=EtaSchedule("constant", eta=1.0),
                         rng=np.random.default_rng(0), Q0=4.0)
    assert learned.Q[0, env.actions[0]] == 2.0  # 0 + 0.5 * max Q(1, .) = 0.5 * 4


def test_visits_schedule():
    """eta = c / (c + n(s,a)): 1 at the first update, then c/(c+1), c/(c+2), ..."""
    assert EtaSchedule("visits", c=3.0).table(3) == [1.0, 0.75, 0.6, 0.5]
    assert EtaSchedule("constant", eta=0.2).table(2) == [0.2, 0.2, 0.2]
    # with c = 1 and a constant reward, Q is the running mean of the targets
    env = Script([(0, float(r), True, False) for r in (1, 2, 3, 6)], n_actions=1)
    learned = q_learning(env, 4, gamma=1.0, eta=EtaSchedule("visits", c=1.0), rng=np.random.default_rng(0))
    assert learned.Q[0, 0] == pytest.approx(3.0)


def test_visits_schedule_beyond_its_lookup_table():
    """100,005 updates of one pair with eta = 1/(1 + n) and targets 1, 2, 3, ...: Q is their mean."""

    class Counting:
        n_states, n_actions, t = 1, 1, 0

        def reset(self):
            return 0

        def step(self, a):
            self.t += 1
            return 0, float(self.t), True, False

    steps = 100_005
    learned = q_learning(Counting(), steps, gamma=1.0, eta=EtaSchedule("visits", c=1.0), rng=np.random.default_rng(0))
    assert learned.Q[0, 0] == pytest.approx((steps + 1) / 2, rel=1e-9)


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "sometimes"}, "schedule"), ({"c": 0.0}, "c="), ({"kind": "constant", "eta": 1.5}, "eta="),
])
def test_schedule_validation(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        EtaSchedule(**kwargs)


def test_exploration_rate():
    env = Script([(0, 0.0, False, False)] * 4000, n_states=1, n_actions=4)
    q_learning(env, 4000, gamma=0.9, epsilon=0.4, eta=EtaSchedule("constant", eta=0.1),
               rng=np.random.default_rng(0), Q0=0.0)
    # every Q stays 0, so ties are broken at random as well: all four actions about equally often
    counts = np.bincount(env.actions, minlength=4) / 4000
    np.testing.assert_allclose(counts, 0.25, atol=0.03)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gridworld_greedy_policy_is_the_value_iteration_policy(seed):
    world = lecture_gridworld()
    solution = value_iteration(world.mdp)
    rng = np.random.default_rng(seed)
    env = GridWorldEnv(world, rng, exploring_starts=True)
    learned = q_learning(env, 100_000, gamma=1.0, epsilon=0.2, eta=EtaSchedule(c=5.0), rng=rng)
    free = ~world.mdp.terminal
    np.testing.assert_array_equal(greedy(learned.Q)[free], solution.pi[free])
    assert np.abs(learned.Q.max(axis=1) - solution.U).max() < 0.08  # max_a Q -> U


def test_same_seed_same_Q():
    config = Config(steps=5000, eval_episodes=10)
    assert run(config)["max_Q"] == run(config)["max_Q"]
    assert run(config)["max_Q"] != run(Config(steps=5000, eval_episodes=10, seed=1))["max_Q"]


def test_evaluate_follows_the_policy():
    env = Script([(1, 1.0, False, False), (2, 2.0, True, False)])
    assert evaluate(env, np.array([1, 0, 0]), 1) == [3.0]
    assert env.actions == [1, 0]


def test_gym_frozen_lake_deterministic_is_learned():
    rng = np.random.default_rng(0)
    env = GymEnv("FrozenLake-v1", rng, is_slippery=False)
    assert (env.n_states, env.n_actions) == (16, 4)
    learned = q_learning(env, 20_000, gamma=0.95, epsilon=0.3, eta=EtaSchedule(c=5.0), rng=rng)
    returns = evaluate(GymEnv("FrozenLake-v1", np.random.default_rng(1), is_slippery=False), greedy(learned.Q), 5)
    assert returns == [1.0] * 5  # the goal, every time


@pytest.mark.parametrize("env_id, message", [
    ("NoSuchEnv-v0", "doesn't exist"), ("CartPole-v1", "Box observation space"), ("Taxi-v3", "deprecated"),
])
def test_gym_errors(env_id, message):
    with pytest.raises(ConfigError, match=message):
        GymEnv(env_id, np.random.default_rng(0))


def test_gym_env_is_seeded_by_rng():
    returns = []
    for _ in range(2):
        env = GymEnv("FrozenLake-v1", np.random.default_rng(3))
        returns.append(evaluate(env, np.zeros(16, dtype=int), 20))  # slippery: the outcome is random
    assert returns[0] == returns[1]


def test_run_folder(tmp_path):
    summary = run(Config(steps=3000, eval_episodes=20), tmp_path)
    arrays, meta = read_npz(tmp_path / "Q.npz")
    assert arrays["Q"].shape == (11, 4) and arrays["n"].sum() == 3000 and meta["gamma"] == 1.0
    assert json.loads((tmp_path / "summary.json").read_text())["max_error"] == summary["max_error"]
    assert json.loads((tmp_path / "config.json").read_text())["steps"] == 3000
    assert summary["max_error"] == pytest.approx(np.abs(arrays["Q"].max(axis=1) - np.array(summary["U"])).max())
    assert [step for step, _ in summary["error_curve"]] == [1000, 2000, 3000]


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 0}, "steps"), ({"gamma": 1.5}, "gamma"), ({"epsilon": -0.1}, "epsilon"),
    ({"eta_schedule": "fast"}, "schedule"), ({"eval_episodes": 0}, "eval_episodes"),
    ({"env": "Taxi-v4", "map": "x.txt"}, "grid-world settings"),
])
def test_config_validation(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Config(**kwargs)

"""Tabular Q-learning (lecture 5.2.2, Watkins & Dayan 1992): model-free, from observed transitions only.

    Q_{i+1}(s_t, a_t) = (1 - eta_i) Q_i(s_t, a_t) + eta_i (R(s_t) + gamma max_a' Q_i(s_{t+1}, a'))

and Q stays unchanged at every other (s, a). The agent never sees P(s'|s,a): it acts in an environment
(the grid world simulated by sampling P, or a gymnasium environment with Discrete spaces) and learns
from (s_t, a_t, r_t, s_{t+1}). Two choices the lecture leaves open:

* the learning rate eta_i: ``visits`` is eta = c / (c + n(s,a)), n(s,a) the earlier updates of (s, a)
  (sum eta = inf, sum eta^2 < inf, as the convergence proof needs; Russell & Norvig use c = 60);
  ``constant`` is a fixed eta.
* exploration: epsilon-greedy, a random action with probability epsilon, else argmax_a Q(s, a)
  with ties broken at random.

At the end of an episode (``terminated``) there is no s_{t+1}: the target is r_t alone. An episode cut
by a time limit (``truncated``) still bootstraps from s_{t+1}.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy

from tiefnet.errors import ConfigError

ETA_SCHEDULES = ("visits", "constant")


class TabularEnv(Protocol):
    """What the agent sees of an environment: numbered states and actions, rewards, episode ends."""

    n_states: int
    n_actions: int

    def reset(self) -> int: ...

    def step(self, a: int) -> tuple[int, float, bool, bool]: ...  # s_{t+1}, r_t, terminated, truncated


@dataclass(frozen=True)
class EtaSchedule:
    """eta_i = c / (c + n(s,a)) (``visits``) or eta_i = eta (``constant``); 0 < eta_i <= 1."""

    kind: str = "visits"
    c: float = 60.0
    eta: float = 0.1

    def __post_init__(self) -> None:
        if self.kind not in ETA_SCHEDULES:
            raise ConfigError(f"eta schedule {self.kind!r} is not one of {', '.join(ETA_SCHEDULES)}")
        if not (math.isfinite(self.c) and self.c > 0):
            raise ConfigError(f"eta c={self.c} must be a positive number")
        if not 0.0 < self.eta <= 1.0:
            raise ConfigError(f"eta={self.eta} must be in (0, 1]")

    def __call__(self, n: int) -> float:
        """eta_i for a pair (s, a) updated n times before."""
        return self.eta if self.kind == "constant" else min(1.0, self.c / (self.c + n))

    def table(self, max_visits: int = 0) -> list[float]:
        """eta for n = 0, 1, ..., max_visits earlier updates (a lookup table for the training loop)."""
        return [self(n) for n in range(max_visits + 1)]


@dataclass
class Learned:
    """Q (S, A), the update counts n(s, a) (S, A), and the episodes the training finished."""

    Q: numpy.ndarray
    n: numpy.ndarray
    steps: int
    episodes: int
    returns: list[float] = field(default_factory=list)  # undiscounted return of every finished episode


class _Uniforms:
    """Uniform numbers in [0, 1) drawn from ``rng`` in blocks (one numpy call per 4096 draws)."""

    def __init__(self, rng: numpy.random.Generator):
        self.rng, self.block = rng, []

    def __call__(self) -> float:
        if not self.block:
            self.block = self.rng.random(4096).tolist()
        return self.block.pop()


def _argmax(q: list[float], u: float) -> int:
    """argmax_a q[a], a tie broken by u in [0, 1)."""
    best = max(q)
    ties = [a for a, v in enumerate(q) if v == best]
    return ties[0] if len(ties) == 1 else ties[int(u * len(ties))]


def q_learning(env: TabularEnv, steps: int, *, gamma: float, epsilon: float = 0.1,
               eta: EtaSchedule = EtaSchedule(), rng: numpy.random.Generator, Q0: float = 0.0,
               callback: Callable[[int, int], None] | None = None, every: int = 10_000) -> Learned:
    """Q-learning for ``steps`` environment steps with epsilon-greedy exploration.

    Q_{i+1}(s_t, a_t) = (1 - eta_i) Q_i(s_t, a_t) + eta_i (r_t + gamma max_a' Q_i(s_{t+1}, a'))   (5.2.2)
    ``callback(step, Q-as-lists)`` is called every ``every`` steps (progress, error curves).
    """
    check_settings(steps=steps, gamma=gamma, epsilon=epsilon)
    S, A = env.n_states, env.n_actions
    Q = [[float(Q0)] * A for _ in range(S)]  # plain lists: the per-step loop is faster than on arrays
    n = [[0] * A for _ in range(S)]
    etas = eta.table(min(steps, 100_000))
    uniform = _Uniforms(rng)
    s, episode_return, returns = env.reset(), 0.0, []
    for t in range(1, steps + 1):
        if uniform() < epsilon:  # explore
            a = int(uniform() * A)
        else:  # exploit: argmax_a Q(s, a)
            a = _argmax(Q[s], uniform())
        s_next, r, terminated, truncated = env.step(a)
        visits = n[s][a]
        eta_i = etas[visits] if visits < len(etas) else eta(visits)
        target = r if terminated else r + gamma * max(Q[s_next])
        Q[s][a] = (1.0 - eta_i) * Q[s][a] + eta_i * target  # (5.2.2)
        n[s][a] = visits + 1
        episode_return += r
        if terminated or truncated:
            returns.append(episode_return)
            s, episode_return = env.reset(), 0.0
        else:
            s = s_next
        if callback is not None and t % every == 0:
            callback(t, Q)
    return Learned(numpy.array(Q), numpy.array(n), steps, len(returns), returns)


def check_settings(**settings: float) -> None:
    if "steps" in settings and settings["steps"] < 1:
        raise ConfigError(f"steps={settings['steps']} must be at least 1")
    if "gamma" in settings and not 0.0 <= settings["gamma"] <= 1.0:  # gamma = 0: a myopic agent, target r_t
        raise ConfigError(f"gamma={settings['gamma']} must be in [0, 1]")
    if "epsilon" in settings and not 0.0 <= settings["epsilon"] <= 1.0:
        raise ConfigError(f"epsilon={settings['epsilon']} must be in [0, 1]")


def check_table(n_states: int, n_actions: int, name: str) -> None:
    """Refuse a Q-table (and n(s, a)) that cannot fit in memory: Python lists, about 40 bytes an entry."""
    from tiefnet.limits import check_allocation

    check_allocation({"the Q-table and n(s, a)": 2 * 40.0 * n_states * n_actions},
               f"tabular Q-learning on {name} ({n_states} states x {n_actions} actions)")


def greedy(Q: numpy.ndarray) -> numpy.ndarray:
    """pi(s) = argmax_a Q(s, a), the first best action on a tie."""
    return Q.argmax(axis=1)


def evaluate(env: TabularEnv, pi: numpy.ndarray, episodes: int) -> list[float]:
    """The undiscounted return G = sum_t r_t of each of ``episodes`` episodes following pi (5.1's utility
    U = sum_t gamma^t R(s_t) with gamma = 1, measured instead of computed)."""
    if episodes < 1:
        raise ConfigError(f"evaluation episodes={episodes} must be at least 1")
    returns = []
    for _ in range(episodes):
        s, total, done = env.reset(), 0.0, False
        while not done:
            s, r, terminated, truncated = env.step(int(pi[s]))
            total += r
            done = terminated or truncated
        returns.append(total)
    return returns


class GymEnv:
    """A gymnasium environment with Discrete observation and action spaces as a :class:`TabularEnv`.

    Its randomness is seeded once from ``rng`` (the first reset); an environment without a time limit
    of its own is cut after ``max_episode_steps`` steps (truncated).
    """

    def __init__(self, env_id: str, rng: numpy.random.Generator, max_episode_steps: int = 1000,
                 allow_module: bool = False, **kwargs):
        import gymnasium
        from gymnasium.spaces import Discrete

        from tiefnet.rl.environments import check_env_id

        check_env_id(env_id, allow_module)  # a registered id; module:Env only if allowed
        try:
            with warnings.catch_warnings():  # e.g. gymnasium's deprecation notice, raised as the error below
                warnings.simplefilter("ignore")
                self.env = gymnasium.make(env_id, **kwargs)
        except Exception as error:  # gymnasium's errors, and any of a --allow-env-module module
            message = " ".join(str(error).split())
            raise ConfigError(f"gymnasium environment {env_id!r}: {type(error).__name__}: {message}") from None
        spaces = {"observation": self.env.observation_space, "action": self.env.action_space}
        for name, space in spaces.items():
            if not isinstance(space, Discrete):
                self.env.close()
                shape = f" of shape {space.shape}" if getattr(space, "shape", None) else ""
                raise ConfigError(f"{env_id} has a {type(space).__name__} {name} space{shape}; tabular Q-learning "
                                  f"needs Discrete observations and actions (e.g. FrozenLake-v1, Taxi-v4, "
                                  f"CliffWalking-v1)")
        self.n_states, self.n_actions = int(spaces["observation"].n), int(spaces["action"].n)
        check_table(self.n_states, self.n_actions, env_id)
        self._obs_start, self._action_start = int(spaces["observation"].start), int(spaces["action"].start)
        spec = self.env.spec
        own_limit = spec is not None and spec.max_episode_steps is not None
        self.max_episode_steps = None if own_limit else max_episode_steps
        self._seed: int | None = int(rng.integers(2**31))
        self.t = 0

    def reset(self) -> int:
        obs, _ = self.env.reset(seed=self._seed)
        self._seed, self.t = None, 0  # seeded once; later resets continue its random stream
        return int(obs) - self._obs_start

    def step(self, a: int) -> tuple[int, float, bool, bool]:
        obs, r, terminated, truncated, _ = self.env.step(a + self._action_start)
        self.t += 1
        if self.max_episode_steps is not None and self.t >= self.max_episode_steps:
            truncated = True
        return int(obs) - self._obs_start, float(r), bool(terminated), bool(truncated)

    def close(self) -> None:
        self.env.close()

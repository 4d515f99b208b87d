"""One tabular Q-learning run (``tiefnet qlearn ENV``): learn Q on the grid world of 5.1 or a gymnasium
environment with Discrete spaces, evaluate the greedy policy, and on the grid world compare
max_a Q(s, a) and argmax_a Q(s, a) with the utilities U and the policy of value iteration.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy

from tiefnet.checkpoint import write_npz
from tiefnet.errors import ConfigError
from tiefnet.rl.gridworld import GridWorld, GridWorldEnv, lecture_gridworld, load_map
from tiefnet.rl.mdp import NO_ACTION, max_norm, value_iteration
from tiefnet.rl.qlearning import ETA_SCHEDULES, EtaSchedule, GymEnv, check_settings, evaluate, greedy, q_learning
from tiefnet.progress import progress_bar
from tiefnet.runs import RunFolder
from tiefnet.settings import check_seed, check_types, setting

GRIDWORLD = "gridworld"
GYM_ARROWS = {"FrozenLakeEnv": "←↓→↑", "CliffWalkingEnv": "↑→↓←"}  # gymnasium's action numbers, as arrows


@dataclass(frozen=True)
class Config:
    """Settings of one Q-learning run; the CLI builds its options from these fields."""

    env: str = setting(GRIDWORLD, "'gridworld' (lecture 5.1) or a gymnasium id with Discrete spaces, e.g. "
                                  "FrozenLake-v1, Taxi-v4, CliffWalking-v1.")
    steps: int = setting(200_000, "Environment steps of training (every step is one Q update).")
    gamma: float | None = setting(None, "Discount gamma in [0, 1] (0: a myopic agent; the default: 1 for the grid "
                                        "world, 0.99 otherwise).")
    epsilon: float = setting(0.2, "epsilon-greedy exploration: a random action with this probability.")
    eta_schedule: str = setting("visits", "Learning rate: 'visits' eta = c / (c + n(s,a)), or 'constant' eta.")
    eta_c: float = setting(5.0, "c of the 'visits' schedule.")
    eta: float = setting(0.1, "eta of the 'constant' schedule.")
    q0: float = setting(0.0, "Initial Q_0(s, a) for every s, a.")
    seed: int = setting(0, "Seed of every random choice (exploration, the environment).")
    eval_episodes: int = setting(1000, "Episodes that evaluate the greedy policy.")
    max_episode_steps: int = setting(1000, "Cut an episode after this many steps (if the environment has no limit).")
    map: str = setting("", "Grid world only: a map file (default: the lecture's 3x4 world).")
    reward: float = setting(-0.04, "Grid world only: R(s) of every non-exit field.")
    exploring_starts: bool = setting(True, "Grid world only: start each training episode in a random non-exit "
                                           "field (evaluation starts at S).")

    def __post_init__(self) -> None:
        check_types(self, {"gamma": float})
        check_seed(self.seed)
        check_settings(steps=self.steps, epsilon=self.epsilon)
        if self.gamma is not None:
            check_settings(gamma=self.gamma)
            if self.gamma == 0 and self.env == GRIDWORLD:
                raise ConfigError("gamma=0 on the grid world: value iteration, which the run compares with, needs "
                                  "gamma in (0, 1]")
        EtaSchedule(self.eta_schedule, self.eta_c, self.eta)  # validates
        for name in ("eval_episodes", "max_episode_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be at least 1")
        if not math.isfinite(self.q0):
            raise ConfigError(f"q0={self.q0} must be a finite number")
        if not math.isfinite(self.reward):
            raise ConfigError(f"reward={self.reward} must be a finite number")
        if self.env != GRIDWORLD and (self.map or self.reward != -0.04):
            raise ConfigError(f"map and reward are grid-world settings; {self.env} has its own")

    @property
    def discount(self) -> float:
        """gamma, with the default resolved."""
        if self.gamma is not None:
            return float(self.gamma)
        return 1.0 if self.env == GRIDWORLD else 0.99


def make_world(config: Config) -> GridWorld:
    if config.map:
        return load_map(config.map, reward=config.reward, gamma=config.discount)
    return lecture_gridworld(reward=config.reward, gamma=config.discount)


def make_env(config: Config, rng: numpy.random.Generator, training: bool = True, allow_env_module: bool = False):
    """The environment of ``config`` (the grid world simulated from P, or gymnasium's; a ``module:Env`` id
    only with ``allow_env_module``)."""
    if config.env == GRIDWORLD:
        return GridWorldEnv(make_world(config), rng, config.max_episode_steps,
                            exploring_starts=config.exploring_starts and training)
    return GymEnv(config.env, rng, config.max_episode_steps, allow_module=allow_env_module)


def policy_picture(env, pi: numpy.ndarray) -> str | None:
    """The greedy policy pi(s) = argmax_a Q(s, a) (given as ``pi``) as arrows on the board, for the grid world
    and gymnasium's grid worlds (FrozenLake: H and G for the holes and the goal); None for other environments."""
    if isinstance(env, GridWorldEnv):
        return env.world.table(env.world.arrows(numpy.where(env.world.mdp.terminal, NO_ACTION, pi)))
    unwrapped = env.env.unwrapped
    arrows = GYM_ARROWS.get(type(unwrapped).__name__)
    if arrows is None:
        return None
    rows, cols = getattr(unwrapped, "shape", None) or (unwrapped.nrow, unwrapped.ncol)
    desc = getattr(unwrapped, "desc", None)  # FrozenLake: S F H G
    cells = []
    for s, a in enumerate(pi):
        letter = desc[s // cols][s % cols].decode() if desc is not None else ""
        cells.append(letter if letter in ("H", "G") else arrows[int(a)])
    return "\n".join(" ".join(cells[r * cols:(r + 1) * cols]) for r in range(rows))


def run(config: Config, out: str | Path | None = None, progress: bool = False,
        allow_env_module: bool = False) -> dict[str, Any]:
    """Train, evaluate and (grid world) compare with value iteration; write ``out`` if given
    (config.json, Q.npz with Q and n(s,a), summary.json). Returns the summary."""
    folder = RunFolder(out, app="qlearn") if out is not None else None  # --out checked before training
    rng = numpy.random.default_rng(config.seed)
    env = make_env(config, rng, allow_env_module=allow_env_module)
    eta = EtaSchedule(config.eta_schedule, config.eta_c, config.eta)
    solution = value_iteration(env.world.mdp) if isinstance(env, GridWorldEnv) else None
    curve: list[list[float]] = []
    bar = progress_bar(progress and config.steps >= 100_000, config.steps, "Q-learning")

    def callback(step: int, Q: list[list[float]]) -> None:
        if bar is not None:
            bar.update(1000)
        if solution is not None and _is_checkpoint(step, config.steps):
            curve.append([step, max_norm(numpy.array(Q).max(axis=1) - solution.U)])

    started = time.perf_counter()
    try:
        learned = q_learning(env, config.steps, gamma=config.discount, epsilon=config.epsilon, eta=eta, rng=rng,
                             Q0=config.q0, callback=callback, every=1000)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - started
    pi = greedy(learned.Q)
    eval_env = make_env(config, numpy.random.default_rng([config.seed, 1]), training=False,
                        allow_env_module=allow_env_module)
    returns = evaluate(eval_env, pi, config.eval_episodes)
    summary: dict[str, Any] = {
        "env": config.env, "gamma": config.discount, "steps": config.steps, "episodes": learned.episodes,
        "seconds": seconds, "steps_per_second": config.steps / seconds if seconds > 0 else None,
        "eval_episodes": config.eval_episodes, "eval_mean_return": float(numpy.mean(returns)),
        "eval_std_return": float(numpy.std(returns)), "policy": pi.tolist(),
        "max_Q": learned.Q.max(axis=1).tolist(), "policy_picture": policy_picture(env, pi),
    }
    if solution is not None:
        summary.update(_compare(env.world, learned.Q, pi, solution, curve))
    for e in (env, eval_env):
        if isinstance(e, GymEnv):
            e.close()
    if folder is not None:
        folder.start(replace(config, gamma=config.discount))
        write_npz(folder.path / "Q.npz", {"Q": learned.Q, "n": learned.n},
                  {"format": "tiefnet-qtable/1", "env": config.env, "gamma": config.discount})
        folder.write_json("summary.json", summary, ascii=False)
    return summary


def _compare(world: GridWorld, Q: numpy.ndarray, pi: numpy.ndarray, solution, curve) -> dict[str, Any]:
    """max_s |max_a Q(s,a) - U(s)| and where argmax_a Q differs from value iteration's policy."""
    free = numpy.flatnonzero(~world.mdp.terminal)
    differ = [world.cells[s] for s in free if pi[s] != solution.pi[s]]
    return {"max_error": max_norm(Q.max(axis=1) - solution.U), "policies_agree": not differ,
            "disagreements": [list(c) for c in differ], "U": solution.U.tolist(),
            "value_iteration_policy": world.table(world.arrows(solution.pi)),
            "U_start": float(solution.U[world.start]), "error_curve": curve,
            "greedy_policy_arrows": world.arrows(numpy.where(world.mdp.terminal, NO_ACTION, pi))}


def _is_checkpoint(step: int, steps: int) -> bool:
    """1, 2, 5 x 10^k steps, and the last multiple of 1000: the points of the error curve."""
    mantissa = step / 10 ** int(math.log10(step))
    return mantissa in (1.0, 2.0, 5.0) or step + 1000 > steps


__all__ = ["Config", "run", "make_env", "policy_picture", "ETA_SCHEDULES"]

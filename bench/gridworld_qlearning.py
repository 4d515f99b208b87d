"""Issue 5, acceptance 1 and 2: dynamic programming and tabular Q-learning on the grid world of lecture 5.1,
plus tabular Q-learning on gymnasium's FrozenLake-v1 (slippery) and Taxi-v4.

Run it::

    .venv/bin/python bench/gridworld_qlearning.py --json bench/gridworld_qlearning.json --markdown

1. Value iteration, policy iteration and modified policy iteration (k = 10) for gamma = 1, 0.99, 0.9
   (R = -0.04): iterations, sweeps, the lecture's error bound, max_s |U - U_policy-iteration| and
   whether the policies are equal; for gamma = 1, U and the policy against the lecture's figure
   (Russell & Norvig's U, the lecture's arrows).
2. Q-learning on the grid world (gamma = 1, epsilon = 0.2, eta = 5/(5 + n(s,a))): max_s |max_a Q(s,a) - U(s)|
   and whether argmax_a Q is the value-iteration policy after each of ``--steps`` steps, for ``--seeds``
   seeds, with exploring starts (the default of ``tiefnet qlearn``) and from S only.
3. FrozenLake-v1 and Taxi-v4: the mean return of the greedy policy over 1000 episodes after
   ``--gym-steps`` steps, beside the same number for the optimal policy, computed by value iteration on the
   environment's own transition table (``env.unwrapped.P``: a reference only; the agent never reads it).
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy

from tiefnet.rl.gridworld import lecture_gridworld
from tiefnet.rl.mdp import solve
from tiefnet.rl.qlearning import GymEnv, evaluate
from tiefnet.rl.qlearning_run import Config, run

import _harness  # bench/_harness.py: command line, commit, CPU model

LECTURE_U = {(1, 3): 0.812, (2, 3): 0.868, (3, 3): 0.918, (1, 2): 0.762, (3, 2): 0.660,
             (1, 1): 0.705, (2, 1): 0.655, (3, 1): 0.611, (4, 1): 0.388}
LECTURE_PI = {(1, 3): "→", (2, 3): "→", (3, 3): "→", (1, 2): "↑", (3, 2): "↑",
              (1, 1): "↑", (2, 1): "←", (3, 1): "←", (4, 1): "←"}


def dynamic_programming() -> list[dict]:
    rows = []
    for gamma in (1.0, 0.99, 0.9):
        world = lecture_gridworld(gamma=gamma)
        reference = solve(world.mdp, "policy")
        for method in ("value", "policy", "modified"):
            tick = time.perf_counter()
            solution = solve(world.mdp, method)
            seconds = time.perf_counter() - tick
            row = {"gamma": gamma, "method": method, "iterations": solution.iterations, "sweeps": solution.sweeps,
                   "converged": solution.converged,
                   "error_bound": solution.error_bound if math.isfinite(solution.error_bound) else None,  # None: gamma = 1
                   "max_diff_to_policy_iteration": float(numpy.abs(solution.U - reference.U).max()),
                   "same_policy": bool((solution.pi == reference.pi).all()), "seconds": seconds,
                   "U": dict(zip(map(str, world.cells), numpy.round(solution.U, 4).tolist())),
                   "policy": dict(zip(map(str, world.cells), world.arrows(solution.pi)))}
            if gamma == 1.0:
                arrows = dict(zip(world.cells, world.arrows(solution.pi)))
                U = dict(zip(world.cells, solution.U))
                row["matches_lecture_U_3_decimals"] = all(round(U[c], 3) == v for c, v in LECTURE_U.items())
                row["matches_lecture_policy"] = all(arrows[c] == a for c, a in LECTURE_PI.items())
            rows.append(row)
    return rows


def qlearning_gridworld(steps: list[int], seeds: int) -> list[dict]:
    rows = []
    for exploring in (True, False):
        for n in steps:
            runs = [run(Config(steps=n, seed=seed, exploring_starts=exploring, eval_episodes=1000))
                    for seed in range(seeds)]
            rows.append({"steps": n, "exploring_starts": exploring, "seeds": seeds,
                         "max_error": [r["max_error"] for r in runs],
                         "policies_agree": [r["policies_agree"] for r in runs],
                         "disagreements": [r["disagreements"] for r in runs],
                         "eval_mean_return": [r["eval_mean_return"] for r in runs],
                         "seconds": [r["seconds"] for r in runs]})
            print(f"grid world, {n} steps, exploring starts {exploring}: max error "
                  f"{numpy.round(rows[-1]['max_error'], 4).tolist()}, agree {rows[-1]['policies_agree']}", flush=True)
    return rows


def optimal_return(env_id: str, gamma: float, episodes: int) -> float:
    """Mean return of the policy of value iteration on the environment's own table P[s][a] = [(p, s', r, done)]."""
    env = GymEnv(env_id, numpy.random.default_rng(123))
    table = env.env.unwrapped.P
    Q = numpy.zeros((env.n_states, env.n_actions))
    for _ in range(10_000):
        V = Q.max(axis=1)
        new = numpy.array([[sum(p * (r + (0.0 if done else gamma * V[s2])) for p, s2, r, done in table[s][a])
                            for a in range(env.n_actions)] for s in range(env.n_states)])
        if numpy.abs(new - Q).max() < 1e-10:
            break
        Q = new
    return float(numpy.mean(evaluate(env, Q.argmax(axis=1), episodes)))


def qlearning_gym(steps: int, seeds: int) -> list[dict]:
    rows = []
    for env_id in ("FrozenLake-v1", "Taxi-v4"):
        runs = [run(Config(env=env_id, steps=steps, seed=seed, eval_episodes=1000)) for seed in range(seeds)]
        rows.append({"env": env_id, "steps": steps, "gamma": runs[0]["gamma"],
                     "eval_mean_return": [r["eval_mean_return"] for r in runs],
                     "optimal_policy_mean_return": optimal_return(env_id, runs[0]["gamma"], 1000),
                     "steps_per_second": [r["steps_per_second"] for r in runs]})
        print(f"{env_id}: {rows[-1]}", flush=True)
    return rows


def markdown(result: dict) -> str:
    lines = ["| gamma | method | iterations | sweeps | error bound | max diff to PI | same policy |",
             "|---|---|---|---|---|---|---|"]
    for r in result["dynamic_programming"]:
        bound = "n/a" if r["error_bound"] is None else f"{r['error_bound']:.3g}"
        lines.append(f"| {r['gamma']} | {r['method']} | {r['iterations']} | {r['sweeps']} | {bound} | "
                     f"{r['max_diff_to_policy_iteration']:.1e} | {r['same_policy']} |")
    lines += ["", "| steps | exploring starts | max_s abs(max_a Q - U), per seed | policy = VI policy |",
              "|---|---|---|---|"]
    for r in result["qlearning_gridworld"]:
        lines.append(f"| {r['steps']:,} | {r['exploring_starts']} | {', '.join(f'{e:.4f}' for e in r['max_error'])} "
                     f"| {sum(r['policies_agree'])}/{r['seeds']} |")
    lines += ["", "| env | steps | greedy mean return (1000 episodes), per seed | optimal policy |", "|---|---|---|---|"]
    for r in result["qlearning_gym"]:
        lines.append(f"| {r['env']} | {r['steps']:,} | {', '.join(f'{v:.3f}' for v in r['eval_mean_return'])} | "
                     f"{r['optimal_policy_mean_return']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="10000,100000,1000000", help="grid-world Q-learning budgets")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--gym-steps", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    result = {"command": _harness.command_line(), "git_commit": _harness.git_commit(),
              "python": platform.python_version(), "cpu": _harness.cpu_model(),
              "dynamic_programming": dynamic_programming(),
              "qlearning_gridworld": qlearning_gridworld([int(s) for s in args.steps.split(",")], args.seeds),
              "qlearning_gym": qlearning_gym(args.gym_steps, args.seeds)}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    if args.markdown:
        print(markdown(result))


if __name__ == "__main__":
    main()

"""``tiefnet gridworld``, ``tiefnet qlearn``, ``tiefnet dqn train|play``: chapter 5, reinforcement learning.

    tiefnet gridworld [--method value|policy|modified] [--gamma G] [--reward R] [--json]
    tiefnet qlearn [ENV] [--steps N] ...
    tiefnet dqn [train] [ENV] --out DIR ...;  tiefnet dqn play --model DIR [--gif FILE]
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import fields
from pathlib import Path

from tiefnet.cli.common import add_actions, add_config_options, add_run_options, config_from, default_out
from tiefnet.errors import ConfigError
from tiefnet.rl import dqn_play, dqn_run, qlearning_run
from tiefnet.rl.dqn import DQNConfig
from tiefnet.rl.gridworld import lecture_gridworld, load_map
from tiefnet.rl.mdp import bellman_residual, solve


def add_commands(sub) -> None:
    _add_gridworld(sub)
    _add_qlearn(sub)
    _add_dqn(sub)


def shorthand(argv: list[str]) -> list[str]:
    """``tiefnet dqn ENV --out DIR`` is short for ``tiefnet dqn train ENV --out DIR``."""
    if len(argv) >= 2 and argv[0] == "dqn" and argv[1] not in ("train", "play", "-h", "--help"):
        return ["dqn", "train", *argv[1:]]
    return argv


def _add_gridworld(sub) -> None:
    p = sub.add_parser("gridworld", help="solve the grid world of lecture 5.1: value/policy iteration, U and pi",
                       description="Solve the 3x4 grid world of lecture 5.1 (or a map of your own) with value "
                                   "iteration, policy iteration or modified policy iteration; print U and the "
                                   "policy as arrows, like the lecture's table.",
                       epilog="A map file has one line per row (top row first), fields separated by spaces: "
                              ". free, S start, # wall, a number such as +1 or -1 an exit with that reward.")
    p.add_argument("--method", choices=("value", "policy", "modified"), default="value",
                   help="value iteration, policy iteration (exact evaluation) or modified policy iteration")
    p.add_argument("--gamma", type=float, default=1.0, help="discount gamma in (0, 1] (default 1.0)")
    p.add_argument("--reward", type=float, default=-0.04, help="R(s) of every non-exit field (default -0.04)")
    p.add_argument("--epsilon", type=float, default=1e-6,
                   help="stop when ||U_i - U_{i-1}|| <= epsilon (1 - gamma) / gamma (default 1e-6)")
    p.add_argument("--k", type=int, default=10, help="evaluation sweeps per policy of --method modified (default 10)")
    p.add_argument("--max-sweeps", type=int, default=100_000, help="iteration limit (needed for gamma = 1)")
    p.add_argument("--map", type=Path, default=None, help="a map file (default: the lecture's grid world)")
    p.add_argument("--json", action="store_true", help="print U, the policy and the iteration count as JSON")
    p.set_defaults(handler=_cmd_gridworld)


def _cmd_gridworld(args: argparse.Namespace) -> int:
    world = (load_map(args.map, args.reward, args.gamma) if args.map else lecture_gridworld(args.reward, args.gamma))
    options = {"policy": {"max_iterations": args.max_sweeps},
               "value": {"epsilon": args.epsilon, "max_sweeps": args.max_sweeps},
               "modified": {"k": args.k, "epsilon": args.epsilon, "max_iterations": args.max_sweeps}}[args.method]
    solution = solve(world.mdp, args.method, **options)
    residual = bellman_residual(world.mdp, solution.U)
    bound = solution.error_bound if math.isfinite(solution.error_bound) else None
    if args.json:
        print(json.dumps({"method": args.method, "gamma": args.gamma, "reward": args.reward,
                          "iterations": solution.iterations, "sweeps": solution.sweeps,
                          "converged": solution.converged, "error_bound": bound, "bellman_residual": residual,
                          "cells": [list(c) for c in world.cells], "U": solution.U.tolist(),
                          "policy": world.arrows(solution.pi), "start": list(world.cells[world.start])},
                         ensure_ascii=False))
        return 0
    name = {"value": "value iteration", "policy": "policy iteration",
            "modified": f"modified policy iteration (k = {args.k})"}
    count = f"{solution.iterations} iterations" + (f", {solution.sweeps} sweeps" if args.method == "modified" else "")
    state = "converged" if solution.converged else "stopped by --max-sweeps, NOT converged"
    if solution.converged and args.gamma >= 1 and args.method != "policy":
        state = "a fixed point reached (U_i = U_{i-1})"
    print(f"{name[args.method]}, gamma = {args.gamma:g}, R = {args.reward:g}: {count}, {state}; "
          f"||U - U*|| <= {'n/a (gamma = 1)' if bound is None else f'{bound:.3g}'}, ||B(U) - U|| = {residual:.3g}")
    print("U:\n" + world.table(solution.U) + "\npolicy:\n" + world.table(world.arrows(solution.pi)))
    return 0


def _add_qlearn(sub) -> None:
    p = sub.add_parser("qlearn", help="tabular Q-learning on the grid world or a gymnasium env (lecture 5.2)",
                       description="Learn Q(s, a) from experience with Q-learning (5.2.2) and epsilon-greedy "
                                   "exploration; print the greedy policy and its mean return; on the grid world also "
                                   "compare max_a Q with the U of value iteration.")
    p.add_argument("env", nargs="?", default="gridworld", metavar="ENV",
                   help="'gridworld' or a gymnasium id with Discrete spaces, e.g. FrozenLake-v1, Taxi-v4")
    add_config_options(p, qlearning_run.Config, skip=("env", "gamma"))
    p.add_argument("--gamma", type=float, default=None, metavar="GAMMA",
                   help=fields_help(qlearning_run.Config, 'gamma'))
    _add_allow_env_module(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_run_options(p, "qlearn", out_help="write Q.npz, config.json and summary.json to this folder")
    p.set_defaults(handler=_cmd_qlearn)


def _cmd_qlearn(args: argparse.Namespace) -> int:
    config = config_from(args, qlearning_run.Config)
    summary = qlearning_run.run(config, args.out, progress=not (args.no_progress or args.json),
                                allow_env_module=args.allow_env_module)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
        return 0
    eta = (f"eta = {config.eta_c:g}/({config.eta_c:g} + n(s,a))" if config.eta_schedule == "visits"
           else f"eta = {config.eta:g}")
    print(f"Q-learning on {config.env}: {summary['steps']} steps ({summary['episodes']} episodes) in "
          f"{summary['seconds']:.2f} s, gamma = {summary['gamma']:g}, epsilon = {config.epsilon:g}, {eta}")
    picture = summary["policy_picture"] or " ".join(map(str, summary["policy"]))
    print("greedy policy argmax_a Q(s, a):\n" + picture)
    print(f"greedy policy over {summary['eval_episodes']} episodes: mean return {summary['eval_mean_return']:.3f} "
          f"(sd {summary['eval_std_return']:.3f})")
    if "max_error" in summary:
        agree = ("the policies agree" if summary["policies_agree"]
                 else f"the policies differ at {', '.join(map(str, map(tuple, summary['disagreements'])))}")
        print(f"value iteration: U(S) = {summary['U_start']:.3f}, max_s |max_a Q(s,a) - U(s)| = "
              f"{summary['max_error']:.4f}; {agree}")
    if args.out is not None:
        print(f"results in {args.out}")
    return 0


def _add_dqn(sub) -> None:
    p = sub.add_parser("dqn", help="deep Q-learning with experience replay and a target network (lecture 5.3)",
                       description="Train a DQN agent on a gymnasium environment (default CartPole-v1; ALE/... ids "
                                   "play Atari from frames with the Nature CNN), or play a trained one. "
                                   "'tiefnet dqn ENV ...' is short for 'tiefnet dqn train ENV ...'.")
    actions = add_actions(p)
    train = actions.add_parser("train", help="train on ENV (default CartPole-v1)",
                               description="Train DQN; writes config.json, metrics.jsonl (one line per episode, the "
                                           "mean loss every --log-every steps, the greedy checks), model.npz/.json, "
                                           "checkpoint.npz (resumable), returns.png and summary.json "
                                           "(eval_mean_return: --eval-episodes greedy episodes at the end).",
                               epilog="With --resume, options not given are those of the run being continued.")
    train.add_argument("env", nargs="?", default=argparse.SUPPRESS, metavar="ENV",
                       help="a gymnasium id with a discrete action space (default: CartPole-v1)")
    add_config_options(train, DQNConfig, skip=("env",), resumable=True)
    _add_allow_env_module(train)
    add_run_options(train, "dqn", resume_example="--steps")
    train.set_defaults(handler=_cmd_dqn_train)
    play = actions.add_parser("play", help="play a trained agent greedily, optionally into a GIF",
                              description="Play --episodes greedy episodes with a trained Q-network and print "
                                          "their returns; --gif writes the first one as an animated GIF.")
    play.add_argument("--model", type=Path, required=True, help="a dqn run folder (model.npz + model.json)")
    play.add_argument("--episodes", type=int, default=1, help="episodes to play (default 1)")
    play.add_argument("--gif", type=Path, default=None, help="write the first episode to this GIF file")
    play.add_argument("--seed", type=int, default=0, help="seed of the episodes' resets (default 0)")
    play.set_defaults(handler=_cmd_dqn_play)


def _cmd_dqn_train(args: argparse.Namespace) -> int:
    config = config_from(args, DQNConfig)
    out = args.out or default_out("dqn")
    # a module:Env id only as ENV of this command line, never from the folder of --resume
    allow = args.allow_env_module and hasattr(args, "env")
    if args.resume and not hasattr(args, "env") and ":" in config.env:
        raise ConfigError(f"--resume: {out}/config.json names the environment {config.env!r}, a Python module to "
                          f"import; a folder's environment id is never imported (give ENV and --allow-env-module "
                          f"to import it)")
    summary = dqn_run.run(config, out, progress=not args.no_progress, resume=args.resume, allow_env_module=allow)
    mean = summary["eval_mean_return"]
    evaluation = (f"mean return {mean:.1f} over {summary['eval_episodes']} greedy episodes"
                  if mean is not None else "no evaluation")
    print(f"{config.env}: {summary['steps']} steps, {summary['episodes']} episodes, "
          f"{summary['train_seconds']:.1f} s; {evaluation}; results in {out}")
    return 0


def _add_allow_env_module(p) -> None:
    p.add_argument("--allow-env-module", action="store_true",
                   help="allow an ENV of the form module:Env-v0, which imports that Python module (from the "
                        "current folder too) to register the environment")


def fields_help(config_class: type, name: str) -> str:
    return next(f.metadata.get("help", "") for f in fields(config_class) if f.name == name)


def _cmd_dqn_play(args: argparse.Namespace) -> int:
    returns = dqn_play.play(args.model, episodes=args.episodes, gif=args.gif, seed=args.seed)
    for i, value in enumerate(returns, 1):
        print(f"episode {i}: return {value:g}")
    if len(returns) > 1:
        print(f"mean return {sum(returns) / len(returns):.1f} over {len(returns)} episodes")
    if args.gif is not None:
        print(f"first episode written to {args.gif}")
    return 0

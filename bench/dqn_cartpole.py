"""Issue 5, acceptance 3: DQN solves CartPole-v1 (mean return >= 475 over 100 greedy evaluation episodes).

Trains tiefnet's DQN with its default settings (``tiefnet dqn train CartPole-v1``) for each seed given,
evaluates 100 greedy episodes at the end, and prints environment steps, wall time and the mean return.

    .venv/bin/python bench/dqn_cartpole.py --seeds 0 1 2 3 4 [--out runs/bench-dqn] [--set eta=1e-3 ...]

Writes one run folder per seed and ``dqn_cartpole.json`` (all figures, the machine and the BLAS kernel)
under --out.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import fields
from pathlib import Path

from tiefnet.rl.dqn import DQNConfig
from tiefnet.rl.dqn_run import run

import _harness  # bench/_harness.py: CPU model, BLAS kernel, commit, command

SOLVED = 475.0


def parse_settings(items: list[str]) -> dict:
    types = {f.name: type(f.default) for f in fields(DQNConfig)}
    settings = {}
    for item in items:
        name, _, value = item.partition("=")
        settings[name] = types[name](value)
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-dqn-cartpole"))
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="override DQNConfig fields")
    args = parser.parse_args()
    settings = parse_settings(args.set)
    results = []
    env = _harness.environment(torch=False)
    print(f"tiefnet DQN on CartPole-v1, settings {settings or 'default'}, {env['cpu']}, "
          f"OpenBLAS kernel {env['numpy_openblas_kernel']}")
    for seed in args.seeds:
        started = time.perf_counter()
        config = DQNConfig(env="CartPole-v1", seed=seed, **settings)
        summary = run(config, args.out / f"seed{seed}", progress=False, log=lambda line: None)
        wall = time.perf_counter() - started
        result = {"seed": seed, "eval_mean_return": summary["eval_mean_return"], "steps": summary["steps"],
                  "episodes": summary["episodes"], "train_seconds": summary["train_seconds"],
                  "wall_seconds": wall, "solved": summary["eval_mean_return"] >= SOLVED}
        results.append(result)
        print(f"seed {seed}: eval mean return {result['eval_mean_return']:.1f} over {summary['eval_episodes']} greedy "
              f"episodes ({'solved' if result['solved'] else 'not solved'}), {result['steps']} steps, "
              f"{result['episodes']} episodes, training {result['train_seconds']:.1f} s, wall {wall:.1f} s",
              flush=True)
    solved = sum(r["solved"] for r in results)
    print(f"{solved} of {len(results)} seeds reach >= {SOLVED}")
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"settings": settings, "results": results, "environment": env}
    (args.out / "dqn_cartpole.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()

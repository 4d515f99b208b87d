"""AlphaZero self-play speed (issue 11, acceptance 6), in one run:

1. tiefnet's self-play on Connect Four with 1 and 2 worker processes: positions (moves played) per
   second and network evaluations per second (f_theta + MCTS, the default 5 x 64 tower, or --blocks/--filters);
2. batched leaf evaluation against one position per f_theta call: MCTS simulations per second of
   one worker playing ``--parallel`` games side by side (one leaf of each per call) and of the same
   worker playing one game at a time (batch 1);
3. tiefnet against alpha-zero-general's Connect Four self-play (its own code, PyTorch on the CPU;
   bench/alphazero_peer.py) with the same network — the peer's OthelloNNet (4 conv 3x3 + BN + ReLU,
   two dense 1024/512 + BN1d, policy and value layers), ``--peer-channels`` filters, built from
   tiefnet's layers — and the same simulations per move. tiefnet plays with its defaults (worker
   processes, games side by side); the peer with its single process and PyTorch's threads.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/alphazero_speed.py --json out.json

The networks are untrained (throughput, not strength). Positions per second, not games per
second, compare: untrained games differ in length.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import _harness
from alphazero_peer import DEFAULT_AZG, peer_selfplay

from tiefnet import backend
from tiefnet.nn import BatchNorm1d, BatchNorm2d, Conv2d, Dense, Flatten, Parallel, ReLU, Sequential, Tanh, \
    layer_to_config
from tiefnet.rl.alphazero.net import Evaluator, policy_value_net
from tiefnet.rl.alphazero.selfplay import SelfPlayConfig, timed_self_play
from tiefnet.rl.alphazero.workers import Task, make_workers, split
from tiefnet.rl.games import make_game
from tiefnet.rl.mcts import SearchConfig


def peer_sized_net(game, channels: int, rng) -> Sequential:
    """alpha-zero-general's OthelloNNet layer for layer (dropout is off in evaluation)."""
    H, W = game.board_shape
    c = channels
    return Sequential(
        Conv2d(game.plane_count, c, 3, padding=1, rng=rng), BatchNorm2d(c), ReLU(),
        Conv2d(c, c, 3, padding=1, rng=rng), BatchNorm2d(c), ReLU(),
        Conv2d(c, c, 3, padding=0, rng=rng), BatchNorm2d(c), ReLU(),
        Conv2d(c, c, 3, padding=0, rng=rng), BatchNorm2d(c), ReLU(), Flatten(),
        Dense(c * (H - 4) * (W - 4), 1024, rng=rng), BatchNorm1d(1024), ReLU(),
        Dense(1024, 512, rng=rng), BatchNorm1d(512), ReLU(),
        Parallel(Dense(512, game.action_count, rng=rng), Sequential(Dense(512, 1, rng=rng), Tanh())))


def workers_selfplay(game_name: str, history: int, net, workers: int, games: int, config: SelfPlayConfig,
                     seed: int) -> dict:
    """Self-play of ``games`` games shared out to ``workers`` processes, timed around the games only."""
    pool = make_workers(workers)
    arrays = {k: backend.to_numpy(v) for k, v in net.arrays().items()}
    settings = {"history": history}
    warm = [Task(game_name, settings, layer_to_config(net), arrays, config, 1, (seed, 99, i))
            for i in range(max(1, workers))]
    pool.map(warm)  # processes started, network built in each
    tasks = [Task(game_name, settings, layer_to_config(net), arrays, config, n, (seed, i))
             for i, n in enumerate(split(games, max(1, workers)))]
    tick = time.perf_counter()
    results = pool.map(tasks)
    seconds = time.perf_counter() - tick
    pool.close()
    positions = sum(s.positions for _, s in results)
    evaluations = sum(s.evaluations for _, s in results)
    return {"workers": workers, "games": games, "positions": positions, "evaluations": evaluations,
            "seconds": seconds, "positions_per_second": positions / seconds,
            "evaluations_per_second": evaluations / seconds}


def batched_vs_single(game, net, simulations: int, parallel: int, games: int, seed: int) -> dict:
    """Simulations per second of one worker, many games side by side vs one game at a time."""
    out = {}
    with backend.thread_limit(1):
        for label, par, n in (("batched", parallel, games), ("one_at_a_time", 1, max(2, games // 8))):
            evaluator = Evaluator(game, net)
            config = SelfPlayConfig(SearchConfig(simulations=simulations), temperature_moves=10, parallel_games=par)
            records, stats = timed_self_play(game, evaluator, n, config, np.random.default_rng(seed))
            sims = stats.positions * simulations
            out[label] = {"parallel_games": par, "games": n, "positions": stats.positions,
                          "simulations": sims, "seconds": stats.seconds,
                          "simulations_per_second": sims / stats.seconds,
                          "evaluations_per_second": stats.evaluations / stats.seconds,
                          "mean_batch": stats.evaluations / max(1, stats.calls)}
    out["ratio"] = out["batched"]["simulations_per_second"] / out["one_at_a_time"]["simulations_per_second"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=64, help="self-play games per worker measurement")
    parser.add_argument("--simulations", type=int, default=100, help="simulations per move (parts 1, 2)")
    parser.add_argument("--parallel", type=int, default=32, help="games side by side per worker")
    parser.add_argument("--blocks", type=int, default=5, help="residual blocks of f_theta (parts 1, 2)")
    parser.add_argument("--filters", type=int, default=64, help="filters of f_theta (parts 1, 2)")
    parser.add_argument("--peer", action=argparse.BooleanOptionalAction, default=True, help="part 3")
    parser.add_argument("--azg-dir", default=DEFAULT_AZG)
    parser.add_argument("--peer-games", type=int, default=4, help="the peer's games (one at a time)")
    parser.add_argument("--peer-simulations", type=int, default=25, help="the peer's default numMCTSSims")
    parser.add_argument("--peer-channels", type=int, default=64, help="num_channels of both networks (peer: 512)")
    parser.add_argument("--peer-threads", type=int, default=2, help="PyTorch threads of the peer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    results: dict = {"environment": _harness.environment(torch=False)}
    _harness.announce_environment(_harness.UNSET_OPENBLAS, torch=False)
    game = make_game("connect4")
    net = policy_value_net(game, args.blocks, args.filters, np.random.default_rng(args.seed))
    results["network"] = {"blocks": args.blocks, "filters": args.filters}
    config = SelfPlayConfig(SearchConfig(simulations=args.simulations), temperature_moves=10,
                            parallel_games=args.parallel)
    results["workers"] = []
    for workers in (1, 2):
        row = workers_selfplay("connect4", 8, net, workers, args.games * workers, config, args.seed)
        results["workers"].append(row)
        print(f"self-play, {workers} worker(s): {row['positions_per_second']:.1f} positions/s, "
              f"{row['evaluations_per_second']:.0f} evaluations/s ({row['games']} games, {row['seconds']:.1f} s)",
              flush=True)
    b = batched_vs_single(game, net, args.simulations, args.parallel, args.games, args.seed)
    results["batched"] = b
    print(f"batched ({args.parallel} games side by side): {b['batched']['simulations_per_second']:.0f} simulations/s "
          f"(mean batch {b['batched']['mean_batch']:.1f}); one position per call: "
          f"{b['one_at_a_time']['simulations_per_second']:.0f} simulations/s; ratio {b['ratio']:.2f}", flush=True)
    if args.peer:
        peer_game = make_game("connect4", history=1)
        peer_net = peer_sized_net(peer_game, args.peer_channels, np.random.default_rng(args.seed))
        peer_config = SelfPlayConfig(SearchConfig(simulations=args.peer_simulations), temperature_moves=15,
                                     parallel_games=args.parallel)
        ours = workers_selfplay("connect4", 1, peer_net, 2, args.games * 2, peer_config, args.seed)
        ours1 = workers_selfplay("connect4", 1, peer_net, 1, args.games, peer_config, args.seed)
        theirs = peer_selfplay(args.azg_dir, games=args.peer_games, simulations=args.peer_simulations,
                               threads=args.peer_threads, seed=args.seed, channels=args.peer_channels)
        ratio = ours["positions_per_second"] / theirs["positions_per_second"]
        results["peer"] = {"tiefnet_2_workers": ours, "tiefnet_1_worker": ours1, "alpha_zero_general": theirs,
                           "ratio": ratio,
                           "ratio_1_worker": ours1["positions_per_second"] / theirs["positions_per_second"],
                           "channels": args.peer_channels, "simulations": args.peer_simulations,
                           "tiefnet_parameters": int(sum(p.value.size for p in peer_net.parameters()))}
        print(f"vs alpha-zero-general ({args.peer_channels} channels, {args.peer_simulations} simulations): tiefnet "
              f"{ours['positions_per_second']:.1f} positions/s (2 workers; 1 worker "
              f"{ours1['positions_per_second']:.1f}), alpha-zero-general {theirs['positions_per_second']:.2f} "
              f"positions/s ({args.peer_threads} torch threads): ratio {ratio:.1f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

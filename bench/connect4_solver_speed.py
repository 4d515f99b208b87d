"""Speed of the Connect Four judge (tiefnet.rl.games.connect4_solver), single-threaded pure Python.

1. Random positions: for each number of plies, ``--positions`` positions from random legal play
   that nobody has won and where the mover cannot win at once; weak_solve and solve each timed
   with an empty table. A search longer than ``--timeout`` s is stopped and counted at the limit.
2. A benchmark's workload: ``--judge`` games of a "sensible" player (wins when it can, blocks a
   single threat, random otherwise); from each, one position at ply >= 10 and the move played
   there, judged with ``judge`` (exact=False; exact=True) by two Solvers whose tables are kept,
   as a benchmark would; the mean times 1000 estimates judging 1000 positions.

    .venv/bin/python bench/connect4_solver_speed.py [--plies 8,10,12,16,20] [--positions 10]
        [--judge 50] [--timeout 60] [--seed 0] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import signal
import statistics
import time

import numpy as np

from tiefnet.rl.games.connect4_solver import Solver, winning_columns

HEIGHT, FULL = 6, 42


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout


def timed(function, timeout: float) -> tuple[float, bool]:
    """(seconds, finished): ``function()`` stopped by SIGALRM after ``timeout`` seconds."""
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    start = time.perf_counter()
    try:
        function()
        return time.perf_counter() - start, True
    except Timeout:
        return timeout, False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def legal_columns(moves) -> list[int]:
    heights = [list(moves).count(col) for col in range(7)]
    return [col for col in range(7) if heights[col] < HEIGHT]


def random_position(rng, plies: int) -> list[int]:
    """Random legal play to ``plies`` moves; nobody has won and the mover cannot win at once."""
    while True:
        moves: list[int] = []
        for _ in range(plies):
            if moves and moves[-1] in winning_columns(moves[:-1]):
                break
            moves.append(int(rng.choice(legal_columns(moves))))
        else:
            if not (moves and moves[-1] in winning_columns(moves[:-1])) and not winning_columns(moves):
                return moves


def sensible_move(rng, moves) -> int:
    return int(rng.choice(winning_columns(moves) or winning_columns(moves, opponent=True) or legal_columns(moves)))


def sensible_game(rng) -> list[int]:
    """A whole game of the sensible player against itself."""
    moves: list[int] = []
    while len(moves) < FULL and not (moves and moves[-1] in winning_columns(moves[:-1])):
        moves.append(sensible_move(rng, moves))
    return moves


def time_random_positions(plies_list, count, timeout, rng) -> list[dict]:
    rows = []
    for plies in plies_list:
        weak, exact, nodes, unfinished = [], [], [], 0
        for _ in range(count):
            moves = random_position(rng, plies)
            solver = Solver()
            seconds, done = timed(lambda: solver.weak_solve(moves), timeout)
            weak.append(seconds)
            nodes.append(solver.nodes)
            unfinished += not done
            solver.reset()
            seconds, done = timed(lambda: solver.solve(moves), timeout)
            exact.append(seconds)
            unfinished += not done
            line = "".join(map(str, moves))
            print(f"  ply {plies}: {line} weak {weak[-1]:.2f} s, exact {exact[-1]:.2f} s", flush=True)
        rows.append({"plies": plies, "positions": count, "weak_mean_s": statistics.mean(weak),
                     "weak_median_s": statistics.median(weak), "weak_max_s": max(weak),
                     "exact_mean_s": statistics.mean(exact), "exact_max_s": max(exact),
                     "weak_nodes_mean": statistics.mean(nodes), "stopped_at_timeout": unfinished})
    return rows


def time_judging(games, timeout, rng) -> dict:
    weak_solver, exact_solver = Solver(), Solver()     # each keeps its table, as a benchmark would
    exact_times, weak_times, plies = [], [], []
    for _ in range(games):
        game = sensible_game(rng)
        if len(game) <= 11:
            continue
        ply = int(rng.integers(10, len(game) - 1))        # a position with its played move
        moves, action = game[:ply], game[ply]
        if winning_columns(moves):
            continue
        plies.append(ply)
        seconds, _ = timed(lambda: weak_solver.judge(moves, action, exact=False), timeout)
        weak_times.append(seconds)
        seconds, _ = timed(lambda: exact_solver.judge(moves, action), timeout)
        exact_times.append(seconds)
        print(f"  judge at ply {ply}: weak {weak_times[-1]:.2f} s, exact {exact_times[-1]:.2f} s", flush=True)
    return {"positions": len(plies), "mean_ply": statistics.mean(plies),
            "weak_mean_s": statistics.mean(weak_times), "weak_max_s": max(weak_times),
            "exact_mean_s": statistics.mean(exact_times), "exact_max_s": max(exact_times),
            "estimate_1000_weak_min": 1000 * statistics.mean(weak_times) / 60,
            "estimate_1000_exact_min": 1000 * statistics.mean(exact_times) / 60}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plies", default="8,10,12,16,20")
    parser.add_argument("--positions", type=int, default=10)
    parser.add_argument("--judge", type=int, default=50, help="games to take one judged position from")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per search")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    plies = [int(p) for p in args.plies.split(",") if p]
    rows = time_random_positions(plies, args.positions, args.timeout, rng) if args.positions else []
    judging = time_judging(args.judge, args.timeout, rng) if args.judge else None
    print("\n| plies | positions | weak mean s | weak median s | weak max s | exact mean s | exact max s | stopped |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['plies']} | {r['positions']} | {r['weak_mean_s']:.2f} | {r['weak_median_s']:.2f} | "
              f"{r['weak_max_s']:.2f} | {r['exact_mean_s']:.2f} | {r['exact_max_s']:.2f} | {r['stopped_at_timeout']} |")
    if judging:
        print(f"\njudge on {judging['positions']} positions of sensible games (mean ply {judging['mean_ply']:.1f}): "
              f"weak {judging['weak_mean_s']:.2f} s mean ({judging['weak_max_s']:.1f} max), "
              f"exact {judging['exact_mean_s']:.2f} s mean ({judging['exact_max_s']:.1f} max); "
              f"1000 positions: ~{judging['estimate_1000_weak_min']:.0f} min weak, "
              f"~{judging['estimate_1000_exact_min']:.0f} min exact")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"random_positions": rows, "judging": judging, "args": vars(args)}, out, indent=1)


if __name__ == "__main__":
    main()

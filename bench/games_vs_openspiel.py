"""Our board games against OpenSpiel's on random games: the same rules, step by step, and their speed.

Plays ``--games`` games of uniformly random legal moves in tiefnet and in OpenSpiel side by side
(the same action in both) and compares, at every step, the legal actions, the player to move and
the terminal flag, and at the end the returns (OpenSpiel's ``returns()[p]`` against our z seen by
player p). Prints per game: games played, steps compared, mismatches (must be 0), the time spent
in each library, and tiefnet's microseconds per ``play`` and per ``legal_mask`` (best of 5 over
positions of those games). Exits with 1 on any mismatch.

    .venv/bin/python bench/games_vs_openspiel.py [--game {tictactoe,connect4,go,all}] [--games 2000] [--seed 0]

Go (board sizes ``--go-sizes``, 5 and 9) needs ``tiefnet.rl.games.go``; without it, it is skipped
with a message. It is compared with OpenSpiel's ``go(board_size, komi)``, whose only ko rule is the
simple ko and whose game ends after two passes in a row or ``max_game_length`` = 2 size^2 moves; our
Go is built with ``superko=False`` and that game length.
"""
from __future__ import annotations

import importlib.util
import inspect
import sys
import time
import timeit

import numpy

from tiefnet.rl.games import make_game

import _harness  # bench/_harness.py: CPU model, cores, commit, parser

RECOMMENDED = ".venv/bin/python bench/games_vs_openspiel.py --game all --games 2000"
SHOWN = 5  # mismatches printed in full per game


def compare(game, reference, games: int, rng: numpy.random.Generator) -> dict:
    """Play ``games`` random games in ``game`` (ours) and ``reference`` (OpenSpiel) side by side.

    A game stops at its first mismatch (which is counted and, for the first few, described);
    returns the counts, seconds per library and a sample of (state, action) pairs for timing.
    """
    steps = mismatches = 0
    ours_s = theirs_s = 0.0
    described: list[str] = []
    sample: list[tuple] = []
    clock = time.perf_counter
    for g in range(games):
        t = clock()
        state = game.initial()
        ours_s += clock() - t
        t = clock()
        theirs = reference.new_initial_state()
        theirs_s += clock() - t
        while True:
            t = clock()
            legal = game.legal_actions(state).tolist()
            ours_s += clock() - t
            t = clock()
            their_legal, their_end = theirs.legal_actions(), theirs.is_terminal()
            their_player = theirs.current_player()
            theirs_s += clock() - t
            steps += 1
            problem = None
            if legal != their_legal:
                problem = f"legal actions {_diff(legal, their_legal)}"
            elif state.terminal != their_end:
                problem = f"terminal: ours {state.terminal}, OpenSpiel {their_end}"
            elif not state.terminal and state.player != their_player:
                problem = f"player to move: ours {state.player}, OpenSpiel {their_player}"
            elif state.terminal:
                returns = theirs.returns()
                ours = [state.z if p == state.player else -state.z for p in (0, 1)]
                if ours != [int(r) for r in returns] or any(r != int(r) for r in returns):
                    problem = f"returns: ours {ours}, OpenSpiel {returns}"
            if problem:
                mismatches += 1
                if len(described) < SHOWN:
                    moves = " ".join(game.action_name(a) for a in state.moves)
                    described.append(f"game {g}, after {state.ply} moves ({moves}): {problem}")
                break
            if state.terminal:
                break
            a = int(rng.choice(legal))
            if len(sample) < 20_000 and rng.random() < 0.25:
                sample.append((state, a))
            t = clock()
            state = game.play(state, a)
            ours_s += clock() - t
            t = clock()
            theirs.apply_action(a)
            theirs_s += clock() - t
    return {"games": games, "steps": steps, "mismatches": mismatches, "described": described,
            "ours_s": ours_s, "openspiel_s": theirs_s, "sample": sample}


def _diff(ours: list[int], theirs: list[int]) -> str:
    only_ours, only_theirs = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
    return f"only ours {only_ours}, only OpenSpiel {only_theirs}" if only_ours or only_theirs else "in another order"


def speed(game, sample: list[tuple]) -> tuple[float, float]:
    """Microseconds per ``play`` and per ``legal_mask`` over the sampled positions (best of 5)."""
    def play_all():
        for state, a in sample:
            game.play(state, a)

    def masks_all():
        for state, _ in sample:
            game.legal_mask(state)

    n = max(1, len(sample))
    return (min(timeit.repeat(play_all, number=1, repeat=5)) / n * 1e6,
            min(timeit.repeat(masks_all, number=1, repeat=5)) / n * 1e6)


def cases(choice: str, go_sizes: list[int], komi: float):
    """(label, our game or a reason to skip it, OpenSpiel game string) for each game asked for."""
    if choice in ("tictactoe", "all"):
        yield "tictactoe", make_game("tictactoe"), "tic_tac_toe"
    if choice in ("connect4", "all"):
        yield "connect4", make_game("connect4"), "connect_four"
    if choice in ("go", "all"):
        if importlib.util.find_spec("tiefnet.rl.games.go") is None:
            yield "go", "skipped: tiefnet.rl.games.go does not exist yet", None
            return
        from tiefnet.rl.games.go import Go

        for size in go_sizes:
            wanted = {"size": size, "komi": komi, "superko": False, "max_game_length": 2 * size * size}
            accepted = inspect.signature(Go).parameters
            try:
                game = Go(**{k: v for k, v in wanted.items() if k in accepted})
            except Exception as error:  # a Go whose settings differ: say so, compare the others
                yield f"go {size}x{size}", f"skipped: Go({wanted}) failed: {error}", None
                continue
            yield (f"go {size}x{size}", game,
                   f"go(board_size={size},komi={komi},max_game_length={2 * size * size})")


def main(argv: list[str] | None = None) -> int:
    parser = _harness.benchmark_parser(__doc__, RECOMMENDED)
    parser.add_argument("--game", choices=["tictactoe", "connect4", "go", "all"], default="all")
    parser.add_argument("--games", type=int, default=2000, help="random games per game (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random moves (default 0)")
    parser.add_argument("--go-sizes", type=_harness.counts, default=[5, 9], help="Go board sizes (default 5,9)")
    parser.add_argument("--komi", type=float, default=7.5, help="Go's komi (default 7.5)")
    args = parser.parse_args(argv)
    if args.games < 1:
        parser.error(f"--games {args.games}: must be at least 1")
    try:
        import pyspiel
    except ImportError:
        print("OpenSpiel is not installed (pip install open_spiel): nothing to compare with", file=sys.stderr)
        return 2
    print(f"{_harness.cpu_model()}, {_harness.usable_cpus()} cores, commit {_harness.git_commit()}, "
          f"OpenSpiel {getattr(pyspiel, '__version__', '?')}, seed {args.seed}, {args.games} games each", flush=True)
    total_mismatches = 0
    for label, game, spiel_name in cases(args.game, args.go_sizes, args.komi):
        if isinstance(game, str):
            print(f"{label}: {game}", flush=True)
            continue
        rng = numpy.random.default_rng(args.seed)
        started = time.perf_counter()
        result = compare(game, pyspiel.load_game(spiel_name), args.games, rng)
        wall = time.perf_counter() - started
        play_us, mask_us = speed(game, result["sample"])
        total_mismatches += result["mismatches"]
        print(f"{label} ({game!r} vs OpenSpiel {spiel_name}): {result['games']} games, {result['steps']} steps compared, "
              f"{result['mismatches']} mismatches; {wall:.2f} s (tiefnet {result['ours_s']:.2f} s, "
              f"OpenSpiel {result['openspiel_s']:.2f} s); tiefnet play {play_us:.2f} us, "
              f"legal_mask {mask_us:.2f} us (over {len(result['sample'])} positions)", flush=True)
        for line in result["described"]:
            print(f"  MISMATCH {line}", flush=True)
    return 1 if total_mismatches else 0


if __name__ == "__main__":
    sys.exit(main())

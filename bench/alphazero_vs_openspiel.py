"""A tiefnet AlphaZero agent against OpenSpiel's MCTSBot (random roll-outs) or a random player: the acceptance benchmark.

Acceptance points it measures (5.4 / 5.5):

- Connect Four: the agent at <= 400 simulations per move wins >= 95 % of 200 games against
  OpenSpiel's ``MCTSBot`` with random roll-outs at 1,000 simulations, both colours; the network
  alone (``--network-alone``, no search) against the same bot;
- Go 5x5: wins >= 98 % of its games against random (``--vs random``) and >= 60 % against the
  same MCTSBot, both colours;
- Connect Four: the share of losing moves on ``--judge-positions`` (1,000) positions of plies
  >= 10 of the bench's own games where the agent moved, judged by the exact solver
  (``tiefnet.rl.games.connect4_solver``): a move is losing when it makes the game-theoretic value
  for the mover worse (win -> draw or loss, draw -> loss); with a Clopper-Pearson 95 % interval.

Many games are played side by side: all the games where tiefnet is to move go to one
``player.select(states, rng)`` call (one network mini-batch for all of them), while the OpenSpiel
bot moves in its games one by one on OpenSpiel states kept in step by applying the same actions.
At every ply both sides must agree on the legal actions, the player to move and the end of the
game, and at the end on the returns: a disagreement is a rule bug (reported, the game left out of
the score, exit status 1). Tiefnet moves first in games 0 .. ceil(games / 2) - 1; the games are
split over ``--jobs`` processes (game i goes to job i % jobs), and each OpenSpiel bot is seeded by
(seed, i), so the bot's side of a game does not depend on the split.

The bot is ``mcts.MCTSBot(game, uct_c=2, max_simulations=1000, evaluator=RandomRolloutEvaluator(
n_rollouts=1, random_state=rng), solve=True, random_state=rng)``, one ``numpy.random.RandomState``
shared by bot and evaluator: the settings of OpenSpiel's example ``open_spiel/python/examples/
mcts.py`` (uct_c 2, 1 roll-out, 1,000 simulations, solve on) and the constructor's defaults for the
rest (no Dirichlet noise, UCT child selection, roll-outs to the end of the game).
``--no-bot-solve`` switches MCTS-Solver off. ``--time-bot MOVES`` only times the bot (seconds per
move at positions of random games, solve on and off) and estimates the wall time of a full run.

    .venv/bin/python bench/alphazero_vs_openspiel.py --model RUN_FOLDER [--games 200] [--simulations 400]
        [--bot-simulations 1000] [--network-alone] [--vs mcts|random] [--judge-positions 1000]
        [--seed 0] [--jobs 2] [--json OUT]
    .venv/bin/python bench/alphazero_vs_openspiel.py --time-bot 20 --game connect4

Speed (AMD EPYC, 2 cores, with another process taking about one core): MCTSBot at 1,000
simulations takes 0.14-0.36 s a move in Connect Four (0.23 s on the empty board) and about
0.25 s in Go 5x5; f_theta (5 blocks x 64 filters) + 400 simulations about 0.3-0.4 s a move in
batches of 32-100 games (2.4 s for a single game). 200 games of Connect Four take roughly
10-15 minutes on 2 quiet cores (~2,400 moves a side), Go 5x5 against the bot roughly 25 minutes;
judging 1,000 positions of real games took ~0.03 s a position (a balanced position around ply 10
can take the pure-Python solver 20 s).

``--model`` may also name one of tiefnet's own players (``random``, ``mcts``, ``perfect``,
``solver``; then ``--game`` is needed), e.g. to check the bench with the Connect Four solver.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
import time
from pathlib import Path

import numpy

import _harness  # bench/_harness.py: machine, BLAS kernel, commit, parser, JSON

RECOMMENDED = (".venv/bin/python bench/alphazero_vs_openspiel.py --model RUN_FOLDER --games 200 --simulations 400 "
               "--json bench/alphazero_vs_openspiel.json")
OPENSPIEL_NAMES = {"tictactoe": "tic_tac_toe", "connect4": "connect_four", "go": "go"}
SHOWN = 5  # disagreements described in full


# ---------------------------------------------------------------------------------------
# The two sides
# ---------------------------------------------------------------------------------------
def openspiel_game(game):
    """The OpenSpiel game with tiefnet ``game``'s rules (Go: board size, komi, game length)."""
    import pyspiel

    name = OPENSPIEL_NAMES[game.name]
    if game.name != "go":
        return pyspiel.load_game(name)
    settings = game.settings()
    if settings.get("superko"):
        raise SystemExit("this Go plays positional superko; OpenSpiel's go has simple ko only: no fair comparison")
    return pyspiel.load_game(name, {"board_size": int(settings["size"]), "komi": float(settings["komi"]),
                                    "max_game_length": int(settings["max_game_length"])})


def make_bot(spiel_game, simulations: int, solve: bool, seed: int):
    """OpenSpiel's MCTSBot with random roll-outs (settings: module docstring), seeded by ``seed``."""
    from open_spiel.python.algorithms import mcts

    rng = numpy.random.RandomState(seed)
    evaluator = mcts.RandomRolloutEvaluator(n_rollouts=1, random_state=rng)
    return mcts.MCTSBot(spiel_game, uct_c=2, max_simulations=simulations, evaluator=evaluator, solve=solve,
                        random_state=rng)


class RandomBot:
    """A uniformly random legal move on the OpenSpiel state."""

    def __init__(self, seed: int) -> None:
        self.rng = numpy.random.RandomState(seed)

    def step(self, state) -> int:
        legal = state.legal_actions()
        return int(legal[self.rng.randint(len(legal))])


def bot_seed(seed: int, index: int) -> int:
    """The seed of game ``index``'s bot: the same whatever the split over jobs."""
    return int(numpy.random.SeedSequence([seed, index]).generate_state(1)[0])


def tiefnet_player(spec: str, game_name: str | None, simulations: int, network_alone: bool, c_puct: float | None,
                   solve: bool = False):
    """(game, Player, c_puct) of ``spec``: a run folder (f_theta + MCTS, or the network alone) or one
    of tiefnet's own players; c_puct defaults to the run's config.json (else 1.5); ``solve``: MCTS-solver."""
    from tiefnet.rl.alphazero.play import PLAYER_KINDS, make_player
    from tiefnet.rl.games import make_game

    game = make_game(game_name) if game_name and game_name != "go" else (
        make_game("go", size=5) if game_name == "go" else None)
    if spec.lower() in PLAYER_KINDS:
        if game is None:
            raise SystemExit(f"--model {spec}: name the game with --game")
        g, player = make_player(spec, game, simulations, simulations, solve=solve)
        return g, player, None
    if c_puct is None:
        try:
            c_puct = float(json.loads((Path(spec) / "config.json").read_text())["c_puct"])
        except (OSError, ValueError, KeyError, TypeError):
            c_puct = 1.5
    g, player = make_player(("net:" if network_alone else "") + spec, None, simulations, simulations, c_puct=c_puct,
                            solve=solve)
    if game_name and g.name != game_name:
        raise SystemExit(f"--model {spec} plays {g.name}, not --game {game_name}")
    return g, player, (None if network_alone else c_puct)


# ---------------------------------------------------------------------------------------
# One job's share of the games
# ---------------------------------------------------------------------------------------
def _check(game, state, theirs) -> str | None:
    """None when tiefnet's and OpenSpiel's states agree (legal actions, player, terminal, returns)."""
    if state.terminal != theirs.is_terminal():
        return f"terminal: tiefnet {state.terminal}, OpenSpiel {theirs.is_terminal()}"
    if state.terminal:
        ours = [state.z if p == state.player else -state.z for p in (0, 1)]
        returns = list(theirs.returns())
        if ours != returns:
            return f"returns: tiefnet {ours}, OpenSpiel {returns}"
        return None
    if state.player != theirs.current_player():
        return f"player to move: tiefnet {state.player}, OpenSpiel {theirs.current_player()}"
    legal, their_legal = game.legal_actions(state).tolist(), list(theirs.legal_actions())
    if legal != their_legal:
        only_ours, only_theirs = sorted(set(legal) - set(their_legal)), sorted(set(their_legal) - set(legal))
        return f"legal actions: only tiefnet {only_ours}, only OpenSpiel {only_theirs}"
    return None


def play_share(task: dict) -> dict:
    """Play the games ``task["indices"]`` side by side; one process of the pool (or the main one)."""
    import threadpoolctl

    threadpoolctl.threadpool_limits(task["blas_threads"])
    game, player, _ = tiefnet_player(task["model"], task["game"], task["simulations"], task["network_alone"],
                                     task["c_puct"], task["solve"])
    spiel_game = openspiel_game(game)
    rng = numpy.random.default_rng([task["seed"], task["job"], 1])
    indices = task["indices"]
    firsts = {i: i < (task["games"] + 1) // 2 for i in indices}  # tiefnet moves first in the first half
    colour = {i: 0 if firsts[i] else 1 for i in indices}
    states = {i: game.initial() for i in indices}
    theirs = {i: spiel_game.new_initial_state() for i in indices}
    bots = {i: (RandomBot(bot_seed(task["seed"], i)) if task["vs"] == "random" else
                make_bot(spiel_game, task["bot_simulations"], task["bot_solve"], bot_seed(task["seed"], i)))
            for i in indices}
    problems: dict[int, str] = {}
    bot_times: list[float] = []
    tiefnet_seconds, tiefnet_moves, tiefnet_calls = 0.0, 0, 0
    finished: list[dict] = []
    started = time.perf_counter()
    last_report = started
    label = f"[job {task['job']}]"
    tally = [0, 0, 0]

    def apply(i: int, action: int, who: str) -> None:
        if not game.legal_mask(states[i])[action] or action not in theirs[i].legal_actions():
            problems[i] = (f"{who}'s action {action} is not legal on both sides (tiefnet "
                           f"{bool(game.legal_mask(states[i])[action])}, OpenSpiel {action in theirs[i].legal_actions()})")
            return
        states[i] = game.play(states[i], action)
        theirs[i].apply_action(action)
        problem = _check(game, states[i], theirs[i])
        if problem:
            problems[i] = f"after {who}'s action {action}: {problem}"

    for i in indices:
        if p := _check(game, states[i], theirs[i]):
            problems[i] = f"initial state: {p}"
    live = [i for i in indices if i not in problems]
    while live:
        mine = [i for i in live if states[i].player == colour[i]]
        if mine:
            t = time.perf_counter()
            actions = player.select([states[i] for i in mine], rng)
            tiefnet_seconds += time.perf_counter() - t
            tiefnet_moves += len(mine)
            tiefnet_calls += 1
            for i, a in zip(mine, actions):
                apply(i, int(a), "tiefnet")
        for i in live:
            if i in problems or states[i].terminal or states[i].player == colour[i]:
                continue
            t = time.perf_counter()
            action = int(bots[i].step(theirs[i]))
            bot_times.append(time.perf_counter() - t)
            apply(i, action, "the bot")
        still = []
        for i in live:
            if i in problems or states[i].terminal:
                s = states[i]
                z = None if i in problems else (s.z if s.player == colour[i] else -s.z)
                if z is not None:
                    tally[0 if z > 0 else 1 if z == 0 else 2] += 1
                finished.append({"index": i, "tiefnet_first": firsts[i], "moves": list(s.moves), "z_tiefnet": z,
                                 **({"problem": problems[i]} if i in problems else {})})
            else:
                still.append(i)
        live = still
        now = time.perf_counter()
        if now - last_report >= task["progress_every"] or not live:
            done = len(finished)
            plies = numpy.mean([s.ply for s in states.values()])
            print(f"  {label} {done}/{len(indices)} games over (tiefnet W-D-L {tally[0]}-{tally[1]}-{tally[2]}), "
                  f"mean ply {plies:.1f}, {now - started:.0f} s; bot {numpy.mean(bot_times) if bot_times else 0:.3f} "
                  f"s/move, tiefnet {tiefnet_seconds / max(tiefnet_moves, 1):.3f} s/move", flush=True)
            last_report = now
    return {"job": task["job"], "games": finished, "bot_move_seconds": bot_times,
            "tiefnet_seconds": tiefnet_seconds, "tiefnet_moves": tiefnet_moves, "tiefnet_calls": tiefnet_calls,
            "seconds": time.perf_counter() - started, "player": player.name}


# ---------------------------------------------------------------------------------------
# Judging tiefnet's Connect Four moves with the solver
# ---------------------------------------------------------------------------------------
def solver_api():
    """(Solver class, how it judges) or (None, why not)."""
    try:
        from tiefnet.rl.games.connect4_solver import Solver
    except ImportError as error:
        return None, f"tiefnet.rl.games.connect4_solver is missing ({error})"
    if hasattr(Solver, "losing_move"):
        return Solver, "Solver().losing_move(moves, action)"
    if hasattr(Solver, "judge"):
        return Solver, "Solver().judge(moves, action) == 'losing'"
    if hasattr(Solver, "weak_solve"):
        return Solver, "Solver().weak_solve: -weak_solve(moves + [action]) < weak_solve(moves)"
    return None, "connect4_solver.Solver has none of losing_move, judge, weak_solve"


def judge_share(task: dict) -> dict:
    """Judge the positions ``task["positions"]`` ((moves, action) pairs, grouped by game so that
    the solver's table is reused); returns per position losing / mover's class."""
    Solver, how = solver_api()
    solver = Solver()
    out = []
    started = last = time.perf_counter()
    for n, (moves, action) in enumerate(task["positions"], 1):
        t = time.perf_counter()
        before = solver.weak_solve(moves)
        if hasattr(solver, "losing_move"):
            losing = bool(solver.losing_move(moves, action))
        elif hasattr(solver, "judge"):
            losing = solver.judge(moves, action, exact=False) == "losing"
        else:
            after = moves + [action]
            losing = (-solver.weak_solve(after) if not _won(after) else 1) < before
        out.append({"moves": moves, "action": action, "class_before": int(before), "losing": losing,
                    "seconds": time.perf_counter() - t})
        now = time.perf_counter()
        if now - last >= task["progress_every"] or n == len(task["positions"]):
            lost = sum(o["losing"] for o in out)
            print(f"  [judge {task['job']}] {n}/{len(task['positions'])} positions, {lost} losing moves, "
                  f"{now - started:.0f} s ({(now - started) / n:.2f} s/position)", flush=True)
            last = now
    return {"job": task["job"], "judged": out, "seconds": time.perf_counter() - started}


def _won(moves) -> bool:
    from tiefnet.rl.games import make_game

    game, state = make_game("connect4"), None
    state = game.initial()
    for a in moves:
        state = game.play(state, a)
    return state.terminal and state.z != 0


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a binomial share k / n."""
    if n == 0:
        return (math.nan, math.nan)
    from scipy.stats import beta

    a = (1 - level) / 2
    low = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return low, high


def judge_positions(games: list[dict], count: int, min_ply: int, seed: int, jobs: int, progress_every: float) -> dict:
    """Draw ``count`` distinct positions (ply >= min_ply, tiefnet to move) from the games, judge them."""
    Solver, how = solver_api()
    if Solver is None:
        print(f"judge: skipped: {how}", flush=True)
        return {"skipped": how}
    seen, candidates = set(), []
    for g in games:
        if g.get("problem"):
            continue
        colour = 0 if g["tiefnet_first"] else 1
        for ply in range(colour, len(g["moves"]), 2):
            if ply >= min_ply and (key := tuple(g["moves"][:ply + 1])) not in seen:
                seen.add(key)
                candidates.append((g["index"], ply, list(g["moves"][:ply]), int(g["moves"][ply])))
    rng = numpy.random.default_rng([seed, 2])
    pick = sorted(rng.choice(len(candidates), size=min(count, len(candidates)), replace=False).tolist()) \
        if candidates else []
    chosen = [candidates[k] for k in pick]
    print(f"judge: {len(chosen)} of {len(candidates)} distinct positions (ply >= {min_ply}, tiefnet to move) "
          f"by {how}" + (f"; fewer than the {count} asked for" if len(chosen) < count else ""), flush=True)
    by_game: dict[int, list] = {}
    for index, ply, moves, action in chosen:  # one game's positions stay in one job (shared table)
        by_game.setdefault(index, []).append((moves, action))
    shares: list[list] = [[] for _ in range(jobs)]
    for index in sorted(by_game, key=lambda k: -len(by_game[k])):
        min(shares, key=len).extend(by_game[index])
    tasks = [{"job": j, "positions": p, "progress_every": progress_every} for j, p in enumerate(shares) if p]
    started = time.perf_counter()
    results = run_tasks(judge_share, tasks, jobs)
    judged = [o for r in results for o in r["judged"]]
    n, k = len(judged), sum(o["losing"] for o in judged)
    not_lost = [o for o in judged if o["class_before"] > -1]
    k2 = sum(o["losing"] for o in not_lost)
    low, high = clopper_pearson(k, n)
    return {"how": how, "min_ply": min_ply, "positions_available": len(candidates), "positions": n,
            "losing_moves": k, "losing_share": k / n if n else math.nan, "losing_share_ci95": [low, high],
            "positions_not_already_lost": len(not_lost), "losing_share_not_already_lost":
                k2 / len(not_lost) if not_lost else math.nan,
            "mover_classes": {str(c): sum(o["class_before"] == c for o in judged) for c in (1, 0, -1)},
            "seconds": time.perf_counter() - started,
            "seconds_per_position": {"mean": float(numpy.mean([o["seconds"] for o in judged])) if judged else None,
                                     "max": max((o["seconds"] for o in judged), default=None)},
            "losing": [{"moves": o["moves"], "action": o["action"], "class_before": o["class_before"]}
                       for o in judged if o["losing"]]}


# ---------------------------------------------------------------------------------------
# Timing the bot alone
# ---------------------------------------------------------------------------------------
def time_bot(game, moves: int, simulations: int, seed: int) -> dict:
    """Seconds per MCTSBot move at positions of random games (plies drawn along whole games), solve on and off."""
    spiel_game = openspiel_game(game)
    rng = numpy.random.default_rng([seed, 3])
    out = {}
    for solve in (True, False):
        bot = make_bot(spiel_game, simulations, solve, bot_seed(seed, 10 ** 6))
        times, plies = [], []
        while len(times) < moves:
            state = spiel_game.new_initial_state()
            while not state.is_terminal() and len(times) < moves:
                if rng.random() < 0.5:  # time the bot at about every second position of the game
                    t = time.perf_counter()
                    bot.step(state)
                    times.append(time.perf_counter() - t)
                    plies.append(len(state.history()))
                legal = state.legal_actions()
                state.apply_action(int(legal[rng.integers(len(legal))]))
        out["solve_on" if solve else "solve_off"] = {"moves": len(times), "mean_s": float(numpy.mean(times)),
                                                     "median_s": float(numpy.median(times)),
                                                     "max_s": float(numpy.max(times)),
                                                     "mean_ply": float(numpy.mean(plies))}
        print(f"  MCTSBot({simulations} simulations, solve={'on' if solve else 'off'}) on {game!r}: "
              f"{numpy.mean(times):.3f} s/move (median {numpy.median(times):.3f}, max {numpy.max(times):.3f}) "
              f"over {len(times)} moves at random-game positions (mean ply {numpy.mean(plies):.1f})", flush=True)
    return out


# ---------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------
def run_tasks(function, tasks: list[dict], jobs: int) -> list[dict]:
    """``function`` over ``tasks`` in ``jobs`` processes (in this one when jobs == 1 or one task)."""
    if jobs <= 1 or len(tasks) <= 1:
        return [function(t) for t in tasks]
    with multiprocessing.get_context("spawn").Pool(min(jobs, len(tasks))) as pool:
        return pool.map(function, tasks, chunksize=1)


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    if n == 0:
        return [math.nan, math.nan]
    p = k / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def acceptance(game, args, wins: int, games: int, network_alone: bool) -> dict | None:
    """The acceptance criterion this run measures, if any, and whether it is met."""
    if network_alone or games == 0 or args.model.lower() in ("random", "mcts", "perfect", "solver"):
        return None
    target = None
    if game.name == "connect4" and args.vs == "mcts":
        target, standard = 0.95, args.simulations <= 400 and args.bot_simulations == 1000 and games >= 200
    elif game.name == "go" and game.settings()["size"] == 5:
        target = 0.98 if args.vs == "random" else 0.60
        standard = args.vs == "random" or args.bot_simulations == 1000
    if target is None:
        return None
    return {"criterion": f"wins >= {target:.0%} of the games", "target": target, "win_share": wins / games,
            "met": wins / games >= target, "at_acceptance_settings": bool(standard)}


def main(argv: list[str] | None = None) -> int:
    parser = _harness.benchmark_parser(__doc__, RECOMMENDED)
    parser.add_argument("--model", default=None, help="a tiefnet alphazero run folder (or random, mcts, perfect, solver)")
    parser.add_argument("--game", choices=list(OPENSPIEL_NAMES), default=None,
                        help="the game (taken from --model's folder when it is one; go is 5x5 otherwise)")
    parser.add_argument("--games", type=int, default=200, help="games, half with tiefnet first (default 200)")
    parser.add_argument("--simulations", type=int, default=400, help="tiefnet's MCTS simulations per move (default 400)")
    parser.add_argument("--solve", action="store_true", help="tiefnet's MCTS with MCTS-solver (proven results "
                        "move up the tree; the bot has it too)")
    parser.add_argument("--c-puct", type=float, default=None, help="tiefnet's c_puct (default: the run's config.json)")
    parser.add_argument("--network-alone", action="store_true", help="tiefnet plays the network's best move, no search")
    parser.add_argument("--vs", choices=["mcts", "random"], default="mcts",
                        help="the opponent: OpenSpiel's MCTSBot (default) or uniformly random moves")
    parser.add_argument("--bot-simulations", type=int, default=1000, help="MCTSBot's simulations per move (default 1000)")
    parser.add_argument("--bot-solve", action=argparse.BooleanOptionalAction, default=True,
                        help="MCTS-Solver in the bot (OpenSpiel's default; default on)")
    parser.add_argument("--judge-positions", type=int, default=1000,
                        help="Connect Four: positions judged by the solver (0: none; default 1000)")
    parser.add_argument("--judge-min-ply", type=int, default=10, help="the judged positions' least ply (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bots and tiefnet's tie breaks (default 0)")
    parser.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--progress-every", type=float, default=30.0, help="seconds between progress lines")
    parser.add_argument("--time-bot", type=int, default=0, metavar="MOVES",
                        help="only time MCTSBot over MOVES moves (solve on and off) and estimate a full run")
    _harness.add_output_options(parser, markdown=False)
    args = parser.parse_args(argv)
    if args.games < 1 or args.jobs < 1 or args.simulations < 1 or args.bot_simulations < 1:
        parser.error("--games, --jobs, --simulations and --bot-simulations must be at least 1")
    try:
        import pyspiel  # noqa: F401
        from open_spiel.python.algorithms import mcts  # noqa: F401
    except ImportError:
        print("OpenSpiel is not installed (pip install open_spiel): nothing to play against", file=sys.stderr)
        return 2
    env = _harness.announce_environment(RECOMMENDED, torch=False)
    import importlib.metadata

    env["versions"]["open_spiel"] = importlib.metadata.version("open_spiel")
    bot = {"class": "open_spiel.python.algorithms.mcts.MCTSBot", "uct_c": 2, "max_simulations": args.bot_simulations,
           "evaluator": "RandomRolloutEvaluator(n_rollouts=1)", "solve": args.bot_solve,
           "child_selection_fn": "SearchNode.uct_value (default)", "dirichlet_noise": None,
           "random_state": "numpy RandomState(SeedSequence([seed, game]).generate_state(1)[0]), shared with the evaluator"}

    if args.time_bot:
        from tiefnet.rl.games import make_game

        if args.model and not args.game:
            game = tiefnet_player(args.model, None, 1, True, None)[0]
        else:
            game = make_game(args.game or "connect4", **({"size": 5} if args.game == "go" else {}))
        timing = time_bot(game, args.time_bot, args.bot_simulations, args.seed)
        mean_plies = {"tictactoe": 8, "connect4": 24, "go": 2 * game.board_shape[0] ** 2 * 0.6}[game.name]
        estimate = {k: v["mean_s"] * args.games * mean_plies / 2 / args.jobs for k, v in timing.items()}
        print(f"estimate for {args.games} games over {args.jobs} jobs (about {mean_plies:.0f} plies a game, half of "
              f"them the bot's; the bot's time only): " + ", ".join(f"{k} {v / 60:.0f} min" for k, v in
                                                                     estimate.items()), flush=True)
        _harness.write_json(args.json, {"benchmark": "alphazero_vs_openspiel --time-bot", "environment": env,
                                        "game": game.name, "game_settings": game.settings(), "bot": bot,
                                        "bot_timing": timing, "estimated_bot_seconds_full_run": estimate,
                                        "assumed_plies_per_game": mean_plies})
        return 0
    if not args.model:
        parser.error("--model is needed (or --time-bot)")

    game, player, c_puct = tiefnet_player(args.model, args.game, args.simulations, args.network_alone, args.c_puct,
                                          args.solve)
    spiel_game = openspiel_game(game)
    print(f"{player.name} ({game!r}) against "
          + (f"OpenSpiel MCTSBot(uct_c=2, {args.bot_simulations} simulations, random roll-outs, solve "
             f"{'on' if args.bot_solve else 'off'})" if args.vs == "mcts" else "a random player")
          + f" in {spiel_game}: {args.games} games, {args.jobs} jobs, seed {args.seed}", flush=True)
    tasks = [{"job": j, "indices": list(range(j, args.games, args.jobs)), "model": args.model,
              "game": game.name if args.model.lower() in ("random", "mcts", "perfect", "solver") else None,
              "simulations": args.simulations, "network_alone": args.network_alone, "c_puct": args.c_puct,
              "solve": args.solve,
              "vs": args.vs, "bot_simulations": args.bot_simulations, "bot_solve": args.bot_solve,
              "games": args.games, "seed": args.seed, "blas_threads": 1 if args.jobs > 1 else None,
              "progress_every": args.progress_every} for j in range(min(args.jobs, args.games))]
    with _harness.RunLoad() as load:
        started = time.perf_counter()
        results = run_tasks(play_share, tasks, args.jobs)
        play_seconds = time.perf_counter() - started
        games = sorted((g for r in results for g in r["games"]), key=lambda g: g["index"])
        problems = [g for g in games if g.get("problem")]
        scored = [g for g in games if not g.get("problem")]
        tallies = {}
        for first in (True, False):
            zs = [g["z_tiefnet"] for g in scored if g["tiefnet_first"] == first]
            tallies["as_first" if first else "as_second"] = {"wins": sum(z > 0 for z in zs),
                                                             "draws": sum(z == 0 for z in zs),
                                                             "losses": sum(z < 0 for z in zs)}
        w, d, l = (sum(t[k] for t in tallies.values()) for k in ("wins", "draws", "losses"))
        n = w + d + l
        bot_times = [t for r in results for t in r["bot_move_seconds"]]
        tf_seconds, tf_moves = sum(r["tiefnet_seconds"] for r in results), sum(r["tiefnet_moves"] for r in results)
        judged = None
        if game.name == "connect4" and args.judge_positions > 0:
            judged = judge_positions(scored, args.judge_positions, args.judge_min_ply, args.seed, args.jobs,
                                     args.progress_every)
    verdict = acceptance(game, args, w, n, args.network_alone)
    summary = {
        "benchmark": "alphazero_vs_openspiel", "environment": env, "load": load.record,
        "game": game.name, "game_settings": game.settings(), "openspiel_game": str(spiel_game),
        "tiefnet": {"model": str(args.model), "player": player.name, "network_alone": args.network_alone,
                    "simulations": None if args.network_alone else args.simulations, "c_puct": c_puct,
                    "noise": False, "solve": args.solve, "move": "argmax of p" if args.network_alone else "most visited (tau 0)",
                    "seconds_per_move": tf_seconds / tf_moves if tf_moves else None, "moves": tf_moves,
                    "select_calls": sum(r["tiefnet_calls"] for r in results)},
        "opponent": bot if args.vs == "mcts" else {"class": "uniformly random legal move"},
        "games": args.games, "jobs": args.jobs, "seed": args.seed,
        "result": {"games": n, "wins": w, "draws": d, "losses": l, **tallies,
                   "score": (w + d / 2) / n if n else math.nan, "win_share": w / n if n else math.nan,
                   "win_share_ci95_wilson": wilson(w, n)},
        "acceptance": verdict,
        "rule_disagreements": len(problems), "disagreements": [{"index": g["index"], "moves": g["moves"],
                                                                "problem": g["problem"]} for g in problems[:50]],
        "seconds": {"play_wall": play_seconds, "bot_moves": len(bot_times),
                    "bot_seconds_per_move": float(numpy.mean(bot_times)) if bot_times else None,
                    "bot_seconds_per_move_median": float(numpy.median(bot_times)) if bot_times else None,
                    "bot_seconds_per_move_max": float(numpy.max(bot_times)) if bot_times else None,
                    "mean_plies": float(numpy.mean([len(g["moves"]) for g in games])) if games else None},
        "judge": judged,
        "record": [{"index": g["index"], "tiefnet_first": g["tiefnet_first"], "z_tiefnet": g["z_tiefnet"],
                    "moves": g["moves"]} for g in games],
    }
    opponent = (f"MCTSBot({args.bot_simulations}, solve {'on' if args.bot_solve else 'off'})" if args.vs == "mcts"
                else "random")
    line = (f"{player.name} vs {opponent}, {game.name}: {n} games, W-D-L {w}-{d}-{l} "
            f"(first {tallies['as_first']['wins']}-{tallies['as_first']['draws']}-{tallies['as_first']['losses']}, "
            f"second {tallies['as_second']['wins']}-{tallies['as_second']['draws']}-{tallies['as_second']['losses']}), "
            f"wins {w / max(n, 1):.1%} [95% {wilson(w, n)[0]:.1%}, {wilson(w, n)[1]:.1%}], score {summary['result']['score']:.3f}; "
            f"{play_seconds:.0f} s, bot {summary['seconds']['bot_seconds_per_move'] or 0:.3f} s/move, tiefnet "
            f"{summary['tiefnet']['seconds_per_move'] or 0:.3f} s/move")
    if verdict:
        line += (f"; acceptance ({verdict['criterion']}): {'met' if verdict['met'] else 'NOT met'}"
                 + ("" if verdict["at_acceptance_settings"] else " (not at the acceptance settings)"))
    print(line, flush=True)
    if judged and "skipped" not in judged:
        lo, hi = judged["losing_share_ci95"]
        print(f"judge: {judged['losing_moves']} losing moves of {judged['positions']} positions (ply >= "
              f"{judged['min_ply']}): {judged['losing_share']:.1%} [95% {lo:.1%}, {hi:.1%}]; "
              + (f"{judged['losing_share_not_already_lost']:.1%} of the {judged['positions_not_already_lost']} "
                 "positions not already lost" if judged["positions_not_already_lost"] else
                 "every judged position was already lost for tiefnet")
              + f"; {judged['seconds']:.0f} s", flush=True)
    if problems:
        print(f"RULE DISAGREEMENTS in {len(problems)} games (left out of the score):", flush=True)
        for g in problems[:SHOWN]:
            print(f"  game {g['index']}, moves {g['moves']}: {g['problem']}", flush=True)
    print(_harness.load_summary(load.record), flush=True)
    _harness.write_json(args.json, summary)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

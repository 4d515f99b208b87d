"""``tiefnet alphazero train|arena`` and ``tiefnet play``: AlphaGo Zero (lecture 5.4-5.5).

    tiefnet alphazero train GAME --out DIR [--workers N] [--ray ADDRESS] [--resume] ...
    tiefnet alphazero arena A B [--game GAME] [--games 100]     (A, B: model folders or random|mcts|perfect|solver)
    tiefnet play GAME --model DIR [--second]
"""
from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

import numpy

from tiefnet.cli.common import add_actions, add_config_options, add_run_options, default_out
from tiefnet.errors import ConfigError
from tiefnet.rl.alphazero.config import GAME_DEFAULTS, AlphaZeroConfig, make_config
from tiefnet.rl.games import GAMES, make_game
from tiefnet.settings import saved_settings


def add_commands(sub) -> None:
    p = sub.add_parser("alphazero", help="AlphaGo Zero: self-play with MCTS and a residual network (lecture 5.4-5.5)",
                       description="Learn a game from its rules alone by self-play (train), or let players "
                                   "meet (arena).")
    actions = add_actions(p)
    train = actions.add_parser(
        "train", help="learn GAME by self-play",
        description="Train f_theta by self-play: each generation plays --games-per-generation games with MCTS, "
                    "trains on the replay window, and plays the previous generation (Elo) and a random player. "
                    "Writes config.json, metrics.jsonl (one line per generation), model.npz/.json, checkpoint.npz "
                    "(resumable), curves.png and summary.json.",
        epilog="Defaults differ per game where shown as 'tictactoe: ..., go: ...'. With --resume, options not "
               "given are those of the run being continued.")
    # default None, not SUPPRESS: argparse checks a string default against the choices (SUPPRESS is none of them)
    train.add_argument("game", nargs="?", default=None, choices=list(GAMES), metavar="GAME",
                       help=f"one of {', '.join(GAMES)} (default connect4)")
    add_config_options(train, AlphaZeroConfig, skip=("game",), resumable=True, default_of=_game_default)
    add_run_options(train, "alphazero", resume_example="--generations")
    train.set_defaults(handler=_cmd_train)

    arena = actions.add_parser(
        "arena", help="play two players against each other",
        description="Play --games games of A against B, each moving first in half of them. A player is a model "
                    "folder (its network with MCTS), net:FOLDER (the network alone, no search), random, mcts (pure "
                    "MCTS with random play-outs), perfect (tic-tac-toe minimax) or solver (Connect Four: random moves "
                    "before ply 10, then the exact solver's best moves; the pure-Python solver is too slow for "
                    "the opening).")
    arena.add_argument("a", metavar="A", help="the first player")
    arena.add_argument("b", metavar="B", help="the second player")
    arena.add_argument("--game", choices=list(GAMES), default=None, help="the game, if neither player is a model")
    arena.add_argument("--games", type=int, default=100, help="games to play (default 100)")
    arena.add_argument("--simulations", type=int, default=400, help="MCTS simulations per move of a model player "
                                                                    "(default 400)")
    arena.add_argument("--mcts-simulations", type=int, default=1000, help="simulations per move of pure MCTS "
                                                                          "(default 1000)")
    arena.add_argument("--noise", action="store_true", help="Dirichlet noise at the root of the model players' "
                                                            "searches, as in self-play")
    arena.add_argument("--solve", action="store_true", help="MCTS-solver in the searches of the MCTS players "
                                                            "(proven wins and losses move up the tree)")
    arena.add_argument("--seed", type=int, default=0, help="seed of the random choices (default 0)")
    arena.add_argument("--json", action="store_true", help="print the result as one JSON line")
    arena.set_defaults(handler=_cmd_arena)

    play = sub.add_parser("play", help="play a game against a trained AlphaZero agent in the terminal",
                          description="Play GAME against the agent in --model; after each of its moves the agent "
                                      "shows its most visited moves (N, Q, P). Type a move as the board shows it, "
                                      "or quit.")
    play.add_argument("game", choices=list(GAMES), metavar="GAME", help=f"one of {', '.join(GAMES)}")
    play.add_argument("--model", type=Path, required=True, help="an alphazero run folder (model.npz + model.json)")
    play.add_argument("--second", action="store_true", help="let the agent move first")
    play.add_argument("--simulations", type=int, default=400, help="the agent's simulations per move (default 400)")
    play.add_argument("--seed", type=int, default=0, help="seed of the agent's tie breaks (default 0)")
    play.set_defaults(handler=_cmd_play)


def _game_default(f) -> tuple[object, str]:
    per_game = [f"{game}: {values[f.name]!r}" for game, values in GAME_DEFAULTS.items() if f.name in values]
    return f.default, repr(f.default) + (f"; {', '.join(per_game)}" if per_game else "")


def _cmd_train(args: argparse.Namespace) -> int:
    if args.resume and args.out is None:
        raise ConfigError("--resume needs --out DIR, the run folder to continue")
    saved = saved_settings(args.out, AlphaZeroConfig) if args.resume else {}
    given = {f.name: getattr(args, f.name) for f in fields(AlphaZeroConfig) if getattr(args, f.name, None) is not None}
    config = make_config({**saved, **given})
    from tiefnet.rl.alphazero.run import run

    out = args.out or default_out("alphazero")
    summary = run(config, out, progress=not args.no_progress, resume=args.resume)
    last = summary["last"]
    scores = ", ".join(f"{k} {last[k]:.2f}" for k in ("vs_previous_score", "vs_random_score", "vs_judge_score")
                       if k in last)
    print(f"alphazero {config.game}: {summary['generations']} generations, {summary['games']} self-play games, "
          f"{summary['train_minutes']:.1f} minutes; Elo {summary['elo']:.0f}{'; ' + scores if scores else ''}; "
          f"results in {out}")
    return 0


def _check_counts(args: argparse.Namespace) -> None:
    for name in ("games", "simulations", "mcts_simulations"):
        value = getattr(args, name, None)
        if value is not None and not 1 <= value <= 1_000_000:
            raise ConfigError(f"--{name.replace('_', '-')} {value} must be in 1..1000000")


def _cmd_arena(args: argparse.Namespace) -> int:
    from tiefnet import backend
    from tiefnet.rl.alphazero.arena import match
    from tiefnet.rl.alphazero.play import make_player

    _check_counts(args)
    game = make_game(args.game) if args.game else None
    specs = [args.a, args.b]
    order = sorted(range(2), key=lambda i: specs[i].lower() in ("random", "mcts", "perfect", "solver"))
    players = [None, None]
    for i in order:  # a model first: it names the game for the other
        game, players[i] = make_player(specs[i], game, args.simulations, args.mcts_simulations, noise=args.noise,
                                       rng_seed=args.seed, solve=args.solve)
    with backend.thread_limit(1):
        result = match(game, players[0], players[1], args.games, numpy.random.default_rng(args.seed))
    if args.json:
        print(json.dumps({"game": game.name, **result.as_dict()}))
        return 0
    w, d, l = result.first
    w2, d2, l2 = result.second
    print(f"{game.name}: {result.a} vs {result.b}, {result.games} games: {result.wins} wins, {result.draws} draws, "
          f"{result.losses} losses (score {result.score:.3f}); moving first {w}/{d}/{l}, second {w2}/{d2}/{l2}")
    return 0


def _cmd_play(args: argparse.Namespace) -> int:
    from tiefnet import backend
    from tiefnet.rl.alphazero.play import load_agent, play_human

    _check_counts(args)
    game, net, _ = load_agent(args.model)
    if game.name != args.game:
        raise ConfigError(f"{args.model} plays {game.name}, not {args.game}")
    with backend.thread_limit(1):
        play_human(game, net, args.simulations, not args.second, numpy.random.default_rng(args.seed))
    return 0

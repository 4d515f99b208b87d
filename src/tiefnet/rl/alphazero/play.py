"""Trained agents from their folders, players named on the command line, and a game against a person.

A model folder may come from someone else: its game name must be one of tiefnet's games (no
module is ever imported by name from a file), its game settings are checked by the game, and
the network must read that game's planes and give its actions.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, TextIO

import numpy

from tiefnet.checkpoint import load_model
from tiefnet.errors import CheckpointError, ConfigError, TiefnetError
from tiefnet.rl.alphazero.arena import JudgePlayer, NetPlayer, Player, RandomPlayer, SearchPlayer
from tiefnet.rl.alphazero.net import Evaluator
from tiefnet.rl.games import GAMES, make_game
from tiefnet.rl.games.base import Game, IllegalMove
from tiefnet.rl.mcts import Node, RolloutEvaluator, SearchConfig, policy, search
from tiefnet.settings import check_app, is_number

PLAYER_KINDS = ("random", "mcts", "perfect", "solver")


def load_agent(folder: str | Path) -> tuple[Game, object, dict]:
    """(game, f_theta, info) of an AlphaZero model folder, everything checked."""
    folder = Path(folder)
    check_app(folder, "alphazero")
    net, info = load_model(folder)
    if not isinstance(info, dict) or info.get("kind") != "alphazero":
        raise CheckpointError(f"{folder}: not an AlphaZero model (model.json info.kind is {info.get('kind')!r})")
    name, settings = info.get("game"), info.get("game_settings", {})
    if name not in GAMES or not isinstance(settings, dict):
        raise CheckpointError(f"{folder}: model.json names the game {str(name)[:40]!r}, not one of {', '.join(GAMES)}")
    try:
        game = make_game(name, **settings)
    except ConfigError as error:
        raise CheckpointError(f"{folder}: model.json game settings: {error}") from None
    H, W = game.board_shape
    try:
        logits, nu = Evaluator(game, net).forward(numpy.zeros((1, game.plane_count, H, W), numpy.float32))
    except (TiefnetError, ValueError, TypeError) as error:
        raise CheckpointError(f"{folder}: the network does not read {game!r} positions: {error}") from None
    if logits.shape != (1, game.action_count) or nu.shape != (1, 1):
        raise CheckpointError(f"{folder}: the network gives {logits.shape[1:]} and {nu.shape[1:]}, not "
                              f"{game.action_count} move logits and one value")
    return game, net, info


def make_player(spec: str, game: Game | None, simulations: int, mcts_simulations: int, c_puct: float = 1.5,
                noise: bool = False, rng_seed: int = 0, solve: bool = False) -> tuple[Game, Player]:
    """The player ``spec`` names: a model folder (f_theta + MCTS), ``net:FOLDER`` (the network alone),
    ``random``, ``mcts`` (pure MCTS, random play-outs), ``perfect`` (tic-tac-toe) or ``solver``
    (Connect Four). ``game`` is the game of the other player, if known. ``solve``: the MCTS players
    search with MCTS-solver (proven results move up the tree)."""
    kind = spec.lower()
    if kind in PLAYER_KINDS:
        if game is None:
            raise ConfigError(f"player {spec!r}: name the game with --game (or make the other player a model)")
        if kind == "random":
            return game, RandomPlayer(game)
        if kind == "mcts":
            evaluate = RolloutEvaluator(game, numpy.random.default_rng([rng_seed, 7]))
            config = SearchConfig(mcts_simulations, c_puct=c_puct, noise_fraction=0, solve=solve)
            return game, SearchPlayer(game, evaluate, config, name=f"pure MCTS ({mcts_simulations})")
        player = JudgePlayer(game)
        if not player.name.startswith(kind):
            raise ConfigError(f"player {spec!r}: the {player.name} is the perfect player for {game.name}")
        return game, player
    network_only = spec.startswith("net:")
    folder = Path(spec[4:] if network_only else spec)
    if not folder.is_dir():
        raise ConfigError(f"player {spec!r} is not a model folder nor one of {', '.join(PLAYER_KINDS)}")
    model_game, net, info = load_agent(folder)
    if game is not None and (model_game.name != game.name or model_game.settings() != game.settings()):
        raise ConfigError(f"{folder} plays {model_game!r}, the other player {game!r}")
    evaluator = Evaluator(model_game, net)
    if network_only:
        return model_game, NetPlayer(model_game, evaluator, name=f"{folder.name} (network alone)")
    # the search of the agent's own self-play: its c_puct and, with --noise, its Dirichlet noise
    c_puct = _setting(info, "c_puct", c_puct, 1e-3, 100.0)
    alpha = _setting(info, "dirichlet_alpha", 0.3, 1e-3, 100.0)
    fraction = _setting(info, "noise_fraction", 0.25, 0.0, 1.0)
    config = SearchConfig(simulations, c_puct=c_puct, dirichlet_alpha=alpha, noise_fraction=fraction if noise else 0.0,
                          solve=solve)
    return model_game, SearchPlayer(model_game, evaluator, config, noise=noise,
                                    name=f"{folder.name} ({simulations} simulations{', solver' if solve else ''})")


def _setting(info: dict, name: str, default: float, low: float, high: float) -> float:
    """A search setting from model.json (a file: checked), or the default for older folders."""
    value = info.get(name, default)
    if not (is_number(value, low) and value <= high):
        raise CheckpointError(f"model.json: info.{name}={str(value)[:40]} is not a number in {low}..{high}")
    return float(value)


def play_human(game: Game, net, simulations: int, human_first: bool, rng: numpy.random.Generator,
               read: Callable[[], str] = input, out: TextIO | None = None, top: int = 5) -> int:
    """A person against f_theta + MCTS in the terminal; the agent's visit counts are shown after
    each of its moves. Returns the result for the person (+1, 0, -1); EOF or 'quit' stops (0)."""
    out = sys.stdout if out is None else out  # looked up now: sys.stdout may have been redirected since import
    evaluator = Evaluator(game, net)
    config = SearchConfig(simulations, noise_fraction=0.0)
    state = game.initial()
    human = 0 if human_first else 1
    while not state.terminal:
        print(game.render(state), file=out)
        if state.player == human:
            try:
                text = read().strip()
            except EOFError:
                print("bye", file=out)
                return 0
            if text.lower() in ("quit", "exit", "q"):
                return 0
            try:
                state = game.play(state, game.parse_action(text, state))
            except IllegalMove as error:
                print(f"  {error}", file=out)
            continue
        root = Node(state)
        search(game, [root], evaluator, config, rng, noise=False)
        action = int(numpy.argmax(policy(game, root, 0.0, rng)))
        order = numpy.argsort(-root.N)[:top]
        shown = ", ".join(f"{game.action_name(int(root.actions[i]))}: N={int(root.N[i])} "
                          f"Q={root.W[i] / max(root.N[i], 1):+.2f} P={root.P[i]:.2f}" for i in order)
        print(f"agent plays {game.action_name(action)}  (nu = {root.nu:+.2f}; visits {shown})", file=out)
        state = game.play(state, action)
    print(game.render(state), file=out)
    z_human = state.z if state.player == human else -state.z
    print({1: "you win", 0: "draw", -1: "the agent wins"}[int(z_human)], file=out)
    return int(z_human)

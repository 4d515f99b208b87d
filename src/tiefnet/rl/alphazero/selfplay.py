"""Step (a) of 5.4: the program plays against itself with MCTS and f_theta.

For the positions s_1, ..., s_T of a game the search gives pi_t, a move a_t ~ pi_t is played, and
at the end the winner gives z in {+1, -1, 0} from the view of the player to move at each s_t.
The training tuples are (s_t, pi_t, z_t).

Many games are played side by side (``parallel_games``): each round of simulations sends one
leaf of every game's tree to f_theta together, so the network sees a mini-batch per call.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
import numpy

from tiefnet.errors import ConfigError
from tiefnet.rl.games.base import Game
from tiefnet.rl.mcts import Evaluate, Node, SearchConfig, advance, policy, search


@dataclass(frozen=True)
class SelfPlayConfig:
    """How self-play chooses its moves."""

    search: SearchConfig = field(default_factory=SearchConfig)
    temperature_moves: int = 8
    """tau = 1 (moves drawn in proportion to N) for this many plies of a game, then tau -> 0 (the most visited)"""
    parallel_games: int = 32
    """games played side by side: f_theta evaluates one leaf of each in one call"""
    reuse_tree: bool = True
    """keep the subtree of the move played as the next root (its visits count for the next search)"""

    def __post_init__(self) -> None:
        if not (isinstance(self.temperature_moves, int) and 0 <= self.temperature_moves <= 10_000):
            raise ConfigError(f"temperature_moves={self.temperature_moves!r} must be a whole number in 0..10000")
        if not (isinstance(self.parallel_games, int) and 1 <= self.parallel_games <= 4096):
            raise ConfigError(f"parallel_games={self.parallel_games!r} must be a whole number in 1..4096")


@dataclass
class GameRecord:
    """One finished self-play game: its training tuples (s_t, pi_t, z_t) and how it ended.

    planes: (T, 2 T_hist + 1, H, W) uint8 (the 0/1 input planes); pi: (T, A) float32; z: (T,) float32
    from the view of the player to move at s_t; moves: the actions; winner: 0, 1 or None (draw).
    """

    planes: numpy.ndarray
    pi: numpy.ndarray
    z: numpy.ndarray
    moves: tuple[int, ...]
    winner: int | None

    @property
    def length(self) -> int:
        return len(self.moves)


class _Slot:
    """A game in progress."""

    def __init__(self, game: Game) -> None:
        self.root = Node(game.initial())
        self.planes: list[numpy.ndarray] = []
        self.pi: list[numpy.ndarray] = []
        self.players: list[int] = []


def self_play(game: Game, evaluate: Evaluate, games: int, config: SelfPlayConfig,
              rng: numpy.random.Generator) -> list[GameRecord]:
    """Play ``games`` games of f_theta + MCTS against itself; returns them in the order they finished."""
    if not (isinstance(games, int) and games >= 0):
        raise ConfigError(f"self_play: games={games!r} must be a whole number >= 0")
    records: list[GameRecord] = []
    started = 0
    active: list[_Slot] = []
    while started < games or active:
        while started < games and len(active) < config.parallel_games:
            active.append(_Slot(game))
            started += 1
        search(game, [s.root for s in active], evaluate, config.search, rng, noise=True)
        still = []
        for slot in active:
            state = slot.root.state
            tau = 1.0 if state.ply < config.temperature_moves else 0.0
            # the training target is the visit distribution (tau = 1); the move follows the schedule
            slot.planes.append(game.encode(state).astype(numpy.uint8))
            slot.pi.append(policy(game, slot.root, 1.0).astype(numpy.float32))
            slot.players.append(state.player)
            move_pi = policy(game, slot.root, tau, rng)
            action = int(rng.choice(game.action_count, p=move_pi))
            slot.root = advance(game, slot.root, action) if config.reuse_tree else Node(game.play(state, action))
            if slot.root.state.terminal:
                records.append(_finish(slot))
            else:
                still.append(slot)
        active = still
    return records


def _finish(slot: _Slot) -> GameRecord:
    end = slot.root.state
    # z_t for the player to move at s_t: the final z is for end.player, the other player gets -z
    z = numpy.array([end.z if p == end.player else -end.z for p in slot.players], numpy.float32)
    winner = None if end.z == 0 else (end.player if end.z > 0 else 1 - end.player)
    return GameRecord(numpy.stack(slot.planes), numpy.stack(slot.pi), z, end.moves, winner)


@dataclass
class SelfPlayStats:
    games: int = 0
    positions: int = 0
    evaluations: int = 0
    calls: int = 0
    seconds: float = 0.0


def timed_self_play(game: Game, evaluator, games: int, config: SelfPlayConfig,
                    rng: numpy.random.Generator) -> tuple[list[GameRecord], SelfPlayStats]:
    """:func:`self_play` with the counts and seconds that the speed figures need."""
    positions0, calls0 = evaluator.positions, getattr(evaluator, "calls", 0)
    tick = time.perf_counter()
    records = self_play(game, evaluator, games, config, rng)
    stats = SelfPlayStats(len(records), sum(r.length for r in records), evaluator.positions - positions0,
                          getattr(evaluator, "calls", 0) - calls0, time.perf_counter() - tick)
    return records, stats


"""Step (a) of 5.4: the program plays against itself with MCTS and f_theta.

For the positions s_1, ..., s_T of a game the search gives pi_t, a move a_t ~ pi_t is played, and
at the end the winner gives z in {+1, -1, 0} from the view of the player to move at each s_t.
The training tuples are (s_t, pi_t, z_t).

Two options beyond the lecture, for small budgets (off here; the Connect Four defaults of
config.py turn both on):
- the value target may mix in the search's own estimate: (1 - w) z_t + w q_t, with q_t the root's
  mean value Q after the search (less noisy than one game's result, which a single blunder flips);
- playout cap randomisation (KataGo): only a share of the moves get the full search (with
  noise, recorded for training); the others get a short search without noise and only move
  the game on. More games per second for the value head, full searches for the policy head.

Many games are played side by side (``parallel_games``): each round of simulations sends one
leaf of every game's tree to f_theta together, so the network sees a mini-batch per call.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
import numpy

from tiefnet.errors import ConfigError
from tiefnet.rl.games.base import Game
from tiefnet.rl.mcts import Evaluate, Node, SearchConfig, advance, policy, root_value, search


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
    value_q_weight: float = 0.0
    """w of the value target (1 - w) z_t + w q_t (0: the game's result z_t only, as the lecture)"""
    fast_simulations: int = 0
    """simulations of the short searches (0: every move gets the full search)"""
    full_search_share: float = 1.0
    """share of the moves that get the full search when fast_simulations > 0"""

    def __post_init__(self) -> None:
        for name, value in (("value_q_weight", self.value_q_weight), ("full_search_share", self.full_search_share)):
            if not (isinstance(value, (int, float)) and 0 <= value <= 1):
                raise ConfigError(f"{name}={value!r} must be a number in 0..1")
        if not (isinstance(self.fast_simulations, int) and 0 <= self.fast_simulations <= self.search.simulations):
            raise ConfigError(f"fast_simulations={self.fast_simulations!r} must be a whole number in "
                              f"0..{self.search.simulations} (the full search's simulations)")
        if not (isinstance(self.temperature_moves, int) and 0 <= self.temperature_moves <= 10_000):
            raise ConfigError(f"temperature_moves={self.temperature_moves!r} must be a whole number in 0..10000")
        if not (isinstance(self.parallel_games, int) and 1 <= self.parallel_games <= 4096):
            raise ConfigError(f"parallel_games={self.parallel_games!r} must be a whole number in 1..4096")


@dataclass
class GameRecord:
    """One finished self-play game: its training tuples (s_t, pi_t, z_t) and how it ended.

    planes: (T, 2 T_hist + 1, H, W) uint8 (the 0/1 input planes) of the recorded positions (every
    full search); pi: (T, A) float32; z: (T,) float32 the result from the view of the player to
    move at s_t; q: (T,) float32 the root's mean value after the search, same view; moves: all
    the actions of the game; winner: 0, 1 or None (draw).
    """

    planes: numpy.ndarray
    pi: numpy.ndarray
    z: numpy.ndarray
    q: numpy.ndarray
    moves: tuple[int, ...]
    winner: int | None

    def value_target(self, q_weight: float) -> numpy.ndarray:
        """(1 - w) z_t + w q_t, the target of nu (w = 0: z_t)."""
        return ((1.0 - q_weight) * self.z + q_weight * self.q).astype(numpy.float32)

    @property
    def length(self) -> int:
        return len(self.moves)


class _Slot:
    """A game in progress."""

    def __init__(self, game: Game) -> None:
        self.root = Node(game.initial())
        self.planes: list[numpy.ndarray] = []
        self.pi: list[numpy.ndarray] = []
        self.q: list[float] = []
        self.players: list[int] = []
        self.full = True  # this move gets the full search


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
        for slot in active:
            slot.full = not config.fast_simulations or rng.random() < config.full_search_share
        full = [s.root for s in active if s.full]
        fast = [s.root for s in active if not s.full]
        # one batched search: the fast roots stop after fast_simulations and get no noise
        search(game, full + fast, evaluate, config.search, rng, noise=[True] * len(full) + [False] * len(fast),
               simulations=[config.search.simulations] * len(full) + [config.fast_simulations] * len(fast))
        still = []
        for slot in active:
            state = slot.root.state
            tau = 1.0 if state.ply < config.temperature_moves else 0.0
            if slot.full:  # the training target is the visit distribution (tau = 1); the move follows the schedule
                slot.planes.append(game.encode(state).astype(numpy.uint8))
                slot.pi.append(policy(game, slot.root, 1.0).astype(numpy.float32))
                slot.q.append(root_value(slot.root))
                slot.players.append(state.player)
            move_pi = policy(game, slot.root, tau, rng)
            action = int(rng.choice(game.action_count, p=move_pi))
            slot.root = advance(game, slot.root, action) if config.reuse_tree else Node(game.play(state, action))
            if slot.root.state.terminal:
                records.append(_finish(game, slot))
            else:
                still.append(slot)
        active = still
    return records


def _finish(game: Game, slot: _Slot) -> GameRecord:
    end = slot.root.state
    # z_t for the player to move at s_t: the final z is for end.player, the other player gets -z
    z = numpy.array([end.z if p == end.player else -end.z for p in slot.players], numpy.float32)
    winner = None if end.z == 0 else (end.player if end.z > 0 else 1 - end.player)
    C, H, W = game.plane_count, *game.board_shape
    planes = numpy.stack(slot.planes) if slot.planes else numpy.zeros((0, C, H, W), numpy.uint8)
    pi = numpy.stack(slot.pi) if slot.pi else numpy.zeros((0, game.action_count), numpy.float32)
    return GameRecord(planes, pi, z, numpy.array(slot.q, numpy.float32), end.moves, winner)


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


"""Matches between players (measuring the agent of 5.4): f_theta with MCTS, the network alone, pure MCTS with random play-outs,
random play, and the judges (perfect tic-tac-toe, the Connect Four solver); Elo ratings.

A player chooses moves for many games at once (``select(states, rng)``), so that the network
players evaluate the positions of all games in progress in one mini-batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy

from tiefnet.errors import ConfigError
from tiefnet.rl.alphazero.net import Evaluator
from tiefnet.rl.games.base import Game, State
from tiefnet.rl.mcts import Node, SearchConfig, policy, search


class Player:
    name = "player"

    def select(self, states: Sequence[State], rng: numpy.random.Generator) -> list[int]:
        raise NotImplementedError


class RandomPlayer(Player):
    """A move drawn uniformly from the legal ones: P(a) = 1 / |legal_actions(s)| for each, the weakest
    opponent (as the play-outs of pure MCTS move)."""

    name = "random"

    def __init__(self, game: Game) -> None:
        self.game = game

    def select(self, states, rng):
        return [int(rng.choice(self.game.legal_actions(s))) for s in states]


class SearchPlayer(Player):
    """MCTS with an evaluator (f_theta, or random play-outs: pure MCTS); the most visited move,
    a = argmax_a N(s, a) (pi_a = N(s, a)^(1/tau) / sum_b N(s, b)^(1/tau) with tau -> 0, 5.4).

    ``noise``: Dirichlet noise at the root as in self-play; ``random_moves``: the first plies are
    drawn from pi with tau = 1, so that matches between deterministic players differ.
    """

    def __init__(self, game: Game, evaluate, config: SearchConfig, noise: bool = False, random_moves: int = 0,
                 name: str = "mcts") -> None:
        self.game, self.evaluate, self.config = game, evaluate, config
        self.noise, self.random_moves, self.name = noise, random_moves, name
        self.last_roots: list[Node] = []

    def select(self, states, rng):
        roots = [Node(s) for s in states]
        search(self.game, roots, self.evaluate, self.config, rng, noise=self.noise)
        self.last_roots = roots
        moves = []
        for root in roots:
            tau = 1.0 if root.state.ply < self.random_moves else 0.0
            moves.append(int(rng.choice(self.game.action_count, p=policy(self.game, root, tau, rng))))
        return moves


class NetPlayer(Player):
    """The network alone, without search: a = argmax_a p_a of (p, nu) = f_theta(s) (or a ~ p for the first plies)."""

    def __init__(self, game: Game, evaluator: Evaluator, random_moves: int = 0, name: str = "net") -> None:
        self.game, self.evaluator, self.random_moves, self.name = game, evaluator, random_moves, name

    def select(self, states, rng):
        P, _ = self.evaluator(states)
        moves = []
        for s, p in zip(states, P):
            actions = self.game.legal_actions(s)
            i = int(rng.choice(len(p), p=p / p.sum())) if s.ply < self.random_moves else int(numpy.argmax(p))
            moves.append(int(actions[i]))
        return moves


class JudgePlayer(Player):
    """A perfect player: tic-tac-toe by minimax (from the first move); Connect Four by the exact solver
    from ply ``from_ply`` on (default 10) and random moves before — the pure-Python solver needs
    seconds a move from ply 10, minutes or hours in the opening. Among equally good moves it picks
    one at random."""

    def __init__(self, game: Game, from_ply: int = 10) -> None:
        self.game, self.from_ply = game, int(from_ply)
        if game.name == "tictactoe":
            from tiefnet.rl.games.tictactoe_minimax import best_moves

            self._best = best_moves
            self.name = "perfect"
        elif game.name == "connect4":
            from tiefnet.rl.games.connect4_solver import Solver

            self.solver = Solver()
            self._best = self._solver_moves
            self.name = f"solver (from ply {self.from_ply})"
        else:
            raise ConfigError(f"there is no perfect player for {game.name}")

    def _solver_moves(self, moves: list[int]) -> list[int]:
        legal = [int(a) for a in self.game.legal_actions(self._replay(moves))]
        if len(moves) < self.from_ply:
            return legal
        values = {a: -self.solver.weak_solve(moves + [a]) for a in legal}  # the outcome for the mover
        best = max(values.values())
        return [a for a, v in values.items() if v == best]

    def _replay(self, moves: list[int]) -> State:
        state = self.game.initial()
        for a in moves:
            state = self.game.play(state, a)
        return state

    def select(self, states, rng):
        return [int(rng.choice(self._best(list(s.moves)))) for s in states]


@dataclass
class MatchResult:
    """From the view of player ``a``: wins, draws, losses, with a's games as first and second player."""

    a: str
    b: str
    wins: int = 0
    draws: int = 0
    losses: int = 0
    first: tuple[int, int, int] = (0, 0, 0)
    second: tuple[int, int, int] = (0, 0, 0)

    @property
    def games(self) -> int:
        return self.wins + self.draws + self.losses

    @property
    def score(self) -> float:
        """(wins + draws / 2) / games."""
        return (self.wins + 0.5 * self.draws) / self.games if self.games else math.nan

    def as_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "games": self.games, "wins": self.wins, "draws": self.draws,
                "losses": self.losses, "score": self.score, "as_first": list(self.first),
                "as_second": list(self.second)}


def match(game: Game, a: Player, b: Player, games: int, rng: numpy.random.Generator,
          parallel: int = 64, record: list | None = None) -> MatchResult:
    """``games`` games of a against b, a moving first in half of them (the first ceil(games/2))."""
    result = MatchResult(a.name, b.name)
    tallies = {True: [0, 0, 0], False: [0, 0, 0]}  # a moves first -> (wins, draws, losses)
    order = [i < (games + 1) // 2 for i in range(games)]
    for lo in range(0, games, parallel):
        firsts = order[lo: lo + parallel]
        states = [game.initial() for _ in firsts]
        while True:
            live = [i for i, s in enumerate(states) if not s.terminal]
            if not live:
                break
            for player, is_a in ((a, True), (b, False)):
                # a moves when (player 0 to move) == (a moves first)
                mine = [i for i in live if not states[i].terminal and (states[i].player == 0) == (firsts[i] == is_a)]
                if mine:
                    for i, action in zip(mine, player.select([states[i] for i in mine], rng)):
                        states[i] = game.play(states[i], action)
        for first, s in zip(firsts, states):
            a_player = 0 if first else 1
            z_a = s.z if s.player == a_player else -s.z  # the result for a
            tallies[first][0 if z_a > 0 else 1 if z_a == 0 else 2] += 1
            if record is not None:
                record.append({"a_first": first, "moves": list(s.moves), "z_a": int(z_a)})
    for first in (True, False):
        w, d, l = tallies[first]
        result.wins, result.draws, result.losses = result.wins + w, result.draws + d, result.losses + l
    result.first, result.second = tuple(tallies[True]), tuple(tallies[False])
    return result


def elo_difference(score: float, games: int) -> float:
    """The Elo difference that expects ``score`` (Elo: E = 1 / (1 + 10^(-D/400))), with the score kept
    half a game off 0 and 1 so that a clean sweep gives a finite number."""
    s = min(max(score, 0.5 / games), 1 - 0.5 / games)
    return 400.0 * math.log10(s / (1 - s))

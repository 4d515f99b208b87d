"""Perfect tic-tac-toe by full minimax: the judge of the tic-tac-toe agents of 5.4.

    v(s) = z(s)                       at the end of the game (+1 won, 0 draw, -1 lost)
    v(s) = max_a -v(s a)              otherwise (negamax: the child's value is the opponent's)

for the player to move, memoised over the board (each of the 5478 reachable positions is
valued once). The cells are numbered 0..8 row by row, as OpenSpiel numbers them; X moves first.
It works from a move sequence alone and depends on no other module of tiefnet.
"""
from __future__ import annotations

import operator
from functools import lru_cache

import numpy

LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))


def _winner(board: tuple[int, ...]) -> int:
    """+1 if X has three in a row, -1 if O has, 0 if neither."""
    for a, b, c in LINES:
        if board[a] != 0 and board[a] == board[b] == board[c]:
            return board[a]
    return 0


def board_of(moves) -> tuple[int, ...]:
    """The 9 cells after ``moves`` (+1 X, -1 O, 0 empty); ValueError for an invalid sequence
    (a cell outside 0..8, an occupied cell, a move after the game has ended)."""
    board = [0] * 9
    for n, move in enumerate(moves):
        try:
            cell = operator.index(move)
        except TypeError:
            raise ValueError(f"move {n}: {move!r} is not a cell number") from None
        if not 0 <= cell < 9:
            raise ValueError(f"move {n}: cell {cell} is outside 0..8")
        if board[cell]:
            raise ValueError(f"move {n}: cell {cell} is occupied")
        if _winner(tuple(board)):
            raise ValueError(f"move {n}: the game was already won")
        board[cell] = 1 if n % 2 == 0 else -1
    return tuple(board)


@lru_cache(maxsize=None)
def _value(board: tuple[int, ...]) -> int:
    """v(s) for the player to move on ``board`` (X when the stone counts are equal)."""
    if _winner(board):                                   # the previous move won: the mover lost
        return -1
    empty = [cell for cell in range(9) if board[cell] == 0]
    if not empty:
        return 0
    me = 1 if len(empty) % 2 == 1 else -1                # 9 empty cells: X to move
    best = -1
    for cell in empty:
        child = board[:cell] + (me,) + board[cell + 1:]
        best = max(best, -_value(child))                 # negamax: the child is valued for the opponent
        if best == 1:
            break
    return best


def value(moves) -> int:
    """+1, 0 or -1: the game-theoretic result v(s) for the player to move after ``moves``
    (v(s) = z(s) at the end, v(s) = max_a -v(s a) otherwise)."""
    return _value(board_of(moves))


def move_values(moves) -> list[int | None]:
    """Per cell a, the result -v(s a) of playing it for the player to move (negamax, v(s) = max_a -v(s a));
    None where it is not legal. The judge against which 5.4's agent is measured."""
    moves = list(moves)
    board = board_of(moves)
    if _winner(board):
        return [None] * 9
    me = 1 if len(moves) % 2 == 0 else -1
    return [None if board[cell] else -_value(board[:cell] + (me,) + board[cell + 1:]) for cell in range(9)]


def best_moves(moves) -> list[int]:
    """Every optimal cell for the player to move, ascending; [] when the game has ended."""
    values = move_values(moves)
    legal = [v for v in values if v is not None]
    if not legal:
        return []
    return [cell for cell, v in enumerate(values) if v == max(legal)]


class PerfectPlayer:
    """Plays uniformly at random among the optimal moves: it never loses."""

    def select(self, moves, rng: numpy.random.Generator) -> int:
        moves = list(moves)
        options = best_moves(moves)
        if not options:
            raise ValueError(f"the game after {list(moves)} has ended: there is no move to select")
        return int(options[rng.integers(len(options))])

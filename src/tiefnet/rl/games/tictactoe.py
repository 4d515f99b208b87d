"""Tic-tac-toe (5.4's smallest test game): three in a row on a 3 x 3 board wins.

Actions are the 9 cells row by row from the top left, as in OpenSpiel's ``tic_tac_toe``:

       a b c
    1  0 1 2
    2  3 4 5
    3  6 7 8

A person types a cell as its column letter and row number, "a1" (action 0) to "c3" (action 8),
with row 1 at the top as ``render`` prints it; ``State.board`` row 0 is that top row.

The rules run on 9-bit masks (bit i = cell i) kept in ``State.extra`` as :class:`Bitboards`;
a line is won when ``stones & line == line`` for one of the 8 lines through the new stone.
``legal_mask`` returns one of 512 precomputed READ-ONLY arrays (indexed by the occupied cells;
writing into it raises ValueError — copy it to change it).
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy

from tiefnet.rl.games.base import Game, IllegalMove, State, read_only

SIDE = 3
CELLS = SIDE * SIDE
LETTERS = "abc"
# the 8 winning lines as 9-bit masks: the rows, the columns, the two diagonals
LINES = (tuple(sum(1 << (SIDE * r + c) for c in range(SIDE)) for r in range(SIDE))
         + tuple(sum(1 << (SIDE * r + c) for r in range(SIDE)) for c in range(SIDE))
         + (sum(1 << (SIDE * i + i) for i in range(SIDE)), sum(1 << (SIDE * i + SIDE - 1 - i) for i in range(SIDE))))
LINES_THROUGH = tuple(tuple(line for line in LINES if line >> cell & 1) for cell in range(CELLS))


# _EMPTY[occupied] is the legal mask when the cells of the bits of ``occupied`` hold stones (512 arrays)
_EMPTY = tuple(read_only(numpy.array([not occupied >> i & 1 for i in range(CELLS)])) for occupied in range(1 << CELLS))
_NONE = _EMPTY[(1 << CELLS) - 1]  # all False: a full board or a finished game


class Bitboards(NamedTuple):
    """``State.extra`` of tic-tac-toe: the stones as 9-bit masks, bit i = action i."""

    stones0: int  # player 0's (X) stones
    stones1: int  # player 1's (O) stones


class TicTacToe(Game):
    """Tic-tac-toe; actions = the 9 cells row by row (OpenSpiel's numbering), typed "a1".."c3".

    Shapes: board (3, 3) int8, legal_mask (9,) bool, encode (2 T + 1, 3, 3).
    Symmetry: the 8 rotations and reflections of the square ("dihedral").
    """

    name = "tictactoe"
    board_shape = (SIDE, SIDE)
    action_count = CELLS
    symmetry = "dihedral"

    def initial(self) -> State:
        board = numpy.zeros(self.board_shape, numpy.int8)
        board.setflags(write=False)
        return State(board, 0, (), (), False, 0, Bitboards(0, 0))

    def legal_mask(self, state: State) -> numpy.ndarray:
        """(9,) bool, True for the empty cells; all False once the game is over.
        The array is cached and read-only: copy it before changing it."""
        if state.terminal:
            return _NONE
        stones0, stones1 = state.extra
        return _EMPTY[stones0 | stones1]

    def play(self, state: State, action: int) -> State:
        """Put a stone of ``state.player`` on cell ``action``: a new State, ``state`` unchanged."""
        if type(action) is not int:
            action = _whole_number(action)
        stones0, stones1 = state.extra
        if not 0 <= action < CELLS or state.terminal or (stones0 | stones1) >> action & 1:
            raise IllegalMove(self._why_illegal(state, action))
        bit = 1 << action
        board = state.board.copy()
        if state.player == 0:
            board[divmod(action, SIDE)] = 1
            stones0 |= bit
            won = any(stones0 & line == line for line in LINES_THROUGH[action])
        else:
            board[divmod(action, SIDE)] = -1
            stones1 |= bit
            won = any(stones1 & line == line for line in LINES_THROUGH[action])
        board.setflags(write=False)  # never written again (setflags: 0.4 us less than .flags)
        moves = state.moves + (action,)
        previous = ((state.board,) + state.previous)[: self.history - 1]
        terminal = won or len(moves) == CELLS
        # z is from the view of the player to move next: after a winning move, that player lost
        return State(board, 1 - state.player, moves, previous, terminal, -1 if won else 0,
                     Bitboards(stones0, stones1))

    def _why_illegal(self, state: State, action: int) -> str:
        if not 0 <= action < CELLS:
            return f"tictactoe: action {action} is not a cell; the cells are 0..8 (typed a1..c3)"
        name = self.action_name(action)
        if state.terminal:
            return f"tictactoe: action {action} ({name}): the game is over after {state.ply} moves"
        return f"tictactoe: action {action}: cell {name} is taken"

    def action_name(self, action: int) -> str:
        """Column letter and row number with row 1 on top: 0 -> "a1", 2 -> "c1", 8 -> "c3"."""
        row, column = divmod(int(action), SIDE)
        return f"{LETTERS[column]}{row + 1}"

    def parse_action(self, text: str, state: State) -> int:
        """"a1".."c3" (either case) -> the action 0..8; IllegalMove for other text, a taken cell
        or a finished game."""
        typed = str(text).strip().lower()
        if not (len(typed) == 2 and typed[0] in LETTERS and typed[1] in "123"):
            raise IllegalMove(f"tictactoe: {text!r} is not a cell; type a column a-c and a row 1-3, e.g. b2")
        action = SIDE * (int(typed[1]) - 1) + LETTERS.index(typed[0])
        if not self.legal_mask(state)[action]:
            raise IllegalMove(self._why_illegal(state, action))
        return action

    def render(self, state: State) -> str:
        """The board as text, X for player 0, O for player 1, with the letters and numbers a
        person types, then whose move it is or how the game ended."""
        marks = {1: "X", -1: "O", 0: "."}
        lines = ["   " + " ".join(LETTERS)]
        lines += [f"{r + 1}  " + " ".join(marks[int(v)] for v in row) for r, row in enumerate(state.board)]
        lines.append(_outcome(state))
        return "\n".join(lines)


def _outcome(state: State) -> str:
    """"X to move", "O won", "draw"."""
    if not state.terminal:
        return f"{'XO'[state.player]} to move"
    return "draw" if state.z == 0 else f"{'XO'[1 - state.player]} won"


def _whole_number(action) -> int:
    """``action`` as an int (a NumPy integer is fine); IllegalMove for anything else (bools too)."""
    if isinstance(action, numbers.Integral) and not isinstance(action, (bool, numpy.bool_)):
        return int(action)
    raise IllegalMove(f"tictactoe: action {action!r} is not a whole number (an action index)")

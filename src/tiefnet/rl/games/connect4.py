"""Connect Four (5.4's second test game): 6 rows, 7 columns, four in a row wins.

Actions are the 7 columns 0..6, as in OpenSpiel's ``connect_four``; a stone falls to the lowest
empty cell of its column. A person types the columns as "1".."7".

Orientation: ``State.board`` row 0 is the TOP row as a person sees the board, row 5 the bottom
row where the first stone of a column lands, so the planes of ``encode`` look like the board on
the screen. (OpenSpiel's own row 0 is the bottom row; only the action numbers need to agree.)

The rules run on bitboards, Python ints kept in ``State.extra`` as :class:`Bitboards`: the
classic layout of 7 bits per column, bit ``7 c + h`` for column c and height h (0 = bottom)
with bit ``7 c + 6`` always empty, so that shifting a line of stones never carries it from the
top of one column to the bottom of the next:

    h=6   6 13 20 27 34 41 48   <- always 0
    h=5   5 12 19 26 33 40 47   (board row 0, the top)
    ...
    h=0   0  7 14 21 28 35 42   (board row 5, the bottom)

Four in a row along a direction d (1 vertical, 7 horizontal, 6 and 8 the diagonals) is
``pairs = s & (s >> d); pairs & (pairs >> 2 d) != 0``.

Speed (what MCTS calls most): ``legal_mask`` returns one of 128 precomputed READ-ONLY arrays
(indexed by the set of full columns; writing into it raises ValueError — copy it to change it);
``play`` copies the 42-byte board once and marks the copy read-only.
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy

from tiefnet.rl.games.base import Game, IllegalMove, State, read_only

ROWS, COLUMNS = 6, 7
CELLS = ROWS * COLUMNS
BITS_PER_COLUMN = ROWS + 1  # one empty guard bit above each column
BOTTOM = tuple(1 << (BITS_PER_COLUMN * c) for c in range(COLUMNS))  # the bit of height 0 in column c
COLUMN_BITS = tuple(((1 << ROWS) - 1) << (BITS_PER_COLUMN * c) for c in range(COLUMNS))  # heights 0..5
DIRECTIONS = (1, BITS_PER_COLUMN, BITS_PER_COLUMN - 1, BITS_PER_COLUMN + 1)  # |, -, \ and / on the bits


# _OPEN[full] is the legal mask when the columns of the bits of ``full`` are full (128 arrays)
_OPEN = tuple(read_only(numpy.array([not full >> c & 1 for c in range(COLUMNS)])) for full in range(1 << COLUMNS))
_NONE = _OPEN[(1 << COLUMNS) - 1]  # all False: a full board or a finished game


class Bitboards(NamedTuple):
    """``State.extra`` of Connect Four: the stones as bits (layout in the module docstring)."""

    stones0: int  # player 0's (X) stones
    stones1: int  # player 1's (O) stones
    full: int  # bit c set when column c holds 6 stones


def four_in_a_row(stones: int) -> bool:
    """True when the bitboard ``stones`` holds four in a row in any of the four directions."""
    for d in DIRECTIONS:
        pairs = stones & (stones >> d)  # a stone with another one d further on
        if pairs & (pairs >> 2 * d):  # two such pairs, 2 d apart: four in a row
            return True
    return False


class ConnectFour(Game):
    """Connect Four on a 6 x 7 board; actions = the 7 columns (OpenSpiel's numbering).

    Shapes: board (6, 7) int8 (row 0 on top), legal_mask (7,) bool, encode (2 T + 1, 6, 7).
    Symmetry: the left-right mirror (columns c <-> 6 - c, on the planes and on pi).
    """

    name = "connect4"
    board_shape = (ROWS, COLUMNS)
    action_count = COLUMNS
    symmetry = "mirror"

    def initial(self) -> State:
        board = numpy.zeros(self.board_shape, numpy.int8)
        board.setflags(write=False)
        return State(board, 0, (), (), False, 0, Bitboards(0, 0, 0))

    def legal_mask(self, state: State) -> numpy.ndarray:
        """(7,) bool, True for the columns that are not full; all False once the game is over.
        The array is cached and read-only: copy it before changing it."""
        if state.terminal:
            return _NONE
        return _OPEN[state.extra.full]

    def play(self, state: State, action: int) -> State:
        """Drop a stone of ``state.player`` into column ``action``: a new State, ``state`` unchanged."""
        if type(action) is not int:
            action = _whole_number(action, self.name)
        stones0, stones1, full = state.extra
        if not 0 <= action < COLUMNS or state.terminal or full >> action & 1:
            raise IllegalMove(self._why_illegal(state, action))
        occupied = stones0 | stones1
        bit = (occupied + BOTTOM[action]) & COLUMN_BITS[action]  # the lowest empty cell of the column
        height = bit.bit_length() - 1 - BITS_PER_COLUMN * action
        if height == ROWS - 1:
            full |= 1 << action
        board = state.board.copy()
        if state.player == 0:
            board[ROWS - 1 - height, action] = 1  # height 0 is the bottom row, board row 5
            stones0 |= bit
            won = four_in_a_row(stones0)
        else:
            board[ROWS - 1 - height, action] = -1
            stones1 |= bit
            won = four_in_a_row(stones1)
        board.setflags(write=False)  # never written again (setflags: 0.4 us less than .flags)
        moves = state.moves + (action,)
        previous = ((state.board,) + state.previous)[: self.history - 1]
        terminal = won or len(moves) == CELLS
        # z is from the view of the player to move next: after a winning move, that player lost
        return State(board, 1 - state.player, moves, previous, terminal, -1 if won else 0,
                     Bitboards(stones0, stones1, full))

    def _why_illegal(self, state: State, action: int) -> str:
        if not 0 <= action < COLUMNS:
            return f"connect4: action {action} is not a column; the columns are 0..6 (typed 1..7)"
        if state.terminal:
            return f"connect4: action {action} (column {action + 1}): the game is over after {state.ply} moves"
        return f"connect4: action {action}: column {action + 1} is full"

    def action_name(self, action: int) -> str:
        """The column as a person counts it: action 0 -> "1", ..., action 6 -> "7"."""
        return str(int(action) + 1)

    def parse_action(self, text: str, state: State) -> int:
        """"1".."7" -> the action 0..6; IllegalMove for other text, a full column or a finished game."""
        typed = str(text).strip()
        if not (typed.isdigit() and 1 <= int(typed) <= COLUMNS):
            raise IllegalMove(f"connect4: {text!r} is not a column; type a number from 1 to 7")
        action = int(typed) - 1
        if not self.legal_mask(state)[action]:
            raise IllegalMove(self._why_illegal(state, action))
        return action

    def render(self, state: State) -> str:
        """The board as text, X for player 0, O for player 1, the column numbers below, then
        whose move it is or how the game ended."""
        marks = {1: "X", -1: "O", 0: "."}
        lines = [" " + " ".join(marks[int(v)] for v in row) for row in state.board]
        lines.append(" " + " ".join(str(c + 1) for c in range(COLUMNS)))
        lines.append(_outcome(state))
        return "\n".join(lines)


def _outcome(state: State) -> str:
    """"X to move", "O won", "draw"."""
    mover = "XO"[state.player]
    if not state.terminal:
        return f"{mover} to move"
    return "draw" if state.z == 0 else f"{'XO'[1 - state.player]} won"


def _whole_number(action, game: str) -> int:
    """``action`` as an int (a NumPy integer is fine); IllegalMove for anything else (bools too)."""
    if isinstance(action, numbers.Integral) and not isinstance(action, (bool, numpy.bool_)):
        return int(action)
    raise IllegalMove(f"{game}: action {action!r} is not a whole number (an action index)")

"""Go (5.4: the game of AlphaGo Zero) with OpenSpiel's rules, on boards of 5 x 5 to 19 x 19.

Actions are numbered as in OpenSpiel's ``go``: point (r, c) is action r * size + c, with row
r = 0 the row Go players call 1 (the bottom row of a diagram), so action 0 is "a1", the lower
left corner; action size * size is pass. ``State.board[r, c]`` is the point of action
r * size + c, so printing ``State.board`` with NumPy shows the diagram upside down (row 1 on
top); ``render`` prints it the Go way, row 1 at the bottom. Columns are the letters a..t
without i, as on a Go board: "c3" is column 2, row 2, action 2 * size + 2.

The rules, as OpenSpiel plays them (``open_spiel/games/go/go.cc``, ``go_board.cc``):
- a stone whose group has no liberty after the enemy groups without liberties are removed is
  suicide, and illegal; pass is always legal;
- simple ko: after a stone played into an enemy eye captured exactly one stone, the opponent
  may not play on that point in the next move;
- a move (not a pass) that repeats a whole-board position of the game ends it at once as a
  draw (OpenSpiel: "superkos are very rare, we just treat them as a draw");
- two passes in a row end the game, and so does the move number ``max_game_length``
  (OpenSpiel's default is 2 * size * size, e.g. 50 on 5 x 5, 162 on 9 x 9); passes count;
- then area scoring (Tromp-Taylor): stones plus the empty regions that reach only one
  colour; Black wins if Black's area minus White's minus komi is > 0, loses if < 0.
``superko=True`` replaces the last two ko rules by positional superko: a move that repeats
any earlier position is illegal (the game goes on). It is not OpenSpiel's rule.

The groups and liberties live in ``State.extra`` (:class:`GoExtra`, see
:mod:`tiefnet.rl.games.go_board`), so ``legal_mask`` and ``play`` never search the board.
"""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy

from tiefnet.errors import ConfigError
from tiefnet.rl.games.base import HISTORY, Game, IllegalMove, State
from tiefnet.rl.games.go_board import (Position, area_difference, empty_position, geometry, hash_after, is_legal,
                                       legal_points, place)

LETTERS = "abcdefghjklmnopqrst"  # the column letters of a Go board: no "i"


class GoExtra(NamedTuple):
    """``State.extra`` of Go."""

    position: Position       # the groups and liberties (go_board.Position)
    ko: int                  # the point the player to move may not retake (simple ko), -1 if none
    seen: frozenset[int]     # the Zobrist hashes of every position of the game, the empty board too


class Go(Game):
    """Go on a size x size board with komi for White; OpenSpiel's actions and rules.

    Shapes: board (size, size) int8, legal_mask (size * size + 1,) bool (the last is pass),
    encode (2 T + 1, size, size). Symmetry: the 8 rotations and reflections ("dihedral").

    size:            5..19 lines
    komi:            points given to White (7.5 avoids draws)
    superko:         False: OpenSpiel's rules (simple ko; a repeated position ends the game as a
                     draw); True: positional superko (a move that repeats a position is illegal)
    max_game_length: the game ends after this many moves, passes included; None = OpenSpiel's
                     2 * size * size
    history:         T, the positions that ``encode`` shows the network
    """

    name = "go"
    symmetry = "dihedral"

    def __init__(self, size: int = 9, komi: float = 7.5, superko: bool = False,
                 max_game_length: int | None = None, history: int = HISTORY) -> None:
        super().__init__(history)
        if not (_is_whole(size) and 5 <= size <= 19):
            raise ConfigError(f"go: size={size!r} must be a whole number of lines in 5..19")
        if not (isinstance(komi, numbers.Real) and not isinstance(komi, bool) and math.isfinite(komi)):
            raise ConfigError(f"go: komi={komi!r} must be a finite number (points for White, e.g. 7.5)")
        if not isinstance(superko, bool):
            raise ConfigError(f"go: superko={superko!r} must be True or False")
        if max_game_length is None:
            max_game_length = 2 * size * size  # OpenSpiel's DefaultMaxGameLength
        if not (_is_whole(max_game_length) and max_game_length >= 2):
            raise ConfigError(f"go: max_game_length={max_game_length!r} must be a whole number of moves >= 2 "
                              f"(or None for OpenSpiel's 2 * size * size)")
        self.size, self.komi, self.superko = int(size), float(komi), superko
        self.max_game_length = int(max_game_length)
        self.board_shape = (self.size, self.size)
        self.pass_action = self.size * self.size
        self.action_count = self.pass_action + 1
        self._geometry = geometry(self.size)
        self._mask_bytes = (self.action_count + 7) // 8

    def settings(self) -> dict:
        return {"size": self.size, "komi": self.komi, "superko": self.superko,
                "max_game_length": self.max_game_length, "history": self.history}

    def initial(self) -> State:
        board = numpy.zeros(self.board_shape, numpy.int8)
        board.flags.writeable = False
        return State(board, 0, (), (), False, 0, GoExtra(empty_position(self.size), -1, frozenset({0})))

    # --- the rules ---------------------------------------------------------------------------
    def legal_mask(self, state: State) -> numpy.ndarray:
        """(size * size + 1,) bool: the empty points where a stone keeps a liberty (not the ko
        point; with superko, none that repeats a position), and pass; all False at the end.

        The points are found as a bit mask (bit p = point p) by ``go_board.legal_points``."""
        N = self.pass_action
        if state.terminal:
            return numpy.zeros(N + 1, bool)
        extra, geo = state.extra, self._geometry
        legal = legal_points(extra.position, geo, state.sign)
        if extra.ko >= 0:
            legal &= ~(1 << extra.ko)
        if self.superko:
            rest = legal
            while rest:
                low = rest & -rest
                if hash_after(extra.position, geo, low.bit_length() - 1, state.sign) in extra.seen:
                    legal ^= low
                rest ^= low
        legal |= 1 << N  # OpenSpiel: pass is always legal
        return numpy.unpackbits(numpy.frombuffer(legal.to_bytes(self._mask_bytes, "little"), numpy.uint8),
                                count=N + 1, bitorder="little").view(bool)

    def play(self, state: State, action: int) -> State:
        """``state.player`` plays ``action`` (a point or pass): a new State, ``state`` unchanged."""
        if type(action) is not int:
            action = _whole_number(action)
        N, extra, c = self.pass_action, state.extra, state.sign
        if state.terminal or not 0 <= action <= N:
            raise IllegalMove(self._why_illegal(state, action))
        repeated = False
        if action == N:  # a pass changes only whose move it is, and ends a ko
            board, extra = state.board, GoExtra(extra.position, -1, extra.seen)
        else:
            geo = self._geometry
            if action == extra.ko or not is_legal(extra.position, geo, action, c):
                raise IllegalMove(self._why_illegal(state, action))
            position, captured, ko = place(extra.position, geo, action, c)  # ko: OpenSpiel's simple-ko point
            repeated = position.hash in extra.seen
            if repeated and self.superko:
                raise IllegalMove(self._why_illegal(state, action))
            board = state.board.copy()
            flat = board.reshape(N)                              # a view: (size * size,)
            flat[action] = c
            if captured:
                flat[captured] = 0
            board.flags.writeable = False
            extra = GoExtra(position, ko, extra.seen if repeated else extra.seen | {position.hash})
        moves = state.moves + (action,)
        previous = ((state.board,) + state.previous)[: self.history - 1]
        terminal = (repeated or len(moves) >= self.max_game_length
                    or (action == N and len(moves) >= 2 and moves[-2] == N))
        z = 0
        if terminal and not repeated:  # a repetition is a draw (OpenSpiel)
            score = area_difference(extra.position.colour, self._geometry) - self.komi
            z = ((score > 0) - (score < 0)) * -c  # Black's result, seen by the player to move next (not c)
        return State(board, 1 - state.player, moves, previous, terminal, z, extra)

    def score(self, state: State) -> float:
        """Black's area minus White's minus komi (Tromp-Taylor); > 0 means Black is ahead."""
        return area_difference(state.extra.position.colour, self._geometry) - self.komi

    def _why_illegal(self, state: State, action) -> str:
        N = self.pass_action
        if not _is_whole(action):
            return f"go: action {action!r} is not a whole number (an action index)"
        if not 0 <= action <= N:
            return (f"go: action {action} is not a point or pass; the actions are 0..{N} "
                    f"(typed a1..{self.action_name(N - 1)}, {N} = pass)")
        name = self.action_name(action)
        if state.terminal:
            return f"go: action {action} ({name}): the game is over after {state.ply} moves"
        extra = state.extra
        if extra.position.colour[action] != 0:
            return f"go: action {action}: point {name} is taken"
        if action == extra.ko:
            return f"go: action {action}: {name} would retake the ko at once; play elsewhere first"
        if not is_legal(extra.position, self._geometry, action, state.sign):
            return f"go: action {action}: {name} is suicide (the stone would have no liberty and capture nothing)"
        return f"go: action {action}: {name} would repeat an earlier position (positional superko)"

    # --- for people ----------------------------------------------------------------------------
    def action_name(self, action: int) -> str:
        """Column letter (a..t, no i) and row number, row 1 = OpenSpiel's row 0: on 9 x 9,
        0 -> "a1", 8 -> "j1", 9 -> "a2", 80 -> "j9", 81 -> "pass"."""
        action = int(action)
        if action == self.pass_action:
            return "pass"
        row, column = divmod(action, self.size)
        return f"{LETTERS[column]}{row + 1}"

    def parse_action(self, text: str, state: State) -> int:
        """"c3" (either case) or "pass" -> the action; IllegalMove for other text or a move the
        rules forbid here (taken, ko, suicide, superko, game over)."""
        typed = str(text).strip().lower()
        letters = LETTERS[: self.size]
        if typed == "pass":
            action = self.pass_action
        elif len(typed) >= 2 and typed[0] in letters and typed[1:].isdigit() and 1 <= int(typed[1:]) <= self.size:
            action = (int(typed[1:]) - 1) * self.size + letters.index(typed[0])
        else:
            raise IllegalMove(f"go: {text!r} is not a point; type a column a-{letters[-1]} (no i) "
                              f"and a row 1-{self.size}, e.g. c3, or pass")
        if not self.legal_mask(state)[action]:
            raise IllegalMove(self._why_illegal(state, action))
        return action

    def render(self, state: State) -> str:
        """The board as a Go diagram: X Black (player 0), O White, row 1 at the bottom, the
        letters and numbers a person types around it, then whose move it is or the result."""
        marks = {1: "X", -1: "O", 0: "."}
        columns = "    " + " ".join(LETTERS[: self.size])
        lines = [columns]
        for r in range(self.size - 1, -1, -1):
            row = " ".join(marks[int(v)] for v in state.board[r])
            lines.append(f"{r + 1:>2}  {row}  {r + 1}")
        lines += [columns, self._outcome(state)]
        return "\n".join(lines)

    def _outcome(self, state: State) -> str:
        score = self.score(state)
        if not state.terminal:
            return f"{'XO'[state.player]} ({('Black', 'White')[state.player]}) to move; komi {self.komi:g}"
        if state.z == 0:
            return "draw"
        winner = state.player if state.z > 0 else 1 - state.player
        return f"{'XO'[winner]} ({('Black', 'White')[winner]}) won by {abs(score):g}"


def _is_whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, numpy.bool_))


def _whole_number(action) -> int:
    """``action`` as an int (a NumPy integer is fine); IllegalMove for anything else (bools too)."""
    if _is_whole(action):
        return int(action)
    raise IllegalMove(f"go: action {action!r} is not a whole number (an action index)")

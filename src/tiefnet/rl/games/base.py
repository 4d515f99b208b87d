"""One interface for the two-player board games of AlphaGo Zero (5.4): tic-tac-toe, Connect Four, Go.

A game knows only its rules. Self-play, MCTS and the network see a game through these methods:

    state = game.initial()                  # the empty board, player 0 to move
    game.legal_mask(state)                  # (A,) bool over the A actions
    state = game.play(state, a)             # a new state; the old one is unchanged
    state.terminal, state.z                 # at the end: z in {+1, -1, 0} from the view of state.player
    game.encode(state)                      # (2 T + 1, H, W) float32 input planes of f_theta
    game.symmetries(planes, pi)             # the board's symmetries, for data augmentation

Actions are numbered as OpenSpiel numbers them (tic-tac-toe: the 9 cells row by row; Connect
Four: the 7 columns; Go: the points row by row from OpenSpiel's row 0, then pass), so a game
can be replayed move by move in OpenSpiel (``state.moves``) for the tests of the rules.

Players are 0 (who moves first: X, red, Black) and 1. On ``State.board`` player 0's stones are
+1 and player 1's are -1; the *canonical* board multiplies by the sign of the player to move, so
the network always sees its own stones as +1 (5.4: nu and p are "for the current player").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy

from tiefnet.errors import ConfigError

HISTORY = 8  # 5.4: "aktuelle Brettposition und 7 vorherige Positionen"


@dataclass(frozen=True, eq=False)
class State:
    """A position and what led to it. Treated as immutable: ``Game.play`` returns a new one.

    board:    (H, W) int8, +1 player 0's stones, -1 player 1's, 0 empty; never written after creation
    player:   0 or 1, whose move it is
    moves:    every action played so far, in order
    previous: the boards before this one, newest first, at most HISTORY - 1 of them
    terminal: the game is over
    z:        at a terminal state the result for ``player`` (+1 won, -1 lost, 0 draw); 0 otherwise
    extra:    what a game's rules need besides the board (Go: passes, ko point, position hashes)
    """

    board: numpy.ndarray
    player: int
    moves: tuple[int, ...] = ()
    previous: tuple[numpy.ndarray, ...] = ()
    terminal: bool = False
    z: int = 0
    extra: Any = field(default=None)

    @property
    def sign(self) -> int:
        """+1 when player 0 moves, -1 when player 1 moves: the colour of the stones to play."""
        return 1 - 2 * self.player

    @property
    def ply(self) -> int:
        return len(self.moves)


def read_only(array: numpy.ndarray) -> numpy.ndarray:
    """``array``, made read-only (a cached mask or a state's board that no caller may change)."""
    array.flags.writeable = False
    return array


class IllegalMove(ConfigError):
    """An action that the rules do not allow in this position."""


class Game:
    """The rules of one game. Subclasses set the class attributes and write ``initial``,
    ``legal_mask`` and ``play``; ``encode``, ``canonical`` and ``symmetries`` are shared.

    name:          the name on the command line ("tictactoe", "connect4", "go")
    board_shape:   (H, W)
    action_count:  A, the length of p and pi
    symmetry:      "dihedral" (the 8 rotations and reflections of a square board), "mirror"
                   (left-right, Connect Four) or "none"
    pass_action:   the action index of "pass" (Go), or None; it has no square on the board
    """

    name = ""
    board_shape: tuple[int, int] = (0, 0)
    action_count = 0
    symmetry = "none"
    pass_action: int | None = None

    def __init__(self, history: int = HISTORY) -> None:
        if not (isinstance(history, int) and 1 <= history <= 16):
            raise ConfigError(f"{self.name}: history={history!r} must be a whole number of positions in 1..16")
        self.history = history

    # --- the rules, written by each game ---------------------------------------------------
    def initial(self) -> State:
        raise NotImplementedError

    def legal_mask(self, state: State) -> numpy.ndarray:
        """(A,) bool: the actions the rules allow; all False at a terminal state."""
        raise NotImplementedError

    def play(self, state: State, action: int) -> State:
        """The state after ``action``; raises IllegalMove for an action the rules forbid."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """The game's parameters as JSON (saved with a model; ``make_game(name, **settings)``)."""
        return {"history": self.history}

    # --- shared --------------------------------------------------------------------------------
    def legal_actions(self, state: State) -> numpy.ndarray:
        return numpy.flatnonzero(self.legal_mask(state))

    @property
    def plane_count(self) -> int:
        return 2 * self.history + 1

    def canonical(self, state: State) -> numpy.ndarray:
        """(H, W) int8: the board from the view of the player to move (own stones +1)."""
        return state.board * numpy.int8(state.sign)

    def encode(self, state: State) -> numpy.ndarray:
        """The input s of f_theta (5.4): (2 T + 1, H, W) float32 for T = ``history`` positions.

        Planes 2t and 2t+1 hold the stones of the player to move and of the opponent t moves
        ago (zeros before the first move), the last plane is 1 when player 0 is to move
        (AlphaGo Zero's colour plane: komi makes the colours unequal).
        """
        H, W = self.board_shape
        planes = numpy.zeros((self.plane_count, H, W), numpy.float32)
        own = state.sign
        for t, board in enumerate((state.board, *state.previous[: self.history - 1])):
            planes[2 * t] = board == own
            planes[2 * t + 1] = board == -own
        if state.player == 0:
            planes[-1] = 1.0
        return planes

    @property
    def symmetry_count(self) -> int:
        return {"none": 1, "mirror": 2, "dihedral": 8}[self.symmetry]

    def symmetries(self, planes: numpy.ndarray, pi: numpy.ndarray) -> list[tuple[numpy.ndarray, numpy.ndarray]]:
        """Every symmetric copy (planes', pi') of one training example, the identity first.

        planes: (C, H, W); pi: (A,) over the board's points row by row (then pass, which no
        symmetry moves) or, for Connect Four, over the columns.
        """
        return [self.transform(planes, pi, k) for k in range(self.symmetry_count)]

    def transform(self, planes: numpy.ndarray, pi: numpy.ndarray, k: int) -> tuple[numpy.ndarray, numpy.ndarray]:
        """Symmetry number k (0 = identity) of planes (..., C, H, W) and pi (..., A), also for batches.

        Dihedral k = 2 r + f: r quarter turns, then a left-right flip if f; mirror k = 1: the flip.
        """
        if k == 0:
            return planes, pi
        if self.symmetry == "mirror":
            return numpy.ascontiguousarray(planes[..., ::-1]), numpy.ascontiguousarray(pi[..., ::-1])
        H, W = self.board_shape
        turns, flip = divmod(k, 2)
        board_pi = pi[..., : H * W].reshape(*pi.shape[:-1], H, W)
        p = numpy.rot90(planes, turns, axes=(-2, -1))
        b = numpy.rot90(board_pi, turns, axes=(-2, -1))
        if flip:
            p, b = p[..., ::-1], b[..., ::-1]
        board = b.reshape(*pi.shape[:-1], H * W)
        return numpy.ascontiguousarray(p), numpy.concatenate([board, pi[..., H * W:]], axis=-1)

    def action_name(self, action: int) -> str:
        """How a person writes the action (Connect Four "4", Go "c3", tic-tac-toe "b2")."""
        return str(action)

    def parse_action(self, text: str, state: State) -> int:
        """The action a person typed; raises IllegalMove with a hint for text that is not one."""
        raise NotImplementedError

    def render(self, state: State) -> str:
        """The board as text for the terminal."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"{type(self).__name__}({args})"

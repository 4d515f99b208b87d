"""The grid world of lecture 5.1 (Russell & Norvig's 4x3 world) and grid worlds from a text map.

    3  .  .  .  +1        S: start (1,1)   #: wall (2,2), may not be entered
    2  .  #  .  -1        +1 at (4,3), -1 at (4,2): exits (terminal states) with that reward
    1  S  .  .  .         every other field: reward R = -0.04
       1  2  3  4

Actions ↑ ↓ → ← try to move one field; the move succeeds with p = 0.8 and slips to each side
(perpendicular) with p = 0.1; a move into a wall or off the board leaves the figure where it is.
Fields are named (x, y) as in the lecture: x the column from the left, y the row from the bottom.

A map is text, one line per row (top row first), fields separated by spaces:
``.`` a free field, ``S`` the start (free), ``#`` a wall, a number (``+1``, ``-1``, ``0.5``) an exit
with that reward. Lines starting with ``;`` are comments.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy

from tiefnet.errors import ConfigError
from tiefnet.rl.mdp import MDP, NO_ACTION

LECTURE_MAP = """\
. . . +1
. # . -1
S . . .
"""

ARROWS = ("↑", "↓", "→", "←")  # the lecture's order of the actions
MOVES = ((0, 1), (0, -1), (1, 0), (-1, 0))  # (dx, dy) of each action
SIDEWAYS = ((2, 3), (2, 3), (0, 1), (0, 1))  # the two perpendicular actions of each action


@dataclass(frozen=True)
class GridWorld:
    """A grid world and its MDP. ``cells[s]`` is the (x, y) of state s; ``start`` a state number."""

    mdp: MDP
    cells: tuple[tuple[int, int], ...]
    width: int
    height: int
    start: int
    walls: frozenset[tuple[int, int]]

    def state(self, x: int, y: int) -> int:
        """The state number of field (x, y)."""
        try:
            return self.cells.index((x, y))
        except ValueError:
            raise ConfigError(f"({x}, {y}) is not a field of this grid world (a wall or off the board)") from None

    def table(self, values: numpy.ndarray | list, fmt: str = "{:.3f}") -> str:
        """One value per state laid out like the lecture's board: top row first, rows numbered y,
        columns x; walls shown as ■."""
        texts = {cell: (fmt.format(v) if not isinstance(v, str) else v) for cell, v in zip(self.cells, values)}
        width = max(3, *(len(t) for t in texts.values()))
        lines = []
        for y in range(self.height, 0, -1):
            row = [texts.get((x, y), "■").rjust(width) for x in range(1, self.width + 1)]
            lines.append(f"{y:>2} " + " ".join(row))
        lines.append("   " + " ".join(str(x).rjust(width) for x in range(1, self.width + 1)))
        return "\n".join(lines)

    def arrows(self, pi: numpy.ndarray) -> list[str]:
        """pi as the lecture's arrows; an exit shows its reward (E+1, E-1)."""
        return [f"E{self.mdp.R[s]:+g}" if a == NO_ACTION else ARROWS[int(a)] for s, a in enumerate(pi)]


def parse_map(text: str) -> tuple[list[list[str]], int, int]:
    """The fields of a map, rows top first: (rows, width, height)."""
    rows = [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith(";")]
    if not rows:
        raise ConfigError("the grid-world map is empty")
    width = len(rows[0])
    for number, row in enumerate(rows, 1):
        if len(row) != width:
            raise ConfigError(f"map row {number} has {len(row)} fields, row 1 has {width}: all rows need the same")
        for token in row:
            if token not in (".", "S", "#"):
                try:
                    float(token)
                except ValueError:
                    raise ConfigError(f"map field {token!r} in row {number} is none of . S # or an exit reward "
                                      f"like +1") from None
    starts = sum(row.count("S") for row in rows)
    if starts != 1:
        raise ConfigError(f"the map needs exactly one start field S, it has {starts}")
    return rows, width, len(rows)


def from_map(text: str, reward: float = -0.04, gamma: float = 1.0, p_intended: float = 0.8) -> GridWorld:
    """The grid world of a text map: R = ``reward`` on every free field, the exits' own rewards, moves
    that succeed with ``p_intended`` and slip to each side with (1 - p_intended) / 2."""
    if not 0.0 <= p_intended <= 1.0:
        raise ConfigError(f"p_intended={p_intended} must be in [0, 1]")
    if not numpy.isfinite(reward):
        raise ConfigError(f"reward={reward} must be a finite number")
    rows, width, height = parse_map(text)
    fields = {(x + 1, height - r): token for r, row in enumerate(rows) for x, token in enumerate(row)}
    cells = tuple(sorted((c for c, t in fields.items() if t != "#"), key=lambda c: (c[1], c[0])))
    if not any(fields[c] not in (".", "S") for c in cells):
        raise ConfigError("the map has no exit (a field with a reward such as +1): the episodes could never end")
    index = {c: s for s, c in enumerate(cells)}
    S, A = len(cells), len(MOVES)
    P = numpy.zeros((A, S, S))
    R = numpy.full(S, float(reward))
    for s, (x, y) in enumerate(cells):
        if fields[(x, y)] not in (".", "S"):
            R[s] = float(fields[(x, y)])  # an exit: terminal, P(.|s, a) = 0
            continue
        for a in range(A):
            slip = (1.0 - p_intended) / 2
            for b, p in ((a, p_intended), (SIDEWAYS[a][0], slip), (SIDEWAYS[a][1], slip)):
                target = (x + MOVES[b][0], y + MOVES[b][1])
                P[a, s, index.get(target, s)] += p  # a wall or the edge: stay
    start = index[next(c for c, t in fields.items() if t == "S")]
    walls = frozenset(c for c, t in fields.items() if t == "#")
    return GridWorld(MDP(P, R, gamma, actions=ARROWS), cells, width, height, start, walls)


def lecture_gridworld(reward: float = -0.04, gamma: float = 1.0) -> GridWorld:
    """The 3x4 grid world of lecture 5.1: start (1,1), wall (2,2), exits +1 at (4,3) and -1 at (4,2)."""
    return from_map(LECTURE_MAP, reward=reward, gamma=gamma)


def load_map(path: str | Path, reward: float = -0.04, gamma: float = 1.0) -> GridWorld:
    """A grid world from a map file (see the module docstring for the format)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the map {path}: {error}") from None
    return from_map(text, reward=reward, gamma=gamma)


class GridWorldEnv:
    """The grid world as an environment for a model-free agent: it samples s_{t+1} ~ P(.|s_t, a_t);
    the agent sees only states, rewards and the end of an episode, never P.

    Rewards follow the lecture: in state s_t the agent receives r_t = R(s_t). On reaching an exit the
    episode takes one more step, in which the agent collects the exit's reward and the episode ends
    (``terminated``), so that max_a Q(exit, a) learns U(exit) = R(exit). With ``exploring_starts`` an
    episode starts in a random non-terminal state instead of S, so that every state is visited often.
    """

    def __init__(self, world: GridWorld, rng: numpy.random.Generator, max_episode_steps: int = 1000,
                 exploring_starts: bool = False):
        if max_episode_steps < 1:
            raise ConfigError(f"max_episode_steps={max_episode_steps} must be at least 1")
        self.world, self.rng = world, rng
        self.exploring_starts = exploring_starts
        self._starts = numpy.flatnonzero(~world.mdp.terminal)
        self.n_states, self.n_actions = world.mdp.n_states, world.mdp.n_actions
        self.max_episode_steps = max_episode_steps
        P = world.mdp.P
        # per (s, a): the possible successors and their cumulative probabilities (plain lists: fast)
        self._next = [[numpy.flatnonzero(P[a, s]).tolist() for a in range(self.n_actions)]
                      for s in range(self.n_states)]
        self._cumulative = [[numpy.cumsum(P[a, s][P[a, s] > 0]).tolist() for a in range(self.n_actions)]
                            for s in range(self.n_states)]
        self._terminal = world.mdp.terminal.tolist()
        self._R = world.mdp.R.tolist()
        self._uniform: list[float] = []
        self.s, self.t = world.start, 0

    def reset(self) -> int:
        """s_0: the start field, or with exploring starts a non-terminal state drawn uniformly."""
        self.s = int(self.rng.choice(self._starts)) if self.exploring_starts else self.world.start
        self.t = 0
        return self.s

    def step(self, a: int) -> tuple[int, float, bool, bool]:
        """(s_{t+1}, r_t = R(s_t), terminated, truncated)."""
        s = self.s
        r = self._R[s]
        self.t += 1
        if self._terminal[s]:
            return s, r, True, False
        if not self._uniform:
            self._uniform = self.rng.random(4096).tolist()
        u = self._uniform.pop()
        successors, cumulative = self._next[s][a], self._cumulative[s][a]
        k = 0
        while k < len(cumulative) - 1 and u >= cumulative[k]:
            k += 1
        self.s = successors[k]
        return self.s, r, False, self.t >= self.max_episode_steps

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

import math
from dataclasses import dataclass
from pathlib import Path

import numpy
import scipy.sparse

from tiefnet.errors import ConfigError
from tiefnet.limits import check_allocation
from tiefnet.rl.mdp import MDP, NO_ACTION

LECTURE_MAP = """\
. . . +1
. # . -1
S . . .
"""

ARROWS = ("↑", "↓", "→", "←")  # the lecture's order of the actions
MOVES = ((0, 1), (0, -1), (1, 0), (-1, 0))  # (dx, dy) of each action
SIDEWAYS = ((2, 3), (2, 3), (0, 1), (0, 1))  # the two perpendicular actions of each action
MAX_MAP_BYTES = 64 * 2**20  # a map file of two bytes a field: about 33 million fields
BYTES_PER_FIELD = 1500  # what one field costs: its P entries, its cell, the solvers' vectors, the printed tables


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
                    reward = float(token)
                except ValueError:
                    reward = None
                if reward is None or not math.isfinite(reward):
                    shown = repr(token[:20]) + ("..." if len(token) > 20 else "")
                    raise ConfigError(f"map field {shown} in row {number} is none of . S # or a finite exit "
                                      f"reward like +1") from None
    starts = sum(row.count("S") for row in rows)
    if starts != 1:
        raise ConfigError(f"the map needs exactly one start field S, it has {starts}")
    return rows, width, len(rows)


def from_map(text: str, reward: float = -0.04, gamma: float = 1.0, p_intended: float = 0.8) -> GridWorld:
    """The grid world of a text map: R = ``reward`` on every free field, the exits' own rewards, moves
    that succeed with ``p_intended`` and slip to each side with (1 - p_intended) / 2 (5.1:
    P(s + move(a) | s, a) = p_intended, P(s + move(b) | s, a) = (1 - p_intended) / 2 for the two b
    perpendicular to a; a blocked move stays at s). P is built sparse,
    at most 3 successors per (s, a), so maps of millions of fields fit."""
    if not 0.0 <= p_intended <= 1.0:
        raise ConfigError(f"p_intended={p_intended} must be in [0, 1]")
    if not numpy.isfinite(reward):
        raise ConfigError(f"reward={reward} must be a finite number")
    rows, width, height = parse_map(text)
    check_allocation({"the grid world": BYTES_PER_FIELD * width * height}, f"a grid-world map of {width} x {height} fields")
    tokens = numpy.array(rows[::-1], dtype=object).reshape(height, width)  # [y - 1, x - 1]: bottom row first
    open_ = (tokens != "#").ravel()
    free = ((tokens == ".") | (tokens == "S")).ravel()
    if not (open_ & ~free).any():
        raise ConfigError("the map has no exit (a field with a reward such as +1): the episodes could never end")
    number = numpy.full(height * width, -1)
    number[open_] = numpy.arange(int(open_.sum()))  # state numbers in the order of (y, x)
    y0, x0 = numpy.divmod(numpy.flatnonzero(open_), width)  # (S,): 0-based row from the bottom, column
    S, A = len(y0), len(MOVES)
    R = numpy.full(S, float(reward))
    exits = ~free[open_]
    R[exits] = tokens.ravel()[open_][exits].astype(float)  # an exit: terminal, P(.|s, a) = 0
    moving = numpy.flatnonzero(~exits)
    slip = (1.0 - p_intended) / 2
    rows_, cols, values = [], [], []
    for a in range(A):
        moves = ((a, p_intended), (SIDEWAYS[a][0], slip), (SIDEWAYS[a][1], slip))
        targets = []
        for b, _ in moves:
            x, y = x0[moving] + MOVES[b][0], y0[moving] + MOVES[b][1]
            inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
            target = numpy.where(inside, number[numpy.where(inside, y * width + x, 0)], -1)
            targets.append(numpy.where(target < 0, moving, target))  # a wall or the edge: stay
        sums = [numpy.zeros(len(moving)) for _ in moves]
        for k, (_, p) in enumerate(moves):  # P(s'|s, a) += p in the order of the moves, onto its first slot
            first = numpy.full(len(moving), k)
            for j in range(k - 1, -1, -1):
                first = numpy.where(targets[j] == targets[k], j, first)
            for j in range(len(moves)):
                sums[j] += numpy.where(first == j, p, 0.0)
        for j in range(len(moves)):
            keep = sums[j] > 0
            rows_.append(a * S + moving[keep])
            cols.append(targets[j][keep])
            values.append(sums[j][keep])
    P = scipy.sparse.csr_array((numpy.concatenate(values), (numpy.concatenate(rows_), numpy.concatenate(cols))),
                               shape=(A * S, S))
    cells = tuple(zip((x0 + 1).tolist(), (y0 + 1).tolist()))
    start = int(number[numpy.flatnonzero((tokens == "S").ravel())[0]])
    wall = numpy.flatnonzero(~open_)
    walls = frozenset(zip((wall % width + 1).tolist(), (wall // width + 1).tolist()))
    return GridWorld(MDP(P, R, gamma, actions=ARROWS), cells, width, height, start, walls)


def lecture_gridworld(reward: float = -0.04, gamma: float = 1.0) -> GridWorld:
    """The 3x4 grid world of lecture 5.1: start (1,1), wall (2,2), exits +1 at (4,3) and -1 at (4,2).

    P(s_{t+1} = s_t + (0, 1) | s_t, ↑) = 0.8,  P(s_t + (1, 0) | s_t, ↑) = P(s_t + (-1, 0) | s_t, ↑) = 0.1
    (likewise for ↓ → ←; a move into the wall or off the board stays), R(s) = ``reward`` (the lecture:
    -0.04) on every other field, R = +1 and -1 at the exits, where the episode ends: the MDP (S, A, R, P, gamma).
    """
    return from_map(LECTURE_MAP, reward=reward, gamma=gamma)


def load_map(path: str | Path, reward: float = -0.04, gamma: float = 1.0) -> GridWorld:
    """A grid world from a map file (see the module docstring for the format): a regular UTF-8 text
    file of at most MAX_MAP_BYTES."""
    path = Path(path)
    if not path.is_file():  # a folder, a device, a FIFO; a name with a NUL byte
        raise ConfigError(f"cannot read the map {path}: {'not a file' if path.exists() else 'no such file'}")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_MAP_BYTES + 1)
        text = data.decode("utf-8") if len(data) <= MAX_MAP_BYTES else ""
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the map {path}: {' '.join(str(error).split())[:200]}") from None
    if len(data) > MAX_MAP_BYTES:
        raise ConfigError(f"the map {path} is larger than {MAX_MAP_BYTES // 2**20} MiB (about "
                          f"{MAX_MAP_BYTES // 2 // 10**6} million fields), the largest map read")
    if "\x00" in text:
        raise ConfigError(f"the map {path} is not a text file (it holds NUL bytes)")
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
        P, S = world.mdp.P, self.n_states  # (A S, S) sparse, row a S + s = P(.|s, a)
        check_allocation({"the successor lists": 2 * 40.0 * P.nnz + 200.0 * S * self.n_actions},
                   f"the grid world of {S} states as an environment")
        # per (s, a): the possible successors and their cumulative probabilities (plain lists: fast)
        successors, cumulative = [], []
        for row in range(P.shape[0]):
            start, end = P.indptr[row], P.indptr[row + 1]
            successors.append(P.indices[start:end].tolist())
            cumulative.append(numpy.cumsum(P.data[start:end]).tolist())
        self._next = [[successors[a * S + s] for a in range(self.n_actions)] for s in range(S)]
        self._cumulative = [[cumulative[a * S + s] for a in range(self.n_actions)] for s in range(S)]
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

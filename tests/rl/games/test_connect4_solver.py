"""The Connect Four solver (tiefnet.rl.games.connect4_solver) against published scores, hand-worked
positions and a separate brute-force minimax on a plain grid; and its own consistency
score(s) = max_a -score(s a). The empty board (score +1) takes far too long in pure Python."""
from __future__ import annotations

import numpy as np
import pytest

from tiefnet.rl.games.connect4_solver import Solver, winning_columns

WIDTH, HEIGHT = 7, 6


# --- a separate reference: a grid, a four-in-a-row test and minimax with memoisation -----------
def grid_after(moves) -> list[list[int]]:
    """grid[c] lists column c's stones bottom up: 1 for the first player, 2 for the second."""
    grid: list[list[int]] = [[] for _ in range(WIDTH)]
    for n, col in enumerate(moves):
        grid[col].append(1 + n % 2)
    return grid


def makes_four(grid, col: int) -> bool:
    """Whether the top stone of column ``col`` is part of four in a row."""
    row = len(grid[col]) - 1
    stone = grid[col][row]

    def at(c, r):
        return 0 <= c < WIDTH and 0 <= r < len(grid[c]) and grid[c][r] == stone

    for dc, dr in ((1, 0), (0, 1), (1, 1), (1, -1)):
        run = 1
        for sign in (1, -1):
            k = 1
            while at(col + sign * k * dc, row + sign * k * dr):
                run, k = run + 1, k + 1
        if run >= 4:
            return True
    return False


def brute_force_values(moves) -> list[int | None]:
    """Per column, the Pons score of playing it (None if full), by plain minimax over the grid."""
    memo: dict = {}

    def score(grid, n):
        key = tuple(map(tuple, grid))
        if key not in memo:
            values = [v for v in child_values(grid, n) if v is not None]
            memo[key] = max(values) if values else 0           # a full board is a draw
        return memo[key]

    def child_values(grid, n):
        values = []
        for col in range(WIDTH):
            if len(grid[col]) == HEIGHT:
                values.append(None)
                continue
            grid[col].append(1 + n % 2)
            values.append((WIDTH * HEIGHT + 1 - n) // 2 if makes_four(grid, col) else -score(grid, n + 1))
            grid[col].pop()
        return values

    return child_values(grid_after(moves), len(moves))


def sensible_position(rng, plies: int) -> list[int]:
    """``plies`` moves of a player who wins when he can, blocks a single threat, never plays below
    the opponent's winning cell when he can help it, and is random otherwise; nobody has won, and
    the player to move cannot win at once (a position still worth solving)."""
    while True:
        moves: list[int] = []
        grid = grid_after([])
        for n in range(plies):
            legal = [c for c in range(WIDTH) if len(grid[c]) < HEIGHT]
            wins = [c for c in legal if _completes(grid, c, 1 + n % 2)]
            blocks = [c for c in legal if _completes(grid, c, 2 - n % 2)]
            safe = [c for c in legal if len(grid[c]) == HEIGHT - 1 or not _completes_above(grid, c, 2 - n % 2)]
            col = int(rng.choice(wins or blocks or safe or legal))
            grid[col].append(1 + n % 2)
            moves.append(col)
            if makes_four(grid, col):
                break
        else:
            if not wins_at_once(grid, plies):
                return moves


def _completes(grid, col: int, stone: int) -> bool:
    """Whether dropping ``stone`` into ``col`` makes four."""
    grid[col].append(stone)
    four = makes_four(grid, col)
    grid[col].pop()
    return four


def _completes_above(grid, col: int, stone: int) -> bool:
    """Whether, after any stone in ``col``, a ``stone`` on top of it would make four."""
    grid[col].append(0)
    four = _completes(grid, col, stone)
    grid[col].pop()
    return four


def wins_at_once(grid, n: int) -> bool:
    """Whether the player to move (after n moves) has a column that makes four."""
    return any(_completes(grid, col, 1 + n % 2) for col in range(WIDTH) if len(grid[col]) < HEIGHT)


def outcome(score: int) -> int:
    return (score > 0) - (score < 0)


def columns(text: str) -> list[int]:
    """Pons' notation (columns 1..7) to ours (0..6)."""
    return [int(ch) - 1 for ch in text]


@pytest.fixture(scope="module")
def solver():
    return Solver()


# --- published and hand-worked scores --------------------------------------------------------
# From the End-Easy set (Test_L3_R1) of Pascal Pons' solver benchmark, blog.gamesolver.org part 2
END_EASY = [
    ("2252576253462244111563365343671351441", -1),
    ("7422341735647741166133573473242566", 1),
    ("23163416124767223154467471272416755633", 0),
    ("65214673556155731566316327373221417", -1),
    ("52677675164321472411331752454", 0),
    ("67152117737262713366376314254", 6),
    ("2762751722231276466633475674533", 5),
    ("427566236745127177115664464254", 2),
    ("3575316255751336464276636772271112", -3),
]


@pytest.mark.parametrize("text, expected", END_EASY)
def test_published_scores(solver, text, expected):
    moves = columns(text)
    assert solver.solve(moves) == expected
    assert solver.weak_solve(moves) == outcome(expected)


def test_hand_worked_positions(solver):
    # the first player has three in column 0 and moves: he wins with his 4th stone, 43 - 6 = 37 // 2
    assert solver.solve([0, 1, 0, 1, 0, 1]) == 18 and solver.weak_solve([0, 1, 0, 1, 0, 1]) == 1
    assert solver.judge([0, 1, 0, 1, 0, 1], 0) == "best"
    # ... and he has played it: the game is over, the mover (second player) lost
    assert solver.solve([0, 1, 0, 1, 0, 1, 0]) == -18 and solver.move_values([0, 1, 0, 1, 0, 1, 0]) == [None] * 7
    # an open three on the bottom row (columns 1, 2, 3; 0 and 4 empty): two threats, the mover loses
    assert solver.solve([2, 2, 3, 3, 1]) == -18 and solver.weak_solve([2, 2, 3, 3, 1]) == -1
    # a drawn game with one empty cell left, then the full board
    last = columns("71255763773133525731261364622167124446454")
    assert solver.solve(last) == 0
    full = last + [solver.move_values(last).index(0)]
    assert len(full) == 42 and solver.solve(full) == 0 and solver.move_values(full) == [None] * 7


# --- against brute force, and against itself --------------------------------------------------
def verdicts(values: list[int | None]) -> list[str | None]:
    """judge's verdict for each column, from exact move values."""
    best = max(v for v in values if v is not None)
    return [None if v is None else "losing" if outcome(v) < outcome(best) else "best" if v == best else "ok"
            for v in values]


BRUTE_FORCE_CASES = [(seed, 30 + seed % 6) for seed in range(12)] + [(0, 26), (1, 26), (4, 28)]


@pytest.mark.parametrize("seed, plies", BRUTE_FORCE_CASES)
def test_matches_brute_force(seed, plies):
    """Every score, outcome and verdict of a position with 7 to 12 empty cells (three with 14 or 16)."""
    moves = sensible_position(np.random.default_rng(seed), plies)
    expected = brute_force_values(moves)
    solver = Solver(table_size=2 ** 10)                # a tiny table: collisions must stay harmless
    assert solver.move_values(moves) == expected
    best = max(v for v in expected if v is not None)
    assert solver.solve(moves) == best
    assert solver.weak_solve(moves) == outcome(best)
    for col, verdict in enumerate(verdicts(expected)):
        if verdict is not None:
            assert solver.judge(moves, col) == verdict, (moves, col, expected)
            assert solver.losing_move(moves, col) == (verdict == "losing")
            assert solver.judge(moves, col, exact=False) == ("losing" if verdict == "losing" else "best")


def test_a_position_with_all_three_verdicts(solver):
    moves = sensible_position(np.random.default_rng(0), 26)
    assert brute_force_values(moves) == [-4, 7, -7, -8, None, 2, None]
    assert [solver.judge(moves, col) if col not in (4, 6) else None for col in range(7)] == \
        ["losing", "best", "losing", "losing", None, "ok", None]


@pytest.mark.parametrize("seed, plies", [(21, 14), (21, 16), (22, 16), (10, 18), (11, 20), (12, 22), (13, 24)])
def test_score_is_the_best_negated_child_score(solver, seed, plies):
    moves = sensible_position(np.random.default_rng(seed), plies)
    values = solver.move_values(moves)
    best = max(v for v in values if v is not None)
    assert solver.solve(moves) == best
    assert solver.weak_solve(moves) == outcome(best)
    for col, v in enumerate(values):
        if v is not None:
            assert solver.weak_solve(moves + [col]) == -outcome(v)


def test_judge_of_an_immediate_win_and_of_ignoring_a_threat(solver):
    moves = [0, 1, 0, 1, 0, 1]                           # column 0 wins now, column 3 lets column 1 win
    assert solver.judge(moves, 0) == "best" and solver.judge(moves, 3) == "losing"
    assert solver.judge(moves, 3, exact=False) == "losing" and solver.losing_move(moves, 3)
    assert not solver.losing_move(moves, 0)


# --- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("moves, message", [
    ([7], "outside"), ([-1], "outside"), ([0] * 7, "full"), (["a"], "not a column"),
    ([0, 1, 0, 1, 0, 1, 0, 1], "already won"),
])
def test_invalid_sequences_raise_value_error(solver, moves, message):
    for method in (solver.solve, solver.weak_solve, solver.move_values):
        with pytest.raises(ValueError, match=message):
            method(moves)


def test_judge_rejects_illegal_actions_and_ended_games(solver):
    with pytest.raises(ValueError, match="not a legal column"):
        solver.judge([0] * 6, 0)
    with pytest.raises(ValueError, match="not a legal column"):
        solver.judge([], 7)
    with pytest.raises(ValueError, match="ended"):
        solver.judge([0, 1, 0, 1, 0, 1, 0], 2)


@pytest.mark.parametrize("size", [0, 2 ** 29, 1.5, True])
def test_table_size_is_checked(size):
    with pytest.raises(ValueError, match="table_size"):
        Solver(table_size=size)


def test_the_default_table_takes_32_mib():
    assert 31.9 < Solver().table_megabytes <= 32


def test_winning_columns():
    assert winning_columns([0, 1, 0, 1, 0, 1]) == [0]
    assert winning_columns([0, 1, 0, 1, 0, 1], opponent=True) == [1]
    assert winning_columns([2, 2, 3, 3]) == [] and winning_columns([2, 2, 3, 3, 1], opponent=True) == [0, 4]

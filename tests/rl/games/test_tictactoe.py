"""Tic-tac-toe by hand: the 8 lines win, a draw, taken cells, the errors, states that share
nothing, encode, and the 8 symmetries (planes and pi moved alike, consistent with play)."""
from __future__ import annotations

import numpy as np
import pytest

from tiefnet.rl.games import IllegalMove, make_game
from tiefnet.rl.games.tictactoe import LINES, TicTacToe

DRAW = [0, 1, 2, 4, 3, 5, 7, 6, 8]  # X: a1 c1 a2 b3 c3, O: b1 b2 c2 a3


def replay(game, actions):
    state = game.initial()
    for a in actions:
        state = game.play(state, a)
    return state


def cells(line: int) -> list[int]:
    return [i for i in range(9) if line >> i & 1]


@pytest.mark.parametrize("line", LINES, ids=lambda line: "-".join(map(str, cells(line))))
def test_every_line_wins_for_x(line):
    game = TicTacToe()
    mine = cells(line)
    others = [i for i in range(9) if i not in mine][:2]  # O's two stones, off X's line
    state = replay(game, [mine[0], others[0], mine[1], others[1], mine[2]])
    assert state.terminal and state.z == -1 and state.player == 1  # O to move, and O lost
    assert all(state.board[divmod(i, 3)] == 1 for i in mine)
    assert not game.legal_mask(state).any()
    with pytest.raises(IllegalMove, match=r"action 8 \(c3\): the game is over after 5 moves"):
        game.play(state, 8)


def test_o_wins_a_column_on_the_sixth_move():
    game = TicTacToe()
    before = replay(game, [0, 2, 1, 5, 3])  # O holds c1 and c2
    assert not before.terminal
    state = game.play(before, 8)
    assert state.terminal and state.z == -1 and state.player == 0 and game.render(state).endswith("O won")


def test_draw():
    game = TicTacToe()
    before = replay(game, DRAW[:-1])
    assert not before.terminal and game.legal_actions(before).tolist() == [8]
    state = game.play(before, 8)
    assert state.terminal and state.z == 0 and not game.legal_mask(state).any()
    assert game.render(state).endswith("draw")


@pytest.mark.parametrize("action, match", [
    (9, "action 9 is not a cell"), (-1, "action -1 is not a cell"), ("4", "'4' is not a whole number"),
    (4.0, "4.0 is not a whole number"), (np.bool_(True), "True_ is not a whole number"),
])
def test_illegal_actions_name_the_action(action, match):
    game = TicTacToe()
    with pytest.raises(IllegalMove, match=match):
        game.play(game.initial(), action)


def test_taken_cell():
    game = TicTacToe()
    state = replay(game, [4])
    assert game.legal_mask(state).tolist() == [True] * 4 + [False] + [True] * 4
    with pytest.raises(IllegalMove, match="action 4: cell b2 is taken"):
        game.play(state, 4)
    with pytest.raises(IllegalMove, match="b2 is taken"):
        game.parse_action("B2", state)


def test_states_share_nothing_mutable():
    game = TicTacToe()
    parent = replay(game, [4, 0])
    left, right = game.play(parent, 1), game.play(parent, 8)
    assert parent.board.tolist() == [[-1, 0, 0], [0, 1, 0], [0, 0, 0]] and parent.moves == (4, 0)
    assert left.board[0, 1] == 1 and left.board[2, 2] == 0 and right.board[2, 2] == 1 and right.board[0, 1] == 0
    assert not np.shares_memory(left.board, right.board) and left.previous[0] is parent.board
    for array in (parent.board, left.board, game.legal_mask(left)):
        with pytest.raises(ValueError):  # read-only
            array[0] = 0
    assert game.legal_mask(game.initial()).all() and np.int64(3) in game.legal_actions(left)


def test_encode_planes():
    game = TicTacToe(history=2)
    state = replay(game, [4, 0, 8])  # X b2, O a1, X c3; O to move
    planes = game.encode(state)
    assert planes.shape == (5, 3, 3) and len(state.previous) == 1
    assert np.flatnonzero(planes[0]).tolist() == [0] and np.flatnonzero(planes[1]).tolist() == [4, 8]
    assert np.flatnonzero(planes[2]).tolist() == [0] and np.flatnonzero(planes[3]).tolist() == [4]
    assert not planes[4].any() and game.encode(game.play(state, 1))[4].all()


def test_eight_symmetries_agree_with_play():
    """For each symmetry g found by symmetries(): the planes and pi move the same way, the game
    replayed on g(cells) encodes to the transformed planes, and so does every child."""
    game = TicTacToe()
    moves = [0, 4, 1]  # X a1 b1, O b2: no symmetry maps it to itself
    state = replay(game, moves)
    pi = np.arange(1, 10, dtype=np.float32) / 45  # distinct values reveal where each cell went
    copies = game.symmetries(game.encode(state), pi)
    assert len(copies) == 8 and np.array_equal(copies[0][0], game.encode(state)) and np.array_equal(copies[0][1], pi)
    assert len({planes.tobytes() for planes, _ in copies}) == 8
    for planes, pi_g in copies:
        source = [int(np.flatnonzero(pi == value)[0]) for value in pi_g]  # cell j of g(board) was source[j]
        assert sorted(source) == list(range(9))
        target = {old: new for new, old in enumerate(source)}  # g as a map of cells
        flat = game.encode(state).reshape(17, 9)
        assert np.array_equal(planes.reshape(17, 9), flat[:, source])  # planes and pi moved alike
        moved = replay(game, [target[a] for a in moves])
        assert np.array_equal(game.encode(moved), planes)
        for a in game.legal_actions(state):
            child = game.play(state, int(a))
            expected = [p for p, q in game.symmetries(game.encode(child), pi) if np.array_equal(q, pi_g)][0]
            assert np.array_equal(game.encode(game.play(moved, target[int(a)])), expected)


def test_action_names_and_parsing():
    game = TicTacToe()
    state = game.initial()
    names = [game.action_name(a) for a in range(9)]
    assert names == ["a1", "b1", "c1", "a2", "b2", "c2", "a3", "b3", "c3"]
    assert [game.parse_action(n, state) for n in names] == list(range(9))
    assert game.parse_action(" C3 ", state) == 8
    for text in ("d1", "a4", "b", "", "11", "4"):
        with pytest.raises(IllegalMove, match="type a column a-c and a row 1-3"):
            game.parse_action(text, state)
    with pytest.raises(IllegalMove, match="game is over"):
        game.parse_action("c3", replay(game, [0, 3, 1, 4, 2]))


def test_render():
    game = TicTacToe()
    assert game.render(replay(game, [4, 2])) == "   a b c\n1  . . O\n2  . X .\n3  . . .\nX to move"


def test_settings_and_registry():
    game = make_game("tictactoe")
    assert isinstance(game, TicTacToe) and game.settings() == {"history": 8} and repr(game) == "TicTacToe(history=8)"
    assert (game.board_shape, game.action_count, game.symmetry, game.plane_count) == ((3, 3), 9, "dihedral", 17)

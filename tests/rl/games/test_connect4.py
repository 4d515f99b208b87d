"""Connect Four by hand: wins in every direction (and none across the guard bits), a draw, full
columns, the errors, states that share nothing, the board's orientation, encode and the mirror."""
from __future__ import annotations

import numpy as np
import pytest

from tiefnet.rl.games import IllegalMove, make_game
from tiefnet.rl.games.connect4 import BITS_PER_COLUMN, ConnectFour, four_in_a_row

# a drawn game, columns as typed (1..7), found by a seeded random search and checked in OpenSpiel
DRAW = "666165577462463234152541333211132724554777"
# O completes four in the top row of the board (row 0) with the last stone, in column 7
TOP_ROW = [3, 4, 3, 3, 5, 3, 3, 3, 5, 4, 4, 5, 4, 4, 0, 4, 0, 5, 5, 6, 1, 6, 6, 5, 6, 6, 1, 6]


def replay(game, columns):
    """The state after the actions ``columns`` (0..6), from the empty board."""
    state = game.initial()
    for a in columns:
        state = game.play(state, a)
    return state


def naive_four(board: np.ndarray, colour: int) -> bool:
    """Four stones of ``colour`` in a row on the (6, 7) board, by looking at every line of 4 cells."""
    H, W = board.shape
    for r in range(H):
        for c in range(W):
            for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
                cells = [(r + k * dr, c + k * dc) for k in range(4)]
                if all(0 <= i < H and 0 <= j < W and board[i, j] == colour for i, j in cells):
                    return True
    return False


def bits_of(board: np.ndarray, colour: int) -> int:
    """The bitboard of ``colour``'s stones (board row 0 = the top = height 5)."""
    return sum(1 << (BITS_PER_COLUMN * c + 5 - r) for r, c in zip(*np.nonzero(board == colour)))


def test_initial_state_and_orientation():
    game = ConnectFour()
    state = game.initial()
    assert state.board.shape == (6, 7) and state.board.dtype == np.int8 and not state.board.any()
    assert (state.player, state.moves, state.previous, state.terminal, state.z) == (0, (), (), False, 0)
    assert game.legal_mask(state).tolist() == [True] * 7
    state = game.play(state, 3)
    assert state.board[5, 3] == 1 and state.board.sum() == 1  # the first stone lands in the bottom row
    state = game.play(state, 3)
    assert state.board[4, 3] == -1 and state.player == 0


@pytest.mark.parametrize("columns, direction", [
    ([0, 1, 0, 1, 0, 1, 0], "vertical"),
    ([0, 0, 1, 1, 2, 2, 3], "horizontal, bottom row"),
    ([0, 1, 1, 2, 2, 3, 2, 3, 3, 5, 3], "diagonal /"),
    ([6, 5, 5, 4, 4, 3, 4, 3, 3, 1, 3], "diagonal \\"),
    (TOP_ROW, "horizontal, top row, by O"),
])
def test_four_in_a_row_ends_the_game(columns, direction):
    game = ConnectFour()
    before = replay(game, columns[:-1])
    assert not before.terminal, direction
    state = game.play(before, columns[-1])
    winner = 1 - state.player
    assert state.terminal and state.z == -1 and state.player == len(columns) % 2, direction
    assert naive_four(state.board, 1 - 2 * winner) and not naive_four(state.board, 2 * winner - 1)
    assert not game.legal_mask(state).any()
    with pytest.raises(IllegalMove, match="game is over after"):
        game.play(state, 2)


def test_top_row_win_is_on_the_top_row():
    state = replay(ConnectFour(), TOP_ROW)
    assert (state.board[0, 3:7] == -1).all() and state.moves[-1] == 6  # O's four in the top row
    assert not naive_four(state.board[1:], -1)  # and nowhere below it


def test_no_four_across_the_guard_bits():
    """Heights 3, 4, 5 of one column and height 0 of the next are consecutive cells of the
    bitboard but for the guard bit between them; the same for the diagonals at the top edge."""
    column = (1 << 3) | (1 << 4) | (1 << 5)
    assert not four_in_a_row(column | (1 << BITS_PER_COLUMN))
    assert four_in_a_row(column | (1 << 2))
    # heights 5, 0, 1, 2 in columns 0..3 follow each other with step 8 only through the guard bit
    assert not four_in_a_row((1 << 5) | (1 << 7) | (1 << 15) | (1 << 23))


def test_bitboard_win_agrees_with_looking_at_every_line():
    rng = np.random.default_rng(4)
    for _ in range(300):
        board = np.zeros((6, 7), np.int8)
        for c in range(7):
            height = rng.integers(0, 7)
            board[6 - height:, c] = rng.choice([-1, 1], size=height)
        for colour in (1, -1):
            assert four_in_a_row(bits_of(board, colour)) == naive_four(board, colour)


def test_draw_on_a_full_board():
    game = ConnectFour()
    columns = [int(ch) - 1 for ch in DRAW]
    before = replay(game, columns[:-1])
    assert not before.terminal and game.legal_mask(before).tolist() == [False] * 6 + [True]
    state = game.play(before, columns[-1])
    assert state.terminal and state.z == 0 and np.count_nonzero(state.board) == 42
    assert not naive_four(state.board, 1) and not naive_four(state.board, -1)
    assert game.render(state).endswith("draw")


def test_full_column_is_illegal():
    game = ConnectFour()
    state = replay(game, [2] * 6)
    assert state.board[:, 2].tolist() == [-1, 1, -1, 1, -1, 1]
    assert game.legal_mask(state).tolist() == [True, True, False, True, True, True, True]
    with pytest.raises(IllegalMove, match="action 2: column 3 is full"):
        game.play(state, 2)
    with pytest.raises(IllegalMove, match="column 3 is full"):
        game.parse_action("3", state)


@pytest.mark.parametrize("action, match", [
    (7, "action 7 is not a column"), (-1, "action -1 is not a column"), ("3", "'3' is not a whole number"),
    (2.0, "2.0 is not a whole number"), (True, "True is not a whole number"), (None, "None is not"),
])
def test_illegal_actions_name_the_action(action, match):
    game = ConnectFour()
    with pytest.raises(IllegalMove, match=match):
        game.play(game.initial(), action)


def test_numpy_integers_are_actions():
    game = ConnectFour()
    state = game.play(game.initial(), np.int64(4))
    assert state.moves == (4,) and type(state.moves[0]) is int
    assert game.play(state, game.legal_actions(state)[0]).moves == (4, 0)


def test_states_share_nothing_mutable():
    game = ConnectFour()
    parent = replay(game, [3, 3, 2])
    board_before = parent.board.copy()
    left, right = game.play(parent, 0), game.play(parent, 6)
    assert (parent.board == board_before).all() and parent.moves == (3, 3, 2) and parent.player == 1
    assert left.board[5, 0] == -1 and left.board[5, 6] == 0 and right.board[5, 6] == -1 and right.board[5, 0] == 0
    assert not np.shares_memory(left.board, right.board) and not np.shares_memory(left.board, parent.board)
    assert left.previous[0] is parent.board and left.extra != right.extra
    for array in (parent.board, left.board, game.legal_mask(left)):
        with pytest.raises(ValueError):  # read-only: no caller can change a state or the cached masks
            array[0] = 1
    assert game.legal_mask(left).tolist() == [True] * 7


def test_previous_boards_newest_first_and_capped():
    game = ConnectFour(history=3)
    states = [game.initial()]
    for a in [0, 1, 2, 3, 4]:
        states.append(game.play(states[-1], a))
    last = states[-1]
    assert len(last.previous) == 2
    assert last.previous[0] is states[-2].board and last.previous[1] is states[-3].board
    assert len(ConnectFour(history=1).play(game.initial(), 0).previous) == 0
    assert len(replay(ConnectFour(), range(7)).previous) == 7


def test_encode_planes():
    game = ConnectFour()
    state = replay(game, [3, 4, 3])  # X: (5,3), (4,3); O: (5,4); O to move
    planes = game.encode(state)
    assert planes.shape == (17, 6, 7) and planes.dtype == np.float32
    assert np.argwhere(planes[0]).tolist() == [[5, 4]]  # own stones: O's, the player to move
    assert np.argwhere(planes[1]).tolist() == [[4, 3], [5, 3]]  # the opponent's
    assert np.argwhere(planes[2]).tolist() == [[5, 4]] and np.argwhere(planes[3]).tolist() == [[5, 3]]  # 1 ago
    assert np.argwhere(planes[4]).tolist() == [] and np.argwhere(planes[5]).tolist() == [[5, 3]]  # 2 ago
    assert not planes[6:16].any() and not planes[16].any()  # nothing earlier; O to move: colour plane 0
    assert (game.encode(game.play(state, 0))[16] == 1).all()


def test_mirror_symmetry_matches_the_mirrored_game():
    game = ConnectFour()
    columns = [3, 4, 4, 0, 6, 2, 1]
    state, mirrored = replay(game, columns), replay(game, [6 - a for a in columns])
    pi = np.arange(7, dtype=np.float32) / 21
    (planes, same_pi), (flipped, flipped_pi) = game.symmetries(game.encode(state), pi)
    assert same_pi is pi and np.array_equal(flipped, game.encode(mirrored))
    assert flipped_pi.tolist() == pi[::-1].tolist()
    for a in range(7):  # pi'(6 - a) = pi(a), and the child of 6 - a is the mirror of the child of a
        assert flipped_pi[6 - a] == pi[a]
        child, mirrored_child = game.play(state, a), game.play(mirrored, 6 - a)
        assert np.array_equal(game.symmetries(game.encode(child), pi)[1][0], game.encode(mirrored_child))


def test_action_names_and_parsing():
    game = ConnectFour()
    state = game.initial()
    assert [game.action_name(a) for a in range(7)] == list("1234567")
    assert all(game.parse_action(game.action_name(a), state) == a for a in range(7))
    assert game.parse_action(" 7\n", state) == 6
    for text in ("0", "8", "x", "", "4.0", "-1"):
        with pytest.raises(IllegalMove, match="type a number from 1 to 7"):
            game.parse_action(text, state)


def test_render():
    game = ConnectFour()
    text = game.render(replay(game, [3, 3, 0]))
    lines = text.splitlines()
    assert lines[-2] == " 1 2 3 4 5 6 7" and lines[-3] == " X . . X . . ." and lines[-4] == " . . . O . . ."
    assert lines[-1] == "O to move" and len(lines) == 8
    assert game.render(replay(game, [0, 1, 0, 1, 0, 1, 0])).endswith("X won")


def test_settings_and_registry():
    game = make_game("connect4", history=4)
    assert isinstance(game, ConnectFour) and game.settings() == {"history": 4}
    assert repr(game) == "ConnectFour(history=4)"
    assert (game.name, game.board_shape, game.action_count, game.symmetry, game.pass_action) == (
        "connect4", (6, 7), 7, "mirror", None)
    assert game.plane_count == 9

"""Go's rules on positions built by hand: captures, suicide, ko, superko, passes, scoring, and
the interface (numbering, names, encode/symmetries, immutability, error messages)."""
from __future__ import annotations

import numpy as np
import pytest

from tiefnet.errors import ConfigError
from tiefnet.rl.games import make_game
from tiefnet.rl.games.base import IllegalMove
from tiefnet.rl.games.go import Go


def from_diagram(game: Go, diagram: str, to_move: int = 0):
    """The state with the stones of ``diagram`` (rows as ``render`` prints them: the top line is
    the highest row; X Black, O White, . empty) and ``to_move`` to move. The stones are played
    alternately, a side without stones left passing (never two passes in a row); the diagram
    must not contain captures."""
    rows = diagram.split()
    size = game.size
    assert len(rows) == size and all(len(row) == size for row in rows)
    stones = {"X": [], "O": []}
    for i, row in enumerate(rows):
        for c, mark in enumerate(row):
            if mark in stones:
                stones[mark].append((size - 1 - i) * size + c)
    state = game.initial()
    while stones["X"] or stones["O"] or state.player != to_move:
        mine = stones["XO"[state.player]]
        state = game.play(state, mine.pop(0) if mine else game.pass_action)
    assert not state.terminal and (state.board != 0).sum() == diagram.count("X") + diagram.count("O")
    return state


def at(game: Go, name: str) -> int:
    return game.parse_action(name, game.initial())


def play(game: Go, state, *names: str):
    for name in names:
        state = game.play(state, game.pass_action if name == "pass" else at(game, name))
    return state


# --- settings and numbering --------------------------------------------------------------------
@pytest.mark.parametrize("bad", [{"size": 4}, {"size": 20}, {"size": 9.0}, {"size": True}, {"komi": float("nan")},
                                 {"komi": float("inf")}, {"komi": "7.5"}, {"komi": True}, {"superko": 1},
                                 {"max_game_length": 1}, {"max_game_length": 2.5}, {"history": 0}])
def test_bad_settings_are_config_errors_naming_the_setting(bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        Go(**bad)


def test_settings_and_shapes():
    game = Go(size=5)
    assert game.settings() == {"size": 5, "komi": 7.5, "superko": False, "max_game_length": 50, "history": 8}
    assert Go(size=9).max_game_length == 162 and Go(size=19).max_game_length == 722
    again = make_game("go", **Go(size=7, komi=5, superko=True, max_game_length=30, history=2).settings())
    assert again.settings() == {"size": 7, "komi": 5.0, "superko": True, "max_game_length": 30, "history": 2}
    assert (game.board_shape, game.action_count, game.pass_action, game.symmetry) == ((5, 5), 26, 25, "dihedral")
    assert repr(game).startswith("Go(size=5, komi=7.5")


def test_action_names_rows_from_the_bottom_and_no_letter_i():
    game = Go(size=9)
    assert [game.action_name(a) for a in (0, 1, 8, 9, 80, 81)] == ["a1", "b1", "j1", "a2", "j9", "pass"]
    initial = game.initial()
    for a in range(game.action_count):
        assert game.parse_action(game.action_name(a).upper(), initial) == a
    assert game.parse_action(" C3 ", initial) == 2 * 9 + 2
    state = game.play(initial, at(game, "c3"))
    assert state.board[2, 2] == 1 and state.board.sum() == 1  # board[r, c] is the point of action r*size + c


@pytest.mark.parametrize("text", ["i3", "k1", "a10", "a0", "c", "3c", "", "passe"])
def test_parse_action_rejects_text_that_is_no_point(text):
    with pytest.raises(IllegalMove, match="is not a point"):
        Go(size=9).parse_action(text, Go(size=9).initial())


def test_render_prints_row_1_at_the_bottom():
    game = Go(size=5)
    text = game.render(play(game, game.initial(), "a1", "e5"))
    lines = text.splitlines()
    assert lines[0].split() == list("abcde") and lines[-2].split() == list("abcde")
    assert lines[1].split() == ["5", ".", ".", ".", ".", "O", "5"]
    assert lines[5].split() == ["1", "X", ".", ".", ".", ".", "1"]
    assert lines[-1].startswith("X (Black) to move")


# --- captures and suicide ------------------------------------------------------------------------
def test_single_stone_capture_in_the_middle_and_in_the_corner():
    game = Go(size=5)
    state = from_diagram(game, """
        .....
        ..X..
        .XO..
        ..X..
        O....""")
    assert game.legal_mask(state)[at(game, "d3")]
    after = play(game, state, "d3")
    assert after.board[2, 2] == 0 and (after.board == -1).sum() == 1
    corner = play(game, after, "pass", "b1", "pass", "a2")
    assert (corner.board == -1).sum() == 0 and corner.board[0, 0] == 0


def test_multi_stone_capture_of_two_groups_at_once():
    game = Go(size=5)
    state = from_diagram(game, """
        XOOX.
        XO.OX
        .XOX.
        ..X..
        .....""")
    after = play(game, state, "c4")  # the last liberty of b5-c5-b4 and of d4, and c3's
    assert (after.board == -1).sum() == 0
    assert after.board[3, 2] == 1 and (after.board == 1).sum() == 8
    # the captured points are liberties again: the new stone's group is not in atari
    assert len(after.extra.position.libs[after.extra.position.head[at(game, "c4")]]) >= 2


def test_suicide_is_illegal_but_a_capturing_move_is_not():
    game = Go(size=5)
    state = from_diagram(game, """
        .O...
        O.O..
        .O...
        .....
        XXX..""")
    mask = game.legal_mask(state)
    assert not mask[at(game, "b4")] and not mask[at(game, "a5")]
    with pytest.raises(IllegalMove, match="b4 is suicide"):
        game.play(state, at(game, "b4"))
    # a group that fills its own last liberty: Black a1-c1 with White around, filling d1 ...
    group = from_diagram(game, """
        .....
        .....
        .....
        OOOO.
        XXX.O""", to_move=0)
    assert not game.legal_mask(group)[at(game, "d1")]
    # ... is legal once it captures: White e1 in atari at d1 and e2 removed
    capture = from_diagram(game, """
        .....
        .....
        .....
        OOOOX
        XXX.O""", to_move=0)
    assert game.legal_mask(capture)[at(game, "d1")]
    after = play(game, capture, "d1")
    assert after.board[0, 4] == 0 and (after.board == 1).sum() == 5


# --- ko and superko ----------------------------------------------------------------------------
KO = """
    .....
    .XO..
    XO.O.
    .XO..
    ....."""


def test_simple_ko_forbids_the_immediate_recapture_only():
    game = Go(size=5)
    state = play(game, from_diagram(game, KO), "c3")  # Black, played into White's eye, captures b3 ...
    assert state.extra.ko == at(game, "b3") and (state.board == -1).sum() == 3
    assert not game.legal_mask(state)[at(game, "b3")]
    with pytest.raises(IllegalMove, match="b3 would retake the ko"):
        game.play(state, at(game, "b3"))
    later = play(game, state, "e5", "e1")  # ... White plays elsewhere, Black answers: now legal
    assert later.extra.ko == -1 and game.legal_mask(later)[at(game, "b3")]
    back = play(game, later, "b3")  # White retakes: a ko again, the other way round
    assert back.board[2, 2] == 0 and back.extra.ko == at(game, "c3")
    assert play(game, state, "pass").extra.ko == -1  # a pass ends the ko too


def test_a_capture_that_is_no_ko_sets_no_ko_point():
    game = Go(size=5)
    state = from_diagram(game, """
        .....
        .....
        .....
        X....
        O.X..""")
    after = play(game, state, "b1")  # takes one stone, but b1 has an own and an empty neighbour
    assert after.board[0, 0] == 0 and after.extra.ko == -1


SENDING_TWO = """
    .O.O.
    ..OXX
    .....
    .....
    ....."""


@pytest.mark.parametrize("superko", [False, True])
def test_sending_two_returning_one_repeats_the_position_after_three_moves(superko):
    """White e5 puts d5-e5 in atari, Black c5 takes the two, White d5 takes c5 back: the board of
    three moves before. No simple ko (the first capture takes two stones, the second is not
    played into an eye). OpenSpiel ends the game there as a draw; positional superko forbids d5."""
    game = Go(size=5, superko=superko)
    start = from_diagram(game, SENDING_TWO, to_move=1)
    state = play(game, start, "e5", "c5")
    assert state.extra.ko == -1 and (state.board == -1).sum() == 2
    d5 = at(game, "d5")
    if not superko:
        assert game.legal_mask(state)[d5]
        end = game.play(state, d5)
        assert np.array_equal(end.board, start.board)
        assert end.terminal and end.z == 0 and game.score(end) != 0
        assert not game.legal_mask(end).any()
    else:
        assert not game.legal_mask(state)[d5]
        with pytest.raises(IllegalMove, match="repeat an earlier position"):
            game.play(state, d5)
        assert not play(game, state, "a1").terminal


def test_superko_mask_equals_the_plain_mask_without_repetitions():
    plain, strict = Go(size=5), Go(size=5, superko=True)
    assert np.array_equal(plain.legal_mask(from_diagram(plain, KO)), strict.legal_mask(from_diagram(strict, KO)))
    taken = play(strict, from_diagram(strict, KO), "c3")
    assert not strict.legal_mask(taken)[at(strict, "b3")]  # the simple ko, as a repetition


# --- the end and the score ---------------------------------------------------------------------
WALL = """
    ..XO.
    ..XO.
    ..XO.
    ..XO.
    ..XO."""


@pytest.mark.parametrize("komi, z_black", [(7.5, -1), (4.5, +1), (5, 0)])
def test_two_passes_end_the_game_with_area_scoring_and_komi(komi, z_black):
    game = Go(size=5, komi=komi)
    state = from_diagram(game, WALL)
    assert game.score(state) == 15 - 10 - komi
    once = play(game, state, "pass")
    assert not once.terminal and game.legal_mask(once)[game.pass_action]
    end = play(game, once, "pass")
    assert end.terminal and end.player == 0 and end.z == z_black
    assert not game.legal_mask(end).any()
    with pytest.raises(IllegalMove, match="the game is over"):
        game.play(end, 0)


def test_empty_regions_reaching_both_colours_count_for_nobody():
    game = Go(size=5, komi=0)
    state = from_diagram(game, """
        .....
        .....
        ..X..
        .....
        ....O""")
    assert game.score(state) == 0
    assert game.score(from_diagram(game, "..... ..... ..X.. ..... .....")) == 25


def test_max_game_length_ends_the_game_passes_counted():
    game = Go(size=5, max_game_length=4)
    state = play(game, game.initial(), "c3", "pass", "d4")
    assert not state.terminal
    end = play(game, state, "a1")
    assert end.terminal and not game.legal_mask(end).any()
    assert game.score(end) == 2 - 1 - 7.5 and end.player == 0 and end.z == -1  # Black, to move, lost


# --- the interface -------------------------------------------------------------------------------
def test_encode_planes_history_and_symmetries_move_pi_with_the_stones():
    game = Go(size=5, history=3)
    state = play(game, game.initial(), "b1", "d3", "c2")  # White to move
    planes = game.encode(state)
    assert planes.shape == (7, 5, 5) and len(state.previous) == 2
    assert planes[0].sum() == 1 and planes[0][2, 3] == 1    # White's own d3
    assert planes[1].sum() == 2 and planes[1][0, 1] == 1    # Black's b1, c2
    assert planes[2].sum() == planes[3].sum() == 1                     # one move ago: d3, b1
    assert planes[4].sum() == 0 and planes[5].sum() == 1 and planes[-1].max() == 0  # two: b1; White
    pi = np.zeros(26)
    pi[at(game, "c2")], pi[game.pass_action] = 0.75, 0.25
    copies = game.symmetries(planes, pi)
    assert len(copies) == 8 and len({p.tobytes() for p, _ in copies}) == 8
    for p, q in copies:
        r, c = divmod(int(np.argmax(q[:25])), 5)
        assert q[25] == 0.25 and (p[1] - p[3])[r, c] == 1  # pi's point is still the stone c2 (the new one)


def test_play_changes_nothing_of_the_old_state_and_states_share_nothing_written():
    game = Go(size=5)
    state = from_diagram(game, KO)
    board, colour, libs = state.board.copy(), list(state.extra.position.colour), list(state.extra.position.libs)
    seen, moves = state.extra.seen, state.moves
    a, b = play(game, state, "c3"), play(game, state, "e5")
    assert np.array_equal(state.board, board) and state.extra.position.colour == colour
    assert state.extra.position.libs == libs and state.extra.seen is seen and state.moves == moves
    assert a.board[2, 1] == 0 and b.board[2, 1] == -1
    assert not state.board.flags.writeable and not a.board.flags.writeable
    long = play(game, game.initial(), "a1", "b1", "c1", "d1", "e1", "a5", "b5", "c5", "d5", "e5")
    assert len(long.previous) == game.history - 1 and (long.previous[0] != 0).sum() == 9


def test_illegal_moves_say_why():
    game = Go(size=5)
    state = play(game, game.initial(), "c3")
    for action, message in [(12, "point c3 is taken"), (26, "not a point or pass; the actions are 0..25"),
                            (-1, "not a point or pass"), (1.5, "not a whole number"), (True, "not a whole number")]:
        with pytest.raises(IllegalMove, match=message):
            game.play(state, action)
    with pytest.raises(IllegalMove, match="c3 is taken"):
        game.parse_action("c3", state)
    assert game.play(state, np.int64(0)).board[0, 0] == -1

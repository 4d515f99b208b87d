"""Perfect tic-tac-toe (tiefnet.rl.games.tictactoe_minimax): known values, perfect play never
loses, and the values agree with OpenSpiel's own alpha-beta search on random positions."""
from __future__ import annotations

import numpy as np
import pytest

from tiefnet.rl.games.tictactoe_minimax import PerfectPlayer, best_moves, board_of, move_values, value


def winner(moves) -> int:
    """+1 X won, -1 O won, 0 not (yet) decided: a separate three-in-a-row check."""
    board = board_of(moves)
    for line in ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)):
        total = sum(board[cell] for cell in line)
        if abs(total) == 3:
            return total // 3
    return 0


def play_game(select_x, select_o) -> int:
    """The winner (+1 X, -1 O, 0 draw) of one game between two move choosers."""
    moves: list[int] = []
    while winner(moves) == 0 and len(moves) < 9:
        moves.append((select_x if len(moves) % 2 == 0 else select_o)(moves))
    return winner(moves)


def test_the_empty_board_is_a_draw_and_every_first_move_keeps_it():
    assert value([]) == 0
    assert move_values([]) == [0] * 9
    assert best_moves([]) == list(range(9))


@pytest.mark.parametrize("moves, expected_value, expected_best", [
    ([4, 1], 1, None),                 # centre, then an edge reply: X wins
    ([4, 0], 0, None),                 # centre, corner reply: a draw
    ([0, 1], 1, None),                 # corner, adjacent edge: X wins
    ([0, 4], 0, None),                 # corner, centre: a draw
    ([0, 3, 1, 4], 1, [2]),            # X completes the top row
    ([0, 4, 1], 0, [2]),               # O must block the top row
    ([0, 4, 8], 0, [1, 3, 5, 7]),      # opposite corners: O must take an edge, never a corner
    ([0, 3, 1, 4, 2], -1, []),         # X has won: the mover (O) has lost, nothing to play
    ([0, 1, 2, 4, 3, 5, 7, 6, 8], 0, []),  # a full board, nobody won
])
def test_known_positions(moves, expected_value, expected_best):
    assert value(moves) == expected_value
    if expected_best is not None:
        assert best_moves(moves) == expected_best


def test_move_values_mark_occupied_cells_and_are_consistent_with_value():
    values = move_values([4, 1])
    assert values[4] is None and values[1] is None
    assert max(v for v in values if v is not None) == value([4, 1])


@pytest.mark.parametrize("moves, message", [
    ([9], "outside"), ([-1], "outside"), ([4, 4], "occupied"), (["a"], "not a cell"),
    ([0, 3, 1, 4, 2, 5], "already won"),
])
def test_invalid_sequences_raise_value_error(moves, message):
    with pytest.raises(ValueError, match=message):
        value(moves)


def test_perfect_play_against_itself_always_draws():
    rng = np.random.default_rng(0)
    player = PerfectPlayer()
    results = {play_game(lambda m: player.select(m, rng), lambda m: player.select(m, rng)) for _ in range(200)}
    assert results == {0}


@pytest.mark.parametrize("perfect_side", [+1, -1])
def test_perfect_play_never_loses_to_random_play(perfect_side):
    rng = np.random.default_rng(1 if perfect_side > 0 else 2)
    player = PerfectPlayer()

    def perfect(moves):
        return player.select(moves, rng)

    def random_move(moves):
        return int(rng.choice([cell for cell in range(9) if cell not in moves]))

    results = [play_game(perfect, random_move) if perfect_side > 0 else play_game(random_move, perfect)
               for _ in range(500)]
    assert all(r != -perfect_side for r in results)
    assert sum(r == perfect_side for r in results) > 250    # against random play it mostly wins


def test_select_on_a_finished_game_raises():
    with pytest.raises(ValueError, match="ended"):
        PerfectPlayer().select([0, 3, 1, 4, 2], np.random.default_rng(0))


def test_values_agree_with_openspiel_alpha_beta():
    pyspiel = pytest.importorskip("pyspiel")
    from open_spiel.python.algorithms.minimax import alpha_beta_search

    game = pyspiel.load_game("tic_tac_toe")
    rng = np.random.default_rng(3)
    for _ in range(40):
        state, moves = game.new_initial_state(), []
        for _ in range(rng.integers(0, 7)):
            if state.is_terminal():
                break
            action = int(rng.choice(state.legal_actions()))
            state.apply_action(action)
            moves.append(action)
        if state.is_terminal():
            continue
        mover = state.current_player()
        spiel_value, _ = alpha_beta_search(game, state=state.clone(), maximizing_player_id=mover)
        assert value(moves) == round(spiel_value)

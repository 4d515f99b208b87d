"""Go against OpenSpiel's ``go``: random games with the same legal actions, terminal flag and
board at every step and the same returns at the end; action names; the repetition draw.
(bench/games_vs_openspiel.py plays thousands of games.)"""
from __future__ import annotations

import numpy as np
import pytest

from tiefnet.rl.games.go import Go

pyspiel = pytest.importorskip("pyspiel")


def openspiel_go(game: Go):
    return pyspiel.load_game("go", {"board_size": game.size, "komi": game.komi,
                                    "max_game_length": game.max_game_length})


def play_random_game(game: Go, reference, rng, pass_probability: float) -> str:
    """One game in both, uniform over the legal points, passing with ``pass_probability`` (or
    when pass is all there is). Returns how it ended: "passes", "length" or "repetition"."""
    state, theirs = game.initial(), reference.new_initial_state()
    N = game.pass_action
    while True:
        legal = game.legal_actions(state).tolist()
        assert legal == theirs.legal_actions(), state.moves
        assert state.terminal == theirs.is_terminal(), state.moves
        if state.terminal:
            break
        assert state.player == theirs.current_player() and legal[-1] == N  # pass is always legal
        black = np.asarray(theirs.observation_tensor(0)).reshape(4, game.size, game.size)[0]  # plane 0: Black
        assert np.array_equal(black, state.board == 1), state.moves
        a = N if len(legal) == 1 or rng.random() < pass_probability else int(rng.choice(legal[:-1]))
        state = game.play(state, a)
        theirs.apply_action(a)
    returns = theirs.returns()
    assert returns == [state.z if p == state.player else -state.z for p in (0, 1)], (state.moves, returns)
    if state.moves[-2:] == (N, N):
        return "passes"
    return "length" if state.ply == game.max_game_length else "repetition"


@pytest.mark.parametrize("size, komi, games, pass_probability", [
    (5, 7.5, 400, 0.0), (5, 0.0, 300, 0.15), (7, 3.5, 60, 0.02), (9, 7.5, 40, 0.01), (13, 7.5, 3, 0.01)])
def test_random_games_agree_with_openspiel(size, komi, games, pass_probability):
    game = Go(size=size, komi=komi)
    reference = openspiel_go(game)
    rng = np.random.default_rng(size * 100 + int(komi))
    endings = [play_random_game(game, reference, rng, pass_probability) for _ in range(games)]
    assert "length" in endings
    if pass_probability > 0.1:
        assert "passes" in endings
    if size == 5 and pass_probability == 0.0:
        assert "repetition" in endings  # OpenSpiel's repetition draws were compared too


def test_a_short_max_game_length_agrees_with_openspiel():
    game = Go(size=9, komi=6, max_game_length=30)
    reference, rng = openspiel_go(game), np.random.default_rng(3)
    assert {play_random_game(game, reference, rng, 0.05) for _ in range(10)} >= {"length"}


@pytest.mark.parametrize("size", [5, 9, 19])
def test_action_names_are_openspiels(size):
    game, state = Go(size=size), pyspiel.load_game("go", {"board_size": size}).new_initial_state()
    for a in range(game.action_count):
        assert state.action_to_string(0, a) == "B " + (game.action_name(a) if a < game.pass_action else "PASS")


def test_sending_two_returning_one_is_a_draw_in_openspiel_too():
    game = Go(size=5)
    names = ["d4", "b5", "e4", "d5", "pass", "c4", "pass", "e5", "c5", "d5"]  # test_go.py: SENDING_TWO
    state, theirs = game.initial(), openspiel_go(game).new_initial_state()
    for name in names:
        a = game.parse_action(name, state)
        state = game.play(state, a)
        theirs.apply_action(a)
    assert state.terminal and theirs.is_terminal() and theirs.returns() == [0.0, 0.0] and state.z == 0

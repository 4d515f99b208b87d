"""Our rules against OpenSpiel's on random games: at every step the same legal actions, player
and terminal flag, at the end the same returns. (bench/games_vs_openspiel.py plays more games.)"""
from __future__ import annotations

import numpy as np
import pytest

from tiefnet.rl.games import make_game

pyspiel = pytest.importorskip("pyspiel")


def play_random_game(game, reference, rng) -> tuple[int, str]:
    """One random game in both; returns (steps compared, "X", "O" or "draw"). Fails at the first
    disagreement, naming the moves that led to it."""
    state, theirs = game.initial(), reference.new_initial_state()
    steps = 0
    while True:
        legal = game.legal_actions(state).tolist()
        assert legal == theirs.legal_actions(), (state.moves, legal)
        assert state.terminal == theirs.is_terminal(), state.moves
        assert state.terminal or state.player == theirs.current_player(), state.moves
        steps += 1
        if state.terminal:
            break
        a = int(rng.choice(legal))
        state = game.play(state, a)
        theirs.apply_action(a)
    returns = theirs.returns()
    for p in (0, 1):  # our z is for state.player; the other player's result is -z
        assert returns[p] == (state.z if p == state.player else -state.z), (state.moves, returns)
    return steps, "draw" if state.z == 0 else "XO"[1 - state.player]


@pytest.mark.parametrize("name, spiel_name", [("tictactoe", "tic_tac_toe"), ("connect4", "connect_four")])
def test_random_games_agree_with_openspiel(name, spiel_name):
    game, reference = make_game(name), pyspiel.load_game(spiel_name)
    rng = np.random.default_rng(2024)
    outcomes = {"X": 0, "O": 0, "draw": 0}
    for _ in range(300):
        steps, outcome = play_random_game(game, reference, rng)
        outcomes[outcome] += 1
    assert outcomes["X"] > 0 and outcomes["O"] > 0  # wins of both players had their returns compared
    if name == "tictactoe":
        assert outcomes["draw"] > 0  # (random Connect Four games are hardly ever drawn)

"""The board games of 5.4 behind one interface (:mod:`tiefnet.rl.games.base`)."""
from __future__ import annotations

import importlib
from typing import Any

from tiefnet.errors import ConfigError
from tiefnet.rl.games.base import HISTORY, Game, IllegalMove, State

# name -> (module, class): only these modules are ever imported for a game name read from a file
GAMES = {
    "tictactoe": ("tiefnet.rl.games.tictactoe", "TicTacToe"),
    "connect4": ("tiefnet.rl.games.connect4", "ConnectFour"),
    "go": ("tiefnet.rl.games.go", "Go"),
}


def make_game(name: str, **settings: Any) -> Game:
    """The game called ``name`` ("tictactoe", "connect4", "go") with its settings (Go: size, komi, ...)."""
    if not isinstance(name, str) or name not in GAMES:
        raise ConfigError(f"unknown game {name!r}; choose one of {', '.join(GAMES)}")
    module, cls = GAMES[name]
    game_cls = getattr(importlib.import_module(module), cls)
    try:
        return game_cls(**settings)
    except TypeError as error:
        raise ConfigError(f"{name}: bad settings {settings!r}: {error}") from None


__all__ = ["GAMES", "HISTORY", "Game", "IllegalMove", "State", "make_game"]

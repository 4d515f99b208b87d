"""The settings of an AlphaZero run, with defaults per game (the CLI builds its options from them)."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from tiefnet.errors import ConfigError
from tiefnet.rl.games import GAMES
from tiefnet.settings import check_seed, check_types, setting

OPTIMIZERS = ("adam", "momentum")


@dataclass(frozen=True)
class AlphaZeroConfig:
    """Settings of one AlphaZero training run (5.4-5.5). Defaults: Connect Four; see GAME_DEFAULTS."""

    APP = "alphazero"

    game: str = setting("connect4", "tictactoe, connect4 or go.")
    size: int = setting(5, "Go: board size 5..19.")
    komi: float = setting(7.5, "Go: komi, points added to White's area score.")
    superko: bool = setting(False, "Go: positional superko (no earlier whole-board position may repeat) instead "
                            "of simple ko (OpenSpiel's rule).")
    history: int = setting(8, "Positions in the input planes: the current one and the 7 previous (5.4).")
    blocks: int = setting(5, "Residual blocks of f_theta (5.5; AlphaGo Zero: 39).")
    filters: int = setting(64, "Filters of every convolution in the tower (AlphaGo Zero: 256).")
    simulations: int = setting(100, "MCTS simulations per self-play move (AlphaGo Zero: 1,600).")
    c_puct: float = setting(1.5, "c_puct, the weight of the exploration term U of the search.")
    dirichlet_alpha: float = setting(1.0, "alpha of the Dirichlet noise at the root (about 10 / legal moves).")
    noise_fraction: float = setting(0.25, "epsilon, the share of noise in the root's priors (0: none).")
    temperature_moves: int = setting(10, "Plies played with tau = 1 (moves drawn by visit count), then tau -> 0.")
    value_q_weight: float = setting(0.0, "w of the value target (1 - w) z + w q, q the root's mean value after "
                                    "the search (0: the game's result z, as the lecture).")
    fast_simulations: int = setting(0, "Playout cap randomisation: simulations of the short searches, whose "
                                    "moves are not recorded (0: every move gets the full search).")
    full_search_share: float = setting(0.25, "Share of the moves that get the full search when "
                                       "fast_simulations > 0.")
    parallel_games: int = setting(32, "Self-play games each worker plays side by side: one f_theta call "
                                  "evaluates a leaf of each (batched evaluation).")
    generations: int = setting(60, "Generations: each plays games_per_generation games, then trains.")
    games_per_generation: int = setting(64, "Self-play games per generation (all workers together).")
    train_steps: int = setting(100, "Gradient steps per generation.")
    batch_size: int = setting(256, "Positions per gradient step.")
    window: int = setting(40_000, "Replay window: the training positions drawn from are the most recent ones.")
    optimizer: str = setting("adam", "adam or momentum (SGD with momentum 0.9, as AlphaGo Zero).")
    eta: float = setting(1e-3, "Learning rate eta.")
    c: float = setting(1e-4, "c of the L2 term c ||theta||^2 of the cost (5.4).")
    arena_games: int = setting(20, "Games of each new network against the previous generation's (for Elo); 0: none.")
    arena_simulations: int = setting(25, "MCTS simulations per move in the arena games.")
    random_games: int = setting(20, "Games against a random player per generation; 0: none.")
    judge_games: int = setting(0, "Games against the perfect player per generation (tic-tac-toe; Connect Four: "
                               "the solver, slow); 0: none.")
    max_minutes: float = setting(0.0, "Stop after the generation that passes this many minutes of training "
                                 "(0: no limit); --resume continues.")
    workers: int = setting(2, "Self-play worker processes (0: play in this process).")
    ray: str = setting("", "Address of a Ray cluster whose actors play ('local': start Ray here); '': processes.")
    checkpoint_every: int = setting(1, "Write the resumable checkpoint every this many generations.")
    seed: int = setting(0, "Seed of every random choice (network, self-play, training, arena).")

    def __post_init__(self) -> None:
        check_types(self)
        if self.game not in GAMES:
            raise ConfigError(f"game={self.game!r} is not one of {', '.join(GAMES)}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer={self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        ranges = {"size": (5, 19), "history": (1, 16), "blocks": (0, 64), "filters": (1, 1024),
                  "simulations": (1, 100_000), "fast_simulations": (0, 100_000), "temperature_moves": (0, 10_000),
                  "parallel_games": (1, 4096),
                  "generations": (1, 1_000_000), "games_per_generation": (1, 1_000_000),
                  "train_steps": (0, 1_000_000), "batch_size": (1, 65_536), "window": (1, 10_000_000),
                  "arena_games": (0, 100_000), "arena_simulations": (1, 100_000), "random_games": (0, 100_000),
                  "judge_games": (0, 100_000), "workers": (0, 1024), "checkpoint_every": (1, 1_000_000)}
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigError(f"{name}={value} must be in {low}..{high}")
        positive = {"c_puct": self.c_puct, "dirichlet_alpha": self.dirichlet_alpha, "eta": self.eta}
        for name, value in positive.items():
            if not value > 0 or value == float("inf"):
                raise ConfigError(f"{name}={value} must be a positive number")
        if self.fast_simulations > self.simulations:
            raise ConfigError(f"fast_simulations={self.fast_simulations} must be at most simulations={self.simulations}")
        for name, value, high in (("noise_fraction", self.noise_fraction, 1.0), ("c", self.c, 1.0),
                                  ("value_q_weight", self.value_q_weight, 1.0),
                                  ("full_search_share", self.full_search_share, 1.0),
                                  ("komi", abs(self.komi), 1000.0), ("max_minutes", self.max_minutes, 1e7)):
            if not 0 <= value <= high:
                raise ConfigError(f"{name}={getattr(self, name)} is out of range")
        if self.judge_games and self.game == "go":
            raise ConfigError("judge_games: there is no perfect player for Go")
        check_seed(self.seed)

    def game_settings(self) -> dict[str, Any]:
        """The arguments of ``make_game`` for this run's game."""
        if self.game == "go":
            return {"size": self.size, "komi": self.komi, "superko": self.superko, "history": self.history}
        return {"history": self.history}


# Where a game needs other defaults than Connect Four's (a small net for tic-tac-toe, ...)
GAME_DEFAULTS: dict[str, dict[str, Any]] = {
    "tictactoe": {"blocks": 2, "filters": 32, "simulations": 50, "temperature_moves": 3, "generations": 60,
                  "games_per_generation": 64, "train_steps": 50, "batch_size": 128, "window": 10_000,
                  "dirichlet_alpha": 1.0, "judge_games": 20},
    # the run of bench/RESULTS.md (acceptance 4 of issue 11): a 4 x 48 tower, short searches on
    # 3 of 4 moves, targets mixed with q, many games side by side
    "connect4": {"blocks": 4, "filters": 48, "simulations": 100, "fast_simulations": 20, "full_search_share": 0.25,
                 "value_q_weight": 0.5, "games_per_generation": 256, "parallel_games": 128, "train_steps": 120,
                 "window": 30_000, "arena_games": 10, "random_games": 10, "generations": 70},
    "go": {"blocks": 4, "filters": 64, "simulations": 100, "temperature_moves": 8, "dirichlet_alpha": 0.4,
           "generations": 40, "window": 40_000},
}


def make_config(given: dict[str, Any]) -> AlphaZeroConfig:
    """The Config of the settings ``given``, with the game's defaults for the others."""
    game = given.get("game", AlphaZeroConfig.game)
    defaults = GAME_DEFAULTS.get(game, {})
    known = {f.name for f in fields(AlphaZeroConfig)}
    unknown = set(given) - known
    if unknown:
        raise ConfigError(f"unknown AlphaZero settings: {', '.join(sorted(unknown))}")
    return AlphaZeroConfig(**{**defaults, **given})

"""The Play view (5.4): a person against an AlphaZero model folder, f_theta + MCTS, in the model's
game (tic-tac-toe, Connect Four, small Go).

The server keeps no game: every request carries the moves played so far, which are replayed by the
game's rules (each checked), so a link holds the whole game. The agent's answer comes with what its
search saw: N(s, a), Q(s, a) and P(s, a) of every move at the root, and nu(s), the network's value
of the position for the agent.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy

from tiefnet.errors import ConfigError, TrainingDiverged

MAX_SIMULATIONS = 2000  # per agent move on the page
DEFAULT_SIMULATIONS = 100


@dataclass(frozen=True)
class Agent:
    name: str
    game: Any
    net: Any
    info: dict
    app = "alphazero"

    @classmethod
    def load(cls, name: str, folder: str | Path) -> "Agent":
        from tiefnet.rl.alphazero.play import load_agent

        game, net, info = load_agent(folder)
        return cls(name, game, net, info)

    @property
    def kind(self) -> str:
        return self.game.name

    @property
    def simulations(self) -> int:
        """The agent's own search size (model.json, from its training), within the page's limit."""
        value = self.info.get("simulations", DEFAULT_SIMULATIONS)
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        return min(value, MAX_SIMULATIONS) if ok else DEFAULT_SIMULATIONS

    def replay(self, moves: list[int]):
        """The state after ``moves`` from the start; a ConfigError names the first illegal one."""
        from tiefnet.rl.games.base import IllegalMove

        game = self.game
        state = game.initial()
        for i, action in enumerate(moves):
            if state.terminal:
                raise ConfigError(f"move {i + 1}: the game was over after move {i}")
            try:
                state = game.play(state, int(action))
            except IllegalMove as error:
                raise ConfigError(f"move {i + 1} ({action}): {error}") from None
        return state

    def position(self, state) -> dict[str, Any]:
        """What the page draws: the board (+1 the first player's stones, -1 the second's), whose move
        it is, the legal actions and, once it is over, the result."""
        game = self.game
        H, W = game.board_shape
        legal = [int(a) for a in game.legal_actions(state)] if not state.terminal else []
        result = None
        if state.terminal:  # z is for the player to move at the end; +1 = the first player won
            first = state.z if state.player == 0 else -state.z
            result = {1: "first player wins", -1: "second player wins", 0: "draw"}[int(first)]
        return {"game": game.name, "height": H, "width": W, "action_count": game.action_count,
                "board": state.board.astype(int).tolist(), "to_move": int(state.player),
                "moves": [int(m) for m in state.moves], "legal": legal,
                "pass_action": getattr(game, "pass_action", None), "terminal": bool(state.terminal),
                "result": result}

    def reply(self, moves: list[int], simulations: int | None, seed: int) -> dict[str, Any]:
        """The position after ``moves`` and, unless the game is over, the agent's move there: the most
        visited move of a search of ``simulations`` (no noise), its visit counts and nu."""
        from tiefnet.rl.alphazero.net import Evaluator
        from tiefnet.rl.mcts import Node, SearchConfig, policy, root_value, search

        state = self.replay(moves)
        if state.terminal:
            return {**self.position(state), "agent": None}
        simulations = self.simulations if simulations is None else simulations
        c_puct = self.info.get("c_puct", 1.5)
        config = SearchConfig(simulations, c_puct=float(c_puct) if isinstance(c_puct, (int, float)) and
                              0.001 <= c_puct <= 100 else 1.5, noise_fraction=0.0)
        rng = numpy.random.default_rng(seed)
        root = Node(state)
        search(self.game, [root], Evaluator(self.game, self.net), config, rng, noise=False)
        if not (numpy.isfinite(root.nu) and numpy.isfinite(root.P).all()):
            raise TrainingDiverged(f"{self.name}: the network gives NaN or infinite values here: it has diverged")
        action = int(numpy.argmax(policy(self.game, root, 0.0, rng)))
        visits = [{"action": int(a), "name": self.game.action_name(int(a)), "N": int(n),
                   "Q": round(float(w / n), 4) if n else None, "P": round(float(p), 4)}
                  for a, n, w, p in zip(root.actions, root.N, root.W, root.P)]
        agent = {"action": action, "name": self.game.action_name(action), "nu": round(float(root.nu), 4),
                 "value": round(root_value(root), 4), "simulations": simulations, "visits": visits}
        after = self.game.play(state, action)
        return {**self.position(after), "agent": agent}

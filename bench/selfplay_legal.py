"""Replay the self-play games of a tiefnet AlphaZero run (its games.jsonl) in OpenSpiel: every move
must be legal there and every game must end where tiefnet's ended, with the same winner.

    .venv/bin/python bench/selfplay_legal.py --run runs/go9

Used for issue 11's "a 9x9 run starts, plays legal self-play games and checkpoints": the run folder
also has to hold a checkpoint that ``--resume`` accepts (checked by loading it).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyspiel

from tiefnet.files import read_json, read_text
from tiefnet.rl.games import make_game


def openspiel_game(name: str, settings: dict):
    if name == "go":
        game = make_game("go", **settings)
        return pyspiel.load_game("go", {"board_size": game.board_shape[0], "komi": float(settings["komi"]),
                                        "max_game_length": game.max_game_length})
    return pyspiel.load_game({"tictactoe": "tic_tac_toe", "connect4": "connect_four"}[name])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="an alphazero run folder")
    args = parser.parse_args()
    config = read_json(args.run / "config.json")
    settings = {"history": config["history"]}
    if config["game"] == "go":
        settings.update(size=config["size"], komi=config["komi"], superko=config["superko"])
        if config["superko"]:
            print("superko runs differ from OpenSpiel's rule (simple ko, repetition ends the game)")
            return 2
    reference = openspiel_game(config["game"], settings)
    games = moves = illegal = wrong_end = 0
    for line in read_text(args.run / "games.jsonl").splitlines():
        record = json.loads(line)
        state = reference.new_initial_state()
        games += 1
        for i, action in enumerate(record["moves"]):
            if state.is_terminal() or action not in state.legal_actions():
                illegal += 1
                break
            state.apply_action(action)
            moves += 1
        else:
            returns = state.returns() if state.is_terminal() else None
            winner = None if returns is None or returns[0] == returns[1] else (0 if returns[0] > returns[1] else 1)
            if returns is None or winner != record["winner"]:
                wrong_end += 1
    from tiefnet.checkpoint import read_npz

    arrays, meta = read_npz(args.run / "checkpoint.npz")
    result = {"run": str(args.run), "game": config["game"], "games": games, "moves": moves, "illegal_games": illegal,
              "games_ending_differently": wrong_end, "checkpoint_generation": meta["progress"]["generation"],
              "checkpoint_arrays": len(arrays)}
    print(json.dumps(result))
    return 0 if games and not illegal and not wrong_end else 1


if __name__ == "__main__":
    sys.exit(main())

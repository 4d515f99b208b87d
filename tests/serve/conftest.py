"""Model folders of every application the page shows, made quickly (tiny settings) once per test
process: a dense digit network trained well enough to read drawn digits, a small CNN, AlphaZero agents
for tic-tac-toe, Connect Four and 5 x 5 Go (untrained networks: they play legal games), a char-rnn, an attention
captioning model (trained for seconds) and a fast style transfer network."""
from __future__ import annotations

import numpy as np
import pytest

from tiefnet.checkpoint import save_model
from tiefnet.cli import main


def quiet(line: str) -> None:
    pass


def agent_folder(folder, game_name: str, **settings):
    from tiefnet.rl.alphazero.net import policy_value_net
    from tiefnet.rl.games import make_game

    game = make_game(game_name, **settings)
    net = policy_value_net(game, blocks=1, filters=8, rng=np.random.default_rng(0))
    save_model(folder, net, {"kind": "alphazero", "game": game_name, "game_settings": game.settings(),
                             "simulations": 16, "c_puct": 1.5}, app="alphazero")
    return folder


@pytest.fixture(scope="session")
def model_folders(tmp_path_factory):
    from tiefnet.text.charrnn import Config as TextConfig
    from tiefnet.text.charrnn import run as train_text
    from tiefnet.vision.fast_style_run import Config as StyleConfig
    from tiefnet.vision.fast_style_run import run as train_style
    from tiefnet.vision.mnist import Config, run

    root = tmp_path_factory.mktemp("served")
    run(Config(hidden="100", epochs=3, train_size=20000, cost="cross-entropy", init="scaled", eta=0.5),
        root / "digits", progress=False, log=quiet)
    run(Config(model="cnn", features="4,8", hidden="", epochs=1, train_size=200, batch_size=20), root / "cnn",
        progress=False, log=quiet, warn=quiet)
    agent_folder(root / "connect4", "connect4")
    agent_folder(root / "tictactoe", "tictactoe")
    agent_folder(root / "go5", "go", size=5)
    text = root / "hallo.txt"
    text.write_text("hallo welt, hallo netz. " * 100)
    train_text(TextConfig(text=str(text), layers=1, hidden=32, seq_length=20, batch_size=8, steps=200,
                          eval_every=100, sample_length=20), root / "text", progress=False)
    # a few seconds of training: captions that read like the scenes' (BLEU-4 about 0.35)
    assert main(["caption", "train", "--attention", "--train-scenes", "400", "--eval-scenes", "20", "--hidden", "48",
                 "--embed", "16", "--channels", "8,16,16", "--attention-units", "16", "--batch-size", "16",
                 "--epochs", "8", "--no-progress", "--out", str(root / "captions")]) == 0
    train_style(StyleConfig(steps=2, widths="4,8,8", residual_blocks=1, crop=32, photo_side=40, batch_size=2,
                            style_size=48, checkpoint_every=2), root / "style", progress=False, log=quiet)
    text.unlink()
    return root

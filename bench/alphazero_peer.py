"""The peer of tiefnet's AlphaZero self-play: alpha-zero-general's Connect Four, its own published code,
PyTorch on the CPU, timed on this machine.

The peer is https://github.com/suragnair/alpha-zero-general (measured at commit f1a78e0, 2023). It is
**not** copied into this repository; this script imports it from a checkout outside it:

    git clone https://github.com/suragnair/alpha-zero-general /tmp/azg
    # or, from a bare mirror:  git --git-dir=<mirror> archive HEAD connect4 othello *.py | tar -x -C /tmp/azg

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/alphazero_peer.py \
        --azg-dir /tmp/azg --games 10 --simulations 25 --threads 1

What is measured
----------------
Self-play only, exactly the loop of the peer's ``Coach.learn``: for each game a fresh ``MCTS(game, nnet, args)``
(its search tree reset, as Coach does), then ``Coach.executeEpisode()`` -- one game of Connect Four (6 x 7,
``connect4/Connect4Game.py``) from the empty board to the end, each move ``args.numMCTSSims`` simulations of its
``MCTS.search`` (recursive, dict-based, one ``nnet.predict`` per new leaf, batch 1), then the move drawn from
the visit counts (temperature 1 for the first ``tempThreshold`` = 15 moves, then 0), and its two symmetric
training examples per move. No training, no arena games, no checkpoints. Timing: ``time.perf_counter`` around
the games only (network built and warmed up before).

The network: connect4 has only a Keras/TensorFlow network in the peer (``connect4/keras``, 20 residual blocks
of 128 channels, written against TF1 -- ``tf.placeholder`` -- and not importable with TF 2 as published).
The peer's PyTorch network is ``othello/pytorch/OthelloNNet.py`` with its ``NNetWrapper`` (``NNet.py``; the
same code as ``tafl/pytorch``); the README's way for a new game is to reuse it. It takes the board size from
the game (``board_x, board_y = game.getBoardSize()``), so it works unchanged on 6 x 7 (its two unpadded 3 x 3
convolutions shrink the board by 4, so it needs a board of at least 5 x 5; 6 x 7 -> 2 x 3). With its default
``num_channels = 512`` it is (input: 1 plane, the canonical board, +1 / -1 / 0):

    conv1 3x3 1->512 pad 1 + BN + ReLU          6x7
    conv2 3x3 512->512 pad 1 + BN + ReLU        6x7
    conv3 3x3 512->512 pad 0 + BN + ReLU        4x5
    conv4 3x3 512->512 pad 0 + BN + ReLU        2x3
    fc1 3072->1024 + BN1d + ReLU + dropout 0.3
    fc2 1024->512 + BN1d + ReLU + dropout 0.3
    policy fc3 512->7 (log_softmax)   value fc4 512->1 (tanh)

10,767,368 trainable parameters (the JSON's ``network`` records what was really built). ``predict`` runs it
in eval mode (BN running statistics, no dropout) on one board at a time. The network is untrained (PyTorch's
default initialisation, seeded): throughput, not strength, is measured. An untrained network's games are
longer or shorter than a trained one's, so positions per second, not games per second, is the figure.

Run-time patches (inside the worker process, no file of the peer is edited), all needed for NumPy >= 2.x:
``np.int`` (removed in NumPy 1.24; ``Connect4Logic.Board`` uses it) is set to ``int``; ``ndarray.tostring``
(removed in NumPy 2.3) is replaced in ``Connect4Game.stringRepresentation`` by ``tobytes`` -- the same bytes,
so the MCTS dict keys are the same; ``args.cuda`` of the NNet wrapper is set False (CPU).

Results: one JSON line (stdout) with positions/s (= moves played per second), games, positions, seconds,
the network evaluations (``nnet.predict`` calls) and the seconds spent in them, the network description,
torch threads, the CPU (lscpu model name) and the outside load during the run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_AZG = "/tmp/azg"
AZG_URL = "https://github.com/suragnair/alpha-zero-general"


def _worker(azg_dir: str, games: int, simulations: int, threads: int, seed: int, channels: int | None) -> dict:
    """Runs inside the subprocess: imports the peer from ``azg_dir`` and plays ``games`` self-play games."""
    import random
    import time

    import numpy as np

    sys.path.insert(0, str(HERE))  # bench/, for _harness
    from _harness import OutsideLoad, cpu_model

    sys.path.insert(0, azg_dir)
    os.chdir(azg_dir)  # the peer's modules append relative paths ('..') to sys.path
    if not hasattr(np, "int"):
        np.int = int  # removed in NumPy 1.24; connect4/Connect4Logic.py uses np.zeros(..., dtype=np.int)

    import torch

    torch.set_num_threads(threads)
    from Coach import Coach
    from connect4.Connect4Game import Connect4Game
    from MCTS import MCTS
    from othello.pytorch import NNet as peer_nnet
    from utils import dotdict

    if not hasattr(np.ndarray, "tostring"):  # removed in NumPy 2.3; tobytes returns the same bytes
        Connect4Game.stringRepresentation = lambda self, board: board.tobytes()
    peer_nnet.args["cuda"] = False
    if channels is not None:
        peer_nnet.args["num_channels"] = channels

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

    game = Connect4Game()
    nnet = peer_nnet.NNetWrapper(game)
    # main.py's self-play settings (numMCTSSims 25 by default there, cpuct 1, tempThreshold 15)
    args = dotdict({"numMCTSSims": simulations, "cpuct": 1, "tempThreshold": 15, "numEps": games,
                    "maxlenOfQueue": 200000, "numItersForTrainExamplesHistory": 20, "arenaCompare": 40,
                    "updateThreshold": 0.6, "checkpoint": "./temp/", "numIters": 1})
    coach = Coach(game, nnet, args)  # builds a second network (pnet) too, as the peer does; not timed

    model = nnet.nnet
    layers = []
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Conv2d):
            layers.append({"name": name, "type": "conv2d", "in": mod.in_channels, "out": mod.out_channels,
                           "kernel": list(mod.kernel_size), "padding": list(mod.padding), "stride": list(mod.stride)})
        elif isinstance(mod, torch.nn.Linear):
            layers.append({"name": name, "type": "linear", "in": mod.in_features, "out": mod.out_features})
        elif isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            layers.append({"name": name, "type": type(mod).__name__, "features": mod.num_features})
    board_x, board_y = game.getBoardSize()
    network = {
        "source": "othello/pytorch/OthelloNNet.py + NNet.py (NNetWrapper), used with connect4.Connect4Game",
        "board": [board_x, board_y], "input_planes": 1, "actions": game.getActionSize(),
        "num_channels": peer_nnet.args["num_channels"], "dropout": peer_nnet.args["dropout"],
        "conv_layers": sum(1 for l in layers if l["type"] == "conv2d"),
        "dense_layers": sum(1 for l in layers if l["type"] == "linear"),
        "parameters": sum(p.numel() for p in model.parameters()),
        "buffers": sum(b.numel() for b in model.buffers()),
        "layers": layers,
        "predict": "batch 1, eval mode (BN running stats, no dropout), torch.no_grad, float32",
    }

    # time spent in the network (nnet.predict wraps the conversion, eval(), the forward and exp/numpy)
    predict = nnet.predict
    spent = {"calls": 0, "seconds": 0.0}

    def timed_predict(board):
        t = time.perf_counter()
        out = predict(board)
        spent["seconds"] += time.perf_counter() - t
        spent["calls"] += 1
        return out

    nnet.predict = timed_predict
    for _ in range(5):  # warm-up (first calls allocate, pick kernels)
        predict(game.getInitBoard())

    per_game = []
    with OutsideLoad() as load:
        start, cpu_start = time.perf_counter(), time.process_time()
        for g in range(games):
            t = time.perf_counter()
            with OutsideLoad() as game_load:
                coach.mcts = MCTS(game, nnet, args)  # reset search tree, as Coach.learn does
                examples = coach.executeEpisode()
            moves = len(examples) // 2  # getSymmetries: 2 examples per move
            per_game.append({"moves": moves, "seconds": time.perf_counter() - t, "leaves": len(coach.mcts.Ps),
                             "outside_load_share": game_load.share})
            print(f"game {g + 1}/{games}: {moves} moves, {per_game[-1]['seconds']:.1f} s, "
                  f"outside load {game_load.share:.0%}", file=sys.stderr, flush=True)
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
    positions = sum(p["moves"] for p in per_game)
    return {
        "peer": "alpha-zero-general Connect4 self-play (Coach.executeEpisode, MCTS.py, PyTorch NNetWrapper)",
        "positions_per_second": positions / seconds,
        "games": games, "positions": positions, "seconds": seconds,
        # this process's CPU seconds (all its threads): with 1 thread, positions per CPU second is what a quiet
        # core would give even while other processes share the machine
        "cpu_seconds": cpu_seconds, "positions_per_cpu_second": positions / cpu_seconds,
        "simulations": simulations, "seed": seed,
        "network_evaluations": spent["calls"], "network_seconds": spent["seconds"],
        "network_share": spent["seconds"] / seconds,
        "evaluations_per_second": spent["calls"] / seconds,
        "per_game": per_game,
        "network": network,
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "numpy": np.__version__,
        "cpu": cpu_model(), "outside_load_share": load.share,
        "thread_env": {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
        "patches": ["np.int = int", "Connect4Game.stringRepresentation uses tobytes (ndarray.tostring removed)",
                    "NNet args.cuda = False"],
    }


def _peer_commit(azg_dir: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", azg_dir, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def peer_selfplay(azg_dir: str = DEFAULT_AZG, games: int = 10, simulations: int = 25, threads: int = 1,
                  seed: int = 0, channels: int | None = None, timeout: float | None = None) -> dict:
    """Play ``games`` self-play games of the peer's Connect Four in a fresh subprocess (the peer on its
    ``sys.path``, torch with ``threads`` threads) and return its JSON record (see the module docstring).
    ``channels`` overrides the peer's ``num_channels`` (default: its own 512)."""
    azg = Path(azg_dir).resolve()
    if not (azg / "Coach.py").is_file() or not (azg / "connect4" / "Connect4Game.py").is_file():
        raise FileNotFoundError(f"no alpha-zero-general checkout at {azg} (git clone {AZG_URL} {azg})")
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    spec = json.dumps({"azg_dir": str(azg), "games": games, "simulations": simulations, "threads": threads,
                       "seed": seed, "channels": channels})
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_worker", spec], env=env,
                          stdout=subprocess.PIPE, stderr=None, text=True, timeout=timeout, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["peer_dir"] = str(azg)
    result["peer_commit"] = _peer_commit(str(azg))
    return result


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--azg-dir", default=DEFAULT_AZG, help="alpha-zero-general checkout (default %(default)s)")
    parser.add_argument("--games", type=int, default=10, help="self-play games (default %(default)s)")
    parser.add_argument("--simulations", type=int, default=25,
                        help="MCTS simulations per move (default %(default)s, the peer's numMCTSSims)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--channels", type=int, default=None,
                        help="override the peer's num_channels (default: its own, 512)")
    parser.add_argument("--json", type=Path, default=None, help="also write the record to this file")
    parser.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._worker is not None:
        spec = json.loads(args._worker)
        print(json.dumps(_worker(**spec)), flush=True)
        return None
    result = peer_selfplay(args.azg_dir, args.games, args.simulations, args.threads, args.seed, args.channels)
    line = json.dumps(result)
    print(line, flush=True)
    if args.json is not None:
        args.json.write_text(line + "\n")
    return result


if __name__ == "__main__":
    main()

"""The AlphaZero training loop and its run folder (5.4 (a)/(b)), with tiny tic-tac-toe budgets:
the files of a run, an exact resume, self-play in worker processes, checkpoints that were damaged or
crafted, and the commands ``tiefnet alphazero train|arena`` and ``tiefnet play``."""
from __future__ import annotations

import io
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tiefnet.checkpoint import read_npz, write_npz
from tiefnet.cli import main
from tiefnet.errors import CheckpointError
from tiefnet.nn import layer_to_config
from tiefnet.rl.alphazero.config import make_config
from tiefnet.rl.alphazero.net import policy_value_net
from tiefnet.rl.alphazero.play import load_agent
from tiefnet.rl.alphazero.run import run
from tiefnet.rl.alphazero.selfplay import SelfPlayConfig
from tiefnet.rl.alphazero.workers import InlineWorkers, ProcessWorkers, Task, split
from tiefnet.rl.games import make_game
from tiefnet.rl.mcts import SearchConfig

TINY = {"game": "tictactoe", "history": 1, "blocks": 1, "filters": 4, "simulations": 8, "parallel_games": 4,
        "games_per_generation": 4, "train_steps": 2, "batch_size": 8, "window": 200, "arena_games": 2,
        "arena_simulations": 4, "random_games": 2, "judge_games": 0, "workers": 0, "generations": 2}
TINY_ARGS = [arg for name, value in TINY.items() if name != "game"
             for arg in ("--" + name.replace("_", "-"), str(value))] + ["--no-progress"]
TIMING = {"selfplay_seconds", "train_seconds", "positions_per_second", "evaluations_per_second", "minutes"}
FILES = ("config.json", "metrics.jsonl", "model.npz", "model.json", "checkpoint.npz", "curves.png", "summary.json")


def tiny(**changes):
    return make_config({**TINY, **changes})


def lines(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def without_timing(entries):
    return [{k: v for k, v in e.items() if k not in TIMING} for e in entries]


def one_error_line(capsys, code, *fragments, exit_code=1):
    captured = capsys.readouterr()
    assert code == exit_code, captured
    assert "Traceback" not in captured.err
    errors = [line for line in captured.err.splitlines() if "error:" in line]
    assert len(errors) == 1, captured.err
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("alphazero") / "run"
    run(tiny(), out, progress=False, log=lambda line: None)
    return out


# --- the run folder --------------------------------------------------------------------------------------
def test_run_writes_every_file(trained):
    for name in FILES:
        assert (trained / name).is_file(), name
    entries = lines(trained)
    assert [e["generation"] for e in entries] == [1, 2]
    assert all(e["games"] == 4 and e["positions"] >= 4 * 5 for e in entries)  # a tic-tac-toe game: 5..9 plies
    assert entries[1]["replay_positions"] == entries[0]["positions"] + entries[1]["positions"]
    for e in entries:
        assert np.isfinite([e["value_loss"], e["policy_loss"], e["elo"]]).all()
        assert 0 <= e["vs_previous_score"] <= 1 and 0 <= e["vs_random_score"] <= 1
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["generations"] == 2 and summary["games"] == 8 and len(summary["elo_by_generation"]) == 3
    assert summary["positions"] == sum(e["positions"] for e in entries)
    assert json.loads((trained / "config.json").read_text())["filters"] == 4
    _, meta = read_npz(trained / "checkpoint.npz")
    assert meta["progress"]["generation"] == 2 and meta["progress"]["metrics_lines"] == 2
    game, net, info = load_agent(trained)
    assert game.name == "tictactoe" and game.history == 1 and info["generation"] == 2
    arrays, _ = read_npz(trained / "model.npz")
    for key, value in net.arrays().items():
        np.testing.assert_array_equal(value, arrays[key])


def test_exact_resume(tmp_path, trained, capsys):
    """1 generation by the command line, then --resume to 2: the model, the checkpoint and the metrics
    lines (but their times) are those of the 2 generations at once."""
    split_run = tmp_path / "split"
    assert main(["alphazero", "train", "tictactoe", *TINY_ARGS, "--generations", "1", "--out", str(split_run)]) == 0
    assert len(lines(split_run)) == 1
    assert main(["alphazero", "train", "--resume", "--generations", "2", "--no-progress", "--out",
                 str(split_run)]) == 0
    assert "alphazero tictactoe: 2 generations, 8 self-play games" in capsys.readouterr().out
    for name in ("model.npz", "checkpoint.npz"):
        a, meta_a = read_npz(trained / name)
        b, meta_b = read_npz(split_run / name)
        assert sorted(a) == sorted(b), name
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}: {key}")
    assert without_timing(lines(split_run)) == without_timing(lines(trained))
    progress_a, progress_b = meta_a["progress"], meta_b["progress"]
    assert {k: v for k, v in progress_a.items() if k != "seconds"} == {k: v for k, v in progress_b.items()
                                                                        if k != "seconds"}


def test_resume_refuses_other_settings(trained, tmp_path, capsys):
    folder = tmp_path / "copy"
    shutil.copytree(trained, folder)
    code = main(["alphazero", "train", "--resume", "--filters", "8", "--generations", "3", "--no-progress",
                 "--out", str(folder)])
    one_error_line(capsys, code, "filters")


def test_self_play_in_two_worker_processes(tmp_path):
    """workers=2: the games of a generation in two spawned processes; the same tasks give the same games
    in this process."""
    out = tmp_path / "workers"
    summary = run(tiny(workers=2, generations=1), out, progress=False, log=lambda line: None)
    assert summary["games"] == 4 and lines(out)[0]["games"] == 4
    game = make_game("tictactoe", history=1)
    net = policy_value_net(game, 1, 4, np.random.default_rng(0))
    arrays = {k: np.asarray(v) for k, v in net.arrays().items()}
    selfplay = SelfPlayConfig(SearchConfig(simulations=6), temperature_moves=2, parallel_games=2)
    tasks = [Task("tictactoe", {"history": 1}, layer_to_config(net), arrays, selfplay, n, (0, 1, 1, i))
             for i, n in enumerate(split(5, 2))]
    workers = ProcessWorkers(2)
    try:
        remote = workers.map(tasks)
    finally:
        workers.close()
    local = InlineWorkers().map(tasks)
    assert [len(records) for records, _ in remote] == [3, 2]
    for (records_r, stats_r), (records_l, _) in zip(remote, local):
        assert stats_r.games == len(records_r)
        for r, l in zip(records_r, records_l):
            assert r.moves == l.moves and r.winner == l.winner
            np.testing.assert_array_equal(r.planes, l.planes)
            np.testing.assert_array_equal(r.pi, l.pi)
            np.testing.assert_array_equal(r.z, l.z)


def test_split():
    assert split(5, 2) == [3, 2] and split(4, 4) == [1, 1, 1, 1] and split(2, 8) == [1, 1] and split(7, 1) == [7]


# --- damaged and crafted checkpoints ---------------------------------------------------------------------
def crafted(meta_change=None, array_change=None):
    def change(arrays, meta):
        if meta_change:
            meta_change(meta)
        if array_change:
            array_change(arrays)
    return change


def set_progress(name, value):
    return crafted(meta_change=lambda meta: meta["progress"].__setitem__(name, value))


def drop_progress(name):
    return crafted(meta_change=lambda meta: meta["progress"].pop(name))


def set_array(prefix, value_of):
    def change(arrays):
        key = next(k for k in sorted(arrays) if k.startswith(prefix))
        arrays[key] = value_of(arrays[key])
    return crafted(array_change=change)


CRAFTED = {
    "generation-negative": (set_progress("generation", -1), "progress.generation"),
    "generation-string": (set_progress("generation", "2"), "progress.generation"),
    "generation-float": (set_progress("generation", 2.0), "progress.generation"),
    "elo-too-short": (set_progress("elo", [0.0, 1.0]), "progress.elo"),
    "elo-not-numbers": (set_progress("elo", [0.0, "x", 1.0]), "progress.elo"),
    "games-negative": (set_progress("games", -4), "progress.games"),
    "seconds-negative": (set_progress("seconds", -1.0), "progress.seconds"),
    "metrics-lines-bool": (set_progress("metrics_lines", True), "progress.metrics_lines"),
    "progress-key-missing": (drop_progress("positions"), "progress must name"),
    "progress-extra-key": (set_progress("extra", 1), "progress must name"),
    "progress-not-a-dict": (crafted(meta_change=lambda meta: meta.__setitem__("progress", [2])), "progress must name"),
    "wrong-format": (crafted(meta_change=lambda meta: meta.__setitem__("format", "x/1")),
                     "not a tiefnet AlphaZero checkpoint"),
    "net-array-shape": (set_array("net.0.W", lambda a: a[:1]), "shape"),
    "net-array-missing": (crafted(array_change=lambda arrays: arrays.pop("net.0.W")), "missing"),
    "previous-array-nan": (set_array("previous.0.W", lambda a: np.full_like(a, np.nan)), "0.W holds NaN"),
    "optimizer-array-missing": (crafted(array_change=lambda arrays: arrays.pop(
        next(k for k in sorted(arrays) if k.startswith("opt.")))), "optimizer"),
    "optimizer-eta": (crafted(meta_change=lambda meta: meta["optimizer"].__setitem__("eta", -1.0)), "eta"),
    "replay-z": (set_array("replay.z", lambda a: np.full_like(a, 1.5)), "replay window"),
    "replay-z-nan": (set_array("replay.z", lambda a: np.full_like(a, np.nan)), "replay window"),
    "replay-planes": (set_array("replay.planes", lambda a: a * 2 + 1), "replay window"),
    "replay-pi-shape": (set_array("replay.pi", lambda a: a[:, :4]), "replay window"),
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_checkpoints_are_refused(trained, tmp_path, name):
    change, fragment = CRAFTED[name]
    folder = tmp_path / "run"
    shutil.copytree(trained, folder)
    arrays, meta = read_npz(folder / "checkpoint.npz")
    change(arrays, meta)
    write_npz(folder / "checkpoint.npz", arrays, meta)
    with pytest.raises(CheckpointError) as error:
        run(tiny(generations=3), folder, progress=False, resume=True, log=lambda line: None)
    message = str(error.value)
    assert fragment in message and "checkpoint.npz" in message and "\n" not in message, message
    assert len(lines(folder)) == 2  # nothing written


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "missing"])
def test_damaged_checkpoint_one_line_from_the_command(trained, tmp_path, capsys, damage):
    folder = tmp_path / "run"
    shutil.copytree(trained, folder)
    path = folder / "checkpoint.npz"
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"\x00" * 100)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.unlink()
    code = main(["alphazero", "train", "--resume", "--generations", "3", "--no-progress", "--out", str(folder)])
    one_error_line(capsys, code)


def test_crafted_progress_one_line_from_the_command(trained, tmp_path, capsys):
    folder = tmp_path / "run"
    shutil.copytree(trained, folder)
    arrays, meta = read_npz(folder / "checkpoint.npz")
    meta["progress"]["elo"] = "1e999"
    write_npz(folder / "checkpoint.npz", arrays, meta)
    code = main(["alphazero", "train", "--resume", "--generations", "3", "--no-progress", "--out", str(folder)])
    one_error_line(capsys, code, "progress.elo")


# --- the commands --------------------------------------------------------------------------------------------
def test_arena_model_against_random(trained, capsys):
    assert main(["alphazero", "arena", str(trained), "random", "--games", "4", "--simulations", "8"]) == 0
    out = capsys.readouterr().out
    assert "tictactoe:" in out and "vs random, 4 games" in out
    assert main(["alphazero", "arena", "random", str(trained), "--games", "3", "--simulations", "8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["game"] == "tictactoe" and result["games"] == 3 and result["a"] == "random"
    assert result["wins"] + result["draws"] + result["losses"] == 3
    assert sum(result["as_first"]) == 2 and sum(result["as_second"]) == 1


def test_arena_random_against_pure_mcts(capsys):
    assert main(["alphazero", "arena", "random", "mcts", "--game", "tictactoe", "--games", "2",
                 "--mcts-simulations", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["games"] == 2 and result["b"] == "pure MCTS (20)"


def test_play_against_the_agent(trained, capsys, monkeypatch):
    """A person who types every cell in turn (taken ones are refused with a hint) until the game ends."""
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(["zz", "a1", "b1", "c1", "a2", "b2", "c2", "a3", "b3",
                                                            "c3"] * 2) + "\n"))
    assert main(["play", "tictactoe", "--model", str(trained), "--simulations", "8"]) == 0
    out = capsys.readouterr().out
    assert "agent plays" in out and "not a cell" in out
    assert any(end in out for end in ("you win", "draw", "the agent wins"))


def test_play_stops_at_end_of_input(trained, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["play", "tictactoe", "--model", str(trained), "--second", "--simulations", "4"]) == 0
    assert "bye" in capsys.readouterr().out


@pytest.mark.parametrize("argv, code, fragment", [
    (["alphazero", "train", "chess", "--out", "{tmp}/x"], 2, "chess"),
    (["alphazero", "train", "tictactoe", "--simulations", "0", "--out", "{tmp}/x"], 1, "simulations"),
    (["alphazero", "arena", "random", "random", "--game", "tictactoe", "--games", "0"], 1, "--games"),
    (["alphazero", "arena", "random", "random"], 1, "--game"),
    (["alphazero", "arena", "{tmp}", "random"], 1, "model.npz"),
    (["alphazero", "arena", "{tmp}/nothing-here", "random"], 1, "not a model folder"),
    (["alphazero", "arena", "random", "mcts", "--game", "go9"], 2, "go9"),
    (["play", "tictactoe", "--model", "{tmp}"], 1, ""),
    (["play", "connect4", "--model", "{trained}"], 1, "not connect4"),
    (["play", "tictactoe", "--model", "{trained}", "--simulations", "0"], 1, "--simulations"),
], ids=["unknown-game", "simulations-0", "games-0", "no-game", "not-a-model-folder", "no-folder",
        "unknown-arena-game", "play-not-a-model", "play-other-game", "play-simulations-0"])
def test_bad_inputs_one_error_line(trained, tmp_path, capsys, argv, code, fragment):
    (tmp_path / "notes.txt").write_text("not a model")
    argv = [a.format(tmp=tmp_path, trained=trained) for a in argv]
    one_error_line(capsys, main(argv), fragment, exit_code=code)


def test_config_checks():
    with pytest.raises(Exception, match="window"):
        tiny(window=0)
    assert replace(tiny(), generations=3).generations == 3


def test_playout_cap_randomisation_and_q_targets():
    """fast_simulations: only the full searches are recorded; the value target mixes z and q."""
    from tiefnet.rl.alphazero.learner import ReplayWindow
    from tiefnet.rl.alphazero.net import Evaluator
    from tiefnet.rl.alphazero.selfplay import self_play
    game = make_game("tictactoe", history=1)
    evaluate = Evaluator(game, policy_value_net(game, 1, 4, np.random.default_rng(0)))
    config = SelfPlayConfig(SearchConfig(simulations=16), temperature_moves=2, parallel_games=4,
                            fast_simulations=4, full_search_share=0.3)
    records = self_play(game, evaluate, 8, config, np.random.default_rng(1))
    recorded, moves = sum(len(r.z) for r in records), sum(r.length for r in records)
    assert 0 < recorded < moves and all(len(r.planes) == len(r.pi) == len(r.q) == len(r.z) for r in records)
    assert all(np.isin(r.z, (-1, 0, 1)).all() and (np.abs(r.q) <= 1).all() for r in records)
    r = records[0]
    np.testing.assert_allclose(r.value_target(0.5), (r.z + r.q) / 2, rtol=1e-6)
    np.testing.assert_array_equal(r.value_target(0.0), r.z)
    replay = ReplayWindow(game, 1000)
    replay.add(records, 0.5)
    np.testing.assert_allclose(replay.z[:len(r.z)], (r.z + r.q) / 2, rtol=1e-6)
    full = self_play(game, evaluate, 4, replace(config, fast_simulations=0), np.random.default_rng(1))
    assert all(len(r.z) == r.length for r in full)  # without it every move is recorded
    with pytest.raises(Exception, match="fast_simulations"):
        SelfPlayConfig(SearchConfig(simulations=16), fast_simulations=17)
    with pytest.raises(Exception, match="fast_simulations"):
        make_config({"game": "tictactoe", "simulations": 10, "fast_simulations": 11})


def test_ctrl_c_reaches_the_learner_while_workers_play():
    """A SIGINT during self-play raises KeyboardInterrupt in the learner within seconds, not after the
    generation's games (the workers ignore it and are terminated by close)."""
    import os
    import signal
    import threading
    import time
    game = make_game("tictactoe", history=1)
    net = policy_value_net(game, 1, 4, np.random.default_rng(0))
    arrays = {k: np.asarray(v) for k, v in net.arrays().items()}
    long_games = Task("tictactoe", {"history": 1}, layer_to_config(net), arrays,
                      SelfPlayConfig(SearchConfig(simulations=400), parallel_games=1), 100_000, (0, 1, 1, 0))
    workers = ProcessWorkers(1)
    try:
        tick = time.perf_counter()
        timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
        with pytest.raises(KeyboardInterrupt):
            timer.start()
            workers.map([long_games])
        assert time.perf_counter() - tick < 10
    finally:
        timer.cancel()
        workers.close()

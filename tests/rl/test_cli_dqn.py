"""``tiefnet dqn train|play`` with tiny budgets: the run folder, resuming bit-identically, the GIF,
and one-line errors for bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tiefnet.checkpoint import read_npz
from tiefnet.cli import main

TINY = ["--steps", "400", "--learning-starts", "100", "--batch-size", "16", "--hidden", "16",
        "--check-every", "200", "--check-episodes", "2", "--eval-episodes", "3", "--log-every", "100",
        "--checkpoint-every", "150", "--target-every", "50", "--memory", "300", "--no-progress"]


def one_line_error(capsys, code: int, *fragments: str) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 1
    assert "Traceback" not in captured.err
    assert len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def options(tiny: list[str], **changes) -> list[str]:
    args = list(tiny)
    for name, value in changes.items():
        args[args.index("--" + name.replace("_", "-")) + 1] = str(value)
    return args


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dqn")
    assert main(["dqn", "train", "CartPole-v1", *TINY, "--out", str(out)]) == 0
    return out


def test_train_writes_the_run_folder(trained, capsys):
    for name in ("config.json", "metrics.jsonl", "model.npz", "model.json", "checkpoint.npz", "returns.png",
                 "summary.json"):
        assert (trained / name).is_file(), name
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["steps"] == 400 and summary["eval_episodes"] == 3
    assert summary["eval_mean_return"] == pytest.approx(np.mean(summary["eval_returns"]))
    assert json.loads((trained / "config.json").read_text())["steps"] == 400


def test_metrics_lines(trained):
    entries = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    episodes = [e for e in entries if "return" in e]
    losses = [e for e in entries if "loss" in e]
    checks = [e for e in entries if "check_mean_return" in e]
    assert [e["episode"] for e in episodes] == list(range(1, len(episodes) + 1))
    assert set(episodes[0]) == {"step", "episode", "return", "length", "epsilon"}
    assert all(e["return"] == e["length"] for e in episodes)  # CartPole: reward 1 per step
    assert sum(e["length"] for e in episodes) <= 400
    assert [e["step"] for e in losses] == [200, 300, 400]  # learning starts after step 100
    assert [e["step"] for e in checks] == [200, 400]
    assert episodes[0]["epsilon"] > episodes[-1]["epsilon"]


@pytest.mark.parametrize("first", [300, 250])
def test_resume_continues_bit_identically(tmp_path, capsys, first):
    """``first`` steps, then --resume to 400 (a checkpoint in mid-episode; at 250 also between two
    loss lines), equals 400 steps at once."""
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert main(["dqn", "train", *TINY, "--out", str(whole)]) == 0
    assert main(["dqn", "train", *options(TINY, steps=first), "--out", str(split)]) == 0
    assert main(["dqn", "train", "--resume", "--steps", "400", "--no-progress", "--out", str(split)]) == 0
    a, meta_a = read_npz(whole / "checkpoint.npz")
    b, meta_b = read_npz(split / "checkpoint.npz")
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert meta_a["rng"] == meta_b["rng"]
    assert {k: v for k, v in meta_a["progress"].items() if k != "seconds"} == \
        {k: v for k, v in meta_b["progress"].items() if k != "seconds"}
    assert (whole / "metrics.jsonl").read_text() == (split / "metrics.jsonl").read_text()
    summary_a, summary_b = (json.loads((d / "summary.json").read_text()) for d in (whole, split))
    assert summary_a["eval_returns"] == summary_b["eval_returns"]


def test_resume_refuses_changed_settings(trained, capsys):
    code = main(["dqn", "train", "--resume", "--eta", "0.5", "--out", str(trained), "--no-progress"])
    one_line_error(capsys, code, "--eta", "other settings")


def test_resume_needs_a_checkpoint(tmp_path, capsys):
    one_line_error(capsys, main(["dqn", "train", "--resume", "--out", str(tmp_path), "--no-progress"]),
                   "no checkpoint.npz")
    one_line_error(capsys, main(["dqn", "train", "--resume", "--no-progress"]), "--resume needs --out")


def test_play_prints_returns_and_writes_a_gif(trained, tmp_path, capsys):
    gif = tmp_path / "play.gif"
    assert main(["dqn", "play", "--model", str(trained), "--episodes", "2", "--gif", str(gif)]) == 0
    lines = capsys.readouterr().out.splitlines()
    returns = [float(line.split("return ")[1]) for line in lines if line.startswith("episode ")]
    assert len(returns) == 2 and all(r >= 1 for r in returns)
    with Image.open(gif) as image:
        assert image.n_frames >= 2
        assert max(image.size) <= 320


@pytest.mark.parametrize("argv, fragments", [
    (["dqn", "train", "NoSuchEnv-v0"], ["unknown environment", "NoSuchEnv-v0"]),
    (["dqn", "train", "Pendulum-v1"], ["discrete action space"]),
    (["dqn", "train", "--steps", "0"], ["steps=0"]),
    (["dqn", "train", "--optimizer", "sgd"], ["optimizer='sgd'"]),
    (["dqn", "train", "--gamma", "2"], ["gamma=2.0"]),
])
def test_bad_input_is_one_line(tmp_path, capsys, argv, fragments):
    one_line_error(capsys, main([*argv, "--out", str(tmp_path / "run"), "--no-progress"]), *fragments)


def test_play_errors_are_one_line(tmp_path, capsys):
    one_line_error(capsys, main(["dqn", "play", "--model", str(tmp_path / "none")]), "no such model folder")


def test_play_needs_a_dqn_model(tmp_path, capsys):
    from tiefnet.checkpoint import save_model
    from tiefnet.nn import Dense

    save_model(tmp_path, Dense(2, 2, rng=np.random.default_rng(0)))
    one_line_error(capsys, main(["dqn", "play", "--model", str(tmp_path)]), "not a DQN model")


def test_atari_smoke(tmp_path, capsys):
    """ALE/Pong-v5: frames phi (4, 84, 84) uint8, the frame-sharing replay memory, the Nature CNN;
    a few gradient steps on a tiny budget, then play one greedy step's worth into the run folder."""
    pytest.importorskip("ale_py")
    out = tmp_path / "pong"
    code = main(["dqn", "train", "ALE/Pong-v5", "--steps", "300", "--learning-starts", "260", "--batch-size", "4",
                 "--memory", "400", "--train-every", "4", "--check-every", "0", "--eval-episodes", "0",
                 "--log-every", "100", "--no-progress", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 300 and summary["eval_mean_return"] is None
    arrays, _ = read_npz(out / "checkpoint.npz")
    assert arrays["q.0.W"].shape[:2] == (32, 4)  # conv 8x8/4, 32 filters on 4 stacked frames
    entries = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in entries if "loss" in e] == [300]


def test_dqn_env_is_short_for_dqn_train(tmp_path, capsys):
    """The issue's form ``tiefnet dqn ENV --out DIR`` trains like ``tiefnet dqn train ENV``."""
    out = tmp_path / "short"
    assert main(["dqn", "CartPole-v1", *options(TINY, steps=150, check_every=0, eval_episodes=1),
                 "--out", str(out)]) == 0
    assert "CartPole-v1: 150 steps" in capsys.readouterr().out
    assert json.loads((out / "summary.json").read_text())["steps"] == 150

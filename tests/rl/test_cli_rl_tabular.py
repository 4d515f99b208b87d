"""``tiefnet gridworld`` and ``tiefnet qlearn``: output, JSON, run folders and one-line errors."""
from __future__ import annotations

import json

import pytest

from tiefnet.cli import main

LECTURE_ROWS = [["3", "→", "→", "→", "E+1"], ["2", "↑", "■", "↑", "E-1"], ["1", "↑", "←", "←", "←"]]


def _one_line_error(capsys, code: int, fragment: str) -> None:
    err = capsys.readouterr().err.strip()
    assert code != 0 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert fragment in err, err


@pytest.mark.parametrize("method", ["value", "policy", "modified"])
def test_gridworld_prints_U_and_the_lecture_policy(capsys, method):
    assert main(["gridworld", "--method", method]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert ("converged" in lines[0] or "fixed point reached" in lines[0]) and "NOT" not in lines[0]
    assert "n/a (gamma = 1)" in lines[0]  # the lecture's bound needs gamma < 1
    U_rows = [line.split() for line in lines[lines.index("U:") + 1:lines.index("U:") + 4]]
    assert U_rows[2][:2] == ["1", "0.705"] and U_rows[0][3] == "0.918"
    policy = lines.index("policy:")
    assert [line.split() for line in lines[policy + 1:policy + 4]] == LECTURE_ROWS


def test_gridworld_json(capsys):
    assert main(["gridworld", "--json", "--gamma", "0.9", "--method", "modified", "--k", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["gamma"] == 0.9 and result["converged"] and result["error_bound"] < 1e-6
    assert result["iterations"] >= 1 and result["sweeps"] >= result["iterations"]
    U = dict(zip(map(tuple, result["cells"]), result["U"]))
    assert U[(4, 3)] == 1.0 and 0 < U[(1, 1)] < U[(3, 3)] < 1
    assert len(result["policy"]) == len(result["cells"]) == 11


def test_gridworld_json_gamma_one_and_a_map(capsys, tmp_path):
    path = tmp_path / "corridor.txt"
    path.write_text("S . . +1\n")
    assert main(["gridworld", "--map", str(path), "--reward", "-0.1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["policy"] == ["→", "→", "→", "E+1"] and result["start"] == [1, 1]
    assert result["U"][2] == pytest.approx(-0.1 + 0.8 * 1.0 + 0.2 * result["U"][2])  # the Bellman equation


def test_gridworld_sweep_limit_is_reported(capsys):
    assert main(["gridworld", "--reward", "0.5", "--max-sweeps", "20"]) == 0
    assert "NOT converged" in capsys.readouterr().out


@pytest.mark.parametrize("argv, fragment", [
    (["gridworld", "--gamma", "0"], "gamma"),
    (["gridworld", "--map", "/no/such/map.txt"], "cannot read"),
    (["gridworld", "--method", "policy", "--reward", "0.5"], "singular"),
    (["qlearn", "NoSuchEnv-v0"], "doesn't exist"),
    (["qlearn", "CartPole-v1"], "Discrete"),
    (["qlearn", "--steps", "0"], "steps"),
])
def test_errors_are_one_line(capsys, argv, fragment):
    _one_line_error(capsys, main(argv), fragment)


def test_usage_error(capsys):
    assert main(["gridworld", "--method", "sarsa"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_qlearn_gridworld(capsys, tmp_path):
    out = tmp_path / "run"
    assert main(["qlearn", "--steps", "60000", "--seed", "1", "--eval-episodes", "200", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "max_s |max_a Q(s,a) - U(s)|" in text and "the policies agree" in text and "mean return" in text
    assert {"Q.npz", "summary.json", "config.json"} <= {p.name for p in out.iterdir()}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["policies_agree"] and summary["max_error"] < 0.15 and summary["steps"] == 60000


def test_qlearn_json_on_frozen_lake(capsys):
    assert main(["qlearn", "FrozenLake-v1", "--steps", "3000", "--eval-episodes", "20", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["env"] == "FrozenLake-v1" and summary["gamma"] == 0.99 and len(summary["policy"]) == 16
    assert "max_error" not in summary and 0.0 <= summary["eval_mean_return"] <= 1.0
    assert summary["policy_picture"].splitlines()[1].split()[1] == "H"  # the lake's hole at row 2, column 2


def test_qlearn_without_exploring_starts(capsys):
    assert main(["qlearn", "--steps", "2000", "--no-exploring-starts", "--eval-episodes", "5", "--json",
                 "--eta-schedule", "constant", "--eta", "0.3"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2000 and len(summary["error_curve"]) == 2

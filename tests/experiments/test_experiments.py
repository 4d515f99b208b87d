"""The lecture experiments (``tiefnet experiment NAME``): smoke tests with the --quick budget,
the lecture's numbers where they are cheap (2.1 truth tables, 2.7.1 slow learning), and the CLI."""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tiefnet.backend import thread_limit
from tiefnet.experiments import _NAMES, EXPERIMENTS

# the keys each experiment's JSON must hold, beside "settings"
KEYS = {
    "perceptron": ["festival", "nand", "half_adder", "half_adder_correct"],
    "slow_learning": ["runs", "lecture_scenario_1_quadratic"],
    "overfitting": ["runs", "nielsen_test_accuracy"],
    "full_data": ["train_accuracy", "test_accuracy", "gap", "final_train_accuracy", "final_test_accuracy"],
    "l1_vs_l2": ["runs"],
    "init": ["runs"],
    "dropout": ["runs", "test_accuracy_gain"],
    "expansion": ["runs", "test_accuracy_gain_same_steps"],
    "conv_features": ["network", "test_accuracy", "digit", "filters", "feature_map_shapes", "filter_change_std"],
    "hallo": ["probabilities", "continuation", "steps", "final_loss"],
    "vanishing_gradients": ["runs", "distance_from_end", "lstm_over_rnn_far_end"],
}


def test_every_experiment_is_registered_with_a_description():
    assert sorted(EXPERIMENTS) == sorted(name.replace("_", "-") for name in _NAMES)
    assert all(isinstance(module.DESCRIPTION, str) and module.DESCRIPTION for module in EXPERIMENTS.values())


@pytest.mark.parametrize("name", _NAMES)
def test_quick_run_writes_figure_and_numbers(name, tmp_path, capsys):
    module = importlib.import_module(f"tiefnet.experiments.{name}")
    with thread_limit(1):  # as `tiefnet experiment` runs them: a second BLAS thread slows small GEMMs
        result = module.run(tmp_path, quick=True, progress=False)
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / f"{name}.json").read_text())
    assert saved == json.loads(json.dumps(result))  # the file holds what run() returned
    for key in ["settings", *KEYS[name]]:
        assert key in saved, key
    assert capsys.readouterr().out.strip()  # a human summary


@pytest.mark.parametrize("name", ["overfitting", "l1_vs_l2", "dropout"])
def test_epochs_override_the_default(name, tmp_path):
    module = importlib.import_module(f"tiefnet.experiments.{name}")
    result = module.run(tmp_path, epochs=3, quick=True, progress=False)
    assert result["settings"]["epochs"] == 3
    assert all(len(run["test_accuracy"]) == 3 for run in result["runs"].values())


def test_perceptron_tables_match_the_lecture(tmp_path):
    from tiefnet.experiments import perceptron

    result = perceptron.run(tmp_path)
    assert [row["out"] for row in result["nand"]] == [1, 1, 1, 0]  # the lecture's NAND table
    assert result["half_adder_correct"] is True
    for row in result["half_adder"]:
        assert row["sum"] + 2 * row["carry"] == row["x1"] + row["x2"]
    for row in result["festival"]:
        assert row["scenario 1"] == row["x1"]  # threshold 5: only the weather counts
        assert row["scenario 2"] == int(row["x1"] or (row["x2"] and row["x3"]))  # threshold 3


def test_slow_learning_reproduces_the_lectures_numbers(tmp_path):
    from tiefnet.experiments import slow_learning

    result = slow_learning.run(tmp_path)  # the real 300 iterations: milliseconds
    quadratic = result["runs"]["scenario 1, quadratic"]
    assert len(quadratic["trajectory_a"]) == 301
    assert quadratic["trajectory_a"][0] == pytest.approx(0.817, abs=1e-3)
    assert quadratic["w"] == pytest.approx(-1.28, abs=0.01)
    assert quadratic["b"] == pytest.approx(-0.98, abs=0.01)
    assert quadratic["a"] == pytest.approx(0.09, abs=0.005)
    # quadratic: the saturated start (a = 0.98) learns slower; cross-entropy: it does not
    runs = result["runs"]
    assert runs["scenario 2, quadratic"]["a"] > runs["scenario 1, quadratic"]["a"]
    assert runs["scenario 2, cross-entropy"]["a"] < runs["scenario 1, quadratic"]["a"]
    after_30 = {name: run["trajectory_a"][30] for name, run in runs.items()}
    assert after_30["scenario 2, cross-entropy"] < 0.5 < after_30["scenario 2, quadratic"]


def test_conv_features_shows_20_filters_and_the_digits_maps(tmp_path, capsys):
    from tiefnet.experiments import conv_features

    with thread_limit(1):
        result = conv_features.run(tmp_path, epochs=1, quick=True, progress=False)
    assert result["settings"]["epochs"] == 1 and len(result["test_accuracy"]) == 1
    assert len(result["filters"]) == 20 and all(len(f) == 5 and len(f[0]) == 5 for f in result["filters"])
    assert result["feature_map_shapes"] == {"conv": [20, 24, 24], "pool": [20, 12, 12]}
    assert result["digit"]["label"] == 7  # test image 0
    assert 0 < result["filter_change_std"] < result["filter_std"]  # a short training: the start still shows


def _tiefnet() -> list[str]:
    exe = Path(sys.executable).parent / "tiefnet"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "tiefnet.cli"]


def test_cli_runs_an_experiment(tmp_path):
    result = subprocess.run([*_tiefnet(), "experiment", "perceptron", "--out", str(tmp_path), "--no-progress"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "perceptron.png").is_file() and (tmp_path / "perceptron.json").is_file()
    assert "half adder correct: True" in result.stdout


def test_cli_rejects_an_unknown_experiment_in_one_line(tmp_path):
    result = subprocess.run([*_tiefnet(), "experiment", "nope", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "nope" in result.stderr

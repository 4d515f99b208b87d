"""The lecture's strategy (tiefnet.hpsearch.lecture): its phases' decisions on made-up runs, and one
real run of every phase on tiny problems that writes strategy.json, phases.png and a ready command."""
import json
import math

import pytest

from tiefnet.hpsearch import lecture
from tiefnet.hpsearch.lecture import falling, run_strategy


def test_falling():
    assert falling([3.0, 2.0, 1.5, 1.4])
    assert not falling([3.0, 2.0, 2.5, 1.0])  # oscillates
    assert not falling([3.0, 3.5])  # rises
    assert not falling([3.0, math.nan])
    assert not falling([3.0])


class Made:
    """Runs whose results follow made-up laws: what learns, where eta overshoots, which lambda is best."""

    def __init__(self, threshold=3.0, best_lambda=10.0):
        self.threshold, self.best_lambda, self.configs = threshold, best_lambda, []

    def __call__(self, config, out):
        self.configs.append(config)
        if config.digits:  # phase 1: 0.001 learns nothing, 100 diverges
            return {"validation_accuracy": 0.5 if config.eta < 0.01 else 0.99, "diverged": config.eta >= 100,
                    "train_costs": [], "epochs": [], "summary": {}}
        if config.epochs == lecture.THRESHOLD["epochs"]:  # phase 2
            costs = [1.0, 0.8, 0.6, 0.5] if config.eta < self.threshold else [1.0, 1.2, 0.9, 1.1]
            return {"validation_accuracy": 0.9, "diverged": False, "train_costs": costs, "epochs": [], "summary": {}}
        if config.epochs == lecture.LAMBDA["epochs"]:  # phase 3: best at best_lambda
            gap = abs(math.log10(max(config.lmbda, 1e-4)) - math.log10(self.best_lambda))
            return {"validation_accuracy": 0.97 - 0.001 * gap, "diverged": False, "train_costs": [], "epochs": [],
                    "summary": {}}
        epochs = [{"epoch": 1, "train_accuracy": 0.98, "validation_accuracy": 0.975}]
        return {"validation_accuracy": 0.975, "diverged": False, "train_costs": [], "epochs": epochs,
                "summary": {"test_accuracy": 0.972}}


@pytest.mark.parametrize("threshold, best_lambda, found, lmbda", [
    (3.0, 10.0, 4.0, 10.0),  # 0.01, 0.1, 1 fall, 10 overshoots; then 2 falls, 4 overshoots
    (0.5, 0.1, 0.8, 0.1),  # 0.01, 0.1 fall, 1 overshoots; 0.2, 0.4 fall, 0.8 overshoots
    (1e9, 1.0, 1000.0, 1.0),  # nothing overshoots up to 1000 (THRESHOLD_MAX)
    (0.005, 1.0, 0.005, 1.0),  # already the first that learns overshoots: halved down to 0.0025, which falls
])
def test_the_phases_decide_as_the_lecture_says(tmp_path, monkeypatch, threshold, best_lambda, found, lmbda):
    made = Made(threshold, best_lambda)
    monkeypatch.setattr(lecture, "_run", made)
    monkeypatch.setattr("tiefnet.hpsearch.plots.phases_figure", lambda record, path: path)
    record = run_strategy([], tmp_path, log=lambda line: None)
    phases = {p["phase"]: p for p in record["phases"]}
    assert phases[1]["eta_start"] == 0.01  # the smallest eta that learns
    assert all(r["falling"] == (r["eta"] < threshold) for r in phases[2]["runs"])
    assert phases[2]["threshold"] == pytest.approx(found)
    assert record["eta"] == pytest.approx(found / 2)  # half the overshooting threshold
    assert record["lmbda"] == lmbda and 0.0 in [r["lmbda"] for r in phases[3]["runs"]]
    final = made.configs[-1]
    assert (final.early_stop, final.patience, final.epochs) == (10, 5, 60)
    assert final.eta == record["eta"] and final.lmbda == lmbda
    assert "--early-stop 10" in record["command"] and "--patience 5" in record["command"]
    assert json.loads((tmp_path / "strategy.json").read_text())["eta"] == record["eta"]


def test_every_phase_runs_for_real(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(lecture, "SIGNAL", {**lecture.SIGNAL, "train_size": 1000, "epochs": 1})
    monkeypatch.setattr(lecture, "SIGNAL_ETAS", (0.001, 1.0))
    monkeypatch.setattr(lecture, "THRESHOLD", {"train_size": 500, "epochs": 3})
    monkeypatch.setattr(lecture, "LAMBDA", {"epochs": 2})
    monkeypatch.setattr(lecture, "FINAL", {"epochs": 3, "early_stop": 10, "patience": 5})
    from tiefnet.cli import main

    assert main(["hpsearch", "--strategy", "lecture", "--fixed", "hidden=10", "train_size=600",
                 "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    for phase in ("phase 1", "phase 2", "phase 3", "phase 4", "train it again with:\n  tiefnet mnist"):
        assert phase in printed
    record = json.loads((tmp_path / "strategy.json").read_text())
    assert [p["phase"] for p in record["phases"]] == [1, 2, 3, 4]
    assert (tmp_path / "phases.png").stat().st_size > 10_000
    assert (tmp_path / "phase4-final" / "model.npz").is_file()
    assert record["command"].startswith("tiefnet mnist --hidden 10 --cost cross-entropy")

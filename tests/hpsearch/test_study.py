"""Searches as Optuna studies (tiefnet.hpsearch.study) on tiny MNIST trials: a seeded search repeats
itself, pruning saves epochs, duplicates and diverged runs cost nothing, any trainer is followed
through its metrics.jsonl, and a worker killed mid-trial leaves its trial failed and retried."""
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest

from tiefnet.errors import ConfigError, TrainingDiverged
from tiefnet.hpsearch import Search, build_space, run_search, trainer
from tiefnet.hpsearch.study import PerTrialSeed, open_study
from tiefnet.hpsearch.trainers import Trainer

TINY = ["epochs=3", "train_size=300", "cost=cross-entropy", "init=scaled"]
SPACE = ["eta=log:0.01..10", "hidden=int:5..20"]


def search(tmp_path, trials=8, **options):
    mnist = trainer("mnist")
    space = build_space(mnist.config_class(), options.pop("space", SPACE), options.pop("fixed", TINY))
    options = {"storage": "memory", "startup": 3, "warmup": 1, **options}
    return Search(mnist, space, tmp_path, trials=trials, **options)


def trials_of(study):
    return [(t.number, t.state.name, t.params, t.value) for t in study.get_trials(deepcopy=False)]


def test_a_seeded_search_repeats_itself(tmp_path):
    first = run_search(search(tmp_path / "a", seed=7), log=lambda line: None)
    second = run_search(search(tmp_path / "b", seed=7), log=lambda line: None)
    assert trials_of(first) == trials_of(second)
    assert first.best_trial.params == second.best_trial.params and first.best_value == second.best_value
    other = run_search(search(tmp_path / "c", seed=8, trials=3), log=lambda line: None)
    assert trials_of(other)[0][2] != trials_of(first)[0][2]


def test_the_trials_are_runs_with_the_sampled_settings(tmp_path):
    study = run_search(search(tmp_path, trials=4, seed=1, pruner="none"), log=lambda line: None)
    for trial in study.trials:
        folder = tmp_path / "trials" / f"{trial.number:05d}"
        assert trial.user_attrs["folder"] == str(folder)
        config = (folder / "config.json").read_text()
        assert f'"hidden": "{trial.params["hidden"]}"' in config and '"epochs": 3' in config
        assert trial.user_attrs["epochs"] == 3
        assert trial.intermediate_values.keys() == {1, 2, 3}  # the epochs, as metrics.jsonl numbers them
        assert trial.value == max(trial.intermediate_values.values())  # the best validation accuracy
        assert 0 <= trial.user_attrs["test_accuracy"] <= 1


def test_pruning_saves_epochs_of_the_same_trials(tmp_path):
    """With the random sampler the same seed proposes the same settings with or without pruning."""
    common = dict(trials=10, seed=3, sampler="random", fixed=["epochs=4", "train_size=300"])
    pruned = run_search(search(tmp_path / "p", pruner="median", **common), log=lambda line: None)
    full = run_search(search(tmp_path / "f", pruner="none", **common), log=lambda line: None)
    assert [t.params for t in pruned.trials] == [t.params for t in full.trials]
    epochs = [sum(t.user_attrs["epochs"] for t in s.trials) for s in (pruned, full)]
    assert epochs[1] == 40 and epochs[0] < epochs[1]
    assert any(t.state.name == "PRUNED" for t in pruned.trials)
    assert pruned.best_trial.params == full.best_trial.params  # the pruner spared the best trial


def test_per_trial_seeds_differ_by_trial_and_repeat_by_seed():
    class Frozen:
        def __init__(self, number):
            self.number = number

    def proposed(seed, number):
        sampler = PerTrialSeed(lambda s: optuna.samplers.RandomSampler(seed=s), seed)
        sampler.before_trial(None, Frozen(number))
        distribution = optuna.distributions.FloatDistribution(0, 1)
        return sampler.sample_independent(None, Frozen(number), "x", distribution)

    assert proposed(5, 0) == proposed(5, 0)
    assert proposed(5, 0) != proposed(5, 1)  # two workers with one seed: the storage numbers their trials apart
    assert proposed(5, 0) != proposed(6, 0)


def test_duplicates_are_pruned_without_training(tmp_path):
    study = run_search(search(tmp_path, trials=6, seed=2, sampler="random", space=["hidden=choice:5,6"]),
                       log=lambda line: None)
    duplicates = [t for t in study.trials if "duplicate_of" in t.user_attrs]
    assert duplicates and all(t.state.name == "PRUNED" and t.user_attrs["epochs"] == 0 for t in duplicates)
    done = [t.params["hidden"] for t in study.trials if "duplicate_of" not in t.user_attrs]
    assert sorted(done) == ["5", "6"]  # hidden is a text setting
    assert not (tmp_path / "trials" / f"{duplicates[0].number:05d}").exists()


def test_a_diverged_run_is_a_pruned_trial(tmp_path, monkeypatch):
    def diverges(self, config, out):
        raise TrainingDiverged("the cost is NaN")

    monkeypatch.setattr(Trainer, "run", diverges)
    study = run_search(search(tmp_path, trials=2, seed=1), log=lambda line: None)
    assert [t.state.name for t in study.trials] == ["PRUNED", "PRUNED"]
    assert "NaN" in study.trials[0].user_attrs["diverged"]


def test_any_trainer_is_followed_through_its_metrics(tmp_path):
    charrnn = trainer("charrnn")
    space = build_space(charrnn.config_class(), ["eta=log:1e-3..1e-2"],
                        ["steps=4", "eval_every=2", "hidden=8", "embed=4", "seq_length=8", "batch_size=4",
                         "sample_length=5"])
    study = run_search(Search(charrnn, space, tmp_path, trials=2, storage="memory", seed=1), log=lambda line: None)
    assert study.direction.name == "MINIMIZE"
    for t in study.trials:
        # reported at evaluations 1 and 2 (its steps 2 and 4): --warmup counts evaluations for every trainer
        assert t.state.name == "COMPLETE" and set(t.intermediate_values) == {1, 2}
        assert t.value == min(t.intermediate_values.values())


def test_qlearning_has_a_final_objective_only(tmp_path):
    qlearn = trainer("qlearn")
    space = build_space(qlearn.config_class(), ["epsilon=float:0.05..0.3"], ["steps=2000", "eval_episodes=5"])
    study = run_search(Search(qlearn, space, tmp_path, trials=2, storage="memory", seed=1), log=lambda line: None)
    assert all(t.state.name == "COMPLETE" and t.value is not None for t in study.trials)


def test_the_study_continues_in_its_sqlite_file(tmp_path):
    run_search(search(tmp_path, trials=3, storage=None, seed=4), log=lambda line: None)
    assert (tmp_path / "study.db").is_file()
    study = run_search(search(tmp_path, trials=5, storage=None, seed=4), log=lambda line: None)
    assert len(study.trials) == 5
    lines = []
    run_search(search(tmp_path, trials=5, storage=None, seed=4), log=lines.append)
    assert "already holds 5 finished trials" in lines[0]


def test_options_are_checked():
    with pytest.raises(ConfigError, match="--sampler"):
        search(None, sampler="grid")
    with pytest.raises(ConfigError, match="--pruner"):
        search(None, pruner="always")
    with pytest.raises(ConfigError, match="--trials -1"):
        search(None, trials=-1)


def test_an_unknown_study_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no such study"):
        open_study(search(tmp_path, storage=f"sqlite:///{tmp_path / 'x.db'}", study="nothing"), create=False)


WORKER = """
import sys
from pathlib import Path
from tiefnet.hpsearch import Search, build_space, run_search, trainer
mnist = trainer("mnist")
space = build_space(mnist.config_class(), ["eta=log:0.1..10"], ["epochs=200", "train_size=2000"])
run_search(Search(mnist, space, Path(sys.argv[2]), trials=1, storage=sys.argv[1], study=sys.argv[3], heartbeat=1))
"""


def kill_mid_trial(url, out, name):
    """A worker process SIGKILLed while its trial runs; the study afterwards."""
    worker = subprocess.Popen([sys.executable, "-c", WORKER, url, str(out), name], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until its trial has trained an epoch
            if (out / "trials" / "00000" / "metrics.jsonl").is_file() and \
                    (out / "trials" / "00000" / "metrics.jsonl").stat().st_size:
                break
            assert worker.poll() is None, "the worker ended before it was killed"
            time.sleep(0.2)
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.wait()
    return optuna.load_study(study_name=name, storage=url)


def check_killed_trial_is_failed_and_retried(url, tmp_path, name="s"):
    study = kill_mid_trial(url, tmp_path / "killed", name)
    assert [t.state.name for t in study.trials] == ["RUNNING"]  # nobody has noticed yet
    # Optuna fails a trial whose last heartbeat is more than the grace period (twice the heartbeat of 1 s) old,
    # in the database's clock: SQLite's CURRENT_TIMESTAMP has whole seconds, so 2.5 s can read as 2 (not stale)
    time.sleep(3.5)
    mnist = trainer("mnist")
    space = build_space(mnist.config_class(), ["eta=log:0.1..10"], ["epochs=200", "train_size=2000"])
    again = Search(mnist, space, tmp_path / "next", trials=1, storage=url, study=name, heartbeat=1)
    study = open_study(again)
    optuna.storages.fail_stale_trials(study)
    trials = study.get_trials()
    assert trials[0].state.name == "FAIL"
    assert trials[1].state.name == "WAITING" and trials[1].params == trials[0].params  # run again by the next
    assert trials[1].system_attrs["failed_trial"] == 0
    quick = build_space(mnist.config_class(), ["eta=log:0.1..10"], ["epochs=2", "train_size=300"])
    study = run_search(Search(mnist, quick, tmp_path / "next", trials=1, storage=url, study=name, heartbeat=1),
                       log=lambda line: None)  # the study goes on: the next worker runs the retried trial
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"] and trials[1].params == trials[0].params


def test_a_killed_worker_leaves_its_trial_failed_and_retried_sqlite(tmp_path):
    check_killed_trial_is_failed_and_retried(f"sqlite:///{tmp_path / 'study.db'}", tmp_path)


def test_a_trial_interrupted_by_ctrl_c_is_run_again_on_resume(tmp_path, monkeypatch):
    """Ctrl-C fails the running trial (Optuna's rule); the next run_search trains its settings again."""
    import tiefnet.vision.mnist as mnist

    real_run, calls = mnist.run, []

    def interrupted_once(config, out, **kwargs):
        calls.append(config.eta)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run(config, out, **kwargs)

    monkeypatch.setattr(mnist, "run", interrupted_once)
    first = search(tmp_path, trials=3, storage=None, seed=4)
    with pytest.raises(KeyboardInterrupt):
        run_search(first, log=lambda line: None)
    study = run_search(search(tmp_path, trials=3, storage=None, seed=4), log=lambda line: None)
    states = [t.state.name for t in study.get_trials()]
    assert states[:2] == ["COMPLETE", "FAIL"] and states.count("COMPLETE") + states.count("PRUNED") == 3
    retry = [t for t in study.get_trials() if t.user_attrs.get("retry_of") == 1]
    assert len(retry) == 1 and retry[0].params == study.trials[1].params and retry[0].state.name != "FAIL"
    assert calls[2] == calls[1]  # the interrupted settings, trained again first
    run_search(search(tmp_path, trials=3, storage=None, seed=4), log=lambda line: None)
    assert len([t for t in study.get_trials() if t.user_attrs.get("retry_of") == 1]) == 1  # once only

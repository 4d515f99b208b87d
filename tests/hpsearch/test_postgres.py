"""Many workers, one study, on a real PostgreSQL server (tests/postgres_server.py): two ``tiefnet hpsearch``
processes share a study with no duplicated trial and no storage error; a worker killed with SIGKILL
mid-trial leaves the study usable and its trial failed (and run again)."""
import os
import subprocess
import sys
import time
import uuid

import optuna
import pytest

from test_study import check_killed_trial_is_failed_and_retried

pytest.importorskip("psycopg", reason="the PostgreSQL driver (pip install 'tiefnet[postgres]')")

TIEFNET = [sys.executable, "-m", "tiefnet.cli"]


def test_two_workers_share_one_study(postgres_url, tmp_path):
    study = f"shared-{uuid.uuid4().hex[:8]}"
    common = ["hpsearch", "--storage", postgres_url, "--study", study, "--seed", "5"]
    first = subprocess.Popen(TIEFNET + common + ["--space", "eta=log:0.05..10", "hidden=int:5..40",
                                                 "--fixed", "epochs=2", "train_size=300", "--trials", "24",
                                                 "--startup", "4", "--out", str(tmp_path / "a")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "a" / "search.json").is_file():  # the study has been started, with its space
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.1)
    second = subprocess.run(TIEFNET + common + ["--out", str(tmp_path / "b")], capture_output=True, text=True,
                            timeout=300)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, (err, second.stderr)
    assert "error" not in (err + second.stderr).lower()
    assert "up to 24 trials" in second.stdout  # the joining worker took the study's space and size
    trials = optuna.load_study(study_name=study, storage=postgres_url).get_trials()
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) >= 20 and not [t for t in trials if t.state.name in ("FAIL", "RUNNING", "WAITING")]
    assert len({t.number for t in trials}) == len(trials)
    trained = [tuple(sorted(t.params.items())) for t in finished if "duplicate_of" not in t.user_attrs]
    assert len(set(trained)) == len(trained)  # no setting trained twice
    for worker in ("a", "b"):  # both did trials, each in its own folder
        assert any((tmp_path / worker / "trials").iterdir())
    numbers = {int(p.name) for w in ("a", "b") for p in (tmp_path / w / "trials").iterdir()}
    assert numbers == {t.number for t in finished if "duplicate_of" not in t.user_attrs}


def test_a_killed_worker_leaves_its_trial_failed_and_retried_postgres(postgres_url, tmp_path):
    check_killed_trial_is_failed_and_retried(postgres_url, tmp_path, name=f"killed-{uuid.uuid4().hex[:8]}")


def test_a_joining_worker_needs_a_started_study(postgres_url, tmp_path):
    result = subprocess.run(TIEFNET + ["hpsearch", "--storage", postgres_url, "--study", "never-started",
                                       "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "has not been started" in result.stderr and not os.path.exists(tmp_path / "x")

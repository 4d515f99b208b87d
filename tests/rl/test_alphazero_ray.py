"""Self-play on Ray actors: ``--ray local`` starts a Ray instance on this machine with one CPU per
worker (``RayWorkers("local", 2)``); a tiny tic-tac-toe run goes through it and Ray is shut down
afterwards. Skipped without Ray."""
from __future__ import annotations

import json

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from tiefnet.rl.alphazero.config import make_config  # noqa: E402  (after the importorskip)
from tiefnet.rl.alphazero.run import run  # noqa: E402

TINY = {"game": "tictactoe", "history": 1, "blocks": 1, "filters": 4, "simulations": 8, "parallel_games": 2,
        "games_per_generation": 4, "train_steps": 2, "batch_size": 8, "window": 200, "arena_games": 2,
        "arena_simulations": 4, "random_games": 2, "judge_games": 0, "generations": 2}


@pytest.fixture
def no_ray_afterwards():
    if ray.is_initialized():
        pytest.skip("a Ray instance of someone else is running in this process")
    yield
    if ray.is_initialized():  # the run's workers.close() should have done it
        ray.shutdown()
        pytest.fail("Ray was still running after the run")


def test_a_run_on_local_ray_actors(tmp_path, no_ray_afterwards):
    out = tmp_path / "ray"
    log = []
    config = make_config({**TINY, "ray": "local", "workers": 2})
    summary = run(config, out, progress=False, log=log.append)
    assert "2 worker(s) on Ray" in log[0]
    assert summary["generations"] == 2 and summary["games"] == 8
    entries = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["generation"] for e in entries] == [1, 2]
    assert all(e["games"] == 4 and np.isfinite(e["value_loss"]) for e in entries)
    assert (out / "model.npz").is_file() and (out / "checkpoint.npz").is_file()
    assert not ray.is_initialized()

"""Self-play workers: the games of a generation are shared out to worker processes on this
machine (the default), to Ray actors on a Ray cluster (``--ray ADDRESS``), or played in this
process (``workers=0``: tests, debugging).

A task carries everything a worker needs — the game's name and settings, the network's
architecture and arrays, the self-play settings, the number of games and a seed — as plain
data, so a worker trusts nothing but tiefnet's own code. Every worker runs BLAS on one thread:
the parallelism is across workers (one core each), not inside a small GEMM.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
from dataclasses import dataclass
from typing import Any

import numpy

from tiefnet.errors import ConfigError

_NETS: dict[str, Any] = {}  # per worker process: the network of the last architecture seen, reused


@dataclass(frozen=True)
class Task:
    game: str
    game_settings: dict
    architecture: dict
    arrays: dict
    selfplay: Any  # SelfPlayConfig
    games: int
    seed: tuple[int, ...]


def play_task(task: Task):
    """Play ``task.games`` self-play games; returns (records, stats). Runs in a worker."""
    from tiefnet import backend
    from tiefnet.checkpoint import load_state
    from tiefnet.nn import layer_from_config
    from tiefnet.rl.alphazero.net import Evaluator
    from tiefnet.rl.alphazero.selfplay import timed_self_play
    from tiefnet.rl.games import make_game

    game = make_game(task.game, **task.game_settings)
    key = json.dumps(task.architecture, sort_keys=True)
    net = _NETS.get(key)
    if net is None:
        _NETS.clear()
        net = _NETS[key] = layer_from_config(task.architecture)
    load_state(net, task.arrays, "the learner's network")
    with backend.thread_limit(1):
        return timed_self_play(game, Evaluator(game, net), task.games, task.selfplay,
                               numpy.random.default_rng(list(task.seed)))


class InlineWorkers:
    """Every task in this process, one after another."""

    count = 1

    def map(self, tasks: list[Task]) -> list:
        return [play_task(t) for t in tasks]

    def close(self) -> None:
        pass


class ProcessWorkers:
    """``count`` worker processes on this machine (spawned: no state inherited from the learner)."""

    def __init__(self, count: int) -> None:
        self.count = count
        saved = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        os.environ.update({k: "1" for k in saved})  # the spawned interpreters start with one BLAS thread
        try:
            # Ctrl-C is the learner's to handle: a worker that died of it would leave map waiting forever
            self.pool = multiprocessing.get_context("spawn").Pool(count, initializer=_ignore_interrupt)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def map(self, tasks: list[Task]) -> list:
        pending = self.pool.map_async(play_task, tasks, chunksize=1)
        while True:  # short waits: a KeyboardInterrupt reaches the learner at once, not after the games
            try:
                return pending.get(timeout=0.5)
            except multiprocessing.TimeoutError:
                continue

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


def _ignore_interrupt() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class RayWorkers:
    """``count`` Ray actors, each one CPU, on the cluster at ``address`` ("local": start a Ray
    instance on this machine with ``count`` CPUs). tiefnet must be installed on every node."""

    def __init__(self, address: str, count: int) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--ray needs Ray: pip install 'tiefnet[ray]'") from None
        self.ray, self.count = ray, count
        self.started = not ray.is_initialized()  # shut down at the end only what this run started
        if self.started:
            if address == "local":
                ray.init(num_cpus=count, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        actor = ray.remote(num_cpus=1)(_RayWorker)
        self.actors = [actor.remote() for _ in range(count)]

    def map(self, tasks: list[Task]) -> list:
        futures = [self.actors[i % self.count].play.remote(task) for i, task in enumerate(tasks)]
        return self.ray.get(futures)

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        if self.started:
            self.ray.shutdown()


class _RayWorker:
    """A Ray actor; BLAS runs on one thread inside play_task (thread_limit(1))."""

    def play(self, task: Task):
        return play_task(task)


def make_workers(workers: int, ray_address: str = ""):
    if ray_address:
        return RayWorkers(ray_address, max(1, workers))
    if workers == 0:
        return InlineWorkers()
    return ProcessWorkers(workers)


def split(total: int, parts: int) -> list[int]:
    """``total`` games in ``parts`` nearly equal shares (no empty share)."""
    parts = max(1, min(parts, total))
    return [total // parts + (i < total % parts) for i in range(parts)]

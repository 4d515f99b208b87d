"""The view "Train in front of you": a small ``tiefnet mnist`` network (2.4-2.7) trained by the server
while the page watches, epoch by epoch, with the settings chosen on the page.

A training is the library's own: :func:`tiefnet.vision.mnist.build_network` and ``fit`` with the
settings of a :class:`tiefnet.vision.mnist.Config`, so the same settings and seed give the same
numbers as ``tiefnet mnist`` with them. It runs in a thread of the server and writes no file. Epoch 0
is the untrained network. Stopping takes effect at the end of the epoch that runs. At most
:data:`MAX_RUNNING` trainings run at once; the last :data:`KEEP` are kept to be looked at.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from tiefnet.errors import TiefnetError

MAX_RUNNING = 2
KEEP = 16


@dataclass
class Training:
    id: str
    settings: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)  # epoch 0, 1, ... as they are measured
    status: str = "running"  # running, stopping, stopped, finished, failed
    error: str | None = None
    started: float = field(default_factory=time.time)
    stop_asked: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "settings": self.settings, "status": self.status, "error": self.error,
                "epochs": list(self.events)}

    @property
    def done(self) -> bool:
        return self.status in ("stopped", "finished", "failed")

    def stop(self) -> None:
        """Stop at the end of the epoch that runs (nothing to do once it is done)."""
        with self._lock:  # not between the training's last look and its end: it would stay "stopping"
            self.stop_asked.set()
            if self.status == "running":
                self.status = "stopping"

    def end(self, status: str, error: str | None = None) -> None:
        with self._lock:
            if status == "finished" and self.stop_asked.is_set():
                status = "stopped"
            self.status, self.error = status, error


class Trainings:
    """The trainings of one server (thread-safe)."""

    def __init__(self, max_running: int = MAX_RUNNING, keep: int = KEEP) -> None:
        self.max_running, self.keep = max_running, keep
        self._all: OrderedDict[str, Training] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, settings: dict[str, Any]) -> Training:
        """A new training with these settings (those of tiefnet mnist's Config), running at once.
        TiefnetError for settings the Config refuses; RuntimeError where MAX_RUNNING already run."""
        from tiefnet.vision.mnist import Config

        config = Config(model="dense", **settings)  # checks them, as tiefnet mnist does
        with self._lock:
            if sum(not t.done for t in self._all.values()) >= self.max_running:
                raise RuntimeError(f"{self.max_running} trainings are running on this server: stop one first")
            training = Training(uuid.uuid4().hex[:16], dict(settings))
            self._all[training.id] = training
            while len(self._all) > self.keep:  # forget the oldest finished ones
                oldest = next((k for k, t in self._all.items() if t.done), None)
                if oldest is None:
                    break
                del self._all[oldest]
        threading.Thread(target=_train, args=(training, config), name=f"training-{training.id}", daemon=True).start()
        return training

    def get(self, id: str) -> Training | None:
        with self._lock:
            return self._all.get(id)

    def stop_all(self) -> None:
        with self._lock:
            running = list(self._all.values())
        for training in running:
            training.stop()


def _train(training: Training, config) -> None:
    import numpy

    from tiefnet.nn import LOSSES
    from tiefnet.train import as_data, evaluate, fit
    from tiefnet.vision.mnist import build_network, build_optimizer, prepare_data

    try:
        rng = numpy.random.default_rng(config.seed)
        train, validation, _ = prepare_data(config)
        net = build_network(config, rng)
        loss = LOSSES[config.cost]()
        cost, accuracy = evaluate(net, loss, as_data(validation, 10))
        started = time.perf_counter()
        training.events.append({"epoch": 0, "validation_cost": cost, "validation_accuracy": accuracy, "seconds": 0.0})
        if training.stop_asked.is_set():  # stopped while the data and the network were made
            training.end("stopped")
            return

        def record(metrics: dict[str, float]) -> bool:
            training.events.append({**{k: float(v) for k, v in metrics.items()}, "epoch": int(metrics["epoch"]),
                                    "seconds": round(time.perf_counter() - started, 3)})
            return training.stop_asked.is_set()

        history = fit(net, loss, build_optimizer(config), train, config.epochs, config.batch_size,
                      validation=validation, rng=rng, callbacks=[record])
        training.end("stopped" if history.stopped_by else "finished")
    except TiefnetError as error:  # e.g. the cost became NaN (eta too large)
        training.end("failed", str(error))
    except Exception as error:  # the page should hear of anything else too, not wait forever
        training.end("failed", f"{type(error).__name__}: {error}")

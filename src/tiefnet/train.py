"""Mini-batch stochastic gradient descent with monitoring (2.5, 2.7.3).

:func:`train_step` is one gradient-descent step of any model on any cost: feedforward, (BP1)-(BP4)
from the cost, optional gradient clipping, the optimizer's update. :func:`fit` is the lecture's
classifier loop on top of it: each epoch shuffles the training set, walks it in disjoint
mini-batches of m samples (m = 1 is online learning), and after the epoch measures cost and
accuracy on the training, validation and test data ("fail fast": validate after every epoch).
Optional: a learning-rate schedule, early stopping, callbacks that see each epoch's metrics and
may stop the run (a pruned hyperparameter trial), a checkpoint after every epoch, and resuming
from such a checkpoint with the same result as an uninterrupted run.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy

from tiefnet import backend
from tiefnet.backend import Array, xp
from tiefnet.errors import ConfigError, TrainingDiverged
from tiefnet.nn.layer import Layer
from tiefnet.nn.losses import Loss
from tiefnet.optim import Optimizer, ReduceOnPlateau
from tiefnet.progress import progress_bar
from tiefnet.train_checkpoint import restore_checkpoint, save_checkpoint
from tiefnet.train_pipeline import Evaluation, Snapshot, measures_aside, settings
from tiefnet.train_steps import gradients, step_runner, train_step

__all__ = ["Data", "History", "as_data", "evaluate", "fit", "gradients", "predict", "step_runner", "train_step"]


@dataclass
class Data:
    """Samples on the active device: x (N, ...) floats, labels (N,) ints, y (N, K) one-hot."""

    x: Array
    labels: Array
    y: Array

    def __len__(self) -> int:
        return int(self.x.shape[0])


def as_data(data: Any, classes: int) -> Data:
    """Accept a Data, an object with ``.x``/``.y``, or a tuple (x, y); y as labels or one-hot."""
    if isinstance(data, Data):
        return data
    x, y = (data.x, data.y) if hasattr(data, "x") else data
    x = backend.asarray(x)
    y_host = backend.to_numpy(y)
    if y_host.ndim == 1:
        labels = y_host.astype(numpy.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise ConfigError(f"labels must be in [0, {classes}), got {labels.min()}..{labels.max()}")
        one_hot = numpy.zeros((len(labels), classes), dtype=numpy.float32)
        one_hot[numpy.arange(len(labels)), labels] = 1.0
    else:
        one_hot, labels = y_host, y_host.argmax(axis=1)
    if len(labels) != x.shape[0]:
        raise ConfigError(f"{x.shape[0]} inputs but {len(labels)} targets")
    return Data(x, xp.asarray(labels), backend.asarray(one_hot))


def predict(model: Layer, x: Array, batch_size: int = 500) -> Array:
    """The network's output a^L for every row of x (test mode: no dropout): the feedforward pass
    a^l = sigma(w^l a^{l-1} + b^l), a^0 = x (2.6); the answer is the most active output neuron (2.4).

    Evaluation writes nothing onto the model, so threads may call this on one model at once
    (stateful recurrent layers excepted: they carry their state from call to call by design).
    """
    outs = [model.forward(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)]
    return xp.concatenate(outs) if outs else xp.zeros((0,))


def evaluate(model: Layer, loss: Loss, data: Data, batch_size: int = 500) -> tuple[float, float]:
    """(mean cost C_0, accuracy as a fraction): the digit with the highest output counts (2.4)."""
    total, correct = 0.0, 0
    for i in range(0, len(data), batch_size):
        a = model.forward(data.x[i : i + batch_size])
        total += loss.cost(a, data.y[i : i + batch_size]) * a.shape[0]
        correct += int((a.argmax(axis=1) == data.labels[i : i + batch_size]).sum())
    n = max(len(data), 1)
    return total / n, correct / n


@dataclass
class History:
    """One dict of metrics per finished epoch."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False  # by early_stopping
    stopped_by: str | None = None  # "early_stopping", or the name of the callback that stopped the run

    def best(self, key: str) -> float:
        values = [e[key] for e in self.epochs if key in e]
        return max(values) if values else float("nan")


def fit(
    model: Layer,
    loss: Loss,
    optimizer: Optimizer,
    train: Any,
    epochs: int,
    batch_size: int = 10,
    validation: Any = None,
    test: Any = None,
    rng: numpy.random.Generator | None = None,
    classes: int = 10,
    schedule: ReduceOnPlateau | None = None,
    early_stopping: int | None = None,
    monitor_train: bool = True,
    callbacks: Iterable[Callable[[dict[str, float]], None]] = (),
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
) -> History:
    """Train ``model`` by mini-batch SGD for ``epochs`` epochs; returns the :class:`History`.

    Each epoch shuffles the training pairs and walks them in disjoint mini-batches of m = ``batch_size``;
    each mini-batch is one step of the lecture's rule (2.5)

        w_k -> w_k - eta/m sum_{i=1}^m dC_{x_i}/dw_k,    b_l -> b_l - eta/m sum_{i=1}^m dC_{x_i}/db_l

    (the loss holds the 1/m, the optimizer makes the step; with L2 the weights first shrink by 1 - eta lambda/n).

    Args:
        train, validation, test: (x, y) pairs or objects with .x/.y (y as labels or one-hot).
        rng: shuffles the training data each epoch; same seed, same run.
        schedule: e.g. ReduceOnPlateau, fed the validation accuracy after each epoch.
        early_stopping: stop when validation accuracy has not improved for this many epochs.
        callbacks: called with each epoch's metrics dict, as soon as it is known (after the
            checkpoint is written); a callback that returns True stops the run after this epoch
            (``history.stopped_by`` says which), e.g. a pruned hyperparameter trial.
        checkpoint: a file written atomically after each epoch (model, optimizer, RNG, history).
        resume: continue from ``checkpoint`` if it exists.

    With backend.thread_limit(T >= 2) on a CPU (Linux), each epoch is measured (training accuracy,
    validation, test) in a process forked at its end, on a core of its own, while the next epoch
    trains on the other T - 1; its checkpoint and callbacks follow when the measurement is back
    (with the model in that epoch's state), so a killed run may lose one epoch more than with one
    thread. The result is the one-thread result bit for bit: where the metrics stop the run or a
    callback or the schedule changes anything (eta, a setting, a parameter), the epoch trained
    ahead is undone and trained again. The training steps use the other T - 1 cores: from 2 on,
    each mini-batch may be cut into parts on as many processes (tiefnet.parallel; faster from
    mini-batches of about 32, measured per batch shape by tiefnet.plans), which changes the
    rounding of the gradient sums. With nothing to measure (monitor_train=False, no validation or
    test data), the steps get all T cores.
    Raises:
        TrainingDiverged: when the training cost becomes NaN or infinite (the checkpoint of the
            last good epoch is kept).
    """
    if epochs < 0 or batch_size < 1:
        raise ConfigError(f"epochs={epochs} must be >= 0 and batch_size={batch_size} >= 1")
    if validation is None and (schedule is not None or early_stopping):
        raise ConfigError("a learning-rate schedule and early stopping watch the validation accuracy: "
                          "pass validation data")
    rng = numpy.random.default_rng() if rng is None else rng
    train_data = as_data(train, classes)
    val_data = as_data(validation, classes) if validation is not None else None
    test_data = as_data(test, classes) if test is not None else None
    optimizer.bind(model, len(train_data))
    history, first_epoch, stale = History(), 1, 0
    if resume and checkpoint is not None and Path(checkpoint).exists():
        first_epoch, stale = restore_checkpoint(checkpoint, model, optimizer, rng, schedule, history, epochs)
        if early_stopping and stale >= early_stopping:
            history.stopped_early, history.stopped_by = True, "early_stopping"  # the restored run had stopped
        if history.stopped_by is not None:  # by early stopping, or a callback (a pruned trial stays pruned)
            return history
    bar = progress_bar(progress, max(epochs - first_epoch + 1, 0) * len(train_data), "training", unit="img")
    aside = measures_aside(model, monitor_train, val_data, test_data)
    steps = step_runner(model, loss, optimizer, reserve=1 if aside else 0)
    state = _EpochState(history, stale, val_data, schedule, early_stopping, callbacks, checkpoint, bar, model,
                        optimizer, rng)
    measure = lambda e: _measured(e, model, loss, optimizer, train_data, val_data, test_data,  # noqa: E731
                                  monitor_train)
    pending: Evaluation | None = None  # epoch j's evaluation, on a core of its own while epoch j + 1 trains
    try:
        epoch = first_epoch
        while epoch <= epochs:
            seconds = _timed_epoch(steps, train_data, batch_size, rng, bar, backend.threads() - 1 if aside else 0)
            if pending is not None:  # epoch j = epoch - 1 is measured: its state goes back in for what follows
                trained_ahead = Snapshot(model, optimizer, rng)
                done, pending = pending, None
                metrics, finite = done.result()
                done.snapshot.restore(model, optimizer, rng)
                before = settings(model, optimizer)
                if _finish(state, done.epoch, metrics, finite, checkpoint):  # stopped after epoch j: its state stays
                    break
                if not done.snapshot.holds(model) or settings(model, optimizer) != before:
                    # the metrics changed what epoch j + 1 trains with (eta from the schedule, a callback's
                    # edit): train it again from epoch j's state, as one thread would have
                    steps.close()  # the workers (if any) restart with the model as it is now
                    if bar is not None:
                        bar.total += len(train_data)
                    continue
                trained_ahead.restore(model, optimizer, rng)
            if aside and epoch < epochs:  # measure `epoch` in a forked process beside the next epoch
                steps.close()  # no worker shares the parameters with the forked evaluation
                pending = Evaluation(epoch, seconds, Snapshot(model, optimizer, rng), model, optimizer, measure)
            else:
                with backend.thread_limit(1) if aside else contextlib.nullcontext():  # as the forked ones:
                    metrics, finite = measure(epoch)  # on one thread, so the result is one thread's bit for bit
                metrics["seconds"] = seconds
                before = settings(model, optimizer)
                if _finish(state, epoch, metrics, finite, checkpoint):
                    break
                if settings(model, optimizer) != before:
                    steps.close()  # workers hold the model as forked: a changed setting restarts them
            epoch += 1
    except KeyboardInterrupt:
        if pending is not None and pending.ready(timeout=10):  # keep the finished epoch j (its checkpoint)
            try:
                metrics, finite = pending.result()
                pending.snapshot.restore(model, optimizer, rng)
                if finite:
                    state.after(pending.epoch, metrics)
            except Exception:  # noqa: BLE001  (the interrupt is what the caller hears about)
                pass
        raise
    finally:
        if pending is not None:
            pending.close()
        steps.close()
        if bar is not None:
            bar.close()
    return history


def _timed_epoch(steps, train_data, batch_size, rng, bar, threads: int) -> float:
    """Train one epoch (on ``threads`` threads if > 0, else as set); returns its seconds."""
    # overflow shows up as a NaN/inf cost, which is checked after the epoch with a clear message
    with numpy.errstate(over="ignore", invalid="ignore", divide="ignore"), \
            (backend.thread_limit(threads) if threads > 0 else contextlib.nullcontext()):
        start = time.perf_counter()
        _train_epoch(steps.step, train_data, batch_size, rng, bar)
        return time.perf_counter() - start


def _finish(state: "_EpochState", epoch: int, metrics: dict[str, float], finite: bool, checkpoint) -> bool:
    """An epoch's metrics, with the model in that epoch's state: TrainingDiverged if its costs are not
    finite, else the bookkeeping of :meth:`_EpochState.after`; True to stop."""
    if not finite:
        kept = f", the checkpoint of epoch {epoch - 1} is kept" if checkpoint is not None and epoch > 1 else ""
        raise TrainingDiverged(f"epoch {epoch}: the cost became NaN or infinite (eta={metrics['eta']:g} is "
                               f"probably too large); training stopped{kept}")
    return state.after(epoch, metrics)


class _EpochState:
    """What fit does with an epoch's metrics: the history, the epochs without a better validation
    accuracy (early stopping, the schedule), the checkpoint, the callbacks, the progress bar."""

    def __init__(self, history, stale, val_data, schedule, early_stopping, callbacks, checkpoint, bar, model,
                 optimizer, rng):
        self.history, self.stale, self.val_data, self.schedule = history, stale, val_data, schedule
        self.early_stopping, self.callbacks, self.checkpoint, self.bar = early_stopping, list(callbacks), \
            checkpoint, bar
        self.model, self.optimizer, self.rng = model, optimizer, rng

    def after(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Record epoch ``epoch`` (the model, optimizer and generators hold its state); True to stop."""
        history, schedule, checkpoint = self.history, self.schedule, self.checkpoint
        model, optimizer, rng = self.model, self.optimizer, self.rng
        history.epochs.append(metrics)
        if self.val_data is not None:
            best_before = max((e["validation_accuracy"] for e in history.epochs[:-1]), default=-1.0)
            self.stale = 0 if metrics["validation_accuracy"] > best_before else self.stale + 1
            if schedule is not None:
                schedule.update(optimizer, metrics["validation_accuracy"])
        if checkpoint is not None:
            save_checkpoint(checkpoint, epoch, model, optimizer, rng, schedule, history, self.stale)
        stop = [callback for callback in self.callbacks if callback(metrics) is True]
        if self.bar is not None:
            self.bar.set_postfix(_postfix(metrics))
        if stop:
            history.stopped_by = getattr(stop[0], "__name__", type(stop[0]).__name__)
            if checkpoint is not None:  # a resumed run stays stopped
                save_checkpoint(checkpoint, epoch, model, optimizer, rng, schedule, history, self.stale)
            return True
        if self.early_stopping and self.stale >= self.early_stopping:
            history.stopped_early = True
            history.stopped_by = "early_stopping"
            return True
        return False


def _measured(epoch, model, loss, optimizer, train, val, test, monitor_train) -> tuple[dict[str, float], bool]:
    """(the epoch's metrics, whether its costs are finite) for the model as it is now."""
    with numpy.errstate(over="ignore", invalid="ignore", divide="ignore"):
        metrics = _measure(epoch, model, loss, optimizer, train, val, test, monitor_train)
    return metrics, _finite(model, metrics)


def _train_epoch(step, data: Data, batch_size, rng, bar) -> None:
    """One pass over the shuffled training data in disjoint mini-batches (2.5)."""
    n = len(data)
    order = xp.asarray(rng.permutation(n))
    # Gather the shuffled samples a chunk of mini-batches at a time: one copy that stays in
    # cache for the batches that read it, instead of an epoch-sized copy or one per batch.
    chunk = batch_size * max(1, 256 // batch_size)
    for start in range(0, n, chunk):
        rows = order[start : start + chunk]
        x, y = data.x[rows], data.y[rows]
        for i in range(0, len(rows), batch_size):
            step(x[i : i + batch_size], y[i : i + batch_size])
        if bar is not None:
            bar.update(len(rows))


def _measure(epoch, model, loss, optimizer, train, val, test, monitor_train) -> dict[str, float]:
    metrics: dict[str, float] = {"epoch": epoch, "eta": optimizer.eta}
    reg = optimizer.regularizer
    penalty = 0.0
    if reg is not None and reg.lmbda:
        weights = [p.value for p in model.parameters() if p.trainable and p.decayed]
        penalty = reg.cost(weights, len(train))
    if monitor_train:
        cost, accuracy = evaluate(model, loss, train)
        metrics["train_cost"], metrics["train_accuracy"] = cost + penalty, accuracy
    for name, data in (("validation", val), ("test", test)):
        if data is not None:
            cost, accuracy = evaluate(model, loss, data)
            metrics[f"{name}_cost"], metrics[f"{name}_accuracy"] = cost + penalty, accuracy
    return metrics


def _finite(model, metrics) -> bool:
    costs = [v for k, v in metrics.items() if k.endswith("_cost")]
    if costs:
        return all(math.isfinite(c) for c in costs)
    return all(bool(xp.isfinite(p.value).all()) for p in model.parameters())


def _postfix(metrics: dict[str, float]) -> dict[str, str]:
    keys = ("train_cost", "validation_accuracy", "test_accuracy")
    return {k.replace("_accuracy", "_acc"): f"{metrics[k]:.4f}" for k in keys if k in metrics}

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

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy

from tiefnet import backend
from tiefnet.backend import Array, xp
from tiefnet.checkpoint import load_state, read_npz, write_npz
from tiefnet.errors import CheckpointError, ConfigError, TrainingDiverged
from tiefnet.nn.layer import Layer
from tiefnet.nn.losses import Loss
from tiefnet.optim import Optimizer, ReduceOnPlateau, clip_gradients
from tiefnet.progress import progress_bar


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


def train_step(model: Layer, loss: Loss, optimizer: Optimizer, x: Array, *targets: Array,
               clip: float | None = None) -> Array:
    """One gradient-descent step on one mini-batch, for any model and cost; returns the output a^L.

    feedforward (caching z^l, a^l), (BP1)-(BP4) from the cost's gradient at a^L and ``targets``
    (y, or the actions and targets of TDError), global-norm clipping to ``clip`` if given,
    then the optimizer's update v -> v - eta grad.
    """
    a = model.forward(x, True)  # feedforward pass, caches z^l, a^l
    model.backward_from(loss, *targets)  # (BP1)-(BP4)
    if clip is not None:
        clip_gradients(model, clip)
    optimizer.step()
    return a


def predict(model: Layer, x: Array, batch_size: int = 500) -> Array:
    """The network's output a^L for every row of x (test mode: no dropout).

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
        first_epoch, stale = _restore(checkpoint, model, optimizer, rng, schedule, history, epochs)
        if early_stopping and stale >= early_stopping:
            history.stopped_early, history.stopped_by = True, "early_stopping"  # the restored run had stopped
        if history.stopped_by is not None:  # by early stopping, or a callback (a pruned trial stays pruned)
            return history
    bar = progress_bar(progress, max(epochs - first_epoch + 1, 0) * len(train_data), "training", unit="img")
    try:
        for epoch in range(first_epoch, epochs + 1):
            metrics = _epoch(epoch, model, loss, optimizer, train_data, val_data, test_data, batch_size, rng,
                             bar, monitor_train, had_checkpoint=checkpoint is not None and epoch > 1)
            history.epochs.append(metrics)
            if val_data is not None:
                best_before = max((e["validation_accuracy"] for e in history.epochs[:-1]), default=-1.0)
                stale = 0 if metrics["validation_accuracy"] > best_before else stale + 1
                if schedule is not None:
                    schedule.update(optimizer, metrics["validation_accuracy"])
            if checkpoint is not None:
                _save(checkpoint, epoch, model, optimizer, rng, schedule, history, stale)
            stop = [callback for callback in callbacks if callback(metrics) is True]
            if bar is not None:
                bar.set_postfix(_postfix(metrics))
            if stop:
                history.stopped_by = getattr(stop[0], "__name__", type(stop[0]).__name__)
                if checkpoint is not None:  # a resumed run stays stopped
                    _save(checkpoint, epoch, model, optimizer, rng, schedule, history, stale)
                break
            if early_stopping and stale >= early_stopping:
                history.stopped_early = True
                history.stopped_by = "early_stopping"
                break
    finally:
        if bar is not None:
            bar.close()
    return history


def _epoch(epoch, model, loss, optimizer, train, val, test, batch_size, rng, bar, monitor_train,
           had_checkpoint) -> dict[str, float]:
    """Train one epoch, then measure it; raises TrainingDiverged on a NaN/inf cost."""
    # overflow shows up as a NaN/inf cost, which is checked below with a clear message
    with numpy.errstate(over="ignore", invalid="ignore", divide="ignore"):
        start = time.perf_counter()
        _train_epoch(model, loss, optimizer, train, batch_size, rng, bar)
        seconds = time.perf_counter() - start
        metrics = _measure(epoch, model, loss, optimizer, train, val, test, monitor_train)
    metrics["seconds"] = seconds
    if not _finite(model, metrics):
        kept = f", the checkpoint of epoch {epoch - 1} is kept" if had_checkpoint else ""
        raise TrainingDiverged(f"epoch {epoch}: the cost became NaN or infinite (eta={optimizer.eta:g} is "
                               f"probably too large); training stopped{kept}")
    return metrics


def _train_epoch(model, loss, optimizer, data: Data, batch_size, rng, bar) -> None:
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
            train_step(model, loss, optimizer, x[i : i + batch_size], y[i : i + batch_size])
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


# --- training checkpoints ----------------------------------------------------------------
def _save(path, epoch, model, optimizer, rng, schedule, history, stale) -> None:
    opt_meta, opt_arrays = optimizer.state_dict()
    arrays = {f"param.{k}": v for k, v in model.arrays().items()}  # parameters and buffers
    arrays.update({f"opt.{k}": v for k, v in opt_arrays.items()})
    meta = {
        "epoch": epoch,
        "optimizer": {"name": optimizer.name, **opt_meta},
        "rng": rng.bit_generator.state,
        "layer_rngs": [layer.rng.bit_generator.state for layer in model.random_layers()],
        "schedule": schedule.state() if schedule is not None else None,
        "history": history.epochs,
        "stale": stale,
        "stopped_by": history.stopped_by,
    }
    write_npz(path, arrays, meta)


def checkpoint_history(path: str | Path) -> list[dict[str, float]]:
    """The per-epoch metrics stored in a training checkpoint written by :func:`fit` (checked)."""
    _, meta = read_npz(path)
    if not isinstance(meta.get("history"), list):
        raise CheckpointError(f"{path}: not a tiefnet training checkpoint (no history)")
    return _checked_history(path, meta)


@dataclass
class _Restored:
    """A training checkpoint whose every part has been checked against the model and optimizer."""

    epoch: int
    stale: int
    stopped_by: str | None
    history: list[dict[str, float]]
    params: dict[str, Any]
    optimizer_meta: dict[str, Any]
    optimizer_arrays: dict[str, Any]
    rng: dict[str, Any]
    layer_rngs: list[dict[str, Any]]
    schedule: dict[str, Any] | None


def check_checkpoint(path: str | Path, model: Layer, optimizer: Optimizer, rng: numpy.random.Generator,
                     schedule: ReduceOnPlateau | None = None, epochs: int | None = None) -> list[dict[str, float]]:
    """Check that ``path`` can resume training ``model`` with the bound ``optimizer`` (names, shapes
    and values of every part, the generators' states, at most ``epochs`` epochs done) without
    changing anything; returns its history. :func:`fit` makes the same checks before it restores."""
    return _read_checkpoint(path, model, optimizer, rng, schedule, epochs).history


def _whole(value: Any, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _checked_history(path, meta) -> list[dict[str, float]]:
    """meta["history"]: one dict of finite numbers per epoch 1..meta["epoch"], accuracies in [0, 1]."""
    epoch, history = meta.get("epoch"), meta.get("history")
    if not _whole(epoch, 1):
        raise CheckpointError(f"{path}: its epoch {epoch!r} is not a whole number >= 1")
    if not isinstance(history, list) or len(history) != epoch:
        size = len(history) if isinstance(history, list) else type(history).__name__
        raise CheckpointError(f"{path}: its history ({size}) does not hold one entry for each of its {epoch} epochs")
    for number, entry in enumerate(history, 1):
        if not isinstance(entry, dict) or entry.get("epoch") != number or isinstance(entry.get("epoch"), bool):
            raise CheckpointError(f"{path}: history entry {number} is not the metrics of epoch {number}")
        bad = [k for k, v in entry.items() if not _number(v) or (k.endswith("_accuracy") and not 0 <= v <= 1)]
        if bad:
            raise CheckpointError(f"{path}: history entry {number} has bad values for {', '.join(map(str, bad))}")
    return history


def _checked_generator(path, state: Any, generator: numpy.random.Generator, what: str) -> dict[str, Any]:
    """A bit generator state that a fresh generator of ``generator``'s kind accepts."""
    kind = type(generator.bit_generator)
    if not isinstance(state, dict) or state.get("bit_generator") != kind.__name__:
        name = state.get("bit_generator") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path}: {what} is not a {kind.__name__} state ({name!r})")
    try:
        kind().state = state
    except (TypeError, ValueError, KeyError, OverflowError) as error:
        raise CheckpointError(f"{path}: {what} is not a valid {kind.__name__} state ({error})") from None
    return state


def _checked_arrays(path, saved: dict[str, Any], expected: dict[str, Any], what: str) -> None:
    """Same names, shapes, numbers and finite values as ``expected`` (the arrays they will be copied into)."""
    missing, extra = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{path}: the {what} arrays do not fit (missing {', '.join(missing) or 'none'}; "
                              f"extra {', '.join(extra) or 'none'})")
    for name, a in saved.items():
        if tuple(a.shape) != tuple(expected[name].shape):
            raise CheckpointError(f"{path}: {what} array {name} has shape {tuple(a.shape)}, expected "
                                  f"{tuple(expected[name].shape)}")
        if not numpy.issubdtype(a.dtype, numpy.number) or not numpy.all(numpy.isfinite(a)):
            raise CheckpointError(f"{path}: {what} array {name} holds values that are not finite numbers")


def _read_checkpoint(path, model, optimizer, rng, schedule, epochs) -> _Restored:
    arrays, meta = read_npz(path)
    if "epoch" not in meta or "rng" not in meta:
        raise CheckpointError(f"{path}: not a tiefnet training checkpoint (a model file?)")
    history = _checked_history(path, meta)
    epoch = meta["epoch"]
    if epochs is not None and epoch > epochs:
        raise ConfigError(f"epochs={epochs}: the checkpoint {path} already holds {epoch} epochs (epochs is the "
                          f"total, not the number to add): give epochs={epoch} or more")
    stale, stopped_by = meta.get("stale", 0), meta.get("stopped_by")
    if not (_whole(stale) and stale <= epoch) or not (stopped_by is None or isinstance(stopped_by, str)):
        raise CheckpointError(f"{path}: its counters (stale {stale!r}, stopped_by {stopped_by!r}) are not valid")
    saved_optimizer = meta.get("optimizer")
    name = saved_optimizer.get("name") if isinstance(saved_optimizer, dict) else None
    if name != optimizer.name:
        raise CheckpointError(f"{path}: written with optimizer {name!r}, resuming with {optimizer.name!r}")
    expected_meta, expected_arrays = optimizer.state_dict()
    for key, value in expected_meta.items():
        saved = saved_optimizer.get(key)
        good = _whole(saved) if isinstance(value, int) else _number(saved) and (key != "eta" or saved > 0)
        if not good:
            raise CheckpointError(f"{path}: the optimizer's {key} {saved!r} is not valid")
    optimizer_arrays = {k[4:]: v for k, v in arrays.items() if k.startswith("opt.")}
    _checked_arrays(path, optimizer_arrays, expected_arrays, "optimizer")
    params = {k[6:]: v for k, v in arrays.items() if k.startswith("param.")}
    _checked_arrays(path, params, model.arrays(), "model")
    layer_rngs, random_layers = meta.get("layer_rngs", []), model.random_layers()
    if not isinstance(layer_rngs, list) or len(layer_rngs) != len(random_layers):
        raise CheckpointError(f"{path}: it holds no generator state for each of the model's "
                              f"{len(random_layers)} random layers")
    for layer, state in zip(random_layers, layer_rngs):
        _checked_generator(path, state, layer.rng, "a layer's generator state")
    schedule_state = meta.get("schedule") if schedule is not None else None
    if schedule_state and not (isinstance(schedule_state, dict) and _whole(schedule_state.get("bad_epochs"))
                               and isinstance(schedule_state.get("best"), (int, float))
                               and not math.isnan(schedule_state["best"])):
        raise CheckpointError(f"{path}: its learning-rate schedule state {schedule_state!r} is not valid")
    return _Restored(epoch, stale, stopped_by, history, params, saved_optimizer, optimizer_arrays,
                     _checked_generator(path, meta["rng"], rng, "its generator state"), layer_rngs,
                     schedule_state or None)


def _restore(path, model, optimizer, rng, schedule, history, epochs=None) -> tuple[int, int]:
    """Load a checkpoint into the model, optimizer, generators, schedule and history, once every part
    has been checked (a bad checkpoint is one CheckpointError, and nothing is changed)."""
    try:
        saved = _read_checkpoint(path, model, optimizer, rng, schedule, epochs)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        if isinstance(error, ConfigError):
            raise
        raise CheckpointError(f"{path}: not a complete tiefnet training checkpoint ({error!r})") from error
    load_state(model, saved.params, str(path))
    optimizer.load_state_dict(saved.optimizer_meta, {k: backend.asarray(v) for k, v in saved.optimizer_arrays.items()})
    rng.bit_generator.state = saved.rng
    for layer, state in zip(model.random_layers(), saved.layer_rngs):
        layer.rng.bit_generator.state = state
    if saved.schedule is not None:
        schedule.load_state(saved.schedule)
    history.epochs.extend(saved.history)
    history.stopped_by = saved.stopped_by
    return saved.epoch + 1, saved.stale

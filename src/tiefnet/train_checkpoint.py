"""The training checkpoint of :func:`tiefnet.train.fit`: ``checkpoint.npz`` holds the model's arrays,
the optimizer's state, every generator's state, the learning-rate schedule and the history, so that
a resumed run ends as an uninterrupted one. A checkpoint may come from anyone: every part is checked
against the model and optimizer before anything is restored (one CheckpointError, nothing changed).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy

from tiefnet import backend
from tiefnet.checkpoint import load_state, read_npz, write_npz
from tiefnet.errors import CheckpointError, ConfigError
from tiefnet.nn.layer import Layer
from tiefnet.optim import Optimizer, ReduceOnPlateau
from tiefnet.settings import is_number, is_whole


def save_checkpoint(path, epoch, model, optimizer, rng, schedule, history, stale) -> None:
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


def _checked_history(path, meta) -> list[dict[str, float]]:
    """meta["history"]: one dict of finite numbers per epoch 1..meta["epoch"], accuracies in [0, 1]."""
    epoch, history = meta.get("epoch"), meta.get("history")
    if not is_whole(epoch, 1):
        raise CheckpointError(f"{path}: its epoch {epoch!r} is not a whole number >= 1")
    if not isinstance(history, list) or len(history) != epoch:
        size = len(history) if isinstance(history, list) else type(history).__name__
        raise CheckpointError(f"{path}: its history ({size}) does not hold one entry for each of its {epoch} epochs")
    for number, entry in enumerate(history, 1):
        if not isinstance(entry, dict) or entry.get("epoch") != number or isinstance(entry.get("epoch"), bool):
            raise CheckpointError(f"{path}: history entry {number} is not the metrics of epoch {number}")
        bad = [k for k, v in entry.items() if not is_number(v) or (k.endswith("_accuracy") and not 0 <= v <= 1)]
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
    if not (is_whole(stale) and stale <= epoch) or not (stopped_by is None or isinstance(stopped_by, str)):
        raise CheckpointError(f"{path}: its counters (stale {stale!r}, stopped_by {stopped_by!r}) are not valid")
    saved_optimizer = meta.get("optimizer")
    name = saved_optimizer.get("name") if isinstance(saved_optimizer, dict) else None
    if name != optimizer.name:
        raise CheckpointError(f"{path}: written with optimizer {name!r}, resuming with {optimizer.name!r}")
    expected_meta, expected_arrays = optimizer.state_dict()
    for key, value in expected_meta.items():
        saved = saved_optimizer.get(key)
        good = is_whole(saved) if isinstance(value, int) else is_number(saved) and (key != "eta" or saved > 0)
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
    if schedule_state and not (isinstance(schedule_state, dict) and is_whole(schedule_state.get("bad_epochs"))
                               and isinstance(schedule_state.get("best"), (int, float))
                               and not math.isnan(schedule_state["best"])):
        raise CheckpointError(f"{path}: its learning-rate schedule state {schedule_state!r} is not valid")
    return _Restored(epoch, stale, stopped_by, history, params, saved_optimizer, optimizer_arrays,
                     _checked_generator(path, meta["rng"], rng, "its generator state"), layer_rngs,
                     schedule_state or None)


def restore_checkpoint(path, model, optimizer, rng, schedule, history, epochs=None) -> tuple[int, int]:
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

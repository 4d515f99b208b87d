"""The captioning run's checkpoint (:mod:`tiefnet.text.caption_run`): ``checkpoint.npz`` after every
epoch holds the model's arrays, Adam's m and v, the generator's state, the epochs done, the run's wall
time and the metrics entries so far: all that the next epoch depends on. A checkpoint may come from
anyone: every value is checked before anything is restored, each problem one CheckpointError line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy

from tiefnet import backend
from tiefnet.checkpoint import load_state, read_npz, write_npz
from tiefnet.errors import CheckpointError
from tiefnet.nn import Layer
from tiefnet.optim import Adam
from tiefnet.settings import is_number, is_whole
from tiefnet.text.charrnn_checkpoint import checked_arrays

CHECKPOINT_FORMAT = "tiefnet-caption-checkpoint/1"
METRIC_KEYS = ("epoch", "train_loss", "bleu1", "bleu2", "bleu3", "bleu4", "cider", "seconds")


def save_checkpoint(path: Path, model: Layer, optimizer: Adam, rng: numpy.random.Generator,
                    state: dict[str, Any]) -> None:
    """checkpoint.npz (atomic): the model, Adam's state, the generator and ``state`` (epoch, metrics, seconds)."""
    opt_meta, opt_arrays = optimizer.state_dict()
    arrays: dict[str, Any] = {f"model.{k}": v for k, v in model.arrays().items()}
    arrays.update({f"opt.{k}": v for k, v in opt_arrays.items()})
    meta = {"format": CHECKPOINT_FORMAT, "state": state, "rng": rng.bit_generator.state,
            "layer_rngs": [layer.rng.bit_generator.state for layer in model.random_layers()],  # context dropout
            "optimizer": {"name": optimizer.name, **opt_meta}}
    write_npz(path, arrays, meta)


def restore(path: Path, model: Layer, optimizer: Adam, rng: numpy.random.Generator, config: Any) -> dict[str, Any]:
    """Load checkpoint.npz into the model, optimizer and generator; returns the checked state."""
    arrays, meta = read_npz(path)
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a tiefnet caption checkpoint")
    state = _checked_state(path, meta.get("state"), config)
    opt = meta.get("optimizer")
    if not isinstance(opt, dict) or opt.get("name") != optimizer.name or not is_whole(opt.get("t")):
        raise CheckpointError(f"{path}: its optimizer state is not Adam's")
    expected: dict[str, Any] = {f"model.{k}": v for k, v in model.arrays().items()}
    expected.update({f"opt.{k}": v for k, v in optimizer.state_dict()[1].items()})
    arrays = checked_arrays(path, arrays, expected)
    layers, layer_states = model.random_layers(), meta.get("layer_rngs")
    if not isinstance(layer_states, list) or len(layer_states) != len(layers):
        raise CheckpointError(f"{path}: it holds no random generator state for each of the model's "
                              f"{len(layers)} random layers")
    try:
        rng.bit_generator.state = meta.get("rng")
        for layer, layer_state in zip(layers, layer_states):
            layer.rng.bit_generator.state = layer_state
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise CheckpointError(f"{path}: its random generator state does not load ({error})") from None
    load_state(model, {k[6:]: v for k, v in arrays.items() if k.startswith("model.")}, str(path))
    optimizer.load_state_dict({"eta": config.eta, "t": opt["t"]},
                              {k[4:]: backend.asarray(v) for k, v in arrays.items() if k.startswith("opt.")})
    return state


def _checked_state(path: Path, state: Any, config: Any) -> dict[str, Any]:
    if not isinstance(state, dict) or set(state) != {"epoch", "metrics", "seconds"}:
        raise CheckpointError(f"{path}: its state entry does not hold epoch, metrics and seconds")
    epoch, metrics = state["epoch"], state["metrics"]
    if not is_whole(epoch) or not 1 <= epoch <= config.epochs:
        raise CheckpointError(f"{path}: epoch {epoch!r} is not in [1, {config.epochs}] (--epochs)")
    if not isinstance(metrics, list) or [e.get("epoch") if isinstance(e, dict) else None for e in metrics] != \
            list(range(1, epoch + 1)) or not all(_is_entry(e) for e in metrics):
        raise CheckpointError(f"{path}: its metrics entries are not those of epochs 1 to {epoch}")
    if not is_number(state["seconds"], 0):
        raise CheckpointError(f"{path}: seconds must be a number at least 0")
    return {"epoch": epoch, "metrics": metrics, "seconds": float(state["seconds"])}


def _is_entry(entry: dict[str, Any]) -> bool:
    return set(entry) == set(METRIC_KEYS) and all(is_number(entry[k], 0) for k in METRIC_KEYS)

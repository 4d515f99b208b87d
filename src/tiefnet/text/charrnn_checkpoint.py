"""The char-rnn's training checkpoint (:mod:`tiefnet.text.charrnn`): ``checkpoint.npz`` holds the
model's arrays, Adam's m and v, the carried states h (and c) of the training streams, the generator's
state and the run's counters (:class:`Progress`): all that the next step depends on, so that a run
killed at any moment and resumed continues bit-identically. A checkpoint may come from anyone: every
value is checked before anything is restored, each problem one CheckpointError line.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy

from tiefnet import backend
from tiefnet.backend import xp
from tiefnet.checkpoint import load_state, read_npz, write_npz
from tiefnet.errors import CheckpointError
from tiefnet.nn import Sequential
from tiefnet.nn.recurrent import recurrent_layers
from tiefnet.optim import Adam
from tiefnet.settings import is_number, is_whole

# The run's settings and text arrive as charrnn.Config and charrnn.Corpus (typed Any here: charrnn
# imports this module, and the imports flow one way).
Config = Corpus = Any

CHECKPOINT_FORMAT = "tiefnet-charrnn-checkpoint/1"
METRIC_KEYS = ("step", "train_loss", "validation_loss", "validation_bpc", "seconds")


@dataclass
class Progress:
    """The counters of a run: everything besides arrays that a checkpoint restores."""

    step: int = 0  # training steps done
    position: int = 0  # where the streams' next block starts
    train_losses: list[float] = field(default_factory=list)  # of the steps since the last evaluation
    train_seconds: float = 0.0  # time spent in training steps
    chars: int = 0  # characters predicted in training
    seconds: float = 0.0  # wall time of the run so far
    metrics: list[dict[str, Any]] = field(default_factory=list)  # the metrics.jsonl entries so far


def save_checkpoint(path: Path, model: Sequential, optimizer: Adam, rng: numpy.random.Generator,
                    state: Progress, corpus: Corpus) -> None:
    """checkpoint.npz (atomic): the model's arrays, Adam's state, the streams' carried states, the
    generator's state and the counters: all that the next step depends on."""
    opt_meta, opt_arrays = optimizer.state_dict()
    arrays: dict[str, Any] = {f"model.{k}": v for k, v in model.arrays().items()}  # parameters and buffers
    arrays.update({f"opt.{k}": v for k, v in opt_arrays.items()})
    for i, layer in enumerate(recurrent_layers(model)):
        arrays.update({f"state.{i}.{k}": s for k, s in enumerate(layer.state)})  # h (and c), each (N, H)
    meta = {"format": CHECKPOINT_FORMAT, "progress": asdict(state), "rng": rng.bit_generator.state,
            "optimizer": {"name": optimizer.name, **opt_meta}, "text_sha256": corpus.sha256}
    write_npz(path, arrays, meta)


def restore(path: Path, model: Sequential, optimizer: Adam, rng: numpy.random.Generator, state: Progress,
            corpus: Corpus, config: Config) -> None:
    """Load checkpoint.npz into the model, optimizer, generator, carried states and ``state``; every
    value is checked first (the file may come from anyone), each problem a one-line CheckpointError."""
    arrays, meta = read_npz(path)
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a tiefnet char-rnn checkpoint")
    if meta.get("text_sha256") != corpus.sha256:
        raise CheckpointError(f"{path}: written while learning another text (the text file has changed)")
    progress = _checked_progress(path, meta.get("progress"), config, corpus)
    opt = meta.get("optimizer")
    if not isinstance(opt, dict) or opt.get("name") != optimizer.name or opt.get("t") != progress.step:
        raise CheckpointError(f"{path}: its optimizer state is not Adam's after step {progress.step}")
    expected: dict[str, Any] = {f"model.{k}": v for k, v in model.arrays().items()}
    expected.update({f"opt.{k}": v for k, v in optimizer.state_dict()[1].items()})
    for i, layer in enumerate(recurrent_layers(model)):
        expected.update({f"state.{i}.{k}": xp.empty((config.batch_size, layer.H), dtype=backend.dtype())
                         for k in range(len(layer.state_names))})
    arrays = checked_arrays(path, arrays, expected)
    try:
        rng.bit_generator.state = meta.get("rng")
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise CheckpointError(f"{path}: its random generator state does not load ({error})") from None
    load_state(model, {k[6:]: v for k, v in arrays.items() if k.startswith("model.")}, str(path))
    optimizer.load_state_dict({"eta": config.eta, "t": progress.step},
                              {k[4:]: backend.asarray(v) for k, v in arrays.items() if k.startswith("opt.")})
    for i, layer in enumerate(recurrent_layers(model)):
        layer.state = tuple(backend.asarray(arrays[f"state.{i}.{k}"]) for k in range(len(layer.state_names)))
    for f in fields(Progress):
        setattr(state, f.name, getattr(progress, f.name))


def checked_arrays(path: Path, arrays: dict[str, numpy.ndarray], expected: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's arrays, exactly those of ``expected`` with their shapes, cast to their dtypes,
    finite; Adam's v (a mean of squares) not negative."""
    missing, extra = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{path}: " + "; ".join(f"{what} arrays {', '.join(names[:5])}" for what, names in
                                                      (("missing", missing), ("unexpected", extra)) if names))
    checked = {}
    for name, like in expected.items():
        a = arrays[name]
        if a.shape != tuple(like.shape) or a.dtype.kind not in "iuf":
            raise CheckpointError(f"{path}: array {name} is {a.dtype} {a.shape}, expected numbers of shape "
                                  f"{tuple(like.shape)}")
        with numpy.errstate(over="ignore"):
            a = a.astype(like.dtype)
        if not numpy.isfinite(a).all() or (name.startswith("opt.v") and (a < 0).any()):
            raise CheckpointError(f"{path}: array {name} holds NaN, infinite or impossible values")
        checked[name] = a
    return checked


def _checked_progress(path: Path, progress: Any, config: Config, corpus: Corpus) -> Progress:
    """The checkpoint's counters, each of the right type and range and consistent with each other."""
    names = {f.name for f in fields(Progress)}
    if not isinstance(progress, dict) or set(progress) != names:
        raise CheckpointError(f"{path}: its progress entry does not hold {', '.join(sorted(names))}")
    step = progress["step"]
    if not is_whole(step) or not 1 <= step <= config.steps:
        raise CheckpointError(f"{path}: step {step!r} is not in [1, {config.steps}] (--steps)")
    metrics, losses = progress["metrics"], progress["train_losses"]
    if not isinstance(metrics, list) or not all(_is_entry(e) for e in metrics) or \
            [e["step"] for e in metrics] != sorted({e["step"] for e in metrics}) or \
            (metrics and metrics[-1]["step"] > step):
        raise CheckpointError(f"{path}: its metrics entries are not those of a char-rnn run up to step {step}")
    pending = step - (metrics[-1]["step"] if metrics else 0)
    if not isinstance(losses, list) or len(losses) != pending or not all(_is_time(v) for v in losses):
        raise CheckpointError(f"{path}: train_losses must be the {pending} losses since the last evaluation")
    if progress["position"] != corpus.position_after(step) or \
            progress["chars"] != step * config.batch_size * corpus.T:
        raise CheckpointError(f"{path}: position {progress['position']!r} or chars {progress['chars']!r} "
                              f"is not where step {step} leaves the streams")
    if not (_is_time(progress["seconds"]) and _is_time(progress["train_seconds"])):
        raise CheckpointError(f"{path}: seconds and train_seconds must be numbers at least 0")
    return Progress(**progress)


def _is_time(value: Any) -> bool:
    """A finite number at least 0 (a loss, a time)."""
    return is_number(value, 0)


def _is_entry(entry: Any) -> bool:
    """A metrics entry as :func:`_evaluate` writes it."""
    return isinstance(entry, dict) and tuple(sorted(entry)) == tuple(sorted(METRIC_KEYS)) and \
        is_whole(entry["step"]) and entry["step"] >= 1 and all(_is_time(entry[k]) for k in METRIC_KEYS)

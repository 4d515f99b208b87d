"""Saving and loading models and training state: ``.npz`` arrays plus JSON, never pickle.

A model folder holds ``model.npz`` (the arrays: parameters and buffers by their keys in the
layer tree, and the architecture as a JSON string stored as a plain unicode array) and
``model.json`` (the same meta data, readable: format, the application that wrote it, the
architecture and the application's info). Loading reads ``model.npz`` alone, so one atomic
file replace makes a save atomic: a write killed midway leaves the previous model loadable.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy

from tiefnet import backend
from tiefnet.errors import CheckpointError
from tiefnet.files import write_bytes, write_text
from tiefnet.nn.layer import Layer
from tiefnet.nn.registry import layer_from_config, layer_to_config

META_KEY = "__meta__"
FORMAT = "tiefnet-model/1"


def write_npz(path: str | os.PathLike, arrays: dict[str, Any], meta: dict[str, Any]) -> None:
    """Atomically write ``arrays`` and the JSON ``meta`` to ``path`` (a temp file, fsync, rename; never
    through a symlink)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {name: backend.to_numpy(a) for name, a in arrays.items()}
    payload[META_KEY] = numpy.array(json.dumps(meta))  # a unicode array: loadable without pickle
    write_bytes(path, lambda f: numpy.savez(f, **payload))


def read_npz(path: str | os.PathLike) -> tuple[dict[str, numpy.ndarray], dict[str, Any]]:
    """The arrays and the JSON meta written by :func:`write_npz` (``allow_pickle=False``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    with open(path, "rb") as f:
        if f.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):  # an .npz file is a zip archive
            raise CheckpointError(f"{path}: not a readable .npz file (not a zip archive)")
    try:
        data = numpy.load(path, allow_pickle=False)
        if not isinstance(data, numpy.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise CheckpointError(f"{path}: not a readable .npz file ({error})") from error
    if META_KEY not in arrays:
        raise CheckpointError(f"{path}: has no {META_KEY} entry: not written by tiefnet")
    try:
        meta = json.loads(str(arrays.pop(META_KEY)))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}: its {META_KEY} entry is not valid JSON ({error})") from error
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: its {META_KEY} entry is not a JSON object")
    return arrays, meta


def load_state(model: Layer, arrays: Mapping[str, numpy.ndarray], source: str) -> None:
    """Copy ``arrays`` into ``model``'s parameters and buffers (``model.arrays()``), checking names,
    shapes and values first: nothing is changed unless every array fits."""
    state = model.arrays()
    missing = [name for name in state if name not in arrays]
    if missing:
        raise CheckpointError(f"{source}: missing arrays {', '.join(missing)} for {model.describe()}")
    for name, p in state.items():
        if tuple(arrays[name].shape) != tuple(p.shape):
            raise CheckpointError(
                f"{source}: array {name} has shape {tuple(arrays[name].shape)}, the model expects {tuple(p.shape)}"
            )
        if not numpy.issubdtype(arrays[name].dtype, numpy.number):
            raise CheckpointError(f"{source}: array {name} holds {arrays[name].dtype} values, not numbers")
        if not numpy.all(numpy.isfinite(arrays[name])):
            raise CheckpointError(f"{source}: array {name} holds NaN or infinite values")
    for name, p in state.items():
        p[...] = backend.asarray(arrays[name], dtype=p.dtype)


def copy_state(target: Layer, source: Layer) -> None:
    """target's parameters and buffers = source's, copied into target's own arrays (same architecture)."""
    arrays = source.arrays()
    for name, p in target.arrays().items():
        p[...] = arrays[name]


# The application that wrote a model folder, for folders written before model.json named it.
def _guess_app(info: Any) -> str | None:
    if not isinstance(info, dict):
        return None
    if info.get("kind") == "dqn":
        return "dqn"
    if "chars" in info:
        return "charrnn"
    if "cost" in info:
        return "mnist"
    return None


def save_model(folder: str | os.PathLike, model: Layer, info: dict[str, Any] | None = None,
               app: str | None = None) -> Path:
    """Write ``folder/model.npz`` (atomic) and ``folder/model.json``; returns the folder.

    ``app`` names the application that wrote it ("mnist", "charrnn", "dqn", ...): a loader can then
    tell what the model predicts without guessing from its shape."""
    folder = Path(folder)
    meta = {"format": FORMAT, "app": app, "architecture": layer_to_config(model), "info": info or {}}
    write_npz(folder / "model.npz", model.arrays(), meta)
    write_text(folder / "model.json", json.dumps(meta, indent=2) + "\n")
    return folder


def read_model(folder: str | os.PathLike, custom: Mapping[str, type[Layer]] | None = None
               ) -> tuple[Layer, dict[str, Any]]:
    """Rebuild a model saved by :func:`save_model`; returns (model, meta) with meta's "app" and "info"
    (for folders written before "app" existed, it is inferred from the info)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such model folder")
    arrays, meta = read_npz(folder / "model.npz")
    if meta.get("format") != FORMAT or "architecture" not in meta:
        raise CheckpointError(f"{folder / 'model.npz'}: not a tiefnet model (format {meta.get('format')!r})")
    try:
        model = layer_from_config(meta["architecture"], custom)
    except MemoryError:
        raise CheckpointError(f"{folder / 'model.npz'}: its architecture is too large to build") from None
    load_state(model, arrays, str(folder / "model.npz"))
    extra = sorted(set(arrays) - set(model.arrays()))
    if extra:
        raise CheckpointError(f"{folder / 'model.npz'}: arrays {', '.join(extra)} do not belong to {model.describe()}")
    info = meta.get("info", {})
    app = meta.get("app") if isinstance(meta.get("app"), str) else _guess_app(info)
    return model, {"app": app, "info": info}


def load_model(folder: str | os.PathLike, custom: Mapping[str, type[Layer]] | None = None
               ) -> tuple[Layer, dict[str, Any]]:
    """Rebuild a model saved by :func:`save_model`; returns (model, info). ``custom`` adds layer
    types of your own ({"MyLayer": MyLayer}) to those of tiefnet.nn."""
    model, meta = read_model(folder, custom)
    return model, meta["info"]

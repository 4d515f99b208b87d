"""Saving and loading models and training state: ``.npz`` arrays plus JSON, never pickle.

A model folder holds ``model.npz`` (the arrays: parameters and buffers by their keys in the
layer tree, and the architecture as a JSON string stored as a plain unicode array) and
``model.json`` (the same meta data, readable: format, the application that wrote it, the
architecture and the application's info). Loading reads ``model.npz`` alone, so one atomic
file replace makes a save atomic: a write killed midway leaves the previous model loadable.
"""
from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy

from tiefnet import backend, limits
from tiefnet.errors import CheckpointError, ConfigError
from tiefnet.files import parse_json, write_bytes, write_text
from tiefnet.nn.layer import Container, Layer
from tiefnet.nn.registry import architecture_count, layer_from_config, layer_to_config

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


MAX_ENTRIES = 100_000  # arrays in one .npz file
MAX_META_BYTES = 16 * 2**20  # the JSON meta entry (architecture and info)
SMALL_MODEL = 2**24  # numbers an architecture may allocate whatever its file holds (then: which array is missing)


def npz_headers(path: str | os.PathLike) -> dict[str, tuple[tuple[int, ...], numpy.dtype]]:
    """{name: (shape, dtype)} of the arrays in an .npz file, read from the .npy headers alone. The
    sizes they declare are checked before any array is read: no object (pickled) arrays, no array
    larger than the data the archive says it holds, all of them together within
    :func:`tiefnet.limits.memory_limit` (a header claiming 10^12 floats, a small file that would
    decompress to gigabytes: refused with the size)."""
    headers, total = {}, 0
    readers = {(1, 0): numpy.lib.format.read_array_header_1_0, (2, 0): numpy.lib.format.read_array_header_2_0}
    with zipfile.ZipFile(path) as archive:
        entries = archive.infolist()
        if len(entries) > MAX_ENTRIES:
            raise CheckpointError(f"{path}: holds {len(entries)} entries, more than {MAX_ENTRIES}")
        for entry in entries:
            if not entry.filename.endswith(".npy"):
                raise CheckpointError(f"{path}: entry {entry.filename[:80]!r} is not an .npy array")
            with archive.open(entry) as f:
                version = numpy.lib.format.read_magic(f)
                if version not in readers:
                    raise CheckpointError(f"{path}: entry {entry.filename[:80]!r} has .npy format {version}")
                shape, _, dtype = readers[version](f)
            if dtype.hasobject:
                raise CheckpointError(f"{path}: entry {entry.filename[:80]!r} holds Python objects (pickle); "
                                      f"refusing to load it")
            nbytes = math.prod(shape) * dtype.itemsize
            if nbytes > entry.file_size:
                raise CheckpointError(f"{path}: entry {entry.filename[:80]!r} declares {limits.size(nbytes)} "
                                      f"of data but holds {limits.size(entry.file_size)}")
            total += nbytes
            headers[entry.filename[:-4]] = (tuple(shape), dtype)
    if META_KEY in headers and headers[META_KEY][0] == () and headers[META_KEY][1].itemsize > MAX_META_BYTES:
        raise CheckpointError(f"{path}: its {META_KEY} entry is larger than {limits.size(MAX_META_BYTES)}")
    try:
        limits.check_allocation(total, f"{path}: its arrays")
    except ConfigError as error:
        raise CheckpointError(str(error)) from None
    return headers


def read_npz(path: str | os.PathLike) -> tuple[dict[str, numpy.ndarray], dict[str, Any]]:
    """The arrays and the JSON meta written by :func:`write_npz` (``allow_pickle=False``; the
    headers checked first by :func:`npz_headers`)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    with open(path, "rb") as f:
        if f.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):  # an .npz file is a zip archive
            raise CheckpointError(f"{path}: not a readable .npz file (not a zip archive)")
    try:
        npz_headers(path)
        data = numpy.load(path, allow_pickle=False)
        if not isinstance(data, numpy.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, NotImplementedError) as error:
        raise CheckpointError(f"{path}: not a readable .npz file ({error})") from error
    if META_KEY not in arrays:
        raise CheckpointError(f"{path}: has no {META_KEY} entry: not written by tiefnet")
    meta_entry = arrays.pop(META_KEY)
    if meta_entry.shape != () or meta_entry.dtype.kind != "U":
        raise CheckpointError(f"{path}: its {META_KEY} entry is not a JSON string")
    meta = parse_json(str(meta_entry), f"{path}: its {META_KEY} entry", CheckpointError)
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: its {META_KEY} entry is not a JSON object")
    return arrays, meta


def read_checkpoint(path: str | os.PathLike, format: str, what: str) -> tuple[dict[str, numpy.ndarray], dict[str, Any]]:
    """The arrays and meta of a training checkpoint whose meta names ``format`` (CheckpointError
    naming ``what`` — "DQN", "AlphaZero" — otherwise, or if its arrays do not fit in memory)."""
    try:
        arrays, meta = read_npz(path)
    except MemoryError:
        raise CheckpointError(f"{path}: its arrays are too large to load") from None
    if meta.get("format") != format:
        raise CheckpointError(f"{path}: not a tiefnet {what} checkpoint")
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
        if not numpy.issubdtype(arrays[name].dtype, numpy.number) or numpy.iscomplexobj(arrays[name]):
            raise CheckpointError(f"{source}: array {name} holds {arrays[name].dtype} values, not real numbers")
        with numpy.errstate(over="ignore"):  # finite in the model's dtype: 1e300 is inf in float32
            finite = numpy.all(numpy.isfinite(arrays[name].astype(numpy.dtype(p.dtype))))
        if not finite:
            raise CheckpointError(f"{source}: array {name} holds NaN or infinite values (in {p.dtype})")
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
    source = folder / "model.npz"
    try:
        count = architecture_count(meta["architecture"], custom)
    except CheckpointError as error:
        raise CheckpointError(f"{source}: {error}") from None
    numbers = sum(a.size for a in arrays.values())
    if count is not None and count > max(2 * numbers, SMALL_MODEL):  # the file's arrays bound what is built
        raise CheckpointError(f"{source}: its architecture has {count} parameters and buffers, its arrays "
                              f"hold only {numbers} numbers")
    try:
        model = layer_from_config(meta["architecture"], custom)
    except MemoryError:
        raise CheckpointError(f"{source}: its architecture is too large to build") from None
    if all(isinstance(layer, Container) for _, layer in model.walk()):  # containers of nothing
        raise CheckpointError(f"{source}: its architecture {model.describe()} holds no layers")
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

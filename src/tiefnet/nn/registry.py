"""Every layer type a saved architecture may name, and the function that rebuilds a layer tree.

The table is written out here, by ``tiefnet.nn`` itself: loading a model never depends on which
modules happen to have been imported. A layer type of your own is loadable after an explicit
``register(MyLayer)`` (or ``load_model(folder, custom={"MyLayer": MyLayer})``).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy

from tiefnet import backend, limits
from tiefnet.errors import CheckpointError, ConfigError
from tiefnet.nn.attention import SoftAttention
from tiefnet.nn.activations import ReLU, Sigmoid, Softmax, Step, Tanh
from tiefnet.nn.cells import LSTMCell, RNNCell
from tiefnet.nn.containers import Parallel, Residual, Sequential, Taps
from tiefnet.nn.conv import Conv2d
from tiefnet.nn.dense import Dense
from tiefnet.nn.dropout import Dropout
from tiefnet.nn.embedding import Embedding
from tiefnet.nn.layer import Layer, layer_to_config
from tiefnet.nn.norm import BatchNorm1d, BatchNorm2d, InstanceNorm2d
from tiefnet.nn.pad import ReflectionPad2d, ZeroPad2d
from tiefnet.nn.pool import L2Pool2d, MaxPool2d
from tiefnet.nn.recurrent import LSTM, RNN
from tiefnet.nn.reshape import Flatten, Reshape, TimeFlatten
from tiefnet.nn.upsample import Upsample

LAYER_TYPES: dict[str, type[Layer]] = {cls.__name__: cls for cls in (
    Sequential, Residual, Parallel, Taps,
    Dense, Sigmoid, Tanh, ReLU, Softmax, Step, Dropout,
    Conv2d, MaxPool2d, L2Pool2d, Flatten, Reshape,
    Embedding, RNN, LSTM, RNNCell, LSTMCell, TimeFlatten, SoftAttention,
    BatchNorm1d, BatchNorm2d, InstanceNorm2d, ZeroPad2d, ReflectionPad2d, Upsample,
)}

# The built-in types that hold no arrays of their own (a container's are its children's).
NO_ARRAYS: frozenset[type[Layer]] = frozenset({
    Sequential, Residual, Parallel, Taps, Sigmoid, Tanh, ReLU, Softmax, Step, Dropout, MaxPool2d, L2Pool2d,
    Flatten, Reshape, TimeFlatten, ZeroPad2d, ReflectionPad2d, Upsample,
})

MAX_DEPTH = 64  # containers nested deeper than this in a file are refused (no RecursionError)
MAX_LAYERS = 100_000  # layers in one architecture (a ResNet has a few hundred)


def register(cls: type[Layer], name: str | None = None) -> type[Layer]:
    """Make a layer type of your own loadable from a saved architecture (usable as a decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register: {cls!r} is not a Layer subclass")
    LAYER_TYPES[name or cls.__name__] = cls
    return cls


def _is_layer_config(value: Any) -> bool:
    return isinstance(value, dict) and "type" in value


def _children(value: Any) -> list | None:
    """The child layer configs a config value holds (a layer config, or a list of them), or None."""
    if _is_layer_config(value):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value) \
            and any(_is_layer_config(v) for v in value):  # a list of layers (one without a type is refused)
        return value
    return None


def _layer_type(config: Any, types: Mapping[str, type[Layer]], depth: int) -> type[Layer]:
    if depth > MAX_DEPTH:
        raise CheckpointError(f"the architecture nests layers more than {MAX_DEPTH} levels deep")
    if not _is_layer_config(config):
        raise CheckpointError(f"layer entry {str(config)[:200]} has no 'type'")
    kind = config["type"]
    if not isinstance(kind, str) or kind not in types:
        raise CheckpointError(f"unknown layer type {str(kind)[:80]!r} (known: {', '.join(sorted(types))})")
    return types[kind]


def architecture_count(config: Any, custom: Mapping[str, type[Layer]] | None = None) -> int | None:
    """Check a saved architecture without building a layer: every type known, nested at most
    MAX_DEPTH deep, 1 to MAX_LAYERS layers. Returns the numbers its layers would allocate
    (:meth:`Layer.array_count`; None if a layer type does not say)."""
    types = {**LAYER_TYPES, **(custom or {})}
    total: int | None = 0
    layers, todo = 0, [(config, 0)]
    while todo:
        entry, depth = todo.pop()
        cls = _layer_type(entry, types, depth)
        layers += 1
        if layers > MAX_LAYERS:
            raise CheckpointError(f"the architecture has more than {MAX_LAYERS} layers")
        own: dict[str, Any] = {}
        for key, value in entry.items():
            children = _children(value) if key != "type" else None
            todo.extend((child, depth + 1) for child in children or [])
            if children is None and key != "type":
                own[key] = value
        count = 0 if cls in NO_ARRAYS else cls.array_count(own)
        total = None if total is None or count is None else total + count
    return total


def layer_from_config(config: Any, custom: Mapping[str, type[Layer]] | None = None, depth: int = 0) -> Layer:
    """Rebuild the layer tree that :func:`layer_to_config` wrote. Child layers (a config value that
    is a layer config, or a list of them) are built first and handed to the parent's from_config.
    The whole tree is checked first (:func:`architecture_count`): what it would allocate must fit the
    memory limit (:mod:`tiefnet.limits`)."""
    if depth == 0:
        count = architecture_count(config, custom)
        if count is not None:
            try:
                limits.check_allocation(count * numpy.dtype(backend.dtype()).itemsize, "the architecture")
            except ConfigError as error:
                raise CheckpointError(str(error)) from None
    types = {**LAYER_TYPES, **(custom or {})}
    cls = _layer_type(config, types, depth)
    args: dict[str, Any] = {}
    for key, value in config.items():
        if key == "type":
            continue
        children = _children(value)
        if children is not None:
            built = [layer_from_config(v, custom, depth + 1) for v in children]
            value = built[0] if _is_layer_config(value) else built
        args[key] = value
    try:
        return cls.from_config(args)
    except (TypeError, ValueError, KeyError) as error:
        kind = config["type"]
        shown = {k: (v.describe()[:60] if isinstance(v, Layer) else v) for k, v in args.items() if k != "layers"}
        raise CheckpointError(f"layer {kind}: bad settings {shown}: {error}") from error


__all__ = ["LAYER_TYPES", "MAX_DEPTH", "MAX_LAYERS", "NO_ARRAYS", "architecture_count", "layer_from_config",
           "layer_to_config", "register"]

"""Every layer type a saved architecture may name, and the function that rebuilds a layer tree.

The table is written out here, by ``tiefnet.nn`` itself: loading a model never depends on which
modules happen to have been imported. A layer type of your own is loadable after an explicit
``register(MyLayer)`` (or ``load_model(folder, custom={"MyLayer": MyLayer})``).
"""
from __future__ import annotations

from typing import Any, Mapping

from tiefnet.errors import CheckpointError
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
    Embedding, RNN, LSTM, RNNCell, LSTMCell, TimeFlatten,
    BatchNorm1d, BatchNorm2d, InstanceNorm2d, ZeroPad2d, ReflectionPad2d, Upsample,
)}

MAX_DEPTH = 64  # containers nested deeper than this in a file are refused (no RecursionError)


def register(cls: type[Layer], name: str | None = None) -> type[Layer]:
    """Make a layer type of your own loadable from a saved architecture (usable as a decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register: {cls!r} is not a Layer subclass")
    LAYER_TYPES[name or cls.__name__] = cls
    return cls


def _is_layer_config(value: Any) -> bool:
    return isinstance(value, dict) and "type" in value


def layer_from_config(config: Any, custom: Mapping[str, type[Layer]] | None = None, depth: int = 0) -> Layer:
    """Rebuild the layer tree that :func:`layer_to_config` wrote. Child layers (a config value that
    is a layer config, or a list of them) are built first and handed to the parent's from_config."""
    if depth > MAX_DEPTH:
        raise CheckpointError(f"the architecture nests layers more than {MAX_DEPTH} levels deep")
    if not _is_layer_config(config):
        raise CheckpointError(f"layer entry {str(config)[:200]} has no 'type'")
    kind = config["type"]
    types = {**LAYER_TYPES, **(custom or {})}
    if not isinstance(kind, str) or kind not in types:
        raise CheckpointError(f"unknown layer type {str(kind)[:80]!r} (known: {', '.join(sorted(types))})")
    args: dict[str, Any] = {}
    for key, value in config.items():
        if key == "type":
            continue
        if _is_layer_config(value):
            value = layer_from_config(value, custom, depth + 1)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value) \
                and any(_is_layer_config(v) for v in value):  # a list of layers (one without a type is refused)
            value = [layer_from_config(v, custom, depth + 1) for v in value]
        args[key] = value
    try:
        return types[kind].from_config(args)
    except (TypeError, ValueError, KeyError) as error:
        shown = {k: (v.describe()[:60] if isinstance(v, Layer) else v) for k, v in args.items() if k != "layers"}
        raise CheckpointError(f"layer {kind}: bad settings {shown}: {error}") from error


__all__ = ["LAYER_TYPES", "MAX_DEPTH", "layer_from_config", "layer_to_config", "register"]

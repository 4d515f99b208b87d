"""Layers that only change the shape of the data: Flatten (feature maps -> a vector for the
dense layers, 3.1) and Reshape (a flat MNIST row -> a 1 x 28 x 28 image for the conv layers)."""
from __future__ import annotations

import math
from typing import Any

from tiefnet.backend import Array
from tiefnet.errors import ConfigError, ShapeError
from tiefnet.nn.layer import Layer


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W); backward restores the shape. No parameters."""

    def forward(self, x: Array, train: bool = False) -> Array:
        out = x.reshape(x.shape[0], -1)
        if train:
            self._shape, self.output = x.shape, out
        return out

    def backward(self, da: Array, need_input_grad: bool = True) -> Array | None:
        return da.reshape(self._require_cache("_shape"))


class Reshape(Layer):
    """(N, n) -> (N, *shape), e.g. shape (1, 28, 28) turns MNIST rows into one-channel images."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        if not self.shape or any(s < 1 for s in self.shape):
            raise ConfigError(f"Reshape: shape={shape} must be positive sizes")
        self.n_in = math.prod(self.shape)  # the width of the rows it takes (checked by Sequential)

    def forward(self, x: Array, train: bool = False) -> Array:
        if x[0].size != self.n_in:
            raise ShapeError(f"{self.describe()}: expected {self.n_in} values per sample, got {tuple(x.shape)}")
        out = x.reshape(x.shape[0], *self.shape)
        if train:
            self._in_shape, self.output = x.shape, out
        return out

    def backward(self, da: Array, need_input_grad: bool = True) -> Array | None:
        return da.reshape(self._require_cache("_in_shape"))

    def to_config(self) -> dict[str, Any]:
        return {"shape": list(self.shape)}


class TimeFlatten(Layer):
    """(N, T, V) -> (N T, V): every time step becomes a row, so a loss averages over all N T steps
    (the char-rnn's log-likelihood per character, 4.4.1)."""

    def forward(self, x: Array, train: bool = False) -> Array:
        out = x.reshape(-1, x.shape[-1])  # (N T, V)
        if train:
            self._in_shape, self.output = x.shape, out
        return out

    def backward(self, da: Array, need_input_grad: bool = True) -> Array | None:
        return da.reshape(self._require_cache("_in_shape"))  # (N, T, V)

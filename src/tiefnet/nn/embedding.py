"""Embedding: character (or word) ids -> learned vectors, the input layer of the text models of
chapter 4. Equivalent to a Dense layer without bias applied to one-hot vectors, without ever
building them in the forward pass."""
from __future__ import annotations

from typing import Any

import numpy

from tiefnet.backend import Array, sum_rows_by_index
from tiefnet.errors import ConfigError, ShapeError
from tiefnet.nn import init as initialisers
from tiefnet.nn.layer import Layer, whole_numbers


class Embedding(Layer):
    """a[n, t] = W[x[n, t]]: row x of W for each id x.

    Shapes: ids x (N, T) integers in [0, V) -> a (N, T, D); W: (V, D).
    Backward: dW[v] = sum of delta[n, t] over the positions with x[n, t] = v (= one_hot(x)^T delta,
    computed as a scatter-add without the (N T, V) one-hot matrix); there is no gradient for the
    integer input.
    """

    def __init__(self, V: int, D: int, rng: numpy.random.Generator | None = None):
        super().__init__()
        if int(V) < 1 or int(D) < 1:
            raise ConfigError(f"Embedding: V={V} and D={D} must be at least 1")
        self.V, self.D = int(V), int(D)
        rng = numpy.random.default_rng() if rng is None else rng
        self.params["W"] = initialisers.normal(rng, (self.V, self.D), 1.0 / numpy.sqrt(self.D))

    def forward(self, x: Array, train: bool = False) -> Array:
        if x.ndim < 1 or x.dtype.kind not in "iu":
            raise ShapeError(f"{self.describe()}: expects integer ids, got {x.dtype} of shape {tuple(x.shape)}")
        if x.size and (int(x.min()) < 0 or int(x.max()) >= self.V):
            raise ShapeError(f"{self.describe()}: ids must lie in [0, {self.V}), got {int(x.min())}..{int(x.max())}")
        a = self.params["W"][x]  # (N, T, D)
        if train:
            self._ids, self.output = x, a
        return a

    def backward(self, delta: Array, need_input_grad: bool = True) -> Array | None:
        ids = self._require_cache("_ids").reshape(-1)  # (N T,)
        if self.trainable:  # dW[v] = sum over the positions that read row v
            sum_rows_by_index(self._grad("W"), ids, delta.reshape(-1, self.D))
        return None  # ids are not differentiable

    def to_config(self) -> dict[str, Any]:
        return {"V": self.V, "D": self.D}

    @classmethod
    def array_count(cls, config: dict[str, Any]) -> int | None:
        sizes = whole_numbers(config, "V", "D")
        return None if sizes is None else sizes[0] * sizes[1]  # W

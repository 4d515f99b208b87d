"""Dropout (2.7.3): per mini-batch, temporarily delete a fraction p of the hidden neurons."""
from __future__ import annotations

from typing import Any

import numpy

from tiefnet import backend
from tiefnet.backend import Array
from tiefnet.errors import ConfigError
from tiefnet.nn.layer import Layer, register


@register
class Dropout(Layer):
    """a = mask * x / (1 - p) while training; a = x at test time.

    The lecture removes half of the hidden neurons during a step and, at test time, uses
    all of them with their outgoing weights halved. We scale the kept activations by
    1/(1 - p) during training instead ("inverted dropout"): the same expected input to the
    next layer, so test time needs no change of weights.

    Shapes: x (N, ...) -> a (N, ...), the mask drawn per sample and neuron.
    """

    def __init__(self, p: float = 0.5, rng: numpy.random.Generator | None = None):
        super().__init__()
        if not 0.0 <= float(p) < 1.0:
            raise ConfigError(f"Dropout: p={p} must be in [0, 1)")
        self.p = float(p)
        self.rng = numpy.random.default_rng() if rng is None else rng
        self._mask: Array | None = None

    def forward(self, x: Array, train: bool = False) -> Array:
        if not train or self.p == 0.0:
            self._mask = None
            self.output = x
            return x
        keep = self.rng.random(x.shape) >= self.p  # host draw: reproducible on CPU and GPU
        self._mask = backend.asarray(keep, dtype=x.dtype) / (1.0 - self.p)
        self.output = x * self._mask
        return self.output

    def backward(self, delta: Array, need_input_grad: bool = True) -> Array | None:
        if self.p == 0.0:
            return delta
        return delta * self._require_cache("_mask")

    def to_config(self) -> dict[str, Any]:
        return {"p": self.p}

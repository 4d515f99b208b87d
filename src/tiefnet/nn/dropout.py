"""Dropout (2.7.3): per mini-batch, temporarily delete a fraction p of the hidden neurons."""
from __future__ import annotations

from typing import Any

import numpy

from tiefnet import backend
from tiefnet.backend import Array
from tiefnet.errors import ConfigError
from tiefnet.nn.layer import Layer


class Dropout(Layer):
    """a = mask * x / (1 - p) while training; a = x at test time.

    The lecture removes half of the hidden neurons for each mini-batch and, at test time, uses
    all of them with their outgoing weights halved. Here each neuron is removed with
    probability p (about half for p = 0.5), and the kept activations are scaled by 1/(1 - p)
    during training instead ("inverted dropout"): the same expected input to the next layer,
    so test time needs no change of weights.

    Shapes: x (N, n) -> a (N, n); the mask is (1, n), one per mini-batch as in the lecture,
    or (N, n) with ``per_sample=True`` (a new mask for every sample, Srivastava et al. 2014).
    """

    def __init__(self, p: float = 0.5, per_sample: bool = False, rng: numpy.random.Generator | None = None):
        super().__init__()
        if not 0.0 <= float(p) < 1.0:
            raise ConfigError(f"Dropout: p={p} must be in [0, 1)")
        self.p = float(p)
        self.per_sample = bool(per_sample)
        self.rng = numpy.random.default_rng() if rng is None else rng
        self._mask: Array | None = None

    def forward(self, x: Array, train: bool = False) -> Array:
        if not train:
            return x
        if self.p == 0.0:
            self.output = x
            return x
        if self.per_sample:  # one mask per sample; a part of a split batch takes its rows of the batch's draw
            lo, hi, N = backend.part_of_batch(x.shape[0])
            keep = self.rng.random((N, *x.shape[1:]))[lo:hi] >= self.p
        else:  # one mask per mini-batch, (1, n): every part of a split batch draws the same
            keep = self.rng.random((1, *x.shape[1:])) >= self.p  # drawn on the host: reproducible on CPU and GPU
        self._mask = backend.asarray(keep, dtype=x.dtype) / (1.0 - self.p)
        self.output = x * self._mask
        return self.output

    def backward(self, da: Array, need_input_grad: bool = True) -> Array | None:
        if self.p == 0.0:
            return da
        return da * self._require_cache("_mask")  # removed neurons pass no gradient back

    def to_config(self) -> dict[str, Any]:
        return {"p": self.p, "per_sample": self.per_sample}

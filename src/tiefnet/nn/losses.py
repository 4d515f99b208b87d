"""Cost functions (2.5, 2.7.1, 2.7.2). Each is the mean over the N samples of a mini-batch:
the 1/N of the mean appears here, and only here.

A cost gives ``cost(a, y)`` and ``grad(a, y) = dC/da^L`` (the nabla_a C of BP1). Where the
cost and the output layer cancel sigma'(z^L) — cross-entropy after a sigmoid (2.7.1),
log-likelihood after a softmax (2.7.2) — ``delta(a, y)`` gives delta^L = dC/dz^L = a^L - y
directly, which is exact and numerically safer than dividing by a (1 - a) and multiplying back.

Shapes: a, y: (N, K) with y one-hot (or any targets in [0, 1]); cost: a float.
"""
from __future__ import annotations

import numpy

from tiefnet.backend import Array, xp
from tiefnet.nn.activations import Sigmoid, Softmax
from tiefnet.nn.layer import Layer


def _clip(a: Array, high: bool = True) -> Array:
    """Keep a saturated output off 0 and 1, so that ln a and ln(1 - a) stay finite.

    The margin is the dtype's resolution: 1 - 1e-12 would round to 1.0 in float32.
    """
    eps = float(numpy.finfo(a.dtype).eps)
    return xp.clip(a, eps, 1 - eps if high else 1.0)


class Loss:
    name = ""
    output_layer: type[Layer] | None = None  # the output activation whose sigma' it cancels

    def cost(self, a: Array, y: Array) -> float:
        raise NotImplementedError

    def grad(self, a: Array, y: Array) -> Array:
        """dC/da^L, (N, K)."""
        raise NotImplementedError

    def delta(self, a: Array, y: Array) -> Array:
        """delta^L = dC/dz^L = (a^L - y)/N, valid when ``cancels(output layer)``."""
        return (a - y) / a.shape[0]

    def cancels(self, layer: Layer) -> bool:
        return self.output_layer is not None and type(layer) is self.output_layer

    def __call__(self, a: Array, y: Array) -> tuple[float, Array]:
        """The cost and dC/da^L."""
        return self.cost(a, y), self.grad(a, y)


class Quadratic(Loss):
    """C = 1/(2N) sum_x ||y(x) - a^L(x)||^2 (2.5); dC/da^L = (a^L - y)/N."""

    name = "quadratic"

    def cost(self, a: Array, y: Array) -> float:
        return float(0.5 * ((a - y) ** 2).sum() / a.shape[0])

    def grad(self, a: Array, y: Array) -> Array:
        g = a - y
        g /= a.shape[0]
        return g


class CrossEntropy(Loss):
    """C = -1/N sum_x sum_j [y_j ln a_j + (1 - y_j) ln(1 - a_j)] (2.7.1).

    After a sigmoid output, delta^L = a^L - y: sigma'(z) drops out, no slow learning.
    """

    name = "cross-entropy"
    output_layer = Sigmoid

    def cost(self, a: Array, y: Array) -> float:
        a = _clip(a)
        return float(-(y * xp.log(a) + (1 - y) * xp.log(1 - a)).sum() / a.shape[0])

    def grad(self, a: Array, y: Array) -> Array:
        a = _clip(a)
        return (a - y) / (a * (1 - a)) / a.shape[0]  # = -(y/a - (1-y)/(1-a)) / N


class LogLikelihood(Loss):
    """C = -ln a^L_y for the true class y (2.7.2), averaged over the batch.

    After a softmax output, dC/dz^L_j = a^L_j - y_j, as for cross-entropy after a sigmoid.
    """

    name = "log-likelihood"
    output_layer = Softmax

    def cost(self, a: Array, y: Array) -> float:
        return float(-(y * xp.log(_clip(a, high=False))).sum() / a.shape[0])

    def grad(self, a: Array, y: Array) -> Array:
        return -y / _clip(a, high=False) / a.shape[0]


LOSSES = {cls.name: cls for cls in (Quadratic, CrossEntropy, LogLikelihood)}

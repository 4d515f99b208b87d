"""Activation layers: a = sigma(z) applied elementwise (2.1, 2.2), and the softmax (2.7.2).

Each backward is the diag(sigma'(z)) factor of (BP1)/(BP2): delta = sigma'(z) * dC/da.
"""
from __future__ import annotations

from tiefnet import backend
from tiefnet.backend import Array, xp
from tiefnet.nn.layer import Layer, register


@register
class Step(Layer):
    """The perceptron's output (2.1): 1 if z > 0 else 0. Not differentiable: no backward."""

    def forward(self, z: Array, train: bool = False) -> Array:
        self.output = (z > 0).astype(z.dtype)
        return self.output

    def backward(self, delta: Array, need_input_grad: bool = True) -> Array | None:
        raise RuntimeError("Step has no useful derivative (2.2): use Sigmoid for gradient learning")


@register
class Sigmoid(Layer):
    """a = sigma(z) = 1 / (1 + e^{-z}) (2.2); sigma'(z) = sigma(z) (1 - sigma(z))."""

    def forward(self, z: Array, train: bool = False) -> Array:
        a = backend.sigmoid(z)
        self.output = a  # sigma'(z) is computed from a in backward
        return a

    def backward(self, delta: Array, need_input_grad: bool = True) -> Array | None:
        a = self._require_cache("output")
        delta = delta * a
        delta *= 1 - a  # (BP1)/(BP2): diag(sigma'(z)) . dC/da, sigma' = a (1 - a)
        return delta


@register
class Tanh(Layer):
    """a = tanh(z); tanh'(z) = 1 - tanh(z)^2."""

    def forward(self, z: Array, train: bool = False) -> Array:
        self.output = xp.tanh(z)
        return self.output

    def backward(self, delta: Array, need_input_grad: bool = True) -> Array | None:
        a = self._require_cache("output")
        return delta * (1 - a * a)


@register
class ReLU(Layer):
    """a = max(0, z); ReLU'(z) = 1 for z > 0, else 0."""

    def forward(self, z: Array, train: bool = False) -> Array:
        self.output = xp.maximum(z, 0)
        return self.output

    def backward(self, delta: Array, need_input_grad: bool = True) -> Array | None:
        a = self._require_cache("output")
        return delta * (a > 0)


@register
class Softmax(Layer):
    """a_j = exp(z_j) / sum_k exp(z_k) (2.7.2), over the last axis.

    a_j depends on every z_k, so sigma' is a Jacobian: dC/dz_j = a_j (dC/da_j - sum_k a_k dC/da_k).
    """

    def forward(self, z: Array, train: bool = False) -> Array:
        e = xp.exp(z - z.max(axis=-1, keepdims=True))  # shift by max z: same a, no overflow
        self.output = e / e.sum(axis=-1, keepdims=True)
        return self.output

    def backward(self, delta: Array, need_input_grad: bool = True) -> Array | None:
        a = self._require_cache("output")
        return a * (delta - (delta * a).sum(axis=-1, keepdims=True))


ACTIVATIONS = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU}

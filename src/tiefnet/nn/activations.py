"""Activation layers: a = sigma(z) applied elementwise (2.1, 2.2), and the softmax (2.7.2).

Each backward turns da = dC/da into delta = dC/dz: the diag(sigma'(z)) factor of (BP1)/(BP2),
delta = sigma'(z) * da. A training forward caches what that needs (here: a itself).
"""
from __future__ import annotations

from tiefnet import backend
from tiefnet.backend import Array, xp
from tiefnet.nn.layer import Layer


class Activation(Layer):
    """Elementwise a = f(z); ``output`` and ``_a`` are the a of the last training forward."""

    def forward(self, z: Array, train: bool = False) -> Array:
        a = self.f(z)
        if train:
            self._a = self.output = a  # sigma'(z) is computed from a in backward
        return a

    def f(self, z: Array) -> Array:
        raise NotImplementedError


class Step(Activation):
    """The perceptron's output (2.1): a = 1 if z = w . x + b > 0 else 0. Not differentiable: no backward."""

    def f(self, z: Array) -> Array:
        return (z > 0).astype(z.dtype)

    def backward(self, da: Array, need_input_grad: bool = True) -> Array | None:
        raise RuntimeError("Step has no useful derivative (2.2): use Sigmoid for gradient learning")


class Sigmoid(Activation):
    """a = sigma(z) = 1 / (1 + e^{-z}) (2.2); sigma'(z) = sigma(z) (1 - sigma(z))."""

    def f(self, z: Array) -> Array:
        return backend.sigmoid(z)

    def backward(self, da: Array, need_input_grad: bool = True) -> Array | None:
        a = self._require_cache("_a")
        delta = da * a
        delta *= 1 - a  # (BP1)/(BP2): delta = diag(sigma'(z)) . dC/da, sigma' = a (1 - a)
        return delta


class Tanh(Activation):
    """a = tanh(z); tanh'(z) = 1 - tanh(z)^2."""

    def f(self, z: Array) -> Array:
        return xp.tanh(z)

    def backward(self, da: Array, need_input_grad: bool = True) -> Array | None:
        a = self._require_cache("_a")
        return da * (1 - a * a)


class ReLU(Activation):
    """a = max(0, z); ReLU'(z) = 1 for z > 0, else 0."""

    def f(self, z: Array) -> Array:
        return xp.maximum(z, 0)

    def backward(self, da: Array, need_input_grad: bool = True) -> Array | None:
        a = self._require_cache("_a")
        return da * (a > 0)


class Softmax(Activation):
    """a_j = exp(z_j) / sum_k exp(z_k) (2.7.2), over the last axis.

    a_j depends on every z_k, so sigma' is a Jacobian: dC/dz_j = a_j (dC/da_j - sum_k a_k dC/da_k).
    """

    def f(self, z: Array) -> Array:
        e = z - z.max(axis=-1, keepdims=True)  # shift by max z: same a, no overflow
        xp.exp(e, out=e)
        e /= e.sum(axis=-1, keepdims=True)
        return e

    def backward(self, da: Array, need_input_grad: bool = True) -> Array | None:
        """dC/dz_j = sum_k (da_k/dz_j) dC/da_k = a_j (dC/da_j - sum_k a_k dC/da_k) (2.7.2)."""
        a = self._require_cache("_a")
        return a * (da - (da * a).sum(axis=-1, keepdims=True))


ACTIVATIONS = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU}

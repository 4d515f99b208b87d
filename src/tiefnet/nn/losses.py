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
from tiefnet.errors import ConfigError, ShapeError
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
        """dC/da^L_j = (a_j - y_j) / (a_j (1 - a_j)) / N, the nabla_a C of (BP1) (2.7.1)."""
        a = _clip(a)
        return (a - y) / (a * (1 - a)) / a.shape[0]  # = -(y/a - (1-y)/(1-a)) / N


class LogLikelihood(Loss):
    """C = -ln a^L_y for the true class y (2.7.2), averaged over the batch.

    After a softmax output, dC/dz^L_j = a^L_j - y_j, as for cross-entropy after a sigmoid.
    For sequences, a and y of shape (N, T, K), the costs of the T steps add up (C = sum_t C^t, as
    for BPTT in 4.2) and are averaged over the N sequences.

    ``mask`` (N, T) of 0/1 (optional, for sequences): steps with mask 0 add nothing to C and get
    no gradient — captions of different lengths padded to one T (4.4.1):
    C = -1/N sum_n sum_t mask[n, t] ln a^t_{n, y}; delta^t = mask[n, t] (a^t - y^t) / N.
    """

    name = "log-likelihood"
    output_layer = Softmax

    def cost(self, a: Array, y: Array, mask: Array | None = None) -> float:
        log_a = y * xp.log(_clip(a, high=False))
        if mask is not None:
            log_a = log_a * self._mask(a, mask)
        return float(-log_a.sum() / a.shape[0])

    def grad(self, a: Array, y: Array, mask: Array | None = None) -> Array:
        """dC/da^L_j = -y_j / a_j / N, the nabla_a C of (BP1) for C = -ln a^L_y (2.7.2)."""
        g = -y / _clip(a, high=False) / a.shape[0]
        return g if mask is None else g * self._mask(a, mask)

    def delta(self, a: Array, y: Array, mask: Array | None = None) -> Array:
        d = (a - y) / a.shape[0]
        return d if mask is None else d * self._mask(a, mask)

    @staticmethod
    def _mask(a: Array, mask: Array) -> Array:
        """mask (N, T) as (N, T, 1), in a's dtype, after checking its shape."""
        if tuple(mask.shape) != tuple(a.shape[:-1]):
            raise ShapeError(f"LogLikelihood: mask of shape {tuple(mask.shape)} for outputs {tuple(a.shape)}: "
                             f"expected {tuple(a.shape[:-1])}, one entry per step")
        return mask.astype(a.dtype, copy=False)[..., None]


class TDError(Loss):
    """C = 1/B sum_j h(Q(phi_j, a_j; theta) - y_j) (5.3, "Gradient-descent Schritt fuer (y_j - Q(phi_j, a_j))^2"),
    the squared error with its error term clipped to [-1, 1] (Mnih et al. 2015):

        h(u) = u^2 / 2 for |u| <= delta_max, delta_max (|u| - delta_max / 2) otherwise (Huber),
        dC/dQ[j, a] = clip(Q[j, a_j] - y_j, -delta_max, delta_max) / B if a = a_j, else 0.

    ``delta_max=None`` is the plain squared error (Q - y)^2 / 2 without clipping.

    Shapes: Q (B, A), the network's output for every action; actions (B,) ints; y (B,) targets.
    """

    name = "td-error"

    def __init__(self, delta_max: float | None = 1.0):
        if delta_max is not None and not (numpy.isfinite(delta_max) and delta_max > 0):
            raise ConfigError(f"TDError: delta_max={delta_max} must be a positive number or None")
        self.delta_max = None if delta_max is None else float(delta_max)

    def _error(self, Q: Array, actions: Array, y: Array) -> Array:
        if Q.ndim != 2 or actions.shape != (Q.shape[0],) or y.shape != (Q.shape[0],):
            raise ShapeError(f"TDError: Q {tuple(Q.shape)} must be (B, A) with actions and y of shape (B,), "
                             f"got {tuple(actions.shape)} and {tuple(y.shape)}")
        return Q[xp.arange(Q.shape[0]), actions] - y  # (B,): Q(phi_j, a_j) - y_j, the gather

    def cost(self, Q: Array, actions: Array, y: Array) -> float:  # type: ignore[override]
        u = xp.abs(self._error(Q, actions, y))
        if self.delta_max is None:
            return float((0.5 * u * u).sum() / Q.shape[0])
        k = self.delta_max
        return float(xp.where(u <= k, 0.5 * u * u, k * (u - 0.5 * k)).sum() / Q.shape[0])

    def grad(self, Q: Array, actions: Array, y: Array) -> Array:  # type: ignore[override]
        """dC/dQ, (B, A): zero except at (j, a_j)."""
        u = self._error(Q, actions, y)
        if self.delta_max is not None:
            u = xp.clip(u, -self.delta_max, self.delta_max)  # the clipped error term
        delta = xp.zeros_like(Q)
        delta[xp.arange(Q.shape[0]), actions] = u / Q.shape[0]
        return delta

    def __call__(self, Q: Array, actions: Array, y: Array) -> tuple[float, Array]:  # type: ignore[override]
        """The cost and dC/dQ (B, A)."""
        return self.cost(Q, actions, y), self.grad(Q, actions, y)


class PolicyValue(Loss):
    """AlphaGo Zero's cost (5.4): L = (z - nu)^2 - sum_a pi_a log p_a (+ c ||theta||^2), per position,
    averaged over the N positions of a mini-batch.

    The network's two heads give ``(logits, nu)``: p = softmax(logits) over the A actions and the
    value nu in [-1, 1] (after a tanh). The regulariser c ||theta||^2 is the optimizer's L2 with
    lmbda = 2c and n = 1 (its gradient 2 c w), as for every other cost in tiefnet.

    Gradients, from log p_a = l_a - log sum_b exp(l_b):
        dL/dl_a = (p_a sum_b pi_b - pi_a) / N = (p_a - pi_a) / N   (pi sums to 1; 2.7.2's a - y)
        dL/dnu  = 2 (nu - z) / N

    Shapes: logits (N, A), nu (N, 1), pi (N, A), z (N,) or (N, 1).
    """

    name = "policy-value"

    @staticmethod
    def _check(outputs, pi: Array, z: Array) -> tuple[Array, Array, Array]:
        if not (isinstance(outputs, (tuple, list)) and len(outputs) == 2):
            raise ShapeError("PolicyValue: the outputs must be the pair (logits, nu) of a policy and a value head")
        logits, nu = outputs
        N = logits.shape[0]
        if logits.ndim != 2 or tuple(pi.shape) != tuple(logits.shape) or tuple(nu.shape) != (N, 1) \
                or z.size != N:
            raise ShapeError(f"PolicyValue: logits {tuple(logits.shape)} and pi {tuple(pi.shape)} must be (N, A), "
                             f"nu {tuple(nu.shape)} (N, 1) and z {tuple(z.shape)} (N,)")
        return logits, nu, z.reshape(N, 1).astype(nu.dtype, copy=False)

    @staticmethod
    def log_softmax(logits: Array) -> Array:
        shifted = logits - logits.max(axis=1, keepdims=True)  # exp without overflow
        return shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))

    def parts(self, outputs, pi: Array, z: Array) -> tuple[float, float]:
        """(value cost mean (z - nu)^2, policy cost mean -pi . log p), the two terms of L."""
        logits, nu, z = self._check(outputs, pi, z)
        N = logits.shape[0]
        value = float(((z - nu) ** 2).sum() / N)
        policy = float(-(pi * self.log_softmax(logits)).sum() / N)
        return value, policy

    def cost(self, outputs, pi: Array, z: Array) -> float:  # type: ignore[override]
        value, policy = self.parts(outputs, pi, z)
        return value + policy

    def grad(self, outputs, pi: Array, z: Array) -> tuple[Array, Array]:  # type: ignore[override]
        """(dL/dlogits (N, A), dL/dnu (N, 1)): one gradient per head, for ``Parallel.backward``."""
        logits, nu, z = self._check(outputs, pi, z)
        N = logits.shape[0]
        p = xp.exp(self.log_softmax(logits))
        dlogits = (p * pi.sum(axis=1, keepdims=True) - pi) / N  # softmax + cross-entropy: p - pi
        dnu = 2.0 * (nu - z) / N  # the quadratic value cost
        return dlogits, dnu

    def __call__(self, outputs, pi: Array, z: Array):  # type: ignore[override]
        return self.cost(outputs, pi, z), self.grad(outputs, pi, z)


LOSSES = {cls.name: cls for cls in (Quadratic, CrossEntropy, LogLikelihood)}

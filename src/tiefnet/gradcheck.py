"""Gradient checking by difference quotients (2.6, the remark on numerical approximation).

Backpropagation gives every dC/dv in one forward and one backward pass; the difference
quotient needs two forward passes per entry of v, which is far too slow for training but
the right referee for tests. We use central differences, (C(v + h e_j) - C(v - h e_j)) / 2h,
whose error is O(h^2) instead of the one-sided quotient's O(h); run them in float64.
"""
from __future__ import annotations

from typing import Callable

import numpy

from tiefnet.backend import Array, xp


def numerical_gradient(f: Callable[[], Array], v: Array, upstream: Array, h: float = 1e-6) -> Array:
    """d(sum(f() * upstream))/dv by central differences, perturbing ``v`` in place:

        d/dv_j ~ (F(v + h e_j) - F(v - h e_j)) / 2h,   F = sum(f() * upstream),

    the lecture's difference quotient (C(v + h e_j) - C(v)) / h (2.6) made symmetric (error O(h^2)).

    ``f`` recomputes the output from the current value of ``v``; ``upstream`` is dC/d(output),
    so the result is what a layer's backward should return (or store) for ``v``.
    """
    grad = xp.zeros(v.shape, dtype=v.dtype)
    for j in numpy.ndindex(*v.shape):  # index v itself: a reshape of a strided view would be a copy
        old = float(v[j])
        v[j] = old + h
        plus = float((f() * upstream).sum())
        v[j] = old - h
        minus = float((f() * upstream).sum())
        v[j] = old
        grad[j] = (plus - minus) / (2 * h)
    return grad


def relative_error(a: Array, b: Array) -> float:
    """max |a - b| / max(|a|, |b|, tiny): scale-free, 0 for identical arrays."""
    def largest(v: Array) -> float:
        return float(xp.abs(v).max()) if v.size else 0.0

    a, b = xp.asarray(a), xp.asarray(b)
    return largest(a - b) / max(largest(a), largest(b), 1e-12)


def check_layer(layer, x: Array, upstream: Array | None = None, h: float = 1e-6, seed: int = 0) -> dict[str, float]:
    """Compare ``layer.backward`` with difference quotients for dx and every parameter: the dC/dx and
    dC/dv from (BP2)-(BP4) against (C(v + h e_j) - C(v - h e_j)) / 2h with C = sum(output * upstream).

    Returns the relative error per name ("x", "W", "b", ...); all arrays should be float64.
    """
    out = layer.forward(x, train=True)
    if upstream is None:
        upstream = xp.asarray(numpy.random.default_rng(seed).standard_normal(out.shape))
    dx = layer.backward(upstream)
    analytic = {"x": dx, **{name: g.copy() for name, g in layer.grads.items()}}
    # The difference quotients re-run forward(train=True): a layer that draws randomness there
    # (Dropout) must be given a fixed mask first (tests/helpers.fixed_mask).
    errors = {"x": relative_error(analytic["x"], numerical_gradient(lambda: layer.forward(x, train=True), x, upstream, h))}
    for name, p in layer.params.items():
        errors[name] = relative_error(analytic[name], numerical_gradient(lambda: layer.forward(x, train=True), p, upstream, h))
    return errors


def check_loss(loss, a: Array, y: Array, h: float = 1e-6) -> float:
    """Relative error of ``loss.grad(a, y)``, the nabla_a C of (BP1), against the difference quotients
    of ``loss.cost`` (2.6, made symmetric): dC/da_j = (C(a + h e_j) - C(a - h e_j)) / 2h + O(h^2)."""
    numeric = numerical_gradient(lambda: xp.asarray(loss.cost(a, y)), a, xp.asarray(1.0), h)
    return relative_error(loss.grad(a, y), numeric)

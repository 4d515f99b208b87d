"""Soft attention over image regions (4.4.2, Xu et al. 2015, "Show, Attend and Tell").

The CNN's output a_CNN (N, C, H', W') is split into R = H' W' regions r_j: the C features a_j at each
position. At every step t of the decoder, a small MLP of a_j and the decoder's h^{t-1} scores each
region, a softmax turns the scores into weights alpha_j that sum to 1, and the context
z^t = sum_j alpha_j a_j (the image as the decoder sees it at step t) enters the LSTM step:

    e_j     = v . tanh(W_a a_j + W_h h^{t-1} + b)            (the attention MLP, A hidden units)
    alpha   = softmax(e),  sum_j alpha_j = 1
    z^t     = sum_j alpha_j a_j

W_a a_j + b does not depend on t: :meth:`SoftAttention.project` computes it once per image, and the
step adds W_h h^{t-1}. Like a cell (:mod:`tiefnet.nn.cells`), the layer keeps no per-step state:
``step`` returns a cache, ``step_backward`` takes it back and ADDS its share to ``grads`` (the steps
of a caption sum, as in BPTT); ``project_backward`` adds dC/dW_a, dC/db. Call ``zero_grads`` first.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy

from tiefnet.backend import Array, xp
from tiefnet.errors import ConfigError, ShapeError
from tiefnet.nn import init as initialisers
from tiefnet.nn.layer import Layer, whole_numbers


class AttentionCache(NamedTuple):
    """What SoftAttention.step_backward needs from one step."""

    a: Array  # the regions a_j (N, R, C), for dC/dalpha and dC/da
    h_prev: Array  # h^{t-1} (N, H), for dC/dW_h
    u: Array  # tanh(W_a a_j + W_h h^{t-1} + b) (N, R, A), for tanh' = 1 - u^2 and dC/dv
    alpha: Array  # (N, R), the softmax's Jacobian


class SoftAttention(Layer):
    """alpha = softmax_j(v . tanh(W_a a_j + W_h h^{t-1} + b)), z = sum_j alpha_j a_j  (4.4.2).

    Shapes:
        regions a (N, R, C), h_prev (N, H) -> z (N, C), alpha (N, R)
        W_a: (A, C); W_h: (A, H); b: (A,); v: (A,)

    Equations of step_backward, with dz = dC/dz^t and dalpha = dC/dalpha from elsewhere (the
    doubly stochastic penalty; None for nothing):
        dalpha_j += dz . a_j                                   (z = sum_j alpha_j a_j)
        da_j      = alpha_j dz                                 (the same sum, the other factor)
        de_j      = alpha_j (dalpha_j - sum_k alpha_k dalpha_k)   (softmax')
        dv       += sum_{n,j} de_j u_j;  dpre_j = de_j v (1 - u_j^2)   (tanh')
        dW_h     += (sum_j dpre_j)^T h^{t-1};  dh^{t-1} = (sum_j dpre_j) W_h
        dproj_j   = dpre_j, for project_backward: dW_a += dproj^T a, db += dproj, da += dproj W_a

    The Layer contract is one step with the projection inside: ``forward((a, h_prev))`` -> z, and
    ``backward(dz)`` -> (dC/da, dC/dh_prev).

    Args:
        C: features per region; H: the decoder's hidden units; A: hidden units of the attention MLP.
        rng: generator for the initial weights (N(0, 1/n_in); b = 0, v ~ N(0, 1/A)).
    """

    def __init__(self, C: int, H: int, A: int = 64, rng: numpy.random.Generator | None = None):
        super().__init__()
        if min(int(C), int(H), int(A)) < 1:
            raise ConfigError(f"SoftAttention: C={C}, H={H} and A={A} must be at least 1")
        self.C, self.H, self.A = int(C), int(H), int(A)
        rng = numpy.random.default_rng() if rng is None else rng
        self.params["Wa"] = initialisers.normal(rng, (self.A, self.C), 1.0 / numpy.sqrt(self.C))
        self.params["Wh"] = initialisers.normal(rng, (self.A, self.H), 1.0 / numpy.sqrt(self.H))
        self.params["b"] = initialisers.normal(rng, (self.A,), 0.0)
        self.params["v"] = initialisers.normal(rng, (self.A,), 1.0 / numpy.sqrt(self.A))
        self.zero_grads()
        self._caches: tuple | None = None

    def zero_grads(self) -> None:
        """dC/d(every parameter) = 0: the start of a sweep of step_backward / project_backward calls."""
        for name in self.params:
            self._grad(name)[...] = 0

    def _check(self, a: Array, h_prev: Array | None = None) -> None:
        if a.ndim != 3 or a.shape[2] != self.C:
            raise ShapeError(f"{self.describe()}: expected regions of shape (N, R, {self.C}), got {tuple(a.shape)}")
        if h_prev is not None and (h_prev.ndim != 2 or h_prev.shape != (a.shape[0], self.H)):
            raise ShapeError(f"{self.describe()}: expected h_prev of shape ({a.shape[0]}, {self.H}), "
                             f"got {tuple(h_prev.shape)}")

    # --- once per image ------------------------------------------------------------------
    def project(self, a: Array) -> Array:
        """W_a a_j + b for every region: (N, R, C) -> (N, R, A), the part of the MLP's input fixed per image."""
        self._check(a)
        proj = a @ self.params["Wa"].T  # (N, R, A)
        proj += self.params["b"]
        return proj

    def project_backward(self, a: Array, dproj: Array) -> Array:
        """dC/da (N, R, C) through the projection; adds dC/dW_a and dC/db to ``grads``."""
        if self.trainable:
            N, R, A = dproj.shape
            self._grad("Wa")[...] += dproj.reshape(N * R, A).T @ a.reshape(N * R, self.C)
            self._grad("b")[...] += dproj.sum(axis=(0, 1))
        return dproj @ self.params["Wa"]  # (N, R, C)

    # --- one step ------------------------------------------------------------------------
    def step(self, a: Array, proj: Array, h_prev: Array, train: bool = False
             ) -> tuple[Array, Array, AttentionCache | None]:
        """(z^t (N, C), alpha (N, R), cache or None) from the regions, their projection and h^{t-1}."""
        self._check(a, h_prev)
        u = proj + (h_prev @ self.params["Wh"].T)[:, None, :]  # W_a a_j + b + W_h h^{t-1}, (N, R, A)
        xp.tanh(u, out=u)
        e = u @ self.params["v"]  # e_j = v . u_j, (N, R)
        e -= e.max(axis=1, keepdims=True)  # softmax, shifted (the same alpha, no overflow)
        alpha = xp.exp(e, out=e)
        alpha /= alpha.sum(axis=1, keepdims=True)  # sum_j alpha_j = 1
        z = (alpha[:, None, :] @ a)[:, 0]  # z = sum_j alpha_j a_j, (N, C)
        return z, alpha, AttentionCache(a, h_prev, u, alpha) if train else None

    def step_backward(self, cache: AttentionCache, dz: Array, dalpha: Array | None = None
                      ) -> tuple[Array, Array, Array]:
        """(dC/da (N, R, C), dC/dproj (N, R, A), dC/dh^{t-1} (N, H)) of one step; adds dC/dW_h, dC/dv."""
        if cache is None:
            raise RuntimeError("SoftAttention.step_backward() needs the cache of a step(..., train=True)")
        a, alpha, u = cache.a, cache.alpha, cache.u
        if dz.shape != (a.shape[0], self.C):
            raise ShapeError(f"{self.describe()}: dz must be of shape ({a.shape[0]}, {self.C}), got {tuple(dz.shape)}")
        da = alpha[:, :, None] * dz[:, None, :]  # dC/da_j = alpha_j dz, (N, R, C)
        dalpha_total = (a @ dz[:, :, None])[:, :, 0]  # dz . a_j, (N, R)
        if dalpha is not None:
            if dalpha.shape != alpha.shape:
                raise ShapeError(f"{self.describe()}: dalpha must be of shape {tuple(alpha.shape)}, got {tuple(dalpha.shape)}")
            dalpha_total += dalpha
        de = alpha * (dalpha_total - (alpha * dalpha_total).sum(axis=1, keepdims=True))  # softmax'
        dpre = de[:, :, None] * self.params["v"]  # dC/du_j = de_j v ...
        dpre *= 1 - u * u  # ... times tanh' = 1 - u^2: dC/d(W_a a_j + W_h h + b), (N, R, A)
        dpre_sum = dpre.sum(axis=1)  # W_h h^{t-1} enters every region's sum, (N, A)
        if self.trainable:
            N, R, A = u.shape
            self._grad("v")[...] += de.reshape(N * R) @ u.reshape(N * R, A)  # sum_{n,j} de_j u_j
            self._grad("Wh")[...] += dpre_sum.T @ cache.h_prev  # (A, H)
        return da, dpre, dpre_sum @ self.params["Wh"]

    # --- the Layer contract: one step, projection included -----------------------------
    def forward(self, x, train: bool = False) -> Array:
        """x = (a (N, R, C), h_prev (N, H)) -> z (N, C); after a training forward ``self.alpha`` holds the weights."""
        a, h_prev = x
        z, alpha, cache = self.step(a, self.project(a), h_prev, train)
        if train:  # an evaluation forward writes nothing onto the layer
            self._caches, self.output, self.alpha = (a, cache), z, alpha
        return z

    def backward(self, grad: Array, need_input_grad: bool = True):
        """grad = dC/dz (N, C) -> (dC/da (N, R, C), dC/dh_prev (N, H)) (None without need_input_grad);
        overwrites ``grads``."""
        a, cache = self._require_cache("_caches")
        if self.trainable:
            self.zero_grads()
        da, dproj, dh_prev = self.step_backward(cache, grad)
        da += self.project_backward(a, dproj)
        return (da, dh_prev) if need_input_grad else None

    def to_config(self) -> dict[str, Any]:
        return {"C": self.C, "H": self.H, "A": self.A}

    @classmethod
    def array_count(cls, config: dict[str, Any]) -> int | None:
        sizes = whole_numbers(config, "C", "H", "A")
        return None if sizes is None else sizes[2] * (sizes[0] + sizes[1] + 2)

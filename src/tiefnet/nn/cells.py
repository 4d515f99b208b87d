"""Recurrent cells (4.1, 4.4) with a step API: one time step forward, one time step backward.

The fused layers of :mod:`tiefnet.nn.recurrent` run a whole sequence x (N, T, D) per call. A
decoder that generates (4.4.1) or attends (4.4.2) cannot: its input x^t depends on h^{t-1} (the
word it has just produced, the context vector computed from h^{t-1}), so it steps the recursion
itself. The cells have the fused layers' parameters (W (G, H), U (G, D), b (G,); the LSTM's
blocks in the order f, i, o, g), initialisation and forget bias: weights copy 1:1 between them.

Row form, like the rest of tiefnet: x_t (N, D), h (N, H), and ``z = x_t U^T + h_prev W^T + b`` is
the lecture's z^t = W h^{t-1} + U x^t + b with the N samples as rows.

A cell keeps no per-step state: ``step`` returns the cache of its step to the caller, who keeps
the caches of the T steps (a list) and hands each back to ``step_backward``; a cell can step
several sequences at once, and evaluation steps (train=False) may run on many threads, but
``step_backward`` adds into the cell's one ``grads``. The gradient convention:

    h, state, cache = cell.step(x_t, state, train=True)        # state: (h,) or (h, c)
    dx_t, dstate_prev = cell.step_backward(cache, dh, dstate)

- ``dh`` = dC/dh^t from outside the recursion: the output at t plus whatever else reads h^t
  (a fed-back output, the attention that computes the context of step t+1); None for nothing.
- ``dstate`` = the ``dstate_prev`` that step t+1's ``step_backward`` returned: the gradient
  through the recursion; None (zeros) at the last step, or dC/d(last state) from outside.
  The cell adds the two: dC/dh^t = dh + dstate[0]. For the LSTM dstate = (dC/dh^t through
  W h^t in z^{t+1}, dC/dc^t through c^{t+1} = f^{t+1} c^t + ...).
- ``dstate_prev`` of the first step is dC/d(initial state).

``step_backward`` ADDS its step's share to ``cell.grads`` (BPTT sums over t): call
``cell.zero_grads()`` before a backward sweep. A frozen cell (trainable False) adds nothing:

    cell.zero_grads()
    dstate = None
    for t in reversed(range(T)):
        dx[t], dstate = cell.step_backward(caches[t], dh[t], dstate)   # dstate: dC/d(initial state)

The Layer contract is the same loop: ``forward(x (N, T, D), train)`` -> h (N, T, H) and
``backward(grad (N, T, H))`` -> dC/dx (dC/d(initial state) in ``self.dstate``), and
``forward_state``/``backward_state`` as in the fused layers; a cell can be saved and loaded.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy

from tiefnet.backend import Array, xp
from tiefnet.errors import ShapeError
from tiefnet.nn.rnn_base import _RecurrentParams, _sigmoid_


class RNNCache(NamedTuple):
    """What RNNCell.step_backward needs from one step."""

    x: Array  # x^t (N, D), for dC/dU
    h_prev: Array  # h^{t-1} (N, H), for dC/dW
    h: Array  # h^t = tanh(z^t) (N, H), for tanh'(z^t) = 1 - (h^t)^2


class LSTMCache(NamedTuple):
    """What LSTMCell.step_backward needs from one step."""

    x: Array  # x^t (N, D)
    h_prev: Array  # h^{t-1} (N, H)
    c_prev: Array  # c^{t-1} (N, H), for dC/df^t
    gates: Array  # [f, i, o, g] at t, (N, 4H)
    tanh_c: Array  # tanh(c^t) (N, H)


def _outside_plus_recursive(dh: Array | None, dstate: tuple[Array, ...] | None, like: Array) -> Array:
    """dC/dh^t = (from outside) + (through step t+1); either part may be absent. Never in place."""
    if dstate is None:
        return xp.zeros_like(like) if dh is None else dh
    return dstate[0] if dh is None else dh + dstate[0]


class _Cell(_RecurrentParams):
    """The step API and the Layer contract on top of it; a subclass writes the activation of
    one step, ``_activate(z, x_t, state) -> (h, state, cache)``, and its delta,
    ``_delta(cache, dh, dstate) -> (dC/dz^t (N, G), the state gradients beyond dC/dh^{t-1})``."""

    def __init__(self, D: int, H: int, rng: numpy.random.Generator | None, init: str,
                 forget_bias: float | None = None) -> None:
        super().__init__(D, H, rng, init, forget_bias)
        self.zero_grads()  # step_backward adds to the gradients
        self._caches: list | None = None  # the steps' caches of the latest training forward

    def zero_grads(self) -> None:
        """dC/dW = dC/dU = dC/db = 0: the start of a backward sweep of step_backward calls."""
        for name in self.params:
            self._grad(name)[...] = 0

    # --- one step -----------------------------------------------------------------------
    def step(self, x_t: Array, state=None, train: bool = False
             ) -> tuple[Array, tuple[Array, ...], RNNCache | LSTMCache | None]:
        """One time step: (h^t, state^t, cache) from x^t (N, D) and state^{t-1} (default zeros).
        The cache is for step_backward (None unless train=True); nothing is written onto the cell."""
        if x_t.ndim != 2 or x_t.shape[1] != self.D:
            raise ShapeError(f"{self.describe()}: expected x_t of shape (N, {self.D}), got {tuple(x_t.shape)}")
        state = self._state_or_zeros(state, x_t.shape[0], x_t.dtype)
        z = x_t @ self.params["U"].T  # U x^t ... (row form: x_t U^T, the samples are rows)
        z += state[0] @ self.params["W"].T  # ... + W h^{t-1} ...
        z += self.params["b"]  # ... + b = z^t, (N, G)
        h, state, cache = self._activate(z, x_t, state)
        return h, state, cache if train else None

    def step_backward(self, cache, dh: Array | None, dstate=None) -> tuple[Array, tuple[Array, ...]]:
        """(dC/dx^t (N, D), dC/d(state^{t-1})) for one step; see the module docstring for dh and
        dstate. Adds dC/dW, dC/dU, dC/db of this step to ``grads`` unless the cell is frozen."""
        if cache is None:
            raise RuntimeError(f"{type(self).__name__}.step_backward() needs the cache of a step(x_t, state, train=True)")
        N = cache.x.shape[0]
        if dh is not None and dh.shape != (N, self.H):
            raise ShapeError(f"{self.describe()}: dh must be of shape ({N}, {self.H}), got {tuple(dh.shape)}")
        dstate = None if dstate is None else self._check_state(dstate, N, "dstate")
        delta, more = self._delta(cache, dh, dstate)  # dC/dz^t (N, G); the LSTM's dC/dc^{t-1} in more
        if self.trainable:
            dW, dU, db = self._grad("W"), self._grad("U"), self._grad("b")
            dW += delta.T @ cache.h_prev  # delta^t (h^{t-1})^T, summed over the samples and (by the caller) t
            dU += delta.T @ cache.x  # delta^t (x^t)^T
            db += delta.sum(axis=0)  # delta^t
        return delta @ self.params["U"], (delta @ self.params["W"], *more)  # U^T delta^t; W^T delta^t, ...

    # --- the Layer contract: a loop over the steps ----------------------------------------
    def forward(self, x: Array, train: bool = False, state=None) -> Array:
        """x (N, T, D) -> h (N, T, H), from ``state`` (default zeros)."""
        return self.forward_state(x, state, train)[0]

    def forward_state(self, x: Array, state=None, train: bool = False) -> tuple[Array, tuple[Array, ...]]:
        """(h (N, T, H), last state) from ``state`` (default zeros); train=True keeps the caches."""
        self._check_input(x)
        N, T, _ = x.shape
        out = xp.empty((N, T, self.H), dtype=x.dtype)
        caches = []
        for t in range(T):
            out[:, t], state, cache = self.step(x[:, t], state, train)
            caches.append(cache)
        if train:
            self._caches, self.output = caches, out
        return out, state

    def backward_state(self, grad: Array | None, dlast=None, need_input_grad: bool = True
                       ) -> tuple[Array | None, tuple[Array, ...]]:
        """BPTT (4.2) as step_backward from t = T down to 1: (dC/dx or None, dC/d(initial state)).
        grad = dC/dh (N, T, H) or None; dlast = dC/d(last state) or None. Overwrites ``grads``."""
        caches = self._require_cache("_caches")
        N, T = caches[0].x.shape[0], len(caches)
        if grad is not None and grad.shape != (N, T, self.H):
            raise ShapeError(f"{self.describe()}: backward expects dC/dh of shape {(N, T, self.H)}, "
                             f"got {tuple(grad.shape)}")
        if dlast is not None:
            dlast = self._check_state(dlast, N, "dlast = dC/d(last state)")
        if self.trainable:
            self.zero_grads()
        dx = xp.empty((N, T, self.D), dtype=caches[0].x.dtype) if need_input_grad else None
        dstate = dlast
        for t in range(T - 1, -1, -1):
            dx_t, dstate = self.step_backward(caches[t], None if grad is None else grad[:, t], dstate)
            if dx is not None:
                dx[:, t] = dx_t
        return dx, dstate


class RNNCell(_Cell):
    """One step of the Elman RNN (4.1): h^t = tanh(W h^{t-1} + U x^t + b); BPTT one step at a time (4.2).

    Shapes:
        step: x_t (N, D), state (h^{t-1},) (N, H) -> h^t (N, H), state (h^t,)
        forward: x (N, T, D) -> h (N, T, H); W: (H, H); U: (H, D); b: (H,)

    Equations (row form: z = x_t U^T + h_prev W^T + b):
        z^t = W h^{t-1} + U x^t + b
        h^t = tanh(z^t)
    step_backward, with dh = dC/dh^t from outside and dstate = (dh_next,) from step t+1:
        dC/dh^t = dh + dh_next
        delta^t = (1 - (h^t)^2) * dC/dh^t
        dC/dW += delta^t (h^{t-1})^T;  dC/dU += delta^t (x^t)^T;  dC/db += delta^t
        dC/dx^t = U^T delta^t;  dstate_prev = (W^T delta^t,)

    Args: D, H, rng and init as for :class:`tiefnet.nn.recurrent.RNN` (same parameters).
    """

    def __init__(self, D: int, H: int, rng: numpy.random.Generator | None = None, init: str = "scaled"):
        super().__init__(D, H, rng, init)

    def _activate(self, z: Array, x_t: Array, state: tuple[Array, ...]):
        h = xp.tanh(z, out=z)  # h^t = tanh(z^t)
        return h, (h,), RNNCache(x_t, state[0], h)

    def _delta(self, cache: RNNCache, dh, dstate):
        dh = _outside_plus_recursive(dh, dstate, cache.h)  # dC/dh^t
        return dh * (1 - cache.h * cache.h), ()  # delta^t = tanh'(z^t) dC/dh^t


class LSTMCell(_Cell):
    """One step of the LSTM (4.4): c^t = f^t * c^{t-1} + i^t * g^t, h^t = o^t * tanh(c^t).

    W = [W_f; W_i; W_o; W_g] (4H, H), U likewise (4H, D), b (4H,), the blocks in the lecture's order
    f, i, o, g as in :class:`tiefnet.nn.recurrent.LSTM` (PyTorch's LSTMCell orders them i, f, g, o).

    Shapes:
        step: x_t (N, D), state (h^{t-1}, c^{t-1}) each (N, H) -> h^t (N, H), state (h^t, c^t)
        forward: x (N, T, D) -> h (N, T, H); W: (4H, H); U: (4H, D); b: (4H,)

    Equations (row form: z = x_t U^T + h_prev W^T + b):
        z^t = W h^{t-1} + U x^t + b = [z_f; z_i; z_o; z_g]
        f^t, i^t, o^t = sigma(z_f), sigma(z_i), sigma(z_o);  g^t = tanh(z_g)
        c^t = f^t * c^{t-1} + i^t * g^t
        h^t = o^t * tanh(c^t)
    step_backward, with dh = dC/dh^t from outside and dstate = (dh_next, dc_next) from step t+1:
        dC/dh^t = dh + dh_next
        dc      = dc_next + dC/dh^t * o^t * (1 - tanh(c^t)^2)        (dC/dc^t)
        delta^t = [dc c^{t-1} f(1-f); dc g^t i(1-i); dC/dh^t tanh(c^t) o(1-o); dc i^t (1-g^2)]
        dC/dW += delta^t (h^{t-1})^T;  dC/dU += delta^t (x^t)^T;  dC/db += delta^t
        dC/dx^t = U^T delta^t;  dstate_prev = (W^T delta^t, dc * f^t)

    Args: D, H, rng, init and forget_bias (the initial b_f) as for :class:`tiefnet.nn.recurrent.LSTM`.
    """

    gates = 4
    state_names = ("h", "c")

    def __init__(self, D: int, H: int, rng: numpy.random.Generator | None = None, init: str = "scaled",
                 forget_bias: float = 1.0):
        super().__init__(D, H, rng, init, float(forget_bias))

    def _activate(self, z: Array, x_t: Array, state: tuple[Array, ...]):
        H = self.H
        h_prev, c_prev = state
        _sigmoid_(z[:, : 3 * H])  # f, i, o = sigma(z_f), sigma(z_i), sigma(z_o)
        xp.tanh(z[:, 3 * H:], out=z[:, 3 * H:])  # g = tanh(z_g)
        f, i, o, g = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
        c = f * c_prev + i * g  # c^t = f^t c^{t-1} + i^t g^t
        tanh_c = xp.tanh(c)
        h = o * tanh_c  # h^t = o^t tanh(c^t)
        return h, (h, c), LSTMCache(x_t, h_prev, c_prev, z, tanh_c)

    def _delta(self, cache: LSTMCache, dh, dstate):
        H, z, tanh_c = self.H, cache.gates, cache.tanh_c
        f, i, o, g = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
        dh = _outside_plus_recursive(dh, dstate, tanh_c)  # dC/dh^t
        dc = dh * o * (1 - tanh_c * tanh_c)  # through h^t = o^t tanh(c^t) ...
        if dstate is not None:
            dc += dstate[1]  # ... + through c^{t+1} = f^{t+1} c^t + ...: dC/dc^t (4.4)
        delta = xp.empty_like(z)  # dC/dz^t = dC/d(gate) * (gate)'   (sigma' = sigma(1-sigma), tanh' = 1-tanh^2)
        delta[:, :H] = dc * cache.c_prev * f * (1 - f)  # dC/df^t = dc c^{t-1}
        delta[:, H:2 * H] = dc * g * i * (1 - i)  # dC/di^t = dc g^t
        delta[:, 2 * H:3 * H] = dh * tanh_c * o * (1 - o)  # dC/do^t = dh tanh(c^t)
        delta[:, 3 * H:] = dc * i * (1 - g * g)  # dC/dg^t = dc i^t
        return delta, (dc * f,)  # dC/dc^{t-1} through c^t = f^t c^{t-1} + ...

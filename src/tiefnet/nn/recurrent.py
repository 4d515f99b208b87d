"""Recurrent layers (4.1-4.4): the Elman RNN and the LSTM, with backpropagation through time (4.2).

Sequences are batched as x (N, T, D): N sequences, T time steps, D input features; the hidden
state h has H entries. Rows are samples, so the lecture's W h^{t-1} + U x^t is our
``h_prev @ W.T + x_t @ U.T`` (W stored (H, H), U stored (H, D), as in Dense).

The input projection U x^t + b does not depend on h, so forward computes it for all t in one GEMM
(T N, D) @ (D, H); backward likewise sums dC/dU and dC/dW over t in one GEMM each. Only the
recursion over h (and c) loops over t. Inside a layer the buffers are time-major, (T, N, .), so
that each step reads and writes contiguous (N, .) blocks; inputs and outputs are (N, T, .).

Stacking (4.3): ``Sequential(LSTM(3, 5), LSTM(5, 4))`` is a deep LSTM; its backward is BPTT
applied to layer L, then to L-1, ... as in the lecture.

Truncated BPTT (4.2, Bemerkung): with ``stateful=True`` the last state of one call is the first
state of the next (the blocks of the lecture's figure); gradients do not flow across blocks.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy

from tiefnet.backend import Array, sigmoid, xp
from tiefnet.errors import ConfigError, ShapeError
from tiefnet.nn import init as initialisers
from tiefnet.nn.layer import Layer, register


class _Recurrent(Layer):
    """What RNN and LSTM share: settings, state handling, input checks, the batched projection."""

    gates = 1  # blocks of H rows in W, U, b (4 for the LSTM)
    state_names: tuple[str, ...] = ("h0",)

    def __init__(self, D: int, H: int, rng: numpy.random.Generator | None, init: str,
                 return_sequences: bool, stateful: bool) -> None:
        super().__init__()
        if int(D) < 1 or int(H) < 1:
            raise ConfigError(f"{type(self).__name__}: D={D} and H={H} must be at least 1")
        self.D, self.H, self.init = int(D), int(H), init
        self.return_sequences, self.stateful = bool(return_sequences), bool(stateful)
        rng = numpy.random.default_rng() if rng is None else rng
        G = self.gates * self.H
        self.params["W"] = initialisers.normal(rng, (G, self.H), initialisers.weight_std(init, self.H))
        self.params["U"] = initialisers.normal(rng, (G, self.D), initialisers.weight_std(init, self.D))
        # Biases start at 0, not N(0, 1) as in Dense (2.7.3): N(0, 1) would saturate tanh/sigma at t = 1.
        self.params["b"] = xp.zeros(G, dtype=self.params["W"].dtype)
        self.state: tuple[Array, ...] | None = None  # the last state of the latest forward
        self.dstate: tuple[Array, ...] | None = None  # dC/d(initial state) after backward
        self._x: Array | None = None  # x for dC/dU; None after a test-mode pass

    def reset_state(self) -> None:
        """Forget the carried state: the next forward starts from zeros (a new sequence)."""
        self.state = None

    def _check_input(self, x: Array) -> None:
        if x.ndim != 3 or x.shape[2] != self.D:
            raise ShapeError(f"{self.describe()}: expected input of shape (N, T, {self.D}), got {tuple(x.shape)}")
        if x.shape[1] < 1:
            raise ShapeError(f"{self.describe()}: the sequence needs at least one time step, got T = 0")

    def _initial_state(self, x: Array, state) -> tuple[Array, ...]:
        """The given state, else the carried one (stateful), else zeros; each (N, H)."""
        N = x.shape[0]
        if state is None and self.stateful:
            state = self.state
        if state is None:
            return tuple(xp.zeros((N, self.H), dtype=x.dtype) for _ in self.state_names)
        state = (state,) if not isinstance(state, (tuple, list)) else tuple(state)
        if len(state) != len(self.state_names) or any(s.shape != (N, self.H) for s in state):
            got = [tuple(getattr(s, "shape", ())) for s in state]
            raise ShapeError(f"{self.describe()}: state must be {', '.join(self.state_names)} "
                             f"each of shape ({N}, {self.H}), got {got}")
        return state

    def _project_input(self, x: Array) -> Array:
        """U x^t + b for all t at once: one GEMM (T N, D) @ (D, G). Returns (T, N, G).

        Inside the layer the steps are the first axis (time-major), so that the h^t, c^t, gates
        of one step are contiguous blocks; inputs and outputs stay (N, T, .).
        """
        N, T, D = x.shape
        x_tm = xp.ascontiguousarray(x.transpose(1, 0, 2)).reshape(T * N, D)  # (T N, D)
        self._x_tm = x_tm  # for dC/dU
        zx = x_tm @ self.params["U"].T  # (T N, G)
        zx += self.params["b"]
        return zx.reshape(T, N, -1)  # (T, N, G)

    def _full_upstream(self, grad: Array, N: int, T: int) -> Array:
        """dC/dh^t for every t, time-major (T, N, H): zeros before T when only h^T was returned."""
        expected = (N, T, self.H) if self.return_sequences else (N, self.H)
        if grad.shape != expected:
            raise ShapeError(f"{self.describe()}: backward expects dC/d(output) of shape {expected}, "
                             f"got {tuple(grad.shape)}")
        if self.return_sequences:
            return xp.ascontiguousarray(grad.transpose(1, 0, 2))
        full = xp.zeros((T, N, self.H), dtype=grad.dtype)
        full[-1] = grad  # only the last output feeds the cost
        return full

    def _param_grads(self, delta: Array, h_prev: Array, need_input_grad: bool) -> Array | None:
        """From delta (T, N, G) = dC/dz^t: the sums over t as GEMMs; returns dC/dx (N, T, D)."""
        N, T, D = self._require_cache("_x").shape
        delta2 = delta.reshape(T * N, -1)  # (T N, G)
        xp.matmul(xp.ones(T * N, dtype=delta.dtype), delta2, out=self._grad("b"))  # dC/db = sum_t delta^t
        xp.matmul(delta2.T, h_prev.reshape(T * N, self.H), out=self._grad("W"))  # sum_t delta^t (h^{t-1})^T
        xp.matmul(delta2.T, self._x_tm, out=self._grad("U"))  # sum_t delta^t (x^t)^T
        if not need_input_grad:
            return None
        return (delta2 @ self.params["U"]).reshape(T, N, D).transpose(1, 0, 2)  # dC/dx^t = U^T delta^t

    def _output(self, h: Array) -> Array:
        """h (T, N, H), time-major -> the layer's output (N, T, H) (a view), or h^T (N, H)."""
        out = h.transpose(1, 0, 2) if self.return_sequences else h[-1]
        self.output = out
        return out

    def to_config(self) -> dict[str, Any]:
        return {"D": self.D, "H": self.H, "init": self.init,
                "return_sequences": self.return_sequences, "stateful": self.stateful}


@register
class RNN(_Recurrent):
    """Elman RNN (4.1): h^t = tanh(W h^{t-1} + U x^t + b), with BPTT (4.2).

    The lecture's output a^t = V h^t is not part of this layer: put a Dense on the
    (N T, H) rows (Reshape, Dense), or use return_sequences=False and a Dense on h^T.

    Shapes:
        x: (N, T, D) -> h: (N, T, H), or h^T: (N, H) with return_sequences=False
        W: (H, H); U: (H, D); b: (H,); state h^0: (N, H)

    Equations:
        z^t = W h^{t-1} + U x^t + b
        h^t = tanh(z^t)
        dC/dh^t = W^T delta^{t+1} + (dC/dh^t from the output at t)     (4.2, first term 0 at t = T)
        delta^t = dC/dz^t = (1 - (h^t)^2) * dC/dh^t
        dC/dW = sum_t delta^t (h^{t-1})^T;  dC/dU = sum_t delta^t (x^t)^T;  dC/db = sum_t delta^t
        dC/dx^t = U^T delta^t;  dC/dh^0 = W^T delta^1

    Args:
        D, H: input features and hidden units.
        rng: generator for the initial weights; init: "scaled" N(0, 1/n_in), "large", "he"
            (n_in = H for W, D for U); b starts at 0.
        return_sequences: output every h^t (True) or only the last one.
        stateful: carry the last state to the next call (truncated BPTT); see reset_state().
    """

    def __init__(self, D: int, H: int, rng: numpy.random.Generator | None = None, init: str = "scaled",
                 return_sequences: bool = True, stateful: bool = False):
        super().__init__(D, H, rng, init, return_sequences, stateful)
        self._h: Array | None = None  # h^0 ... h^T, time-major (T+1, N, H): for tanh' and dC/dW

    def forward(self, x: Array, train: bool = False, state: Array | None = None) -> Array:
        """x (N, T, D); ``state`` = h^0 (N, H), default zeros (or the carried state)."""
        self._check_input(x)
        (h0,) = self._initial_state(x, state)
        N, T, _ = x.shape
        W = self.params["W"]
        z = self._project_input(x)  # (T, N, H): U x^t + b
        h = xp.empty((T + 1, N, self.H), dtype=z.dtype)  # h[t] is h^t (time-major)
        h[0] = h0
        for t in range(T):
            h[t + 1] = xp.tanh(z[t] + h[t] @ W.T)  # h^t = tanh(W h^{t-1} + U x^t + b)
        self.state = (h[T].copy(),)
        self._x, self._h = (x, h) if train else (None, None)
        return self._output(h[1:])

    def backward(self, grad: Array, need_input_grad: bool = True) -> Array | None:
        """grad = dC/d(output). Returns dC/dx (N, T, D); dC/dh^0 goes to ``self.dstate``."""
        h = self._require_cache("_h")
        T, N = h.shape[0] - 1, h.shape[1]
        dh_out = self._full_upstream(grad, N, T)  # (T, N, H)
        W = self.params["W"]
        delta = xp.empty((T, N, self.H), dtype=h.dtype)  # dC/dz^t
        dh_next = xp.zeros((N, self.H), dtype=h.dtype)  # W^T delta^{t+1}, 0 at t = T
        for t in range(T - 1, -1, -1):
            dh = dh_out[t] + dh_next  # dC/dh^t (4.2)
            delta[t] = dh * (1 - h[t + 1] ** 2)  # tanh' = 1 - tanh^2
            dh_next = delta[t] @ W  # the W^T delta^t part of dC/dh^{t-1}
        self.dstate = (dh_next,)
        return self._param_grads(delta, h[:-1], need_input_grad)


@register
class LSTM(_Recurrent):
    """Long short-term memory (4.4): c^t = f^t * c^{t-1} + i^t * g^t, h^t = o^t * tanh(c^t).

    The four weight matrices are fused as in the lecture's remark, in its order
    forget, input, output, content (f, i, o, g): W = [W_f; W_i; W_o; W_g] (4H, H),
    U = [U_f; U_i; U_o; U_g] (4H, D), b = [b_f; b_i; b_o; b_g] (4H,).
    (PyTorch orders the blocks i, f, g, o; the tests permute them when copying.)

    Shapes:
        x: (N, T, D) -> h: (N, T, H), or h^T: (N, H) with return_sequences=False
        W: (4H, H); U: (4H, D); b: (4H,); state (h^0, c^0): (N, H) each

    Equations:
        z^t = W h^{t-1} + U x^t + b = [z_f; z_i; z_o; z_g]
        f^t = sigma(z_f)      forget gate
        i^t = sigma(z_i)      input gate
        o^t = sigma(z_o)      output gate
        g^t = tanh(z_g)       new content (the lecture's c~^t)
        c^t = f^t * c^{t-1} + i^t * g^t
        h^t = o^t * tanh(c^t)
    BPTT, with dh = dC/dh^t (from the output at t plus W^T delta^{t+1}) and dc = dC/dc^t:
        dC/do^t = dh * tanh(c^t)
        dc      = dC/dc^t (from c^{t+1}: dc^{t+1} * f^{t+1}) + dh * o^t * (1 - tanh(c^t)^2)
        dC/df^t = dc * c^{t-1};  dC/di^t = dc * g^t;  dC/dg^t = dc * i^t
        delta^t = [dC/df f(1-f); dC/di i(1-i); dC/do o(1-o); dC/dg (1-g^2)]   (sigma' = sigma(1-sigma))
        dC/dW = sum_t delta^t (h^{t-1})^T;  dC/dU = sum_t delta^t (x^t)^T;  dC/db = sum_t delta^t

    Args: as for RNN, and forget_bias: the initial b_f (1.0 keeps f near 1: remember by default).
    """

    gates = 4
    state_names = ("h0", "c0")

    def __init__(self, D: int, H: int, rng: numpy.random.Generator | None = None, init: str = "scaled",
                 return_sequences: bool = True, stateful: bool = False, forget_bias: float = 1.0):
        super().__init__(D, H, rng, init, return_sequences, stateful)
        self.forget_bias = float(forget_bias)
        self.params["b"][: self.H] = self.forget_bias  # b_f
        self._h: Array | None = None  # h^0 ... h^T, time-major (T+1, N, H): for dC/dW and the h of o
        self._c: Array | None = None  # c^0 ... c^T, (T+1, N, H): for dC/df
        self._gates: Array | None = None  # [f, i, o, g] per t, (T, N, 4H): for sigma' and tanh'
        self._tanh_c: Array | None = None  # tanh(c^t), (T, N, H)

    def forward(self, x: Array, train: bool = False, state=None) -> Array:
        """x (N, T, D); ``state`` = (h^0, c^0), each (N, H), default zeros (or the carried state)."""
        self._check_input(x)
        h0, c0 = self._initial_state(x, state)
        N, T, _ = x.shape
        H, W = self.H, self.params["W"]
        z = self._project_input(x)  # (T, N, 4H): U x^t + b
        h = xp.empty((T + 1, N, H), dtype=z.dtype)
        c = xp.empty((T + 1, N, H), dtype=z.dtype)
        gates = xp.empty((T, N, 4 * H), dtype=z.dtype)
        tanh_c = xp.empty((T, N, H), dtype=z.dtype)
        h[0], c[0] = h0, c0
        for t in range(T):
            z_t = z[t] + h[t] @ W.T  # (N, 4H): W h^{t-1} + U x^t + b
            gates[t, :, : 3 * H] = sigmoid(z_t[:, : 3 * H])  # f, i, o
            gates[t, :, 3 * H:] = xp.tanh(z_t[:, 3 * H:])  # g
            f, i, o, g = (gates[t, :, k * H:(k + 1) * H] for k in range(4))
            c[t + 1] = f * c[t] + i * g  # c^t = f^t c^{t-1} + i^t g^t
            tanh_c[t] = xp.tanh(c[t + 1])
            h[t + 1] = o * tanh_c[t]  # h^t = o^t tanh(c^t)
        self.state = (h[T].copy(), c[T].copy())
        if train:
            self._x, self._h, self._c, self._gates, self._tanh_c = x, h, c, gates, tanh_c
        else:
            self._x = self._h = self._c = self._gates = self._tanh_c = None
        return self._output(h[1:])

    def backward(self, grad: Array, need_input_grad: bool = True) -> Array | None:
        """grad = dC/d(output). Returns dC/dx (N, T, D); (dC/dh^0, dC/dc^0) go to ``self.dstate``."""
        h = self._require_cache("_h")
        c, gates, tanh_c = self._c, self._gates, self._tanh_c
        T, N = h.shape[0] - 1, h.shape[1]
        H, W = self.H, self.params["W"]
        dh_out = self._full_upstream(grad, N, T)  # (T, N, H)
        delta = xp.empty((T, N, 4 * H), dtype=h.dtype)  # dC/dz^t, blocks f, i, o, g
        dh_next = xp.zeros((N, H), dtype=h.dtype)  # W^T delta^{t+1}
        dc_next = xp.zeros((N, H), dtype=h.dtype)  # dC/dc^{t+1} * f^{t+1}
        for t in range(T - 1, -1, -1):
            f, i, o, g = (gates[t, :, k * H:(k + 1) * H] for k in range(4))
            dh = dh_out[t] + dh_next  # dC/dh^t
            dc = dc_next + dh * o * (1 - tanh_c[t] ** 2)  # dC/dc^t (4.4)
            delta[t, :, :H] = dc * c[t] * f * (1 - f)  # forget: dC/df^t sigma'
            delta[t, :, H:2 * H] = dc * g * i * (1 - i)  # input: dC/di^t sigma'
            delta[t, :, 2 * H:3 * H] = dh * tanh_c[t] * o * (1 - o)  # output: dC/do^t sigma'
            delta[t, :, 3 * H:] = dc * i * (1 - g ** 2)  # content: dC/dg^t tanh'
            dc_next = dc * f  # the lecture's dC/dc^{t-1} via c^t = f^t c^{t-1} + ...
            dh_next = delta[t] @ W  # W^T delta^t
        self.dstate = (dh_next, dc_next)
        return self._param_grads(delta, h[:-1], need_input_grad)

    def to_config(self) -> dict[str, Any]:
        return {**super().to_config(), "forget_bias": self.forget_bias}


def clip_gradients(layers_or_model: Layer | Iterable[Layer], max_norm: float) -> float:
    """Global-norm clipping: if ||g|| = sqrt(sum of all squared grads) > max_norm, scale every
    gradient by max_norm / ||g|| in place (against exploding gradients in BPTT). Returns ||g||
    before clipping."""
    if not max_norm > 0:
        raise ConfigError(f"clip_gradients: max_norm={max_norm} must be positive")
    layers = [layers_or_model] if isinstance(layers_or_model, Layer) else list(layers_or_model)
    grads = [g for layer in layers for g in layer.grads.values()]
    norm = float(sum(float((g * g).sum()) for g in grads)) ** 0.5
    if norm > max_norm:
        scale = max_norm / norm
        for g in grads:
            g *= scale  # in place: the arrays may be views of an optimizer's flat gradient
    return norm

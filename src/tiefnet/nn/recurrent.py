"""Recurrent layers (4.1-4.4): the Elman RNN and the LSTM, with backpropagation through time (4.2).

Sequences are batched as x (N, T, D): N sequences, T time steps, D input features; the hidden
state h has H entries; inputs and outputs are (N, T, .) like everywhere in tiefnet. These fused
layers run a whole sequence per call, fast; :mod:`tiefnet.nn.cells` has the same two recurrences
one time step at a time (a decoder whose input at t depends on h^{t-1}, 4.4.2), with the same
parameters, so weights copy 1:1 between a cell and its fused layer.

Inside a layer the lecture's column convention holds: h^t is a column, the N sequences are N
columns side by side, so a step is ``z^t = W @ h^{t-1} + (U x^t + b)`` with h^{t-1} of shape
(H, N), exactly as written in 4.1. The buffers are (T, ., N): each step reads and writes one
contiguous (., N) block, and the GEMM W (G, H) @ h (H, N) is the shape BLAS runs fastest (twice
as fast here as the row form h (N, H) @ W^T for N = 32).

The input projection U x^t + b does not depend on h, so forward computes it for all t in one GEMM
[U | b] (G, D+1) @ [x; 1] (D+1, T N) (the bias as the weight of a constant input 1); backward sums
dC/dW = sum_t delta^t (h^{t-1})^T and dC/dU, dC/db likewise in one GEMM each over all (t, n).
Only the recursion over h (and c) loops over t.

The N sequences are independent, so with ``thread_limit(2)`` the layer cuts the batch into
parts that run their recursions on parallel threads; their gradient sums are added.

State is explicit: ``out, last = layer.forward_state(x, state)`` takes the initial state and
returns the last one, (h,) for the RNN or (h, c) for the LSTM, each (N, H); after a training
forward, ``dx, dstate0 = layer.backward_state(grad, dlast)`` takes dC/d(output) and, optionally,
dC/d(last state) (an encoder whose last state starts a decoder) and returns dC/dx and
dC/d(initial state). ``forward(x, train, state)`` / ``backward(grad)`` are the Layer contract on
top of them (dC/d(initial state) then lands in ``self.dstate``).

Stacking (4.3): ``Sequential(LSTM(3, 5), LSTM(5, 4))`` is a deep LSTM; its backward is BPTT
applied to layer L, then to L-1, ... as in the lecture.

Truncated BPTT (4.2, Bemerkung): with ``stateful=True`` the last state of one ``forward`` is the
first state of the next (the blocks of the lecture's figure); gradients do not flow across blocks.
"""
from __future__ import annotations

from typing import Any

import numpy

from tiefnet.backend import Array, split_batch, xp
from tiefnet.errors import ShapeError
from tiefnet.nn.layer import Layer
from tiefnet.nn.rnn_base import _accumulator, _RecurrentParams, _sigmoid_


class _Recurrent(_RecurrentParams):
    """What the fused RNN and LSTM share: the carried state, input checks, the batched input
    projection and parameter gradients, and the split of the batch into parallel parts.

    A subclass writes the recursion for one part of the batch:
    ``_forward_part(Zx, state) -> (h, last_state, cache)`` with Zx = U x^t + b (T, G, n) and
    h (T, H, n); ``_backward_part(cache, dh_out, dlast) -> (delta, h_prev, dstate)`` with
    dh_out(t) -> dC/dh^t from the output (H, n) or None, dlast = dC/d(last state) as (H, n) blocks
    or None, delta (G, T, n), h_prev (H, T, n) = h^0..h^{T-1}.
    """

    def __init__(self, D: int, H: int, rng: numpy.random.Generator | None, init: str,
                 return_sequences: bool, stateful: bool, forget_bias: float | None = None) -> None:
        super().__init__(D, H, rng, init, forget_bias)
        self.return_sequences, self.stateful = bool(return_sequences), bool(stateful)
        self._carried: tuple[Array, ...] | None = None  # stateful: the last state of the latest forward
        self._parts: list | None = None  # per part of the batch: (lo, hi, x1, cache), from a training forward

    # --- the carried state (stateful=True: truncated BPTT) --------------------------------
    @property
    def batch_coupled(self) -> bool:  # type: ignore[override]
        """A stateful layer carries each sequence's state from call to call: its batch is not split
        into parts on other processes (tiefnet.parallel)."""
        return self.stateful

    @property
    def state(self) -> tuple[Array, ...] | None:
        """A stateful layer's carried state, each (N, H): the last state of its latest forward,
        the first state of its next one; None before the first forward and after reset_state()."""
        if not self.stateful:
            raise AttributeError(f"{self.describe()} is not stateful and carries no state: "
                                 f"forward_state(x, state) returns the last state")
        return self._carried

    @state.setter
    def state(self, value) -> None:
        if not self.stateful:
            raise AttributeError(f"{self.describe()} is not stateful: pass the state to forward(x, state=...)")
        self._carried = None if value is None else tuple(value) if isinstance(value, (tuple, list)) else (value,)

    def reset_state(self) -> None:
        """Forget the carried state: the next forward starts from zeros (a new sequence)."""
        self._carried = None

    # --- forward --------------------------------------------------------------------------
    def forward(self, x: Array, train: bool = False, state=None) -> Array:
        """x (N, T, D); ``state`` = the initial state (h^0, or (h^0, c^0) for the LSTM), each
        (N, H), default zeros, or the carried state when stateful (which then becomes the last state)."""
        if state is None and self.stateful:
            state = self._carried
        out, last = self.forward_state(x, state, train)
        if self.stateful:
            self._carried = last  # truncated BPTT: the next block starts where this one ended
        return out

    def forward_state(self, x: Array, state=None, train: bool = False) -> tuple[Array, tuple[Array, ...]]:
        """(output, last state) for x (N, T, D) started from ``state`` (default zeros), each state
        part (N, H). Never reads or writes the carried state; train=True caches what backward needs."""
        self._check_input(x)
        N, T, D = x.shape
        initial = self._state_or_zeros(state, N, x.dtype)
        H = self.H
        Ub = xp.concatenate([self.params["U"], self.params["b"][:, None]], axis=1)  # [U | b], (G, D+1)
        out = xp.empty((N, T, H) if self.return_sequences else (N, H), dtype=x.dtype)
        last = tuple(xp.empty((N, H), dtype=x.dtype) for _ in self.state_names)
        parts: list = []

        def part(lo: int, hi: int) -> None:
            n = hi - lo
            x1 = xp.empty((D + 1, T, n), dtype=x.dtype)  # [x^t; 1] as columns, (D+1, T, n)
            x1[:D] = x[lo:hi].transpose(2, 1, 0)
            x1[D] = 1
            Zx = xp.matmul(Ub, x1.transpose(1, 0, 2))  # U x^t + b for every t, one contiguous (G, n) block each
            h, last_state, cache = self._forward_part(Zx, tuple(s[lo:hi].T for s in initial))
            if self.return_sequences:
                out[lo:hi] = h.transpose(2, 0, 1)  # (T, H, n) -> (n, T, H)
            else:
                out[lo:hi] = h[-1].T
            for k, s in enumerate(last_state):
                last[k][lo:hi] = s.T
            parts.append((lo, hi, x1, cache))

        split_batch(part, N)
        if train:
            parts.sort(key=lambda p: p[0])  # batch order, whichever thread finished first
            self._parts, self.output = parts, out
        return out, last

    # --- backward -------------------------------------------------------------------------
    def backward_state(self, grad: Array | None, dlast=None, need_input_grad: bool = True
                       ) -> tuple[Array | None, tuple[Array, ...]]:
        """BPTT (4.2) after a training forward: (dC/dx (N, T, D) or None, dC/d(initial state)).

        grad = dC/d(output), or None where the output does not enter the cost; dlast = dC/d(last
        state), a tuple like the state (each (N, H)), or None. Writes dC/dW, dC/dU, dC/db into
        ``grads`` unless the layer is frozen (trainable False: dC/dx and dC/d(state) only)."""
        parts = self._require_cache("_parts")
        T, N = parts[0][2].shape[1], parts[-1][1]
        if grad is not None:
            expected = (N, T, self.H) if self.return_sequences else (N, self.H)
            if grad.shape != expected:
                raise ShapeError(f"{self.describe()}: backward expects dC/d(output) of shape {expected}, "
                                 f"got {tuple(grad.shape)}")
        if dlast is not None:
            dlast = self._check_state(dlast, N, "dlast = dC/d(last state)")
        D, H, trainable = self.D, self.H, self.trainable
        dtype = parts[0][2].dtype if grad is None else grad.dtype
        dx = xp.empty((N, T, D), dtype=dtype) if need_input_grad else None
        dstate = tuple(xp.empty((N, H), dtype=dtype) for _ in self.state_names)
        sums: list = [None] * len(parts)

        def part(index: int) -> None:
            lo, hi, x1, cache = parts[index]
            n = hi - lo
            dlast_part = None if dlast is None else tuple(s[lo:hi].T for s in dlast)
            delta, h_prev, dstate_part = self._backward_part(cache, self._output_gradient(grad, lo, hi, T), dlast_part)
            delta2 = delta.reshape(-1, T * n)  # (G, T n): every (t, n) is a column
            if trainable:  # a frozen layer skips the two weight-gradient GEMMs
                dW = delta2 @ h_prev.reshape(H, T * n).T  # sum_t delta^t (h^{t-1})^T
                dUb = delta2 @ x1.reshape(D + 1, T * n).T  # sum_t delta^t [x^t; 1]^T: dC/dU and dC/db
                sums[index] = (dW, dUb)
            if dx is not None:
                dx[lo:hi] = (self.params["U"].T @ delta2).reshape(D, T, n).transpose(2, 1, 0)  # U^T delta^t
            for k, s in enumerate(dstate_part):
                dstate[k][lo:hi] = s.T

        split_batch(lambda first, last: [part(i) for i in range(first, last)], len(parts), min_part=1)
        if trainable:
            dW, dUb = sums[0]
            for more_W, more_Ub in sums[1:]:  # the parts' sums over their sequences add up
                dW += more_W
                dUb += more_Ub
            self._grad("W")[...] = dW
            self._grad("U")[...] = dUb[:, :D]
            self._grad("b")[...] = dUb[:, D]
        return dx, dstate

    def _output_gradient(self, grad: Array | None, lo: int, hi: int, T: int):
        """dh_out(t) -> dC/dh^t from the output for the sequences lo:hi, (H, n), or None."""
        if grad is None:
            return lambda t: None
        if self.return_sequences:
            return lambda t: grad[lo:hi, t].T
        return lambda t: grad[lo:hi].T if t == T - 1 else None  # only h^T feeds the cost

    def _settings(self) -> dict[str, Any]:
        return {"return_sequences": self.return_sequences, "stateful": self.stateful}


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
        dC/dh^t = W^T delta^{t+1} + (dC/dh^t from the output at t)     (4.2)
                  (at t = T the first term is dlast = dC/dh^T from the last state, or 0)
        delta^t = dC/dz^t = (1 - (h^t)^2) * dC/dh^t
        dC/dW = sum_t delta^t (h^{t-1})^T;  dC/dU = sum_t delta^t (x^t)^T;  dC/db = sum_t delta^t
        dC/dx^t = U^T delta^t;  dC/dh^0 = W^T delta^1

    Args:
        D, H: input features and hidden units.
        rng: generator for the initial weights; init: "scaled" N(0, 1/n_in), "large", "he"
            (n_in = H for W, D for U); b starts at 0.
        return_sequences: output every h^t (True) or only the last one.
        stateful: carry the last state of one forward to the next (truncated BPTT, 4.2); see
            ``state`` and reset_state(). Every forward, an evaluation forward too, then writes the
            carried state onto the layer, so a stateful layer belongs to one stream of data (one
            worker). Otherwise a forward writes nothing onto the layer unless train=True, and
            forward_state(x, state) hands the last state to the caller instead.

    Explicit state: ``out, (h^T,) = forward_state(x, (h^0,))`` and, after a training forward,
    ``dx, (dC/dh^0,) = backward_state(grad, dlast=(dC/dh^T,))``.
    """

    def __init__(self, D: int, H: int, rng: numpy.random.Generator | None = None, init: str = "scaled",
                 return_sequences: bool = True, stateful: bool = False):
        super().__init__(D, H, rng, init, return_sequences, stateful)

    def _forward_part(self, Zx: Array, state: tuple[Array, ...]):
        """Zx (T, H, n) = U x^t + b; state (h^0,) with h^0 (H, n). Columns are sequences."""
        T, H, n = Zx.shape
        W = self.params["W"]
        h = xp.empty((T + 1, H, n), dtype=Zx.dtype)  # h[t] is h^t, one contiguous (H, n) block per t
        h[0] = state[0]
        for t in range(T):
            z = xp.matmul(W, h[t], out=h[t + 1])  # W h^{t-1} ...
            z += Zx[t]  # ... + U x^t + b
            xp.tanh(z, out=z)  # h^t = tanh(z^t)
        return h[1:], (h[T],), h

    def _backward_part(self, h: Array, dh_out, dlast):
        """BPTT (4.2) from t = T down to 1 for one part; h (T+1, H, n) from forward."""
        T, H, n = h.shape[0] - 1, h.shape[1], h.shape[2]
        W_T = xp.ascontiguousarray(self.params["W"].T)  # W^T laid out on its own: W^T delta^t runs faster
        delta = xp.empty((H, T, n), dtype=h.dtype)  # dC/dz^t, (H, T, n) for the sums over (t, n)
        dh = _accumulator(dlast, 0, (H, n), h.dtype)  # dC/dh^t, starts as dC/dh^T from the last state (or 0)
        tanh_prime = xp.empty((H, n), dtype=h.dtype)
        for t in range(T - 1, -1, -1):
            upstream = dh_out(t)
            if upstream is not None:
                dh += upstream  # dC/dh^t = (from the output at t) + W^T delta^{t+1} (4.2)
            xp.multiply(h[t + 1], h[t + 1], out=tanh_prime)
            xp.subtract(1, tanh_prime, out=tanh_prime)  # tanh' = 1 - tanh^2
            d = delta[:, t]
            xp.multiply(dh, tanh_prime, out=d)  # delta^t = tanh'(z^t) * dC/dh^t
            xp.matmul(W_T, d, out=dh)  # W^T delta^t: the recursive part of dC/dh^{t-1}
        return delta, h[:-1].transpose(1, 0, 2), (dh,)


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
    BPTT, with dh = dC/dh^t (from the output at t plus W^T delta^{t+1}) and dc = dC/dc^t
    (at t = T the recursive parts are dlast = (dC/dh^T, dC/dc^T), or 0):
        dC/do^t = dh * tanh(c^t)
        dc      = dC/dc^t (from c^{t+1}: dc^{t+1} * f^{t+1}) + dh * o^t * (1 - tanh(c^t)^2)
        dC/df^t = dc * c^{t-1};  dC/di^t = dc * g^t;  dC/dg^t = dc * i^t
        delta^t = [dC/df f(1-f); dC/di i(1-i); dC/do o(1-o); dC/dg (1-g^2)]   (sigma' = sigma(1-sigma))
        dC/dW = sum_t delta^t (h^{t-1})^T;  dC/dU = sum_t delta^t (x^t)^T;  dC/db = sum_t delta^t

    Args: as for RNN, and forget_bias: the initial b_f (1.0 keeps f near 1: remember by default).

    Explicit state: ``out, (h^T, c^T) = forward_state(x, (h^0, c^0))`` and, after a training forward,
    ``dx, (dC/dh^0, dC/dc^0) = backward_state(grad, dlast=(dC/dh^T, dC/dc^T))``.
    """

    gates = 4
    state_names = ("h", "c")

    def __init__(self, D: int, H: int, rng: numpy.random.Generator | None = None, init: str = "scaled",
                 return_sequences: bool = True, stateful: bool = False, forget_bias: float = 1.0):
        super().__init__(D, H, rng, init, return_sequences, stateful, float(forget_bias))

    def _forward_part(self, Zx: Array, state: tuple[Array, ...]):
        """Zx (T, 4H, n) = U x^t + b; state (h^0, c^0), each (H, n). Columns are sequences.

        Kept for backward, one contiguous block per t: the gates [f; i; o; g] (T, 4H, n),
        c^0..c^T (T+1, H, n), tanh(c^t) (T, H, n) and h^0..h^T (T+1, H, n).
        """
        T, G, n = Zx.shape
        H, W = self.H, self.params["W"]
        gates = Zx  # U x^t + b, turned into the gates in place
        W_h = xp.empty((G, n), dtype=Zx.dtype)
        h = xp.empty((T + 1, H, n), dtype=Zx.dtype)
        c = xp.empty((T + 1, H, n), dtype=Zx.dtype)
        tanh_c = xp.empty((T, H, n), dtype=Zx.dtype)
        i_g = xp.empty((H, n), dtype=Zx.dtype)
        h[0], c[0] = state
        for t in range(T):
            z = gates[t]
            z += xp.matmul(W, h[t], out=W_h)  # z^t = U x^t + b + W h^{t-1} = [z_f; z_i; z_o; z_g]
            _sigmoid_(z[: 3 * H])  # f, i, o = sigma(z_f), sigma(z_i), sigma(z_o)
            xp.tanh(z[3 * H:], out=z[3 * H:])  # g = tanh(z_g)
            f, i, o, g = z[:H], z[H:2 * H], z[2 * H:3 * H], z[3 * H:]
            xp.multiply(f, c[t], out=c[t + 1])
            xp.multiply(i, g, out=i_g)
            c[t + 1] += i_g  # c^t = f^t c^{t-1} + i^t g^t
            xp.tanh(c[t + 1], out=tanh_c[t])
            xp.multiply(o, tanh_c[t], out=h[t + 1])  # h^t = o^t tanh(c^t)
        return h[1:], (h[T], c[T]), (gates, h, c, tanh_c)

    def _backward_part(self, cache, dh_out, dlast):
        """BPTT through the LSTM cell (4.4) from t = T down to 1 for one part of the batch."""
        gates, h, c, tanh_c = cache
        T, G, n = gates.shape
        H, W_T = self.H, xp.ascontiguousarray(self.params["W"].T)  # laid out on its own: W^T delta^t runs faster
        delta = xp.empty((G, T, n), dtype=h.dtype)  # dC/dz^t, (4H, T, n) for the sums over (t, n)
        dh = _accumulator(dlast, 0, (H, n), h.dtype)  # dC/dh^t; starts as dC/dh^T from the last state (or 0)
        dc = _accumulator(dlast, 1, (H, n), h.dtype)  # dC/dc^t; starts as dC/dc^T from the last state (or 0)
        tmp = xp.empty((H, n), dtype=h.dtype)
        d_gate = xp.empty((G, n), dtype=h.dtype)  # dC/d[f; i; o; g]
        d_act = xp.empty((G, n), dtype=h.dtype)  # [sigma'; sigma'; sigma'; tanh'] at z^t
        for t in range(T - 1, -1, -1):
            z = gates[t]
            f, i, o, g = z[:H], z[H:2 * H], z[2 * H:3 * H], z[3 * H:]
            upstream = dh_out(t)
            if upstream is not None:
                dh += upstream  # dC/dh^t = (from the output at t) + W^T delta^{t+1}
            xp.multiply(tanh_c[t], tanh_c[t], out=tmp)
            xp.subtract(1, tmp, out=tmp)
            tmp *= o
            tmp *= dh
            dc += tmp  # dC/dc^t = dc^{t+1} f^{t+1} + dh o^t (1 - tanh(c^t)^2)   (4.4)
            xp.multiply(dc, c[t], out=d_gate[:H])  # dC/df^t = dc c^{t-1}
            xp.multiply(dc, g, out=d_gate[H:2 * H])  # dC/di^t = dc g^t
            xp.multiply(dh, tanh_c[t], out=d_gate[2 * H:3 * H])  # dC/do^t = dh tanh(c^t)
            xp.multiply(dc, i, out=d_gate[3 * H:])  # dC/dg^t = dc i^t
            xp.subtract(1, z[: 3 * H], out=d_act[: 3 * H])
            d_act[: 3 * H] *= z[: 3 * H]  # sigma' = sigma (1 - sigma) for f, i, o
            xp.multiply(g, g, out=d_act[3 * H:])
            xp.subtract(1, d_act[3 * H:], out=d_act[3 * H:])  # tanh' = 1 - g^2
            d = delta[:, t]
            xp.multiply(d_gate, d_act, out=d)  # delta^t = dC/dz^t
            dc *= f  # the part of dC/dc^{t-1} that flows through c^t = f^t c^{t-1} + ...
            xp.matmul(W_T, d, out=dh)  # W^T delta^t: the recursive part of dC/dh^{t-1}
        return delta, h[:-1].transpose(1, 0, 2), (dh, dc)


def recurrent_layers(model: Layer) -> list[Layer]:
    """The recurrent layers (or cells) among a Sequential's layers: those with an explicit state
    (``forward_state``), in order."""
    return [layer for layer in getattr(model, "layers", []) if hasattr(layer, "forward_state")]


"""What the recurrent layers of :mod:`tiefnet.nn.recurrent` (fused, a whole sequence per call) and
the cells of :mod:`tiefnet.nn.cells` (one time step per call) share (4.1, 4.4): the parameters W, U, b
in one layout with one initialisation, so that weights copy 1:1 between a cell and its fused layer;
the checks of an input sequence and of a state (h,) or (h, c); the in-place logistic function.
"""
from __future__ import annotations

from typing import Any

import numpy

from tiefnet.backend import Array, xp
from tiefnet.errors import ConfigError, ShapeError
from tiefnet.nn import init as initialisers
from tiefnet.nn.layer import Layer, whole_numbers


def _sigmoid_(z: Array) -> None:
    """z <- sigma(z) = (1 + tanh(z / 2)) / 2 in place: the logistic function (2.2) through
    NumPy's vectorised tanh (7x faster here than scipy's expit, and never overflows)."""
    z *= 0.5
    xp.tanh(z, out=z)
    z *= 0.5
    z += 0.5


def _accumulator(dlast: tuple[Array, ...] | None, k: int, shape: tuple[int, ...], dtype) -> Array:
    """A fresh contiguous block to accumulate a gradient into: dC/d(last state)[k], or zeros."""
    if dlast is None:
        return xp.zeros(shape, dtype=dtype)
    return dlast[k].astype(dtype, order="C", copy=True)


class _RecurrentParams(Layer):
    """What the fused layers and the cells (:mod:`tiefnet.nn.cells`) share: the sizes D and H; the
    parameters W (G, H), U (G, D), b (G,) with G = gates * H, and their initialisation (the same
    layout and init, so weights copy 1:1 between a cell and its fused layer); the checks of x and
    of a state (h,) or (h, c), each (N, H); and ``backward`` on top of the subclass's ``backward_state``."""

    gates = 1  # blocks of H rows in W, U, b (4 for the LSTM)
    state_names: tuple[str, ...] = ("h",)  # the parts of the state, each (N, H)

    def __init__(self, D: int, H: int, rng: numpy.random.Generator | None, init: str,
                 forget_bias: float | None = None) -> None:
        super().__init__()
        if int(D) < 1 or int(H) < 1:
            raise ConfigError(f"{type(self).__name__}: D={D} and H={H} must be at least 1")
        self.D, self.H, self.init = int(D), int(H), init
        rng = numpy.random.default_rng() if rng is None else rng
        G = self.gates * self.H
        self.params["W"] = initialisers.normal(rng, (G, self.H), initialisers.weight_std(init, self.H))
        self.params["U"] = initialisers.normal(rng, (G, self.D), initialisers.weight_std(init, self.D))
        # Biases start at 0, not N(0, 1) as in Dense (2.7.3): N(0, 1) would saturate tanh/sigma at t = 1.
        self.params["b"] = xp.zeros(G, dtype=self.params["W"].dtype)
        self.forget_bias = None if forget_bias is None else float(forget_bias)
        if self.forget_bias is not None:
            self.params["b"][: self.H] = self.forget_bias  # b_f, the first block of the LSTM
        self.dstate: tuple[Array, ...] | None = None  # dC/d(initial state) after backward, each (N, H)

    def backward(self, grad: Array, need_input_grad: bool = True) -> Array | None:
        """grad = dC/d(output). Returns dC/dx (N, T, D); dC/d(initial state) goes to ``self.dstate``."""
        dx, self.dstate = self.backward_state(grad, None, need_input_grad)
        return dx

    def _check_input(self, x: Array) -> None:
        """x must be a sequence batch (N, T, D) with at least one time step."""
        if x.ndim != 3 or x.shape[2] != self.D:
            raise ShapeError(f"{self.describe()}: expected input of shape (N, T, {self.D}), got {tuple(x.shape)}")
        if x.shape[1] < 1:
            raise ShapeError(f"{self.describe()}: the sequence needs at least one time step, got T = 0")

    def _state_or_zeros(self, state, N: int, dtype) -> tuple[Array, ...]:
        """``state`` checked, as a tuple; zeros (the start of a new sequence) when it is None."""
        if state is None:
            return tuple(xp.zeros((N, self.H), dtype=dtype) for _ in self.state_names)
        return self._check_state(state, N, "state")

    def _check_state(self, state, N: int, what: str) -> tuple[Array, ...]:
        """A state or its gradient, each part (N, H); the RNN's (h,) may come as h alone."""
        state = tuple(state) if isinstance(state, (tuple, list)) else (state,)
        if len(state) != len(self.state_names) or any(getattr(s, "shape", None) != (N, self.H) for s in state):
            got = [tuple(getattr(s, "shape", ())) for s in state]
            raise ShapeError(f"{self.describe()}: {what} must be ({', '.join(self.state_names)}), "
                             f"each of shape ({N}, {self.H}), got {got}")
        return state

    def _settings(self) -> dict[str, Any]:
        """Constructor arguments beyond D, H and init (the fused layers' return_sequences, stateful)."""
        return {}

    @classmethod
    def array_count(cls, config: dict[str, Any]) -> int | None:
        sizes = whole_numbers(config, "D", "H")
        if sizes is None:
            return None
        D, H = sizes
        G = cls.gates * H
        return G * H + G * D + G  # W, U, b

    def to_config(self) -> dict[str, Any]:
        config = {"D": self.D, "H": self.H, "init": self.init, **self._settings()}
        if self.forget_bias is not None:
            config["forget_bias"] = self.forget_bias
        return config

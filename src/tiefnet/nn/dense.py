"""Fully connected layer (2.3) with its backpropagation (2.6, BP2-BP4)."""
from __future__ import annotations

from typing import Any

import numpy

from tiefnet import backend
from tiefnet.backend import Array, split_batch, xp
from tiefnet.errors import ConfigError
from tiefnet.nn import init as initialisers
from tiefnet.nn.layer import Layer, whole_numbers


SPLIT_ROWS = 512  # rows per thread from which the GEMMs are cut across backend.thread_limit's threads


class Dense(Layer):
    """z^l = w^l a^{l-1} + b^l (2.6); in row form z = a_prev @ W.T + b.

    W is stored (n_out, n_in), so W[j, k] is the lecture's w^l_jk.

    Shapes:
        x: (N, n_in) -> z: (N, n_out); W: (n_out, n_in); b: (n_out,)
        also x: (N, T, n_in) -> z: (N, T, n_out), the same layer at every time step (chapter 4)

    Args:
        n_in, n_out: numbers of inputs and of neurons.
        init: "scaled" N(0, 1/n_in) (default), "large" N(0, 1), or "he" N(0, 2/n_in);
            biases are N(0, 1) as in the lecture (2.7.3).
        rng: generator for the initial weights (reproducible).
    """

    def __init__(self, n_in: int, n_out: int, init: str = "scaled", rng: numpy.random.Generator | None = None):
        super().__init__()
        if int(n_in) < 1 or int(n_out) < 1:
            raise ConfigError(f"Dense: n_in={n_in} and n_out={n_out} must be at least 1")
        self.n_in, self.n_out, self.init = int(n_in), int(n_out), init
        rng = numpy.random.default_rng() if rng is None else rng
        std = initialisers.weight_std(init, self.n_in)
        self.params["W"] = initialisers.normal(rng, (self.n_out, self.n_in), std)
        self.params["b"] = initialisers.normal(rng, (self.n_out,), 1.0)
        self._a_prev: Array | None = None  # a^{l-1}, needed by (BP4)

    def forward(self, x: Array, train: bool = False) -> Array:
        if x.ndim == 2 and x.shape[0] < 2 * SPLIT_ROWS:  # the usual mini-batch: one GEMM (this runs at every step)
            z = x @ self.params["W"].T  # (N, n_out)
            z += self.params["b"]
        else:
            z = self._forward_rows(x)
        if train:
            self._a_prev, self.output = x, z  # a^{l-1} for (BP4)
        return z

    def _forward_rows(self, x: Array) -> Array:
        """z for x (N, n_in) or (N, T, n_in) as one GEMM over all rows; thousands of rows (a
        sequence model's output layer) cut across backend.thread_limit's threads."""
        rows = x.reshape(-1, x.shape[-1]) if x.ndim > 2 else x
        W, b = self.params["W"], self.params["b"]
        if rows.shape[0] >= 2 * SPLIT_ROWS and backend.threads() >= 2:
            z = xp.empty((rows.shape[0], self.n_out), dtype=xp.result_type(rows, W))

            def part(lo: int, hi: int) -> None:
                xp.matmul(rows[lo:hi], W.T, out=z[lo:hi])
                z[lo:hi] += b

            split_batch(part, rows.shape[0], min_part=SPLIT_ROWS)
        else:
            z = rows @ W.T
            z += b
        return z.reshape(*x.shape[:-1], self.n_out)

    def backward(self, delta: Array, need_input_grad: bool = True) -> Array | None:
        """delta = dC/dz^l, (N, n_out). Returns dC/da^{l-1}, (N, n_in)."""
        a_prev = self._require_cache("_a_prev")
        if delta.ndim > 2:  # time-distributed, (N, T, n_out): every step is a row of the batch
            dx = self.backward_rows(delta.reshape(-1, self.n_out), a_prev.reshape(-1, self.n_in), need_input_grad)
            return None if dx is None else dx.reshape(*a_prev.shape)
        return self.backward_rows(delta, a_prev, need_input_grad)

    def backward_rows(self, delta: Array, a_prev: Array, need_input_grad: bool) -> Array | None:
        """(BP2)-(BP4) for a batch of rows: delta (M, n_out), a_prev (M, n_in). A frozen layer
        (trainable False) computes (BP2) only."""
        if delta.shape[0] >= 2 * SPLIT_ROWS and backend.threads() >= 2:  # thousands of rows: on the threads
            return self._backward_parts(delta, a_prev, need_input_grad)
        if self._trainable:  # (the flag itself: this runs at every step)
            delta.sum(axis=0, out=self._grad("b"))  # (BP3)
            xp.matmul(delta.T, a_prev, out=self._grad("W"))  # (BP4): sum over the batch of a^{l-1}_k delta^l_j
        if not need_input_grad:
            return None
        return delta @ self.params["W"]  # (BP2), the (w^{l+1})^T delta^{l+1} part

    def _backward_parts(self, delta: Array, a_prev: Array, need_input_grad: bool) -> Array | None:
        """The same with the rows cut across the threads; the parts' sums (BP3), (BP4) added in a fixed order."""
        trainable, W = self._trainable, self.params["W"]
        dx = xp.empty((delta.shape[0], self.n_in), dtype=xp.result_type(delta, W)) if need_input_grad else None
        sums: dict[int, tuple[Array, Array]] = {}

        def part(lo: int, hi: int) -> None:
            if trainable:
                sums[lo] = (delta[lo:hi].T @ a_prev[lo:hi], delta[lo:hi].sum(axis=0))
            if dx is not None:
                xp.matmul(delta[lo:hi], W, out=dx[lo:hi])

        split_batch(part, delta.shape[0], min_part=SPLIT_ROWS)
        if trainable:
            order = sorted(sums)
            self._grad("W")[...] = sum(sums[lo][0] for lo in order)
            self._grad("b")[...] = sum(sums[lo][1] for lo in order)
        return dx

    def to_config(self) -> dict[str, Any]:
        return {"n_in": self.n_in, "n_out": self.n_out, "init": self.init}

    @classmethod
    def array_count(cls, config: dict[str, Any]) -> int | None:
        sizes = whole_numbers(config, "n_in", "n_out")
        return None if sizes is None else sizes[1] * sizes[0] + sizes[1]  # W, b

"""Convolutional layer (3.1-3.3) as im2col + one GEMM, with its backpropagation (3.2).

    z[n, f, i, j] = sum_{c,q,r} W[f, c, q, r] x_pad[n, c, i S + q, j S + r] + b[f]    (3.3)

im2col copies every receptive field into one row of a matrix, so the whole layer is one
matrix product with the filters. The lecture's matrix is (C Q R) x (N H_out W_out); ours is
its transpose, (N H_out W_out) x (C Q R), because rows are samples here (row-major batches).
"""
from __future__ import annotations

import math
from typing import Any

import numpy

from tiefnet import plans
from tiefnet.backend import Array, split_batch, xp
from tiefnet.errors import ConfigError, ShapeError
from tiefnet.nn import init as initialisers
from tiefnet.nn.layer import Layer, whole_numbers


def output_size(size: int, kernel: int, padding: int, stride: int) -> int | None:
    """W_out = (W + 2P - R)/S + 1 (3.3); None when W + 2P - R is no multiple of S (or negative)."""
    span = size + 2 * padding - kernel
    if span < 0 or span % stride:
        return None
    return span // stride + 1


def windows(x_pad: Array, Q: int, R: int, S: int, H_out: int, W_out: int) -> Array:
    """A view (N, C, H_out, W_out, Q, R) of every receptive field of x_pad (N, C, H, W), no copy."""
    sN, sC, sH, sW = x_pad.strides
    N, C = x_pad.shape[:2]
    return xp.lib.stride_tricks.as_strided(
        x_pad, shape=(N, C, H_out, W_out, Q, R), strides=(sN, sC, sH * S, sW * S, sH, sW)
    )


def channels_last(x: Array, P: int) -> Array:
    """x (N, C, H, W) as a C-contiguous (N, H + 2P, W + 2P, C) array, zero-padded.

    A view without copy when x already lies in memory channel by channel innermost, which is
    how the layers after a Conv2d leave it (its output is a transposed view of such an array).
    """
    x_hwc = x.transpose(0, 2, 3, 1)
    if P:
        return xp.pad(x_hwc, ((0, 0), (P, P), (P, P), (0, 0)))
    return xp.ascontiguousarray(x_hwc)


def im2col(x_hwc: Array, Q: int, R: int, S: int, H_out: int, W_out: int, out: Array | None = None) -> Array:
    """(N, H, W, C) -> the matrix (N H_out W_out, Q R C) of receptive fields, one per row (3.3):

        cols[(n, i, j), (q, r, c)] = x[n, iS + q, jS + r, c],   so that   z = cols W_mat^T + b

    with W_mat[f, (q, r, c)] = W[f, c, q, r]: the convolution as one matrix product (GEMM). The
    lecture's (C Q R) x (N H_out W_out) matrix is its transpose. With channels innermost, each row
    copies Q runs of R C neighbouring numbers.
    """
    N, H, W, C = x_hwc.shape
    sN, sH, sW, sC = x_hwc.strides
    fields = xp.lib.stride_tricks.as_strided(  # (N, H_out, W_out, Q, R, C) view
        x_hwc, shape=(N, H_out, W_out, Q, R, C), strides=(sN, sH * S, sW * S, sH, sW, sC))
    if out is None:
        return fields.reshape(N * H_out * W_out, Q * R * C)
    out.reshape(fields.shape)[...] = fields
    return out


def im2col_offsets(x_hwc: Array, Q: int, R: int, S: int, H_out: int, W_out: int) -> Array:
    """The same matrix as :func:`im2col`, (N H_out W_out, Q R C), filled one filter offset at a time.

    The (Q R C, N H_out W_out) array behind it gets Q R block copies, one per offset (q, r), of
    the inputs that offset touches; the matrix is its transpose, a view BLAS reads as it is.
    With one input channel (the first layer) each copy moves runs of W_out numbers where
    :func:`im2col` moves runs of R.
    """
    N, H, W, C = x_hwc.shape
    blocks = xp.empty((Q, R, C, N, H_out, W_out), dtype=x_hwc.dtype)
    for q in range(Q):
        for r in range(R):
            blocks[q, r] = x_hwc[:, q : q + S * H_out : S, r : r + S * W_out : S, :].transpose(3, 0, 1, 2)
    return blocks.reshape(Q * R * C, N * H_out * W_out).T


def col2im(cols: Array, hwc_shape: tuple[int, ...], Q: int, R: int, S: int, H_out: int, W_out: int,
           out: Array | None = None) -> Array:
    """The adjoint of im2col: add every row of ``cols`` back onto its receptive field.

    One strided add per filter offset (q, r): Q R adds of (N, H_out, W_out, C) blocks.
    Returns the (N, H, W, C) sums (of the padded input when there is padding) in ``out`` if given.
    """
    N, H, W, C = hwc_shape
    fields = cols.reshape(N, H_out, W_out, Q, R, C)
    dx = xp.zeros(hwc_shape, dtype=cols.dtype) if out is None else out
    if out is not None:
        dx[...] = 0
    for q in range(Q):
        for r in range(R):
            dx[:, q : q + S * H_out : S, r : r + S * W_out : S, :] += fields[:, :, :, q, r, :]
    return dx


def col2im_gemm(d: Array, W: Array, out: Array, S: int, H_out: int, W_out: int) -> Array:
    """col2im(d @ W_mat) without the big matrix: for each filter offset (q, r), one small GEMM
    d @ W[:, :, q, r] (N H_out W_out, C) added onto the inputs that offset touched (BP2-conv).

    d: (N H_out W_out, F); W: (F, C, Q, R); out: (N, H, W, C), overwritten with the sums.
    """
    N, C = out.shape[0], out.shape[3]
    F, _, Q, R = W.shape
    out[...] = 0
    for q in range(Q):
        for r in range(R):
            out[:, q : q + S * H_out : S, r : r + S * W_out : S, :] += (d @ W[:, :, q, r]).reshape(N, H_out, W_out, C)
    return out


class Conv2d(Layer):
    """F feature maps of Q x R filters over C channels, zero padding P, stride S (3.1, 3.3).

    Forward, the lecture's a_{f,j} = sigma(sum_{c,k} w_{f,c,k} x_{c,j+k} + b_f) (3.3) without sigma,
    which is a layer of its own (3.2, "Konzeptionelle Vereinfachung"):
        z[n, f, i, j] = sum_{c,q,r} W[f, c, q, r] x_pad[n, c, iS + q, jS + r] + b[f]
    computed as one GEMM, z = im2col(x) W_mat^T + b (3.3, "Optimierte Implementierung").

    Shapes:
        x: (N, C, H, W) -> z: (N, F, H_out, W_out); W: (F, C, Q, R); b: (F,)
        H_out = (H + 2P - Q)/S + 1, W_out = (W + 2P - R)/S + 1

    Backward (3.2), with delta = dC/dz:
        db_f = sum_{n,i,j} delta[n, f, i, j]                                  (BP3-conv)
        dW_{f,c,q,r} = sum_{n,i,j} delta[n, f, i, j] x_pad[n, c, iS + q, jS + r]  (BP4-conv)
        dx = the "full" correlation of delta with the filters, i.e. col2im(delta W)  (BP2-conv)
    """

    def __init__(self, C: int, F: int, kernel: int | tuple[int, int] = 5, padding: int = 0, stride: int = 1,
                 init: str = "scaled", rng: numpy.random.Generator | None = None):
        super().__init__()
        if isinstance(kernel, int):
            kernel = (kernel, kernel)
        if not (isinstance(kernel, (tuple, list)) and len(kernel) == 2 and all(isinstance(k, int) for k in kernel)):
            raise ConfigError(f"Conv2d: kernel={kernel!r} must be an int or a pair (Q, R) of ints")
        Q, R = kernel
        if min(C, F, Q, R, stride) < 1 or padding < 0:
            raise ConfigError(f"Conv2d: C={C}, F={F}, kernel={Q}x{R}, stride={stride} must be >= 1 "
                              f"and padding={padding} >= 0")
        self.C, self.F, self.Q, self.R, self.P, self.S, self.init = int(C), int(F), int(Q), int(R), int(padding), \
            int(stride), init
        rng = numpy.random.default_rng() if rng is None else rng
        std = initialisers.weight_std(init, self.C * self.Q * self.R)  # n_in = the receptive field
        self.params["W"] = initialisers.normal(rng, (self.F, self.C, self.Q, self.R), std)
        self.params["b"] = initialisers.normal(rng, (self.F,), 1.0 if init == "large" else 0.0)
        self._cols: Array | None = None

    def geometry(self, x_shape: tuple[int, ...]) -> tuple[int, int]:
        """(H_out, W_out) for an input of shape (N, C, H, W); a clear error if it does not fit."""
        if len(x_shape) != 4 or x_shape[1] != self.C:
            raise ShapeError(f"{self.describe()}: expected input (N, {self.C}, H, W), got {tuple(x_shape)}")
        H, W = x_shape[2:]
        H_out, W_out = output_size(H, self.Q, self.P, self.S), output_size(W, self.R, self.P, self.S)
        if H_out is None or W_out is None:
            raise ShapeError(f"{self.describe()}: input {H}x{W} does not fit: (size + 2P - kernel) = "
                             f"({H} + {2 * self.P} - {self.Q}, {W} + {2 * self.P} - {self.R}) must be a "
                             f"non-negative multiple of the stride S = {self.S}")
        return H_out, W_out

    def forward(self, x: Array, train: bool = False) -> Array:
        N = x.shape[0]
        H_out, W_out = self.geometry(x.shape)
        x_hwc = channels_last(x, self.P)  # (N, H + 2P, W + 2P, C)
        W_mat, b, fields = self._filters(), self.params["b"], H_out * W_out  # rows per sample
        cols = plans.choose("conv2d.im2col", (x_hwc.shape, self.Q, self.R, self.S), {  # the im2col matrix
            "rows": lambda: self._im2col_rows(x_hwc, H_out, W_out),
            "offsets": lambda: im2col_offsets(x_hwc, self.Q, self.R, self.S, H_out, W_out)})
        z = xp.empty((N * fields, self.F), dtype=x.dtype)

        def samples(lo: int, hi: int) -> None:  # rows of samples lo..hi-1: z = cols W^T + b
            rows = slice(lo * fields, hi * fields)
            xp.matmul(cols[rows], W_mat.T, out=z[rows])  # (., F)
            z[rows] += b

        split_batch(samples, N)
        # (N, F, H_out, W_out) as a view: in memory the features stay innermost, so the next
        # Conv2d's channels_last needs no copy
        out = z.reshape(N, H_out, W_out, self.F).transpose(0, 3, 1, 2)
        if train:
            self._cols, self._hwc_shape, self.output = cols, x_hwc.shape, out  # (BP4-conv), col2im
        return out

    def _im2col_rows(self, x_hwc: Array, H_out: int, W_out: int) -> Array:
        """The im2col matrix (N H_out W_out, Q R C), one receptive field copied per row."""
        N, fields = x_hwc.shape[0], H_out * W_out
        cols = xp.empty((N * fields, self.Q * self.R * self.C), dtype=x_hwc.dtype)

        def samples(lo: int, hi: int) -> None:
            im2col(x_hwc[lo:hi], self.Q, self.R, self.S, H_out, W_out, out=cols[lo * fields : hi * fields])

        split_batch(samples, N)
        return cols

    def _filters(self) -> Array:
        """W as the (F, Q R C) matrix whose columns match the im2col rows (channels innermost)."""
        return self.params["W"].transpose(0, 2, 3, 1).reshape(self.F, -1)

    def backward(self, delta: Array, need_input_grad: bool = True) -> Array | None:
        """delta = dC/dz, (N, F, H_out, W_out). Returns dC/dx, (N, C, H, W). A frozen layer
        (trainable False) computes (BP2-conv) only."""
        cols = self._require_cache("_cols")
        N, F, H_out, W_out = delta.shape
        trainable = self.trainable
        if not (trainable or need_input_grad):
            return None
        d = delta.transpose(0, 2, 3, 1).reshape(-1, F)  # (N H_out W_out, F), rows as in cols
        fields = H_out * W_out
        dx = xp.empty(self._hwc_shape, dtype=delta.dtype) if need_input_grad else None
        partial_dW = {}  # one (F, Q R C) sum per part of the batch, keyed by its first sample

        def samples(lo: int, hi: int) -> None:
            rows = slice(lo * fields, hi * fields)
            if trainable:
                partial_dW[lo] = cols[rows].T @ d[rows]  # (BP4-conv) over these samples, as (Q R C, F)
            if need_input_grad:  # (BP2-conv): the "full" correlation with the filters
                d_part, dx_part, W, S = d[rows], dx[lo:hi], self.params["W"], self.S
                plans.choose("conv2d.bp2", (d_part.shape, W.shape, S), {
                    "offsets": lambda: col2im_gemm(d_part, W, dx_part, S, H_out, W_out),
                    "gemm": lambda: col2im(d_part @ self._filters(), dx_part.shape, self.Q, self.R, S, H_out,
                                           W_out, out=dx_part)})

        if need_input_grad:
            split_batch(samples, N)
        else:  # dW alone (the first layer): one GEMM beats two half-size ones with a sum
            samples(0, N)
        if trainable:
            # (BP3-conv): the sum over all N H_out W_out positions, as a GEMV (a column sum of a tall
            # matrix is several times slower in NumPy)
            xp.matmul(xp.ones(d.shape[0], dtype=d.dtype), d, out=self._grad("b"))
            dW = sum(partial_dW[lo] for lo in sorted(partial_dW))  # (Q R C, F), in a fixed order
            self._grad("W")[...] = dW.T.reshape(F, self.Q, self.R, self.C).transpose(0, 3, 1, 2)
        if not need_input_grad:
            return None
        P = self.P
        if P:
            dx = dx[:, P:-P, P:-P, :]
        return dx.transpose(0, 3, 1, 2)  # (N, C, H, W), channels innermost in memory

    @classmethod
    def array_count(cls, config: dict[str, Any]) -> int | None:
        kernel = config.get("kernel", 5)
        kernel = [kernel, kernel] if isinstance(kernel, int) else kernel
        if not (isinstance(kernel, (list, tuple)) and len(kernel) == 2):
            return None
        sizes = whole_numbers({**config, "Q": kernel[0], "R": kernel[1]}, "C", "F", "Q", "R")
        return None if sizes is None else math.prod(sizes) + sizes[1]  # W (F, C, Q, R), b (F,)

    def to_config(self) -> dict[str, Any]:
        return {"C": self.C, "F": self.F, "kernel": [self.Q, self.R], "padding": self.P, "stride": self.S,
                "init": self.init}

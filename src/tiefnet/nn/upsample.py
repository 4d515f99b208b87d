"""Nearest-neighbour upsampling: the decoder of the fast style transfer network (Johnson et al. 2016;
resize-then-convolve instead of a transposed convolution, Odena et al. 2016) enlarges each feature
map by an integer factor s before its next convolution.

    a[n, c, i, j] = x[n, c, i // s, j // s]

Every input entry is copied onto an s x s block, so its gradient is the sum over that block.
"""
from __future__ import annotations

from typing import Any

from tiefnet.backend import Array, xp
from tiefnet.errors import ConfigError, ShapeError
from tiefnet.nn.layer import Layer


class Upsample(Layer):
    """a[n, c, i, j] = x[n, c, i // s, j // s]; backward: dx[n, c, i, j] = sum of da over the s x s block.

    Shapes: x (N, C, H, W) -> a (N, C, s H, s W).

    Args:
        scale: the integer factor s >= 1 (torch's ``Upsample(scale_factor=s, mode="nearest")``).
    """

    def __init__(self, scale: int = 2):
        super().__init__()
        if isinstance(scale, bool) or not hasattr(scale, "__index__") or int(scale) < 1:
            raise ConfigError(f"Upsample: scale={scale!r} must be a whole number >= 1")
        self.s = int(scale)

    def forward(self, x: Array, train: bool = False) -> Array:
        if x.ndim != 4:
            raise ShapeError(f"{self.describe()}: expected input (N, C, H, W), got {tuple(x.shape)}")
        N, C, H_in, W_in = x.shape
        s = self.s
        a = xp.empty_like(x, shape=(N, C, s * H_in, s * W_in))  # in x's memory order (channels-last after a Conv2d)
        for q in range(s):
            for r in range(s):
                a[:, :, q::s, r::s] = x  # offset (q, r) of every block
        if train:
            self._in_shape, self.output = x.shape, a  # the blocks backward sums
        return a

    def backward(self, da: Array, need_input_grad: bool = True) -> Array | None:
        """da (N, C, s H, s W) -> dx (N, C, H, W), the sum of each s x s block."""
        N, C, H_in, W_in = self._require_cache("_in_shape")
        if not need_input_grad:
            return None
        s = self.s
        return da.reshape(N, C, H_in, s, W_in, s).sum(axis=(3, 5))  # splitting axes is a view, no copy

    def to_config(self) -> dict[str, Any]:
        return {"scale": self.s}


__all__ = ["Upsample"]

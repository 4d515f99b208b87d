"""Padding layers: a border of zeros (as inside Conv2d, 3.3) or of the image reflected at its edge
(fast style transfer, Johnson et al. 2016, pads by reflection so that no dark frame appears).

    ZeroPad2d:        x_pad[n, c, t + i, l + j] = x[n, c, i, j], zero outside
    ReflectionPad2d:  x_pad[n, c, t - i, .] = x[n, c, i, .] for i = 1..t (the edge row itself is not
                      repeated), likewise at the bottom, left and right; torch's ``reflect`` mode.

Backward: the zero border gets no gradient, so dx is the centre of dy; each reflected entry is a
copy of an input entry, so its gradient is added back onto that entry (the adjoint of the copy).
"""
from __future__ import annotations

from typing import Any

from tiefnet.backend import Array, xp
from tiefnet.errors import ConfigError, ShapeError
from tiefnet.nn.layer import Layer


def _fold_reflected(g: Array, before: int, after: int) -> Array:
    """The adjoint of reflection padding along the last axis: (..., before + n + after) -> (..., n)."""
    n = g.shape[-1] - before - after
    dx = g[..., before : before + n].copy()
    dx[..., 1 : before + 1] += g[..., :before][..., ::-1]  # g[before - j] is a copy of x[j], j = 1..before
    dx[..., n - 1 - after : n - 1] += g[..., before + n :][..., ::-1]  # g[before + n - 1 + j] copies x[n - 1 - j]
    return dx


class Pad2d(Layer):
    """Pads the last two axes of (N, C, H, W) by (left, right, top, bottom), as torch's ``padding``.

    Shapes: x (N, C, H, W) -> (N, C, top + H + bottom, left + W + right).
    """

    mode = "constant"  # the xp.pad mode

    def __init__(self, padding: int | tuple[int, int, int, int] | list[int] = 1):
        super().__init__()
        sides = [padding] * 4 if not isinstance(padding, (tuple, list)) else list(padding)
        if len(sides) != 4 or not all(hasattr(p, "__index__") and not isinstance(p, bool) and p >= 0 for p in sides):
            raise ConfigError(f"{type(self).__name__}: padding={padding!r} must be an int >= 0 or four of them "
                              f"(left, right, top, bottom)")
        self.left, self.right, self.top, self.bottom = (int(p) for p in sides)

    def _check(self, x: Array) -> None:
        if x.ndim != 4:
            raise ShapeError(f"{self.describe()}: expected input (N, C, H, W), got {tuple(x.shape)}")

    def forward(self, x: Array, train: bool = False) -> Array:
        self._check(x)
        x_hwc = x.transpose(0, 2, 3, 1)  # pad channels-last, as Conv2d reads it; returned as a (N, C, H, W) view
        x_pad = xp.pad(x_hwc, ((0, 0), (self.top, self.bottom), (self.left, self.right), (0, 0)), mode=self.mode)
        out = x_pad.transpose(0, 3, 1, 2)
        if train:
            self._in_shape, self.output = x.shape, out  # where the centre lies, for backward
        return out

    def to_config(self) -> dict[str, Any]:
        sides = [self.left, self.right, self.top, self.bottom]
        return {"padding": sides[0] if len(set(sides)) == 1 else sides}


class ZeroPad2d(Pad2d):
    """A border of zeros; backward crops dy to the centre (the zeros depend on nothing)."""

    def backward(self, dy: Array, need_input_grad: bool = True) -> Array | None:
        _, _, H, W = self._require_cache("_in_shape")
        if not need_input_grad:
            return None
        return dy[:, :, self.top : self.top + H, self.left : self.left + W]


class ReflectionPad2d(Pad2d):
    """A border of the image mirrored at its edge rows and columns (each padding < the side it pads);
    backward adds the gradient of every mirrored entry onto the entry it copies."""

    mode = "reflect"

    def _check(self, x: Array) -> None:
        super()._check(x)
        H, W = x.shape[2:]
        if max(self.top, self.bottom) >= H or max(self.left, self.right) >= W:
            raise ShapeError(f"{self.describe()}: reflection padding must be less than the side it pads "
                             f"(top, bottom < H; left, right < W), got input {tuple(x.shape)}")

    def backward(self, dy: Array, need_input_grad: bool = True) -> Array | None:
        self._require_cache("_in_shape")
        if not need_input_grad:
            return None
        rows = _fold_reflected(xp.moveaxis(dy, 2, -1), self.top, self.bottom)  # (N, C, W_pad, H)
        return _fold_reflected(xp.moveaxis(rows, -1, 2), self.left, self.right)  # (N, C, H, W)


__all__ = ["Pad2d", "ReflectionPad2d", "ZeroPad2d"]

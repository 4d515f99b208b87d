"""Pooling layers (3.1): condense each k x k region of a feature map into one number —
its maximum (max-pooling) or its L2 norm (L2-pooling)."""
from __future__ import annotations

from typing import Any

from tiefnet import plans
from tiefnet.backend import Array, split_batch, xp
from tiefnet.errors import ConfigError, ShapeError
from tiefnet.nn.conv import windows
from tiefnet.nn.layer import Layer


class Pool2d(Layer):
    """k x k regions with stride s (default s = k); regions that would run past the border are
    dropped (floor). Shapes: x (N, C, H, W) -> a (N, C, (H - k)//s + 1, (W - k)//s + 1)."""

    def __init__(self, kernel: int = 2, stride: int | None = None):
        super().__init__()
        self.k, self.s = int(kernel), int(stride if stride is not None else kernel)
        if self.k < 1 or self.s < 1:
            raise ConfigError(f"{type(self).__name__}: kernel={kernel} and stride={stride} must be >= 1")

    def _check(self, x: Array) -> tuple[int, int]:
        """(H_out, W_out) for x (N, C, H, W), or a clear error."""
        if x.ndim != 4 or x.shape[2] < self.k or x.shape[3] < self.k:
            raise ShapeError(f"{self.describe()}: expected input (N, C, H, W) with H, W >= {self.k}, "
                             f"got {tuple(x.shape)}")
        return (x.shape[2] - self.k) // self.s + 1, (x.shape[3] - self.k) // self.s + 1

    def _regions(self, x: Array) -> Array:
        """(N, C, H_out, W_out, k*k): the values of every region, one region per row (a copy)."""
        H_out, W_out = self._check(x)
        fields = windows(x, self.k, self.k, self.s, H_out, W_out)  # (N, C, H_out, W_out, k, k) view
        return fields.reshape(*fields.shape[:4], self.k * self.k)

    def _scatter(self, d_regions: Array, x_shape: tuple[int, ...]) -> Array:
        """Add each region's gradient (N, C, H_out, W_out, k*k) back onto the input positions."""
        N, C, H_out, W_out, _ = d_regions.shape
        d = d_regions.reshape(N, C, H_out, W_out, self.k, self.k)
        dx = xp.zeros(x_shape, dtype=d.dtype)
        k, s = self.k, self.s
        for q in range(k):
            for r in range(k):
                dx[:, :, q : q + s * H_out : s, r : r + s * W_out : s] += d[..., q, r]
        return dx

    def to_config(self) -> dict[str, Any]:
        return {"kernel": self.k, "stride": self.s}


class MaxPool2d(Pool2d):
    """a = max over each region, a[n, c, i, j] = max_{0 <= q, r < k} x[n, c, i s + q, j s + r] (3.1,
    "2 x 2 max-pooling"); the gradient flows only to the (first) maximal entry.

    For the usual non-overlapping regions (stride = kernel) the k^2 entries of every region are
    k^2 strided slices of x, so forward and backward are k^2 whole-array operations.
    """

    def forward(self, x: Array, train: bool = False) -> Array:
        if self.s != self.k:
            return self._forward_windows(x, train)
        self._check(x)
        views = self._slices(x)
        a = xp.empty_like(views[0])  # in x's memory order: after a Conv2d, channels innermost

        def samples(lo: int, hi: int) -> None:
            a_part = a[lo:hi]
            a_part[...] = views[0][lo:hi]
            for v in views[1:]:
                xp.maximum(a_part, v[lo:hi], out=a_part)  # k^2 - 1 elementwise maxima

        split_batch(samples, x.shape[0])
        if train:
            self._x, self._winner, self.output = x, None, a  # the maxima are found again in backward
        return a

    def _slices(self, x: Array) -> list[Array]:
        """The k^2 strided views x[..., q::k, r::k] (cropped to whole regions), one per offset."""
        k = self.k
        H_out, W_out = x.shape[2] // k, x.shape[3] // k
        return [x[:, :, q : q + k * H_out : k, r : r + k * W_out : k] for q in range(k) for r in range(k)]

    def _forward_windows(self, x: Array, train: bool) -> Array:
        regions = self._regions(x)  # overlapping or gapped regions: gather them
        winner = regions.argmax(axis=-1)  # (N, C, H_out, W_out)
        a = xp.take_along_axis(regions, winner[..., None], axis=-1)[..., 0]
        if train:
            self._winner, self._x_shape, self.output = winner, x.shape, a
        return a

    def backward(self, da: Array, need_input_grad: bool = True) -> Array | None:
        if self.s != self.k:
            winner = self._require_cache("_winner")
            mask = winner[..., None] == xp.arange(self.k * self.k)  # one-hot of each region's maximum
            return self._scatter(mask * da[..., None], self._x_shape)
        x = self._require_cache("_x")
        a = self.output
        if x.shape[2] % self.k == 0 and x.shape[3] % self.k == 0:  # both ways apply; the same dx
            return plans.choose("maxpool2d.backward", (x.shape, x.strides, self.k), {
                "blocks": lambda: self._backward_blocks(x, a, da),
                "slices": lambda: self._backward_slices(x, a, da)})
        return self._backward_slices(x, a, da)

    def _backward_slices(self, x: Array, a: Array, da: Array) -> Array:
        """dx: one comparison and one product per region offset, on the k^2 strided slices."""
        dx = xp.zeros_like(x, dtype=da.dtype)  # in x's memory order, as the Conv2d before it expects

        def samples(lo: int, hi: int) -> None:
            taken = None  # regions whose maximum has been found at an earlier offset
            for v, dv in zip(self._slices(x[lo:hi]), self._slices(dx[lo:hi])):
                hit = v == a[lo:hi]
                if taken is None:
                    taken = hit
                else:
                    hit &= ~taken  # the first maximum of a region takes the gradient, as in PyTorch
                    taken |= hit
                xp.multiply(da[lo:hi], hit, out=dv)  # regions do not overlap: each entry is written once

        split_batch(samples, x.shape[0])
        return dx

    def _backward_blocks(self, x: Array, a: Array, da: Array) -> Array:
        """The same for sides divisible by k, on the channels-last view (N, H_out, k, W_out, k, C):
        one comparison finds every maximum, one product routes da to it."""
        N, C, H, W = x.shape
        k, H_out, W_out = self.k, H // self.k, W // self.k
        x6 = x.transpose(0, 2, 3, 1).reshape(N, H_out, k, W_out, k, C)  # a view after a Conv2d
        dx6 = xp.empty(x6.shape, dtype=da.dtype)

        def samples(lo: int, hi: int) -> None:
            hit = x6[lo:hi] == a[lo:hi].transpose(0, 2, 3, 1)[:, :, None, :, None, :]
            taken = None
            for q in range(k):
                for r in range(k):
                    h = hit[:, :, q, :, r, :]
                    if taken is None:
                        taken = h.copy()
                    else:
                        h &= ~taken  # the first maximum of a region takes the gradient, as in PyTorch
                        taken |= h
            xp.multiply(hit, da[lo:hi].transpose(0, 2, 3, 1)[:, :, None, :, None, :], out=dx6[lo:hi])

        split_batch(samples, N)
        return dx6.reshape(N, H, W, C).transpose(0, 3, 1, 2)  # (N, C, H, W), channels innermost


class L2Pool2d(Pool2d):
    """a = sqrt(sum of squares over each region), a[n, c, i, j] = sqrt(sum_{0 <= q, r < k}
    x[n, c, i s + q, j s + r]^2) (3.1, "L2-Pooling": the L2 norm of the region); da/dx = x / a
    (0 where a = 0)."""

    def forward(self, x: Array, train: bool = False) -> Array:
        regions = self._regions(x)
        a = xp.sqrt((regions * regions).sum(axis=-1))
        if train:
            self._cache, self.output = (regions, a, x.shape), a
        return a

    def backward(self, da: Array, need_input_grad: bool = True) -> Array | None:
        regions, a, x_shape = self._require_cache("_cache")
        scale = xp.where(a > 0, da / xp.where(a > 0, a, 1), 0)  # dC/da / a, safe where a = 0
        return self._scatter(regions * scale[..., None], x_shape)

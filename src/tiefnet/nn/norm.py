"""Normalisation layers: batch normalisation (Ioffe & Szegedy 2015) for the AlphaGo Zero residual
blocks (5.5) and instance normalisation (Ulyanov et al. 2016) for fast style transfer (Johnson et
al. 2016). Neither is derived in the lecture; both are one formula and its backward:

    x_hat = (x - mu) / sigma,  sigma = sqrt(var + eps),  y = gamma x_hat + beta

where mu and var (biased) are taken over a group of M numbers that share one (mu, sigma):
BatchNorm over the batch (and the positions) of each channel, InstanceNorm over the positions of
each sample and channel. gamma and beta are per channel. With dy = dC/dy, means over the group:

    dx     = (gamma / sigma) (dy - mean(dy) - x_hat mean(dy x_hat))     (BN-dx)
    dgamma = sum dy x_hat,  dbeta = sum dy                              (BN-dgamma, BN-dbeta)
"""
from __future__ import annotations

from typing import Any

from tiefnet import backend
from tiefnet.backend import Array, xp
from tiefnet.errors import ConfigError, ShapeError
from tiefnet.nn.layer import Layer, whole_numbers


def _check_int(layer: str, name: str, value: Any) -> int:
    """``value`` as an int >= 1, or a ConfigError naming the parameter and the value."""
    if isinstance(value, bool) or not hasattr(value, "__index__") or int(value) < 1:
        raise ConfigError(f"{layer}: {name}={value!r} must be a whole number >= 1")
    return int(value)


def _check_number(layer: str, name: str, value: Any, ok, allowed: str) -> float:
    """``value`` as a float for which ``ok`` holds, or a ConfigError naming parameter, value and range."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not ok(number):  # NaN fails every comparison
        raise ConfigError(f"{layer}: {name}={value!r} must be {allowed}")
    return number


class Normalization(Layer):
    """What every normalisation layer shares: y = gamma x_hat + beta and its backward (BN-dx).

    Subclasses set ``layout`` (the input shape, for messages), ``input_ndim``, ``stat_axes`` (the axes a group of
    numbers with one mu and sigma spans) and implement ``forward`` with :meth:`_normalize`.
    """

    layout = "(N, C, H, W)"
    size_name = "C"  # the constructor's name for the number of channels (features)
    input_ndim = 4
    stat_axes: tuple[int, ...] = (0, 2, 3)

    def __init__(self, C: int, eps: float = 1e-5, affine: bool = True):
        super().__init__()
        name = type(self).__name__
        self.C = _check_int(name, self.size_name, C)
        self.eps = _check_number(name, "eps", eps, lambda v: 0.0 < v < float("inf"), "a positive number")
        if not isinstance(affine, bool):
            raise ConfigError(f"{name}: affine={affine!r} must be true or false")
        self.affine = affine
        if affine:
            self.params["gamma"] = xp.ones(self.C, dtype=backend.dtype())  # y = x_hat at the start, as in torch
            self.params["beta"] = xp.zeros(self.C, dtype=backend.dtype())
        self._x_hat: Array | None = None  # (BN-dx), (BN-dgamma)
        self._inv_sigma: Array | None = None  # 1 / sigma per group, (BN-dx)

    def _check(self, x: Array) -> None:
        if x.ndim != self.input_ndim or x.shape[1] != self.C:
            raise ShapeError(f"{self.describe()}: expected input {self.layout.replace('C', str(self.C))}, "
                             f"got {tuple(x.shape)}")

    def group_size(self, x_shape: tuple[int, ...]) -> int:
        """M, the number of values that share one mu and sigma."""
        M = 1
        for axis in self.stat_axes:
            M *= x_shape[axis]
        return M

    def _channel(self, v: Array, dtype) -> Array:
        """A per-channel vector (C,) shaped to broadcast against the input: (C,) or (1, C, 1, 1)."""
        return v.astype(dtype, copy=False).reshape(self.C, *[1] * (self.input_ndim - 2))

    def _scale_shift(self, inv_sigma: Array, dtype) -> tuple[Array | float, Array | float]:
        """(gamma / sigma, beta) shaped against the input; (1 / sigma, 0) without affine parameters."""
        if not self.affine:
            return inv_sigma, 0.0
        return self._channel(self.params["gamma"], dtype) * inv_sigma, self._channel(self.params["beta"], dtype)

    def _normalize(self, x: Array, train: bool) -> tuple[Array, Array, Array]:
        """y = gamma x_hat + beta with the statistics of x itself; returns (y, mu, var), mu and var
        over ``stat_axes`` (kept as axes of length 1). Training caches x_hat and 1 / sigma."""
        mu = x.mean(axis=self.stat_axes, keepdims=True)  # (1, C, 1, 1) BatchNorm, (N, C, 1, 1) InstanceNorm
        x_hat = x - mu  # in x's memory order (a Conv2d output is channels-last)
        var = (x_hat * x_hat).mean(axis=self.stat_axes, keepdims=True)  # biased, as in the paper
        inv_sigma = 1.0 / xp.sqrt(var + self.eps)
        x_hat *= inv_sigma
        if self.affine:
            y = x_hat * self._channel(self.params["gamma"], x.dtype)
            y += self._channel(self.params["beta"], x.dtype)
        else:
            y = x_hat
        if train:
            self._x_hat, self._inv_sigma, self.output = x_hat, inv_sigma, y  # (BN-dx), (BN-dgamma)
        return y, mu, var

    def backward(self, dy: Array, need_input_grad: bool = True) -> Array | None:
        """dy = dC/dy, shaped like x. Returns dC/dx (BN-dx); fills dgamma, dbeta unless frozen."""
        x_hat = self._require_cache("_x_hat")
        inv_sigma = self._inv_sigma
        learn = self.trainable and self.affine
        if not (learn or need_input_grad):
            return None
        sum_dy = dy.sum(axis=self.stat_axes, keepdims=True)  # per group: (1, C, ...) or (N, C, 1, 1)
        sum_dy_x_hat = (dy * x_hat).sum(axis=self.stat_axes, keepdims=True)
        if learn:  # the groups of one channel add up (InstanceNorm: over the samples too)
            sum_dy_x_hat.reshape(-1, self.C).sum(axis=0, out=self._grad("gamma"))  # (BN-dgamma)
            sum_dy.reshape(-1, self.C).sum(axis=0, out=self._grad("beta"))  # (BN-dbeta)
        if not need_input_grad:
            return None
        M = self.group_size(x_hat.shape)
        scale, _ = self._scale_shift(inv_sigma, dy.dtype)  # gamma / sigma
        dx = x_hat * (sum_dy_x_hat / -M)
        dx += dy
        dx -= sum_dy / M
        dx *= scale  # (BN-dx)
        return dx


class BatchNorm(Normalization):
    """Batch normalisation (Ioffe & Szegedy 2015): y = gamma (x - mu_B) / sqrt(var_B + eps) + beta.

    Training (``train=True``) normalises with the statistics of the mini-batch B and updates the
    running ones, exactly as torch does:

        running_mean = (1 - momentum) running_mean + momentum mu_B
        running_var  = (1 - momentum) running_var  + momentum var_B M / (M - 1)   (unbiased)

    Evaluation (``train=False``) normalises with the running statistics and writes nothing.

    A frozen layer (``trainable = False``) is a fixed function, y = x gamma / sigma_run + (beta -
    mu_run gamma / sigma_run), in training mode too: it normalises with the running statistics and
    leaves them unchanged, so a frozen pretrained network stays what it was (torch needs ``.eval()``
    for this, beside ``requires_grad=False``); its backward is dC/dx = dy gamma / sigma_run.
    """

    batch_coupled = True  # the batch statistics mix the samples of a mini-batch

    def __init__(self, C: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__(C, eps, affine=True)
        self.momentum = _check_number(type(self).__name__, "momentum", momentum, lambda v: 0.0 <= v <= 1.0,
                                      "a number in [0, 1]")
        self.buffers["running_mean"] = xp.zeros(self.C, dtype=backend.dtype())
        self.buffers["running_var"] = xp.ones(self.C, dtype=backend.dtype())

    def forward(self, x: Array, train: bool = False) -> Array:
        self._check(x)
        if not (train and self.trainable):  # evaluation, or a frozen layer: the running statistics
            inv_sigma = 1.0 / xp.sqrt(self._channel(self.buffers["running_var"], x.dtype) + self.eps)
            scale, beta = self._scale_shift(inv_sigma, x.dtype)
            y = x * scale  # y = x (gamma / sigma) + (beta - running_mean gamma / sigma): one multiply-add
            y += beta - self._channel(self.buffers["running_mean"], x.dtype) * scale
            if train:  # frozen: dC/dx = scale dy, no statistics moved
                self._fixed_scale, self._x_hat, self.output = scale, None, y
            return y
        self._fixed_scale = None
        M = self.group_size(x.shape)
        if M < 2:
            raise ShapeError(f"{self.describe()}: training needs more than one value per channel "
                             f"(the batch variance), got input {tuple(x.shape)}")
        y, mu, var = self._normalize(x, train=True)
        m = self.momentum
        for name, batch in (("running_mean", mu), ("running_var", var * (M / (M - 1)))):
            running = self.buffers[name]  # in place: a checkpoint or a target network may hold this array
            running *= 1.0 - m
            running += m * batch.reshape(self.C)
        return y

    def backward(self, dy: Array, need_input_grad: bool = True) -> Array | None:
        scale = getattr(self, "_fixed_scale", None)
        if scale is not None:  # after a frozen layer's training forward: y = scale x + shift
            return dy * scale if need_input_grad else None
        return super().backward(dy, need_input_grad)

    def to_config(self) -> dict[str, Any]:
        return {self.size_name: self.C, "eps": self.eps, "momentum": self.momentum}

    @classmethod
    def array_count(cls, config: dict[str, Any]) -> int | None:
        C = whole_numbers(config, cls.size_name)
        return None if C is None else 4 * C[0]  # gamma, beta, running_mean, running_var


class BatchNorm1d(BatchNorm):
    """Batch normalisation of D features: mu and var over the N samples of each feature.

    Shapes: x (N, D) -> y (N, D); gamma, beta, running_mean, running_var: (D,).
    """

    layout = "(N, C)"
    size_name = "D"
    input_ndim = 2
    stat_axes = (0,)

    def __init__(self, D: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__(D, eps, momentum)
        self.n_in = self.C  # the width of the rows it takes (checked by Sequential)


class BatchNorm2d(BatchNorm):
    """Batch normalisation of C feature maps: mu and var over N, H and W of each channel
    (M = N H W values, so N = 1 works).

    Shapes: x (N, C, H, W) -> y (N, C, H, W); gamma, beta, running_mean, running_var: (C,).
    """


class InstanceNorm2d(Normalization):
    """Instance normalisation (Ulyanov et al. 2016): y = gamma (x - mu_nc) / sqrt(var_nc + eps) + beta,
    mu and var over the H W positions of each sample n and channel c, the same in training and
    evaluation (no running statistics). ``affine=True`` (learnt gamma, beta) by default, as in fast
    style transfer (Johnson et al. 2016); torch's InstanceNorm2d defaults to affine=False.

    Shapes: x (N, C, H, W) -> y (N, C, H, W); gamma, beta: (C,).
    """

    stat_axes = (2, 3)

    def forward(self, x: Array, train: bool = False) -> Array:
        self._check(x)
        if x.shape[2] * x.shape[3] < 2:
            raise ShapeError(f"{self.describe()}: needs more than one position per channel (H W >= 2), "
                             f"got input {tuple(x.shape)}")
        return self._normalize(x, train)[0]

    def to_config(self) -> dict[str, Any]:
        return {self.size_name: self.C, "eps": self.eps, "affine": self.affine}

    @classmethod
    def array_count(cls, config: dict[str, Any]) -> int | None:
        C = whole_numbers(config, cls.size_name)
        return None if C is None else 2 * C[0] if config.get("affine", True) else 0  # gamma, beta


__all__ = ["BatchNorm", "BatchNorm1d", "BatchNorm2d", "InstanceNorm2d", "Normalization"]

"""Convolutional MNIST networks (lecture 3.1-3.3; Nielsen's chapter 6).

    image (1, 28, 28) -> [conv Q x Q, F_1 features -> sigma -> 2 x 2 pool] -> [conv ... F_2 ...]
                      -> flatten -> [dropout] -> dense -> sigma -> ... -> [dropout] -> dense (10) -> softmax

Each stage is the lecture's topology "convolution, then pooling" (3.1): F feature maps that share
one Q x Q filter and one bias each (a^l_{f,j} = sigma(sum_{c,k} w_{f,c,k} x_{c,j+k} + b_f), 3.3),
then pooling that halves height and width. Nielsen's chapter-6 network is
conv 5x5x20 -> pool -> conv 5x5x40 -> pool -> FC 100 (ReLU) -> softmax: 28 -> 24 -> 12 -> 8 -> 4,
so the dense layers see 40 * 4 * 4 = 640 inputs.
"""
from __future__ import annotations

from typing import Sequence

import numpy

from tiefnet.errors import ConfigError
from tiefnet.nn import ACTIVATIONS, Conv2d, Dense, Dropout, Flatten, L2Pool2d, MaxPool2d, Reshape, Sequential, \
    Sigmoid, Softmax

IMAGE = (1, 28, 28)  # MNIST rows of 784 pixels become one-channel 28 x 28 images
POOLS = {"max": MaxPool2d, "l2": L2Pool2d}  # 3.1: maximum or L2 norm of each 2 x 2 region
POOL = 2  # 2 x 2 regions, stride 2: height and width halve (3.3)
CLASSES = 10


def map_sides(features: Sequence[int], kernel: int, side: int = IMAGE[1]) -> list[tuple[int, int]]:
    """(side after the conv, side after the pool) for each stage: W_out = W - R + 1 (3.3, P = 0,
    S = 1), then halved by pooling (an odd side drops its last row and column).

    >>> map_sides([20, 40], 5)
    [(24, 12), (8, 4)]
    """
    if kernel < 1:
        raise ConfigError(f"kernel={kernel} must be at least 1")
    sides = []
    for stage, _ in enumerate(features, 1):
        conv_side = side - kernel + 1
        if conv_side < POOL:
            raise ConfigError(f"features: stage {stage} gets {side}x{side} maps, too small for a {kernel}x{kernel} "
                              f"filter and {POOL}x{POOL} pooling; use fewer conv layers or a smaller --kernel")
        side = conv_side // POOL
        sides.append((conv_side, side))
    return sides


def flat_size(features: Sequence[int], kernel: int) -> int:
    """The number of inputs of the first dense layer: F_last * side^2 (640 for Nielsen's net)."""
    if not features:
        return IMAGE[0] * IMAGE[1] * IMAGE[2]
    return features[-1] * map_sides(features, kernel)[-1][1] ** 2


def build_cnn(features: Sequence[int] = (20, 40), kernel: int = 5, hidden: Sequence[int] = (100,),
              activation: str = "relu", pool: str = "max", dropout: float = 0.0, init: str = "he",
              output: str = "softmax", rng: numpy.random.Generator | None = None) -> Sequential:
    """Reshape + conv/activation/pool stages + Flatten + dense layers, dropout before each dense layer.

    Each stage computes a^l_{f,j} = sigma(sum_{c,k} w^l_{f,c,k} a^{l-1}_{c,j+k} + b^l_f) (3.3) with
    ``kernel`` x ``kernel`` filters, then 2 x 2 ``pool``ing (max or L2, 3.1); the dense layers
    a^l = sigma(w^l a^{l-1} + b^l) follow, and a softmax (2.7.2) or sigmoid output.

    Shapes: x (N, 784) -> (N, 1, 28, 28) -> ... (N, F_last, s, s) -> (N, F_last s^2) -> (N, 10).
    """
    if pool not in POOLS:
        raise ConfigError(f"pool={pool!r} is not one of {', '.join(POOLS)}")
    if output not in ("softmax", "sigmoid"):
        raise ConfigError(f"output={output!r} is not one of softmax, sigmoid")
    rng = numpy.random.default_rng() if rng is None else rng
    map_sides(features, kernel)  # a clear error before any layer is built
    layers = [Reshape(IMAGE)]
    channels = IMAGE[0]
    for F in features:
        conv, sigma, pooling = Conv2d(channels, F, kernel, init=init, rng=rng), ACTIVATIONS[activation](), POOLS[pool](POOL)
        # max-pooling commutes with a monotone activation: pooling first (as Nielsen's ConvPoolLayer
        # does) gives the same network and applies sigma to 4x fewer numbers; L2-pooling does not commute
        layers += [conv, pooling, sigma] if pool == "max" else [conv, sigma, pooling]
        channels = F
    layers.append(Flatten())
    sizes = [flat_size(features, kernel), *hidden, CLASSES]
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if dropout:  # Nielsen's chapter 6: dropout on the inputs of the fully connected layers only
            layers.append(Dropout(dropout, rng=numpy.random.default_rng(rng.integers(2**63))))
        layers.append(Dense(n_in, n_out, init=init, rng=rng))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    layers.append(Softmax() if output == "softmax" else Sigmoid())
    return Sequential(*layers)


def topology(features: Sequence[int], kernel: int, pool: str, hidden: Sequence[int]) -> str:
    """A one-line description, e.g. 'conv 5x5x20 -> max-pool -> conv 5x5x40 -> max-pool -> 640-100-10':
    the lecture's topology "Convolution und Pooling" (3.1), the dense sizes after flat_size."""
    stages = [f"conv {kernel}x{kernel}x{F} -> {pool}-pool" for F in features]
    dense = "-".join(str(n) for n in [flat_size(features, kernel), *hidden, CLASSES])
    return " -> ".join([*stages, dense])

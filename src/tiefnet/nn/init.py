"""Weight initialisation (2.7.3 "Initialisierung der Gewichtsmatrizen").

With w_j ~ N(0, s^2) and b ~ N(0, 1), var(z) = n/2 s^2 + 1 for n inputs of which half are 1:
s = 1 ("large") saturates sigma(z) for n = 784; s = 1/sqrt(n) ("scaled") keeps var(z) ~ 1.
"""
from __future__ import annotations

import math

import numpy

from tiefnet import backend
from tiefnet.errors import ConfigError

INITS = ("large", "scaled", "he")


def weight_std(init: str, n_in: int) -> float:
    """The standard deviation s of w ~ N(0, s^2) for a layer with ``n_in`` inputs (2.7.3):
    "large" s = 1, "scaled" s = 1/sqrt(n_in) (so that var(z) = n/2 s^2 + 1 stays of order 1),
    "he" s = sqrt(2/n_in)."""
    if init == "large":
        return 1.0  # N(0, 1): the lecture's first choice
    if init == "scaled":
        return 1.0 / math.sqrt(n_in)  # N(0, 1/n_in): s ~ 1/sqrt(n)
    if init == "he":
        return math.sqrt(2.0 / n_in)  # for ReLU layers
    raise ConfigError(f"init={init!r} is not one of {', '.join(INITS)}")


def normal(rng: numpy.random.Generator, shape: tuple[int, ...], std: float):
    """Samples of N(0, std^2) drawn on the host with ``rng`` (reproducible), moved to ``xp``."""
    return backend.asarray(rng.standard_normal(shape) * std)

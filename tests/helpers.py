"""The device boundary of the tests.

Library code computes with ``tiefnet.backend.xp``: NumPy, or CuPy with ``TIEFNET_DEVICE=gpu``,
and CuPy arrays do not mix with NumPy arrays. So tests hand inputs to layers, losses, optimizers
and the gradient checks through :func:`dev`, and take outputs, parameters and gradients back
through :func:`host` before NumPy arithmetic or ``numpy.testing`` assertions. On the CPU both are
no-ops for NumPy arrays (no copy).
"""
from __future__ import annotations

import numpy as np
import pytest

from tiefnet import backend


def dev(a, dtype=None):
    """``a`` (a NumPy array, list or number) as an array on the active device, keeping its dtype
    unless ``dtype`` is given (unlike ``backend.asarray``, which casts to the default dtype)."""
    return backend.xp.asarray(a, dtype=dtype)


def host(a) -> np.ndarray:
    """A device array (or a NumPy array, list or number) as a NumPy array."""
    return backend.to_numpy(a)


def fixed_mask(layer, seed: int):
    """Re-seed a Dropout layer's ``rng`` before every forward, so that each training forward
    draws the same mask (finite differences need the same function at every evaluation)."""
    forward = layer.forward

    def reseeded(x, train=False):
        layer.rng = np.random.default_rng(seed)
        return forward(x, train)

    layer.forward = reseeded
    return layer


def guard_against_writes(arrays):
    """Make later writes into ``arrays`` detectable: fill them with NaN (on any device) and make them
    read-only where the array type allows it (NumPy: a write then raises at once). Returns a check
    that is True while every entry is still NaN, i.e. nothing was written."""
    arrays = list(arrays)
    for a in arrays:
        a[...] = np.nan
        try:
            a.flags.writeable = False
        except (AttributeError, ValueError, TypeError):  # CuPy arrays have no read-only flag
            pass
    return lambda: all(bool(np.isnan(host(a)).all()) for a in arrays)


@pytest.fixture(autouse=True, params=["force:0", "force:1"], ids=["variant0", "variant1"])
def every_variant(request):
    """Imported by a test module, this runs each of its tests once with every site's first
    implementation forced and once with its second (tiefnet.plans): every variant passes the same tests."""
    from tiefnet import plans

    with plans.tuning(request.param):
        yield request.param

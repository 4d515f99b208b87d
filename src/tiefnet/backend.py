"""The one array namespace of tiefnet: ``xp`` is NumPy, or CuPy when ``TIEFNET_DEVICE=gpu``.

Library code does its math with ``xp`` only, so the same layer runs on the CPU and on a GPU.
float32 is the default dtype; gradient checks switch to float64 with :func:`set_dtype`.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator

import numpy

from tiefnet.errors import ConfigError

DEVICE = os.environ.get("TIEFNET_DEVICE", "cpu").strip().lower() or "cpu"
if DEVICE not in ("cpu", "gpu"):
    raise ConfigError(f"TIEFNET_DEVICE={DEVICE!r} is not one of 'cpu', 'gpu'")

if DEVICE == "gpu":  # pragma: no cover - exercised on a GPU machine only
    try:
        import cupy as xp  # type: ignore[no-redef]
        from cupyx.scipy.special import expit as _expit
    except ImportError as error:
        raise ConfigError(
            "TIEFNET_DEVICE=gpu needs CuPy: pip install 'tiefnet[gpu]' (or the cupy build for your CUDA)"
        ) from error
else:
    xp = numpy
    from scipy.special import expit as _expit

Array = Any  # numpy.ndarray or cupy.ndarray

_dtype = xp.float32


def dtype():
    """The floating dtype new parameters and data are created in (float32 unless changed)."""
    return _dtype


def set_dtype(new) -> None:
    """Set the default floating dtype (``xp.float32`` or ``xp.float64``)."""
    global _dtype
    _dtype = numpy.dtype(new).type


@contextmanager
def default_dtype(new) -> Iterator[None]:
    """Temporarily use another default dtype, e.g. float64 for a gradient check."""
    old = _dtype
    set_dtype(new)
    try:
        yield
    finally:
        set_dtype(old)


def asarray(a, dtype=None) -> Array:
    """Move ``a`` to the active device as an array of ``dtype`` (default: the default dtype)."""
    return xp.asarray(a, dtype=_dtype if dtype is None else dtype)


def to_numpy(a) -> numpy.ndarray:
    """A NumPy copy of ``a`` (a no-op view for NumPy arrays)."""
    if hasattr(a, "get"):  # cupy.ndarray
        return a.get()
    return numpy.asarray(a)


def sigmoid(z: Array) -> Array:
    """sigma(z) = 1 / (1 + e^{-z}) (2.2), evaluated without overflow."""
    return _expit(z)


def thread_limit(threads: int | None):
    """Context manager limiting the BLAS thread pool (``None`` leaves it as it is).

    Small GEMMs (mini-batch 10) run faster on one thread than on two here.
    """
    from threadpoolctl import threadpool_limits

    if threads is None:
        return threadpool_limits(limits=None)
    if threads < 1:
        raise ConfigError(f"threads={threads} must be at least 1")
    return threadpool_limits(limits=threads)

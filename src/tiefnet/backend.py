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


def sum_rows_by_index(out: Array, ids: Array, values: Array) -> Array:
    """out[v] = sum of the rows values[m] with ids[m] = v (0 where no id is v): a scatter-add.

    out (V, D), ids (M,) ints in [0, V), values (M, D). On the CPU the rows are sorted by id and
    each run summed with ``add.reduceat`` (a fixed, sequential order: reproducible); on a GPU,
    ``cupyx.scatter_add``. Neither builds the (M, V) one-hot matrix.
    """
    out[...] = 0
    if ids.size == 0:
        return out
    if DEVICE == "gpu":  # pragma: no cover - exercised on a GPU machine only
        import cupyx

        cupyx.scatter_add(out, ids, values)
        return out
    order = numpy.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = numpy.flatnonzero(numpy.r_[True, sorted_ids[1:] != sorted_ids[:-1]])  # first row of each id
    out[sorted_ids[starts]] = numpy.add.reduceat(values[order], starts, axis=0)
    return out


def sigmoid(z: Array) -> Array:
    """sigma(z) = 1 / (1 + e^{-z}) (2.2), evaluated without overflow."""
    return _expit(z)


_threads = 1  # CPU threads that split_batch may use (set by thread_limit)
_pool = None  # their ThreadPoolExecutor, made on first use


@contextmanager
def thread_limit(threads: int | None) -> Iterator[None]:
    """Use ``threads`` CPU threads for the layers' work; ``None`` leaves BLAS as it is.

    BLAS itself then runs single-threaded: the layers cut each mini-batch into ``threads``
    parts (:func:`split_batch`), so copies and elementwise work run in parallel as well as the
    GEMMs, and no idle BLAS thread spins on a core the other part needs. Small GEMMs
    (mini-batch 10) are not split: they run faster on one thread.
    """
    global _threads
    from threadpoolctl import threadpool_limits

    if threads is not None and threads < 1:
        raise ConfigError(f"threads={threads} must be at least 1")
    old = _threads
    _threads = threads or 1
    try:
        with threadpool_limits(limits=None if threads is None else 1):
            yield
    finally:
        _threads = old


@contextmanager
def picture_threads(threads: int | None) -> Iterator[None]:
    """Use ``threads`` CPU threads for work on one large picture at a time (N = 1: style transfer).

    :func:`thread_limit` cuts a mini-batch into parts, which one picture does not have; here the
    GEMMs of each layer (im2col rows x filters: tens of thousands of rows) use ``threads`` BLAS threads.
    """
    from threadpoolctl import threadpool_limits

    if threads is not None and threads < 1:
        raise ConfigError(f"threads={threads} must be at least 1")
    with threadpool_limits(limits=threads):
        yield


def threads() -> int:
    """The CPU threads the layers may use (1 unless inside thread_limit(T >= 2))."""
    return _threads if DEVICE == "cpu" else 1


_part: tuple[int, int, int] | None = None  # (lo, hi, N) while a process computes samples lo..hi-1 of N


@contextmanager
def batch_part(lo: int, hi: int, N: int) -> Iterator[None]:
    """This process computes the samples lo..hi-1 of a mini-batch of N (tiefnet.parallel): the
    layers see only these rows, do not split them further, and per-sample random draws take the
    rows lo..hi-1 of the whole batch's draw (see :func:`part_of_batch`)."""
    global _part, _threads
    old = _part, _threads
    _part, _threads = (int(lo), int(hi), int(N)), 1
    try:
        yield
    finally:
        _part, _threads = old


def part_of_batch(n: int) -> tuple[int, int, int]:
    """(lo, hi, N) for a forward over n rows: the rows this process computes of a mini-batch's
    (inside :func:`batch_part`), or (0, n, n) for a whole batch. A layer that sees k rows per
    sample (after TimeFlatten: N T rows, sample by sample) gets (k lo, k hi, k N)."""
    if _part is not None:
        lo, hi, N = _part
        if hi > lo and n % (hi - lo) == 0:
            k = n // (hi - lo)
            return k * lo, k * hi, k * N
    return 0, n, n


def split_batch(work, n: int, min_part: int = 8) -> None:
    """Call ``work(lo, hi)`` on contiguous parts of the samples range(n), at once on the CPU threads.

    With thread_limit(T >= 2) on the CPU, a mini-batch is cut into T parts handled by T threads,
    each with single-threaded BLAS (NumPy releases the GIL in its copies, ufuncs and GEMMs): the
    per-sample work of a conv or pooling layer then runs in parallel, not only its GEMMs.
    ``work`` must write disjoint sample ranges. On one thread, or on a GPU, it is work(0, n).
    """
    parts = min(_threads, n // min_part) if DEVICE == "cpu" else 1
    if parts < 2:
        work(0, n)
        return
    global _pool
    if _pool is None:
        from concurrent.futures import ThreadPoolExecutor

        _pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2))
    bounds = [n * i // parts for i in range(parts + 1)]
    # the first part runs here, the others on pool threads (BLAS is single-threaded in thread_limit)
    futures = [_pool.submit(work, lo, hi) for lo, hi in zip(bounds[1:-1], bounds[2:])]
    work(bounds[0], bounds[1])
    for future in futures:
        future.result()

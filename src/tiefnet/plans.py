"""Run-time choice between implementations of the same formula, in the spirit of FFTW's plans.

Some steps can be computed in more than one way with the same result up to rounding: im2col as
one row per receptive field or as one block per filter offset, (BP2-conv) as one GEMM per filter
offset or one GEMM and col2im. Which is faster depends on the shapes and on the CPU (its caches,
the BLAS kernel). A layer names its variants, the lecture's formula written once each, and asks
:func:`choose`; this module is the one place that decides:

- ``measure`` (the default): the first time a site meets a shape, every variant runs a few times
  and the fastest is kept for that shape, for the rest of the process (``chosen()`` lists them).
  Results may then differ in the last bits from one run to the next, as the choice may.
- ``off``: always the first (default) variant. Runs with a fixed seed are bit-identical.
- ``force:K``: always variant K (modulo the number of variants at each site), for the tests,
  which pass with every variant forced (``.ci/run``).

Set it with the environment variable ``TIEFNET_TUNE`` or :func:`tuning` (a context manager).
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping

from tiefnet.errors import ConfigError

REPEATS = 3  # timed calls per variant when a site meets a new shape; the best counts


def _parse(mode: str) -> str:
    mode = (mode or "measure").strip().lower()
    if mode in ("measure", "off") or (mode.startswith("force:") and mode[6:].isdigit()):
        return mode
    raise ConfigError(f"TIEFNET_TUNE={mode!r} is not one of 'measure', 'off', 'force:K' (K = 0, 1, ...)")


_mode = _parse(os.environ.get("TIEFNET_TUNE", "measure"))
_chosen: dict[tuple[str, tuple], str] = {}  # (site, shape key) -> the variant measured fastest


def mode() -> str:
    """The current mode: 'measure', 'off' or 'force:K'."""
    return _mode


@contextmanager
def tuning(new: str) -> Iterator[None]:
    """Use another mode inside the block (the measured choices are kept)."""
    global _mode
    old, _mode = _mode, _parse(new)
    try:
        yield
    finally:
        _mode = old


def chosen() -> dict[str, str]:
    """The choices measured so far, as {"site shape": variant}."""
    return {f"{site} {key}": name for (site, key), name in sorted(_chosen.items(), key=str)}


def forget() -> None:
    """Drop every measured choice (the next call of each site measures again)."""
    _chosen.clear()


def choose(site: str, key: tuple, variants: Mapping[str, Callable[[], Any]]) -> Any:
    """Run one of ``variants`` (name -> a call without arguments; the first is the default) and
    return its result. The calls must compute the same thing and may be repeated (they write
    only their outputs): in 'measure' mode each runs ``REPEATS`` times the first time ``site``
    meets ``key`` (a tuple of shapes), and then the fastest once more, whose result is returned."""
    names = list(variants)
    if _mode == "off" or len(names) == 1:
        return variants[names[0]]()
    if _mode.startswith("force:"):
        return variants[names[int(_mode[6:]) % len(names)]]()
    name = _chosen.get((site, key))
    if name is None:
        best = {}
        for candidate in names:
            times = []
            for _ in range(REPEATS):
                start = time.perf_counter()
                variants[candidate]()
                times.append(time.perf_counter() - start)
            best[candidate] = min(times)
        name = _chosen[(site, key)] = min(names, key=lambda n: best[n])
    return variants[name]()

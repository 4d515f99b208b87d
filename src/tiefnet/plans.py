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

A run folder (tiefnet.runs.RunFolder) keeps the choices of its run in ``plans.json``, and a resumed
run adopts them (:func:`adopt`), so that it computes as the uninterrupted run did.
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping

from tiefnet.errors import ConfigError

REPEATS = 5  # timed calls per variant when a site meets a new shape; the best counts
MARGIN = 0.9  # another variant replaces the default only when it takes at most 0.9 of its time
MAX_ADOPTED = 10_000  # entries a plans.json may hold


def _parse(mode: str) -> str:
    mode = (mode or "measure").strip().lower()
    if mode in ("measure", "off") or (mode.startswith("force:") and mode[6:].isdigit()):
        return mode
    raise ConfigError(f"TIEFNET_TUNE={mode!r} is not one of 'measure', 'off', 'force:K' (K = 0, 1, ...)")


_mode = _parse(os.environ.get("TIEFNET_TUNE", "measure"))
_ON_GPU = os.environ.get("TIEFNET_DEVICE", "cpu").strip().lower() == "gpu"
_chosen: dict[tuple[str, tuple], str] = {}  # (site, shape key) -> the variant measured fastest
_listeners: list[Callable[[], None]] = []  # called after each new choice (a run folder saving plans.json)
_lock = threading.Lock()  # guards _chosen (layers call choose from backend.split_batch's threads)


def mode() -> str:
    """The current mode: 'measure', 'off' or 'force:K' ('measure' acts as 'off' on a GPU, whose
    calls return before their work is done: timing them would measure nothing)."""
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


def export() -> list[dict[str, Any]]:
    """The measured choices as JSON, in the order they were made: [{"site": ..., "key": [...], "variant": ...}, ...]."""
    with _lock:
        items = list(_chosen.items())
    return [{"site": site, "key": _listed(key), "variant": name} for (site, key), name in items]


def adopt(entries: Any, notify: bool = False) -> int:
    """Take over choices that :func:`export` wrote (a resumed run: its plans.json; a child process's
    choices); ``notify``: tell the listeners (plans.json is written again). Entries that are not of
    that form are skipped; a variant a site does not have is measured when it is met. Returns the
    number adopted."""
    if not isinstance(entries, list):
        return 0
    adopted = 0
    for entry in entries[:MAX_ADOPTED]:
        if not (isinstance(entry, dict) and isinstance(entry.get("site"), str)
                and isinstance(entry.get("variant"), str)):
            continue
        key = _tupled(entry.get("key"), depth=0)
        if key is None or not isinstance(key, tuple):
            continue
        with _lock:
            _chosen[(entry["site"], key)] = entry["variant"]
        adopted += 1
    if adopted and notify:
        _notify()
    return adopted


def _notify() -> None:
    for callback in list(_listeners):
        callback()


@contextmanager
def listening(callback: Callable[[], None]) -> Iterator[None]:
    """Call ``callback()`` after each new choice inside the block."""
    _listeners.append(callback)
    try:
        yield
    finally:
        _listeners.remove(callback)


def _listed(key: Any) -> Any:
    return [_listed(k) for k in key] if isinstance(key, tuple) else key


def _tupled(value: Any, depth: int) -> Any:
    """A JSON key back as the tuple it was (ints and strings inside nested lists); None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, str)):
        return value
    if isinstance(value, list) and depth < 4 and len(value) <= 16:
        parts = [_tupled(v, depth + 1) for v in value]
        return None if any(p is None for p in parts) else tuple(parts)
    return None


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
    if _ON_GPU:
        return variants[names[0]]()
    name = _chosen.get((site, key))
    if name not in variants:  # not met yet (or an adopted name this site does not have)
        name = _measure(site, key, variants, names)
        _notify()
    return variants[name]()


def _measure(site: str, key: tuple, variants: Mapping[str, Callable[[], Any]], names: list[str]) -> str:
    """Time every variant REPEATS times, in turns; keep the fastest for (site, key) unless it saves less than
    1 - MARGIN of the default's time. (No lock is held while the variants run: they may call
    choose themselves, from this thread or from split_batch's; a choice another thread made
    meanwhile is kept.)"""
    best = dict.fromkeys(names, float("inf"))
    for _ in range(REPEATS):  # in turns, so that a slow moment (or the first touch of memory) hits all alike
        for candidate in names:
            start = time.perf_counter()
            variants[candidate]()
            best[candidate] = min(best[candidate], time.perf_counter() - start)
    fastest = min(names, key=lambda n: best[n])
    with _lock:
        return _chosen.setdefault((site, key), fastest if best[fastest] <= MARGIN * best[names[0]] else names[0])

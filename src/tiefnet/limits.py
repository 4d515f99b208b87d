"""How much memory tiefnet lets one input make it allocate: a model file, a run folder, a setting.

A model folder or a run folder may come from someone else (DESIGN.md): the sizes it declares (an
``.npz`` header that claims 10^12 floats, an architecture of a 10^6 x 10^6 layer, a replay memory
of 10^12 transitions) are checked against :func:`memory_limit` before anything is allocated, and
refused with the size in one line. The limit is half of this machine's physical memory, or
``TIEFNET_MEMORY_LIMIT`` (bytes, or with a unit: ``512M``, ``8G``).
"""
from __future__ import annotations

import os

from tiefnet.errors import ConfigError

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def physical_memory() -> int | None:
    """Bytes of RAM of this machine (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_limit() -> int:
    """The most bytes one input may make tiefnet allocate: TIEFNET_MEMORY_LIMIT, else half the RAM
    (8 GiB where the RAM is unknown)."""
    text = os.environ.get("TIEFNET_MEMORY_LIMIT", "").strip().upper().removesuffix("B").removesuffix("I")
    if text:
        unit = text[-1] if text[-1] in _UNITS else ""
        try:
            value = float(text[: len(text) - len(unit)]) * _UNITS[unit]
        except ValueError:
            value = -1
        if not value > 0 or value == float("inf"):
            raise ConfigError(f"TIEFNET_MEMORY_LIMIT={os.environ['TIEFNET_MEMORY_LIMIT']!r} is not a size "
                              f"such as 8G or 512M")
        return int(value)
    ram = physical_memory()
    return ram // 2 if ram else 8 * 2**30


def size(nbytes: int | float) -> str:
    """1.5 GB, 12 MB, 300 bytes: a size for a message."""
    for unit, factor in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= factor:
            return f"{nbytes / factor:.3g} {unit}"
    return f"{int(nbytes)} bytes"


def check_allocation(nbytes: int | float | dict[str, float], what: str) -> None:
    """Refuse ``what`` (e.g. "--memory 10^12") if it needs more than the limit. ``nbytes`` is a byte
    count or {part: bytes}; the message then says "about" and names the largest parts."""
    parts = nbytes if isinstance(nbytes, dict) else None
    total, limit = (sum(parts.values()) if parts else nbytes), memory_limit()
    if total <= limit:
        return
    needs = f"needs {size(total)}"
    if parts:
        largest = sorted(parts.items(), key=lambda part: -part[1])[:3]
        needs = f"needs about {size(total)} of memory ({', '.join(f'{n} {size(b)}' for n, b in largest if b > 0)})"
    raise ConfigError(f"{what} {needs}, more than tiefnet's memory limit of {size(limit)} "
                      f"(half this machine's memory; TIEFNET_MEMORY_LIMIT sets it)")

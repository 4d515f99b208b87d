"""What a run may allocate: the machine's memory, checked before the arrays are made (a replay memory
of 10^12 transitions, a Q-network with 10^9 hidden units, a grid world of 10^8 fields), so that a
setting too large for the machine is one clear error, not a MemoryError or the OOM killer midway.
"""
from __future__ import annotations

import os
from pathlib import Path

from tiefnet.errors import ConfigError

GB = 1e9
CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def memory_limit() -> int:
    """Bytes of memory this process may use: the physical RAM, or a smaller cgroup limit (a container)."""
    try:
        limit = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): no limit known
        limit = 2**63
    for path in CGROUP_LIMITS:
        try:
            text = Path(path).read_text().strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text.isdigit():
            limit = min(limit, int(text))
    return limit


def gigabytes(n: float) -> str:
    return f"{n / GB:.3g} GB"


def check_fits(parts: dict[str, float], what: str) -> None:
    """Refuse ``what`` if the bytes of its ``parts`` (name -> bytes) together exceed :func:`memory_limit`;
    the message names the total, the largest parts and the limit."""
    total, limit = sum(parts.values()), memory_limit()
    if total <= limit:
        return
    largest = sorted(parts.items(), key=lambda part: -part[1])[:3]
    detail = ", ".join(f"{name} {gigabytes(n)}" for name, n in largest if n > 0)
    raise ConfigError(f"{what} needs about {gigabytes(total)} of memory ({detail}), more than this machine's "
                      f"{gigabytes(limit)}")

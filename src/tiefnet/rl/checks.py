"""Checks of RL settings that may come from someone else (a run folder's config.json): the type of each
Config field, and whether the arrays a setting makes fit :func:`tiefnet.limits.memory_limit` (a replay
memory of 10^12 transitions, a Q-network with 10^9 hidden units, a grid world of 10^8 fields), checked
before anything is allocated: one clear line, not a MemoryError or the OOM killer midway.
"""
from __future__ import annotations

from dataclasses import fields

from tiefnet.errors import ConfigError
from tiefnet.limits import memory_limit, size

TYPE_NAMES = {int: "a whole number", float: "a number", str: "text", bool: "true or false"}


def check_fits(parts: dict[str, float], what: str) -> None:
    """Refuse ``what`` if the bytes of its ``parts`` (name -> bytes) together exceed the memory limit;
    the message names the total, the largest parts and the limit."""
    total, limit = sum(parts.values()), memory_limit()
    if total <= limit:
        return
    largest = sorted(parts.items(), key=lambda part: -part[1])[:3]
    detail = ", ".join(f"{name} {size(n)}" for name, n in largest if n > 0)
    raise ConfigError(f"{what} needs about {size(total)} of memory ({detail}), more than tiefnet's memory limit "
                      f"of {size(limit)} (half this machine's memory; TIEFNET_MEMORY_LIMIT sets it)")


def check_types(config, optional: dict[str, type] | None = None) -> None:
    """Each field of a Config has the type of its default (a config.json may hold anything): an int
    field a whole number, a float field a number, a str field text; ``optional`` fields (name -> type)
    may also be None."""
    optional = optional or {}
    for f in fields(config):
        value, kind = getattr(config, f.name), optional.get(f.name, type(f.default))
        if f.name in optional and value is None:
            continue
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            continue  # 1 for 1.0
        if type(value) is not kind:
            raise ConfigError(f"{f.name}={value!r} must be {TYPE_NAMES.get(kind, kind.__name__)}")

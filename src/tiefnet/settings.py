"""Settings of the applications' runs (``tiefnet mnist``, ``charrnn``, ``qlearn``, ``dqn``).

Each application keeps its settings in a frozen ``Config`` dataclass whose fields carry a help
text; the CLI builds its options from them, and the run folder keeps them as ``config.json`` so
that ``--resume`` continues with the same settings.
"""
from __future__ import annotations

import math
from dataclasses import asdict, field, fields
from pathlib import Path
from typing import Any

from tiefnet.errors import ConfigError
from tiefnet.files import read_json


def setting(default: Any, help: str) -> Any:
    """A Config field with its help text (shown by the command's ``--help``)."""
    return field(default=default, metadata={"help": help})


def layer_sizes(text: str, name: str, example: str) -> list[int]:
    """'20,40' -> [20, 40]; '' -> []; a clear error naming the setting otherwise (an empty part such
    as '30,,10' too). The one parser of every comma-separated size list (mnist, dqn)."""
    text = text.strip()
    if not text:
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"{name}={text!r} does not parse: give sizes like {example}") from None
    if any(s < 1 for s in sizes):
        raise ConfigError(f"{name}={text!r}: every layer needs at least 1 neuron or feature")
    return sizes


SEED_MAX = 2**63 - 1


def is_whole(value: Any, low: int = 0, high: int = SEED_MAX) -> bool:
    """A whole number in [low, high], not true/false: a counter read from a file."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def is_number(value: Any, low: float = -math.inf) -> bool:
    """A finite number >= low, not true/false: a loss, a time, a step size read from a file."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= low


def check_seed(seed: Any, name: str = "seed") -> None:
    """A seed is a whole number in [0, 2^63): NumPy refuses negative seeds."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"{name}={seed!r} must be a whole number from 0 to 2^63 - 1")


def check_app(out: str | Path, app: str | None) -> None:
    """--resume: refuse a run folder whose model.json says another application wrote it."""
    path = Path(out) / "model.json"
    if app is None or not path.is_file():
        return
    try:
        saved = read_json(path)
    except (OSError, ConfigError):  # unreadable: the checks of the checkpoint follow
        return
    writer = saved.get("app") if isinstance(saved, dict) else None
    if isinstance(writer, str) and writer != app:
        raise ConfigError(f"--resume: {out} holds a run of tiefnet {writer[:40]}, not of tiefnet {app}")


def saved_settings(out: str | Path, config_class: type) -> dict[str, Any]:
    """The settings in ``out/config.json`` that ``config_class`` knows ({} if there is none); first
    :func:`check_app` with the application that ``config_class.APP`` names."""
    check_app(out, getattr(config_class, "APP", None))
    path = Path(out) / "config.json"
    try:
        saved = read_json(path) if path.exists() or path.is_symlink() else {}
    except (OSError, ConfigError) as error:
        raise ConfigError(f"--resume: cannot read {path} ({error})") from None
    if not isinstance(saved, dict):
        raise ConfigError(f"--resume: {path} is not a JSON object")
    known = {f.name: f for f in fields(config_class)}
    settings = {k: v for k, v in saved.items() if k in known}
    for name, value in settings.items():
        _check_type(known[name], value, path)
    return settings


_TYPES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}
TYPE_NAMES = {int: "a whole number", float: "a number", str: "text", bool: "true or false"}


def check_types(config: Any, optional: dict[str, type] | None = None) -> None:
    """Each field of a Config dataclass has the type of its default (a config.json may hold
    anything): an int field a whole number (not true/false), a float field a number (an int
    becomes a float), a str field text; ``optional`` fields (name -> type) may also be None."""
    optional = optional or {}
    for f in fields(config):
        value, kind = getattr(config, f.name), optional.get(f.name, type(f.default))
        if f.name in optional and value is None:
            continue
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            object.__setattr__(config, f.name, float(value))  # 1 for 1.0 (frozen dataclasses too)
        elif type(value) is not kind:
            raise ConfigError(f"{f.name}={value!r} must be {TYPE_NAMES.get(kind, kind.__name__)}")


def _check_type(f: Any, value: Any, path: Path) -> None:
    """A saved setting has its field's type (a crafted config.json: one line, not a TypeError later)."""
    allowed = _TYPES.get(f.type if isinstance(f.type, str) else getattr(f.type, "__name__", ""))
    if allowed is None:
        return
    if isinstance(value, bool) and bool not in allowed or not isinstance(value, allowed):
        raise ConfigError(f"--resume: {path}: {f.name}={value!r} is not {'an' if f.type == 'int' else 'a'} {f.type}")


def check_resumable(out: str | Path, config: Any, may_change: set[str]) -> None:
    """A clear error unless ``out`` holds a checkpoint of a run with the same settings as
    ``config``, apart from those in ``may_change`` (a longer run, other threads, ...)."""
    out = Path(out)
    if not (out / "checkpoint.npz").is_file():
        raise ConfigError(f"--resume: {out} holds no checkpoint.npz to continue from")
    try:
        before = read_json(out / "config.json")
    except (OSError, ConfigError) as error:
        raise ConfigError(f"--resume: cannot read {out / 'config.json'} ({error})") from None
    if not isinstance(before, dict):
        raise ConfigError(f"--resume: {out / 'config.json'} is not a JSON object")
    # a setting that an older run folder does not name had its default then
    defaults = {f.name: f.default for f in fields(config)}
    changed = [f"--{k.replace('_', '-')} {before.get(k, defaults[k])!r} -> {v!r}" for k, v in asdict(config).items()
               if k not in may_change and before.get(k, defaults[k]) != v]
    if changed:
        raise ConfigError(f"--resume: the run in {out} was trained with other settings ({'; '.join(changed)}); "
                          f"only {', '.join(sorted(may_change))} may change")

"""The search space of a hyperparameter search (2.7.3): which settings of a trainer's ``Config`` are
searched, over which range, and which are fixed.

On the command line each searched setting is ``NAME=KIND:RANGE``::

    eta=log:0.01..10        a float, log-uniform in [0.01, 10] (eta, lambda: their scale matters)
    dropout=float:0..0.5    a float, uniform
    hidden=int:10..300      a whole number, uniform (int:10..300:10 in steps of 10)
    batch_size=logint:1..100  a whole number, log-uniform
    cost=choice:quadratic,cross-entropy   one of these values
    hidden=choice:100,30|50   choices that hold commas are separated by "|"

and each fixed setting ``NAME=VALUE`` (``--fixed cost=cross-entropy epochs=30``). A TOML file holds
the same as two tables, ``[space]`` (the strings above, or a list for a choice) and ``[fixed]``::

    [space]
    eta = "log:0.01..10"
    cost = ["quadratic", "cross-entropy"]
    [fixed]
    epochs = 30

A name is a field of the trainer's ``Config`` (``batch_size`` or ``batch-size``); a value gets that
field's type (``hidden=int:10..300`` gives the text setting ``hidden="237"``). Every bound and choice
is checked against the ``Config`` before the first trial, so a bad space is one clear error line.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Sequence

from tiefnet.errors import ConfigError, TiefnetError
from tiefnet.files import read_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

KINDS = ("log", "float", "int", "logint", "choice")
MAX_SPACE_BYTES = 1_000_000  # a space file larger than this is refused
MAX_CHOICES = 1000


@dataclass(frozen=True)
class Param:
    """One searched setting: ``kind`` of :data:`KINDS`, its bounds (or choices), its step for ``int``."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    step: int = 1
    choices: tuple = ()

    def suggest(self, trial) -> Any:
        """The value of this setting in an Optuna trial."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind in ("int", "logint"):
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=self.step,
                                     log=self.kind == "logint")
        return trial.suggest_float(self.name, self.low, self.high, log=self.kind == "log")

    def extremes(self) -> list[Any]:
        """The values whose check checks the whole range: the bounds, or every choice."""
        if self.kind == "choice":
            return list(self.choices)
        return [int(self.low), int(self.high)] if self.kind in ("int", "logint") else [self.low, self.high]

    def text(self) -> str:
        if self.kind == "choice":
            return f"{self.name}=choice:{choice_text(self.choices)}"
        step = f":{self.step}" if self.kind == "int" and self.step != 1 else ""
        if self.kind in ("int", "logint"):
            return f"{self.name}={self.kind}:{int(self.low)}..{int(self.high)}{step}"
        return f"{self.name}={self.kind}:{exact(self.low)}..{exact(self.high)}"


@dataclass(frozen=True)
class Space:
    """The searched settings and the fixed ones, of a trainer's ``Config`` class."""

    params: tuple[Param, ...]
    fixed: dict[str, Any]

    def suggest(self, trial, config_class: type) -> dict[str, Any]:
        """The settings of one trial: the fixed ones and a value of each searched one, typed."""
        return {**self.fixed, **{p.name: typed(config_class, p.name, p.suggest(trial)) for p in self.params}}


def exact(value: float) -> str:
    """A float as short as it can be written and still read back as the same number."""
    short = f"{value:.6g}"
    return short if float(short) == value else repr(value)


def field_types(config_class: type) -> dict[str, str]:
    """Each setting of a Config dataclass and its type's name ('int', 'float', 'str', 'bool')."""
    names = {f.name: f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
             for f in fields(config_class)}
    return {name: kind.split("|")[0].strip() for name, kind in names.items()}  # "float | None" -> "float"


def setting_name(config_class: type, name: str, where: str) -> str:
    """``batch-size`` or ``batch_size`` -> ``batch_size``; an unknown name is a clear error."""
    name = name.strip().replace("-", "_")
    known = field_types(config_class)
    if name not in known:
        raise ConfigError(f"{where}: {name!r} is not a setting of this trainer (its settings: {', '.join(known)})")
    return name


def typed(config_class: type, name: str, value: Any) -> Any:
    """``value`` as the type of the setting ``name``: an int for a text setting becomes its digits."""
    kind = field_types(config_class)[name]
    if kind == "str" and not isinstance(value, str):
        return str(value)
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{where}: {text!r} is not a finite number")
    return value


def _scalar(text: str, kind: str, where: str) -> Any:
    """A value written on the command line, read as the setting's type ``kind``."""
    text = text.strip()
    if kind == "bool":
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"{where}: {text!r} is not true or false")
        return text.lower() in ("true", "1", "yes")
    if kind == "int":
        number = _number(text, where)
        if number != int(number):
            raise ConfigError(f"{where}: {text!r} is not a whole number")
        return int(number)
    if kind == "float":
        return _number(text, where)
    return text


def choice_text(choices) -> str:
    """The choices as the text after ``choice:``: separated by commas, or by "|" where one holds a comma
    (mnist's ``hidden=choice:100,30|50``)."""
    texts = [str(c) for c in choices]
    return ("|" if any("," in t for t in texts) else ",").join(texts)


def parse_param(text: str, config_class: type) -> Param:
    """``NAME=KIND:RANGE`` -> a :class:`Param` (see the module docstring)."""
    where = f"--space {text!r}"
    name, sep, spec = text.partition("=")
    kind, colon, rest = spec.partition(":")
    if not sep or not colon or kind.strip() not in KINDS:
        raise ConfigError(f"{where}: write NAME=KIND:RANGE with KIND one of {', '.join(KINDS)} "
                          f"(e.g. eta=log:0.01..10, hidden=int:10..300, cost=choice:quadratic,cross-entropy)")
    name, kind = setting_name(config_class, name, where), kind.strip()
    field_kind = field_types(config_class)[name]
    if kind == "choice":
        choices = tuple(_scalar(c, field_kind, where) for c in rest.split("|" if "|" in rest else ","))
        return _checked(Param(name, kind, choices=choices), where)
    low_text, dots, upper = rest.partition("..")
    high_text, _, step = upper.partition(":")
    if not dots or not low_text.strip() or not high_text.strip():
        raise ConfigError(f"{where}: the range is LOW..HIGH (e.g. 0.01..10)")
    low, high = _number(low_text, where), _number(high_text, where)
    step_value = int(_scalar(step, "int", where)) if step.strip() else 1
    if step.strip() and kind != "int":
        raise ConfigError(f"{where}: only int:LOW..HIGH:STEP takes a step")
    return _checked(Param(name, kind, low, high, step_value), where)


def _checked(param: Param, where: str) -> Param:
    if param.kind == "choice":
        if not param.choices or any(c == "" for c in param.choices):
            raise ConfigError(f"{where}: give the choices separated by commas (by | where they hold commas), "
                              f"none of them empty")
        if any("|" in str(c) for c in param.choices):
            raise ConfigError(f"{where}: a choice cannot hold '|'")
        if len(param.choices) > MAX_CHOICES or len(set(map(repr, param.choices))) != len(param.choices):
            raise ConfigError(f"{where}: the choices must be distinct (at most {MAX_CHOICES})")
        return param
    if not param.low < param.high:
        raise ConfigError(f"{where}: LOW must be smaller than HIGH")
    if param.kind in ("log", "logint") and param.low <= 0:
        raise ConfigError(f"{where}: a log range needs LOW > 0")
    if param.kind in ("int", "logint") and (param.low != int(param.low) or param.high != int(param.high)):
        raise ConfigError(f"{where}: an int range has whole-number bounds")
    if param.kind == "int" and (param.step < 1 or (param.high - param.low) < param.step):
        raise ConfigError(f"{where}: the step must be at least 1 and fit into the range")
    return param


def parse_fixed(text: str, config_class: type) -> tuple[str, Any]:
    """``NAME=VALUE`` -> (the setting, its typed value)."""
    where = f"--fixed {text!r}"
    name, sep, value = text.partition("=")
    if not sep:
        raise ConfigError(f"{where}: write NAME=VALUE (e.g. cost=cross-entropy)")
    name = setting_name(config_class, name, where)
    return name, _scalar(value, field_types(config_class)[name], where)


def read_space_file(path: str | Path, config_class: type) -> tuple[list[Param], dict[str, Any]]:
    """The ``[space]`` and ``[fixed]`` tables of a TOML file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--space-file {path}: no such file")
    if path.stat().st_size > MAX_SPACE_BYTES:
        raise ConfigError(f"--space-file {path}: larger than {MAX_SPACE_BYTES:,} bytes")
    try:
        data = tomllib.loads(read_text(path))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"--space-file {path}: not valid TOML ({error})") from None
    unknown = sorted(set(data) - {"space", "fixed"})
    if unknown or not all(isinstance(data.get(t, {}), dict) for t in ("space", "fixed")):
        raise ConfigError(f"--space-file {path}: only the tables [space] and [fixed] are read"
                          + (f" (found {', '.join(unknown)})" if unknown else ""))
    params = []
    for name, spec in data.get("space", {}).items():
        if isinstance(spec, list):
            if any("|" in str(v) for v in spec):
                raise ConfigError(f"--space-file {path}: [space] {name}: a choice cannot hold '|'")
            spec = "choice:" + choice_text([str(v).lower() if isinstance(v, bool) else str(v) for v in spec])
        if not isinstance(spec, str):
            raise ConfigError(f"--space-file {path}: [space] {name} is a string like \"log:0.01..10\" or a list")
        params.append(parse_param(f"{name}={spec}", config_class))
    fixed = {}
    for name, value in data.get("fixed", {}).items():
        if isinstance(value, (dict, list)) or not isinstance(value, (str, int, float, bool)):
            raise ConfigError(f"--space-file {path}: [fixed] {name} is a single value")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        key, fixed_value = parse_fixed(f"{name}={text}", config_class)
        fixed[key] = fixed_value
    return params, fixed


def build_space(config_class: type, space: Sequence[str] = (), fixed: Sequence[str] = (),
                space_file: str | Path | None = None, not_searched: Sequence[str] = ()) -> Space:
    """The space of the command-line strings and the TOML file (the command line wins), checked:
    no setting twice, none of ``not_searched`` (settings the search sets itself), and each bound
    and choice accepted by ``config_class`` with the fixed settings."""
    params, fixed_values = read_space_file(space_file, config_class) if space_file else ([], {})
    params = {p.name: p for p in params}
    for text in space:
        param = parse_param(text, config_class)
        params[param.name] = param
    for text in fixed:
        name, value = parse_fixed(text, config_class)
        fixed_values[name] = value
    if not params:
        raise ConfigError("the search space is empty: give --space NAME=KIND:RANGE (e.g. eta=log:0.01..10) "
                          "or --space-file FILE")
    both = sorted(set(params) & set(fixed_values))
    if both:
        raise ConfigError(f"{', '.join(both)}: both searched (--space) and fixed (--fixed); choose one")
    for name in not_searched:
        if name in params or name in fixed_values:
            raise ConfigError(f"{name} is set by the search itself (see tiefnet hpsearch --help), not by the space")
    result = Space(tuple(params.values()), {k: typed(config_class, k, v) for k, v in fixed_values.items()})
    try:  # the fixed settings alone first: an error then names them, not a range
        config_class(**result.fixed)
    except (TiefnetError, TypeError, ValueError) as error:
        raise ConfigError(f"--fixed {' '.join(f'{k}={v}' for k, v in result.fixed.items())}: {error}") from None
    for param in result.params:  # each end of each range, with the fixed settings and the others' lows
        others = {p.name: typed(config_class, p.name, p.extremes()[0]) for p in result.params}
        for value in param.extremes():
            try:
                config_class(**{**result.fixed, **others, param.name: typed(config_class, param.name, value)})
            except (TiefnetError, TypeError, ValueError) as error:
                raise ConfigError(f"--space {param.text()}: {param.name}={value!r} is refused ({error})") from None
    return result

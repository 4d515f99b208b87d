"""The trainers a hyperparameter search can tune: every application with a ``Config`` and a run
folder. For each: its ``Config`` class, how one run is trained, the metric a trial is judged by,
the per-epoch (per-evaluation) entry of ``metrics.jsonl`` that the pruner sees, and the command
that trains the best configuration again.

The search follows a run through its ``metrics.jsonl`` (:func:`tiefnet.runs.watching`), so the
applications know nothing of it.
"""
from __future__ import annotations

import importlib
import shlex
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

from tiefnet.errors import ConfigError
from tiefnet.hpsearch.space import exact


@dataclass(frozen=True)
class Trainer:
    """One application as a search sees it."""

    name: str
    command: str  # how the CLI trains it: "tiefnet mnist"
    module: str  # where Config and run live
    config_name: str  # the Config class in ``module``
    metric: str  # the metrics.jsonl key the pruner sees (None: nothing per epoch)
    step: str  # the key counting epochs / steps in that entry
    direction: str  # "maximize" or "minimize"
    objective: Callable[[dict[str, Any], list[float]], float | None]  # (summary, metric values) -> value
    label: str  # the metric for people: "validation accuracy"
    percent: bool = False  # shown as a percentage
    skip: tuple[str, ...] = ()  # settings that are no options of the command
    positional: str = ""  # the setting given as the command's argument (charrnn's TEXT, dqn's ENV)
    run_module: str = ""  # where run lives, if not in ``module``

    def config_class(self) -> type:
        return getattr(importlib.import_module(self.module), self.config_name)

    def run(self, config: Any, out: Path) -> dict[str, Any]:
        """Train one run into ``out`` (no progress bar, no output): the summary."""
        module = importlib.import_module(self.run_module or self.module)
        if self.name == "qlearn":
            return module.run(config, out)
        # mnist's "the network learns nothing" warning is for a person at the terminal; in a search such a
        # trial shows in its low accuracy (and, with a pruner, stops at the first check)
        quiet = {"warn": lambda line: None} if self.name == "mnist" else {}
        return module.run(config, out, progress=False, log=lambda line: None, **quiet)

    def shown(self, value: float | None) -> str:
        if value is None:
            return "-"
        return f"{100 * value:.2f}%" if self.percent else f"{value:.4g}"

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "maximize" else a < b

    def command_line(self, settings: dict[str, Any], out: str | None = None) -> str:
        """The command that trains these settings (the searched and the fixed ones: the others keep
        their defaults)."""
        config_class, words = self.config_class(), shlex.split(self.command)
        if self.positional and settings.get(self.positional, ""):
            words.append(str(settings[self.positional]))
        for f in fields(config_class):
            if f.name not in settings or f.name in self.skip or f.name == self.positional:
                continue
            value = settings[f.name]
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, bool):
                if value != f.default:  # a switch at its default needs no flag (mnist has --no-verify only)
                    words.append(flag if value else "--no-" + flag[2:])
            else:
                words += [flag, exact(value) if isinstance(value, float) else str(value)]
        if out is not None:
            words += ["--out", out]
        return " ".join(shlex.quote(w) for w in words)


def _best(summary: dict[str, Any], values: list[float], key: str, pick=max) -> float | None:
    value = summary.get(key)
    return value if isinstance(value, (int, float)) else (pick(values) if values else None)


TRAINERS = {t.name: t for t in (
    Trainer("mnist", "tiefnet mnist", "tiefnet.vision.mnist", "Config", "validation_accuracy", "epoch", "maximize",
            lambda summary, values: _best(summary, values, "best_validation_accuracy"), "validation accuracy",
            percent=True),
    Trainer("charrnn", "tiefnet charrnn train", "tiefnet.text.charrnn", "Config", "validation_loss", "step",
            "minimize", lambda summary, values: _best(summary, values, "best_validation_loss", min),
            "validation loss (nats/char)", positional="text"),
    Trainer("caption", "tiefnet caption train", "tiefnet.text.caption_run", "Config", "bleu4", "epoch", "maximize",
            lambda summary, values: max(values) if values else None, "validation BLEU-4"),
    Trainer("dqn", "tiefnet dqn train", "tiefnet.rl.dqn", "DQNConfig", "check_mean_return", "step", "maximize",
            lambda summary, values: summary.get("eval_mean_return"), "greedy mean return", positional="env",
            run_module="tiefnet.rl.dqn_run"),
    Trainer("qlearn", "tiefnet qlearn", "tiefnet.rl.qlearning_run", "Config", "", "step", "maximize",
            lambda summary, values: summary.get("eval_mean_return"), "greedy mean return", positional="env"),
)}


def trainer(name: str) -> Trainer:
    if name not in TRAINERS:
        raise ConfigError(f"--trainer {name!r} is not one of {', '.join(TRAINERS)}")
    return TRAINERS[name]

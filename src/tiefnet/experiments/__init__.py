"""The lecture's experiments, one module each; ``tiefnet experiment NAME`` runs them.

Each module has ``DESCRIPTION`` and ``run(out, epochs=None, seed=0, quick=False, progress=True) -> dict``
that writes ``out/<module>.png`` and ``out/<module>.json`` (``slow-learning`` writes ``slow_learning.png``);
:func:`run` runs one of them by its name.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from tiefnet.runs import RunFolder

_NAMES = ["perceptron", "slow_learning", "overfitting", "full_data", "l1_vs_l2", "init", "dropout", "expansion",
          "conv_features", "hallo", "vanishing_gradients"]


def _load() -> dict:
    found = {}
    for module_name in _NAMES:
        try:
            module = importlib.import_module(f"tiefnet.experiments.{module_name}")
        except ModuleNotFoundError as error:
            if error.name != f"tiefnet.experiments.{module_name}":
                raise
            continue
        found[module_name.replace("_", "-")] = module
    return found


EXPERIMENTS = _load()


def run(name: str, out: str | Path, **options: Any) -> dict[str, Any]:
    """Run the experiment ``name`` (a key of EXPERIMENTS) into the folder ``out``; Ctrl-C ends it with
    :class:`tiefnet.runs.RunInterrupted`, whose message names the folder."""
    with RunFolder(out, app=name):
        return EXPERIMENTS[name].run(out, **options)

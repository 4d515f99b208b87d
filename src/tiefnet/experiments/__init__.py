"""The lecture's experiments, one module each; ``tiefnet experiment NAME`` runs them.

Each module has ``DESCRIPTION`` and ``run(out, epochs=None, seed=0, quick=False, progress=True) -> dict``
that writes ``out/<module>.png`` and ``out/<module>.json`` (``slow-learning`` writes ``slow_learning.png``).
"""
from __future__ import annotations

import importlib

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

"""Plumbing shared by the MNIST experiments of lecture 2.7: data, one training run, results.

Every experiment builds its network from :class:`tiefnet.vision.mnist.Config` (the same
784-hidden-10 networks as ``tiefnet mnist``) and trains it with :func:`tiefnet.fit`.
Each run of a comparison draws from a fresh ``numpy.random.default_rng(seed)``, so the
runs being compared start from the same weights and see the same mini-batches.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy

from tiefnet.data.mnist import Dataset, MnistSplits, load_mnist
from tiefnet.nn import LOSSES, Sequential
from tiefnet.files import write_text
from tiefnet.runs import RunFolder
from tiefnet.train import History, fit
from tiefnet.vision.mnist import Config, build_network, build_optimizer

QUICK_TRAIN, QUICK_TEST, QUICK_EPOCHS = 100, 500, 2  # the --quick budget: seconds, not results


@lru_cache(maxsize=1)
def mnist() -> MnistSplits:
    """The 50,000 / 10,000 / 10,000 split, loaded once per process."""
    return load_mnist()


def data(train_size: int, quick: bool) -> tuple[Dataset, Dataset, Dataset]:
    """(the first ``train_size`` training images, validation, test); tiny sets when ``quick``."""
    splits = mnist()
    if quick:
        return (splits.train.subset(min(train_size, QUICK_TRAIN)), splits.validation.subset(QUICK_TEST),
                splits.test.subset(QUICK_TEST))
    return splits.train.subset(train_size), splits.validation, splits.test


def train(config: Config, train_set: Dataset, epochs: int, seed: int, test: Dataset | None = None,
          validation: Dataset | None = None, monitor_train: bool = True,
          progress: bool = False) -> tuple[Sequential, History]:
    """Build the network of ``config`` and train it by mini-batch SGD; returns (net, history)."""
    rng = numpy.random.default_rng(seed)
    net = build_network(config, rng)
    history = fit(net, LOSSES[config.cost](), build_optimizer(config), (train_set.x, train_set.y), epochs,
                  config.batch_size, validation=_pair(validation), test=_pair(test), rng=rng,
                  monitor_train=monitor_train, progress=progress)
    return net, history


def _pair(dataset: Dataset | None):
    return None if dataset is None else (dataset.x, dataset.y)


def series(history: History, key: str) -> list[float]:
    """One metric over the epochs, e.g. ``series(h, "test_accuracy")``."""
    return [float(e[key]) for e in history.epochs]


def accuracy_curve(history: History) -> dict[str, Any]:
    """The test accuracy per epoch, its final and its best value (the JSON fields every comparison has)."""
    accuracy = series(history, "test_accuracy")
    return {"test_accuracy": accuracy, "final_test_accuracy": accuracy[-1], "best_test_accuracy": max(accuracy)}


def settings(config: Config, **extra: Any) -> dict[str, Any]:
    """The network and training settings of a run, for the JSON file."""
    keep = ("hidden", "activation", "cost", "eta", "lmbda", "reg", "dropout", "init", "batch_size")
    return {**{k: v for k, v in asdict(config).items() if k in keep}, **extra}


def output_dir(out: str | Path) -> Path:
    """The experiment's output folder, checked (not a file) and created (see :class:`tiefnet.runs.RunFolder`)."""
    return RunFolder(out).start().path


def write_json(out: Path, name: str, result: dict[str, Any]) -> Path:
    text = json.dumps(result, indent=1)
    text = re.sub(r"\[([^\[\]{}]*)\]", lambda m: "[" + re.sub(r"\n\s*", " ", m.group(1)).strip() + "]", text)
    return write_text(out / f"{name}.json", text + "\n")  # lists of numbers on one line each


def percent(fraction: float) -> str:
    return f"{100 * fraction:.2f}%"

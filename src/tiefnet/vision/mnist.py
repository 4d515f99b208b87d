"""The MNIST feed-forward classifier of lecture 2.4-2.7: build, train, write a run folder.

The defaults are the lecture's first network (2.4/2.5): 784-30-10, sigmoid neurons,
quadratic cost, eta = 3.0, mini-batches of 10, 30 epochs.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy

from tiefnet import backend
from tiefnet.checkpoint import save_model
from tiefnet.data.augment import expand
from tiefnet.data.mnist import Dataset, load_mnist
from tiefnet.errors import ConfigError
from tiefnet.nn import ACTIVATIONS, LOSSES, REGULARIZERS, Dense, Dropout, Sequential, Sigmoid, Softmax
from tiefnet.nn.init import INITS
from tiefnet.optim import OPTIMIZERS, Adam, Momentum, Optimizer, ReduceOnPlateau
from tiefnet.train import History, checkpoint_history, fit


def setting(default: Any, help: str) -> Any:
    """A Config field with its help text (shown by ``tiefnet mnist --help``)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Config:
    """Settings of one MNIST run; the CLI builds its options from these fields."""

    hidden: str = setting("30", "Hidden layer sizes, comma separated ('100,30'); '' for none.")
    activation: str = setting("sigmoid", "Hidden-layer activation: sigmoid, tanh or relu.")
    cost: str = setting("quadratic", "quadratic (2.5), cross-entropy (2.7.1, sigmoid output) "
                        "or log-likelihood (2.7.2, softmax output).")
    eta: float = setting(3.0, "Learning rate eta.")
    lmbda: float = setting(0.0, "Regularisation parameter lambda (0 = none).")
    reg: str = setting("l2", "Regulariser used when lmbda > 0: l2 or l1 (2.7.3).")
    dropout: float = setting(0.0, "Dropout probability for hidden neurons (0 = off; the lecture uses 0.5).")
    init: str = setting("large", "Weight init: large N(0,1) as in the lecture's first network, "
                        "or scaled N(0,1/n_in) (2.7.3).")
    optimizer: str = setting("sgd", "sgd, momentum (mu 0.9) or adam.")
    epochs: int = setting(30, "Training epochs.")
    batch_size: int = setting(10, "Mini-batch size m (1 = online learning).")
    expand: int = setting(0, "Add this many rotated/shifted/skewed copies of each training image (2.7.3).")
    train_size: int = setting(50000, "Use the first N of the 50,000 training images.")
    patience: int = setting(0, "Halve eta after this many epochs without a better validation accuracy "
                            "(0 = never).")
    early_stop: int = setting(0, "Stop after this many epochs without a better validation accuracy (0 = never).")
    seed: int = setting(0, "Seed of every random choice (weights, shuffling, dropout, expansion).")
    threads: int = setting(1, "BLAS threads; small GEMMs run faster on one thread on a 2-core machine.")
    data: str = setting("", "A folder with your own MNIST IDX files (empty: the copy shipped with tiefnet).")
    verify: bool = setting(True, "Check the data files' SHA-256 against the original MNIST.")

    def __post_init__(self) -> None:
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("cost", self.cost, LOSSES)
        _choice("reg", self.reg, REGULARIZERS)
        _choice("init", self.init, INITS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        self.hidden_sizes()  # raises if it does not parse
        for name, low in (("epochs", 0), ("batch_size", 1), ("expand", 0), ("train_size", 1),
                          ("patience", 0), ("early_stop", 0), ("threads", 1)):
            if getattr(self, name) < low:
                raise ConfigError(f"{name}={getattr(self, name)} must be at least {low}")
        if not (math.isfinite(self.eta) and self.eta > 0):
            raise ConfigError(f"eta={self.eta} must be a positive number")
        if not (math.isfinite(self.lmbda) and self.lmbda >= 0):
            raise ConfigError(f"lmbda={self.lmbda} must be >= 0")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout={self.dropout} must be in [0, 1)")

    def hidden_sizes(self) -> list[int]:
        text = self.hidden.strip()
        if not text:
            return []
        try:
            sizes = [int(part) for part in text.split(",")]
        except ValueError:
            raise ConfigError(f"hidden={self.hidden!r} does not parse: give layer sizes like 30 or 100,30") from None
        if any(s < 1 for s in sizes):
            raise ConfigError(f"hidden={self.hidden!r}: every layer needs at least 1 neuron")
        return sizes


def _choice(name: str, value: str, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(allowed)}")


def build_network(config: Config, rng: numpy.random.Generator) -> Sequential:
    """784 -> hidden... -> 10, with the output layer the cost expects (sigmoid, or softmax)."""
    sizes = [784, *config.hidden_sizes(), 10]
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Dense(n_in, n_out, init=config.init, rng=rng))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[config.activation]())
            if config.dropout:
                layers.append(Dropout(config.dropout, rng=numpy.random.default_rng(rng.integers(2**63))))
    layers.append(Softmax() if config.cost == "log-likelihood" else Sigmoid())
    return Sequential(*layers)


def build_optimizer(config: Config) -> Optimizer:
    regularizer = REGULARIZERS[config.reg](config.lmbda) if config.lmbda else None
    if config.optimizer == "momentum":
        return Momentum(config.eta, regularizer=regularizer)
    if config.optimizer == "adam":
        return Adam(config.eta, regularizer=regularizer)
    return OPTIMIZERS["sgd"](config.eta, regularizer=regularizer)


def prepare_data(config: Config) -> tuple[Dataset, Dataset, Dataset]:
    splits = load_mnist(config.data or None, verify=config.verify)
    train = splits.train.subset(min(config.train_size, len(splits.train)))
    if config.expand:  # its own random stream: with or without --expand, the same initial weights
        x, y = expand(train.x, train.y, config.expand, numpy.random.default_rng([config.seed, 1]))
        train = Dataset(x, y)
    return train, splits.validation, splits.test


def run(config: Config, out: str | Path, progress: bool = True, resume: bool = False,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train as ``config`` says and write the run folder ``out``:
    config.json, metrics.jsonl (one line per epoch), model.npz + model.json (after every epoch),
    checkpoint.npz (resumable), summary.json and curves.png. Returns the summary."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder")
    if resume:
        _check_resumable(out, config)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    rng = numpy.random.default_rng(config.seed)
    started = time.perf_counter()
    with backend.thread_limit(config.threads):
        train, validation, test = prepare_data(config)
        net = build_network(config, rng)
        optimizer = build_optimizer(config)
        log(f"tiefnet mnist: {net.describe()}\n  {len(train)} training images, cost {config.cost}, "
            f"eta {config.eta}, mini-batch {config.batch_size}, {config.epochs} epochs -> {out}")
        metrics_file = out / "metrics.jsonl"
        # a resumed run starts from the epochs its checkpoint holds, whatever the file had after them
        done = checkpoint_history(out / "checkpoint.npz") if resume else []
        metrics_file.write_text("".join(json.dumps(e) + "\n" for e in done))

        def record(metrics: dict[str, float]) -> None:
            with metrics_file.open("a") as f:
                f.write(json.dumps(metrics) + "\n")
            save_model(out, net, {"epoch": metrics["epoch"], "cost": config.cost})

        history = fit(net, LOSSES[config.cost](), optimizer, train, config.epochs, config.batch_size,
                      validation=validation, test=test, rng=rng,
                      schedule=ReduceOnPlateau(config.patience) if config.patience else None,
                      early_stopping=config.early_stop or None, callbacks=[record],
                      checkpoint=out / "checkpoint.npz", resume=resume, progress=progress)
    summary = summarize(config, history, time.perf_counter() - started)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if history.epochs:
        from tiefnet.plot import training_curves

        shape = "-".join(str(n) for n in [784, *config.hidden_sizes(), 10])
        title = (f"{shape} {config.activation}, {config.cost}, eta={config.eta:g}, m={config.batch_size}"
                 + (f", {config.reg} lambda={config.lmbda:g}" if config.lmbda else ""))
        training_curves(history.epochs, out / "curves.png", title=title)
    return summary


# Settings that may change when a run is resumed; any other change would mix two experiments.
RESUMABLE_CHANGES = {"epochs", "threads", "patience", "early_stop"}


def _check_resumable(out: Path, config: Config) -> None:
    if not (out / "checkpoint.npz").is_file():
        raise ConfigError(f"--resume: {out} holds no checkpoint.npz to continue from")
    try:
        before = json.loads((out / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"--resume: cannot read {out / 'config.json'} ({error})") from None
    changed = [f"--{k.replace('_', '-')} {before.get(k)!r} -> {v!r}" for k, v in asdict(config).items()
               if k not in RESUMABLE_CHANGES and before.get(k) != v]
    if changed:
        raise ConfigError(f"--resume: the run in {out} was trained with other settings ({'; '.join(changed)}); "
                          f"only {', '.join(sorted(RESUMABLE_CHANGES))} may change")


def summarize(config: Config, history: History, seconds: float) -> dict[str, Any]:
    last = history.epochs[-1] if history.epochs else {}
    best = max(history.epochs, key=lambda e: e["validation_accuracy"]) if history.epochs else {}
    return {
        "test_accuracy": last.get("test_accuracy"),
        "best_test_accuracy": history.best("test_accuracy") if history.epochs else None,
        "test_accuracy_at_best_validation": best.get("test_accuracy"),
        "best_validation_accuracy": best.get("validation_accuracy"),
        "epochs_run": len(history.epochs),
        "stopped_early": history.stopped_early,
        "seconds_per_epoch": (sum(e["seconds"] for e in history.epochs) / len(history.epochs)) if history.epochs else None,
        "total_seconds": seconds,
        "device": backend.DEVICE,
        "options": asdict(config),
    }



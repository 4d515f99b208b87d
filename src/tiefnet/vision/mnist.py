"""The MNIST classifiers of lecture 2.4-2.7 and 3.1-3.3: build, train, write a run folder.

``model="dense"`` (the default) is the lecture's first network (2.4/2.5): 784-30-10, sigmoid
neurons, quadratic cost, eta = 3.0, mini-batches of 10, 30 epochs. ``model="cnn"`` is Nielsen's
chapter-6 convolutional network (see :mod:`tiefnet.vision.cnn`), with its own defaults for the
settings in :data:`MODEL_DEFAULTS` (ReLU, softmax + log-likelihood, eta = 0.03, L2 lambda = 0.1).
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy

from tiefnet import backend
from tiefnet.data.augment import expand
from tiefnet.data.mnist import Dataset, MnistSplits, load_mnist
from tiefnet.errors import ConfigError, TiefnetError
from tiefnet.files import read_json
from tiefnet.limits import memory_limit, size
from tiefnet.nn import ACTIVATIONS, LOSSES, REGULARIZERS, Dense, Dropout, Sequential, Sigmoid, Softmax
from tiefnet.nn.init import INITS
from tiefnet.optim import OPTIMIZERS, Adam, Momentum, Optimizer, ReduceOnPlateau
from tiefnet.runs import RunFolder
from tiefnet.settings import check_app, check_resumable, check_seed, check_types, layer_sizes, setting
from tiefnet.train import History, fit
from tiefnet.train_checkpoint import check_checkpoint
from tiefnet.vision.cnn import IMAGE, POOLS, build_cnn, flat_size, map_sides, topology


# Settings whose default depends on the model: "dense" is the lecture's first network (2.4/2.5),
# "cnn" Nielsen's chapter-6 network (ReLU, softmax + log-likelihood, eta 0.03, L2 lambda 0.1;
# he init for the ReLU layers). A value given explicitly always wins.
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "dense": {"hidden": "30", "activation": "sigmoid", "cost": "quadratic", "eta": 3.0, "lmbda": 0.0,
              "init": "large"},
    "cnn": {"hidden": "100", "activation": "relu", "cost": "log-likelihood", "eta": 0.03, "lmbda": 0.1,
            "init": "he"},
}


def model_setting(help: str) -> Any:
    """A Config field whose default is MODEL_DEFAULTS[model][name] (None until Config fills it in)."""
    return field(default=None, metadata={"help": help, "by_model": True})


@dataclass(frozen=True)
class Config:
    """Settings of one MNIST run; the CLI builds its options from these fields."""

    APP = "mnist"  # the application whose run folders --resume continues (not a setting)

    model: str = setting("dense", "dense (784-hidden-10, lecture 2.4) or cnn (Nielsen's chapter-6 network, 3.1-3.3: "
                         "conv 5x5x20 -> pool -> conv 5x5x40 -> pool -> FC -> softmax).")
    features: str = setting("20,40", "cnn: feature maps of each conv layer, comma separated; each conv "
                            "(KERNEL x KERNEL filters, stride 1, no padding) is followed by the activation "
                            "and 2x2 pooling.")
    kernel: int = setting(5, "cnn: filter size Q = R of every conv layer.")
    pool: str = setting("max", "cnn: pooling of 2x2 regions: max or l2 (3.1).")
    hidden: str = model_setting("Hidden (fully connected) layer sizes, comma separated ('100,30'); '' for none. "
                                "For cnn: the dense layers after the conv stack.")
    activation: str = model_setting("Hidden-layer activation: sigmoid, tanh or relu (cnn: also after each conv).")
    cost: str = model_setting("quadratic (2.5), cross-entropy (2.7.1, sigmoid output) "
                              "or log-likelihood (2.7.2, softmax output).")
    eta: float = model_setting("Learning rate eta.")
    lmbda: float = model_setting("Regularisation parameter lambda (0 = none).")
    reg: str = setting("l2", "Regulariser used when lmbda > 0: l2 or l1 (2.7.3).")
    dropout: float = setting(0.0, "Dropout probability (0 = off; the lecture uses 0.5): dense: for hidden neurons; "
                             "cnn: on the inputs of every fully connected layer, as in Nielsen's chapter 6.")
    init: str = model_setting("Weight init: large N(0,1) as in the lecture's first network, "
                              "scaled N(0,1/n_in) (2.7.3), or he N(0,2/n_in) for ReLU.")
    optimizer: str = setting("sgd", "sgd, momentum (mu 0.9) or adam.")
    epochs: int = setting(30, "Training epochs.")
    batch_size: int = setting(10, "Mini-batch size m (1 = online learning).")
    expand: int = setting(0, "Add this many rotated/shifted/skewed copies of each training image (2.7.3).")
    train_size: int = setting(50000, "Use the first N of the 50,000 training images (at most as many as --data "
                              "holds).")
    digits: str = setting("", "Train, validate and test on these digits only, comma separated ('0,1': the lecture's "
                          "reduced problem for fast feedback, 2.7.3); the training images are those among the first "
                          "--train-size. Empty: all ten.")
    patience: int = setting(0, "Halve eta after this many epochs without a better validation accuracy "
                            "(0 = never).")
    early_stop: int = setting(0, "Stop after this many epochs without a better validation accuracy (0 = never).")
    seed: int = setting(0, "Seed of every random choice (weights, shuffling, dropout, expansion).")
    threads: int = setting(1, "CPU cores: from 2 on, each epoch is measured on one core while the next one "
                              "trains (the result of one thread); from 3 on, mini-batches are split over the rest.")
    data: str = setting("", "A folder with your own MNIST IDX files (empty: the copy shipped with tiefnet).")
    verify: bool = setting(True, "Check the data files' SHA-256 against the original MNIST.")

    def __post_init__(self) -> None:
        by_model = {name: type(value) for name, value in MODEL_DEFAULTS["dense"].items()}  # None until filled in
        check_types(self, by_model)  # a run folder's config.json may hold anything
        _choice("model", self.model, MODEL_DEFAULTS)
        for name, value in MODEL_DEFAULTS[self.model].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)  # frozen: the model's default, filled in once
        _choice("pool", self.pool, POOLS)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("cost", self.cost, LOSSES)
        _choice("reg", self.reg, REGULARIZERS)
        _choice("init", self.init, INITS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        self.hidden_sizes()  # raises if it does not parse
        self.digit_set()  # raises if it does not parse
        features = self.feature_sizes()  # raises if it does not parse
        if self.model == "cnn":
            if not features:
                raise ConfigError("features='': --model cnn needs at least one conv layer, e.g. 20,40")
            map_sides(features, self.kernel)  # raises if the maps become too small for the filters
        check_seed(self.seed)
        for name, low in (("kernel", 1), ("epochs", 1), ("batch_size", 1), ("expand", 0), ("train_size", 1),
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
        return layer_sizes(self.hidden, "hidden", "30 or 100,30")

    def digit_set(self) -> list[int]:
        """'0,1' -> [0, 1]; '' -> all ten digits."""
        text = self.digits.replace(" ", "")
        parts = text.split(",") if text else [str(d) for d in range(CLASSES)]
        if not all(len(p) == 1 and p in "0123456789" for p in parts) or len(set(parts)) != len(parts):
            raise ConfigError(f"digits={self.digits!r} does not parse: give distinct digits like 0,1")
        return sorted(int(p) for p in parts)

    def feature_sizes(self) -> list[int]:
        return layer_sizes(self.features, "features", "20,40")

    def describe(self) -> str:
        """The network in one line: '784-30-10', or the conv stages and the dense sizes."""
        if self.model == "cnn":
            return topology(self.feature_sizes(), self.kernel, self.pool, self.hidden_sizes())
        return "-".join(str(n) for n in [784, *self.hidden_sizes(), 10])


def _choice(name: str, value: str, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(allowed)}")


def build_network(config: Config, rng: numpy.random.Generator) -> Sequential:
    """784 -> hidden... -> 10 (or the CNN of ``config.model == "cnn"``), with the output layer the
    cost expects (sigmoid, or softmax)."""
    if config.model == "cnn":
        return build_cnn(config.feature_sizes(), config.kernel, config.hidden_sizes(), config.activation,
                         config.pool, config.dropout, config.init,
                         "softmax" if config.cost == "log-likelihood" else "sigmoid", rng)
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
    """(train, validation, test); refuses a --train-size, --batch-size or network that does not fit the data
    or this machine's memory, before the expanded copies or the network are made."""
    splits = load_mnist(config.data or None, verify=config.verify)
    if config.train_size > len(splits.train):
        raise ConfigError(f"train_size={config.train_size}: the training set holds only {len(splits.train)} images "
                          f"(the {len(splits.validation)} after them are the validation set): give --train-size "
                          f"{len(splits.train)} or less")
    images = config.train_size * (config.expand + 1)
    if config.batch_size > images:
        raise ConfigError(f"batch_size={config.batch_size} is larger than the {images} training images: "
                          f"choose at most {images} (that many is one step per epoch)")
    check_memory(config, images)
    train = splits.train.subset(config.train_size)
    if config.digits:  # the reduced problem: only these digits (the network keeps its ten outputs)
        train, validation, test = (_only(data, config.digit_set()) for data in (train, splits.validation, splits.test))
        if not len(train):
            raise ConfigError(f"digits={config.digits!r}: none of the first {config.train_size} training images "
                              f"shows these digits; give a larger --train-size")
        splits = MnistSplits(train, validation, test)
        images = len(train) * (config.expand + 1)
        if config.batch_size > images:
            raise ConfigError(f"batch_size={config.batch_size} is larger than the {images} training images of the "
                              f"digits {config.digits}: choose at most {images}")
    if config.expand:  # its own random stream: with or without --expand, the same initial weights
        x, y = expand(train.x, train.y, config.expand, numpy.random.default_rng([config.seed, 1]))
        train = Dataset(x, y)
    return train, splits.validation, splits.test


def _only(data: Dataset, digits: list[int]) -> Dataset:
    keep = numpy.isin(data.y, digits)
    return Dataset(data.x[keep], data.y[keep])


def _warn(message: str) -> None:
    print(f"tiefnet: warning: {message}", file=sys.stderr)


def run(config: Config, out: str | Path, progress: bool = True, resume: bool = False,
        log: Callable[[str], None] = print, warn: Callable[[str], None] = _warn) -> dict[str, Any]:
    """Train as ``config`` says and write the run folder ``out``:
    config.json, metrics.jsonl (one line per epoch), model.npz + model.json (after every epoch),
    checkpoint.npz (resumable), summary.json and curves.png. Returns the summary.
    ``warn`` gets one line when the network learns nothing (see :func:`stuck`).

    With ``resume``, the folder and its checkpoint are checked before anything is written."""
    folder = RunFolder(out, app="mnist", resume_command="tiefnet mnist --resume", progress=progress)
    if resume:
        check_run_folder(folder.path)
        check_resumable(folder.path, config, RESUMABLE_CHANGES)
    rng = numpy.random.default_rng(config.seed)
    started = time.perf_counter()
    with backend.thread_limit(config.threads):
        train, validation, test = prepare_data(config)
        net = build_network(config, rng)
        optimizer = build_optimizer(config)
        schedule = ReduceOnPlateau(config.patience) if config.patience else None
        checkpoint = folder.path / "checkpoint.npz"
        if resume:  # a resumed run starts from the epochs its checkpoint holds, whatever the file had after them
            history_before = check_checkpoint(checkpoint, net, optimizer.bind(net, len(train)), rng, schedule,
                                              config.epochs)
    with folder.start(config, resume, RESUMABLE_CHANGES), backend.thread_limit(config.threads):
        network = net.describe() if config.model == "dense" else f"{config.describe()}, {config.activation}"
        log(f"tiefnet mnist: {network}\n  {len(train)} training images, cost {config.cost}, "
            f"eta {config.eta}, mini-batch {config.batch_size}, {config.epochs} epochs -> {folder.path}")
        metrics = folder.metrics(entries=history_before if resume else [])
        previous, warned = (history_before[-1] if resume else None), False

        def record(epoch: dict[str, float]) -> None:
            nonlocal previous, warned
            metrics.append(epoch)
            folder.save_model(net, {"epoch": epoch["epoch"], "cost": config.cost})
            if not warned and stuck(epoch, previous):  # once per run
                warned = True
                falling = "" if previous is None else ", and the cost is not falling"
                warn(f"after epoch {epoch['epoch']} the training accuracy is {100 * epoch['train_accuracy']:.1f}%, "
                     f"no better than chance ({100 / CLASSES:.0f}%){falling}: the network learns nothing "
                     f"(eta={config.eta:g} may be too large, saturating the neurons, or too small)")
            previous = epoch

        history = fit(net, LOSSES[config.cost](), optimizer, train, config.epochs, config.batch_size,
                      validation=validation, test=test, rng=rng, schedule=schedule,
                      early_stopping=config.early_stop or None, callbacks=[record],
                      checkpoint=checkpoint, resume=resume, progress=folder.progress)
    summary = summarize(config, history, time.perf_counter() - started)
    folder.write_json("summary.json", summary)
    if history.epochs:
        from tiefnet.plot import training_curves  # matplotlib loads only where a figure is drawn

        network = config.describe() + ("\n" if config.model == "cnn" else " ")  # a CNN's takes a line of its own
        title = (f"{network}{config.activation}, {config.cost}, eta={config.eta:g}, m={config.batch_size}"
                 + (f", {config.reg} lambda={config.lmbda:g}" if config.lmbda else ""))
        with folder.replacing("curves.png") as path:
            training_curves(history.epochs, path, title=title)
    return summary


CLASSES = 10
CHANCE_FACTOR = 1.5  # "no better than chance": a training accuracy of at most 1.5 x 1/10


def stuck(epoch: dict[str, float], previous: dict[str, float] | None) -> bool:
    """Whether the network learns nothing: after ``epoch`` the training accuracy is at most 1.5 times
    chance (15%) and the training cost is not below that of the ``previous`` epoch (None at epoch 1:
    the accuracy alone decides)."""
    if "train_accuracy" not in epoch or epoch["train_accuracy"] > CHANCE_FACTOR / CLASSES:
        return False
    return previous is None or "train_cost" not in previous or epoch["train_cost"] >= previous["train_cost"]


def check_run_folder(out: str | Path) -> None:
    """--resume: refuse a run folder that another application wrote (its model.json names it:
    :func:`tiefnet.settings.check_app`; or its config.json holds settings that tiefnet mnist does not have)."""
    out = Path(out)
    check_app(out, Config.APP)
    try:
        saved = read_json(out / "config.json") if (out / "config.json").is_file() else None
    except (OSError, ValueError, TiefnetError):  # unreadable: the checks of the checkpoint follow
        saved = None
    unknown = sorted(set(saved) - {f.name for f in fields(Config)}) if isinstance(saved, dict) else []
    if unknown:
        raise ConfigError(f"--resume: {out} is not a run folder of tiefnet mnist (its config.json has the "
                          f"settings {', '.join(map(str, unknown[:5]))}{', ...' if len(unknown) > 5 else ''})")


def check_memory(config: Config, images: int, memory: int | None = None) -> None:
    """Refuse a run whose float32 arrays would not fit in ``memory`` bytes (default: tiefnet's memory limit,
    :func:`tiefnet.limits.memory_limit`), before any of them is allocated: the parameters 4 times (values,
    gradients, two optimizer moments), the (expanded) training images, and the activations of one
    mini-batch (or of the evaluation's 500)."""
    memory = memory_limit() if memory is None else memory
    parameters, per_image, channels, n_in = 0, 0, IMAGE[0], 784
    if config.model == "cnn":
        features = config.feature_sizes()
        for F, (conv_side, pool_side) in zip(features, map_sides(features, config.kernel)):
            parameters += F * (channels * config.kernel ** 2 + 1)
            # the conv's output and its pooled maps, and the patches of its input (im2col)
            per_image += F * (conv_side ** 2 + pool_side ** 2) + channels * config.kernel ** 2 * conv_side ** 2
            channels = F
        n_in = flat_size(features, config.kernel)
    sizes = [n_in, *config.hidden_sizes(), CLASSES]
    parameters += sum((n_in + 1) * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    per_image += sum(sizes)
    parts = {"parameters": 4 * 4 * parameters, "training images": 4 * 784 * (images + 2 * 10_000),
             "activations of a mini-batch": 4 * 3 * max(min(config.batch_size, images), 500) * per_image}
    needed = sum(parts.values())
    if needed > memory:
        biggest = max(parts, key=parts.get)
        raise ConfigError(f"the run would need about {size(needed)} of memory ({size(parts[biggest])} for the "
                          f"{biggest}; the network has {parameters:,} parameters), more than tiefnet's memory limit "
                          f"of {size(memory)} (TIEFNET_MEMORY_LIMIT sets it): choose a smaller --hidden, --features, "
                          f"--batch-size or --expand")


# Settings that may change when a run is resumed; any other change would mix two experiments.
RESUMABLE_CHANGES = {"epochs", "threads", "patience", "early_stop"}


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



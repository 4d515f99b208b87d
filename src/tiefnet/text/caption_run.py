"""``tiefnet caption train``: a captioning model (4.4.1, or 4.4.2 with ``attention``) trained with
teacher forcing on generated MNIST scenes (the default) or on a Flickr8k folder / COCO captions file.

Every epoch: one pass over the training images in a random order, each image with one of its
reference captions drawn at random; then greedy captions of the validation images and their BLEU
(metrics.jsonl), model.npz whenever validation BLEU-4 is the best so far, checkpoint.npz (the model,
Adam's m and v, the generator, the metrics): a run killed at any moment resumes from its last epoch
(``--resume``) and ends as if uninterrupted. At the end: the test split's scores (summary.json) and a
PNG of sample captions.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy

from tiefnet import backend
from tiefnet.backend import xp
from tiefnet.data.captions import CaptionSet, Vocabulary
from tiefnet.errors import ConfigError, TrainingDiverged
from tiefnet.limits import check_allocation
from tiefnet.nn import LogLikelihood
from tiefnet.optim import Adam, clip_gradients
from tiefnet.runs import RunFolder
from tiefnet.settings import check_seed, layer_sizes, setting
from tiefnet.text.caption import Captioner, build_model
from tiefnet.text.caption_checkpoint import restore, save_checkpoint
from tiefnet.text.caption_metrics import caption_scores
from tiefnet.text.caption_use import as_input, finish, generate, load_splits

RESUMABLE_CHANGES = {"epochs", "threads"}


@dataclass(frozen=True)
class Config:
    """Settings of one captioning run; the CLI builds its options from these fields.

    The model (4.4.1): "Verwende (affin transformierte) Ausgabe eines CNN ... als ersten hidden state
    eines RNN" (the CNN's output, affinely transformed, is the LSTM's first state), (h^0, c^0) = W_init a_CNN + b;
    with ``attention`` (4.4.2) a_CNN is cut into R regions a_i, (h^0, c^0) comes from their mean, and
    each step reads z_t = sum_i alpha_ti a_i, alpha_ti = exp(e_ti) / sum_k exp(e_tk).
    """

    attention: bool = setting(False, "Show, Attend and Tell (4.4.2) instead of Show and Tell (4.4.1).")
    data: str = setting("", "A Flickr8k folder (Images/ + captions.txt) or a COCO captions .json "
                            "(empty: generated MNIST scenes).")
    images: str = setting("", "The images folder of a COCO captions file (default: the file's folder).")
    size: int = setting(64, "Images are squashed to size x size pixels (scenes: the canvas).")
    train_scenes: int = setting(20000, "Generated training scenes (default data only).")
    eval_scenes: int = setting(1000, "Generated validation and test scenes each (default data only).")
    held_out: float = setting(0.1, "Share of a file dataset's images for validation, and again for test.")
    limit: int = setting(0, "Use only the first this many images of a file dataset (0: all).")
    min_count: int = setting(1, "Words seen fewer times in the training captions become <unk>.")
    max_length: int = setting(40, "Longest caption in words (training cuts, generation stops).")
    channels: str = setting("16,32,64", "Encoder CNN: 3x3 conv + ReLU + 2x2 max-pool layers, their features.")
    extra_convs: int = setting(0, "More 3x3 conv + ReLU layers after the last pooling (each widens a region's "
                                  "view by 2 x its cell, 16 pixels with 3 poolings).")
    hidden: int = setting(256, "Hidden units H of the LSTM decoder.")
    embed: int = setting(64, "Word embedding size E.")
    attention_units: int = setting(64, "Hidden units A of the attention MLP (4.4.2).")
    pooling: str = setting("flatten", "Show and Tell's image vector: the CNN's last activation flattened, or 'mean' "
                                      "over its positions (the pooled output of GoogLeNet, which Show and Tell used).")
    start: str = setting("learned", "The attention model's (h0, c0): 'learned' (the same for every image: the image "
                                    "enters only through the attention), or from the 'mean' region (Xu et al.).")
    context_dropout: float = setting(0.5, "The attention model's dropout rate of the context z^t on its way into "
                                          "the LSTM (the output layer always sees it; 0: off).")
    deep_output: int = setting(64, "The attention model's deep output (Xu et al.): p = softmax(W tanh(L [h; z])) "
                                   "with this many tanh units (0: p = softmax(W [h; z])).")
    penalty: float = setting(0.0, "Xu et al.'s doubly stochastic attention penalty lambda (0: off).")
    epochs: int = setting(12, "Passes over the training images.")
    batch_size: int = setting(32, "Images (each with one caption) per mini-batch.")
    eta: float = setting(1e-3, "Adam learning rate eta.")
    clip: float = setting(5.0, "Clip the gradients to this global norm.")
    seed: int = setting(0, "Seed of every random choice (scenes, weights, order, captions).")
    threads: int = setting(1, "BLAS threads.")

    def __post_init__(self) -> None:
        for name, low in (("size", 8), ("train_scenes", 1), ("eval_scenes", 2), ("limit", 0), ("min_count", 1),
                          ("max_length", 1), ("hidden", 1), ("embed", 1), ("attention_units", 1), ("deep_output", 0), ("extra_convs", 0), ("epochs", 1),
                          ("batch_size", 1), ("threads", 1)):
            if getattr(self, name) < low:
                raise ConfigError(f"{name}={getattr(self, name)} must be at least {low}")
        for name, high in (("size", 512), ("max_length", 200), ("train_scenes", 1_000_000),
                           ("eval_scenes", 100_000), ("hidden", 8192), ("embed", 8192), ("attention_units", 8192), ("deep_output", 8192), ("extra_convs", 8)):
            if getattr(self, name) > high:
                raise ConfigError(f"{name}={getattr(self, name)} must be at most {high:,}")
        for name in ("eta", "clip"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ConfigError(f"{name}={getattr(self, name)} must be a positive number")
        if not 0.0 <= self.context_dropout < 1.0:
            raise ConfigError(f"context_dropout={self.context_dropout} must be in [0, 1)")
        if not (math.isfinite(self.penalty) and self.penalty >= 0):
            raise ConfigError(f"penalty={self.penalty} must be a number at least 0")
        if not 0.0 < self.held_out < 0.5:
            raise ConfigError(f"held_out={self.held_out} must be in (0, 0.5)")
        channels = self.encoder_channels
        if not 1 <= len(channels) <= 8 or max(channels) > 4096:
            raise ConfigError(f"channels={self.channels!r}: give 1 to 8 layers of at most 4096 features")
        if self.size % 2 ** len(channels):
            raise ConfigError(f"size={self.size} must be divisible by {2 ** len(channels)} "
                              f"({len(channels)} max-poolings of 2)")
        if self.pooling not in ("flatten", "mean"):
            raise ConfigError(f"pooling={self.pooling!r} is not one of flatten, mean")
        if self.start not in ("mean", "learned"):
            raise ConfigError(f"start={self.start!r} is not one of mean, learned")
        if self.penalty and not self.attention:
            raise ConfigError("penalty is the attention model's (Xu et al.'s doubly stochastic term): give --attention")
        if self.images and not self.data:
            raise ConfigError("images is the folder of a COCO captions file: give data too")
        check_seed(self.seed)

    @property
    def encoder_channels(self) -> tuple[int, ...]:
        return tuple(layer_sizes(self.channels, "channels", "16,32,64"))


@dataclass
class Splits:
    """The images of a run, the vocabulary of its training captions and where they came from."""

    train: CaptionSet
    validation: CaptionSet
    test: dict[str, CaptionSet]  # "test" (and "compositional" for the scenes)
    vocab: Vocabulary
    source: dict[str, Any]  # model.json's "data": how to make the same splits again


def prepare(config: Config) -> Splits:
    """The splits of ``config``'s data (a clear error if it cannot train) and the vocabulary."""
    source = data_source(config)
    sets = load_splits(source)
    vocab = Vocabulary.build(sets["train"].captions, config.min_count)
    return Splits(sets["train"], sets["validation"], {k: v for k, v in sets.items() if k not in ("train", "validation")},
                  vocab, source)


def data_source(config: Config) -> dict[str, Any]:
    if not config.data:
        return {"format": "scenes", "seed": config.seed, "canvas": config.size, "train": config.train_scenes,
                "eval": config.eval_scenes}
    return {"format": "files", "data": str(Path(config.data).resolve()),
            "images": str(Path(config.images).resolve()) if config.images else "", "size": config.size,
            "limit": config.limit, "held_out": config.held_out, "seed": config.seed}


def run(config: Config, out: str | Path, progress: bool = True, resume: bool = False,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train as ``config`` says and write the run folder ``out``: config.json, metrics.jsonl, checkpoint.npz,
    model.npz + model.json (the best validation BLEU-4), summary.json, loss.png, samples.png.

    Teacher forcing (4.4.1): inputs START w_1 ... w_n, targets w_1 ... w_n END, the cost
    C = -1/N sum_n sum_t ln p^t_{w_t} (log-likelihood, 2.7.2, padding masked) minimised with Adam and
    BPTT (4.2) through the decoder into the CNN. Returns the summary: the kept model's scores on the
    test (and compositional) split."""
    folder = RunFolder(out, app="caption", resume_command="tiefnet caption train --resume", progress=progress)
    splits = prepare(config)
    check_memory(config, len(splits.vocab))
    rng = numpy.random.default_rng(config.seed)
    with folder.start(config, resume, RESUMABLE_CHANGES), backend.thread_limit(config.threads):
        model = build_model(config.attention, len(splits.vocab), config.size, config.encoder_channels, config.hidden,
                            config.embed, config.attention_units, rng, config.start == "mean",
                            config.context_dropout, config.deep_output, config.pooling, config.extra_convs)
        optimizer = Adam(config.eta).bind(model, len(splits.train))
        state = {"epoch": 0, "metrics": [], "seconds": 0.0}
        if resume:
            state = restore(folder.path / "checkpoint.npz", model, optimizer, rng, config)
        metrics = folder.metrics(entries=state["metrics"])
        done = state["epoch"]
        kind = "Show, Attend and Tell" if config.attention else "Show and Tell"
        log(f"tiefnet caption: {kind}, {len(splits.train)} training / {len(splits.validation)} validation images, "
            f"V = {len(splits.vocab)} words, {config.epochs} epochs"
            f"{f' (resumed after epoch {done})' if resume else ''} -> {folder.path}")
        started = time.perf_counter() - state["seconds"]
        while state["epoch"] < config.epochs:
            train_loss = train_epoch(model, optimizer, splits, config, rng, folder, state["epoch"])
            state["epoch"] += 1
            scores = validate(model, splits, config.max_length)
            state["seconds"] = time.perf_counter() - started
            entry = {"epoch": state["epoch"], "train_loss": train_loss,
                     **{k.lower().replace("-", ""): v for k, v in scores.items()}, "seconds": state["seconds"]}
            if not all(math.isfinite(p.value.sum()) for p in model.parameters()) or not math.isfinite(train_loss):
                raise TrainingDiverged(f"training diverged in epoch {state['epoch']}; try a smaller --eta")
            best = max([m["bleu4"] for m in state["metrics"]], default=-1.0)
            state["metrics"].append(entry)
            metrics.append(entry)
            if entry["bleu4"] > best:
                folder.save_model(model, model_info(config, splits, entry))
            save_checkpoint(folder.path / "checkpoint.npz", model, optimizer, rng, state)
            log(f"epoch {state['epoch']:3d}  train {train_loss:.3f} nats/word  validation BLEU-4 {entry['bleu4']:.3f} "
                f"CIDEr {entry['cider']:.3f}  ({state['seconds']:.0f} s)")
    return finish(folder, config, splits, state, log)


def check_memory(config: Config, V: int) -> None:
    """Refuse a model that cannot train in this machine's memory, naming what it would need."""
    channels, S, N, H = config.encoder_channels, config.size, config.batch_size, config.hidden
    C, side = channels[-1] + 2, config.size // 2 ** len(channels)
    conv = sum(9 * a * b for a, b in zip((3,) + channels, channels)) + config.extra_convs * 9 * channels[-1] ** 2
    init = (C if config.attention else C * side * side) * 2 * H
    decoder = 4 * H * (config.embed + H + (C if config.attention else 0)) + V * (H + C) + V * config.embed
    activations = N * sum(3 * F * (S // 2 ** k) ** 2 for k, F in enumerate(channels)) \
        + N * (config.max_length + 1) * (V + 8 * H + side * side * (config.attention_units + 2))
    itemsize = numpy.dtype(backend.dtype()).itemsize
    check_allocation({"the parameters, gradients and Adam's m, v": 4 * (conv + init + decoder) * itemsize,
                      "the activations of a mini-batch": 2 * activations * itemsize},
                     f"a captioning model with channels {config.channels}, H={H}, V={V}, batch_size={N}")


def model_info(config: Config, splits: Splits, entry: dict[str, Any]) -> dict[str, Any]:
    """model.json's info: the vocabulary, the image size, the data and the epoch kept."""
    return {"words": splits.vocab.words, "size": config.size, "max_length": config.max_length,
            "attention": config.attention, "data": splits.source, "epoch": entry["epoch"],
            "validation_bleu4": entry["bleu4"]}


def train_epoch(model: Captioner, optimizer: Adam, splits: Splits, config: Config, rng: numpy.random.Generator,
                folder: RunFolder, epoch: int) -> float:
    """One pass of teacher forcing (4.4.1) over the training images; returns the mean nats per word."""
    data, vocab, loss = splits.train, splits.vocab, LogLikelihood()
    eye = xp.eye(len(vocab), dtype=backend.dtype())
    order = rng.permutation(len(data))
    total, words = 0.0, 0
    bar = folder.progress_bar(len(order), f"epoch {epoch + 1}/{config.epochs}", unit="image")
    try:
        for start in range(0, len(order), config.batch_size):
            index = order[start:start + config.batch_size]
            captions = [data.captions[i][int(rng.integers(len(data.captions[i])))] for i in index]
            inputs, targets = vocab.sequences(captions, config.max_length)  # START w_1..w_n / w_1..w_n END
            mask = xp.asarray(targets != 0)  # padding adds nothing
            y = eye[xp.asarray(targets)]  # (N, T, V)
            p = model.forward((as_input(data.images[index]), xp.asarray(inputs)), train=True)
            total += loss.cost(p, y, mask) * len(index)
            words += int(mask.sum())
            model.backward(loss.delta(p, y, mask), penalty=config.penalty,
                           **({"mask": mask} if config.attention else {}))  # delta^L = (p - y) / N
            clip_gradients(model, config.clip)
            optimizer.step()
            if bar is not None:
                bar.update(len(index))
    finally:
        if bar is not None:
            bar.close()
    return total / words


def validate(model: Captioner, splits: Splits, max_length: int) -> dict[str, float | str]:
    """BLEU-1..4 and CIDEr of the greedy captions of the validation images."""
    generated, _ = generate(model, splits.validation.images, splits.vocab, max_length)
    return caption_scores(generated, splits.validation.captions)

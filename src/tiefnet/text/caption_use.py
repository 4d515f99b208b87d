"""Using a trained captioning model: load a model folder, describe images, evaluate on a split, draw
sample captions and per-word attention maps (4.4.2: "Ball" is upper right)."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy

from tiefnet import backend
from tiefnet.backend import Array
from tiefnet.checkpoint import load_model
from tiefnet.data.captions import CaptionSet, Vocabulary
from tiefnet.errors import CheckpointError, ConfigError, ShapeError
from tiefnet.settings import is_whole
from tiefnet.text.caption import MODELS, Captioner, ShowAttendTell
from tiefnet.text.caption_metrics import attention_by_word_kind, attention_in_boxes, caption_scores, digits_named_wrongly
from tiefnet.text.caption_search import beam_search, greedy

# a run's settings and splits (tiefnet.text.caption_run, which imports this module: the imports flow one way)
Config = Splits = Any

SPLIT_NAMES = ("test", "compositional", "validation", "train")


def load_splits(source: dict[str, Any], only: str | None = None) -> dict[str, CaptionSet]:
    """The splits described by ``source`` (model.json's "data"); ``only``: just that one."""
    if source["format"] == "scenes":
        from tiefnet.data.scenes import make_scenes

        counts = {"train": source["train"], "validation": source["eval"], "test": source["eval"],
                  "compositional": source["eval"]}
        names = [only] if only else list(counts)
        return {name: make_scenes(name, counts[name], source["seed"], source["canvas"]) for name in names}
    from tiefnet.data.caption_files import load_caption_files

    everything = load_caption_files(source["data"], source["images"] or None, source["size"], source["limit"] or None)
    order = numpy.random.default_rng(source["seed"]).permutation(len(everything))
    n_out = int(round(source["held_out"] * len(everything)))
    if n_out < 2 or len(everything) - 2 * n_out < 1:
        raise ConfigError(f"{source['data']}: {len(everything)} images are too few for held_out={source['held_out']} "
                          f"(need at least two images for validation and test each, and one for training)")
    splits = {"test": order[:n_out], "validation": order[n_out:2 * n_out], "train": order[2 * n_out:]}
    return {name: everything.subset(index) for name, index in splits.items() if only in (None, name)}


def as_input(images: numpy.ndarray) -> Array:
    """uint8 (N, S, S, 3) -> (N, 3, S, S) in [0, 1], the default dtype, on the device."""
    return backend.asarray(images.transpose(0, 3, 1, 2)) / 255.0


def generate(model: Captioner, images: numpy.ndarray, vocab: Vocabulary, max_length: int, width: int = 1,
             batch_size: int = 250, log_p: list[float] | None = None) -> tuple[list[list[str]], list[Any]]:
    """Captions (token lists) of uint8 images and their attention maps (None without attention); the sum
    of ln p of each caption's words and END is appended to ``log_p`` if given.

    Each output word is the next step's input (4.4.1), until END: greedy (``width`` 1) takes
    w_t = argmax p^t, a("Hund") = e_4 = "fängt", a("fängt") = e_5 = "Ball", a("Ball") = END; a wider
    beam keeps the ``width`` beginnings of highest sum_t ln p^t_{w_t}. The maps are alpha (L, R) per caption."""
    words, alphas = [], []
    for start in range(0, len(images), batch_size):
        x = as_input(images[start:start + batch_size])
        found = greedy(model, x, max_length) if width == 1 else beam_search(model, x, width, max_length)
        words += [vocab.decode(c.ids) for c in found]
        alphas += [c.alpha for c in found]
        if log_p is not None:
            log_p += [c.log_p for c in found]
    return words, alphas


def load_captioner(folder: str | Path) -> tuple[Captioner, Vocabulary, dict[str, Any]]:
    """(model, vocabulary, model.json's info) of a ``tiefnet caption train`` folder, every part checked."""
    model, info = load_model(folder, custom=MODELS)
    if not isinstance(model, tuple(MODELS.values())) or not isinstance(info, dict):
        raise CheckpointError(f"{folder}: not a captioning model (tiefnet caption train writes one)")
    vocab = Vocabulary(info.get("words") if isinstance(info.get("words"), list) else [])
    size, max_length = info.get("size"), info.get("max_length")
    if len(vocab) != model.V or not is_whole(size, 8, 512) or not is_whole(max_length, 1, 200):
        raise CheckpointError(f"{folder}: model.json's words, size or max_length do not fit the model")
    _check_source(folder, info.get("data"), size)
    try:  # the parts fit each other and the image size: one image through the whole model
        model.forward((backend.xp.zeros((1, 3, size, size), dtype=backend.dtype()), backend.xp.ones((1, 1), dtype=backend.xp.int64)))
    except (ShapeError, ValueError, TypeError) as error:
        raise CheckpointError(f"{folder}: the model does not take {size} x {size} images ({error})") from None
    return model, vocab, info


def _check_source(folder, source: Any, size: int) -> None:
    """model.json's "data" (how to make the splits again), every value in the range a run can write."""
    from tiefnet.settings import is_number

    if not isinstance(source, dict) or source.get("format") not in ("scenes", "files"):
        raise CheckpointError(f"{folder}: model.json names no data tiefnet can make again")
    if source["format"] == "scenes":
        keys, ok = {"format", "seed", "canvas", "train", "eval"}, source.get("canvas") == size and \
            is_whole(source.get("seed")) and is_whole(source.get("train"), 1, 1_000_000) and \
            is_whole(source.get("eval"), 1, 100_000)
    else:
        keys = {"format", "data", "images", "size", "limit", "held_out", "seed"}
        ok = isinstance(source.get("data"), str) and isinstance(source.get("images"), str) and \
            source.get("size") == size and is_whole(source.get("limit")) and is_whole(source.get("seed")) and \
            is_number(source.get("held_out"), 0) and 0 < source["held_out"] < 0.5
    if set(source) != keys or not ok:
        raise CheckpointError(f"{folder}: model.json's data entry is not one tiefnet caption train writes")


def evaluate(model: Captioner, vocab: Vocabulary, data: CaptionSet, max_length: int, width: int = 1,
             meteor: bool = False) -> dict[str, Any]:
    """Scores of the captions of ``data``: BLEU-1..4, CIDEr (METEOR), BLEU-4 by number of digits and,
    for an attention model on scenes, the attention mass in the named digit's box beside a uniform map's.

    BLEU-n = BP exp(1/n sum_{m=1..n} ln p_m) (see :func:`tiefnet.text.caption_metrics.caption_scores`);
    "mean_log_p" is the mean over the images of sum_t ln p^t_{w_t} of their captions (END included)."""
    log_p: list[float] = []
    generated, alphas = generate(model, data.images, vocab, max_length, width, log_p=log_p)
    result: dict[str, Any] = {"images": len(data), "beam_width": width, "mean_log_p": float(numpy.mean(log_p)),
                              **caption_scores(generated, data.captions, meteor)}
    if data.digits is not None:
        for count in sorted(set(data.digits)):
            index = [i for i, d in enumerate(data.digits) if d == count]
            result[f"BLEU-4 ({count} digit{'s' if count > 1 else ''})"] = caption_scores(
                [generated[i] for i in index], [data.captions[i] for i in index])["BLEU-4"]
            if data.boxes is not None:
                result[f"digits_wrong ({count} digit{'s' if count > 1 else ''})"] = digits_named_wrongly(
                    [generated[i] for i in index], [data.boxes[i] for i in index])["digits_wrong"]
    if data.boxes is not None:
        result.update(digits_named_wrongly(generated, data.boxes))
    if isinstance(model, ShowAttendTell) and data.boxes is not None:
        result.update(attention_in_boxes(generated, alphas, data.boxes, data.images.shape[1]))
        result.update(attention_by_word_kind(generated, alphas, data.boxes, data.images.shape[1]))
    result["log_p"] = log_p  # per image, for comparing searches
    result["examples"] = [{"name": data.names[i], "generated": " ".join(generated[i]),
                           "reference": " ".join(data.captions[i][0])} for i in range(min(5, len(data)))]
    return result


def split_of(info: dict[str, Any], split: str) -> CaptionSet:
    """The split ``split`` of the data the model was trained on, made again from model.json's "data"."""
    source = info["data"]
    if split not in SPLIT_NAMES or (split == "compositional" and source.get("format") != "scenes"):
        allowed = SPLIT_NAMES if source.get("format") == "scenes" else ("test", "validation", "train")
        raise ConfigError(f"split {split!r} is not one of {', '.join(allowed)}")
    try:
        return load_splits(source, split)[split]
    except (KeyError, TypeError) as error:
        raise CheckpointError(f"model.json's data entry is not one tiefnet wrote ({error})") from None


def finish(folder, config: Config, splits: Splits, state: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    """The end of a run: the best model's test scores (summary.json), loss.png and samples.png."""
    model, vocab, info = load_captioner(folder.path)
    summary = {"epochs": state["epoch"], "seconds": state["seconds"], "device": backend.DEVICE,
               "options": asdict(config), "best_epoch": info["epoch"],
               "validation_bleu4": info["validation_bleu4"], "vocabulary_size": len(vocab)}
    for name, data in splits.test.items():
        scores = evaluate(model, vocab, data, config.max_length)
        summary[name] = {k: v for k, v in scores.items() if k not in ("examples", "log_p")}
        log(f"{name}: BLEU-4 {scores['BLEU-4']:.3f}  CIDEr {scores['CIDEr']:.3f}"
            + (f"  attention in the digit's box {scores['attention_in_box']:.1%} (uniform "
               f"{scores['uniform_in_box']:.1%})" if "attention_in_box" in scores else ""))
    folder.write_json("summary.json", summary)
    with folder.replacing("loss.png") as path:
        _plot_metrics(state["metrics"], path, "Show, Attend and Tell" if config.attention else "Show and Tell")
    sample = splits.validation.subset(range(min(8, len(splits.validation))))
    generated, _ = generate(model, sample.images, vocab, config.max_length)
    with folder.replacing("samples.png") as path:
        sample_sheet(sample.images, generated, path)
    return summary


def _plot_metrics(metrics: list[dict[str, Any]], path: Path, title: str) -> None:
    from tiefnet.plot import epoch_axis, plt, points, save

    fig, (ax_loss, ax_bleu) = plt.subplots(1, 2, figsize=(10, 4))
    x = [m["epoch"] for m in metrics]
    ax_loss.plot(x, [m["train_loss"] for m in metrics], label="train", **points(len(x)))
    ax_loss.set(xlabel="epoch", ylabel="nats per word", title="training loss")
    for n in (1, 4):
        ax_bleu.plot(x, [m[f"bleu{n}"] for m in metrics], label=f"BLEU-{n}", **points(len(x)))
    ax_bleu.set(xlabel="epoch", ylabel="score", title="validation (greedy captions)")
    for ax in (ax_loss, ax_bleu):
        epoch_axis(ax)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    save(fig, path)


def _wrap(words: Sequence[str], width: int = 34) -> str:
    lines, line = [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    return "\n".join(lines + [line])


def sample_sheet(images: numpy.ndarray, captions: Sequence[Sequence[str]], path: Path) -> None:
    """A PNG: every image with its generated caption beneath it."""
    from tiefnet.plot import plt, save

    cols = min(4, len(images))
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, words in zip(axes.flat, images, captions):
        ax.imshow(image)
        ax.set_title(_wrap(words), fontsize=8)
    save(fig, path)


def attention_sheet(images: numpy.ndarray, captions: Sequence[Sequence[str]], alphas: Sequence[numpy.ndarray],
                    path: Path) -> None:
    """A PNG: one row per image, one panel per generated word (and END) with alpha over the image (4.4.2):
    panel t shows alpha_ti = exp(e_ti) / sum_k exp(e_tk) of the step that wrote word t, each of the R = s x s
    regions a_i spread over its cell of the image. ``alphas``: (L, R) per caption, as :func:`generate` returns."""
    from tiefnet.plot import plt, save

    cols = max(len(c) + 1 for c in captions) + 1
    fig, axes = plt.subplots(len(images), cols, figsize=(1.6 * cols, 1.8 * len(images)), squeeze=False)
    for row, (image, words, alpha) in enumerate(zip(images, captions, alphas)):
        axes[row, 0].imshow(image)
        axes[row, 0].set_title("image", fontsize=8)
        S, side = image.shape[0], int(round(alpha.shape[1] ** 0.5))
        for t, word in enumerate([*words, "<end>"][:len(alpha)]):
            grid = alpha[t].reshape(side, side)
            upsampled = numpy.kron(grid, numpy.ones((S // side, S // side)))  # each region over its cell
            ax = axes[row, t + 1]
            ax.imshow(image)
            ax.imshow(upsampled, cmap="gray", alpha=0.6, extent=(0, S, S, 0), vmin=0, vmax=grid.max())
            ax.set_title(word, fontsize=9)
        for ax in axes[row]:
            ax.axis("off")
    save(fig, path)

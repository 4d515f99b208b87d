"""Lecture 2.7.3, "Experiment 2": the overfitting network trained on all 50,000 images.

Same network and settings as the 1000-image experiment (784-30-10, sigmoid, cross-entropy,
eta = 0.5, mini-batches of 10, w ~ N(0, 1), no regularisation), 30 epochs. With fifty times
more data the gap between training and test accuracy shrinks to about 2.5% (lecture;
Nielsen: 97.86% vs 95.33%): the network generalises to other people's handwriting.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tiefnet.experiments._common import QUICK_EPOCHS, data, output_dir, percent, series, settings, train, write_json
from tiefnet.files import replacing
from tiefnet.vision.mnist import Config

DESCRIPTION = "2.7.3 all 50,000 training images: training vs test accuracy, the overfitting gap"
CONFIG = Config(hidden="30", cost="cross-entropy", eta=0.5, batch_size=10, init="large")
TRAIN_SIZE, EPOCHS = 50_000, 30


def run(out: str | Path, epochs: int | None = None, seed: int = 0, quick: bool = False,
        progress: bool = True) -> dict[str, Any]:
    """Write full_data.png/.json: training and test accuracy per epoch and their final gap."""
    out = output_dir(out)
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    train_set, _, test = data(TRAIN_SIZE, quick)
    _, history = train(CONFIG, train_set, epochs, seed, test=test, progress=progress)
    train_accuracy, test_accuracy = series(history, "train_accuracy"), series(history, "test_accuracy")
    gaps = [a - b for a, b in zip(train_accuracy, test_accuracy)]
    result = {
        "settings": settings(CONFIG, train_size=len(train_set), test_size=len(test), epochs=epochs, seed=seed,
                             quick=quick),
        "train_accuracy": train_accuracy, "test_accuracy": test_accuracy,
        "train_cost": series(history, "train_cost"), "test_cost": series(history, "test_cost"),
        "final_train_accuracy": train_accuracy[-1], "final_test_accuracy": test_accuracy[-1],
        "gap": gaps[-1], "best_test_accuracy": max(test_accuracy),
        "seconds_per_epoch": sum(e["seconds"] for e in history.epochs) / len(history.epochs),
        "lecture_gap": 0.025, "nielsen": {"train_accuracy": 0.9786, "test_accuracy": 0.9533},
    }
    write_json(out, "full_data", result)
    with replacing(out / "full_data.png") as path:
        _figure(result, len(train_set), path)
    print(f"after {epochs} epochs on {len(train_set)} images: training accuracy {percent(train_accuracy[-1])}, "
          f"test accuracy {percent(test_accuracy[-1])}, gap {percent(gaps[-1])} (lecture: about 2.5%)")
    return result


def _figure(result: dict[str, Any], train_size: int, path: Path) -> None:
    from tiefnet.plot import epoch_axis, plt, save

    fig, ax = plt.subplots(figsize=(8, 4.8))
    epochs = range(1, len(result["train_accuracy"]) + 1)
    ax.plot(epochs, [100 * a for a in result["train_accuracy"]], color="tab:green", marker=".",
            label=f"training data ({train_size} images)")
    ax.plot(epochs, [100 * a for a in result["test_accuracy"]], color="tab:red", marker=".", label="test data")
    last, top, bottom = len(epochs), 100 * result["train_accuracy"][-1], 100 * result["test_accuracy"][-1]
    ax.annotate("", xy=(last + 0.3, top), xytext=(last + 0.3, bottom), arrowprops={"arrowstyle": "<->"})
    ax.text(last + 0.5, (top + bottom) / 2, f"gap\n{100 * result['gap']:.2f}%", ha="left", va="center")
    ax.set(xlabel="epoch", ylabel="accuracy [%]", xlim=(0, 1.15 * last + 1),
           title="2.7.3 all training images: 784-30-10, cross-entropy, η = 0.5, no regularisation")
    epoch_axis(ax)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    save(fig, path)

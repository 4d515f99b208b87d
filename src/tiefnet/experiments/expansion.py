"""Lecture 2.7.3 "Künstliche Erweiterung des Trainingsdatensatzes": (x, y) -> (M_j(x), y).

The first 1000 training images are joined by 4 copies of each, slightly rotated (up to 15
degrees), skewed (up to 0.2) and shifted (up to 2 pixels) by tiefnet.data.expand. The network
784-100-10 (sigmoid, cross-entropy, eta = 0.5, mini-batches of 10, w ~ N(0, 1/n_in)) is trained
on the 5000 images for 60 epochs and, for comparison, on the 1000 originals for 5 x 60
epochs: the same number of SGD steps, so the gain comes from the new images, not more steps.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy

from tiefnet.data.augment import expand
from tiefnet.data.mnist import Dataset
from tiefnet.experiments._common import (QUICK_EPOCHS, accuracy_curve, data, output_dir, percent, settings, train,
                                         write_json)
from tiefnet.files import replacing
from tiefnet.vision.mnist import Config

DESCRIPTION = "2.7.3 data expansion: 1000 images with vs without 4 rotated/shifted/skewed copies each"
CONFIG = Config(hidden="100", cost="cross-entropy", eta=0.5, batch_size=10, init="scaled")
TRAIN_SIZE, EPOCHS, COPIES, SHOWN = 1000, 60, 4, 6


def run(out: str | Path, epochs: int | None = None, seed: int = 0, quick: bool = False,
        progress: bool = True) -> dict[str, Any]:
    """Write expansion.png/.json: test accuracy per training image seen, and a few expanded digits."""
    out = output_dir(out)
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    originals, _, test = data(TRAIN_SIZE, quick)
    x, y = expand(originals.x, originals.y, COPIES, numpy.random.default_rng(seed))  # rows k*N.. = copy k
    expanded = Dataset(x, y)
    runs = {}
    for name, train_set, n_epochs in (("original", originals, (COPIES + 1) * epochs), ("expanded", expanded, epochs)):
        _, history = train(CONFIG, train_set, n_epochs, seed, test=test, monitor_train=False, progress=progress)
        runs[name] = {"train_size": len(train_set), "epochs": n_epochs, **accuracy_curve(history),
                      "images_seen": [len(train_set) * e for e in range(1, n_epochs + 1)]}
    runs["original"]["test_accuracy_after_same_epochs"] = runs["original"]["test_accuracy"][epochs - 1]
    gain = runs["expanded"]["final_test_accuracy"] - runs["original"]["final_test_accuracy"]
    result = {"settings": settings(CONFIG, originals=len(originals), copies=COPIES, max_angle=15.0, max_shift=2.0,
                                   max_skew=0.2, test_size=len(test), epochs=epochs, seed=seed, quick=quick),
              "runs": runs, "test_accuracy_gain_same_steps": gain}
    write_json(out, "expansion", result)
    with replacing(out / "expansion.png") as path:
        _figure(runs, x, len(originals), path)
    o, e = runs["original"], runs["expanded"]
    print(f"original {o['train_size']} images: test accuracy {percent(o['test_accuracy_after_same_epochs'])} after "
          f"{epochs} epochs, {percent(o['final_test_accuracy'])} after {o['epochs']} (same SGD steps as expanded)")
    print(f"expanded {e['train_size']} images: test accuracy {percent(e['final_test_accuracy'])} after {epochs} epochs "
          f"({100 * gain:+.2f} percentage points)")
    return result


def _figure(runs: dict[str, dict], x: numpy.ndarray, n: int, path: Path) -> None:
    from tiefnet.plot import plt, points, save

    shown = min(SHOWN, n)
    fig = plt.figure(figsize=(13, 5.5))
    layout = fig.add_gridspec(shown, 2 + COPIES + 1, width_ratios=[3, 3] + [1] * (COPIES + 1))
    ax = fig.add_subplot(layout[:, :2])
    colours = {"original": "tab:red", "expanded": "tab:blue"}
    for name, r in runs.items():
        ax.plot([s / 1000 for s in r["images_seen"]], [100 * a for a in r["test_accuracy"]], color=colours[name],
                label=f"{name}: {r['train_size']} images, {r['epochs']} epochs, "
                      f"final {100 * r['final_test_accuracy']:.2f}%", **points(len(r["images_seen"])))
    bottom = min(80, min(100 * r["final_test_accuracy"] for r in runs.values()) - 5)
    ax.set(xlabel="training images processed (thousands) = SGD steps × 10", ylabel="test accuracy [%]",
           ylim=(bottom, 100), title="784-100-10, cross-entropy, η = 0.5")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    for row in range(shown):
        for k in range(COPIES + 1):
            cell = fig.add_subplot(layout[row, 2 + k])
            cell.imshow(x[k * n + row].reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
            cell.set_xticks([])
            cell.set_yticks([])
            if row == 0:
                cell.set_title("original" if k == 0 else f"copy {k}", fontsize=9)
    fig.suptitle("2.7.3 artificial expansion of the training data: the first 1000 MNIST images "
                 "and 4 rotated, skewed, shifted copies of each (right)")
    save(fig, path)

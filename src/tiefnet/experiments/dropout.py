"""Lecture 2.7.3 "Dropout": per mini-batch, temporarily delete half of the hidden neurons.

A network that overfits — 784-100-10, sigmoid, cross-entropy, eta = 0.5, mini-batches of 10,
w ~ N(0, 1) as in the overfitting experiment, trained on the first 1000 images — is trained
without and with dropout (p = 0.5 on the hidden neurons), from the same start. Dropout
forces each neuron to weigh several pieces of evidence: the test accuracy rises.
tiefnet scales the kept activations by 1/(1 - p) while training ("inverted dropout") instead of
halving the outgoing weights at test time; the expected input of the next layer is the same.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from tiefnet.experiments._common import (QUICK_EPOCHS, accuracy_curve, data, output_dir, percent, series, settings,
                                         train, write_json)
from tiefnet.files import replacing
from tiefnet.vision.mnist import Config

DESCRIPTION = "2.7.3 dropout: 784-100-10 on 1000 images, without vs with dropout p = 0.5"
CONFIG = Config(hidden="100", cost="cross-entropy", eta=0.5, batch_size=10, init="large")
TRAIN_SIZE, EPOCHS, P = 1000, 200, 0.5


def run(out: str | Path, epochs: int | None = None, seed: int = 0, quick: bool = False,
        progress: bool = True) -> dict[str, Any]:
    """Write dropout.png/.json: test accuracy per epoch without and with dropout."""
    out = output_dir(out)
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    train_set, _, test = data(TRAIN_SIZE, quick)
    runs = {}
    for name, p in (("no dropout", 0.0), ("dropout", P)):
        _, history = train(replace(CONFIG, dropout=p), train_set, epochs, seed, test=test, progress=progress)
        runs[name] = {"p": p, **accuracy_curve(history), "train_accuracy": series(history, "train_accuracy"),
                      "train_cost": series(history, "train_cost"),
                      "final_train_accuracy": history.epochs[-1]["train_accuracy"]}
    gain = runs["dropout"]["final_test_accuracy"] - runs["no dropout"]["final_test_accuracy"]
    result = {"settings": settings(CONFIG, dropout=P, train_size=len(train_set), test_size=len(test), epochs=epochs,
                                   seed=seed, quick=quick),
              "runs": runs, "test_accuracy_gain": gain}
    write_json(out, "dropout", result)
    with replacing(out / "dropout.png") as path:
        _figure(runs, len(train_set), path)
    for name, r in runs.items():
        print(f"{name:10s} test accuracy {percent(r['final_test_accuracy'])} (best {percent(r['best_test_accuracy'])}),"
              f" training accuracy {percent(r['final_train_accuracy'])}")
    print(f"dropout gains {100 * gain:+.2f} percentage points of test accuracy")
    return result


def _figure(runs: dict[str, dict], train_size: int, path: Path) -> None:
    from tiefnet.plot import epoch_axis, plt, points, save

    fig, ax = plt.subplots(figsize=(8, 4.8))
    colours = {"no dropout": "tab:red", "dropout": "tab:blue"}
    for name, r in runs.items():
        epochs = range(1, len(r["test_accuracy"]) + 1)
        label = "without dropout" if r["p"] == 0 else f"dropout p = {r['p']:g} (hidden neurons)"
        ax.plot(epochs, [100 * a for a in r["test_accuracy"]], color=colours[name],
                label=f"{label}: final {100 * r['final_test_accuracy']:.2f}%", **points(len(epochs)))
    bottom = min(70, min(100 * r["final_test_accuracy"] for r in runs.values()) - 5)
    ax.set(xlabel="epoch", ylabel="test accuracy [%]", ylim=(bottom, 95),
           title=f"2.7.3 dropout: 784-100-10, cross-entropy, η = 0.5, w ~ N(0,1), first {train_size} training images")
    ax.title.set_fontsize(10)
    epoch_axis(ax)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    save(fig, path)

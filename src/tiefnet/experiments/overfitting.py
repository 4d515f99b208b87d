"""Lecture 2.7.3 "Overfitting und Regularisierung": 1000 training images, 400 epochs.

The network 784-30-10 (sigmoid, cross-entropy, eta = 0.5, mini-batches of 10) learns the
first 1000 MNIST training images by heart: its training cost falls towards 0 while the test
accuracy stops improving at a plateau (Nielsen: 82.27%). The same run with L2 regularisation,
C = C_0 + lmbda/(2n) sum w^2 with lmbda = 0.1, n = 1000, generalises better (Nielsen: 87.1%).
As in Nielsen's run the weights start "large", w ~ N(0, 1): that network overfits clearly.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from tiefnet.experiments._common import (QUICK_EPOCHS, accuracy_curve, data, output_dir, percent, series, settings,
                                         train, write_json)
from tiefnet.files import replacing
from tiefnet.vision.mnist import Config

DESCRIPTION = "2.7.3 overfitting: 1000 images, 400 epochs, training cost vs test accuracy, without/with L2"
CONFIG = Config(hidden="30", cost="cross-entropy", eta=0.5, batch_size=10, init="large")
TRAIN_SIZE, EPOCHS, LMBDA = 1000, 400, 0.1


def run(out: str | Path, epochs: int | None = None, seed: int = 0, quick: bool = False,
        progress: bool = True) -> dict[str, Any]:
    """Write overfitting.png/.json: per-epoch training cost and test accuracy, without and with L2."""
    out = output_dir(out)
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    train_set, _, test = data(TRAIN_SIZE, quick)
    runs = {}
    for name, lmbda in (("unregularised", 0.0), ("L2", LMBDA)):
        _, history = train(replace(CONFIG, lmbda=lmbda), train_set, epochs, seed, test=test, progress=progress)
        curve = accuracy_curve(history)
        runs[name] = {
            "lmbda": lmbda, "train_cost": series(history, "train_cost"),
            "train_accuracy": series(history, "train_accuracy"), **curve,
            "final_train_cost": history.epochs[-1]["train_cost"],
            "best_epoch": curve["test_accuracy"].index(curve["best_test_accuracy"]) + 1,
            "final_train_accuracy": history.epochs[-1]["train_accuracy"],
        }
    result = {"settings": settings(CONFIG, lmbda_l2=LMBDA, train_size=len(train_set), test_size=len(test),
                                   epochs=epochs, seed=seed, quick=quick),
              "nielsen_test_accuracy": {"unregularised": 0.8227, "L2": 0.871}, "runs": runs}
    write_json(out, "overfitting", result)
    with replacing(out / "overfitting.png") as path:
        _figure(runs, len(train_set), path)
    for name, r in runs.items():
        print(f"{name:14s} train cost {r['final_train_cost']:.4f}, "
              f"train accuracy {percent(r['final_train_accuracy'])}, test accuracy {percent(r['final_test_accuracy'])} "
              f"(best {percent(r['best_test_accuracy'])} in epoch {r['best_epoch']})")
    return result


def _figure(runs: dict[str, dict], train_size: int, path: Path) -> None:
    from tiefnet.plot import epoch_axis, plt, points, save

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    for column, (name, r) in enumerate(runs.items()):
        label = "no regularisation" if r["lmbda"] == 0 else f"L2, λ = {r['lmbda']:g}"
        epochs = range(1, len(r["train_cost"]) + 1)
        ax_cost, ax_acc = axes[0, column], axes[1, column]
        style = points(len(epochs))
        ax_cost.plot(epochs, r["train_cost"], color="tab:blue",
                     label="training cost C" if r["lmbda"] == 0 else "training cost C = C0 + λ/(2n) Σ w²", **style)
        ax_cost.set(ylabel="cost", yscale="log", title=f"{label}: training cost")
        ax_acc.plot(epochs, [100 * a for a in r["test_accuracy"]], color="tab:red", label="test data", **style)
        ax_acc.plot(epochs, [100 * a for a in r["train_accuracy"]], color="tab:green", alpha=0.6,
                    label=f"training data ({train_size} images)", **style)
        ax_acc.axhline(100 * r["best_test_accuracy"], color="tab:red", ls=":", lw=1,
                       label=f"best test: {100 * r['best_test_accuracy']:.2f}%")
        ax_acc.set(xlabel="epoch", ylabel="accuracy [%]", ylim=(min(70, 100 * r["final_test_accuracy"] - 5), 100.5),
                   title=f"{label}: accuracy")
        for ax in (ax_cost, ax_acc):
            epoch_axis(ax)
            ax.grid(alpha=0.3)
            ax.legend(loc="best")
    fig.suptitle(f"2.7.3 overfitting: 784-30-10, cross-entropy, η = 0.5, first {train_size} training images")
    save(fig, path)

"""Lecture 2.7.3 "L1-Regularisierung": where L1 and L2 leave the weights.

L2: w -> (1 - eta lmbda/n) w - eta dC_0/dw shrinks every weight in proportion to its size.
L1: w -> w - (eta lmbda/n) sgn(w) - eta dC_0/dw shrinks every weight by the same amount, so
small weights reach 0 quickly while large ones barely change: the weights concentrate on a
few "important" connections. We train 784-30-10 (sigmoid, cross-entropy, eta = 0.5,
mini-batches of 10, w ~ N(0, 1/n_in)) on 10,000 images for 30 epochs, once with L2 and once
with L1, both lmbda = 5.0, and compare the first layer's weights w^2_jk. (Both send the
weights from always-black border pixels to 0: no dC_0/dw reaches them, only the decay.)
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy

from tiefnet.backend import to_numpy
from tiefnet.experiments._common import (QUICK_EPOCHS, accuracy_curve, data, output_dir, percent, settings, train,
                                         write_json)
from tiefnet.files import replacing
from tiefnet.vision.mnist import Config

DESCRIPTION = "2.7.3 L1 vs L2 regularisation: histograms of the first layer's weights"
CONFIG = Config(hidden="30", cost="cross-entropy", eta=0.5, batch_size=10, init="scaled", lmbda=5.0)
TRAIN_SIZE, EPOCHS = 10_000, 30


def weight_statistics(W: numpy.ndarray) -> dict[str, float]:
    """How concentrated the weights are: fractions near 0, spread, tails (excess kurtosis, 0 for a normal)."""
    w = W.ravel().astype(numpy.float64)
    size = numpy.sort(numpy.abs(w))[::-1]
    top = max(1, len(w) // 20)
    return {
        "fraction_below_1e-3": float((size < 1e-3).mean()), "fraction_below_1e-2": float((size < 1e-2).mean()),
        "std": float(w.std()), "max_abs": float(size[0]), "mean_abs": float(size.mean()),
        "excess_kurtosis": float(((w - w.mean()) ** 4).mean() / w.var() ** 2 - 3),
        "share_of_sum_abs_in_top_5_percent": float(size[:top].sum() / size.sum()),
    }


def run(out: str | Path, epochs: int | None = None, seed: int = 0, quick: bool = False,
        progress: bool = True) -> dict[str, Any]:
    """Write l1_vs_l2.png/.json: accuracies and first-layer weight statistics for L2 and L1."""
    out = output_dir(out)
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    train_set, _, test = data(TRAIN_SIZE, quick)
    runs, weights = {}, {}
    for reg in ("l2", "l1"):
        net, history = train(replace(CONFIG, reg=reg), train_set, epochs, seed, test=test, progress=progress)
        weights[reg] = to_numpy(net[0].params["W"])  # (30, 784): w^2_jk
        runs[reg] = {**accuracy_curve(history), "final_train_accuracy": history.epochs[-1]["train_accuracy"],
                     "weights": weight_statistics(weights[reg])}
    result = {"settings": settings(CONFIG, train_size=len(train_set), test_size=len(test), epochs=epochs,
                                   seed=seed, quick=quick, layer="first (784 -> 30)"), "runs": runs}
    write_json(out, "l1_vs_l2", result)
    with replacing(out / "l1_vs_l2.png") as path:
        _figure(weights, runs, path)
    for reg, r in runs.items():
        s = r["weights"]
        print(f"{reg.upper()} (lmbda {CONFIG.lmbda:g}): test accuracy {percent(r['final_test_accuracy'])}; "
              f"|w| < 1e-3: {percent(s['fraction_below_1e-3'])}, max |w| {s['max_abs']:.2f}, "
              f"kurtosis {s['excess_kurtosis']:.1f}, top 5% hold {percent(s['share_of_sum_abs_in_top_5_percent'])} "
              f"of sum |w|")
    return result


def _figure(weights: dict[str, numpy.ndarray], runs: dict[str, dict], path: Path) -> None:
    from tiefnet.plot import plt, save

    fig, (ax_zoom, ax_tail) = plt.subplots(1, 2, figsize=(12, 4.5))
    colours = {"l2": "tab:blue", "l1": "tab:red"}
    limit = max(float(numpy.abs(W).max()) for W in weights.values())
    for reg, W in weights.items():
        s = runs[reg]["weights"]
        label = (f"{reg.upper()}: {100 * s['fraction_below_1e-3']:.0f}% with |w| < 0.001, "
                 f"max |w| = {s['max_abs']:.2f}, test {100 * runs[reg]['final_test_accuracy']:.1f}%")
        ax_zoom.hist(W.ravel(), bins=121, range=(-0.3, 0.3), histtype="step", lw=1.5, color=colours[reg], label=label)
        ax_tail.hist(numpy.abs(W.ravel()), bins=60, range=(0, limit), histtype="step", lw=1.5,
                     color=colours[reg], label=reg.upper())
    ax_zoom.set(xlabel="weight w (zoom on -0.3 .. 0.3)", ylabel="number of weights", yscale="log",
                title="first-layer weights near 0")
    ax_tail.set(xlabel="|w|", ylabel="number of weights", yscale="log", title="all first-layer weights: the tails")
    for ax in (ax_zoom, ax_tail):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(headline(runs), fontsize=11)
    save(fig, path)


def headline(runs: dict[str, dict]) -> str:
    """The figure's title: what these two runs' own numbers show (which regulariser set more weights
    to ~0, which kept the larger weights, which reached the higher test accuracy), not what the lecture
    expects them to show."""
    def compare(l1: float, l2: float, more: str, same: str, label: str, shown) -> str:
        if shown(l1) == shown(l2):
            return f"{same} ({label}{shown(l1)})"
        (first, x), (_, y) = sorted([("L1", l1), ("L2", l2)], key=lambda run: -run[1])
        return f"{first} {more} ({label}{shown(x)} vs {shown(y)})"

    w1, w2 = runs["l1"]["weights"], runs["l2"]["weights"]
    sparse = compare(w1["fraction_below_1e-3"], w2["fraction_below_1e-3"], "set more weights to ~0",
                     "both set as many weights to ~0", "|w| < 0.001: ", lambda v: f"{100 * v:.0f}%")
    large = compare(w1["max_abs"], w2["max_abs"], "kept the larger weights", "both kept weights as large",
                    "max |w| ", lambda v: f"{v:.2f}")
    accuracy = compare(runs["l1"]["final_test_accuracy"], runs["l2"]["final_test_accuracy"],
                       "reached the higher test accuracy", "both reached the same test accuracy", "",
                       lambda v: f"{100 * v:.1f}%")
    return f"2.7.3 L1 vs L2 (λ = {CONFIG.lmbda:g}): {sparse}; {large};\n{accuracy}"

"""Lecture 2.7.3 "Initialisierung der Gewichtsmatrizen": N(0, 1) vs N(0, 1/n_in) weights.

For a neuron with n inputs, half of them 1, w_j ~ N(0, s^2) and b ~ N(0, 1):
var(z) = n/2 s^2 + 1. With s = 1 and n = 784 that is 393, so |z| >> 1 and sigma(z)
saturates: sigma'(z) ~ 0 and the hidden layer learns slowly. With s = 1/sqrt(n) it is 1.5.
Nielsen's comparison: 784-30-10, sigmoid, cross-entropy, eta = 0.1, L2 with lmbda = 5.0,
mini-batches of 10, 50,000 images, 30 epochs, accuracy on the validation images per epoch:
the scaled start learns much faster in the first epochs.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy

from tiefnet import backend
from tiefnet.experiments._common import QUICK_EPOCHS, data, output_dir, percent, series, settings, train, write_json
from tiefnet.nn import Dense
from tiefnet.nn.init import weight_std
from tiefnet.files import replacing
from tiefnet.vision.mnist import Config

DESCRIPTION = "2.7.3 weight initialisation: large N(0,1) vs scaled N(0,1/n_in), accuracy per epoch"
CONFIG = Config(hidden="30", cost="cross-entropy", eta=0.1, batch_size=10, lmbda=5.0)
TRAIN_SIZE, EPOCHS, N_IN = 50_000, 30, 784
INITS = {"large": "N(0, 1)", "scaled": "N(0, 1/n_in)"}
SATURATED = 4.0  # |z| > 4: sigma'(z) < 0.018, a fourteenth of its peak 1/4


def z_at_start(init: str, x: numpy.ndarray, seed: int) -> numpy.ndarray:
    """z = w a + b of the hidden neurons of a freshly initialised network, for the images x."""
    layer = Dense(N_IN, 30, init=init, rng=numpy.random.default_rng(seed))
    return backend.to_numpy(layer.forward(backend.asarray(x))).ravel()


def run(out: str | Path, epochs: int | None = None, seed: int = 0, quick: bool = False,
        progress: bool = True) -> dict[str, Any]:
    """Write init.png/.json: validation (and test) accuracy per epoch for both initialisations."""
    out = output_dir(out)
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    train_set, validation, test = data(TRAIN_SIZE, quick)
    runs, z = {}, {}
    for init, law in INITS.items():
        s = weight_std(init, N_IN)
        z[init] = z_at_start(init, train_set.x[:1000], seed)
        _, history = train(replace(CONFIG, init=init), train_set, epochs, seed, validation=validation, test=test,
                           monitor_train=False, progress=progress)
        accuracy = series(history, "validation_accuracy")
        runs[init] = {
            "weights": law, "s": s, "var_z_lecture": N_IN / 2 * s**2 + 1,  # n/2 s^2 + 1
            "var_z_measured_on_mnist": float(z[init].var()),
            "fraction_saturated_at_start": float((numpy.abs(z[init]) > SATURATED).mean()),
            "validation_accuracy": accuracy, "test_accuracy": series(history, "test_accuracy"),
            "first_epoch_validation_accuracy": accuracy[0], "final_validation_accuracy": accuracy[-1],
            "best_validation_accuracy": max(accuracy), "final_test_accuracy": history.epochs[-1]["test_accuracy"],
        }
    result = {"settings": settings(CONFIG, train_size=len(train_set), validation_size=len(validation),
                                   epochs=epochs, seed=seed, quick=quick), "runs": runs}
    write_json(out, "init", result)
    with replacing(out / "init.png") as path:
        _figure(runs, z, path)
    for init, r in runs.items():
        print(f"{init:6s} w ~ {r['weights']:12s} var(z) = n/2 s^2 + 1 = {r['var_z_lecture']:6.1f} "
              f"(measured on MNIST: {r['var_z_measured_on_mnist']:5.1f}, |z| > {SATURATED:g}: "
              f"{percent(r['fraction_saturated_at_start'])}); validation accuracy epoch 1 "
              f"{percent(r['first_epoch_validation_accuracy'])}, epoch {epochs} "
              f"{percent(r['final_validation_accuracy'])} (test {percent(r['final_test_accuracy'])})")
    return result


def _figure(runs: dict[str, dict], z: dict[str, numpy.ndarray], path: Path) -> None:
    from tiefnet.plot import epoch_axis, plt, save

    fig, (ax_acc, ax_z) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    colours = {"large": "tab:red", "scaled": "tab:blue"}
    for init, r in runs.items():
        epochs = range(1, len(r["validation_accuracy"]) + 1)
        ax_acc.plot(epochs, [100 * a for a in r["validation_accuracy"]], marker=".", color=colours[init],
                    label=f"{init}: w ~ {r['weights']}")
        ax_z.hist(z[init], bins=80, range=(-60, 60), histtype="step", lw=1.5, density=True, color=colours[init],
                  label=f"{init}: measured var(z) = {r['var_z_measured_on_mnist']:.1f}")
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy [%]",
               title="784-30-10, cross-entropy, η = 0.1, L2 λ = 5.0, 50,000 images")
    epoch_axis(ax_acc)
    ax_z.axvspan(-60, -SATURATED, color="grey", alpha=0.15, label=f"|z| > {SATURATED:g}: σ saturated")
    ax_z.axvspan(SATURATED, 60, color="grey", alpha=0.15)
    ax_z.set(xlabel="z of the hidden neurons before training (1000 images)", ylabel="density", yscale="log",
             title="var(z) = n/2 s² + 1: 393 (large) vs 1.5 (scaled)")
    for ax in (ax_acc, ax_z):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle("2.7.3 weight initialisation: N(0, 1) saturates the hidden neurons, N(0, 1/n_in) does not")
    save(fig, path)

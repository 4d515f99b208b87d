"""Lecture 2.7.1 "langsames Lernen": one sigmoid neuron a = sigma(w x + b), x = 1, y = 0.

Gradient descent with eta = 0.15 on the single example, from (w, b) = (0.6, 0.9), a = 0.82,
and from (2, 2), a = 0.98, for the quadratic cost C = (y - a)^2 / 2 and for cross-entropy.
Quadratic: dC/dw = dC/db = a sigma'(z), tiny where the neuron saturates, so the worse start
learns slower. Cross-entropy: delta = a - y, no sigma'(z), the worse start learns faster.
After 300 steps from (0.6, 0.9) with the quadratic cost the lecture reads w = -1.28,
b = -0.98, a = 0.09. (The lecture's text names scenario 2's start (4, 4) but gives a = 0.817
and plots Nielsen's (2, 2), a = 0.98; we use (2, 2).)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy

from tiefnet import backend
from tiefnet.experiments._common import output_dir, write_json
from tiefnet.nn import CrossEntropy, Dense, Quadratic, Sequential, Sigmoid
from tiefnet.optim import SGD
from tiefnet.files import replacing

DESCRIPTION = "2.7.1 slow learning: one sigmoid neuron, quadratic cost vs cross-entropy"
STARTS = {"scenario 1": (0.6, 0.9), "scenario 2": (2.0, 2.0)}  # (w, b)
COSTS = {"quadratic": Quadratic, "cross-entropy": CrossEntropy}
ETA, ITERATIONS = 0.15, 300
LECTURE = {"w": -1.28, "b": -0.98, "a": 0.09}  # scenario 1, quadratic cost, after 300 steps


def descend(w: float, b: float, loss, eta: float = ETA, iterations: int = ITERATIONS) -> dict[str, Any]:
    """Gradient descent on C(a(x=1), y=0) for a = sigma(w x + b); a before each step and at the end.

    Each step is w -> w - eta dC/dw, b -> b - eta dC/db (2.7.1); for the quadratic cost
    dC/dw = dC/db = (a - y) sigma'(z) = a sigma'(z), for cross-entropy a - y. Returns the final
    w, b, a and ``trajectory_a``."""
    with backend.default_dtype(numpy.float64):
        neuron = Sequential(Dense(1, 1), Sigmoid())
        neuron[0].params["W"][...] = w  # the lecture's w, as a 1x1 matrix
        neuron[0].params["b"][...] = b
        optimizer = SGD(eta=eta).bind(neuron, n=1)
        x, y = backend.asarray([[1.0]]), backend.asarray([[0.0]])
        trajectory = []
        for _ in range(iterations):
            a = neuron.forward(x, train=True)  # a = sigma(w x + b)
            trajectory.append(float(a[0, 0]))
            neuron.backward_from(loss, y)  # quadratic: (a - y) sigma'(z); cross-entropy: a - y
            optimizer.step()  # w -> w - eta dC/dw, b -> b - eta dC/db
        a = float(neuron.forward(x)[0, 0])
        trajectory.append(a)
        return {"w": float(neuron[0].params["W"][0, 0]), "b": float(neuron[0].params["b"][0]), "a": a,
                "trajectory_a": trajectory}


def run(out: str | Path, epochs: int | None = None, seed: int = 0, quick: bool = False,
        progress: bool = True) -> dict[str, Any]:
    """Write slow_learning.png/.json; ``epochs`` overrides the 300 iterations (it runs in milliseconds,
    so ``quick`` and ``seed`` change nothing)."""
    out = output_dir(out)
    iterations = epochs or ITERATIONS
    runs = {f"{scenario}, {cost}": {"start": {"w": w, "b": b}, "cost": cost,
                                    **descend(w, b, loss(), ETA, iterations)}
            for scenario, (w, b) in STARTS.items() for cost, loss in COSTS.items()}
    result = {"settings": {"x": 1.0, "y": 0.0, "eta": ETA, "iterations": iterations, "dtype": "float64",
                           "starts": {k: {"w": w, "b": b} for k, (w, b) in STARTS.items()}},
              "lecture_scenario_1_quadratic": LECTURE, "runs": runs}
    write_json(out, "slow_learning", result)
    with replacing(out / "slow_learning.png") as path:
        _figure(runs, iterations, path)
    for name, r in runs.items():
        print(f"{name:32s} start a = {r['trajectory_a'][0]:.3f} -> after {iterations} steps "
              f"w = {r['w']:.2f}, b = {r['b']:.2f}, a = {r['a']:.3f}")
    print(f"lecture (scenario 1, quadratic, 300 steps): w = {LECTURE['w']}, b = {LECTURE['b']}, a = {LECTURE['a']}")
    return result


def _figure(runs: dict[str, dict], iterations: int, path: Path) -> None:
    from tiefnet.plot import plt, save

    fig, ax = plt.subplots(figsize=(8, 4.5))
    styles = {"quadratic": "-", "cross-entropy": "--"}
    colours = {"scenario 1": "tab:blue", "scenario 2": "tab:red"}
    for name, r in runs.items():
        scenario = name.split(",")[0]
        start = r["start"]
        ax.plot(r["trajectory_a"], styles[r["cost"]], color=colours[scenario],
                label=f"{scenario}: w = {start['w']:g}, b = {start['b']:g}, {r['cost']}")
    ax.set(xlabel="iteration", ylabel="output a = σ(w·1 + b)", xlim=(0, iterations), ylim=(0, 1),
           title=f"2.7.1 slow learning: one neuron, x = 1, y = 0, η = {ETA}")
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, path)

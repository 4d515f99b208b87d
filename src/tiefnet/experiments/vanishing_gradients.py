"""Lecture 4.4: why LSTMs keep long-range dependencies, as the norm of dC/dh^t over t.

An untrained RNN and LSTM (default "scaled" init, H = 32 hidden units, float64) read a batch of
N = 16 random sequences x^1 ... x^T (T = 100, D = 4 features, x ~ N(0, 1)). The cost depends on
the last step only: C = sum over the batch of v . h^T, a fixed random vector v (N, H), so
dC/dh^T = v. We record ||dC/dh^t|| (the Euclidean norm per sequence, averaged over the batch)
for every t = 0 ... T and plot it against the distance T - t from the end.

How dC/dh^t is obtained: exactly, with the layers' own BPTT. dC/dh^t is the gradient with respect
to the *initial* state of the remaining sequence x^{t+1} ... x^T started from h^t (and c^t for the
LSTM): run the layer on x^1..x^t to get its state, then forward + backward on x^{t+1}..x^T from
that state; the layer's ``dstate`` after backward is (dC/dh^t[, dC/dc^t]). This is the 4.2
recursion dC/dh^{t-1} = W^T delta^t evaluated at every t (O(T^2) steps, well under a second here).

RNN: dC/dh^{t-1} = W^T diag(1 - (h^t)^2) dC/dh^t, a product of T - t such factors, which shrinks
geometrically (tanh' < 1, W of spectral radius about 1). LSTM: besides that path the cell state
carries dC/dc^{t-1} = dC/dc^t f^t + ..., one factor f^t per step (4.4): with the default forget
bias 1 (f about 0.7) the gradient still decays, but far slower than the RNN's; with forget bias 3
(f about 0.95) it hardly decays at all.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy

from tiefnet import backend
from tiefnet.experiments._common import output_dir, write_json
from tiefnet.nn import LSTM, RNN
from tiefnet.files import replacing

DESCRIPTION = "4.4 vanishing gradients: ||dC/dh_t|| over t for an RNN and an LSTM (cost on the last step only)"
N, D, H, T, QUICK_T = 16, 4, 32, 100, 50
CELLS = {  # label: (layer class, extra arguments)
    "RNN": (RNN, {}),
    "LSTM (forget bias 1, default)": (LSTM, {}),
    "LSTM (forget bias 3)": (LSTM, {"forget_bias": 3.0}),
}


def gradient_norms(layer, x, v) -> numpy.ndarray:
    """||dC/dh^t|| for t = 0 ... T (mean over the batch) for C = sum(v * h^T); see the module docstring."""
    steps = x.shape[1]
    norms = []
    for t in range(steps):
        state = None  # h^0 = 0 (and c^0 = 0)
        if t > 0:
            _, state = layer.forward_state(x[:, :t])  # x^1 .. x^t -> h^t (, c^t)
        layer.forward(x[:, t:], train=True, state=state)  # x^{t+1} .. x^T from h^t
        layer.backward(v, need_input_grad=False)  # dC/dh^T = v
        norms.append(_norm(layer.dstate[0]))  # dC/dh^t
    norms.append(_norm(v))  # t = T
    return numpy.array(norms)


def _norm(g) -> float:
    return float(numpy.linalg.norm(backend.to_numpy(g), axis=1).mean())


def run(out: str | Path, epochs: int | None = None, seed: int = 0, quick: bool = False,
        progress: bool = True) -> dict[str, Any]:
    """Write vanishing_gradients.png/.json. Nothing is trained, so ``epochs`` is ignored; ``quick``
    uses T = 50 instead of 100."""
    out = output_dir(out)
    steps = QUICK_T if quick else T
    runs = {}
    with backend.default_dtype(numpy.float64):
        rng = numpy.random.default_rng(seed)
        x = backend.asarray(rng.standard_normal((N, steps, D)))
        v = backend.asarray(rng.standard_normal((N, H)))
        for label, (cls, extra) in CELLS.items():
            layer = cls(D, H, rng=numpy.random.default_rng(seed + 1), return_sequences=False, **extra)
            norms = gradient_norms(layer, x, v)
            runs[label] = {"cell": cls.__name__.lower(), **extra, "norm": norms.tolist(),
                           "ratio_far_end": float(norms[0] / norms[-1])}  # ||dC/dh^0|| / ||dC/dh^T||
    rnn_far = runs["RNN"]["norm"][0]
    result = {"settings": {"N": N, "D": D, "H": H, "T": steps, "init": "scaled", "dtype": "float64", "seed": seed,
                           "cost": "C = sum(v * h^T), v ~ N(0, 1) fixed",
                           "norm": "||dC/dh^t||_2 per sequence, mean over the batch; index t = 0 ... T"},
              "runs": runs, "distance_from_end": list(range(steps, -1, -1)),
              "lstm_over_rnn_far_end": {k: r["norm"][0] / rnn_far for k, r in runs.items() if k != "RNN"}}
    write_json(out, "vanishing_gradients", result)
    with replacing(out / "vanishing_gradients.png") as path:
        _figure(runs, steps, path)
    print(f"||dC/dh^t|| / ||dC/dh^T|| at distance T - t = {steps} (t = 0) and 10:")
    for label, r in runs.items():
        print(f"  {label:32s} {r['ratio_far_end']:.2e}   {r['norm'][steps - 10] / r['norm'][-1]:.2e}")
    return result


def _figure(runs: dict[str, dict], steps: int, path: Path) -> None:
    from tiefnet.plot import plt, save

    fig, ax = plt.subplots(figsize=(8.5, 5))
    distance = numpy.arange(steps, -1, -1)  # T - t for t = 0 ... T
    for (label, r), colour in zip(runs.items(), ("tab:red", "tab:blue", "tab:green")):
        ax.semilogy(distance, numpy.array(r["norm"]) / r["norm"][-1], color=colour, lw=2,
                    label=f"{label}: {r['ratio_far_end']:.1e} at T - t = {steps}")
    ax.set(xlabel="distance from the last step, T - t", xlim=(0, steps),
           ylabel=r"$\|\partial C/\partial h^t\| \;/\; \|\partial C/\partial h^T\|$",
           title=f"4.4 vanishing gradients: untrained cells, H = {H}, T = {steps}, cost on $h^T$ only")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower left")
    save(fig, path)

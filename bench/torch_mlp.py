"""PyTorch peer: the same sigmoid MLP trained the way a PyTorch user would write it.

What is measured is the wall time of one training epoch of an
``nn.Sequential`` of ``Linear`` + ``Sigmoid`` layers in float32, trained with
``torch.optim.SGD`` (no momentum, no weight decay) in the idiomatic loop:

    perm = torch.randperm(N)
    for each slice of perm:  zero_grad / forward / loss / backward / step

The costs match Nielsen's definitions, averaged over the mini-batch so that a
step of ``lr = eta`` is the same update as Nielsen's ``eta / m * sum_x grad``:

* ``"quadratic"``:     mean over the batch of ``0.5 * ||a - y||^2``;
* ``"cross-entropy"``: mean over the batch of
  ``-sum_j [y_j ln a_j + (1 - y_j) ln(1 - a_j)]``, computed with
  ``BCEWithLogits`` on the output of the last ``Linear`` (numerically stable).

Weights use PyTorch's default ``Linear`` initialisation: the peer is "what a
PyTorch user would write", not a bit-for-bit clone of Nielsen's N(0, 1) start.
The data are converted to tensors outside the timed region; each epoch's time
includes the ``randperm`` shuffle.

Standalone use::

    python bench/torch_mlp.py

prints seconds per epoch (and test accuracy) for 784-30-10 quadratic
(batch 10, eta 3.0) and 784-100-10 cross-entropy (batch 100, eta 0.5), each
with 1 and 2 intra-op threads.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

COSTS = ("quadratic", "cross-entropy")


def build_mlp(sizes, activation="sigmoid"):
    """``nn.Sequential`` of ``Linear`` layers, each followed by the activation."""
    if activation != "sigmoid":
        raise ValueError(f"unsupported activation {activation!r} (only 'sigmoid')")
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.Sigmoid()]
    return nn.Sequential(*layers)


def time_epoch_torch(x, y_onehot, sizes=(784, 30, 10), activation="sigmoid", cost="quadratic",
                     batch_size=10, eta=3.0, threads=1, seed=0, epochs=1):
    """Train a fresh float32 MLP for ``epochs`` epochs; return ``(best_seconds_per_epoch, model)``.

    ``x`` is (N, 784), ``y_onehot`` is (N, 10) (NumPy arrays or tensors).  The
    number of intra-op threads is set to ``threads`` for the duration of the
    call and restored afterwards.
    """
    if cost not in COSTS:
        raise ValueError(f"cost must be one of {COSTS}, got {cost!r}")

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(seed)
        X = torch.as_tensor(np.asarray(x), dtype=torch.float32).contiguous()
        Y = torch.as_tensor(np.asarray(y_onehot), dtype=torch.float32).contiguous()
        n = X.shape[0]

        model = build_mlp(sizes, activation)
        logits_net = model[:-1]  # everything up to (and including) the last Linear
        optimizer = torch.optim.SGD(model.parameters(), lr=eta)
        bce = nn.BCEWithLogitsLoss(reduction="sum")

        def loss_fn(xb, yb):
            if cost == "quadratic":
                a = model(xb)
                return 0.5 * ((a - yb) ** 2).sum() / xb.shape[0]
            return bce(logits_net(xb), yb) / xb.shape[0]

        best = float("inf")
        for _ in range(epochs):
            start = time.perf_counter()
            perm = torch.randperm(n)
            X_shuf, Y_shuf = X[perm], Y[perm]
            for i in range(0, n, batch_size):
                xb, yb = X_shuf[i:i + batch_size], Y_shuf[i:i + batch_size]
                optimizer.zero_grad()
                loss = loss_fn(xb, yb)
                loss.backward()
                optimizer.step()
            best = min(best, time.perf_counter() - start)
        return best, model
    finally:
        torch.set_num_threads(previous_threads)


def torch_accuracy(model, x, labels):
    """Fraction of rows of ``x`` whose argmax output equals ``labels``."""
    with torch.no_grad():
        out = model(torch.as_tensor(np.asarray(x), dtype=torch.float32))
    pred = out.argmax(dim=1).numpy()
    return float(np.mean(pred == np.asarray(labels)))


def main():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from nielsen_network import load_mnist, one_hot  # local IDX reader

    x_train, y_train, x_test, y_test = load_mnist()
    y_onehot = one_hot(y_train)
    configs = [
        dict(sizes=(784, 30, 10), cost="quadratic", batch_size=10, eta=3.0),
        dict(sizes=(784, 100, 10), cost="cross-entropy", batch_size=100, eta=0.5),
    ]
    print(f"PyTorch {torch.__version__} MLP, sigmoid, float32, {len(x_train)} training images")
    for cfg in configs:
        for threads in (1, 2):
            seconds, model = time_epoch_torch(x_train, y_onehot, threads=threads, **cfg)
            acc = torch_accuracy(model, x_test, y_test)
            arch = "-".join(map(str, cfg["sizes"]))
            print(f"  {arch} {cfg['cost']:<13} batch {cfg['batch_size']:>3} eta {cfg['eta']:<3} "
                  f"threads {threads}: {seconds:.2f} s/epoch  (test acc after 1 epoch {acc:.4f})")


if __name__ == "__main__":
    main()

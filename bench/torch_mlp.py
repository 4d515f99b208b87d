"""PyTorch peer: the same sigmoid MLP trained the way a PyTorch user would write it.

What is measured is the wall time of one training epoch of an
``nn.Sequential`` of ``Linear`` + ``Sigmoid`` layers in float32, trained with
``torch.optim.SGD`` (no momentum; L2 weight decay on the weights only if asked)
in the idiomatic loop:

    perm = torch.randperm(N)
    for each slice of perm:  zero_grad / forward / loss / backward / step

The costs match Nielsen's definitions, averaged over the mini-batch so that a
step of ``lr = eta`` is the same update as Nielsen's ``eta / m * sum_x grad``:

* ``"quadratic"``:     mean over the batch of ``0.5 * ||a - y||^2``;
* ``"cross-entropy"``: mean over the batch of
  ``-sum_j [y_j ln a_j + (1 - y_j) ln(1 - a_j)]``, computed with
  ``BCEWithLogits`` on the output of the last ``Linear`` (numerically stable).

Weights use PyTorch's default ``Linear`` initialisation unless ``init`` asks for
Nielsen's (``"scaled"`` N(0, 1/n_in) or ``"large"`` N(0, 1), biases N(0, 1)):
the speed peer is "what a PyTorch user would write", not a bit-for-bit clone.
``TorchMLPTrainer`` keeps model and optimizer between timed epochs.
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
INITS = (None, "scaled", "large")


def build_mlp(sizes, activation="sigmoid", init=None, seed=None):
    """``nn.Sequential`` of ``Linear`` layers, each followed by the activation.

    ``init`` None keeps PyTorch's default ``Linear`` initialisation; ``"scaled"``
    draws weights from N(0, 1/n_in) and ``"large"`` from N(0, 1), biases from
    N(0, 1) in both cases (Nielsen's ``default_weight_initializer`` and
    ``large_weight_initializer``).  ``seed`` seeds torch's global generator first.
    """
    if activation != "sigmoid":
        raise ValueError(f"unsupported activation {activation!r} (only 'sigmoid')")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if seed is not None:
        torch.manual_seed(seed)
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        linear = nn.Linear(n_in, n_out)
        if init is not None:
            std = 1.0 if init == "large" else n_in ** -0.5
            with torch.no_grad():
                linear.weight.normal_(0.0, std)
                linear.bias.normal_(0.0, 1.0)
        layers += [linear, nn.Sigmoid()]
    return nn.Sequential(*layers)


class TorchMLPTrainer:
    """A float32 MLP and its SGD optimizer, trained one timed epoch per :meth:`epoch` call.

    Keeping the model between calls lets a benchmark interleave epochs of
    several frameworks (so a burst of load from other processes hits all of
    them) and still report the accuracy reached after all timed epochs.
    ``weight_decay`` (L2, applied to the weights only, not the biases) gives
    the step ``w -> (1 - eta * weight_decay) w - eta * grad``.
    """

    def __init__(self, x, y_onehot, sizes=(784, 30, 10), activation="sigmoid", cost="quadratic",
                 batch_size=10, eta=3.0, seed=0, init=None, weight_decay=0.0):
        if cost not in COSTS:
            raise ValueError(f"cost must be one of {COSTS}, got {cost!r}")
        self.cost, self.batch_size = cost, int(batch_size)
        self.X = torch.as_tensor(np.asarray(x), dtype=torch.float32).contiguous()
        self.Y = torch.as_tensor(np.asarray(y_onehot), dtype=torch.float32).contiguous()
        self.model = build_mlp(sizes, activation, init=init, seed=seed)
        self.logits_net = self.model[:-1]  # everything up to (and including) the last Linear
        weights = [p for name, p in self.model.named_parameters() if name.endswith("weight")]
        biases = [p for name, p in self.model.named_parameters() if name.endswith("bias")]
        groups = [{"params": weights, "weight_decay": weight_decay},
                  {"params": biases, "weight_decay": 0.0}]
        self.optimizer = torch.optim.SGD(groups, lr=eta)
        self.bce = nn.BCEWithLogitsLoss(reduction="sum")

    def loss(self, xb, yb):
        if self.cost == "quadratic":
            a = self.model(xb)
            return 0.5 * ((a - yb) ** 2).sum() / xb.shape[0]
        return self.bce(self.logits_net(xb), yb) / xb.shape[0]

    def epoch(self, threads=None):
        """Train one epoch (``randperm`` shuffle included); return its wall-clock seconds.

        ``threads`` sets torch's intra-op thread count for the epoch (restored after).
        """
        previous_threads = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            X, Y, n, m = self.X, self.Y, self.X.shape[0], self.batch_size
            optimizer, loss_fn = self.optimizer, self.loss
            start = time.perf_counter()
            perm = torch.randperm(n)
            X_shuf, Y_shuf = X[perm], Y[perm]
            for i in range(0, n, m):
                xb, yb = X_shuf[i:i + m], Y_shuf[i:i + m]
                optimizer.zero_grad()
                loss = loss_fn(xb, yb)
                loss.backward()
                optimizer.step()
            return time.perf_counter() - start
        finally:
            torch.set_num_threads(previous_threads)


def time_epoch_torch(x, y_onehot, sizes=(784, 30, 10), activation="sigmoid", cost="quadratic",
                     batch_size=10, eta=3.0, threads=1, seed=0, epochs=1, init=None):
    """Train a fresh float32 MLP for ``epochs`` epochs; return ``(best_seconds_per_epoch, model)``.

    ``x`` is (N, 784), ``y_onehot`` is (N, 10) (NumPy arrays or tensors).  The
    number of intra-op threads is set to ``threads`` for the duration of each
    epoch and restored afterwards.
    """
    trainer = TorchMLPTrainer(x, y_onehot, sizes, activation, cost, batch_size, eta, seed, init)
    best = min(trainer.epoch(threads) for _ in range(epochs))
    return best, trainer.model


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

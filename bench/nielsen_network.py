"""Baseline: the per-sample SGD network of Nielsen's "Neural Networks and Deep Learning".

This module re-implements, from the algorithm described in chapters 1 and 2 of
Michael Nielsen's book, the plain NumPy network of his ``network.py``:

* sigmoid neurons, quadratic cost ``C = 1/(2n) sum_x ||y(x) - a(x)||^2``;
* weights ``w[l]`` of shape ``(n_out, n_in)`` and column-vector biases
  ``b[l]`` of shape ``(n_out, 1)``, all drawn from N(0, 1), in float64;
* mini-batch SGD in which every mini-batch is processed **one sample at a
  time**: ``backprop`` is called on a single ``(784, 1)`` column vector and the
  per-sample gradients are summed.

That per-sample loop is deliberately kept: it is the reference against which
the vectorised implementations are measured.  What is measured is the wall time
of exactly one training epoch (shuffle + all mini-batch updates), with the data
already in Nielsen's list-of-column-vectors format (the conversion from
row-major arrays happens outside the timed region).

Standalone use::

    python bench/nielsen_network.py

trains Nielsen's default 784-30-10 network (batch 10, eta 3.0) for one epoch on
the first 50,000 MNIST training images and prints the epoch time and the
accuracy on the 10,000 test images.
"""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import numpy as np

MNIST_DIR = Path(__file__).resolve().parents[1] / "src" / "tiefnet" / "data" / "mnist"


# ---------------------------------------------------------------------------
# Activation
# ---------------------------------------------------------------------------
def sigmoid(z):
    """The logistic function 1 / (1 + e^-z), elementwise."""
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    """Derivative of the logistic function: sigma(z) * (1 - sigma(z))."""
    s = sigmoid(z)
    return s * (1.0 - s)


# ---------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------
class Network:
    """A fully connected sigmoid network trained by per-sample backpropagation.

    ``sizes`` lists the number of neurons per layer, input layer first, e.g.
    ``(784, 30, 10)``.  ``rng`` is a ``numpy.random.Generator`` (or a seed) used
    for the initial parameters and for shuffling in :meth:`SGD`.
    """

    def __init__(self, sizes, rng=None):
        self.rng = np.random.default_rng(rng)
        self.sizes = list(sizes)
        self.num_layers = len(self.sizes)
        fan_in, fan_out = self.sizes[:-1], self.sizes[1:]
        self.biases = [self.rng.standard_normal((n_out, 1)) for n_out in fan_out]
        self.weights = [
            self.rng.standard_normal((n_out, n_in)) for n_in, n_out in zip(fan_in, fan_out)
        ]

    def feedforward(self, a):
        """Output of the network for the input column vector (or matrix of columns) ``a``."""
        for w, b in zip(self.weights, self.biases):
            a = sigmoid(w @ a + b)
        return a

    def SGD(self, training_data, epochs, mini_batch_size, eta, test_data=None):
        """Train with mini-batch stochastic gradient descent.

        ``training_data`` is a list of ``(x, y)`` pairs of column vectors.  Each
        epoch shuffles it in place, cuts it into consecutive mini-batches of
        ``mini_batch_size`` and applies :meth:`update_mini_batch` to each.  If
        ``test_data`` (a list of ``(x, label)`` pairs) is given, the number of
        correctly classified test inputs is printed after every epoch.
        """
        training_data = list(training_data)
        n = len(training_data)
        for epoch in range(epochs):
            order = self.rng.permutation(n)
            training_data = [training_data[i] for i in order]
            for start in range(0, n, mini_batch_size):
                self.update_mini_batch(training_data[start:start + mini_batch_size], eta)
            if test_data is not None:
                print(f"Epoch {epoch}: {self.evaluate(test_data)} / {len(test_data)}")

    def update_mini_batch(self, mini_batch, eta):
        """One gradient-descent step on the average gradient of ``mini_batch``.

        The gradient is accumulated sample by sample: ``backprop`` sees one
        ``(x, y)`` pair of column vectors at a time.
        """
        sum_b = [np.zeros_like(b) for b in self.biases]
        sum_w = [np.zeros_like(w) for w in self.weights]
        for x, y in mini_batch:
            grad_b, grad_w = self.backprop(x, y)
            # summed into new lists, as network.py does (nabla_b = [nb + dnb for ...])
            sum_b = [acc + gb for acc, gb in zip(sum_b, grad_b)]
            sum_w = [acc + gw for acc, gw in zip(sum_w, grad_w)]
        step = eta / len(mini_batch)
        self.weights = [w - step * gw for w, gw in zip(self.weights, sum_w)]
        self.biases = [b - step * gb for b, gb in zip(self.biases, sum_b)]

    def backprop(self, x, y):
        """Gradient ``(grad_b, grad_w)`` of the quadratic cost C_x for one sample.

        Implements the four backpropagation equations:

        * BP1  delta^L = (a^L - y) * sigma'(z^L)
        * BP2  delta^l = ((w^{l+1})^T delta^{l+1}) * sigma'(z^l)
        * BP3  dC/db^l = delta^l
        * BP4  dC/dw^l = delta^l (a^{l-1})^T
        """
        grad_b = [None] * len(self.biases)
        grad_w = [None] * len(self.weights)

        # Forward pass, remembering every weighted input z and activation a.
        activation = x
        activations = [x]
        zs = []
        for w, b in zip(self.weights, self.biases):
            z = w @ activation + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)

        # Output layer (BP1), then its gradients (BP3, BP4).
        delta = self.cost_derivative(activations[-1], y) * sigmoid_prime(zs[-1])
        grad_b[-1] = delta
        grad_w[-1] = delta @ activations[-2].T

        # Propagate the error backwards through the hidden layers (BP2-BP4).
        for l in range(2, self.num_layers):
            delta = (self.weights[-l + 1].T @ delta) * sigmoid_prime(zs[-l])
            grad_b[-l] = delta
            grad_w[-l] = delta @ activations[-l - 1].T
        return grad_b, grad_w

    @staticmethod
    def cost_derivative(output_activations, y):
        """dC_x/da^L for the quadratic cost: a^L - y."""
        return output_activations - y

    def evaluate(self, test_data):
        """Number of ``(x, label)`` pairs whose most active output neuron equals ``label``."""
        return sum(int(np.argmax(self.feedforward(x)) == label) for x, label in test_data)


# ---------------------------------------------------------------------------
# Benchmark helpers
# ---------------------------------------------------------------------------
def to_nielsen_format(x, y_onehot):
    """Row-major arrays -> list of ``(x_col, y_col)`` float64 column-vector pairs."""
    x = np.asarray(x, dtype=np.float64)
    y_onehot = np.asarray(y_onehot, dtype=np.float64)
    return [(xi.reshape(-1, 1).copy(), yi.reshape(-1, 1).copy()) for xi, yi in zip(x, y_onehot)]


def train_one_epoch(x, y_onehot, sizes=(784, 30, 10), batch_size=10, eta=3.0, seed=0, n=None):
    """Build a ``Network`` and train it for one timed epoch; return ``(seconds, network)``.

    Only the epoch itself (shuffle + all mini-batch updates) is timed; the
    conversion of ``x`` (N, 784) and ``y_onehot`` (N, 10) to column vectors is
    not.  ``n`` restricts training to the first ``n`` samples.
    """
    if n is not None:
        x, y_onehot = x[:n], y_onehot[:n]
    training_data = to_nielsen_format(x, y_onehot)
    net = Network(sizes, rng=seed)
    start = time.perf_counter()
    net.SGD(training_data, epochs=1, mini_batch_size=batch_size, eta=eta)
    seconds = time.perf_counter() - start
    return seconds, net


def time_epoch(x, y_onehot, sizes=(784, 30, 10), batch_size=10, eta=3.0, seed=0, n=None):
    """Wall-clock seconds of one epoch of Nielsen-style per-sample SGD (see ``train_one_epoch``)."""
    seconds, _ = train_one_epoch(x, y_onehot, sizes, batch_size, eta, seed, n)
    return seconds


def accuracy(net, x, labels):
    """Fraction of rows of ``x`` (N, 784) that ``net`` classifies as ``labels`` (N,)."""
    out = net.feedforward(np.asarray(x, dtype=np.float64).T)  # (10, N): all columns at once
    return float(np.mean(np.argmax(out, axis=0) == np.asarray(labels)))


# ---------------------------------------------------------------------------
# Minimal MNIST loader (gzip IDX files)
# ---------------------------------------------------------------------------
def read_idx(path):
    """Read a gzip-compressed IDX file (unsigned-byte data) into a NumPy array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = data[0] + data[1], data[2], data[3]
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_mnist(directory=MNIST_DIR, n_train=50_000):
    """Return ``(x_train, y_train, x_test, y_test)``: images (N, 784) float32 in [0, 1], int labels.

    The training set is the first ``n_train`` images of the official training
    file (Nielsen keeps the remaining 10,000 as validation data).
    """
    directory = Path(directory)

    def images(name):
        return read_idx(directory / name).reshape(-1, 28 * 28).astype(np.float32) / 255.0

    def labels(name):
        return read_idx(directory / name).astype(np.int64)

    x_train = images("train-images-idx3-ubyte.gz")[:n_train]
    y_train = labels("train-labels-idx1-ubyte.gz")[:n_train]
    x_test = images("t10k-images-idx3-ubyte.gz")
    y_test = labels("t10k-labels-idx1-ubyte.gz")
    return x_train, y_train, x_test, y_test


def one_hot(labels, num_classes=10):
    """Integer labels (N,) -> one-hot float32 matrix (N, num_classes)."""
    out = np.zeros((len(labels), num_classes), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


def main():
    x_train, y_train, x_test, y_test = load_mnist()
    seconds, net = train_one_epoch(x_train, one_hot(y_train), sizes=(784, 30, 10),
                                   batch_size=10, eta=3.0, seed=0)
    print(f"Nielsen network.py baseline, 784-30-10, batch 10, eta 3.0, "
          f"{len(x_train)} training images")
    print(f"  one epoch: {seconds:.2f} s")
    print(f"  test accuracy after 1 epoch: {accuracy(net, x_test, y_test):.4f}")


if __name__ == "__main__":
    main()

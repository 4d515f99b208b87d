"""Data: MNIST from its IDX files, data expansion (lecture 2.7.3), a user's own digit images."""

from tiefnet.data.augment import expand, rotate, shift, skew
from tiefnet.data.image import load_digit
from tiefnet.data.mnist import Dataset, MnistSplits, load_mnist, one_hot, read_idx

__all__ = [
    "Dataset",
    "MnistSplits",
    "expand",
    "load_digit",
    "load_mnist",
    "one_hot",
    "read_idx",
    "rotate",
    "shift",
    "skew",
]

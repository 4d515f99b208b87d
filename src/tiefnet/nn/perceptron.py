"""Perceptrons (2.1): output = 1 if w . x + b > 0 else 0, with b = -threshold.

The lecture's examples: the festival decision, the NAND gate (w = (-2, -2), b = 3), and —
since NAND is universal — a half adder built from NAND perceptrons alone.
"""
from __future__ import annotations

import numpy


class Perceptron:
    """A single perceptron with weights ``w`` and bias ``b`` (b = -threshold), 2.1:

        output = 0 if sum_j w_j x_j <= threshold, 1 if sum_j w_j x_j > threshold
               = 1 if w . x + b > 0 else 0          ("output = 1 bedeutet, dass die Zelle feuert": it fires)

    ``NAND`` is the lecture's Perceptron([-2, -2], 3): (-2)·1 + (-2)·1 + 3 = -1 <= 0 gives 0, every
    other input 1.
    """

    def __init__(self, w, b: float):
        self.w = numpy.asarray(w, dtype=float)
        self.b = float(b)

    def __call__(self, *x: float) -> int:
        return int(numpy.dot(self.w, numpy.asarray(x, dtype=float)) + self.b > 0)


NAND = Perceptron([-2, -2], 3)  # the lecture's NAND gate


def festival(weather: int, friends: int, transport: int, threshold: float) -> int:
    """The lecture's decision "Soll ich das Festival besuchen?": w = (6, 2, 2), b = -threshold."""
    return Perceptron([6, 2, 2], -threshold)(weather, friends, transport)


def half_adder(x1: int, x2: int) -> tuple[int, int]:
    """(sum bit, carry bit) of x1 + x2 from five NAND perceptrons:
    n = x1 NAND x2; sum = (x1 NAND n) NAND (x2 NAND n); carry = n NAND n."""
    n = NAND(x1, x2)
    total = NAND(NAND(x1, n), NAND(x2, n))
    carry = NAND(n, n)
    return total, carry

"""Weight regularisation (2.7.3): C = C_0 + lambda/(2n) sum w^2 (L2) or C_0 + lambda/n sum |w| (L1).

Only weights are regularised, not biases; n is the size of the whole training set.
"""
from __future__ import annotations

from tiefnet.backend import Array, xp
from tiefnet.errors import ConfigError


class Regularizer:
    name = ""

    def __init__(self, lmbda: float):
        if not float(lmbda) >= 0.0:
            raise ConfigError(f"{type(self).__name__}: lmbda={lmbda} must be >= 0")
        self.lmbda = float(lmbda)

    def cost(self, weights: list[Array], n: int) -> float:
        raise NotImplementedError

    def grad(self, W: Array, n: int) -> Array:
        """The extra term of dC/dw."""
        raise NotImplementedError

    def shrink(self, W: Array, eta: float, n: int) -> None:
        """The regulariser's part of a plain gradient-descent step, applied to W in place."""
        W -= eta * self.grad(W, n)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lmbda={self.lmbda})"


class L2(Regularizer):
    """C = C_0 + lambda/(2n) sum_k w_k^2 (2.7.3): dC/dw = dC_0/dw + (lambda/n) w; a plain SGD step is
    w -> (1 - eta lambda/n) w - eta dC_0/dw (the weight decay)."""

    name = "l2"

    def cost(self, weights: list[Array], n: int) -> float:
        return self.lmbda / (2 * n) * float(sum((W * W).sum() for W in weights))

    def grad(self, W: Array, n: int) -> Array:
        return (self.lmbda / n) * W

    def shrink(self, W: Array, eta: float, n: int) -> None:
        """w -> (1 - eta lambda/n) w in place: the weight decay of one SGD step (2.7.3)."""
        W *= 1.0 - eta * self.lmbda / n  # the rescaling factor 1 - eta lambda/n (2.7.3)


class L1(Regularizer):
    """C = C_0 + lambda/n sum_k |w_k| (2.7.3): dC/dw = dC_0/dw + (lambda/n) sgn(w); a plain SGD step is
    w -> w - (eta lambda/n) sgn(w) - eta dC_0/dw: small weights shrink faster than under L2."""

    name = "l1"

    def cost(self, weights: list[Array], n: int) -> float:
        return self.lmbda / n * float(sum(xp.abs(W).sum() for W in weights))

    def grad(self, W: Array, n: int) -> Array:
        return (self.lmbda / n) * xp.sign(W)  # sgn(0) = 0, as in the lecture

    def shrink(self, W: Array, eta: float, n: int) -> None:
        """w -> w - (eta lambda/n) sgn(w) in place: L1's part of one SGD step (2.7.3)."""
        W -= (eta * self.lmbda / n) * xp.sign(W)  # w -> w - (eta lambda/n) sgn(w)


REGULARIZERS = {"l2": L2, "l1": L1}

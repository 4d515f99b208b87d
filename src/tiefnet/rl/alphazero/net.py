"""f_theta (5.5): a residual tower with a policy head p and a value head nu, (p, nu) = f_theta(s).

    s -> conv 3x3 - BatchNorm - ReLU                                  (the stem)
      -> blocks x [ g(x) + x, g = conv - BN - ReLU - conv - BN ] - ReLU  (5.5: f(x) = g(x) + x)
      -> Parallel(policy head: conv 1x1 (2) - BN - ReLU - Dense -> A logits,
                  value head:  conv 1x1 (1) - BN - ReLU - Dense - ReLU - Dense -> 1 - tanh)

AlphaGo Zero's Go net has 39 such blocks of 256 filters; the defaults here are small.
The :class:`Evaluator` turns the logits into p over the legal moves only and gives nu for the
player to move, for a whole mini-batch of positions per call (batched leaf evaluation).
"""
from __future__ import annotations

from typing import Sequence

import numpy

from tiefnet.backend import xp
from tiefnet.errors import ConfigError
from tiefnet.nn import BatchNorm2d, Conv2d, Dense, Flatten, Layer, Parallel, ReLU, Residual, Sequential, Tanh
from tiefnet.rl.games.base import Game, State

VALUE_HIDDEN = 64  # AlphaGo Zero: 256


def residual_block(filters: int, rng: numpy.random.Generator) -> Layer:
    """g(x) + x with g = conv 3x3 - BatchNorm - ReLU - conv 3x3 - BatchNorm (5.5)."""
    g = Sequential(Conv2d(filters, filters, 3, padding=1, init="scaled", rng=rng), BatchNorm2d(filters), ReLU(),
                   Conv2d(filters, filters, 3, padding=1, init="scaled", rng=rng), BatchNorm2d(filters))
    return Residual(g)


def policy_value_net(game: Game, blocks: int = 5, filters: int = 64,
                     rng: numpy.random.Generator | None = None) -> Sequential:
    """(p, nu) = f_theta(s) (5.4) for ``game``: a stem, ``blocks`` residual blocks f(x) = g(x) + x (5.5) of
    ``filters`` channels, a policy head (logits of p) and a value head (nu = tanh(.) in [-1, 1]).

    Shapes: input (N, 2T + 1, H, W) planes, output (logits (N, A), nu (N, 1)).
    """
    for name, value, low, high in (("blocks", blocks, 0, 64), ("filters", filters, 1, 1024)):
        if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
            raise ConfigError(f"policy_value_net: {name}={value!r} must be a whole number in {low}..{high}")
    rng = numpy.random.default_rng() if rng is None else rng
    H, W = game.board_shape
    stem = [Conv2d(game.plane_count, filters, 3, padding=1, rng=rng), BatchNorm2d(filters), ReLU()]
    tower = []
    for _ in range(blocks):
        tower += [residual_block(filters, rng), ReLU()]
    policy = Sequential(Conv2d(filters, 2, 1, rng=rng), BatchNorm2d(2), ReLU(), Flatten(),
                        Dense(2 * H * W, game.action_count, rng=rng))
    value = Sequential(Conv2d(filters, 1, 1, rng=rng), BatchNorm2d(1), ReLU(), Flatten(),
                       Dense(H * W, VALUE_HIDDEN, rng=rng), ReLU(), Dense(VALUE_HIDDEN, 1, rng=rng), Tanh())
    return Sequential(*stem, *tower, Parallel(policy, value))


def masked_softmax(logits: numpy.ndarray, mask: numpy.ndarray) -> numpy.ndarray:
    """p over the legal moves: softmax of the logits with illegal moves at probability 0. (N, A)."""
    z = numpy.where(mask, logits, -numpy.inf)
    z = z - z.max(axis=1, keepdims=True)
    e = numpy.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class Evaluator:
    """(P(s, .), nu(s)) = f_theta(s) for many positions in one forward pass (test mode: BatchNorm's
    running statistics). Counts positions and calls, for the speed figures."""

    def __init__(self, game: Game, net: Layer, max_batch: int = 1024) -> None:
        self.game, self.net, self.max_batch = game, net, int(max_batch)
        self.positions = 0
        self.calls = 0

    def __call__(self, states: Sequence[State]) -> tuple[list[numpy.ndarray], numpy.ndarray]:
        """For each state: P over its legal actions (in ``game.legal_actions`` order) and nu, (n,)."""
        if not states:
            return [], numpy.zeros(0, numpy.float32)
        planes = numpy.stack([self.game.encode(s) for s in states])  # (n, 2T + 1, H, W)
        masks = numpy.stack([self.game.legal_mask(s) for s in states])  # (n, A)
        logits, nu = self.forward(planes)
        p = masked_softmax(logits, masks)
        return [p[i, masks[i]] for i in range(len(states))], nu[:, 0]

    def forward(self, planes: numpy.ndarray) -> tuple[numpy.ndarray, numpy.ndarray]:
        """(logits (n, A), nu (n, 1)) as NumPy arrays, in chunks of at most ``max_batch``."""
        logits, values = [], []
        for i in range(0, planes.shape[0], self.max_batch):
            l, v = self.net.forward(xp.asarray(planes[i: i + self.max_batch]))
            logits.append(numpy.asarray(_to_cpu(l), numpy.float64))
            values.append(numpy.asarray(_to_cpu(v), numpy.float64))
        self.positions += planes.shape[0]
        self.calls += 1
        return numpy.concatenate(logits), numpy.concatenate(values)


def _to_cpu(a):
    return a.get() if hasattr(a, "get") else a

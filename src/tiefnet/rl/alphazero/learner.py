"""Step (b) of 5.4: f_theta learns from the self-play tuples (s_t, pi_t, z_t) of a replay window.

    L = (z - nu)^2 - pi . log p + c ||theta||^2        (the lecture's cost, nn.PolicyValue)

Mini-batches are drawn uniformly from the most recent ``window`` positions, each in a random
symmetry of the board (the eight rotations and reflections of Go and tic-tac-toe, the mirror
image of Connect Four): the rules are symmetric, so every copy is a correct example.
"""
from __future__ import annotations

from typing import Sequence

import numpy

from tiefnet import backend
from tiefnet.errors import CheckpointError, TrainingDiverged
from tiefnet.limits import check_allocation
from tiefnet.nn import L2, Layer, PolicyValue
from tiefnet.optim import Adam, Momentum, Optimizer
from tiefnet.rl.alphazero.selfplay import GameRecord
from tiefnet.rl.games.base import Game


class ReplayWindow:
    """The last ``capacity`` training positions, a ring buffer of arrays.

    planes (capacity, C, H, W) uint8, pi (capacity, A) float32, z (capacity,) float32: the value
    target, the result z_t or its mix with the search's q_t.
    """

    def __init__(self, game: Game, capacity: int) -> None:
        H, W = game.board_shape
        C, A = game.plane_count, game.action_count
        check_allocation({"planes": capacity * C * H * W, "pi": 4 * capacity * A, "z": 4 * capacity},
                         f"a replay window of {capacity} positions")
        self.game, self.capacity = game, int(capacity)
        self.planes = numpy.zeros((capacity, C, H, W), numpy.uint8)
        self.pi = numpy.zeros((capacity, A), numpy.float32)
        self.z = numpy.zeros(capacity, numpy.float32)
        self.size = 0  # positions held
        self.next = 0  # where the next one goes

    def __len__(self) -> int:
        return self.size

    def add(self, records: Sequence[GameRecord], q_weight: float = 0.0) -> None:
        """The recorded positions of ``records``, with the value target (1 - w) z + w q (w = ``q_weight``)."""
        for r in records:
            for planes, pi, z in zip(r.planes, r.pi, r.value_target(q_weight)):
                self.planes[self.next], self.pi[self.next], self.z[self.next] = planes, pi, z
                self.next = (self.next + 1) % self.capacity
                self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: numpy.random.Generator) -> tuple[numpy.ndarray, ...]:
        """A mini-batch (planes float32 (B, C, H, W), pi (B, A), z (B,)), each in a random symmetry."""
        idx = rng.integers(0, self.size, batch_size)
        k = rng.integers(0, self.game.symmetry_count, batch_size)  # a symmetry per position
        planes = numpy.empty((batch_size, *self.planes.shape[1:]), numpy.float32)
        pi = numpy.empty((batch_size, self.pi.shape[1]), numpy.float32)
        for s in numpy.unique(k):
            rows = numpy.flatnonzero(k == s)
            planes[rows], pi[rows] = self.game.transform(self.planes[idx[rows]], self.pi[idx[rows]], int(s))
        return planes, pi, self.z[idx]

    def state_arrays(self) -> dict[str, numpy.ndarray]:
        n = self.size
        order = (numpy.arange(n) + (self.next if n == self.capacity else 0)) % self.capacity  # oldest first
        return {"planes": self.planes[order], "pi": self.pi[order], "z": self.z[order]}

    def load_state_arrays(self, arrays: dict[str, numpy.ndarray]) -> None:
        """Refill from :meth:`state_arrays` output, every shape and value checked (files are not trusted)."""
        try:
            planes, pi, z = arrays["planes"], arrays["pi"], arrays["z"]
        except KeyError as error:
            raise CheckpointError(f"replay window: array {error} missing") from None
        n = planes.shape[0] if planes.ndim else -1
        if planes.shape[1:] != self.planes.shape[1:] or pi.shape != (n, self.pi.shape[1]) or z.shape != (n,) \
                or not 0 <= n <= self.capacity:
            raise CheckpointError(f"replay window: shapes {planes.shape}, {pi.shape}, {z.shape} do not fit "
                                  f"{self.capacity} positions of {self.planes.shape[1:]} planes")
        if planes.dtype != numpy.uint8 or planes.max(initial=0) > 1 or not numpy.isfinite(pi).all() \
                or (pi < 0).any() or not (numpy.abs(z) <= 1.0).all():
            raise CheckpointError("replay window: planes must be 0/1, pi finite and >= 0, z in [-1, 1]")
        self.planes[:n], self.pi[:n], self.z[:n] = planes, pi, z
        self.size, self.next = n, n % self.capacity


def make_optimizer(net: Layer, optimizer: str, eta: float, c: float) -> Optimizer:
    """The optimizer with the lecture's c ||theta||^2 as L2 on the weights: lmbda = 2c, n = 1."""
    regularizer = L2(2.0 * c)  # lmbda/(2n) ||w||^2 = c ||w||^2
    opt = Adam(eta, regularizer=regularizer) if optimizer == "adam" else Momentum(eta, 0.9, regularizer=regularizer)
    return opt.bind(net, n=1)


def train(net: Layer, optimizer: Optimizer, replay: ReplayWindow, steps: int, batch_size: int,
          rng: numpy.random.Generator) -> dict[str, float]:
    """``steps`` gradient steps on mini-batches of the window; the mean value and policy costs."""
    loss = PolicyValue()
    value_costs, policy_costs = [], []
    for _ in range(steps):
        planes, pi, z = replay.sample(batch_size, rng)
        pi_, z_ = backend.asarray(pi), backend.asarray(z)
        outputs = net.forward(backend.asarray(planes), True)
        value, policy = loss.parts(outputs, pi_, z_)
        net.backward_from(loss, pi_, z_)
        optimizer.step()
        value_costs.append(value)
        policy_costs.append(policy)
    if not numpy.isfinite(value_costs + policy_costs).all():
        raise TrainingDiverged("the AlphaZero cost became NaN or infinite; try a smaller --eta")
    return {"value_loss": float(numpy.mean(value_costs)) if steps else float("nan"),
            "policy_loss": float(numpy.mean(policy_costs)) if steps else float("nan")}

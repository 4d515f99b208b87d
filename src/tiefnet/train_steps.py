"""A training step (2.5, 2.6) and what runs fit's steps: in this process, or with each mini-batch
cut into parts on processes (tiefnet.parallel), as tiefnet.plans measures faster per batch shape.
"""
from __future__ import annotations

import functools

from tiefnet import backend
from tiefnet.backend import Array
from tiefnet.nn.layer import Layer
from tiefnet.nn.losses import Loss
from tiefnet.optim import Optimizer, clip_gradients


def train_step(model: Layer, loss: Loss, optimizer: Optimizer, x: Array, *targets: Array,
               clip: float | None = None) -> Array:
    """One gradient-descent step on one mini-batch, for any model and cost; returns the output a^L.

    The lecture's algorithm (2.6, "Direkte Implementierung von (BP1) bis (BP4)"): the
    feedforward pass a^l = sigma(z^l) (caching z^l, a^l), (BP1)-(BP4) from the cost's gradient at a^L and ``targets``
    (y, or the actions and targets of TDError), global-norm clipping to ``clip`` if given,
    then the optimizer's update v -> v - eta grad.
    """
    a = model.forward(x, True)  # feedforward pass, caches z^l, a^l
    model.backward_from(loss, *targets)  # (BP1)-(BP4)
    if clip is not None:
        clip_gradients(model, clip)
    optimizer.step()
    return a


def gradients(model: Layer, loss: Loss, x: Array, *targets: Array) -> Array:
    """Feedforward (caching z^l, a^l), then (BP1)-(BP4): every parameter's gradient; returns a^L."""
    a = model.forward(x, True)
    model.backward_from(loss, *targets)
    return a


class _OneProcess:
    """Training steps in this process (on threads within layers, backend.split_batch):
    ``step(x, *targets, clip=None)`` is train_step on the model (bound once: it runs at every step)."""

    def __init__(self, model: Layer, loss: Loss, optimizer: Optimizer):
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.step = functools.partial(train_step, model, loss, optimizer)

    def close(self) -> None:
        """Let go of anything started for the steps (the next step starts it again)."""


class _Processes(_OneProcess):
    """Training steps whose mini-batch is cut into parts, one per process (tiefnet.parallel), or
    computed in this process where that is faster: tiefnet.plans measures the two per batch shape
    (without measuring: the parts from SPLIT_FROM samples on)."""

    SPLIT_FROM = 32  # samples per mini-batch from which the default is to cut it into parts

    def __init__(self, model: Layer, loss: Loss, optimizer: Optimizer, parts: int):
        from tiefnet.parallel import DataParallel

        super().__init__(model, loss, optimizer)
        self.engine = DataParallel(model, loss, optimizer, parts)
        self._how: dict[tuple, str] = {}  # batch shape -> "parts" or "here", once decided
        self.step = self._step

    def _step(self, x: Array, *targets: Array, clip: float | None = None) -> None:
        how = self._how.get(x.shape)
        if how is None:  # a new batch shape: tiefnet.plans decides (and computes this step's gradients)
            how = self._how[x.shape] = self._choose(x, *targets)
        elif how == "parts":
            self.engine.gradients(x, *targets)
        else:
            gradients(self.model, self.loss, x, *targets)
        if clip is not None:
            clip_gradients(self.model, clip)
        self.optimizer.step()

    def _choose(self, x: Array, *targets: Array) -> str:
        """plans.choose between the two ways for this batch shape; each measured call draws this step's
        dropout masks (the generators are put back before it). Returns the way chosen."""
        from tiefnet import plans
        from tiefnet.parallel import generator_states, set_generator_states

        states = generator_states(self.model)

        def way(name: str, compute):
            def call() -> str:
                set_generator_states(self.model, states)
                compute()
                return name
            return call

        parts = way("parts", lambda: self.engine.gradients(x, *targets))
        here = way("here", lambda: gradients(self.model, self.loss, x, *targets))
        variants = {"parts": parts, "here": here} if x.shape[0] >= self.SPLIT_FROM else {"here": here, "parts": parts}
        return plans.choose("fit.split", (tuple(x.shape), self.engine.parts), variants)

    def close(self) -> None:
        self.engine.close()


def step_runner(model: Layer, loss: Loss, optimizer: Optimizer, reserve: int = 0):
    """What runs fit's training steps, ``runner.step(x, *targets, clip=None)`` then ``runner.close()``:
    with backend.thread_limit(T >= 2) on the CPU, each mini-batch is cut into T - ``reserve`` parts
    computed by as many processes (tiefnet.parallel) where the model allows it; otherwise one process.
    (fit reserves a core for measuring the previous epoch.)"""
    from tiefnet.parallel import can_fork, splittable

    parts = backend.threads() - reserve
    if parts >= 2 and can_fork() and splittable(model) and optimizer.groups and not optimizer._plain:
        return _Processes(model, loss, optimizer, parts)
    return _OneProcess(model, loss, optimizer)

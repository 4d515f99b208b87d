"""fit at thread_limit(T >= 2): each epoch measured in a forked process on a core of its own while the
next one trains (:class:`Evaluation`), and what it takes for the result to stay the one-thread result
bit for bit: a :class:`Snapshot` of everything an epoch changes, to put an epoch's state back for its
checkpoint and callbacks, and to undo an epoch trained ahead when they change :func:`settings`.
"""
from __future__ import annotations

import json
from typing import Callable

import numpy

from tiefnet import backend
from tiefnet.errors import TiefnetError
from tiefnet.nn.layer import Layer
from tiefnet.optim import Optimizer


def settings(model: Layer, optimizer: Optimizer) -> tuple:
    """What a callback may change that the next epoch trains with, besides the arrays: every layer's
    configuration, the trainable flags (the tree's generation) and the optimizer's own numbers."""
    from tiefnet.nn import layer as tree

    layers = tuple(repr(layer.to_config()) for _, layer in model.walk())
    numbers = tuple(sorted((k, v) for k, v in vars(optimizer).items() if isinstance(v, (int, float, str, bool))))
    regularizer = optimizer.regularizer
    reg = repr(sorted(vars(regularizer).items())) if regularizer is not None else ""
    return layers, numbers, reg, tree.generation()


class Snapshot:
    """Everything a training epoch changes, copied: the model's arrays (parameters, buffers), the
    optimizer's state (its numbers, eta among them, and arrays) and every generator's state.
    ``restore`` puts it back (an epoch trained ahead is undone), without the checks a checkpoint
    from a file gets: these values may be NaN, the divergence is reported afterwards."""

    def __init__(self, model: Layer, optimizer: Optimizer, rng: numpy.random.Generator):
        from tiefnet.parallel import generator_states

        self.arrays = {key: value.copy() for key, value in model.arrays().items()}
        meta, arrays = optimizer.state_dict()
        self.optimizer = (dict(meta), {key: value.copy() for key, value in arrays.items()})
        self.rng, self.layer_rngs = rng.bit_generator.state, generator_states(model)

    def holds(self, model: Layer) -> bool:
        """Whether the model's arrays are still these (bit for bit)."""
        return all(numpy.array_equal(value, self.arrays[key], equal_nan=True)
                   for key, value in model.arrays().items())

    def restore(self, model: Layer, optimizer: Optimizer, rng: numpy.random.Generator) -> None:
        from tiefnet.parallel import set_generator_states

        for key, value in model.arrays().items():
            value[...] = self.arrays[key]
        meta, arrays = self.optimizer
        _, live = optimizer.state_dict()  # the optimizer's own arrays
        for key, value in arrays.items():
            live[key][...] = value
        for key, value in meta.items():
            setattr(optimizer, key, value)
        rng.bit_generator.state = self.rng
        set_generator_states(model, self.layer_rngs)


class Evaluation:
    """``measure(epoch)`` in a process forked now, on a CPU core of its own, for the model as it is
    at this moment (the ``snapshot``), while this process trains on. ``result()`` waits for
    (metrics, finite); the implementations the child measured (tiefnet.plans) come back with them."""

    def __init__(self, epoch: int, seconds: float, snapshot: Snapshot, model: Layer, optimizer: Optimizer,
                 measure: Callable):
        from tiefnet.parallel import fork

        self.epoch, self.seconds, self.snapshot = epoch, seconds, snapshot
        self._process, self._pipe = fork(_evaluate_here, epoch, snapshot, model, optimizer, measure)
        self._result: tuple[dict[str, float], bool] | None = None

    def ready(self, timeout: float = 0.0) -> bool:
        return self._result is not None or self._pipe.poll(timeout)

    def result(self) -> tuple[dict[str, float], bool]:
        from tiefnet import plans
        from tiefnet.parallel import receive

        if self._result is None:
            try:
                reply = json.loads(receive(self._pipe, self._process, f"the evaluation of epoch {self.epoch}"))
            finally:
                self.close()
            if "error" in reply:
                raise TiefnetError(f"the evaluation of epoch {self.epoch} failed: {reply['error']}")
            plans.adopt(reply.get("plans", []), notify=True)
            metrics = reply["metrics"]
            metrics["seconds"] = self.seconds
            self._result = (metrics, bool(reply["finite"]))
        return self._result

    def close(self) -> None:
        from tiefnet.parallel import stop

        stop(self._process, self._pipe)


def _evaluate_here(pipe, epoch: int, snapshot: Snapshot, model: Layer, optimizer: Optimizer,
                   measure: Callable) -> None:
    """The evaluation process: the parameters in memory of its own, set to the snapshot (shared memory
    of data-parallel workers would show the parent's later updates), then the metrics back as JSON."""
    from tiefnet import plans

    for group in optimizer.groups:
        group.relocate(numpy.empty_like(group.p))
    known = len(plans.export())
    try:
        for key, value in model.arrays().items():
            value[...] = snapshot.arrays[key]
        metrics, finite = measure(epoch)
        reply = {"metrics": metrics, "finite": finite, "plans": plans.export()[known:]}
    except BaseException as exc:  # reported by result() in the parent
        reply = {"error": f"{type(exc).__name__}: {exc}"}
    pipe.send_bytes(json.dumps(reply).encode())


def measures_aside(model: Layer, monitor_train: bool, val_data, test_data) -> bool:
    """Whether fit measures each epoch on a core of its own while the next one trains: with
    thread_limit(T >= 2) on the CPU, where there is something to measure, and no layer carries a
    state from one forward to the next (an evaluation forward would move it on in one thread)."""
    from tiefnet.parallel import can_fork

    something = monitor_train or val_data is not None or test_data is not None
    stateful = any(getattr(layer, "stateful", False) for _, layer in model.walk())
    return backend.threads() >= 2 and can_fork() and something and not stateful

"""Data parallelism for training steps (2.5): one mini-batch, cut into parts, on several CPU cores.

A mini-batch step's gradient is the mean of the per-sample gradients (the losses hold the 1/N), so
it can be computed in parts: each of P processes runs feedforward and backpropagation (BP1-BP4) on
its n_p samples, and

    dC/dw = sum_p (n_p / N) (dC/dw)_p

is their weighted sum. :class:`DataParallel` runs part 0 in this process and the others in worker
processes forked from it, one hand-off per mini-batch (not one per layer): each worker has its own
Python interpreter, so the many small NumPy calls of a step at mini-batch 10 run at once instead of
taking turns for one interpreter lock, as threads of one process do. The parameters live in shared
memory (an optimizer's flat arrays, see :class:`tiefnet.optim.Group`): the update in this process
is what every worker computes with at the next step. Each worker writes its gradients into shared
memory of its own; the parts' inputs travel through shared memory too.

Dropout keeps the lecture's semantics: every part draws the same generator stream as the whole
batch would (one mask per mini-batch, or the whole batch's per-sample masks, of which each part
takes its rows; see ``backend.batch_part``), so the generators of this process and of the workers
stay in step. Layers whose output couples the samples of a batch (batch normalisation in training,
a stateful recurrent layer's carried state) cannot be split: :func:`splittable` says so, and such a
model trains in one process.

The result equals the one-process step up to the order of floating-point sums; it is the same from
run to run for a fixed number of parts.
"""
from __future__ import annotations

import json
import mmap
import multiprocessing
import os
import signal
from typing import Any

import numpy

from tiefnet import backend
from tiefnet.backend import Array
from tiefnet.errors import ConfigError, TiefnetError
from tiefnet.nn.layer import Layer


def can_fork() -> bool:
    """Whether this platform forks processes (Linux, macOS; not Windows): data parallelism and
    fit's measuring of an epoch beside the next need it, and without it run in one process."""
    return backend.DEVICE == "cpu" and "fork" in multiprocessing.get_all_start_methods()


def splittable(model: Layer) -> bool:
    """Whether a training step of ``model`` may be computed in parts of the mini-batch: no layer
    couples the samples of a batch (``batch_coupled``)."""
    return not any(layer.batch_coupled for _, layer in model.walk())


def shared_array(template: numpy.ndarray) -> numpy.ndarray:
    """A copy of ``template`` in anonymous shared memory: a process forked after this sees the same pages."""
    buffer = mmap.mmap(-1, max(template.nbytes, 1))  # MAP_SHARED | MAP_ANONYMOUS
    out = numpy.frombuffer(buffer, dtype=template.dtype, count=template.size).reshape(template.shape)
    out[...] = template
    return out


class _Inbox:
    """Shared memory for one worker's part of the step's inputs (x and the targets), sized at fork."""

    def __init__(self, parts: list[numpy.ndarray]):
        self.capacity = [max(int(p.nbytes), 1) for p in parts]
        self.buffers = [mmap.mmap(-1, c) for c in self.capacity]

    def fits(self, parts: list[numpy.ndarray]) -> bool:
        return len(parts) == len(self.capacity) and all(p.nbytes <= c for p, c in zip(parts, self.capacity))

    def view(self, k: int, shape, dtype) -> numpy.ndarray:
        dtype = numpy.dtype(dtype)
        count = int(numpy.prod(shape, dtype=numpy.int64))
        return numpy.frombuffer(self.buffers[k], dtype=dtype, count=count).reshape(shape)


class DataParallel:
    """Training steps of ``model`` under ``loss`` and ``optimizer``, each mini-batch cut into
    ``parts`` parts: part 0 here, the others in forked worker processes (started at the first step
    and again when a larger mini-batch arrives); ``close()`` (or ``with``) stops them.

    ``step(x, *targets, clip=None)`` is :func:`tiefnet.train.train_step` computed in parts: the
    parts' gradients added with weights n_p / N, then global-norm clipping, then the update.
    A mini-batch smaller than 2 * ``min_part`` samples runs here alone.
    """

    def __init__(self, model: Layer, loss, optimizer, parts: int = 2, min_part: int = 2):
        if not can_fork():
            raise ConfigError("DataParallel splits a mini-batch over forked CPU processes: on a GPU, or where "
                              "processes cannot be forked (Windows), train in one process")
        if parts < 2:
            raise ConfigError(f"DataParallel: parts={parts} must be at least 2")
        if not splittable(model):
            raise ConfigError("DataParallel: a layer of this model couples the samples of a batch "
                              "(batch normalisation, a stateful recurrent layer): it trains in one process")
        if not optimizer.groups or optimizer._plain:
            raise ConfigError("DataParallel: bind the optimizer to the model first")
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.parts, self.min_part = int(parts), int(min_part)
        self._workers: list[tuple[Any, Any, _Inbox, list[numpy.ndarray]]] = []  # (process, pipe, inbox, grads)
        self._shared = False

    def __enter__(self) -> "DataParallel":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the step -------------------------------------------------------------------------
    def step(self, x: Array, *targets: Array, clip: float | None = None) -> None:
        """A training step: :meth:`gradients`, global-norm clipping to ``clip`` if given, the update."""
        from tiefnet.optim import clip_gradients

        self.gradients(x, *targets)
        if clip is not None:
            clip_gradients(self.model, clip)
        self.optimizer.step()

    def gradients(self, x: Array, *targets: Array) -> None:
        """Feedforward and backpropagation of the mini-batch in parts: the parameters' gradients
        (the optimizer's flat arrays) become sum_p (n_p / N) (dC/dw)_p. May be repeated (tiefnet.plans)."""
        N = x.shape[0]
        parts = min(self.parts, N // self.min_part)
        inputs = [x, *targets]
        if any(a.shape[0] != N for a in targets):
            raise ConfigError(f"DataParallel.step: every target needs the {N} rows of x")
        bounds = [N * i // parts for i in range(parts + 1)] if parts >= 2 else [0, N]
        pieces = [[numpy.ascontiguousarray(a[lo:hi]) for a in inputs] for lo, hi in zip(bounds[1:-1], bounds[2:])]
        restart = bool(pieces) and (len(self._workers) < len(pieces) or
                                    not all(w[2].fits(p) for w, p in zip(self._workers, pieces)))
        states = [layer.rng.bit_generator.state for layer in self.model.random_layers()]  # before our draws
        if not restart:
            self._send(pieces, bounds, N, states)
        error = None
        try:
            lo, hi = bounds[0], bounds[1]
            with backend.batch_part(lo, hi, N):
                self.model.forward(x[lo:hi] if hi - lo < N else x, True)
                self.model.backward_from(self.loss, *[t[lo:hi] if hi - lo < N else t for t in targets])
        except BaseException as exc:  # the workers' replies are collected first, so the next step starts clean
            error = exc
        if restart:  # forked after our part: the workers inherit the plans it measured (tiefnet.plans)
            if error is not None:
                raise error
            self._start(pieces)
            self._send(pieces, bounds, N, states)
        replies = [pipe.recv_bytes() for _, pipe, _, _ in self._workers[:len(pieces)]]
        if error is not None:
            raise error
        for reply in replies:
            if reply != b"ok":
                raise TiefnetError(f"a data-parallel worker failed: {reply.decode(errors='replace')}")
        if len(bounds) > 2:
            for k, group in enumerate(self.optimizer.groups):  # dC/dw = sum_p (n_p / N) (dC/dw)_p
                group.g *= (bounds[1] - bounds[0]) / N
                for (_, _, _, grads), lo, hi in zip(self._workers, bounds[1:-1], bounds[2:]):
                    group.g += grads[k] * numpy.asarray((hi - lo) / N, dtype=group.g.dtype)

    # --- the workers ----------------------------------------------------------------------
    def _send(self, pieces, bounds, N: int, states) -> None:
        """Hand each worker its part of the step's inputs, through its shared inbox."""
        for (_, pipe, inbox, _), piece, lo, hi in zip(self._workers, pieces, bounds[1:-1], bounds[2:]):
            for k, a in enumerate(piece):
                inbox.view(k, a.shape, a.dtype)[...] = a
            pipe.send_bytes(json.dumps({"op": "step", "lo": lo, "hi": hi, "N": N, "rng": states,
                                        "arrays": [[list(a.shape), a.dtype.str] for a in piece]}).encode())

    def _start(self, pieces: list[list[numpy.ndarray]]) -> None:
        """(Re)start one worker per piece, with shared memory for its inputs and gradients."""
        self.close()
        if not self._shared:  # the parameters move into shared memory, once
            for group in self.optimizer.groups:
                group.relocate(shared_array(group.p))
            self._shared = True
        context = multiprocessing.get_context("fork")
        for piece in pieces:
            inbox = _Inbox(piece)
            grads = [shared_array(numpy.zeros_like(group.g)) for group in self.optimizer.groups]
            ours, theirs = context.Pipe()
            process = context.Process(target=_work, args=(theirs, ours, self.model, self.loss,
                                                           self.optimizer, inbox, grads), daemon=True)
            process.start()
            theirs.close()
            self._workers.append((process, ours, inbox, grads))

    def close(self) -> None:
        """Stop the workers (the parameters stay where they are, in shared memory)."""
        for process, pipe, _, _ in self._workers:
            try:
                pipe.send_bytes(b'{"op": "stop"}')
            except OSError:
                pass
            pipe.close()
        for process, _, _, _ in self._workers:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
        self._workers = []


def _work(pipe, parent_end, model: Layer, loss, optimizer, inbox: _Inbox, grads: list[numpy.ndarray]) -> None:
    """A worker: the model as forked, its gradients re-pointed into ``grads``; steps until told to stop."""
    from threadpoolctl import threadpool_limits

    parent_end.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us
    threadpool_limits(limits=1)  # one core per part (OpenBLAS may restart its threads after a fork)
    for group, g in zip(optimizer.groups, grads):
        group.relocate_grads(g)
    random_layers = model.random_layers()
    while True:
        try:
            message = json.loads(pipe.recv_bytes())
        except (EOFError, OSError):
            os._exit(0)
        if message.get("op") != "step":
            os._exit(0)
        try:
            for layer, state in zip(random_layers, message["rng"]):
                layer.rng.bit_generator.state = state
            x, *targets = [inbox.view(k, shape, dtype) for k, (shape, dtype) in enumerate(message["arrays"])]
            with backend.batch_part(message["lo"], message["hi"], message["N"]), \
                    numpy.errstate(over="ignore", invalid="ignore", divide="ignore"):
                model.forward(x, True)
                model.backward_from(loss, *targets)
            pipe.send_bytes(b"ok")
        except BaseException as exc:  # reported to the parent, which raises it
            pipe.send_bytes(f"{type(exc).__name__}: {exc}".encode())

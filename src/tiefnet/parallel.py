"""Data parallelism for training steps (2.5): one mini-batch, cut into parts, on several CPU cores.

A mini-batch step's gradient is the mean of the per-sample gradients (the losses hold the 1/N), so
it can be computed in parts: each of P processes runs feedforward and backpropagation (BP1-BP4) on
its n_p samples, and

    dC/dw = sum_p (n_p / N) (dC/dw)_p

is their weighted sum. :class:`DataParallel` runs part 0 in this process and the others in worker
processes forked from it, one hand-off per mini-batch (not one per layer): each worker has its own
Python interpreter, so the many small NumPy calls of a step at mini-batch 10 run at once instead of
taking turns for one interpreter lock, as threads of one process do. The parameters live in shared
memory (an optimizer's flat arrays, see :class:`tiefnet.param_groups.Group`): the update in this process
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
import sys
from typing import Any, Callable

import numpy

from tiefnet import backend
from tiefnet.backend import Array
from tiefnet.errors import ConfigError, TiefnetError
from tiefnet.nn.layer import Layer

WAIT_POLL_S = 1.0  # how often a wait for a child process checks that it is still alive


def can_fork() -> bool:
    """Whether processes can be forked safely here (Linux: not on Windows, nor on macOS, where fork
    is unsafe with the system's libraries): data parallelism and fit's measuring of an epoch
    beside the next need it, and without it run in one process. CPU only."""
    return backend.DEVICE == "cpu" and sys.platform.startswith("linux") \
        and "fork" in multiprocessing.get_all_start_methods()


def fork(target: Callable, *args) -> tuple[Any, Any]:
    """Start ``target(pipe, *args)`` in a forked child process; returns (process, our end of a duplex
    pipe). SIGINT is blocked across the fork: the child ignores Ctrl-C (:func:`child_setup`) and ends
    when the parent closes its end."""
    context = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe()
    process = context.Process(target=_child, args=(target, theirs, ours, args), daemon=True)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    theirs.close()
    return process, ours


def _child(target: Callable, pipe, parent_end, args) -> None:
    """The start of every forked child: one thread, no Ctrl-C, no plans.json writing, then ``target``."""
    from threadpoolctl import threadpool_limits

    from tiefnet import plans

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it ends us
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    parent_end.close()
    backend._pool, backend._threads = None, 1  # the parent's pool threads do not exist here
    plans._listeners.clear()  # the parent records the choices (sent back to it) and writes plans.json
    threadpool_limits(limits=1)  # one core per process (OpenBLAS may restart its threads after a fork)
    try:
        target(pipe, *args)
    finally:
        os._exit(0)


def receive(pipe, process, what: str) -> bytes:
    """The next message from a child, checking every WAIT_POLL_S that it is still alive."""
    while not pipe.poll(WAIT_POLL_S):
        if not process.is_alive():
            raise TiefnetError(f"{what} ended without an answer (exit code {process.exitcode}; out of memory?)")
    try:
        return pipe.recv_bytes()
    except EOFError:
        process.join(timeout=1)
        raise TiefnetError(f"{what} ended without an answer (exit code {process.exitcode})") from None


def stop(process, pipe, message: bytes | None = None) -> None:
    """Tell a child to stop (or just close its pipe), wait a little for it, then kill it."""
    if message is not None:
        try:
            pipe.send_bytes(message)
        except OSError:
            pass
    pipe.close()
    process.join(timeout=5)
    if process.is_alive():
        process.kill()
        process.join()


def generator_states(model: Layer) -> list[Any]:
    """The states of the model's layer generators (dropout), as JSON (any bit generator: arrays as lists)."""
    return [_jsonable(layer.rng.bit_generator.state) for layer in model.random_layers()]


def set_generator_states(model: Layer, states: list[Any]) -> None:
    """Put back states :func:`generator_states` took."""
    for layer, state in zip(model.random_layers(), states):
        layer.rng.bit_generator.state = _from_jsonable(state)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, numpy.ndarray):
        return {"__array__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, numpy.generic):
        return value.item()
    return value


def _from_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__array__", "dtype"}:
            return numpy.asarray(value["__array__"], dtype=numpy.dtype(value["dtype"]))
        return {key: _from_jsonable(item) for key, item in value.items()}
    return value


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
    and again when a larger mini-batch arrives); ``close()`` (or ``with``) stops them and moves the
    parameters back into private memory.

    ``step(x, *targets, clip=None)`` is :func:`tiefnet.train.train_step` computed in parts: the
    parts' gradients added with weights n_p / N, then global-norm clipping, then the update.
    A mini-batch smaller than 2 * ``min_part`` samples runs here alone. The workers keep the model
    as it was when they started: after changing a layer's settings, a trainable flag or the
    optimizer's binding, ``close()`` (the next step starts them anew).
    """

    def __init__(self, model: Layer, loss, optimizer, parts: int = 2, min_part: int = 2):
        if not can_fork():
            raise ConfigError("DataParallel splits a mini-batch over forked CPU processes (Linux): on a GPU "
                              "or elsewhere, train in one process")
        if parts < 2:
            raise ConfigError(f"DataParallel: parts={parts} must be at least 2")
        if not splittable(model):
            raise ConfigError("DataParallel: a layer of this model couples the samples of a batch "
                              "(batch normalisation, a stateful recurrent layer): it trains in one process")
        if not optimizer.groups or optimizer._plain:
            raise ConfigError("DataParallel: bind the optimizer to a model with trainable parameters first")
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.parts, self.min_part = int(parts), int(min_part)
        self._workers: list[tuple[Any, Any, _Inbox, list[numpy.ndarray]]] = []  # (process, pipe, inbox, grads)

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
        (the optimizer's flat arrays) become sum_p (n_p / N) (dC/dw)_p. May be repeated (tiefnet.plans).
        If anything goes wrong on the way (an error, Ctrl-C), the workers are stopped: the next call
        starts fresh ones, never reading a reply that belongs to this one."""
        N = x.shape[0]
        if any(a.shape[0] != N for a in targets):
            raise ConfigError(f"DataParallel: every target needs the {N} rows of x")
        parts = min(self.parts, N // self.min_part)
        bounds = [N * i // parts for i in range(parts + 1)] if parts >= 2 else [0, N]
        pieces = [[numpy.ascontiguousarray(a[lo:hi]) for a in (x, *targets)]
                  for lo, hi in zip(bounds[1:-1], bounds[2:])]
        restart = bool(pieces) and (len(self._workers) < len(pieces) or
                                    not all(w[2].fits(p) for w, p in zip(self._workers, pieces)))
        states = generator_states(self.model)  # before our own draws: every part draws the same
        try:
            if not restart:
                self._send(pieces, bounds, N, states)
            lo, hi = bounds[0], bounds[1]
            with backend.batch_part(lo, hi, N):
                self.model.forward(x[lo:hi] if hi - lo < N else x, True)
                self.model.backward_from(self.loss, *[t[lo:hi] if hi - lo < N else t for t in targets])
            if restart:  # forked after our part: the workers inherit the plans it measured (tiefnet.plans)
                self._start(pieces)
                self._send(pieces, bounds, N, states)
            replies = [receive(pipe, process, "a data-parallel worker")
                       for process, pipe, _, _ in self._workers[:len(pieces)]]
        except BaseException:
            self.close()
            raise
        for reply in replies:
            self._take(json.loads(reply))
        if len(bounds) > 2:
            for k, group in enumerate(self.optimizer.groups):  # dC/dw = sum_p (n_p / N) (dC/dw)_p
                group.g *= (bounds[1] - bounds[0]) / N
                for (_, _, _, grads), lo, hi in zip(self._workers, bounds[1:-1], bounds[2:]):
                    group.g += grads[k] * numpy.asarray((hi - lo) / N, dtype=group.g.dtype)

    def _take(self, reply: dict) -> None:
        """A worker's reply: its error, raised here; the plans it measured, recorded here."""
        from tiefnet import plans

        if "error" in reply:
            self.close()
            raise TiefnetError(f"a data-parallel worker failed: {reply['error']}")
        if reply.get("plans"):
            plans.adopt(reply["plans"], notify=True)

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
        self._stop_workers()
        for group in self.optimizer.groups:  # the parameters move into shared memory while workers run
            group.relocate(shared_array(group.p))
        for piece in pieces:
            inbox = _Inbox(piece)
            grads = [shared_array(numpy.zeros_like(group.g)) for group in self.optimizer.groups]
            process, pipe = fork(_work, self.model, self.loss, self.optimizer, inbox, grads)
            self._workers.append((process, pipe, inbox, grads))

    def _stop_workers(self) -> None:
        for process, pipe, _, _ in self._workers:
            stop(process, pipe, b'{"op": "stop"}')
        self._workers = []

    def close(self) -> None:
        """Stop the workers; the parameters move back into private memory (a process forked later,
        e.g. fit's evaluation of an epoch, must not see this one's updates)."""
        had_workers = bool(self._workers)
        self._stop_workers()
        if had_workers:
            for group in self.optimizer.groups:
                group.relocate(numpy.array(group.p))


def _work(pipe, model: Layer, loss, optimizer, inbox: _Inbox, grads: list[numpy.ndarray]) -> None:
    """A worker: the model as forked, its gradients re-pointed into ``grads``; steps until told to stop."""
    from tiefnet import plans

    for group, g in zip(optimizer.groups, grads):
        group.relocate_grads(g)
    known = len(plans.export())
    while True:
        try:
            message = json.loads(pipe.recv_bytes())
        except (EOFError, OSError):
            return
        if message.get("op") != "step":
            return
        try:
            set_generator_states(model, message["rng"])
            x, *targets = [inbox.view(k, shape, dtype) for k, (shape, dtype) in enumerate(message["arrays"])]
            with backend.batch_part(message["lo"], message["hi"], message["N"]), \
                    numpy.errstate(over="ignore", invalid="ignore", divide="ignore"):
                model.forward(x, True)
                model.backward_from(loss, *targets)
            chosen = plans.export()
            reply: dict[str, Any] = {"plans": chosen[known:]} if len(chosen) > known else {}
            known = len(chosen)
        except BaseException as exc:  # reported to the parent, which raises it
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            pipe.send_bytes(json.dumps(reply).encode())
        except OSError:  # the parent is gone
            return

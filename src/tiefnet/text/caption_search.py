"""Writing a caption (4.4.1): each output word is the next step's input, until END.

    a("Hund") = e_4 = "fängt",  a("fängt") = e_5 = "Ball",  a("Ball") = END

:func:`greedy` takes the most probable word at every step; :func:`beam_search` keeps the ``width``
most probable beginnings (the sum of ln p of their words) and extends each by every word; a beam
that has written END stays as it is. Both stop a caption with END after at most L = ``max_length``
words. With a width of at least V^L nothing is ever dropped and the result is the most probable
caption of at most L words (the ln p of its END included): exhaustive search.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy

from tiefnet import backend
from tiefnet.backend import Array, xp
from tiefnet.errors import ConfigError

PAD, START, END = 0, 1, 2
NEVER = (PAD, START)  # ids a caption never contains (the vocabulary's padding and start token)
MAX_WIDTH = 10_000
MAX_LENGTH = 200


@dataclass
class Caption:
    """One generated caption: its word ids (END not included), sum of ln p (END included) and, for an
    attention model, the weights alpha (L, R) with which each word (and the END) was written."""

    ids: list[int]
    log_p: float
    alpha: numpy.ndarray | None


def _check(width: int, max_length: int) -> None:
    if not 1 <= width <= MAX_WIDTH:
        raise ConfigError(f"beam width {width} must be 1 to {MAX_WIDTH:,}")
    if not 1 <= max_length <= MAX_LENGTH:
        raise ConfigError(f"max_length={max_length} words must be 1 to {MAX_LENGTH}")


def _log(p: Array) -> Array:
    return xp.log(xp.maximum(p, numpy.finfo(p.dtype).tiny))


def _banned(p: Array, banned: tuple[int, ...]) -> Array:
    """p with the ``banned`` ids' probabilities 0 (a copy), so that no search writes them."""
    if not banned:
        return p
    p = p.copy()
    p[:, list(banned)] = 0
    return p


def greedy(model, images: Array, max_length: int = 40, banned: tuple[int, ...] = NEVER) -> list[Caption]:
    """The most probable word at every step, for images (N, 3, S, S), at most ``max_length`` words
    (``banned`` ids never: the vocabulary's PAD and START)."""
    _check(1, max_length)
    N = images.shape[0]
    state = model.start(images)
    words = xp.full(N, START, dtype=xp.int64)
    ids, log_p, alphas = [], xp.zeros(N), []
    done = xp.zeros(N, dtype=bool)
    for step in range(max_length + 1):
        p, state, alpha = model.step(words, state)
        p = _banned(p, banned)
        words = p.argmax(axis=1) if step < max_length else xp.full(N, END)  # the most probable next word; END
        # after max_length words
        log_p += xp.where(done, 0.0, _log(p[xp.arange(N), words]))
        ids.append(xp.where(done, END, words))
        alphas.append(alpha)
        done |= words == END
        if bool(done.all()):
            break
    return _captions(backend.to_numpy(xp.stack(ids, axis=1)), backend.to_numpy(log_p),
                     None if alphas[0] is None else backend.to_numpy(xp.stack(alphas, axis=1)))


def beam_search(model, images: Array, width: int = 3, max_length: int = 40,
                banned: tuple[int, ...] = NEVER) -> list[Caption]:
    """The most probable caption found with ``width`` beams per image (width 1 = greedy); ``banned`` as
    for :func:`greedy`."""
    _check(width, max_length)
    N, k = images.shape[0], width
    state = model.start(images)
    state = state.take(xp.repeat(xp.arange(N), k))  # k copies of every image's state, (N k, ...)
    scores = xp.full((N, k), -xp.inf)
    scores[:, 0] = 0.0  # one live beam to start with: the others would only repeat it
    words = xp.full(N * k, START, dtype=xp.int64)
    finished = xp.zeros((N, k), dtype=bool)
    sequences = xp.zeros((N, k, 0), dtype=xp.int64)
    alphas = None
    for step in range(max_length + 1):
        p, state, alpha = model.step(words, state)
        p = _banned(p, banned)
        V = p.shape[1]
        log_p = _log(p).reshape(N, k, V)
        if step == max_length:  # after max_length words only END may follow
            log_p[:, :, :END] = -xp.inf
            log_p[:, :, END + 1:] = -xp.inf
        log_p[finished] = -xp.inf  # a finished beam can only stay as it is ...
        log_p[finished, END] = 0.0  # ... by "writing" END at no cost
        candidates = (scores[:, :, None] + log_p).reshape(N, k * V)
        top = xp.argsort(-candidates, axis=1, kind="stable")[:, :k]  # the k best extensions per image
        beam, word = top // V, top % V  # (N, k): which beam each continues, with which word
        rows = xp.arange(N)[:, None]
        scores = candidates[rows, top]
        sequences = xp.concatenate([sequences[rows, beam], word[:, :, None]], axis=2)
        if alpha is not None:
            alpha = alpha.reshape(N, k, -1)[rows, beam][:, :, None]  # (N, k, 1, R)
            alphas = alpha if alphas is None else xp.concatenate([alphas[rows, beam], alpha], axis=2)
        finished = finished[rows, beam] | (word == END)
        state = state.take((rows * k + beam).reshape(-1))
        words = word.reshape(-1)
        if bool(finished.all()):
            break
    best = scores.argmax(axis=1)  # (N,)
    n = xp.arange(N)
    return _captions(backend.to_numpy(sequences[n, best]), backend.to_numpy(scores[n, best]),
                     None if alphas is None else backend.to_numpy(alphas[n, best]))


def _captions(ids: numpy.ndarray, log_p: numpy.ndarray, alphas: numpy.ndarray | None) -> list[Caption]:
    """Cut every row of ids (N, L) after its first END; alphas (N, L, R) keep the steps up to it."""
    out = []
    for n, row in enumerate(ids):
        ends = numpy.flatnonzero(row == END)
        length = int(ends[0]) if len(ends) else len(row)
        steps = min(length + 1, len(row))  # the words and the END
        out.append(Caption([int(i) for i in row[:length]], float(log_p[n]),
                           None if alphas is None else alphas[n, :steps]))
    return out

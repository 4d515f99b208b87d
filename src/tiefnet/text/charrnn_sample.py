"""Char-rnn sampling (4.4): the model's next-character probabilities with the recurrent state passed
explicitly, characters drawn from p^(1/temperature), and a trained model loaded from its folder.
"""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy

from tiefnet.backend import Array, to_numpy, xp
from tiefnet.checkpoint import load_model
from tiefnet.data.text import Vocabulary
from tiefnet.errors import CheckpointError, ConfigError, ShapeError, TrainingDiverged
from tiefnet.nn import Embedding, Sequential
from tiefnet.nn.recurrent import recurrent_layers

MAX_SAMPLE_LENGTH = 10**6  # characters per sample: one model call each
MAX_WARMUP = 10_000  # the longest warm-up a model folder may hold


def predict_from(model: Sequential, ids: Array, states: list | None = None) -> tuple[Array, list]:
    """The model's p (N T, V) for the ids (N, T), each recurrent layer starting from its entry of
    ``states`` (None: zeros, a new sequence); returns p and the recurrent layers' last states.
    Row t of a sequence is p^t = softmax(V h^t + b), the next character's probabilities after x^1..x^t (4.1).

    The state travels through the arguments (4.2, explicit state): the model's own carried state is
    neither read nor written, so one loaded model can evaluate or sample for many callers at once.
    """
    x, last, layer_states = ids, [], iter(states or [])
    for layer in model.layers:
        if hasattr(layer, "forward_state"):  # a recurrent layer (or cell): its state in, its last state out
            x, state = layer.forward_state(x, next(layer_states, None))
            last.append(state)
        else:
            x = layer.forward(x)
    return x, last


def sample(model: Sequential, vocab: Vocabulary, prime: str = "", length: int = 300, temperature: float = 1.0,
           rng: numpy.random.Generator | None = None, warmup: str = "") -> str:
    """prime + ``length`` characters, each drawn from softmax(z / temperature) = p^(1/T), normalised.
    The model first reads ``warmup`` (a stretch of its training text, see :mod:`tiefnet.text.charrnn`)."""
    return "".join(sample_stream(model, vocab, prime, length, temperature, rng, warmup))


def sample_stream(model: Sequential, vocab: Vocabulary, prime: str = "", length: int = 300,
                  temperature: float = 1.0, rng: numpy.random.Generator | None = None, warmup: str = ""):
    """:func:`sample` piece by piece, as it is drawn: first the prime, then one character at a time
    (``tiefnet serve`` streams them to the page). The settings are checked at the call, before the
    first piece."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"temperature={temperature} must be a positive number")
    if not 0 <= length <= MAX_SAMPLE_LENGTH:
        raise ConfigError(f"length={length} must be from 0 to {MAX_SAMPLE_LENGTH:,}")
    unknown = sorted(set(prime) - set(vocab.chars))
    if unknown:
        raise ConfigError(f"the prime's characters {''.join(unknown)!r} are not in the vocabulary of the model "
                          f"({len(vocab)} characters)")
    rng = numpy.random.default_rng() if rng is None else rng
    if not prime and not warmup:  # nothing to condition on: start from a random character of the vocabulary
        prime = vocab.chars[int(rng.integers(len(vocab)))]
    if warmup:
        context = warmup + prime
    else:  # an older folder: start as at a line break of the text (if the vocabulary has one)
        context = "\n" + prime if "\n" in vocab.chars and not prime.startswith("\n") else prime
    with numpy.errstate(over="ignore", invalid="ignore"):  # a diverged model: an error, not warnings
        p, states = predict_from(model, xp.asarray(vocab.encode(context)[None, :]))  # batch size 1, a new sequence
    _finite(p[-1])  # here, at the call: a diverged model is an error before the prime is given out
    return _pieces(model, vocab, prime, p, states, length, temperature, rng)


def _pieces(model, vocab, prime, p, states, length, temperature, rng):
    yield prime
    # errstate around each step, not around a yield: each piece may be asked for from another thread
    # (a web server's), and numpy's error state is per context
    for _ in range(length):
        with numpy.errstate(over="ignore", invalid="ignore"):
            k = _draw(p[-1], temperature, rng)  # p[-1] (V,): after the last character read
            p, states = predict_from(model, xp.asarray([[k]]), states)
        yield vocab.decode([k])


def _finite(p: Array) -> numpy.ndarray:
    p = to_numpy(p).astype(numpy.float64)
    if not numpy.isfinite(p).all():
        raise TrainingDiverged("the model's next-character probabilities are NaN or infinite: it has diverged")
    return p


def _draw(p: Array, temperature: float, rng: numpy.random.Generator) -> int:
    """One index drawn from p^(1/temperature), normalised."""
    p = _finite(p)
    logp = numpy.log(numpy.maximum(p, 1e-300))
    with numpy.errstate(over="ignore", under="ignore", divide="ignore"):
        q = numpy.exp((logp - logp.max()) / temperature)  # p^(1/T), shifted first: no overflow, no inf - inf
    return int(rng.choice(len(q), p=q / q.sum()))


def load_sampler(folder: str | Path) -> tuple[Sequential, Vocabulary, str]:
    """A trained char-rnn, its vocabulary and its warm-up text ("" in older folders) from a run
    folder, checked: the vocabulary fits the model's input and output, the warm-up the vocabulary."""
    model, info = load_model(folder)
    info = info if isinstance(info, dict) else {}
    chars, warmup = info.get("chars"), info.get("warmup", "")
    if not isinstance(model, Sequential) or not recurrent_layers(model) or not isinstance(chars, str):
        raise CheckpointError(f"{folder}: not a char-rnn model (no vocabulary in model.json)")
    repeated = sorted(c for c, n in Counter(chars).items() if n > 1)
    if not chars or repeated:
        raise CheckpointError(f"{folder}: the vocabulary in model.json is empty or repeats {''.join(repeated)!r}")
    _check_vocabulary_size(model, len(chars), folder)
    if not isinstance(warmup, str) or len(warmup) > MAX_WARMUP or not set(warmup) <= set(chars):
        raise CheckpointError(f"{folder}: the warm-up text in model.json is not a text of at most {MAX_WARMUP:,} "
                              f"characters of its vocabulary")
    return model, Vocabulary(chars), warmup


def _check_vocabulary_size(model: Sequential, V: int, folder: str | Path) -> None:
    """The model reads (Embedding) and predicts (its output p) as many characters as the vocabulary has."""
    first = model.layers[0]
    try:
        p, _ = predict_from(model, xp.zeros((1, 1), dtype=xp.int64))
    except (ShapeError, ValueError, IndexError) as error:
        raise CheckpointError(f"{folder}: its layers do not make a char-rnn ({error})") from None
    if not isinstance(first, Embedding) or first.V != V or tuple(p.shape) != (1, V):
        reads = first.V if isinstance(first, Embedding) else "no"
        raise CheckpointError(f"{folder}: the vocabulary in model.json has {V} characters, but the model reads "
                              f"{reads} and predicts {p.shape[-1]} characters")

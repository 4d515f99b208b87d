"""The character-level language model of lecture 4.1/4.4.1 (Karpathy's char-rnn): an RNN or LSTM
reads a text one character at a time and predicts the next one; sampling from its softmax output
writes new text.

Training is truncated BPTT (4.2, Bemerkung): the training text is cut into ``batch_size`` parallel
streams; every step takes the next ``seq_length`` characters of each stream, and the recurrent
layers carry h (and c) from one block to the next (``stateful=True``) while the gradients stop at
the block boundary. The cost is the log-likelihood (2.7.2) averaged over all N T predicted
characters, i.e. nats per character; bits per character = nats / ln 2.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy

from tiefnet import backend
from tiefnet.backend import Array, to_numpy, xp
from tiefnet.checkpoint import load_model
from tiefnet.data.text import Vocabulary, load_text, split
from tiefnet.errors import CheckpointError, ConfigError, TrainingDiverged
from tiefnet.nn import Dense, Embedding, Layer, LogLikelihood, Sequential, Softmax, TimeFlatten
from tiefnet.nn.recurrent import LSTM, RNN
from tiefnet.optim import Adam
from tiefnet.runs import RunFolder
from tiefnet.settings import setting
from tiefnet.train import train_step

CELLS = {"lstm": LSTM, "rnn": RNN}


@dataclass(frozen=True)
class Config:
    """Settings of one char-rnn run; the CLI builds its options from these fields."""

    text: str = setting("", "A UTF-8 text file to learn (empty: the shipped tiny-shakespeare).")
    cell: str = setting("lstm", "Recurrent cell: lstm (4.4) or rnn (Elman, 4.1).")
    layers: int = setting(2, "Stacked recurrent layers (4.3).")
    hidden: int = setting(256, "Hidden units H of every recurrent layer.")
    embed: int = setting(0, "Embedding size (0: V, as large as the vocabulary, like one-hot input).")
    seq_length: int = setting(100, "Characters per truncated-BPTT block T.")
    batch_size: int = setting(32, "Parallel streams N of the training text.")
    steps: int = setting(2000, "Training steps (one block of every stream each).")
    eta: float = setting(2e-3, "Adam learning rate eta.")
    clip: float = setting(5.0, "Clip the gradients to this global norm.")
    eval_every: int = setting(200, "Measure the validation loss every this many steps.")
    held_out: float = setting(0.1, "Share of the text (its end) held out for validation.")
    seed: int = setting(0, "Seed of every random choice (weights, samples).")
    threads: int = setting(1, "BLAS threads.")
    temperature: float = setting(0.8, "Temperature of the samples written at the end.")
    sample_length: int = setting(300, "Characters per sample written at the end.")

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ConfigError(f"cell={self.cell!r} is not one of {', '.join(CELLS)}")
        for name, low in (("layers", 1), ("hidden", 1), ("embed", 0), ("seq_length", 1), ("batch_size", 1),
                          ("steps", 1), ("eval_every", 1), ("threads", 1), ("sample_length", 0)):
            if getattr(self, name) < low:
                raise ConfigError(f"{name}={getattr(self, name)} must be at least {low}")
        for name in ("eta", "clip", "temperature"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ConfigError(f"{name}={getattr(self, name)} must be a positive number")
        if not 0.0 < self.held_out < 1.0:
            raise ConfigError(f"held_out={self.held_out} must be in (0, 1)")


def build_model(V: int, config: Config, rng: numpy.random.Generator) -> Sequential:
    """Embedding(V, E) -> cell(E, H) x layers (stateful) -> Dense(H, V) -> TimeFlatten -> Softmax."""
    E = config.embed or V
    layers: list[Layer] = [Embedding(V, E, rng=rng)]
    for l in range(config.layers):
        layers.append(CELLS[config.cell](E if l == 0 else config.hidden, config.hidden, rng=rng, stateful=True))
    layers += [Dense(config.hidden, V, rng=rng), TimeFlatten(), Softmax()]
    return Sequential(*layers)


def recurrent_layers(model: Sequential) -> list[Layer]:
    """The recurrent layers (or cells) of the model: those with an explicit state (forward_state)."""
    return [layer for layer in model.layers if hasattr(layer, "forward_state")]


def reset_state(model: Sequential) -> None:
    for layer in recurrent_layers(model):
        layer.reset_state()


def streams(ids: numpy.ndarray, N: int) -> numpy.ndarray:
    """The text cut into N parallel streams, (N, L // N); the remainder is dropped."""
    L = len(ids) // N
    return ids[: N * L].reshape(N, L)


def nll(p: Array, targets: Array) -> float:
    """Summed -ln p_y over the rows of p (N T, V) for the true next characters y."""
    eps = float(numpy.finfo(p.dtype).tiny)
    return float(-xp.log(xp.maximum(p[xp.arange(len(targets)), targets], eps)).sum())


def predict_from(model: Sequential, ids: Array, states: list | None = None) -> tuple[Array, list]:
    """The model's p (N T, V) for the ids (N, T), each recurrent layer starting from its entry of
    ``states`` (None: zeros, a new sequence); returns p and the recurrent layers' last states.

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


def evaluate(model: Sequential, ids: numpy.ndarray, N: int, T: int) -> float:
    """Validation loss in nats per character: the held-out text in N streams, blocks of T, each block
    starting from the state the previous one ended in (the training streams' state is untouched)."""
    data = streams(ids, N) if len(ids) // N >= 2 else ids[None, :]
    total, count, states = 0.0, 0, None
    for start in range(0, data.shape[1] - 1, T):
        x = data[:, start:start + T + 1]
        p, states = predict_from(model, xp.asarray(x[:, :-1]), states)  # (N T, V)
        total += nll(p, xp.asarray(x[:, 1:].reshape(-1)))
        count += x[:, 1:].size
    return total / count


def sample(model: Sequential, vocab: Vocabulary, prime: str = "", length: int = 300, temperature: float = 1.0,
           rng: numpy.random.Generator | None = None) -> str:
    """prime + ``length`` characters, each drawn from softmax(z / temperature) = p^(1/T), normalised."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"temperature={temperature} must be a positive number")
    if length < 0:
        raise ConfigError(f"length={length} must be at least 0")
    rng = numpy.random.default_rng() if rng is None else rng
    if not prime:  # nothing to condition on: start from a random character of the vocabulary
        prime = vocab.chars[int(rng.integers(len(vocab)))]
    # Training carries the state from block to block, so it rarely sees a zero state meet a
    # capital letter: start as at a line break of the text (if the vocabulary has one).
    context = "\n" + prime if "\n" in vocab.chars and not prime.startswith("\n") else prime
    ids = vocab.encode(context)
    p, states = predict_from(model, xp.asarray(ids[None, :]))  # batch size 1, a new sequence
    p = p[-1]  # (V,): after the last prime character
    out = []
    for _ in range(length):
        logp = numpy.log(numpy.maximum(to_numpy(p).astype(numpy.float64), 1e-300)) / temperature
        q = numpy.exp(logp - logp.max())  # p^(1/T), shifted: no underflow
        k = int(rng.choice(len(q), p=q / q.sum()))
        out.append(k)
        p, states = predict_from(model, xp.asarray([[k]]), states)
        p = p[-1]
    return prime + vocab.decode(out)


def load_sampler(folder: str | Path) -> tuple[Sequential, Vocabulary]:
    """A trained char-rnn and its vocabulary from a run folder."""
    model, info = load_model(folder)
    chars = info.get("chars") if isinstance(info, dict) else None
    if not isinstance(chars, str) or not chars or not isinstance(model, Sequential) or not recurrent_layers(model):
        raise CheckpointError(f"{folder}: not a char-rnn model (no vocabulary in model.json)")
    return model, Vocabulary(chars)


def run(config: Config, out: str | Path, progress: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train as ``config`` says and write the run folder ``out``: config.json, metrics.jsonl,
    model.npz + model.json, summary.json, loss.png, samples.txt. Returns the summary."""
    folder = RunFolder(out, app="charrnn", progress=progress)
    text = load_text(config.text or None)
    vocab = Vocabulary.of(text)
    train_ids, val_ids = split(vocab.encode(text), config.held_out)
    N = config.batch_size
    data = streams(train_ids, N)  # (N, L)
    if data.shape[1] < 2 or len(val_ids) < 2:
        raise ConfigError(f"the text ({len(text)} characters) is too short for batch_size={N} "
                          f"and held_out={config.held_out}")
    T = min(config.seq_length, data.shape[1] - 1)
    rng = numpy.random.default_rng(config.seed)
    started = time.perf_counter()
    metrics: list[dict[str, Any]] = []
    with folder.start(config), backend.thread_limit(config.threads):
        metrics_log = folder.metrics()
        model = build_model(len(vocab), config, rng)
        loss = LogLikelihood()
        optimizer = Adam(config.eta).bind(model, len(train_ids))
        eye = xp.eye(len(vocab), dtype=backend.dtype())
        log(f"tiefnet charrnn: {config.layers} x {config.cell} {config.hidden}, V = {len(vocab)}, "
            f"{len(train_ids)} training / {len(val_ids)} validation characters, N = {N}, T = {T}, "
            f"{config.steps} steps -> {folder.path}")
        position, train_losses, train_seconds, chars = 0, [], 0.0, 0
        for step in range(1, config.steps + 1):
            tick = time.perf_counter()
            if position + T >= data.shape[1]:  # end of the data: start the streams again
                position = 0
                reset_state(model)
            block = data[:, position:position + T + 1]  # (N, T + 1)
            position += T
            x, y = xp.asarray(block[:, :-1]), xp.asarray(block[:, 1:].reshape(-1))  # (N, T), (N T,)
            p = train_step(model, loss, optimizer, x, eye[y], clip=config.clip)  # (N T, V); delta^L = (p - y) / (N T)
            train_losses.append(nll(p, y) / len(y))
            train_seconds += time.perf_counter() - tick
            chars += block[:, 1:].size
            if not math.isfinite(train_losses[-1]):
                raise TrainingDiverged(f"training diverged at step {step} (loss {train_losses[-1]}); try a smaller --eta")
            if step % config.eval_every == 0 or step == config.steps:
                val = evaluate(model, val_ids, N, T)
                entry = {"step": step, "train_loss": float(numpy.mean(train_losses)), "validation_loss": val,
                         "validation_bpc": val / math.log(2), "seconds": time.perf_counter() - started}
                metrics.append(entry)
                metrics_log.append(entry)
                train_losses = []
                folder.save_model(model, {"chars": vocab.chars, "step": step, "validation_loss": val})
                if folder.progress:
                    log(f"step {step:5d}  train {entry['train_loss']:.3f}  validation {val:.3f} nats/char "
                        f"({entry['validation_bpc']:.3f} bpc)  {chars / train_seconds:,.0f} chars/s")
        samples = [sample(model, vocab, prime, config.sample_length, config.temperature, rng)
                   for prime in ("", text[:1], "\n") if set(prime) <= set(vocab.chars)]
    folder.write_text("samples.txt", f"# temperature {config.temperature}\n" + "\n\n----\n\n".join(samples) + "\n")
    summary = {"best_validation_loss": min(m["validation_loss"] for m in metrics),
               "final_validation_loss": metrics[-1]["validation_loss"],
               "final_validation_bpc": metrics[-1]["validation_bpc"], "steps": config.steps,
               "vocabulary_size": len(vocab), "seconds": time.perf_counter() - started,
               "chars_per_second": chars / train_seconds, "device": backend.DEVICE, "options": asdict(config)}
    folder.write_json("summary.json", summary)
    with folder.replacing("loss.png") as path:
        _plot(metrics, path, f"{config.layers} x {config.cell} {config.hidden}, T={T}, N={N}")
    return summary


def _plot(metrics: list[dict[str, Any]], path: Path, title: str) -> None:
    from tiefnet.plot import plt, save

    fig, ax = plt.subplots(figsize=(6, 4))
    steps = [m["step"] for m in metrics]
    ax.plot(steps, [m["train_loss"] for m in metrics], marker="o", label="train")
    ax.plot(steps, [m["validation_loss"] for m in metrics], marker="o", label="validation")
    ax.set(xlabel="step", ylabel="loss [nats/char]", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, path)

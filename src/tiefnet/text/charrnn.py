"""The character-level language model of lecture 4.1/4.4.1 (Karpathy's char-rnn): an RNN or LSTM
reads a text one character at a time and predicts the next one; sampling from its softmax output
writes new text.

Training is truncated BPTT (4.2, Bemerkung): the training text is cut into ``batch_size`` parallel
streams; every step takes the next ``seq_length`` characters of each stream, and the recurrent
layers carry h (and c) from one block to the next (``stateful=True``) while the gradients stop at
the block boundary. The cost is the log-likelihood (2.7.2) averaged over all N T predicted
characters, i.e. nats per character; bits per character = nats / ln 2.

Checkpoint and resume: at every evaluation and every ``checkpoint_every`` steps the run writes
``checkpoint.npz`` (atomic; arrays + JSON, no pickle): the model's arrays, Adam's m and v, the
carried states h (and c) of the training streams, the generator's state, the step, the streams'
position, the pending training losses and the metrics entries so far. ``run(..., resume=True)``
checks every value of it and continues bit-identically (same --threads): a run killed at any moment
and resumed ends with the same metrics.jsonl (apart from "seconds") and model.npz.

Warm-up: training carries the state from block to block, so the model has hardly ever seen a zero
state; a prime read from zeros gives junk. The model folder keeps the first few hundred characters
of the training text (model.json "warmup"); a sample reads them first, then the prime, and starts
from a state like those of training. Older folders have none: their samples start from "\\n".
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy

from tiefnet import backend
from tiefnet.backend import Array, xp
from tiefnet.data.text import Vocabulary, load_text, split
from tiefnet.limits import check_allocation
from tiefnet.errors import ConfigError, TrainingDiverged
from tiefnet.nn import Dense, Embedding, Layer, LogLikelihood, Sequential, Softmax, TimeFlatten
from tiefnet.nn.recurrent import LSTM, RNN, recurrent_layers
from tiefnet.optim import Adam
from tiefnet.runs import MetricsLog, RunFolder
from tiefnet.settings import check_seed, setting
from tiefnet.text.charrnn_checkpoint import Progress, restore, save_checkpoint
# sampling and loading a trained model (re-exported: tiefnet.text.charrnn.sample, load_sampler)
from tiefnet.text.charrnn_sample import MAX_SAMPLE_LENGTH, load_sampler, predict_from, sample

__all__ = ["Config", "MAX_SAMPLE_LENGTH", "build_model", "load_sampler", "prepare", "run", "sample", "streams",
           "warmup_text"]
from tiefnet.train import train_step

CELLS = {"lstm": LSTM, "rnn": RNN}
# Settings that may change when a run is resumed: none of them changes the training itself
# (other --threads split the batch otherwise: the run goes on, but no longer bit-identically).
RESUMABLE_CHANGES = {"steps", "threads", "eval_every", "checkpoint_every", "temperature", "sample_length"}
MAX_LAYERS = 64  # stacked recurrent layers: far more than ever helps (4.3), and each is a Python call a step
WARMUP_LENGTH = 500  # characters of training text a model folder keeps for the warm-up


@dataclass(frozen=True)
class Config:
    """Settings of one char-rnn run; the CLI builds its options from these fields.

    The model: Embedding -> ``layers`` x ``cell`` (h^t = tanh(W h^{t-1} + U x^t + b), or the LSTM of 4.4)
    -> Dense -> Softmax; trained by truncated BPTT over ``seq_length`` characters (see :func:`run`)."""

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
    eval_every: int = setting(200, "Measure the validation loss every this many steps (and checkpoint).")
    checkpoint_every: int = setting(50, "Also write checkpoint.npz every this many steps (0: at evaluations only).")
    held_out: float = setting(0.1, "Share of the text (its end) held out for validation.")
    seed: int = setting(0, "Seed of every random choice (weights, samples).")
    threads: int = setting(1, "BLAS threads.")
    temperature: float = setting(0.8, "Temperature of the samples written at the end.")
    sample_length: int = setting(300, "Characters per sample written at the end.")

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ConfigError(f"cell={self.cell!r} is not one of {', '.join(CELLS)}")
        for name, low in (("layers", 1), ("hidden", 1), ("embed", 0), ("seq_length", 1), ("batch_size", 1),
                          ("steps", 1), ("eval_every", 1), ("checkpoint_every", 0), ("threads", 1),
                          ("sample_length", 0)):
            if getattr(self, name) < low:
                raise ConfigError(f"{name}={getattr(self, name)} must be at least {low}")
        for name in ("eta", "clip", "temperature"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ConfigError(f"{name}={getattr(self, name)} must be a positive number")
        if not 0.0 < self.held_out < 1.0:
            raise ConfigError(f"held_out={self.held_out} must be in (0, 1)")
        if self.layers > MAX_LAYERS:
            raise ConfigError(f"layers={self.layers} must be at most {MAX_LAYERS}")
        if self.sample_length > MAX_SAMPLE_LENGTH:
            raise ConfigError(f"sample_length={self.sample_length} must be at most {MAX_SAMPLE_LENGTH:,}")
        check_seed(self.seed)


def build_model(V: int, config: Config, rng: numpy.random.Generator) -> Sequential:
    """Embedding(V, E) -> cell(E, H) x layers (stateful) -> Dense(H, V) -> TimeFlatten -> Softmax."""
    E = config.embed or V
    layers: list[Layer] = [Embedding(V, E, rng=rng)]
    for l in range(config.layers):
        layers.append(CELLS[config.cell](E if l == 0 else config.hidden, config.hidden, rng=rng, stateful=True))
    layers += [Dense(config.hidden, V, rng=rng), TimeFlatten(), Softmax()]
    return Sequential(*layers)


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


def evaluate(model: Sequential, ids: numpy.ndarray, N: int, T: int) -> float:
    """Validation loss in nats per character: the held-out text in N streams, blocks of T, each block
    starting from the state the previous one ended in (the training streams' state is untouched);
    NaN if any probability is NaN or infinite (a diverged model: -ln p_y alone need not show it)."""
    data = streams(ids, N) if len(ids) // N >= 2 else ids[None, :]
    total, count, states = 0.0, 0, None
    for start in range(0, data.shape[1] - 1, T):
        x = data[:, start:start + T + 1]
        p, states = predict_from(model, xp.asarray(x[:, :-1]), states)  # (N T, V)
        if not bool(xp.isfinite(p).all()):
            return math.nan
        total += nll(p, xp.asarray(x[:, 1:].reshape(-1)))
        count += x[:, 1:].size
    return total / count


# --- training -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Corpus:
    """The text of a run, ready to train on: ids (N, L) of the training streams, T, the warm-up."""

    vocab: Vocabulary
    train_ids: numpy.ndarray
    val_ids: numpy.ndarray
    data: numpy.ndarray  # (N, L): the training streams
    T: int  # characters per block
    warmup: str  # the first characters of the training text (model.json "warmup")
    sha256: str  # of the text: a resumed run must learn the same one

    def position_after(self, step: int) -> int:
        """Where the streams' next block starts after ``step`` steps: the data holds (L - 1) // T blocks."""
        blocks = (self.data.shape[1] - 1) // self.T
        return ((step - 1) % blocks + 1) * self.T


def prepare(config: Config) -> Corpus:
    """The text of ``config`` as training streams and validation ids; a clear error if it cannot train."""
    text = load_text(config.text or None)
    vocab = Vocabulary.of(text)
    train_ids, val_ids = split(vocab.encode(text), config.held_out)
    N = config.batch_size
    data = streams(train_ids, N)  # (N, L)
    if data.shape[1] < 2 or len(val_ids) < 2:
        raise ConfigError(f"the text ({len(text)} characters) is too short for batch_size={N} "
                          f"and held_out={config.held_out}")
    T = min(config.seq_length, data.shape[1] - 1)
    check_memory(config, len(vocab), T)
    return Corpus(vocab, train_ids, val_ids, data, T, warmup_text(text[:len(train_ids)]),
                  hashlib.sha256(text.encode("utf-8")).hexdigest())


def warmup_text(text: str, length: int = WARMUP_LENGTH) -> str:
    """The first ``length`` characters of ``text``, cut after the last paragraph break, line break or
    space in their second half (if any): what a sample reads before its prime."""
    head = text[:length]
    for separator in ("\n\n", "\n", " "):
        cut = head.rfind(separator)
        if cut >= len(head) // 2:
            return head[:cut + len(separator)]
    return head


def check_memory(config: Config, V: int, T: int) -> None:
    """Refuse a model that cannot train in this machine's memory, naming what it would need."""
    E, H, gates = config.embed or V, config.hidden, 4 if config.cell == "lstm" else 1
    P = V * E + sum(gates * H * ((E if l == 0 else H) + H + 1) for l in range(config.layers)) + H * V + V
    cached = config.batch_size * T * (config.layers * (gates + 3) * H + E + 3 * V)  # per block: gates, h, c; p
    itemsize = numpy.dtype(backend.dtype()).itemsize
    check_allocation({"the parameters, gradients and Adam's m, v": 4 * P * itemsize,
                      "the activations of a block, forward and backward": 2 * cached * itemsize},
                     f"a {config.layers} x {config.cell} {H} model (embedding {E}, {P:,} parameters) with "
                     f"batch_size={config.batch_size}, T={T}")


def run(config: Config, out: str | Path, progress: bool = True, resume: bool = False,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train as ``config`` says (with ``resume``: from ``out``'s checkpoint.npz) and write the run folder
    ``out``: config.json, metrics.jsonl, checkpoint.npz, model.npz + model.json, summary.json, loss.png,
    samples.txt. Returns the summary.

    The model predicts each next character, p^t = softmax(V h^t + b) with h^t from the stacked recurrent
    layers (4.1, 4.3, 4.4); the cost C = -1/(N T) sum_n sum_t ln p^t_{x^{t+1}} (log-likelihood, 2.7.2, in
    nats per character) is minimised with Adam by truncated BPTT (4.2): blocks of T = ``seq_length``
    characters of N = ``batch_size`` streams, the state carried from block to block."""
    folder = RunFolder(out, app="charrnn", resume_command="tiefnet charrnn train --resume", progress=progress)
    corpus = prepare(config)
    rng = numpy.random.default_rng(config.seed)
    # overflow is no warning here: a diverged model is found by its NaN loss, parameters or probabilities
    with folder.start(config, resume, RESUMABLE_CHANGES), backend.thread_limit(config.threads), \
            numpy.errstate(over="ignore", invalid="ignore"):
        model = build_model(len(corpus.vocab), config, rng)
        optimizer = Adam(config.eta).bind(model, len(corpus.train_ids))
        state = Progress()
        if resume:
            restore(folder.path / "checkpoint.npz", model, optimizer, rng, state, corpus, config)
        metrics = folder.metrics(entries=state.metrics)  # what was written after the checkpoint is dropped
        log(f"tiefnet charrnn: {config.layers} x {config.cell} {config.hidden}, V = {len(corpus.vocab)}, "
            f"{len(corpus.train_ids)} training / {len(corpus.val_ids)} validation characters, "
            f"N = {config.batch_size}, T = {corpus.T}, {config.steps} steps"
            f"{f' (resumed after step {state.step})' if resume else ''} -> {folder.path}")
        train(config, corpus, model, optimizer, rng, state, folder, metrics, log)
        vocab, first = corpus.vocab, corpus.vocab.decode(corpus.train_ids[:1])
        try:  # the final model is kept (model.npz) once it has written its samples
            samples = [sample(model, vocab, prime, config.sample_length, config.temperature, rng, corpus.warmup)
                       for prime in ("", first, "\n") if set(prime) <= set(vocab.chars)]
        except TrainingDiverged as error:
            _diverged(state, f"the samples: {error}")
        folder.save_model(model, _model_info(corpus, state))
    folder.write_text("samples.txt", f"# temperature {config.temperature}\n" + "\n\n----\n\n".join(samples) + "\n")
    summary = {"best_validation_loss": min(m["validation_loss"] for m in state.metrics),
               "final_validation_loss": state.metrics[-1]["validation_loss"],
               "final_validation_bpc": state.metrics[-1]["validation_bpc"], "steps": config.steps,
               "vocabulary_size": len(vocab), "seconds": state.seconds,
               "chars_per_second": state.chars / state.train_seconds, "device": backend.DEVICE,
               "options": asdict(config)}
    folder.write_json("summary.json", summary)
    with folder.replacing("loss.png") as path:
        _plot(state.metrics, path, f"{config.layers} x {config.cell} {config.hidden}, T={corpus.T}, "
                                   f"N={config.batch_size}")
    return summary


def train(config: Config, corpus: Corpus, model: Sequential, optimizer: Adam, rng: numpy.random.Generator,
          state: Progress, folder: RunFolder, metrics: MetricsLog, log: Callable[[str], None]) -> None:
    """Truncated BPTT from ``state.step`` to ``config.steps``; evaluate and checkpoint on the way."""
    loss, eye = LogLikelihood(), xp.eye(len(corpus.vocab), dtype=backend.dtype())
    data, T, started = corpus.data, corpus.T, time.perf_counter() - state.seconds
    while state.step < config.steps:
        tick = time.perf_counter()
        if state.position + T >= data.shape[1]:  # end of the data: start the streams again
            state.position = 0
            reset_state(model)
        block = data[:, state.position:state.position + T + 1]  # (N, T + 1)
        state.position += T
        x, y = xp.asarray(block[:, :-1]), xp.asarray(block[:, 1:].reshape(-1))  # (N, T), (N T,)
        p = train_step(model, loss, optimizer, x, eye[y], clip=config.clip)  # (N T, V); delta^L = (p - y) / (N T)
        state.train_losses.append(nll(p, y) / len(y))
        state.train_seconds += time.perf_counter() - tick
        state.chars += block[:, 1:].size
        state.step += 1
        state.seconds = time.perf_counter() - started
        if not math.isfinite(state.train_losses[-1]):
            _diverged(state, f"loss {state.train_losses[-1]}")
        evaluating = state.step % config.eval_every == 0 or state.step == config.steps
        if evaluating:
            _evaluate(config, corpus, model, state, folder, metrics, log)
        if evaluating or (config.checkpoint_every and state.step % config.checkpoint_every == 0):
            if not _finite_parameters(model):
                _diverged(state, "parameters NaN or infinite")
            save_checkpoint(folder.path / "checkpoint.npz", model, optimizer, rng, state, corpus)


def _evaluate(config: Config, corpus: Corpus, model: Sequential, state: Progress, folder: RunFolder,
              metrics: MetricsLog, log: Callable[[str], None]) -> None:
    """The validation loss: a metrics entry and model.npz, unless the model has diverged."""
    val = evaluate(model, corpus.val_ids, config.batch_size, corpus.T)
    if not (math.isfinite(val) and _finite_parameters(model)):
        _diverged(state, f"validation loss {val}")
    entry = {"step": state.step, "train_loss": float(numpy.mean(state.train_losses)), "validation_loss": val,
             "validation_bpc": val / math.log(2), "seconds": state.seconds}
    state.metrics.append(entry)
    metrics.append(entry)
    state.train_losses = []
    if state.step < config.steps:  # the final model is kept after its samples (run)
        folder.save_model(model, _model_info(corpus, state))
    if folder.progress:
        log(f"step {state.step:5d}  train {entry['train_loss']:.3f}  validation {val:.3f} nats/char "
            f"({entry['validation_bpc']:.3f} bpc)  {state.chars / state.train_seconds:,.0f} chars/s")


def _model_info(corpus: Corpus, state: Progress) -> dict[str, Any]:
    """model.json's info: the vocabulary, the warm-up text, the step and its validation loss."""
    return {"chars": corpus.vocab.chars, "warmup": corpus.warmup, "step": state.metrics[-1]["step"],
            "validation_loss": state.metrics[-1]["validation_loss"]}


def _finite_parameters(model: Sequential) -> bool:
    return all(bool(xp.isfinite(p.value).all()) for p in model.parameters())


def _diverged(state: Progress, what: str) -> None:
    kept = [e["step"] for e in state.metrics if e["step"] < state.step]
    kept = f"model.npz keeps step {kept[-1]}" if kept else "no model was saved"
    raise TrainingDiverged(f"training diverged at step {state.step} ({what}); {kept}; try a smaller --eta")


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

"""Lecture 4.1 "Wortvervollstaendigung": vocabulary {h, a, l, o}, learn to continue "h" into "hallo".

A tiny Elman RNN (Embedding(4, 4) -> RNN(4, 8) -> Dense(8, 4) at every step -> Softmax) is trained
with Adam on the single sequence "hallo": inputs "hall", targets "allo", log-likelihood summed over
the four steps. Afterwards it generates greedily: start with "h", take the argmax of the output
probabilities as the next input, four times.

The lecture's point: the input "l" is followed by "l" the first time and by "o" the second, so
the output at a step cannot be a function of the current character alone; the hidden state h^t
must carry which "l" this is. The figure shows, like the lecture's table, the softmax output
per step (rows: the input characters, columns: h, a, l, o) and the loss curve.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy

from tiefnet import backend
from tiefnet.backend import xp
from tiefnet.experiments._common import output_dir, write_json
from tiefnet.nn import RNN, Dense, Embedding, LogLikelihood, Sequential, Softmax
from tiefnet.optim import Adam
from tiefnet.files import replacing

DESCRIPTION = "4.1 'hallo': a tiny RNN learns to continue 'h' into 'hallo' (output probabilities per step)"
VOCAB = ["h", "a", "l", "o"]
WORD = "hallo"
HIDDEN, ETA, MAX_STEPS = 8, 0.02, 1000
TARGET_LOSS = 1.0  # stop once "h" -> "hallo" and the summed cost < 1 (mean target probability ~0.8)


def encode(text: str):
    return xp.asarray([[VOCAB.index(ch) for ch in text]], dtype=numpy.int64)  # (1, T) ids


def build(seed: int) -> Sequential:
    rng = numpy.random.default_rng(seed)
    return Sequential(Embedding(len(VOCAB), len(VOCAB), rng=rng), RNN(len(VOCAB), HIDDEN, rng=rng),
                      Dense(HIDDEN, len(VOCAB), rng=rng), Softmax())


def probabilities(net: Sequential, text: str) -> numpy.ndarray:
    """The softmax output after each character of ``text``, (len(text), 4)."""
    return backend.to_numpy(net.forward(encode(text)))[0]


def generate(net: Sequential, start: str = "h", length: int = len(WORD)) -> str:
    """Greedy continuation: append argmax of the output after the whole text so far."""
    text = start
    while len(text) < length:
        text += VOCAB[int(probabilities(net, text)[-1].argmax())]
    return text


def train(seed: int = 0, max_steps: int = MAX_STEPS,
          target_loss: float | None = TARGET_LOSS) -> tuple[Sequential, list[float]]:
    """Adam on "hall" -> "allo" until the greedy continuation of "h" is "hallo" and the cost is
    below ``target_loss`` (None: run all ``max_steps``). Returns (net, the cost after 0, 1, 2, ... updates)."""
    net = build(seed)
    loss = LogLikelihood()
    optimizer = Adam(eta=ETA).bind(net, n=1)
    x = encode(WORD[:-1])  # "hall"
    y = backend.asarray(numpy.eye(len(VOCAB))[[VOCAB.index(ch) for ch in WORD[1:]]][None])  # "allo", (1, 4, 4)
    losses = []
    for step in range(max_steps + 1):
        a = net.forward(x, train=True)
        losses.append(loss.cost(a, y))  # the cost after ``step`` updates: sum over the 4 steps of -ln a_target
        if step == max_steps or (target_loss is not None and losses[-1] < target_loss and generate(net) == WORD):
            break
        net.forward(x, train=True)  # generate() ran test-mode passes: refresh the caches for backward
        net.backward_from(loss, y)  # softmax + log-likelihood: delta = a - y at every step
        optimizer.step()
    return net, losses


def run(out: str | Path, epochs: int | None = None, seed: int = 0, quick: bool = False,
        progress: bool = True) -> dict[str, Any]:
    """Write hallo.png/.json; ``epochs`` runs exactly that many Adam steps instead of stopping at
    the first correct continuation with cost < 1 (well under a second, so ``quick`` changes nothing)."""
    out = output_dir(out)
    net, losses = train(seed, epochs or MAX_STEPS, None if epochs else TARGET_LOSS)
    steps = len(losses) - 1
    inputs = WORD[:-1]
    probs = probabilities(net, inputs)
    continuation = generate(net, "h", len(WORD))
    table = [{"step": t + 1, "input": ch, "target": WORD[t + 1],
              **{v: float(p) for v, p in zip(VOCAB, probs[t])}} for t, ch in enumerate(inputs)]
    result = {"settings": {"vocabulary": VOCAB, "word": WORD, "network": f"Embedding(4, 4), RNN(4, {HIDDEN}), "
                           f"Dense({HIDDEN}, 4), Softmax", "optimizer": "adam", "eta": ETA, "steps": steps,
                           "seed": seed, "loss": "log-likelihood summed over the steps"},
              "probabilities": table, "continuation": continuation, "correct": continuation == WORD,
              "steps": steps, "final_loss": losses[-1], "loss": losses}
    write_json(out, "hallo", result)
    with replacing(out / "hallo.png") as path:
        _figure(probs, losses, continuation, path)
    print(f"after {steps} Adam steps: loss {losses[0]:.3f} -> {losses[-1]:.4f}; 'h' continues to '{continuation}'")
    print("input  " + "  ".join(f"{v:>5s}" for v in VOCAB))
    for row in table:
        print(f"  {row['input']}    " + "  ".join(f"{row[v]:5.2f}" for v in VOCAB) + f"   (target {row['target']})")
    return result


def _figure(probs: numpy.ndarray, losses: list[float], continuation: str, path: Path) -> None:
    from tiefnet.plot import plt, save

    fig, (ax_p, ax_l) = plt.subplots(1, 2, figsize=(11, 4.5), gridspec_kw={"width_ratios": [1.1, 1]})
    image = ax_p.imshow(probs, cmap="Blues", vmin=0, vmax=1)
    for t in range(probs.shape[0]):
        for j in range(probs.shape[1]):
            ax_p.text(j, t, f"{probs[t, j]:.2f}", ha="center", va="center", fontsize=12,
                      color="white" if probs[t, j] > 0.6 else "black")
    ax_p.set_xticks(range(len(VOCAB)), [f'"{v}"' for v in VOCAB])
    ax_p.set_yticks(range(probs.shape[0]),
                    [f't = {t + 1}: input "{WORD[t]}" -> "{WORD[t + 1]}"' for t in range(probs.shape[0])])
    ax_p.set(xlabel="next character", title="softmax output per step")
    fig.colorbar(image, ax=ax_p, fraction=0.046, pad=0.04)
    ax_l.plot(losses)
    ax_l.set(xlabel="Adam step", ylabel="log-likelihood cost (sum over 4 steps)", ylim=(0, None),
             title=f'loss; greedy continuation of "h": "{continuation}"')
    ax_l.grid(alpha=0.3)
    fig.suptitle('4.1 vocabulary {h, a, l, o}: an RNN(4, 8) trained on "hallo"')
    save(fig, path)

"""Image captioning (4.4.1-4.4.2): a CNN encoder and an LSTM decoder that writes a caption word by word.

Show and Tell (4.4.1, Vinyals et al.): the (affinely transformed) activation of the CNN's last layer
is the decoder's first hidden state, (h^0, c^0) = W_init a_CNN + b_init; then x^t = E w_{t-1} (the
embedding of the previous word, START first) and p^t = softmax(W_out h^t + b_out).

Show, Attend and Tell (4.4.2, Xu et al.): a_CNN is split into R regions a_j (the H' x W' positions of
the feature map, each with its place appended); (h^0, c^0) comes from their mean (Xu et al.) or is
learned (``init_from_mean=False``, the same for every image), and every step reads a context
z^t = sum_j alpha_tj a_j (:class:`tiefnet.nn.SoftAttention`, from h^{t-1}): x^t = [E w_{t-1}; z^t]
(z^t dropped at random in training with ``context_dropout``), p^t = softmax(W_out [h^t; z^t] + b_out),
or with Xu et al.'s deep output p^t = softmax(W_out tanh(L [h^t; z^t] + b_L) + b_out). ``tiefnet caption
train --attention`` uses a learned start, deep output 64 and context dropout 0.5 (bench/RESULTS.md: only
with them does the attention look at a digit while the model writes it).

Training is teacher forcing: the inputs are START w_1 ... w_n, the targets w_1 ... w_n END, and the
cost is the log-likelihood summed over the words (padding masked) and averaged over the captions
(2.7.2); ``backward`` takes delta = dC/dz of the softmax output, (p - y) / N, and runs BPTT through
the decoder into the encoder. The doubly stochastic penalty of Xu et al.,
lambda sum_j (1 - sum_t alpha_tj)^2 per caption, is an option of ``backward``.

Generation (``start`` + ``step``) feeds each word back as the next input until END:
a("Hund") = e_4 = "fängt", a("fängt") = e_5 = "Ball", a("Ball") = END (4.4.1); greedy and beam search
are in :mod:`tiefnet.text.caption_search`.
"""
from __future__ import annotations

from typing import Any

import numpy

from tiefnet.backend import Array, xp
from tiefnet.nn import LSTM, Dense, Embedding, Sequential, SoftAttention, LSTMCell, Tanh
from tiefnet.text.caption_attend import ShowAttendTell
from tiefnet.text.caption_base import Captioner, DecoderState, build_encoder, softmax

__all__ = ["MODELS", "Captioner", "DecoderState", "ShowAndTell", "ShowAttendTell", "build_encoder", "build_model"]


class ShowAndTell(Captioner):
    """(h^0, c^0) = W_init a + b_init; h^t, c^t = LSTM(E w_{t-1}; h^{t-1}, c^{t-1}) (4.4.1).

    a is the CNN's last activation a_CNN (N, C, H', W') flattened (``pooling="flatten"``: every
    position its own weights), or its mean over the positions (``"mean"``: the globally pooled output
    of the CNNs Show and Tell used, GoogLeNet's).

    Shapes:
        forward((images (N, 3, S, S), words (N, T))) -> p (N, T, V)
        children: encoder, init Dense(C H' W' or C, 2H), embed Embedding(V, E), lstm LSTM(E, H), output Dense(H, V)
    """

    def __init__(self, encoder: Sequential, init: Dense, embed: Embedding, lstm: LSTM, output: Dense,
                 pooling: str = "flatten"):
        super().__init__(encoder, init, embed, output)
        self.lstm = lstm
        if pooling not in ("flatten", "mean"):
            raise ValueError(f"ShowAndTell: pooling={pooling!r} is not flatten or mean")
        self.pooling = pooling
        self._check_parts({"encoder": Sequential, "init": Dense, "embed": Embedding, "lstm": LSTM, "output": Dense},
                          lambda: [("init's n_out", init.n_out, 2 * lstm.H), ("the LSTM's input D", lstm.D, embed.D),
                           ("output's n_in", output.n_in, lstm.H), ("output's n_out", output.n_out, embed.V)])

    def children(self) -> list:
        return [self.encoder, self.init, self.embed, self.lstm, self.output_layer]

    def parts(self) -> dict[str, Any]:
        return {**super().parts(), "lstm": self.lstm}

    def to_config(self) -> dict[str, Any]:
        return {**super().to_config(), "pooling": self.pooling}

    def _image_vector(self, a: Array) -> Array:
        """a_CNN (N, C, H', W') -> (N, C H' W') flattened or (N, C) averaged."""
        return a.reshape(a.shape[0], -1) if self.pooling == "flatten" else a.mean(axis=(2, 3))

    def forward(self, x, train: bool = False) -> Array:
        images, words = x
        a = self.features(images, train)  # (N, C, H', W')
        self._check_words(words, a.shape[0])
        if train:
            self._a_shape = a.shape
        h0, c0 = self._initial_state(self._image_vector(a), train)  # the lecture's first hidden state
        h, _ = self.lstm.forward_state(self.embed.forward(words, train), (h0, c0), train)  # (N, T, H)
        p = softmax(self.output_layer.forward(h, train))  # (N, T, V)
        if train:
            self.output = p
        return p

    def backward(self, grad: Array, need_input_grad: bool = False, penalty: float = 0.0) -> None:
        """grad = delta = dC/dz of the softmax output (N, T, V); BPTT, then back through the CNN.
        ``penalty`` is the attention model's: Show and Tell has no attention to penalise (0 only)."""
        if penalty:
            raise ValueError("ShowAndTell has no attention: the doubly stochastic penalty must be 0")
        dh = self.output_layer.backward(grad)  # (N, T, H)
        dx, (dh0, dc0) = self.lstm.backward_state(dh)  # (N, T, E); dC/d(h^0, c^0)
        self.embed.backward(dx)
        da = self.init.backward(xp.concatenate([dh0, dc0], axis=1))  # (N, C H' W') or (N, C)
        N, C, Hf, Wf = self._a_shape
        if self.pooling == "mean":  # every position had 1/(H' W') of the mean
            da = xp.broadcast_to((da / (Hf * Wf))[:, :, None, None], self._a_shape)
        self.encoder.backward(xp.ascontiguousarray(da.reshape(self._a_shape)), need_input_grad=False)

    def start(self, images: Array) -> DecoderState:
        """The decoder's first state for images (B, 3, S, S): (h^0, c^0) = W_init a_CNN + b_init (4.4.1),
        "die (affin transformierte) Ausgabe eines CNN als ersten hidden state eines RNN"."""
        a = self.features(images)
        h, c = self._initial_state(self._image_vector(a), False)
        return DecoderState(h, c, None, None)

    def step(self, words: Array, state: DecoderState) -> tuple[Array, DecoderState, None]:
        """p (B, V) of the next word after ``words`` (B,), the new state, no attention weights:
        x^t = E w_{t-1}, (h^t, c^t) = LSTM(x^t; h^{t-1}, c^{t-1}), p^t = softmax(W_out h^t + b_out) (4.4.1)."""
        x = self.embed.forward(words[:, None])  # (B, 1, E)
        h, (h1, c1) = self.lstm.forward_state(x, (state.h, state.c))
        return softmax(self.output_layer.forward(h[:, 0])), DecoderState(h1, c1, None, None), None


def _output_layer(n_in: int, V: int, deep: int, rng: numpy.random.Generator):
    """p^t's layer: Dense(n_in, V), or with ``deep`` > 0 Xu et al.'s deep output Dense -> tanh -> Dense."""
    if not deep:
        return Dense(n_in, V, rng=rng)
    return Sequential(Dense(n_in, deep, rng=rng), Tanh(), Dense(deep, V, rng=rng))


MODELS = {"ShowAndTell": ShowAndTell, "ShowAttendTell": ShowAttendTell}


def build_model(attention: bool, V: int, canvas: int, channels: tuple[int, ...], hidden: int, embed: int,
                attention_units: int, rng: numpy.random.Generator, init_from_mean: bool = True,
                context_dropout: float = 0.0, deep_output: int = 0, pooling: str = "flatten",
                extra_convs: int = 0) -> Captioner:
    """A Show-and-Tell or a Show-Attend-and-Tell model for images canvas x canvas and V words."""
    encoder = build_encoder(channels, rng, extra_convs)
    C = channels[-1]
    side = canvas // 2 ** len(channels)
    E, H = embed, hidden
    if attention:
        C += 2  # every region's features and its place
        model: Captioner = ShowAttendTell(encoder, Dense(C, 2 * H, rng=rng), Embedding(V, E, rng=rng),
                                          SoftAttention(C, H, attention_units, rng=rng),
                                          LSTMCell(E + C, H, rng=rng), _output_layer(H + C, V, deep_output, rng),
                                          init_from_mean,
                                          context_dropout, numpy.random.default_rng(rng.integers(2**63)))
    else:
        model = ShowAndTell(encoder, Dense(C * side * side if pooling == "flatten" else C, 2 * H, rng=rng),
                            Embedding(V, E, rng=rng), LSTM(E, H, rng=rng), Dense(H, V, rng=rng), pooling)
    model.init.params["b"][...] = 0  # start from (h^0, c^0) = W_init a, not from random biases
    for layer in model.output_layer.walk():
        if isinstance(layer[1], Dense):
            layer[1].params["b"][...] = 0
    return model

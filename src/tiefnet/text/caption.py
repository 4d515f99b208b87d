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

from typing import Any, Callable, NamedTuple

import numpy

from tiefnet import backend
from tiefnet.backend import Array, xp
from tiefnet.errors import ShapeError
from tiefnet.nn.layer import layer_to_config
from tiefnet.nn import Container, Conv2d, Dense, Embedding, LSTM, LSTMCell, MaxPool2d, ReLU, Sequential, SoftAttention, Tanh


def build_encoder(channels: tuple[int, ...], rng: numpy.random.Generator, extra: int = 0) -> Sequential:
    """3 -> channels[0] -> ... : each a 3x3 convolution (padding 1) + ReLU + 2x2 max-pooling; a 64 x 64
    image and three layers give an 8 x 8 map of channels[-1] features, each seeing 22 x 22 pixels.
    ``extra`` more 3x3 convolutions + ReLU at that resolution widen each position's view (by 16 pixels each)."""
    layers, previous = [], 3
    for F in channels:
        layers += [Conv2d(previous, F, 3, padding=1, init="he", rng=rng), ReLU(), MaxPool2d(2)]
        previous = F
    for _ in range(extra):
        layers += [Conv2d(previous, previous, 3, padding=1, init="he", rng=rng), ReLU()]
    return Sequential(*layers)


def _softmax(z: Array) -> Array:
    z = z - z.max(axis=-1, keepdims=True)
    p = xp.exp(z, out=z)
    p /= p.sum(axis=-1, keepdims=True)
    return p


def _ends(output) -> tuple[int | None, int | None]:
    """(n_in of the first Dense, n_out of the last) of the output layer: a Dense, or Xu et al.'s deep
    output Sequential(Dense, Tanh, Dense)."""
    dense = [output] if isinstance(output, Dense) else [layer for _, layer in output.walk() if isinstance(layer, Dense)]
    if not dense or (isinstance(output, Sequential) and not all(
            isinstance(layer, (Dense, Tanh)) for layer in output.layers)):
        raise ValueError("the output layer must be a Dense or a Sequential of Dense and Tanh layers")
    return dense[0].n_in, dense[-1].n_out


class DecoderState(NamedTuple):
    """The decoder between two generation steps; every part has the captions as its first axis."""

    h: Array  # (B, H)
    c: Array  # (B, H)
    regions: Array | None  # the attention model's a_j (B, R, C)
    proj: Array | None  # W_a a_j + b (B, R, A)

    def take(self, index: Array) -> DecoderState:
        """The states of the captions ``index`` (beam search keeps, drops and copies beams)."""
        return DecoderState(*(None if s is None else s[index] for s in self))


class Captioner(Container):
    """What both models share: the encoder, the embedding, the output layer, the image as input."""

    def __init__(self, encoder: Sequential, init: Dense, embed: Embedding, output: Dense):
        super().__init__()
        self.encoder, self.init, self.embed, self.output_layer = encoder, init, embed, output

    @property
    def H(self) -> int:
        return self.init.n_out // 2

    @property
    def V(self) -> int:
        return self.embed.V

    def _check_parts(self, kinds: dict[str, type], sizes: Callable[[], list[tuple[str, int, int]]]) -> None:
        """A model from a file: every part of the right type and the sizes where parts meet equal
        (a ValueError, which loading reports as a CheckpointError)."""
        for name, layer in self.parts().items():
            kind = kinds[name] if isinstance(kinds[name], tuple) else (kinds[name],)
            if not isinstance(layer, kind):
                raise ValueError(f"{type(self).__name__}: {name} must be a {' or '.join(k.__name__ for k in kind)}, "
                                 f"got {type(layer).__name__}")
        for what, got, expected in sizes():  # (called once the types are known to be right)
            if got != expected:
                raise ValueError(f"{type(self).__name__}: {what} is {got}, expected {expected}")

    def features(self, images: Array, train: bool = False) -> Array:
        """The CNN's output a_CNN (N, C, H', W') for images (N, 3, S, S)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ShapeError(f"{type(self).__name__}: expected images of shape (N, 3, S, S), got {tuple(images.shape)}")
        return self.encoder.forward(images, train)

    def _initial_state(self, a: Array, train: bool) -> tuple[Array, Array]:
        hc = self.init.forward(a, train)  # (h^0, c^0) = W_init a + b_init, (N, 2H)
        return hc[:, :self.H], hc[:, self.H:]

    @staticmethod
    def _check_words(words: Array, N: int) -> None:
        if words.ndim != 2 or words.shape[0] != N or words.dtype.kind not in "iu":
            raise ShapeError(f"expected word ids of shape ({N}, T), got {words.dtype} {tuple(words.shape)}")

    def parts(self) -> dict[str, Any]:
        """The children by the constructor's argument names."""
        return {"encoder": self.encoder, "init": self.init, "embed": self.embed, "output": self.output_layer}

    def to_config(self) -> dict[str, Any]:
        return {name: layer_to_config(layer) for name, layer in self.parts().items()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Captioner:
        return cls(**config)

    @classmethod
    def array_count(cls, config: dict[str, Any]) -> int | None:
        return 0  # the children hold the arrays


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
        p = _softmax(self.output_layer.forward(h, train))  # (N, T, V)
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
        a = self.features(images)
        h, c = self._initial_state(self._image_vector(a), False)
        return DecoderState(h, c, None, None)

    def step(self, words: Array, state: DecoderState) -> tuple[Array, DecoderState, None]:
        """p (B, V) of the next word after ``words`` (B,), the new state, no attention weights."""
        x = self.embed.forward(words[:, None])  # (B, 1, E)
        h, (h1, c1) = self.lstm.forward_state(x, (state.h, state.c))
        return _softmax(self.output_layer.forward(h[:, 0])), DecoderState(h1, c1, None, None), None


class ShowAttendTell(Captioner):
    """x^t = [E w_{t-1}; z^t], z^t = sum_j alpha_tj a_j from h^{t-1} (4.4.2); p^t = softmax(output([h^t; z^t])).

    Shapes:
        forward((images (N, 3, S, S), words (N, T))) -> p (N, T, V); after a training forward ``self.alpha`` (N, T, R)
        children: encoder, init Dense(C, 2H), embed Embedding(V, E), attention SoftAttention(C, H, A),
        cell LSTMCell(E + C, H), output Dense(H + C, V) or the deep output Sequential(Dense(H + C, K), Tanh, Dense(K, V))
    """

    def __init__(self, encoder: Sequential, init: Dense, embed: Embedding, attention: SoftAttention,
                 cell: LSTMCell, output: Dense, init_from_mean: bool = True, context_dropout: float = 0.0,
                 rng: numpy.random.Generator | None = None):
        super().__init__(encoder, init, embed, output)
        self.attention, self.cell = attention, cell
        if not isinstance(init_from_mean, bool):
            raise ValueError(f"ShowAttendTell: init_from_mean must be true or false, got {init_from_mean!r}")
        self.init_from_mean = init_from_mean
        if isinstance(context_dropout, bool) or not isinstance(context_dropout, (int, float)) \
                or not 0 <= context_dropout < 1:
            raise ValueError(f"ShowAttendTell: context_dropout={context_dropout!r} must be in [0, 1)")
        self.context_dropout = float(context_dropout)
        self.rng = numpy.random.default_rng() if rng is None else rng
        self._check_parts({"encoder": Sequential, "init": Dense, "embed": Embedding, "attention": SoftAttention,
                           "cell": LSTMCell, "output": (Dense, Sequential)},
                          lambda: [("init's n_out", init.n_out, 2 * cell.H), ("init's n_in", init.n_in, attention.C),
                           ("attention's H", attention.H, cell.H), ("the cell's input D", cell.D, embed.D + attention.C),
                           ("output's n_in", _ends(output)[0], cell.H + attention.C),
                           ("output's n_out", _ends(output)[1], embed.V)])

    def children(self) -> list:
        return [self.encoder, self.init, self.embed, self.attention, self.cell, self.output_layer]

    def parts(self) -> dict[str, Any]:
        return {**super().parts(), "attention": self.attention, "cell": self.cell}

    def to_config(self) -> dict[str, Any]:
        return {**super().to_config(), "init_from_mean": self.init_from_mean, "context_dropout": self.context_dropout}

    def _start_from(self, regions: Array) -> Array:
        """What (h^0, c^0) is computed from: the mean region (Xu et al.), or nothing (zeros: a learned
        start b_init, so that the image reaches the decoder only through the attention)."""
        mean = regions.mean(axis=1)  # (N, C)
        return mean if self.init_from_mean else xp.zeros_like(mean)

    @staticmethod
    def regions(a: Array) -> Array:
        """a_CNN (N, C, H', W') -> the R = H' W' regions a_j as rows, each with its place: (N, R, C + 2),
        the last two features the region's row and column centre in [-1, 1] (what "upper left" reads)."""
        N, C, Hf, Wf = a.shape
        regions = xp.empty((N, Hf * Wf, C + 2), dtype=a.dtype)
        regions[:, :, :C] = a.reshape(N, C, -1).transpose(0, 2, 1)
        rows, cols = xp.meshgrid(xp.linspace(-1, 1, Hf, dtype=a.dtype), xp.linspace(-1, 1, Wf, dtype=a.dtype),
                                 indexing="ij")
        regions[:, :, C] = rows.reshape(-1)
        regions[:, :, C + 1] = cols.reshape(-1)
        return regions

    def forward(self, x, train: bool = False) -> Array:
        images, words = x
        a = self.features(images, train)
        N, C = a.shape[:2]
        self._check_words(words, N)
        regions = self.regions(a)  # (N, R, C + 2)
        h, c = self._initial_state(self._start_from(regions), train)
        proj = self.attention.project(regions)  # W_a a_j + b, once per image
        e = self.embed.forward(words, train)  # (N, T, E)
        T = words.shape[1]
        hz = xp.empty((N, T, self.H + C + 2), dtype=a.dtype)  # [h^t; z^t], the output layer's input
        alpha = xp.empty((N, T, regions.shape[1]), dtype=a.dtype)
        keep = self._context_mask(N, T, a.dtype) if train else None  # (N, T, 1) or None
        caches = []
        for t in range(T):
            z, alpha[:, t], attention_cache = self.attention.step(regions, proj, h, train)  # from h^{t-1}
            z_in = z if keep is None else z * keep[:, t]  # what the LSTM step sees of the context
            h, (h, c), cell_cache = self.cell.step(xp.concatenate([e[:, t], z_in], axis=1), (h, c), train)
            hz[:, t, :self.H], hz[:, t, self.H:] = h, z
            caches.append((attention_cache, cell_cache))
        p = _softmax(self.output_layer.forward(hz.reshape(N * T, -1), train).reshape(N, T, -1))  # (N, T, V)
        if train:  # an evaluation forward writes nothing onto the model (concurrent use)
            self._caches, self._regions, self._a_shape, self._keep, self.output = caches, regions, a.shape, keep, p
            self.alpha = alpha  # of the last training forward: the penalty's gradient reads it
        return p

    def backward(self, grad: Array, need_input_grad: bool = False, penalty: float = 0.0, mask: Array | None = None) -> None:
        """grad = delta = dC/dz of the softmax output (N, T, V). ``penalty`` lambda adds
        lambda/N sum_n sum_j (1 - sum_t alpha_tj)^2 (steps where mask is 0 not counted) to the cost."""
        caches, regions = self._require_cache("_caches"), self._regions
        N, T = grad.shape[:2]
        E = self.embed.D
        dhz = self.output_layer.backward(grad.reshape(N * T, -1)).reshape(N, T, -1)  # (N, T, H + C)
        dalpha = self._penalty_gradient(penalty, mask) if penalty else None  # (N, T, R)
        self.attention.zero_grads()
        self.cell.zero_grads()
        de = xp.empty((N, T, E), dtype=grad.dtype)
        dregions = xp.zeros_like(regions)
        dproj = xp.zeros(regions.shape[:2] + (self.attention.A,), dtype=grad.dtype)
        dstate = None
        for t in range(T - 1, -1, -1):
            attention_cache, cell_cache = caches[t]
            dx, dstate = self.cell.step_backward(cell_cache, dhz[:, t, :self.H], dstate)  # (N, E + C)
            de[:, t] = dx[:, :E]
            dz = dx[:, E:] if self._keep is None else dx[:, E:] * self._keep[:, t]
            dz += dhz[:, t, self.H:]  # z^t enters the LSTM step and the output layer
            da, dpre, dh_prev = self.attention.step_backward(attention_cache, dz,
                                                             None if dalpha is None else dalpha[:, t])
            dregions += da
            dproj += dpre
            dstate = (dstate[0] + dh_prev, dstate[1])  # h^{t-1} also chose the attention of step t
        self.embed.backward(de)
        dregions += self.attention.project_backward(regions, dproj)
        dmean = self.init.backward(xp.concatenate(dstate, axis=1))  # (N, C)
        if self.init_from_mean:
            dregions += dmean[:, None, :] / regions.shape[1]  # the mean over the R regions
        N_, C, Hf, Wf = self._a_shape
        da = dregions[:, :, :C].transpose(0, 2, 1).reshape(N_, C, Hf, Wf)  # the places are no parameters
        self.encoder.backward(xp.ascontiguousarray(da), need_input_grad=False)

    def _context_mask(self, N: int, T: int, dtype) -> Array | None:
        """Dropout (2.7.3) of the context on its way into the LSTM, a whole z^t per caption and step, scaled
        by 1/(1 - rate); the output layer always sees z^t. Without it the decoder reads a digit once, while
        writing "large", and carries it in h (the attention of the digit word looks elsewhere)."""
        if not self.context_dropout:
            return None
        keep = self.rng.random((N, T, 1)) >= self.context_dropout
        return backend.asarray(keep / (1.0 - self.context_dropout), dtype)

    def _penalty_gradient(self, penalty: float, mask: Array | None) -> Array:
        """d/dalpha_tj of lambda/N sum_n sum_j (1 - sum_t m_t alpha_tj)^2 = -2 lambda/N (1 - sum_t m_t alpha_tj) m_t."""
        alpha = self._require_cache("alpha")
        m = xp.ones(alpha.shape[:2], dtype=alpha.dtype) if mask is None else mask.astype(alpha.dtype)
        gap = 1 - (alpha * m[:, :, None]).sum(axis=1)  # (N, R)
        return -2 * penalty / alpha.shape[0] * gap[:, None, :] * m[:, :, None]

    def penalty_cost(self, penalty: float, mask: Array | None = None) -> float:
        """lambda/N sum_n sum_j (1 - sum_t alpha_tj)^2 of the last training forward (Xu et al.'s doubly stochastic term)."""
        alpha = self._require_cache("alpha")
        m = xp.ones(alpha.shape[:2], dtype=alpha.dtype) if mask is None else mask.astype(alpha.dtype)
        gap = 1 - (alpha * m[:, :, None]).sum(axis=1)
        return float(penalty * (gap * gap).sum() / alpha.shape[0])

    def start(self, images: Array) -> DecoderState:
        regions = self.regions(self.features(images))
        h, c = self._initial_state(self._start_from(regions), False)
        return DecoderState(h, c, regions, self.attention.project(regions))

    def step(self, words: Array, state: DecoderState) -> tuple[Array, DecoderState, Array]:
        """p (B, V) of the next word after ``words`` (B,), the new state, and alpha (B, R) of this step."""
        z, alpha, _ = self.attention.step(state.regions, state.proj, state.h)
        x = xp.concatenate([self.embed.forward(words[:, None])[:, 0], z], axis=1)  # ids checked
        h, (h, c), _ = self.cell.step(x, (state.h, state.c))
        p = _softmax(self.output_layer.forward(xp.concatenate([h, z], axis=1)))  # (B, V)
        return p, DecoderState(h, c, state.regions, state.proj), alpha


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

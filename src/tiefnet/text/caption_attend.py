"""Show, Attend and Tell (4.4.2, Xu et al.): the decoder reads a context z^t = sum_j alpha_tj a_j over the
CNN's regions at every step (see :mod:`tiefnet.text.caption` for the whole model's equations)."""
from __future__ import annotations

from typing import Any

import numpy

from tiefnet import backend
from tiefnet.backend import Array, xp
from tiefnet.nn import Dense, Embedding, LSTMCell, Sequential, SoftAttention
from tiefnet.text.caption_base import Captioner, DecoderState, output_ends, softmax


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
                           ("output's n_in", output_ends(output)[0], cell.H + attention.C),
                           ("output's n_out", output_ends(output)[1], embed.V)])

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
        p = softmax(self.output_layer.forward(hz.reshape(N * T, -1), train).reshape(N, T, -1))  # (N, T, V)
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

    def _coverage_gap(self, mask: Array | None) -> tuple[Array, Array]:
        """(1 - sum_t m_t alpha_tj per caption and region (N, R), the mask m (N, T)) of the last training forward."""
        alpha = self._require_cache("alpha")
        m = xp.ones(alpha.shape[:2], dtype=alpha.dtype) if mask is None else mask.astype(alpha.dtype)
        return 1 - (alpha * m[:, :, None]).sum(axis=1), m

    def _penalty_gradient(self, penalty: float, mask: Array | None) -> Array:
        """d/dalpha_tj of lambda/N sum_n sum_j (1 - sum_t m_t alpha_tj)^2 = -2 lambda/N (1 - sum_t m_t alpha_tj) m_t."""
        gap, m = self._coverage_gap(mask)
        return -2 * penalty / gap.shape[0] * gap[:, None, :] * m[:, :, None]

    def penalty_cost(self, penalty: float, mask: Array | None = None) -> float:
        """lambda/N sum_n sum_j (1 - sum_t alpha_tj)^2 of the last training forward (Xu et al.'s doubly stochastic term)."""
        gap, _ = self._coverage_gap(mask)
        return float(penalty * (gap * gap).sum() / gap.shape[0])

    def start(self, images: Array) -> DecoderState:
        """The decoder's first state for images (B, 3, S, S): the regions a_j of a_CNN, their projection
        W_a a_j + b, and (h^0, c^0) = W_init (mean_j a_j) + b_init, or b_init alone with a learned start (4.4.2)."""
        regions = self.regions(self.features(images))
        h, c = self._initial_state(self._start_from(regions), False)
        return DecoderState(h, c, regions, self.attention.project(regions))

    def step(self, words: Array, state: DecoderState) -> tuple[Array, DecoderState, Array]:
        """p (B, V) of the next word after ``words`` (B,), the new state, and alpha (B, R) of this step (4.4.2):
        alpha_tj = softmax_j(v . tanh(W_a a_j + W_h h^{t-1} + b)), z^t = sum_j alpha_tj a_j,
        (h^t, c^t) = LSTM([E w_{t-1}; z^t]; h^{t-1}, c^{t-1}), p^t = softmax(output([h^t; z^t]))."""
        z, alpha, _ = self.attention.step(state.regions, state.proj, state.h)
        x = xp.concatenate([self.embed.forward(words[:, None])[:, 0], z], axis=1)  # ids checked
        h, (h, c), _ = self.cell.step(x, (state.h, state.c))
        p = softmax(self.output_layer.forward(xp.concatenate([h, z], axis=1)))  # (B, V)
        return p, DecoderState(h, c, state.regions, state.proj), alpha

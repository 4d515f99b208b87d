"""Greedy and beam search (4.4.1) on a known Markov chain: width 1 is greedy, a width of V^(L+1) is an
exhaustive search, the reported log p is that of the returned words; and on a real tiny attention model."""
import itertools
import math

import numpy as np
import pytest
from helpers import dev, host

from tiefnet.text.caption import DecoderState, build_model
from tiefnet.text import caption_search
from tiefnet.text.caption_search import Caption


def greedy(*args, **settings):  # the chain's every word is a word here: nothing banned
    return caption_search.greedy(*args, banned=(), **settings)


def beam_search(*args, **settings):
    return caption_search.beam_search(*args, banned=(), **settings)
from tiefnet.errors import ConfigError

V, START, END = 4, 1, 2
STEPS = 3  # the chain's probabilities depend on the step up to this many, then stay the same


class Chain:
    """A fake captioner: p(w_t | image, t, w_{t-1}, w_{t-2}), random but fixed by the seed.

    The state carries the step counter in h, the word before the previous one in c and the image in
    regions, so beam search's copying and dropping of beams (state.take) must keep them together."""

    def __init__(self, seed: int, images: int, sharp: float = 1.0):
        rng = np.random.default_rng(seed)
        self.p = rng.dirichlet(np.full(V, sharp), size=(images, STEPS, V, V))  # (N, t, w_{t-2}, w_{t-1}, V)

    def start(self, images) -> DecoderState:
        N = images.shape[0]
        return DecoderState(dev(np.zeros((N, 1))), dev(np.full((N, 1), START)), dev(np.arange(N)[:, None]), None)

    def probabilities(self, image: int, t: int, before: int, previous: int) -> np.ndarray:
        return self.p[image, min(t, STEPS - 1), before, previous]

    def step(self, words, state: DecoderState):
        w, t = host(words), host(state.h)[:, 0].astype(int)
        before, image = host(state.c)[:, 0].astype(int), host(state.regions)[:, 0]
        p = np.stack([self.probabilities(n, k, b, v) for n, k, b, v in zip(image, t, before, w)])
        return dev(p), DecoderState(dev(host(state.h) + 1), dev(w[:, None]), state.regions, None), None

    def log_p(self, image: int, ids: list[int], max_length: int) -> float:
        """sum ln p of the words and of the END that follows them (at most max_length words)."""
        words = [*ids, END]
        total, before, previous = 0.0, START, START
        for t, w in enumerate(words):
            total += math.log(self.probabilities(image, t, before, previous)[w])
            before, previous = previous, w
        return total

    def exhaustive(self, image: int, max_length: int) -> tuple[list[int], float]:
        """The most probable caption: 0 to L words, then END."""
        words = [w for w in range(V) if w != END]  # PAD, START and UNK are words to the search too
        every = [list(ids) for n in range(max_length + 1) for ids in itertools.product(words, repeat=n)]
        scores = [self.log_p(image, ids, max_length) for ids in every]
        return every[int(np.argmax(scores))], max(scores)


IMAGES = dev(np.zeros((3, 3, 8, 8)))


def test_width_one_is_greedy():
    for seed in range(10):
        chain = Chain(seed, 3)
        for L in (1, 2, 5):
            g, b = greedy(chain, IMAGES, max_length=L), beam_search(chain, IMAGES, width=1, max_length=L)
            assert [c.ids for c in g] == [c.ids for c in b]
            assert [c.log_p for c in g] == pytest.approx([c.log_p for c in b], abs=1e-12)


def test_greedy_takes_the_most_probable_word_each_step():
    chain = Chain(3, 3)
    for n, caption in enumerate(greedy(chain, IMAGES, max_length=6)):
        ids, before, previous = [], START, START
        for t in range(7):
            w = int(np.argmax(chain.probabilities(n, t, before, previous)))
            if w == END:
                break
            ids.append(w)
            before, previous = previous, w
        assert caption.ids == ids and caption.alpha is None


@pytest.mark.parametrize("L", [1, 2, 3])
def test_a_width_of_v_to_the_l_is_exhaustive(L):
    for seed in range(6):
        chain = Chain(100 + seed, 3, sharp=0.5)
        best = [chain.exhaustive(n, L) for n in range(3)]
        for width in (V ** L, V ** L + 7):
            found = beam_search(chain, IMAGES, width=width, max_length=L)
            assert [c.ids for c in found] == [ids for ids, _ in best]
            assert [c.log_p for c in found] == pytest.approx([s for _, s in best], abs=1e-9)
        # no narrower search finds more than the exhaustive one
        for width in (1, 2, 3, 5):
            for caption, (_, score) in zip(beam_search(chain, IMAGES, width=width, max_length=L), best):
                assert caption.log_p <= score + 1e-9


def test_the_reported_log_p_is_that_of_the_returned_words():
    for seed in range(8):
        chain = Chain(200 + seed, 3, sharp=0.7)
        for L in (1, 3, 6):
            for width in (1, 2, 3, 8):
                for n, caption in enumerate(beam_search(chain, IMAGES, width=width, max_length=L)):
                    assert isinstance(caption, Caption) and len(caption.ids) <= L and END not in caption.ids
                    assert caption.log_p == pytest.approx(chain.log_p(n, caption.ids, L), abs=1e-9)
            for n, caption in enumerate(greedy(chain, IMAGES, max_length=L)):
                assert caption.log_p == pytest.approx(chain.log_p(n, caption.ids, L), abs=1e-9)


def test_a_chain_that_never_ends_is_ended_after_max_length_words():
    chain = Chain(0, 3)
    chain.p[..., END] = 0.0  # END never comes (its ln p is the clipped ln of the smallest float)
    chain.p /= chain.p.sum(axis=-1, keepdims=True)
    for caption in greedy(chain, IMAGES, max_length=4) + beam_search(chain, IMAGES, width=3, max_length=4):
        assert len(caption.ids) == 4 and END not in caption.ids and np.isfinite(caption.log_p)
    chain.p[...] = 0.0
    chain.p[..., END] = 1.0  # END at once: the empty caption, log p 0
    for caption in greedy(chain, IMAGES, max_length=4) + beam_search(chain, IMAGES, width=3, max_length=4):
        assert caption.ids == [] and caption.log_p == 0.0


def test_bad_width_or_length_are_config_errors():
    chain = Chain(0, 3)
    for call in (lambda: beam_search(chain, IMAGES, width=0), lambda: beam_search(chain, IMAGES, width=10_001),
                 lambda: beam_search(chain, IMAGES, max_length=0), lambda: greedy(chain, IMAGES, max_length=0),
                 lambda: greedy(chain, IMAGES, max_length=201)):
        with pytest.raises(ConfigError):
            call()


# --- a real tiny Show-Attend-and-Tell model ------------------------------------------------------------

@pytest.fixture
def tiny():
    model = build_model(True, V=6, canvas=16, channels=(3, 4), hidden=5, embed=4, attention_units=3,
                        rng=np.random.default_rng(0))
    images = dev(np.random.default_rng(1).random((2, 3, 16, 16)), dtype=model.output_layer.params["W"].dtype)
    return model, images


def check_alpha(caption: Caption, L: int) -> None:
    assert len(caption.ids) <= L
    assert caption.alpha.shape == (len(caption.ids) + 1, 16)  # the words and the END; 16 regions: a 4 x 4 map
    np.testing.assert_allclose(caption.alpha.sum(axis=1), 1.0, rtol=1e-5)
    assert (caption.alpha >= 0).all()


def test_the_tiny_attention_model_one_alpha_row_per_word_and_the_end(tiny):
    model, images = tiny
    for L in (1, 3, 8):
        captions = greedy(model, images, max_length=L)
        assert len(captions) == 2
        for caption in captions:
            check_alpha(caption, L)
            assert all(0 <= i < 6 and i != END for i in caption.ids)
        beams = beam_search(model, images, width=1, max_length=L)
        assert [c.ids for c in beams] == [c.ids for c in captions]
        for b, g in zip(beams, captions):
            assert b.log_p == pytest.approx(g.log_p, abs=1e-5)
            np.testing.assert_allclose(b.alpha, g.alpha, rtol=1e-5, atol=1e-7)
        for caption in beam_search(model, images, width=3, max_length=L):
            check_alpha(caption, L)
    b = model.output_layer.params["b"]
    b[END] = 50.0  # END at once: no words, one alpha row (the END's)
    for caption in greedy(model, images, max_length=4) + beam_search(model, images, width=2, max_length=4):
        assert caption.ids == [] and caption.alpha.shape == (1, 16)
    b[END] = -50.0  # END only when it must come: max_length words and the END's row
    for caption in greedy(model, images, max_length=4) + beam_search(model, images, width=2, max_length=4):
        assert len(caption.ids) == 4 and caption.alpha.shape == (5, 16)


def test_by_default_no_search_writes_pad_or_start():
    chain = Chain(3, 3)
    chain.p[..., 0] = chain.p[..., 1] = 10.0  # PAD and START far more probable than anything else
    chain.p /= chain.p.sum(axis=-1, keepdims=True)
    for caption in caption_search.greedy(chain, IMAGES, max_length=4) + \
            caption_search.beam_search(chain, IMAGES, width=3, max_length=4):
        assert not {0, 1} & set(caption.ids)
    assert {0, 1} & set(greedy(chain, IMAGES, max_length=4)[0].ids)  # allowed, they win

"""The captioning models of 4.4.1-4.4.2 whole: difference quotients of the cost (encoder included) in
float64, a 50-example batch learned by heart, saving and loading, bad architectures from a file."""
from __future__ import annotations

import numpy as np
import pytest

from tiefnet import backend
from tiefnet.checkpoint import load_model, save_model
from tiefnet.errors import CheckpointError
from tiefnet.gradcheck import numerical_gradient, relative_error
from tiefnet.nn import LogLikelihood, layer_from_config, layer_to_config
from tiefnet.optim import Adam, clip_gradients
from tiefnet.text.caption import MODELS, ShowAndTell, ShowAttendTell, build_model

from tests.helpers import dev, host

CASES = [(False, True, 0.0, {}), (False, True, 0.0, {"pooling": "mean"}), (True, True, 0.0, {}),
         (True, True, 0.4, {}), (True, False, 0.0, {}), (True, False, 0.0, {"deep_output": 5, "extra_convs": 1}),
         (False, True, 0.0, {"extra_convs": 2})]  # attention, mean start, penalty, more settings


def tiny(attention: bool, init_from_mean: bool = True, seed: int = 1, **settings):
    with backend.default_dtype(np.float64):
        return build_model(attention, V=7, canvas=16, channels=(2, 3), hidden=4, embed=3, attention_units=3,
                           rng=np.random.default_rng(seed), init_from_mean=init_from_mean, **settings)


def batch(seed: int = 2):
    rng = np.random.default_rng(seed)
    images = dev(rng.standard_normal((2, 3, 16, 16)))
    words = dev(rng.integers(0, 7, (2, 4)))
    y = dev(np.eye(7)[rng.integers(0, 7, (2, 4))])
    mask = dev(np.array([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=np.float64))  # the first caption is one word shorter
    return images, words, y, mask


@pytest.mark.parametrize("attention, mean_start, penalty, settings", CASES)
def test_every_gradient_of_the_whole_model_matches_difference_quotients(attention, mean_start, penalty, settings):
    model = tiny(attention, mean_start, **settings)
    images, words, y, mask = batch()
    loss = LogLikelihood()
    extra = {"mask": mask} if attention else {}

    def cost():
        p = model.forward((images, words), train=True)
        c = loss.cost(p, y, mask)
        return backend.xp.asarray(c + (model.penalty_cost(penalty, mask) if penalty else 0.0))

    p = model.forward((images, words), train=True)
    model.backward(loss.delta(p, y, mask), penalty=penalty, **extra)  # delta^L = (p - y) m / N
    analytic = {key: g.copy() for key, g in model.grads.items()}
    for param in model.parameters():
        numeric = numerical_gradient(cost, param.layer.params[param.name], backend.xp.asarray(1.0))
        assert relative_error(analytic[param.key], numeric) < 1e-6, param.key


def test_the_learned_start_ignores_the_mean_region():
    model = tiny(True, init_from_mean=False)
    images, words, _, _ = batch()
    first = model.start(images)
    assert np.allclose(host(first.h), host(first.h)[0])  # the same h^0 for every image
    mean_model = tiny(True, init_from_mean=True)
    assert not np.allclose(host(mean_model.start(images).h)[0], host(mean_model.start(images).h)[1])


def test_generation_steps_repeat_the_teacher_forced_forward():
    for attention in (False, True):
        model = tiny(attention)
        images, words, _, _ = batch()
        p = host(model.forward((images, words), train=True))  # alpha is kept by a training forward
        state = model.start(images)
        for t in range(words.shape[1]):
            p_t, state, alpha = model.step(words[:, t], state)
            np.testing.assert_allclose(host(p_t), p[:, t], rtol=1e-10, atol=1e-12)
            if attention:
                np.testing.assert_allclose(host(alpha), host(model.alpha)[:, t], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("attention", [False, True])
def test_a_batch_of_50_scenes_is_learned_by_heart(attention, scenes50):
    """4.4.1: teacher forcing on 50 scenes, one caption each, drives the cost to nearly zero."""
    from tiefnet.data.captions import Vocabulary
    from tiefnet.text.caption_run import as_input

    data = scenes50
    captions = [refs[0] for refs in data.captions]
    vocab = Vocabulary.build([[c] for c in captions])
    inputs, targets = vocab.sequences(captions, 40)
    mask = dev(targets != 0)
    y = dev(np.eye(len(vocab), dtype=np.float32)[targets])
    model = build_model(attention, len(vocab), 64, (8, 16, 16), 64, 16, 16, np.random.default_rng(0))
    optimizer = Adam(1e-2).bind(model)
    loss, images, words = LogLikelihood(), as_input(data.images), dev(inputs)
    with backend.thread_limit(1):
        for _ in range(200):
            p = model.forward((images, words), train=True)
            model.backward(loss.delta(p, y, mask), **({"mask": mask} if attention else {}))
            clip_gradients(model, 5.0)
            optimizer.step()
    per_word = loss.cost(model.forward((images, words)), y, mask) * len(captions) / float(mask.sum())
    assert per_word < 0.05  # nats per word, from ln V = 3.4 at the start


@pytest.fixture(scope="module")
def scenes50():
    from tiefnet.data.scenes import make_scenes

    return make_scenes("train", 50, seed=3)


def test_a_model_saves_and_loads_with_its_architecture(tmp_path):
    for attention in (False, True):
        model = tiny(attention, init_from_mean=not attention, extra_convs=1,
                     **({"deep_output": 4, "context_dropout": 0.5} if attention else {"pooling": "mean"}))
        save_model(tmp_path / str(attention), model, {"words": []})
        loaded, _ = load_model(tmp_path / str(attention), custom=MODELS)
        assert type(loaded) is type(model)
        images, words, _, _ = batch()
        np.testing.assert_allclose(host(loaded.forward((images, words))), host(model.forward((images, words))),
                                   rtol=1e-5)
        if attention:
            assert loaded.init_from_mean is False and loaded.context_dropout == 0.5
        else:
            assert loaded.pooling == "mean"


def test_an_architecture_whose_parts_do_not_fit_is_refused():
    config = layer_to_config(tiny(False))
    config["lstm"]["H"] = 5  # the init layer gives 2 x 4 numbers
    with pytest.raises(CheckpointError, match="init's n_out"):
        layer_from_config(config, custom=MODELS)
    config = layer_to_config(tiny(True))
    config["cell"], config["attention"] = config["attention"], config["cell"]
    with pytest.raises(CheckpointError, match="must be a SoftAttention"):
        layer_from_config(config, custom=MODELS)
    config = layer_to_config(tiny(True))
    config["init_from_mean"] = "yes"
    with pytest.raises(CheckpointError, match="init_from_mean"):
        layer_from_config(config, custom=MODELS)


def test_both_model_types_are_containers_of_their_parts():
    assert [type(c).__name__ for c in tiny(False).children()] == ["Sequential", "Dense", "Embedding", "LSTM", "Dense"]
    assert [type(c).__name__ for c in tiny(True).children()] == ["Sequential", "Dense", "Embedding", "SoftAttention",
                                                                 "LSTMCell", "Dense"]
    assert isinstance(tiny(False), ShowAndTell) and isinstance(tiny(True), ShowAttendTell)


def test_context_dropout_gradients_and_evaluation():
    """The dropped contexts are part of the function: with the mask fixed (the generator re-seeded before
    each training forward) every gradient matches difference quotients; evaluation drops nothing."""
    model = tiny(True, init_from_mean=False, context_dropout=0.5)
    images, words, y, mask = batch()
    forward = model.forward

    def fixed(x, train=False):
        model.rng = np.random.default_rng(5)
        return forward(x, train)

    model.forward = fixed
    loss = LogLikelihood()
    p = model.forward((images, words), train=True)
    assert model._keep is not None and 0 < float((model._keep == 0).mean()) < 1
    model.backward(loss.delta(p, y, mask), mask=mask)
    analytic = {key: g.copy() for key, g in model.grads.items()}
    cost = lambda: backend.xp.asarray(loss.cost(model.forward((images, words), train=True), y, mask))  # noqa: E731
    for param in model.parameters():
        numeric = numerical_gradient(cost, param.layer.params[param.name], backend.xp.asarray(1.0))
        assert relative_error(analytic[param.key], numeric) < 1e-6, param.key
    state = model.rng.bit_generator.state
    a, b = host(forward((images, words))), host(forward((images, words)))  # the unwrapped forward
    assert np.array_equal(a, b) and model.rng.bit_generator.state == state  # no dropout, no draw

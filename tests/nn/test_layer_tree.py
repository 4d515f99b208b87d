"""The layer tree: one walk finds every parameter, buffer and generator; frozen layers compute
dC/dx only; an evaluation forward writes nothing onto any layer (so threads can share one model);
a layer that hides a parameterised layer from the walk is refused instead of silently not training."""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from helpers import dev, guard_against_writes, host

from tiefnet.errors import ConfigError
from tiefnet.nn import (LAYER_TYPES, SoftAttention, LSTM, RNN, BatchNorm1d, LSTMCell, RNNCell, BatchNorm2d, Container, Conv2d, Dense, Dropout,
                        Embedding, Flatten, InstanceNorm2d, L2Pool2d, Layer, MaxPool2d, Parallel, ReflectionPad2d, ReLU,
                        Reshape, Residual, Sequential, Sigmoid, Softmax, Step, Tanh, Taps, TimeFlatten, Upsample,
                        ZeroPad2d)
from tiefnet.optim import SGD, Adam
from tiefnet.train import predict


def rand(shape, seed=0, positive=False):
    a = np.random.default_rng(seed).standard_normal(shape)
    return dev(np.abs(a) + 0.1 if positive else a)


# --- the walk ----------------------------------------------------------------------------------
def nested():
    rng = np.random.default_rng(0)
    return Sequential(Dense(4, 4, rng=rng), Dropout(0.5, rng=np.random.default_rng(1)),
                      Residual(Sequential(Dense(4, 4, rng=rng), Tanh())),
                      Parallel(Dense(4, 2, rng=rng), Sequential(Dropout(0.2, rng=np.random.default_rng(2)),
                                                                Dense(4, 1, rng=rng))))


def test_walk_keys_parameters_and_generators():
    model = nested()
    assert [key for key, _ in model.walk()] == ["", "0.", "1.", "2.", "2.0.", "2.0.0.", "2.0.1.", "3.", "3.0.",
                                                "3.1.", "3.1.0.", "3.1.1."]
    assert [p.key for p in model.parameters()] == ["0.W", "0.b", "2.0.0.W", "2.0.0.b", "3.0.W", "3.0.b",
                                                   "3.1.1.W", "3.1.1.b"]
    assert list(model.params) == [p.key for p in model.parameters()]
    assert model.params["2.0.0.W"] is model.layers[2].body.layers[0].params["W"]
    assert [type(l).__name__ for l in model.random_layers()] == ["Dropout", "Dropout"]
    assert list(model.arrays()) == list(model.params)  # no buffers here


def test_decay_flags_weights_and_recurrent_U_yes_biases_no():
    decayed = {p.key: p.decayed for p in Sequential(Embedding(5, 3), LSTM(3, 4), Dense(4, 2)).parameters()}
    assert decayed == {"0.W": True, "1.W": True, "1.U": True, "1.b": False, "2.W": True, "2.b": False}
    conv = Conv2d(1, 2, 3)
    assert conv.decays("W") and not conv.decays("b")
    conv.decayed = frozenset()  # a layer may say otherwise
    assert not conv.decays("W")


def test_buffers_are_part_of_the_state():
    class Counter(Layer):
        def __init__(self):
            super().__init__()
            self.buffers["seen"] = dev(np.zeros(3))

        def forward(self, x, train=False):
            return x

    model = Sequential(Dense(3, 3), Counter())
    assert list(model.arrays()) == ["0.W", "0.b", "1.seen"] and list(model.buffers) == ["1.seen"]
    assert "1.seen" not in model.params


# --- a layer that hides a parameterised layer --------------------------------------------------
class HiddenResidual(Layer):
    """The mistake of a new user: a block whose params are its inner Dense's, and no children()."""

    def __init__(self):
        super().__init__()
        self.inner = Dense(3, 3, rng=np.random.default_rng(0))
        self.params = self.inner.params
        self.grads = self.inner.grads

    def forward(self, x, train=False):
        return self.inner.forward(x, train) + x

    def backward(self, grad, need_input_grad=True):
        return self.inner.backward(grad, need_input_grad) + grad


class ListedResidual(Container):
    """The same block, listing its part."""

    def __init__(self):
        super().__init__()
        self.inner = Dense(3, 3, rng=np.random.default_rng(0))

    def children(self):
        return [self.inner]

    def forward(self, x, train=False):
        return self.inner.forward(x, train) + x

    def backward(self, grad, need_input_grad=True):
        dx = self.inner.backward(grad, need_input_grad)
        return None if dx is None else dx + grad


def test_a_block_that_hides_its_inner_layer_is_refused_not_silently_untrained():
    model = Sequential(HiddenResidual(), Tanh())
    with pytest.raises(ConfigError, match=r"HiddenResidual.inner holds Dense but HiddenResidual.children\(\) "
                                          r"does not list it"):
        SGD(0.1).bind(model, 10)


def test_a_block_that_lists_its_inner_layer_trains_it():
    model = Sequential(ListedResidual(), Tanh())
    optimizer = SGD(0.5).bind(model, 10)
    before = host(model.layers[0].inner.params["W"]).copy()
    for step in range(3):
        model.forward(rand((4, 3), step), train=True)
        model.backward(rand((4, 3), 10 + step), need_input_grad=False)
        optimizer.step()
    assert not np.allclose(host(model.layers[0].inner.params["W"]), before)


class TiedDecoder(Layer):
    """Reads the embedding matrix of a layer that sits elsewhere in the tree (tied weights)."""

    def __init__(self, embedding):
        super().__init__()
        self.embedding = embedding

    def forward(self, x, train=False):
        return x @ self.embedding.params["W"].T


class HiddenInADict(Layer):
    def __init__(self):
        super().__init__()
        self.parts = {"inner": Dense(2, 2)}

    def forward(self, x, train=False):
        return self.parts["inner"].forward(x, train)


def test_a_reference_to_a_layer_elsewhere_in_the_tree_is_fine_one_hidden_in_a_dict_is_not():
    embedding = Embedding(5, 3)
    SGD(0.1).bind(Sequential(embedding, LSTM(3, 3), TiedDecoder(embedding)), 10)
    with pytest.raises(ConfigError, match="HiddenInADict.parts holds Dense"):
        SGD(0.1).bind(Sequential(HiddenInADict()), 10)


def test_the_same_array_twice_is_refused():
    shared = Dense(3, 3)
    with pytest.raises(ConfigError, match="appears twice"):
        SGD(0.1).bind(Sequential(shared, Tanh(), shared), 10)


# --- freezing ------------------------------------------------------------------------------------
def test_a_frozen_layer_writes_no_gradient_and_passes_the_right_dx(float64):
    def build():
        rng = np.random.default_rng(0)
        return Sequential(Dense(3, 4, rng=rng), Tanh(), Dense(4, 2, rng=rng))

    x, up = rand((5, 3), 1), rand((5, 2), 2)
    reference = build()
    reference.forward(x, train=True)
    dx_ref = reference.backward(up)
    model = build()
    model.forward(x, train=True)
    model.backward(up)  # creates the gradient arrays
    model.freeze()
    untouched = guard_against_writes(model.grads.values())  # any write by backward shows (or raises)
    model.forward(x, train=True)
    np.testing.assert_array_equal(host(model.backward(up)), host(dx_ref))
    assert model.backward(up, need_input_grad=False) is None  # nothing to compute at all
    assert untouched()
    assert not model.trainable and model.first_trainable() == 3


def test_optimizers_leave_frozen_layers_alone_and_notice_a_changed_flag():
    model = Sequential(Dense(3, 4, rng=np.random.default_rng(0)), Tanh(), Dense(4, 2, rng=np.random.default_rng(1)))
    model.layers[0].freeze()
    assert model.first_trainable() == 2
    optimizer = SGD(0.5).bind(model, 10)
    assert sum(group.p.size for group in optimizer.groups) == 4 * 2 + 2
    frozen = host(model.layers[0].params["W"]).copy()
    model.forward(rand((4, 3)), train=True)
    model.backward(rand((4, 2), 1), need_input_grad=False)
    optimizer.step()
    np.testing.assert_array_equal(host(model.layers[0].params["W"]), frozen)
    other = Sequential(Dense(2, 2))
    other.freeze()  # another model's flag: none of this optimizer's business
    model.layers[2].trainable = True  # already trainable: nothing changes
    optimizer.step()
    model.layers[0].unfreeze()
    with pytest.raises(ConfigError, match=r"frozen or unfrozen after bind\(\)"):
        optimizer.step()
    optimizer.bind(model, 10).step()  # bound again: fine


# --- optimising plain arrays (an image, 3.4) ------------------------------------------------------------
def test_an_optimizer_bound_to_a_plain_array_updates_it_in_place():
    target = rand((2, 3), 0)
    image = dev(np.zeros((2, 3), dtype=np.float32))
    optimizer = Adam(0.1).bind(image)
    for _ in range(300):
        optimizer.step(2 * (image - target))  # dC/dx of ||x - t||^2
    np.testing.assert_allclose(host(image), host(target), atol=1e-3)
    with pytest.raises(ConfigError, match="1 gradients for 2 bound arrays"):
        Adam(0.1).bind([image, dev(np.zeros(4, dtype=np.float32))]).step(image)
    with pytest.raises(ConfigError, match="needs their gradients at every step"):
        Adam(0.1).bind(image).step()  # a stale gradient would keep moving the image
    with pytest.raises(ConfigError, match="for plain arrays only"):
        SGD(0.1).bind(Dense(2, 2)).step(image)
    with pytest.raises(ConfigError, match="C-contiguous"):
        SGD(0.1).bind(dev(np.zeros((3, 4), dtype=np.float32)).T)


# --- an evaluation forward writes nothing ----------------------------------------------------------------
# every layer type the registry knows, with an input that fits
FACTORIES = {
    "Sequential": lambda: (Sequential(Dense(3, 2), Sigmoid()), rand((2, 3))),
    "Residual": lambda: (Residual(Sequential(Dense(3, 3), Tanh())), rand((2, 3))),
    "Parallel": lambda: (Parallel(Dense(3, 2), Dense(3, 1)), rand((2, 3))),
    "Taps": lambda: (Taps(Sequential(Dense(3, 2), Tanh()), {"h": 1}), rand((2, 3))),
    "Dense": lambda: (Dense(3, 2), rand((2, 3))),
    "Sigmoid": lambda: (Sigmoid(), rand((2, 3))),
    "Tanh": lambda: (Tanh(), rand((2, 3))),
    "ReLU": lambda: (ReLU(), rand((2, 3))),
    "Softmax": lambda: (Softmax(), rand((2, 3))),
    "Step": lambda: (Step(), rand((2, 3))),
    "Dropout": lambda: (Dropout(0.5, rng=np.random.default_rng(0)), rand((2, 3))),
    "Conv2d": lambda: (Conv2d(2, 3, 3, padding=1), rand((2, 2, 5, 5))),
    "MaxPool2d": lambda: (MaxPool2d(2), rand((2, 2, 4, 4))),
    "L2Pool2d": lambda: (L2Pool2d(2), rand((2, 2, 4, 4))),
    "Flatten": lambda: (Flatten(), rand((2, 2, 3, 3))),
    "Reshape": lambda: (Reshape((1, 2, 3)), rand((2, 6))),
    "Embedding": lambda: (Embedding(5, 3), dev(np.array([[0, 4, 2]]))),
    "RNN": lambda: (RNN(3, 4), rand((2, 5, 3))),
    "LSTM": lambda: (LSTM(3, 4), rand((2, 5, 3))),
    "TimeFlatten": lambda: (TimeFlatten(), rand((2, 5, 3))),
    "BatchNorm1d": lambda: (BatchNorm1d(3), rand((4, 3))),
    "BatchNorm2d": lambda: (BatchNorm2d(2), rand((2, 2, 3, 3))),
    "InstanceNorm2d": lambda: (InstanceNorm2d(2), rand((2, 2, 3, 3))),
    "ZeroPad2d": lambda: (ZeroPad2d(1), rand((2, 2, 3, 3))),
    "ReflectionPad2d": lambda: (ReflectionPad2d(1), rand((2, 2, 3, 3))),
    "Upsample": lambda: (Upsample(2), rand((2, 2, 3, 3))),
    "RNNCell": lambda: (RNNCell(3, 4), rand((2, 5, 3))),
    "LSTMCell": lambda: (LSTMCell(3, 4), rand((2, 5, 3))),
    "SoftAttention": lambda: (SoftAttention(3, 4, 5), (rand((2, 6, 3)), rand((2, 4), 3))),  # (regions, h_prev)
}


def snapshot(model):
    """Every attribute of every layer: arrays by value, everything else by identity."""
    shot = {}
    for key, layer in model.walk():
        for name, value in vars(layer).items():
            if isinstance(value, dict):
                value = {k: (host(v).tobytes() if hasattr(v, "shape") else id(v)) for k, v in value.items()}
                shot[key + name] = value
            else:
                shot[key + name] = id(value)
    return shot


def test_every_layer_type_is_covered():
    builtin = {name for name, cls in LAYER_TYPES.items() if cls.__module__.startswith("tiefnet.nn.")}
    assert set(FACTORIES) == builtin


def output_of(out):
    """One array of any layer's output (a tuple of heads, a dict of taps)."""
    if isinstance(out, tuple):
        return out[0]
    return out["h"] if isinstance(out, dict) else out


def gradient_for(out, seed=7):
    """A random dC/d(output) shaped like ``out``."""
    if isinstance(out, tuple):
        return tuple(rand(o.shape, seed + i) for i, o in enumerate(out))
    if isinstance(out, dict):
        return {k: rand(v.shape, seed) for k, v in out.items()}
    return rand(out.shape, seed)


TRAINABLE = sorted(name for name in FACTORIES if any(True for _ in FACTORIES[name]()[0].parameters()))


@pytest.mark.parametrize("name", TRAINABLE)
def test_every_frozen_layer_type_computes_dx_only(name):
    """Acceptance 3: a frozen layer writes none of its gradient arrays (nor replaces them) and passes
    the same dC/dx back as when it is trainable (BatchNorm: frozen, it is the evaluation function)."""
    layer, x = FACTORIES[name]()
    out = layer.forward(x, train=True)
    up = gradient_for(out)
    reference = layer.backward(up)  # creates the gradient arrays (Embedding: no dC/d(ids))
    layer.freeze()
    layer.forward(x, train=True)
    grads = dict(layer.grads)
    untouched = guard_against_writes(grads.values())
    dx = layer.backward(up)
    assert untouched() and all(layer.grads[k] is g for k, g in grads.items())
    if reference is not None and not name.startswith("BatchNorm"):  # (frozen BatchNorm: see test_norm.py)
        for ours, theirs in zip(dx, reference) if isinstance(dx, tuple) else [(dx, reference)]:  # (a, h_prev)
            np.testing.assert_array_equal(host(ours), host(theirs))
    assert layer.backward(up, need_input_grad=False) is None and untouched()


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_an_evaluation_forward_writes_nothing_onto_the_layer(name):
    layer, x = FACTORIES[name]()
    if hasattr(layer, "rng"):
        rng_state = layer.rng.bit_generator.state
    before = snapshot(layer)
    layer.forward(x)
    layer.forward(x, train=False)
    assert snapshot(layer) == before
    if hasattr(layer, "rng"):
        assert layer.rng.bit_generator.state == rng_state


def test_one_model_answers_many_threads_at_once():
    rng = np.random.default_rng(0)
    model = Sequential(Reshape((1, 8, 8)), Conv2d(1, 4, 3, rng=rng), MaxPool2d(2), ReLU(), Flatten(),
                       Dense(36, 10, rng=rng), Softmax())
    inputs = [rand((16, 64), seed) for seed in range(16)]
    expected = [host(predict(model, x)) for x in inputs]
    barrier = threading.Barrier(8)

    def answer(i):
        barrier.wait() if i < 8 else None  # the first eight start together
        return host(predict(model, inputs[i]))

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(answer, range(16)))
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_every_layer_type_alone_saves_and_loads(tmp_path, name):
    """Any layer is a model: save_model / load_model on it alone (a fused LSTM's carried ``state`` once
    hid the walk's method of the same name) gives the same outputs."""
    from tiefnet.checkpoint import load_model, save_model

    layer, x = FACTORIES[name]()
    save_model(tmp_path, layer)
    loaded, _ = load_model(tmp_path)
    ours, theirs = layer.forward(x), loaded.forward(x)
    np.testing.assert_array_equal(host(output_of(ours)), host(output_of(theirs)))


class Doubler(Layer):
    """A layer type of a user's own."""

    def forward(self, x, train=False):
        return 2 * x


def test_a_layer_type_of_your_own_loads_after_register_or_with_custom(tmp_path):
    from tiefnet.checkpoint import load_model, save_model
    from tiefnet.errors import CheckpointError
    from tiefnet.nn.registry import register

    save_model(tmp_path, Sequential(Dense(2, 2), Doubler()))
    with pytest.raises(CheckpointError, match="unknown layer type 'Doubler'"):
        load_model(tmp_path)
    assert type(load_model(tmp_path, custom={"Doubler": Doubler})[0].layers[1]) is Doubler
    try:
        register(Doubler)
        assert type(load_model(tmp_path)[0].layers[1]) is Doubler
    finally:
        LAYER_TYPES.pop("Doubler")
    with pytest.raises(TypeError, match="not a Layer subclass"):
        register(dict)


def test_an_architecture_nested_too_deep_is_refused():
    from tiefnet.errors import CheckpointError
    from tiefnet.nn.registry import MAX_DEPTH, layer_from_config

    config = {"type": "Dense", "n_in": 1, "n_out": 1}
    for _ in range(MAX_DEPTH + 5):
        config = {"type": "Sequential", "layers": [config]}
    with pytest.raises(CheckpointError, match="more than 64 levels deep"):
        layer_from_config(config)

"""The MNIST CNN of lecture 3.1-3.3 / Nielsen's chapter 6 (vision/cnn.py) and the model-dependent
settings of vision/mnist.py's Config: shapes, the lecture's numbers, layer order, saving, errors."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import dev, host

from tiefnet.backend import thread_limit
from tiefnet.checkpoint import load_model, save_model
from tiefnet.data.mnist import load_mnist
from tiefnet.errors import ConfigError
from tiefnet.nn import Conv2d, Dense, Dropout, Flatten, L2Pool2d, LogLikelihood, MaxPool2d, ReLU, Reshape, \
    Sequential, Sigmoid, Softmax
from tiefnet.optim import SGD
from tiefnet.train import fit
from tiefnet.vision.cnn import build_cnn, flat_size, map_sides, topology
from tiefnet.vision.mnist import MODEL_DEFAULTS, Config, build_network


def test_map_sides_follow_the_lecture_formula():
    # W_out = (W + 2P - R)/S + 1 with P = 0, S = 1: 28 -> 24, pooled 12; 12 -> 8, pooled 4 (3.3)
    assert map_sides([20, 40], 5) == [(24, 12), (8, 4)]
    assert map_sides([20], 5) == [(24, 12)]
    assert map_sides([8, 8], 3) == [(26, 13), (11, 5)]  # an odd side drops its last row in pooling
    assert flat_size([20, 40], 5) == 640 and flat_size([], 5) == 784


def test_chapter6_network_layers_and_shapes():
    net = build_cnn([20, 40], 5, [100], rng=np.random.default_rng(0))
    kinds = [type(layer) for layer in net.layers]
    # max-pooling before the activation, as Nielsen's ConvPoolLayer (the same function, fewer values)
    assert kinds == [Reshape, Conv2d, MaxPool2d, ReLU, Conv2d, MaxPool2d, ReLU, Flatten, Dense, ReLU, Dense, Softmax]
    assert net.input_features == 784  # a row of 784 pixels, like the dense networks
    # the lecture's count for 20 features of 5 x 5: 20 (5*5 + 1) = 520 parameters (3.1)
    assert sum(p.size for p in net.layers[1].params.values()) == 520
    assert host(net.layers[4].params["W"]).shape == (40, 20, 5, 5)
    assert host(net.layers[8].params["W"]).shape == (100, 640)
    x = dev(np.random.default_rng(1).random((3, 784)).astype(np.float32))
    a = host(net.forward(x))
    assert a.shape == (3, 10)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-5)  # softmax output
    assert topology([20, 40], 5, "max", [100]) == "conv 5x5x20 -> max-pool -> conv 5x5x40 -> max-pool -> 640-100-10"


def test_dropout_goes_before_every_dense_layer():
    net = build_cnn([4], 5, [16, 8], activation="sigmoid", pool="l2", dropout=0.5, output="sigmoid",
                    rng=np.random.default_rng(0))
    kinds = [type(layer) for layer in net.layers]
    assert kinds == [Reshape, Conv2d, Sigmoid, L2Pool2d, Flatten, Dropout, Dense, Sigmoid, Dropout, Dense, Sigmoid,
                     Dropout, Dense, Sigmoid]
    assert [layer.n_in for layer in net.layers if isinstance(layer, Dense)] == [4 * 12 * 12, 16, 8]


def test_same_seed_same_network_and_save_load_round_trip(tmp_path):
    a = build_network(Config(model="cnn", features="4,6", hidden="12", dropout=0.3), np.random.default_rng(7))
    b = build_network(Config(model="cnn", features="4,6", hidden="12", dropout=0.3), np.random.default_rng(7))
    for name in a.params:
        np.testing.assert_array_equal(host(a.params[name]), host(b.params[name]))
    save_model(tmp_path, a)
    loaded, _ = load_model(tmp_path)
    assert loaded.describe() == a.describe()
    x = dev(np.random.default_rng(2).random((5, 784)).astype(np.float32))
    np.testing.assert_array_equal(host(loaded.forward(x)), host(a.forward(x)))


def test_a_tiny_cnn_learns_a_hundred_digits():
    images = load_mnist().train.subset(100)
    rng = np.random.default_rng(0)
    net = build_cnn([4], 5, [16], rng=rng)
    with thread_limit(1):  # small GEMMs: a second BLAS thread only waits (and crawls on a busy machine)
        history = fit(net, LogLikelihood(), SGD(0.1), (images.x, images.y), epochs=15, batch_size=10,
                      test=(images.x, images.y), rng=rng, monitor_train=False)
    assert history.epochs[-1]["test_accuracy"] > 0.9  # it can fit the images it trains on


def test_dense_default_is_still_the_lectures_first_network():
    config = Config()
    assert (config.model, config.hidden, config.activation, config.cost, config.eta, config.lmbda, config.init) == \
        ("dense", "30", "sigmoid", "quadratic", 3.0, 0.0, "large")
    net = build_network(config, np.random.default_rng(3))
    rng = np.random.default_rng(3)  # the same draws as before the CNN existed: the same initial weights
    reference = Sequential(Dense(784, 30, init="large", rng=rng), Sigmoid(), Dense(30, 10, init="large", rng=rng),
                           Sigmoid())
    assert net.describe() == reference.describe()
    for name in reference.params:
        np.testing.assert_array_equal(host(net.params[name]), host(reference.params[name]))


def test_cnn_defaults_are_nielsens_chapter6_and_explicit_values_win():
    config = Config(model="cnn")
    assert {k: getattr(config, k) for k in MODEL_DEFAULTS["cnn"]} == MODEL_DEFAULTS["cnn"]
    assert config.hidden_sizes() == [100] and config.feature_sizes() == [20, 40]
    chosen = Config(model="cnn", hidden="", activation="tanh", eta=0.5, lmbda=0.0)
    assert (chosen.hidden, chosen.activation, chosen.eta, chosen.lmbda) == ("", "tanh", 0.5, 0.0)
    assert chosen.cost == "log-likelihood"  # not given: the model's default
    assert [type(layer) for layer in build_network(chosen, np.random.default_rng(0)).layers][-3:] == \
        [Flatten, Dense, Softmax]  # hidden '' : the conv stack feeds the output layer directly


@pytest.mark.parametrize("settings, fragment", [
    ({"model": "rnn"}, "model='rnn'"),
    ({"model": "cnn", "features": "20,x"}, "does not parse"),
    ({"model": "cnn", "features": "20,0"}, "at least 1"),
    ({"model": "cnn", "features": ""}, "at least one conv layer"),
    ({"model": "cnn", "features": "20,40,60"}, "too small"),
    ({"model": "cnn", "kernel": 30}, "too small"),
    ({"model": "cnn", "kernel": 0}, "kernel=0"),
    ({"model": "cnn", "pool": "mean"}, "pool='mean'"),
])
def test_config_rejects_bad_cnn_settings(settings, fragment):
    with pytest.raises(ConfigError) as error:
        Config(**settings)
    assert fragment in str(error.value)


def test_dense_model_ignores_the_conv_geometry():
    assert Config(features="20,40,60").describe() == "784-30-10"  # parsed, but only a cnn uses it
    with pytest.raises(ConfigError, match="does not parse"):
        Config(features="a")

"""Embedding: a table look-up whose gradient is the scatter-sum of delta (one-hot^T delta)."""
import numpy as np
import pytest
from helpers import dev, host

from tiefnet.backend import default_dtype
from tiefnet.errors import ConfigError, ShapeError
from tiefnet.gradcheck import numerical_gradient, relative_error
from tiefnet.nn.embedding import Embedding
from tiefnet.nn.registry import layer_from_config, layer_to_config


def test_forward_is_a_table_lookup():
    layer = Embedding(4, 3, rng=np.random.default_rng(0))
    ids = np.array([[1, 0, 2, 2, 3]])  # "hallo" over the vocabulary a, h, l, o
    out = host(layer.forward(dev(ids)))
    np.testing.assert_array_equal(out[0], host(layer.params["W"])[[1, 0, 2, 2, 3]])


def test_gradient_matches_difference_quotients():
    with default_dtype(np.float64):
        layer = Embedding(5, 3, rng=np.random.default_rng(1))
        ids = dev(np.random.default_rng(2).integers(0, 5, (2, 6)))
        upstream = dev(np.random.default_rng(3).standard_normal((2, 6, 3)))
        layer.forward(ids, train=True)
        assert layer.backward(upstream) is None
        numeric = numerical_gradient(lambda: layer.forward(ids, train=True), layer.params["W"], upstream)
        assert relative_error(layer.grads["W"], numeric) < 1e-7


def test_repeated_ids_sum_their_gradients():
    layer = Embedding(3, 2, rng=np.random.default_rng(0))
    layer.forward(dev(np.array([[2, 2, 0]])), train=True)
    layer.backward(dev(np.ones((1, 3, 2), np.float32)))
    np.testing.assert_array_equal(host(layer.grads["W"]), [[1, 1], [0, 0], [2, 2]])


def test_errors_and_config():
    with pytest.raises(ConfigError, match="V=0"):
        Embedding(0, 3)
    layer = Embedding(3, 2)
    with pytest.raises(ShapeError, match="ids must lie"):
        layer.forward(dev(np.array([[0, 3]])))
    with pytest.raises(ShapeError, match="integer ids"):
        layer.forward(dev(np.zeros((1, 2), np.float32)))
    with pytest.raises(RuntimeError, match="forward"):
        Embedding(3, 2).backward(dev(np.ones((1, 2, 2), np.float32)))
    again = layer_from_config(layer_to_config(layer))
    assert (again.V, again.D) == (3, 2)


def test_backward_is_a_scatter_add_without_a_one_hot_matrix():
    """dW[v] = sum of delta over the positions that read v, for a vocabulary far too large for the
    (N T, V) one-hot matrix (here 4000 x 200,000 floats = 3.2 GB): the peak allocation stays small."""
    import tracemalloc

    V, D = 200_000, 4
    layer = Embedding(V, D, rng=np.random.default_rng(0))
    ids = np.random.default_rng(1).integers(0, V, (40, 100))
    ids[0, :3] = 7  # one id read several times
    delta = np.random.default_rng(2).standard_normal((40, 100, D)).astype(np.float32)
    layer.forward(dev(ids), train=True)
    tracemalloc.start()
    layer.backward(dev(delta))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3 * V * D * 4 + 10 * delta.nbytes  # dW itself and a few copies of delta, no V x N T matrix
    expected = np.zeros((V, D))
    np.add.at(expected, ids.reshape(-1), delta.reshape(-1, D))
    np.testing.assert_allclose(host(layer.grads["W"]), expected, rtol=1e-5, atol=1e-5)

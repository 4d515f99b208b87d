"""A Dense layer with thousands of rows (a sequence model's output layer) cuts its GEMMs across
backend.thread_limit's threads: the same z, dC/dx and gradients as on one thread, to rounding."""
import numpy as np
import pytest
from helpers import dev, host

from tiefnet import backend
from tiefnet.nn import Dense
from tiefnet.nn.dense import SPLIT_ROWS


@pytest.mark.parametrize("shape", [(2 * SPLIT_ROWS + 7, 24), (9, 3 * SPLIT_ROWS // 8, 24)])
@pytest.mark.parametrize("trainable", [True, False])
def test_rows_on_two_threads_equal_one_thread(shape, trainable):
    rng = np.random.default_rng(0)
    layer = Dense(24, 13, rng=rng)
    layer.trainable = trainable
    x = dev(rng.standard_normal(shape).astype(np.float32))
    delta = dev(rng.standard_normal((*shape[:-1], 13)).astype(np.float32))
    results = []
    for threads in (1, 2):
        with backend.thread_limit(threads):
            z = host(layer.forward(x, True)).copy()
            dx = host(layer.backward(delta)).copy()
            grads = {k: host(g).copy() for k, g in layer.grads.items()} if trainable else {}
        results.append((z, dx, grads))
    (z1, dx1, g1), (z2, dx2, g2) = results
    np.testing.assert_allclose(z2, z1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx2, dx1, rtol=1e-5, atol=1e-5)
    for key in g1:
        np.testing.assert_allclose(g2[key], g1[key], rtol=1e-4, atol=1e-3)

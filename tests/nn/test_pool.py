"""MaxPool2d and L2Pool2d (3.1 "Pooling") against plain loops, central differences and their errors.

    max-pooling:  a[n, c, i, j] = max(x[n, c, i s : i s + k, j s : j s + k])
    L2-pooling:   a[n, c, i, j] = sqrt(sum(x[n, c, i s : i s + k, j s : j s + k]^2))
Regions that would run past the border are dropped (floor), so H_out = (H - k)//s + 1.
Backward: max-pooling sends da to the (first, in row-major order) maximal entry of each region;
L2-pooling sends da x / a to every entry. Overlapping regions (s < k) add up.
"""

import numpy as np
import pytest
from helpers import dev, host

from tiefnet.errors import ConfigError, ShapeError
from tiefnet.gradcheck import check_layer
from tiefnet.nn import L2Pool2d, MaxPool2d
from tiefnet.nn.registry import layer_from_config, layer_to_config
from helpers import every_variant  # noqa: F401  (each test runs with every variant of tiefnet.plans forced)

TOL = 1e-6

# (N, C, H, W, k, s): kernels 2 and 3, strides 1-3 (None = kernel), odd sizes, regions that
# overlap (s < k), tile (s = k) and leave gaps (s > k), with and without a dropped border.
GEOMETRIES = [
    (2, 2, 7, 9, 2, 2),
    (1, 3, 11, 5, 3, 3),
    (2, 1, 7, 7, 3, 1),
    (2, 2, 8, 6, 2, 1),
    (1, 2, 9, 7, 3, 2),
    (2, 1, 5, 8, 2, 3),
    (1, 1, 4, 4, 2, None),
    (2, 2, 6, 9, 3, None),
    (1, 2, 2, 3, 2, 2),
]
IDS = [f"N{g[0]}-C{g[1]}-{g[2]}x{g[3]}-k{g[4]}-s{g[5]}" for g in GEOMETRIES]
POOLS = {"max": MaxPool2d, "l2": L2Pool2d}


def out_size(size, k, s):
    return (size - k) // s + 1


def pool_loops(x, k, s, kind):
    """Forward and a backward function by plain loops over (n, c, i, j)."""
    N, C, H_in, W_in = x.shape
    H_out, W_out = out_size(H_in, k, s), out_size(W_in, k, s)
    a = np.zeros((N, C, H_out, W_out))
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    region = x[n, c, i * s : i * s + k, j * s : j * s + k]
                    a[n, c, i, j] = region.max() if kind == "max" else np.sqrt(np.sum(region**2))

    def backward(da):
        dx = np.zeros_like(x)
        for n in range(N):
            for c in range(C):
                for i in range(H_out):
                    for j in range(W_out):
                        region = x[n, c, i * s : i * s + k, j * s : j * s + k]
                        if kind == "max":
                            q, r = divmod(int(np.argmax(region)), k)  # the first maximum, row-major
                            dx[n, c, i * s + q, j * s + r] += da[n, c, i, j]
                        else:
                            dx[n, c, i * s : i * s + k, j * s : j * s + k] += da[n, c, i, j] * region / a[n, c, i, j]
        return dx

    return a, backward


def distinct_values(shape, seed, spacing=1e-2):
    """A random permutation of distinct values spaced by ``spacing`` (>> h = 1e-6): no ties and
    no near-ties, so each region's maximum stays where it is under the difference quotients."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n) - n / 2).reshape(shape) * spacing


def away_from_zero(shape, seed):
    u = np.random.default_rng(seed).standard_normal(shape)
    return np.sign(u) * (0.1 + np.abs(u))


def inputs(kind, shape, seed):
    return distinct_values(shape, seed) if kind == "max" else away_from_zero(shape, seed)


# --- against the loops -------------------------------------------------------------------------
@pytest.mark.parametrize("N, C, H, W, k, s", GEOMETRIES, ids=IDS)
@pytest.mark.parametrize("kind", sorted(POOLS))
def test_pool_forward_and_backward_match_the_loops(float64, kind, N, C, H, W, k, s):
    stride = k if s is None else s
    layer = POOLS[kind](k, s)
    x = np.random.default_rng(1).standard_normal((N, C, H, W))
    a_ref, backward_ref = pool_loops(x, k, stride, kind)
    a = host(layer.forward(dev(x), train=True))
    assert a.shape == (N, C, out_size(H, k, stride), out_size(W, k, stride))  # floor mode
    np.testing.assert_allclose(a, a_ref, rtol=1e-12)
    da = np.random.default_rng(2).standard_normal(a.shape)
    np.testing.assert_allclose(host(layer.backward(dev(da))), backward_ref(da), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(host(layer.forward(dev(x))), a_ref, rtol=1e-12)  # test mode: the same values


@pytest.mark.parametrize("k, s", [(2, 2), (2, 1), (3, 3), (3, 2)])
def test_max_pool_ties_send_the_gradient_to_the_first_maximum(float64, k, s):
    """Equal maxima (ReLU zeros, saturated pixels): the whole gradient goes to the first one in
    row-major order, none is split or duplicated."""
    x = np.random.default_rng(3).integers(0, 3, (2, 2, 7, 7)).astype(np.float64)  # many ties
    layer = MaxPool2d(k, s)
    a_ref, backward_ref = pool_loops(x, k, s, "max")
    a = host(layer.forward(dev(x), train=True))
    np.testing.assert_array_equal(a, a_ref)
    da = np.random.default_rng(4).standard_normal(a.shape)
    dx = host(layer.backward(dev(da)))
    np.testing.assert_allclose(dx, backward_ref(da), rtol=1e-12)
    assert dx.sum() == pytest.approx(da.sum(), rel=1e-12)


def test_max_pool_with_a_large_kernel(float64):
    """One region of 12 x 12 = 144 entries (global max-pooling of a 12 x 12 feature map)."""
    x = distinct_values((2, 1, 12, 24), 10)
    layer = MaxPool2d(12)
    a_ref, backward_ref = pool_loops(x, 12, 12, "max")
    np.testing.assert_array_equal(host(layer.forward(dev(x), train=True)), a_ref)
    da = np.random.default_rng(11).standard_normal(a_ref.shape)
    np.testing.assert_array_equal(host(layer.backward(dev(da))), backward_ref(da))


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_pool_on_a_non_contiguous_input(float64, kind):
    """The output of a Conv2d is a transposed view; pooling reads it by its strides."""
    x = np.random.default_rng(5).standard_normal((2, 7, 6, 3)).transpose(0, 3, 1, 2)  # (2, 3, 7, 6)
    for k, s in [(2, 2), (3, 1)]:
        layer = POOLS[kind](k, s)
        a_ref, backward_ref = pool_loops(x, k, s, kind)
        np.testing.assert_allclose(host(layer.forward(dev(x), train=True)), a_ref, rtol=1e-12)
        da = np.random.default_rng(6).standard_normal(a_ref.shape)
        np.testing.assert_allclose(host(layer.backward(dev(da))), backward_ref(da), rtol=1e-12, atol=1e-15)


def test_lecture_2x2_pooling_halves_the_image():
    """2 x 2 pooling reduces height and width by a factor of two (3.3): the max and the L2 norm
    of four outputs."""
    x = np.array([[1.0, 2.0, 0.0, -1.0], [3.0, -4.0, 0.0, 0.0], [5.0, 5.0, 2.0, 2.0], [-6.0, 0.0, 2.0, 2.0]])
    x = x.reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(host(MaxPool2d(2).forward(dev(x)))[0, 0], [[3.0, 0.0], [5.0, 2.0]])
    np.testing.assert_allclose(host(L2Pool2d(2).forward(dev(x)))[0, 0],
                               [[np.sqrt(30.0), 1.0], [np.sqrt(86.0), 4.0]], rtol=1e-6)


def test_l2_pool_gradient_of_an_all_zero_region_is_zero(float64):
    """sqrt is not differentiable at 0; the layer sends nothing back there (no NaN)."""
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, :2, :2] = [[3.0, 0.0], [0.0, 4.0]]
    layer = L2Pool2d(2)
    np.testing.assert_array_equal(host(layer.forward(dev(x), train=True))[0, 0], [[5.0, 0.0], [0.0, 0.0]])
    dx = host(layer.backward(dev(np.ones((1, 1, 2, 2)))))
    assert np.isfinite(dx).all()
    np.testing.assert_allclose(dx[0, 0, :2, :2], [[0.6, 0.0], [0.0, 0.8]])
    np.testing.assert_array_equal(dx[0, 0, 2:], 0.0)
    np.testing.assert_array_equal(dx[0, 0, :, 2:], 0.0)


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_pool_keeps_float32(kind):
    x = dev(np.random.default_rng(7).standard_normal((2, 3, 6, 6)).astype(np.float32))
    layer = POOLS[kind](2)
    a = layer.forward(x, train=True)
    assert a.dtype == np.float32
    assert layer.backward(dev(np.ones(a.shape, dtype=np.float32))).dtype == np.float32


# --- central differences ---------------------------------------------------------------------
@pytest.mark.parametrize("N, C, H, W, k, s", GEOMETRIES, ids=IDS)
@pytest.mark.parametrize("kind", sorted(POOLS))
def test_pool_gradcheck(float64, kind, N, C, H, W, k, s):
    stride = k if s is None else s
    x = dev(inputs(kind, (N, C, H, W), 8))
    upstream = dev(np.random.default_rng(9).standard_normal((N, C, out_size(H, k, stride), out_size(W, k, stride))))
    errors = check_layer(POOLS[kind](k, s), x, upstream)
    assert set(errors) == {"x"}
    assert errors["x"] < TOL, errors


# --- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kernel, stride", [(0, None), (-1, 1), (2, 0), (3, -2)])
@pytest.mark.parametrize("kind", sorted(POOLS))
def test_pool_rejects_bad_settings(kind, kernel, stride):
    name = POOLS[kind].__name__
    with pytest.raises(ConfigError, match=rf"{name}: kernel={kernel} and stride={stride}"):
        POOLS[kind](kernel, stride)


@pytest.mark.parametrize("x_shape", [(1, 1, 2, 5), (1, 1, 5, 2), (2, 3, 3), (4, 9)])
@pytest.mark.parametrize("kind", sorted(POOLS))
def test_pool_wrong_input_is_a_shape_error(kind, x_shape):
    layer = POOLS[kind](3)
    with pytest.raises(ShapeError) as excinfo:
        layer.forward(dev(np.ones(x_shape)))
    message = str(excinfo.value)
    assert message.startswith(f"{POOLS[kind].__name__}(kernel=3, stride=3)")
    assert str(tuple(x_shape)) in message and ">= 3" in message


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_pool_backward_needs_a_training_forward(kind):
    layer = POOLS[kind](2)
    with pytest.raises(RuntimeError, match=r"backward\(\) called without a forward\(x, train=True\)"):
        layer.backward(dev(np.ones((1, 1, 2, 2))))
    layer.forward(dev(np.ones((1, 1, 4, 4))))  # a test-mode pass caches nothing
    with pytest.raises(RuntimeError, match="without a forward"):
        layer.backward(dev(np.ones((1, 1, 2, 2))))


@pytest.mark.parametrize("kind", sorted(POOLS))
@pytest.mark.parametrize("k, s", [(2, None), (3, 1)])
def test_pool_config_round_trip(kind, k, s):
    layer = POOLS[kind](k, s)
    config = layer_to_config(layer)
    assert config == {"type": POOLS[kind].__name__, "kernel": k, "stride": k if s is None else s}
    rebuilt = layer_from_config(config)
    assert type(rebuilt) is POOLS[kind] and rebuilt.describe() == layer.describe()

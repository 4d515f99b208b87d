"""ZeroPad2d, ReflectionPad2d and Upsample: small cases by hand, central differences, the errors, and
(in the last section, skipped without it) PyTorch's F.pad and nearest-neighbour F.interpolate.

    ZeroPad2d:        zeros around x;  backward crops dy to the centre
    ReflectionPad2d:  x mirrored at its edges (the edge itself not repeated);  backward adds the
                      gradient of every mirrored entry onto the entry it copies
    Upsample(s):      a[n, c, i, j] = x[n, c, i // s, j // s];  backward sums each s x s block

The layer contract (an evaluation forward writes nothing, config round trips, backward without a
training forward) is tested for these layers in test_norm.py, beside the normalisation layers.
"""

import re

import numpy as np
import pytest
from helpers import dev, host

from tiefnet.errors import ConfigError, ShapeError
from tiefnet.gradcheck import check_layer
from tiefnet.nn import ReflectionPad2d, Upsample, ZeroPad2d

TOL = 1e-6
PADS = {"zero": ZeroPad2d, "reflection": ReflectionPad2d}
# (x shape, padding): an int, (left, right, top, bottom) with zeros and asymmetric sides, N = 1
PAD_CASES = [((2, 3, 4, 5), 1), ((1, 2, 3, 3), 2), ((2, 1, 4, 6), (1, 2, 0, 3)), ((1, 2, 5, 4), (0, 3, 4, 1)),
             ((3, 2, 2, 2), (1, 1, 1, 0)), ((1, 1, 3, 4), 0)]
UPSAMPLE_CASES = [((2, 3, 4, 5), 2), ((1, 2, 3, 3), 3), ((2, 1, 1, 2), 1), ((1, 2, 2, 1), 4)]


def data(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def sides(padding):
    """(left, right, top, bottom) of a padding as torch reads it."""
    return (padding,) * 4 if isinstance(padding, int) else padding


# --- by hand ---------------------------------------------------------------------------------
def test_pads_of_a_small_image_by_hand():
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).reshape(1, 1, 2, 3)
    np.testing.assert_array_equal(host(ZeroPad2d((1, 0, 0, 1)).forward(dev(x)))[0, 0],
                                  [[0, 1, 2, 3], [0, 4, 5, 6], [0, 0, 0, 0]])
    np.testing.assert_array_equal(host(ReflectionPad2d(1).forward(dev(x)))[0, 0],
                                  [[5, 4, 5, 6, 5], [2, 1, 2, 3, 2], [5, 4, 5, 6, 5], [2, 1, 2, 3, 2]])
    np.testing.assert_array_equal(host(ReflectionPad2d((2, 2, 0, 0)).forward(dev(x)))[0, 0],
                                  [[3, 2, 1, 2, 3, 2, 1], [6, 5, 4, 5, 6, 5, 4]])


def test_reflection_backward_by_hand():
    """x (1 x 3) padded (2, 1, 0, 0) -> (x2, x1, x0, x1, x2, x1): dy = 1 everywhere gives x0 one
    gradient, x1 three (its own and two copies), x2 two."""
    layer = ReflectionPad2d((2, 1, 0, 0))
    out = layer.forward(dev(np.array([[[[0.0, 10.0, 20.0]]]])), train=True)
    np.testing.assert_array_equal(host(out)[0, 0, 0], [20, 10, 0, 10, 20, 10])
    np.testing.assert_array_equal(host(layer.backward(dev(np.ones((1, 1, 1, 6)))))[0, 0, 0], [1, 3, 2])


def test_upsample_by_hand():
    x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    layer = Upsample(2)
    np.testing.assert_array_equal(host(layer.forward(dev(x), train=True))[0, 0],
                                  [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    da = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(host(layer.backward(dev(da)))[0, 0], [[0 + 1 + 4 + 5, 2 + 3 + 6 + 7],
                                                                         [8 + 9 + 12 + 13, 10 + 11 + 14 + 15]])


@pytest.mark.parametrize("layer", [ZeroPad2d(1), ReflectionPad2d((1, 2, 1, 0)), Upsample(2)], ids=repr)
def test_a_channels_last_input_stays_channels_last(layer):
    """After a Conv2d (a transposed view of (N, H, W, C)) the output keeps channels innermost, so the
    next Conv2d's channels_last is a view, not a copy."""
    x = dev(data((2, 4, 5, 3), 1).transpose(0, 3, 1, 2))  # (2, 3, 4, 5)
    out = layer.forward(x)
    assert out.transpose(0, 2, 3, 1).flags.c_contiguous


@pytest.mark.parametrize("layer", [ZeroPad2d(2), ReflectionPad2d(1), Upsample(3)], ids=repr)
def test_pad_and_upsample_keep_float32(layer):
    x = dev(data((2, 3, 4, 4), 2).astype(np.float32))
    out = layer.forward(x, train=True)
    assert out.dtype == np.float32
    assert layer.backward(dev(np.ones(out.shape, dtype=np.float32))).dtype == np.float32


# --- central differences ---------------------------------------------------------------------
@pytest.mark.parametrize("shape, padding", PAD_CASES)
@pytest.mark.parametrize("kind", sorted(PADS))
def test_pad_gradcheck(float64, kind, shape, padding):
    layer = PADS[kind](padding)
    left, right, top, bottom = sides(padding)
    N, C, H, W = shape
    errors = check_layer(layer, dev(data(shape, 3)), seed=4)
    assert layer.output.shape == (N, C, top + H + bottom, left + W + right)
    assert errors == {"x": pytest.approx(0.0, abs=TOL)}


@pytest.mark.parametrize("shape, scale", UPSAMPLE_CASES)
def test_upsample_gradcheck(float64, shape, scale):
    layer = Upsample(scale)
    errors = check_layer(layer, dev(data(shape, 5)), seed=6)
    N, C, H, W = shape
    assert layer.output.shape == (N, C, scale * H, scale * W)
    assert errors == {"x": pytest.approx(0.0, abs=TOL)}


@pytest.mark.parametrize("layer", [ZeroPad2d((1, 0, 2, 1)), ReflectionPad2d(2), Upsample(2)], ids=repr)
def test_need_input_grad_false_returns_none(layer):
    out = layer.forward(dev(data((1, 2, 3, 3), 7)), train=True)
    assert layer.backward(dev(np.ones(out.shape)), need_input_grad=False) is None


# --- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("padding", [-1, (1, 2, 3), (1, 2, 3, -1), 1.5, True, "1", None, (1, 1, 1, 0.5)])
@pytest.mark.parametrize("kind", sorted(PADS))
def test_pad_rejects_bad_padding(kind, padding):
    name = PADS[kind].__name__
    with pytest.raises(ConfigError, match=re.escape(f"{name}: padding={padding!r} must be an int >= 0 or four")):
        PADS[kind](padding)


@pytest.mark.parametrize("scale", [0, -2, 1.5, True, "2", None])
def test_upsample_rejects_a_bad_scale(scale):
    with pytest.raises(ConfigError, match=re.escape(f"Upsample: scale={scale!r} must be a whole number >= 1")):
        Upsample(scale)


@pytest.mark.parametrize("layer", [ZeroPad2d(1), ReflectionPad2d(1), Upsample(2)], ids=repr)
@pytest.mark.parametrize("shape", [(2, 3, 4), (4, 4), (1, 1, 2, 2, 2)])
def test_wrong_input_is_a_shape_error(layer, shape):
    with pytest.raises(ShapeError, match=re.escape(f"{layer.describe()}: expected input (N, C, H, W), got {shape}")):
        layer.forward(dev(np.ones(shape)))


@pytest.mark.parametrize("padding, shape", [(3, (1, 2, 3, 5)), (3, (1, 2, 5, 3)), ((0, 4, 0, 0), (2, 1, 6, 4)),
                                            ((0, 0, 1, 0), (1, 1, 1, 5))])
def test_reflection_padding_must_be_less_than_the_side(padding, shape):
    """torch refuses it too (numpy would reflect several times over)."""
    layer = ReflectionPad2d(padding)
    with pytest.raises(ShapeError, match=re.escape(f"{layer.describe()}: reflection padding must be less than the "
                                                   f"side it pads (top, bottom < H; left, right < W), got input {shape}")):
        layer.forward(dev(np.ones(shape)), train=True)
    assert not hasattr(layer, "output")


# --- against PyTorch ---------------------------------------------------------------------------
@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("shape, padding", PAD_CASES)
@pytest.mark.parametrize("kind", sorted(PADS))
def test_pad_matches_torch(float64, torch, kind, shape, padding):
    from torch_helpers import close, leaf

    x, xt = data(shape, 8), leaf(data(shape, 8))
    out_t = torch.nn.functional.pad(xt, sides(padding), mode="constant" if kind == "zero" else "reflect")
    upstream = data(tuple(out_t.shape), 9)
    out_t.backward(torch.tensor(upstream))
    layer = PADS[kind](padding)
    close(layer.forward(dev(x), train=True), out_t)
    close(layer.backward(dev(upstream)), xt.grad)


@pytest.mark.parametrize("shape, scale", UPSAMPLE_CASES)
def test_upsample_matches_torch(float64, torch, shape, scale):
    from torch_helpers import close, leaf

    x, xt = data(shape, 10), leaf(data(shape, 10))
    out_t = torch.nn.Upsample(scale_factor=scale, mode="nearest")(xt)
    upstream = data(tuple(out_t.shape), 11)
    out_t.backward(torch.tensor(upstream))
    layer = Upsample(scale)
    close(layer.forward(dev(x), train=True), out_t)
    close(layer.backward(dev(upstream)), xt.grad)

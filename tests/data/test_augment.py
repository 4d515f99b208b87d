"""Data expansion (lecture 2.7.3): rotate, shift, skew, and expand()."""

import numpy as np
import pytest

from tiefnet.data import expand, read_idx, rotate, shift, skew
from tiefnet.data.mnist import SHIPPED_DIR
from tiefnet.errors import ConfigError, ShapeError


@pytest.fixture(scope="module")
def digits():
    """The first 300 test digits as (x (300, 784) float32 in [0, 1], y (300,))."""
    images = read_idx(SHIPPED_DIR / "t10k-images-idx3-ubyte.gz")[:300]
    labels = read_idx(SHIPPED_DIR / "t10k-labels-idx1-ubyte.gz")[:300]
    return images.reshape(300, 784).astype(np.float32) / 255, labels.astype(np.int64)


def centre_of_mass(img):
    rows, cols = np.indices(img.shape)
    return np.array([(rows * img).sum(), (cols * img).sum()]) / img.sum()


def cosine(a, b):
    """Row-wise cosine similarity of two (N, D) arrays."""
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_rotate_by_zero_and_by_full_turns_is_identity(digits):
    img = digits[0][0].reshape(28, 28)
    np.testing.assert_array_equal(rotate(img, 0.0), img)
    np.testing.assert_allclose(rotate(img, 360.0), img, atol=1e-5)


@pytest.mark.parametrize("quarter_turns", [1, 2, 3])
def test_rotate_counter_clockwise_like_rot90(digits, quarter_turns):
    img = digits[0][1].reshape(28, 28)
    turned = rotate(img, 90.0 * quarter_turns)
    np.testing.assert_allclose(turned, np.rot90(img, quarter_turns), atol=1e-5)


def test_small_rotation_keeps_ink_and_centre(digits):
    img = digits[0][2].reshape(28, 28)
    turned = rotate(img, 12.0)
    assert turned.dtype == np.float32 and turned.shape == (28, 28)
    assert abs(turned.sum() - img.sum()) / img.sum() < 0.05
    np.testing.assert_allclose(centre_of_mass(turned), centre_of_mass(img), atol=0.8)
    assert not np.allclose(turned, img)


@pytest.mark.parametrize("dy, dx", [(3, -2), (-1, 0), (0.5, 1.5)])
def test_shift_moves_centre_of_mass(digits, dy, dx):
    img = digits[0][3].reshape(28, 28)
    moved = shift(img, dy, dx)
    np.testing.assert_allclose(centre_of_mass(moved) - centre_of_mass(img), [dy, dx], atol=1e-3)


def test_whole_pixel_shift_is_exact(digits):
    img = digits[0][4].reshape(28, 28)
    np.testing.assert_array_equal(shift(img, 2, -1)[2:, :-1], img[:-2, 1:])


def test_skew_leans_the_top_to_the_right():
    bar = np.zeros((28, 28), dtype=np.float32)
    bar[4:24, 13:15] = 1.0  # a vertical stroke through the centre
    leaning = skew(bar, 0.3)
    top, bottom = centre_of_mass(leaning[4:9])[1], centre_of_mass(leaning[19:24])[1]
    assert top - bottom == pytest.approx(0.3 * 15, abs=0.5)
    np.testing.assert_array_equal(skew(bar, 0.0), bar)


def test_single_image_functions_reject_flat_vectors():
    with pytest.raises(ShapeError):
        rotate(np.zeros(784), 10.0)


def test_expand_shapes_originals_first_labels_repeated(digits):
    x, y = digits
    x_new, y_new = expand(x, y, copies=2, rng=np.random.default_rng(0))
    assert x_new.shape == (900, 784) and x_new.dtype == np.float32
    np.testing.assert_array_equal(x_new[:300], x)
    np.testing.assert_array_equal(y_new, np.concatenate([y, y, y]))
    assert x_new.min() >= 0.0 and x_new.max() <= 1.0
    for k in (1, 2):
        copy = x_new[k * 300 : (k + 1) * 300]
        assert not np.allclose(copy, x)
        own, other = cosine(copy, x), cosine(copy, np.roll(x, 1, axis=0))
        assert np.median(own) > 0.5 and own.mean() > other.mean() + 0.2  # still its own digit


def test_expand_is_deterministic_in_the_seed(digits):
    x, y = digits
    first, _ = expand(x[:50], y[:50], 1, np.random.default_rng(7))
    again, _ = expand(x[:50], y[:50], 1, np.random.default_rng(7))
    other, _ = expand(x[:50], y[:50], 1, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_expand_with_zero_ranges_copies_exactly(digits):
    x, y = digits
    x_new, _ = expand(x[:20], y[:20], 1, np.random.default_rng(0), 0.0, 0.0, 0.0)
    np.testing.assert_allclose(x_new[20:], x[:20], atol=1e-6)


def test_expand_zero_copies_returns_the_originals(digits):
    x, y = digits
    x_new, y_new = expand(x, y, 0, np.random.default_rng(0))
    np.testing.assert_array_equal(x_new, x)
    np.testing.assert_array_equal(y_new, y)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"copies": -1}, ConfigError),
        ({"copies": 1.5}, ConfigError),
        ({"copies": 1, "max_angle": -1.0}, ConfigError),
        ({"copies": 1, "max_skew": float("nan")}, ConfigError),
    ],
)
def test_expand_rejects_bad_settings(digits, kwargs, error):
    x, y = digits
    with pytest.raises(error):
        expand(x[:5], y[:5], rng=np.random.default_rng(0), **kwargs)


def test_expand_rejects_bad_shapes(digits):
    x, y = digits
    with pytest.raises(ShapeError, match="784"):
        expand(x.reshape(-1, 28, 28), y, 1, np.random.default_rng(0))
    with pytest.raises(ShapeError, match="y must be"):
        expand(x, y[:-1], 1, np.random.default_rng(0))

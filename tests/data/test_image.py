"""load_digit: a user's picture of a digit becomes a centred 28x28 MNIST-style input."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tiefnet.data import load_digit, read_idx
from tiefnet.data.mnist import SHIPPED_DIR
from tiefnet.errors import DataError


def draw_seven(size=(240, 320), offset=(0, 0), ink=0, paper=255, mode="L"):
    """A thick '7' drawn with PIL: dark ink on light paper by default."""
    picture = Image.new(mode, size, paper)
    pen = ImageDraw.Draw(picture)
    dx, dy = offset
    pen.line([(60 + dx, 60 + dy), (180 + dx, 60 + dy), (100 + dx, 260 + dy)], fill=ink, width=22)
    return picture


def centre_of_mass(vector):
    img = vector.reshape(28, 28)
    rows, cols = np.indices(img.shape)
    return np.array([(rows * img).sum(), (cols * img).sum()]) / img.sum()


def ink_extent(vector):
    """(height, width) of the bounding box of the clearly inked pixels."""
    ink = vector.reshape(28, 28) > 0.1
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def save(picture, path):
    picture.save(path)
    return path


@pytest.mark.parametrize(
    "ink, paper", [(0, 255), (255, 0), (40, 200)], ids=["black-on-white", "white-on-black", "grey"]
)
def test_digit_becomes_white_on_black_centred(tmp_path, ink, paper):
    vector = load_digit(save(draw_seven(ink=ink, paper=paper), tmp_path / "seven.png"))
    assert vector.shape == (784,) and vector.dtype == np.float32
    assert vector.min() >= 0.0 and vector.max() == pytest.approx(1.0, abs=0.02)
    np.testing.assert_allclose(centre_of_mass(vector), [14.0, 14.0], atol=0.6)
    assert max(ink_extent(vector)) in (19, 20)  # the longer side is scaled to 20 px
    img = vector.reshape(28, 28)
    assert img[0].max() < 0.05 and img[:, 0].max() < 0.05  # a black frame around the digit


def test_polarity_and_position_do_not_matter(tmp_path):
    dark_ink = load_digit(save(draw_seven(), tmp_path / "a.png"))
    light_ink = load_digit(save(draw_seven(ink=255, paper=0), tmp_path / "b.png"))
    shifted = load_digit(save(draw_seven(size=(400, 500), offset=(150, 170)), tmp_path / "c.png"))
    np.testing.assert_allclose(light_ink, dark_ink, atol=0.02)
    np.testing.assert_allclose(shifted, dark_ink, atol=0.02)


def test_colour_jpeg_and_transparent_png(tmp_path):
    reference = load_digit(save(draw_seven(), tmp_path / "ref.png"))
    colour = draw_seven(mode="RGB", ink=(20, 20, 120), paper=(250, 245, 230))
    from_jpeg = load_digit(save(colour, tmp_path / "colour.jpg"))
    transparent = draw_seven(mode="RGBA", ink=(0, 0, 0, 255), paper=(0, 0, 0, 0))
    from_rgba = load_digit(save(transparent, tmp_path / "alpha.png"))
    assert np.corrcoef(from_jpeg, reference)[0, 1] > 0.97
    np.testing.assert_allclose(from_rgba, reference, atol=0.02)


def test_an_mnist_digit_survives_the_round_trip(tmp_path):
    """Enlarged and printed dark-on-light, a test digit comes back nearly unchanged."""
    original = read_idx(SHIPPED_DIR / "t10k-images-idx3-ubyte.gz")[0]  # (28, 28) uint8, a 7
    enlarged = Image.fromarray(255 - original).resize((140, 140), Image.BICUBIC)
    vector = load_digit(save(enlarged, tmp_path / "seven.png"))
    assert np.corrcoef(vector, original.reshape(784) / 255)[0, 1] > 0.9


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is text, not a picture\n")
    with pytest.raises(DataError) as excinfo:
        load_digit(path)
    assert "notes.png" in str(excinfo.value) and "not an image" in str(excinfo.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="missing.png: file not found"):
        load_digit(tmp_path / "missing.png")


@pytest.mark.parametrize("paper", [255, 0, 128])
def test_blank_image_has_no_ink(tmp_path, paper):
    path = save(Image.new("L", (50, 60), paper), tmp_path / "blank.png")
    with pytest.raises(DataError, match="blank.png: no digit found"):
        load_digit(path)

"""Pictures for style transfer (data/pictures.py, lecture 3.4): the shipped paintings (checksums
verified), scikit-image's sample photos, a user's files; scaling with the aspect ratio kept, the exact
fit of the style to the content's size, PNG and GIF out, and one DataError for each file that is no
usable picture."""
from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
from PIL import Image

from tiefnet.data import pictures
from tiefnet.data.pictures import (MIN_SIDE, PAINTINGS, PHOTOS, fit, painting_path, photo_path, read_picture,
                                   save_gif, save_picture, to_uint8)
from tiefnet.errors import DataError

PAINTING_SIZES = {"starry_night": (640, 1024), "the_scream": (1528, 1200), "shipwreck": (662, 960)}  # (H, W)
PHOTO_SIZES = {"astronaut": (512, 512), "chelsea": (300, 451), "coffee": (400, 600)}


def random_picture(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def image_file(path, size=(40, 30), mode="RGB", color=(10, 200, 30)):
    Image.new(mode, size, color).save(path)
    return path


def assert_one_data_error(spec, *fragments, **settings):
    with pytest.raises(DataError) as caught:
        read_picture(spec, **settings)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- the shipped pictures -------------------------------------------------------------------------

@pytest.mark.parametrize("name", PAINTINGS)
def test_shipped_paintings(name):
    path = painting_path(name)
    sums = dict(reversed(line.split()) for line in (pictures.SHIPPED / "SHA256SUMS").read_text().splitlines())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sums[f"{name}.jpg"]
    picture = read_picture(name)
    assert picture.shape == (3, *PAINTING_SIZES[name]) and picture.dtype == np.float32
    assert picture.min() >= 0.0 and picture.max() <= 1.0 and picture.std() > 0.05
    np.testing.assert_array_equal(read_picture(path), picture)  # the name is that file


@pytest.mark.parametrize("name", PHOTOS)
def test_sample_photos_of_scikit_image(name):
    picture = read_picture(name)
    assert picture.ndim == 3 and picture.shape[0] == 3 and picture.dtype == np.float32
    assert min(picture.shape[1:]) >= MIN_SIDE and picture.min() >= 0.0 and picture.max() <= 1.0
    if name in PHOTO_SIZES:
        assert picture.shape[1:] == PHOTO_SIZES[name]
    assert photo_path(name).is_file()


def test_a_damaged_painting_is_refused(tmp_path, monkeypatch):
    shipped = tmp_path / "style"
    shutil.copytree(pictures.SHIPPED, shipped)
    data = bytearray((shipped / "shipwreck.jpg").read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte flipped
    (shipped / "shipwreck.jpg").write_bytes(bytes(data))
    monkeypatch.setattr(pictures, "SHIPPED", shipped)
    message = assert_one_data_error("shipwreck", "shipwreck.jpg: checksum mismatch", "the shipped painting is damaged")
    assert str(shipped) in message
    assert read_picture("starry_night").shape == (3, 640, 1024)  # the others are still fine


def test_unknown_names():
    with pytest.raises(DataError, match="no shipped painting 'mona_lisa'.*starry_night, the_scream, shipwreck"):
        painting_path("mona_lisa")
    with pytest.raises(DataError, match="no sample photo 'lena'.*astronaut"):
        photo_path("lena")
    assert_one_data_error("mona_lisa", "mona_lisa: file not found")  # neither a name nor a file


# --- scaling --------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, size", [("starry_night", 64), ("the_scream", 50), ("chelsea", 100),
                                        ("astronaut", 32), ("coffee", 25)])
def test_size_scales_the_longer_side_and_keeps_the_aspect_ratio(spec, size):
    H, W = read_picture(spec).shape[1:]
    picture = read_picture(spec, size)
    h, w = picture.shape[1:]
    assert max(h, w) == size
    if W >= H:
        assert abs(h - H * size / W) <= 0.5, (h, w)
    else:
        assert abs(w - W * size / H) <= 0.5, (h, w)
    assert picture.dtype == np.float32 and picture.min() >= 0.0 and picture.max() <= 1.0


def test_size_by_hand(tmp_path):
    path = image_file(tmp_path / "wide.png", size=(300, 200))
    assert read_picture(path, 60).shape == (3, 40, 60)
    assert read_picture(path, 600).shape == (3, 400, 600)  # larger: scaled up
    assert read_picture(path).shape == (3, 200, 300)  # None: as it is
    np.testing.assert_allclose(read_picture(path, 60)[:, 5, 5], np.array([10, 200, 30]) / 255, atol=1 / 255)


def test_fit_gives_the_exact_size():
    picture = random_picture((3, 40, 30))
    for H, W in [(20, 50), (40, 30), (64, 64), (17, 16)]:
        fitted = fit(picture, H, W)
        assert fitted.shape == (3, H, W) and fitted.dtype == np.float32
        assert fitted.min() >= 0.0 and fitted.max() <= 1.0
    flat = fit(np.full((3, 25, 35), 0.4, np.float32), 64, 20)  # a constant picture stays that constant
    np.testing.assert_allclose(flat, round(0.4 * 255) / 255, atol=1e-6)


# --- writing --------------------------------------------------------------------------------------

def test_save_and_read_round_trip_within_a_grey_level(tmp_path):
    picture = random_picture((3, 21, 34), seed=1)
    path = save_picture(picture, tmp_path / "x.png")
    assert path == tmp_path / "x.png"
    with Image.open(path) as img:
        assert img.format == "PNG" and img.mode == "RGB" and img.size == (34, 21)
    back = read_picture(path)
    assert back.shape == picture.shape
    assert np.abs(back - picture).max() <= 0.5 / 255 + 1e-6  # rounded to the nearest of 256 levels


def test_to_uint8_clips_and_puts_the_channels_last():
    picture = np.array([-0.5, 0.0, 0.5, 1.0, 2.0, np.float32(1 / 255)]).reshape(3, 1, 2)
    out = to_uint8(picture)
    assert out.dtype == np.uint8 and out.shape == (1, 2, 3)
    np.testing.assert_array_equal(out[0].T, [[0, 0], [128, 255], [255, 1]])


def test_save_gif_writes_every_frame(tmp_path):
    frames = [np.full((3, 16, 24), level, np.float32) for level in (0.0, 0.25, 0.5, 0.75, 1.0)]
    frames[2][:, :8] = 1.0
    path = save_gif(frames, tmp_path / "frames.gif", ms_per_frame=80)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.is_animated and gif.n_frames == len(frames) and gif.size == (24, 16)
        assert gif.info["duration"] == 80 and gif.info["loop"] == 0
        for i, frame in enumerate(frames):
            gif.seek(i)
            np.testing.assert_allclose(np.asarray(gif.convert("RGB"), np.float32) / 255, frame.transpose(1, 2, 0),
                                       atol=2 / 255)


# --- a user's files ---------------------------------------------------------------------------------

def test_grey_and_transparent_pictures_become_rgb(tmp_path):
    grey = read_picture(image_file(tmp_path / "grey.png", mode="L", color=100))
    assert grey.shape == (3, 30, 40)
    np.testing.assert_allclose(grey, 100 / 255, atol=1e-6)
    rgba = read_picture(image_file(tmp_path / "rgba.png", mode="RGBA", color=(255, 0, 0, 128)))
    assert rgba.shape == (3, 30, 40)
    np.testing.assert_allclose(rgba[:, 0, 0], [1.0, 127 / 255, 127 / 255], atol=1.5 / 255)  # half red on white
    jpeg = read_picture(image_file(tmp_path / "photo.jpg"))
    assert jpeg.shape == (3, 30, 40)


def test_a_file_that_is_no_image(tmp_path):
    (tmp_path / "notes.png").write_text("not a picture\n")
    assert_one_data_error(tmp_path / "notes.png", str(tmp_path / "notes.png"), "not an image Pillow can read")


def test_an_empty_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert_one_data_error(tmp_path / "empty.jpg", str(tmp_path / "empty.jpg"), "an empty file, not an image")


def test_a_truncated_file(tmp_path):
    path = save_picture(random_picture((3, 64, 64)), tmp_path / "whole.png")
    data = path.read_bytes()
    (tmp_path / "half.png").write_bytes(data[: len(data) // 2])
    assert_one_data_error(tmp_path / "half.png", str(tmp_path / "half.png"), "cannot read image", "truncated")


def test_a_missing_file_and_a_folder(tmp_path):
    assert_one_data_error(tmp_path / "absent.png", "absent.png: file not found")
    assert_one_data_error(tmp_path, "a folder, not a file")


@pytest.mark.parametrize("size, shown", [((1, 1), "1x1"), ((15, 300), "15x300"), ((300, 8), "300x8")])
def test_a_picture_too_small(tmp_path, size, shown):
    path = image_file(tmp_path / "small.png", size=size)
    assert_one_data_error(path, str(path), f"the picture is {shown} pixels", "needs at least 16 on each side")


def test_a_picture_too_small_after_scaling(tmp_path):
    path = image_file(tmp_path / "strip.png", size=(300, 100))
    assert_one_data_error(path, str(path), "the picture is 32x11 pixels", "at least 16", size=32)
    assert read_picture(path, 48).shape == (3, 16, 48)
    assert_one_data_error(path, "--size 8: pictures need at least 16 pixels on a side", size=8)


def test_a_picture_above_max_pixels(tmp_path):
    path = image_file(tmp_path / "big.png", size=(300, 200))
    assert_one_data_error(path, str(path), "the picture is 300x200 = 60,000 pixels", "more than --max-pixels 50,000",
                          "use --size", max_pixels=50_000)
    assert read_picture(path, 100, max_pixels=50_000).shape == (3, 67, 100)  # counted after --size
    assert read_picture(path, max_pixels=60_000).shape == (3, 200, 300)  # at the limit: accepted


def test_16_bit_grey_keeps_its_levels(tmp_path):
    ramp = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")  # mode I;16: a conversion to "RGB" would clip it to 255
    picture = read_picture(tmp_path / "g16.png")
    assert abs(picture.mean() - 0.5) < 0.01 and picture.shape == (3, 32, 32)

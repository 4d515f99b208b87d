"""Colour pictures for style transfer (3.4): the shipped paintings, scikit-image's sample photos,
and any file a user gives, read through Pillow into float32 RGB in [0, 1].

Paintings (public domain, shipped with the package, checked against ``style/SHA256SUMS``):
``starry_night`` (Van Gogh, the lecture's example), ``the_scream`` (Munch), ``shipwreck`` (Turner).
Photos: the colour photos that ship inside scikit-image's wheel (``astronaut``, ``chelsea``,
``coffee``, ...; nothing is downloaded).

Shapes: a picture is (3, H, W) float32, channels R, G, B.
"""
from __future__ import annotations

import hashlib
import importlib.resources
from pathlib import Path

import numpy as np
from PIL import Image

from tiefnet.data.image import _grey_levels as grey_levels, on_white, opened_image
from tiefnet.errors import DataError

SHIPPED = Path(__file__).parent / "style"
PAINTINGS = ("starry_night", "the_scream", "shipwreck")
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right", "hubble_deep_field")
_PHOTO_FILES = {"rocket": "rocket.jpg", "hubble_deep_field": "hubble_deep_field.jpg"}
MIN_SIDE = 16  # smaller pictures give the feature network less than one position after four poolings
MAX_PIXELS = 4_000_000  # default --max-pixels of a picture after --size (an optimisation holds several copies)


def _sha256_sums() -> dict[str, str]:
    lines = (SHIPPED / "SHA256SUMS").read_text().split("\n")
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


def painting_path(name: str) -> Path:
    """The shipped painting ``name`` (one of PAINTINGS), its checksum verified."""
    if name not in PAINTINGS:
        raise DataError(f"no shipped painting {name!r} (choose {', '.join(PAINTINGS)}, or give an image file)")
    path = SHIPPED / f"{name}.jpg"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != _sha256_sums()[path.name]:
        raise DataError(f"{path}: checksum mismatch (sha256 {digest[:12]}...): the shipped painting is damaged")
    return path


def photo_path(name: str) -> Path:
    """The scikit-image sample photo ``name`` (one of PHOTOS), as bundled in its wheel."""
    if name not in PHOTOS:
        raise DataError(f"no sample photo {name!r} (choose {', '.join(PHOTOS)}, or give an image file)")
    path = Path(str(importlib.resources.files("skimage.data") / _PHOTO_FILES.get(name, f"{name}.png")))
    if not path.is_file():
        raise DataError(f"{path}: scikit-image's sample photo is missing (reinstall scikit-image)")
    return path


def resolve(spec: str | Path) -> Path:
    """A file path, or the name of a shipped painting or a sample photo."""
    text = str(spec)
    if text in PAINTINGS:
        return painting_path(text)
    if text in PHOTOS:
        return photo_path(text)
    return Path(spec)


def open_rgb(path: Path, max_pixels: int | None = None, size: int | None = None) -> Image.Image:
    """The picture file as a Pillow RGB image: 16-bit and float grey keep their levels (a plain "RGB"
    conversion clips them to 255), transparency is laid on white (as for digits, data/image.py). With
    ``max_pixels``, the size the picture will have (after scaling its longer side to ``size``) is
    checked from the header, before the pixels are decoded."""
    with opened_image(path) as img:
        width, height = img.size
        check_sides(path, width, height)  # even if --size would scale it up: too little to paint on
        if max_pixels is not None:
            w, h = scaled((width, height), size)
            if w * h > max_pixels:
                raise DataError(f"{path}: the picture is {w}x{h} = {w * h:,} pixels, more than --max-pixels "
                                f"{max_pixels:,} (use --size to scale it down)")
        img.load()
        if img.mode.startswith("I") or img.mode == "F":  # 16-bit or float grey
            return Image.fromarray((grey_levels(img, path) * 255.0 + 0.5).astype(np.uint8)).convert("RGB")
        return on_white(img).convert("RGB")


def check_sides(path: Path, width: int, height: int) -> None:
    """A DataError unless both sides of a width x height picture have at least MIN_SIDE pixels."""
    if min(width, height) < MIN_SIDE:
        raise DataError(f"{path}: the picture is {width}x{height} pixels; style transfer needs at least "
                        f"{MIN_SIDE} on each side")


def scaled(size_wh: tuple[int, int], size: int | None) -> tuple[int, int]:
    """(width, height) with the longer side scaled to ``size`` (aspect ratio kept); as is for None."""
    width, height = size_wh
    if size is None:
        return width, height
    scale = size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def read_picture(spec: str | Path, size: int | None = None, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A picture (3, H, W) float32 in [0, 1] from a file or a shipped name; with ``size`` the longer
    side is scaled to ``size`` pixels (aspect ratio kept). A clear DataError for anything that is no
    picture, smaller than MIN_SIDE on a side, or more than ``max_pixels`` pixels (after scaling; checked
    before the pixels are decoded)."""
    if size is not None and size < MIN_SIDE:
        raise DataError(f"--size {size}: pictures need at least {MIN_SIDE} pixels on a side")
    path = resolve(spec)
    rgb = open_rgb(path, max_pixels, size)
    width, height = scaled(rgb.size, size)
    check_sides(path, width, height)
    if (width, height) != rgb.size:
        rgb = rgb.resize((width, height), Image.LANCZOS)
    return (np.asarray(rgb, dtype=np.float32) / 255.0).transpose(2, 0, 1).copy()


def fit(picture: np.ndarray, height: int, width: int) -> np.ndarray:
    """The picture scaled to exactly height x width (the style image to the content's size)."""
    img = Image.fromarray(to_uint8(picture))
    return (np.asarray(img.resize((width, height), Image.LANCZOS), dtype=np.float32) / 255.0).transpose(2, 0, 1).copy()


def to_uint8(picture: np.ndarray) -> np.ndarray:
    """(3, H, W) in [0, 1] -> (H, W, 3) uint8, clipped."""
    return (np.clip(np.asarray(picture, dtype=np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).transpose(1, 2, 0)


def save_picture(picture: np.ndarray, path: str | Path) -> Path:
    """Write (3, H, W) in [0, 1] as PNG (or any format Pillow knows by the suffix)."""
    path = Path(path)
    Image.fromarray(to_uint8(picture)).save(path)
    return path


def save_gif(frames: list[np.ndarray], path: str | Path, ms_per_frame: int = 120) -> Path:
    """An animated GIF of pictures (3, H, W), e.g. the intermediate x^ of an optimisation."""
    path = Path(path)
    images = [Image.fromarray(to_uint8(f)) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0)
    return path


__all__ = ["PAINTINGS", "PHOTOS", "fit", "open_rgb", "scaled", "painting_path", "photo_path", "read_picture", "resolve", "save_gif",
           "save_picture", "to_uint8"]

"""A user's own photo or drawing of a digit, prepared the way MNIST's digits were.

MNIST's recipe (LeCun et al.): the digit is scaled, keeping its aspect ratio, so that it
fits a 20x20 box (with antialiasing, hence grey levels), and then placed in a 28x28
field so that its centre of mass lies at the centre. The network expects white ink
(1.0) on black (0.0), so a light background is inverted first.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from tiefnet.errors import DataError

SIDE = 28  # output field, SIDE x SIDE
BOX = 20  # the digit's longer side after scaling
CENTRE = 14.0  # where MNIST's centres of mass lie (mean over the training set: 14.0, 14.0)
MIN_CONTRAST = 0.1  # darkest-to-lightest difference below this: no ink at all
INK_LEVEL = 0.1  # pixels above this (of the ink's maximum) define the bounding box
MAX_PIXELS = 40_000_000  # larger pictures are refused before they are decoded (a decompression bomb?)
# what Pillow's decoders raise for a broken or crafted file, besides OSError
_BROKEN = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, TypeError, KeyError,
           ZeroDivisionError, MemoryError)


def load_digit(path: str | Path) -> np.ndarray:
    """Read a PNG/JPEG of one digit; return it as an MNIST-style input vector.

    Steps: grayscale -> invert if the border is light -> remove the background level ->
    crop to the ink -> scale the longer side to 20 px -> centre of mass to (14, 14).

    Shapes:
        returns (784,) float32 in [0, 1], white ink on black, row by row
    """
    path = Path(path)
    gray = _read_grayscale(path)  # (H, W) in [0, 1]
    ink = _ink(gray, path)  # (H, W) in [0, 1], background 0
    digit = _scale_to_box(_crop(ink))  # (h, w), max(h, w) == 20
    return _centre(digit).reshape(SIDE * SIDE)


def digit_from_bytes(data: bytes, name: str = "the image", max_pixels: int | None = None) -> np.ndarray:
    """:func:`load_digit` for an image held in memory (a drawing sent to ``tiefnet serve``): the same
    steps and the same checks, ``name`` in the error messages, at most ``max_pixels`` pixels (None:
    MAX_PIXELS).

    Shapes:
        returns (784,) float32 in [0, 1]
    """
    if not data:
        raise DataError(f"{name}: empty, not an image")
    with opened_image(io.BytesIO(data), name, max_pixels) as img:
        img.load()
        gray = _grey_levels(img, name)
    return _centre(_scale_to_box(_crop(_ink(gray, name)))).reshape(SIDE * SIDE)


def _read_grayscale(path: Path) -> np.ndarray:
    """Pixel intensities in [0, 1]; a transparent background counts as white. The first frame of
    an animation; 16-bit and float pictures keep their grey levels (see :func:`_grey_levels`).

    Shapes:
        returns (H, W) float32
    """
    with opened_image(path) as img:
        img.load()
        return _grey_levels(img, path)


@contextmanager
def opened_image(path: Path | io.BytesIO, name: str | None = None,
                 max_pixels: int | None = None) -> Iterator[Image.Image]:
    """``with opened_image(path) as img:`` a Pillow image of a file that may come from anyone: a clear
    DataError for a missing or empty file, more than ``max_pixels`` (None: MAX_PIXELS; before decoding:
    a decompression bomb?), a file Pillow cannot read, and broken image data while the ``with`` body
    decodes it. ``path`` may also be bytes in memory (``io.BytesIO``), called ``name`` in the messages."""
    limit = MAX_PIXELS if max_pixels is None else max_pixels  # looked up now, not when this was defined
    if isinstance(path, io.BytesIO):
        source, path = path, name or "the image"
    else:
        _check_file(path)
        source = path
    try:
        with warnings.catch_warnings():  # Pillow's own bomb check: an error here, not a warning on stderr
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                width, height = img.size
                if width * height > limit:
                    raise DataError(_too_large(path, width * height, f" ({width}x{height})", limit))
                yield img
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        raise DataError(_too_large(path, int(pixels.group(1)) if pixels else None, "", limit)) from None
    except UnidentifiedImageError as exc:
        raise DataError(f"{path}: not an image Pillow can read (use PNG or JPEG)") from exc
    except _BROKEN as exc:  # truncated or otherwise broken image data
        raise DataError(f"{path}: cannot read image ({exc})") from exc


def _check_file(path: Path) -> None:
    """A clear error for a path that is no readable image file: missing, a folder, a pipe, empty."""
    if not path.exists():
        raise DataError(f"{path}: {'a broken symbolic link' if path.is_symlink() else 'file not found'}")
    if path.is_dir():
        raise DataError(f"{path}: a folder, not a file")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file (a pipe or a device?)")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: an empty file, not an image")


def _too_large(path: Path, pixels: int | None, size: str, limit: int) -> str:
    count = f"{pixels:,} pixels{size}" if pixels else "too many pixels"
    return f"{path}: the image has {count}, more than the {limit:,} tiefnet reads (a decompression bomb?)"


def _grey_levels(img: Image.Image, path: Path) -> np.ndarray:
    """The picture's grey levels in [0, 1]: 16-bit ("I;16", "I") scaled from 0..65535, float ("F")
    as it is if it lies in [0, 1] and stretched from its minimum..maximum otherwise, any other mode
    by Pillow's conversion to 8-bit "L" (which would clip 16-bit values to 255)."""
    if img.mode.startswith("I;16") or img.mode == "I":
        levels = np.asarray(img).astype(np.float64)
        gray = levels / 65535.0 if levels.min() >= 0 and levels.max() <= 65535 else _stretch(levels)
        transparent = img.info.get("transparency")
        if isinstance(transparent, int):
            gray[levels == transparent] = 1.0
        return gray.astype(np.float32)
    if img.mode == "F":
        levels = np.asarray(img).astype(np.float64)
        if not np.isfinite(levels).all():
            raise DataError(f"{path}: holds NaN or infinite pixel values")
        gray = levels if levels.min() >= 0 and levels.max() <= 1 else _stretch(levels)
        return gray.astype(np.float32)
    try:
        gray = on_white(img).convert("L")
    except ValueError as exc:
        raise DataError(f"{path}: cannot turn its {img.mode} pixels into grey levels ({exc})") from None
    return np.asarray(gray, dtype=np.float32) / 255.0


def on_white(img: Image.Image) -> Image.Image:
    """The picture with any transparency laid on white (a transparent background counts as paper);
    a picture without transparency as it is."""
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    return img


def _stretch(levels: np.ndarray) -> np.ndarray:
    """minimum..maximum -> 0..1 (a picture of one grey level becomes all 0: blank)."""
    low, high = float(levels.min()), float(levels.max())
    return (levels - low) / (high - low) if high > low else np.zeros_like(levels)


def _ink(gray: np.ndarray, path: Path) -> np.ndarray:
    """Make the ink light on a dark background and subtract the background level.

    The background is judged by the border pixels: a light border means dark ink.

    Shapes:
        gray: (H, W)  ->  returns (H, W) float32 in [0, 1]
    """
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if border.mean() > 0.5:
        gray, border = 1.0 - gray, 1.0 - border
    background = float(np.median(border))
    contrast = float(gray.max()) - background
    if contrast < MIN_CONTRAST:
        raise DataError(f"{path}: no digit found: the image is blank (no ink)")
    return np.clip((gray - background) / contrast, 0.0, 1.0)  # ink maximum -> 1.0


def _crop(ink: np.ndarray) -> np.ndarray:
    """The bounding box of the pixels brighter than INK_LEVEL.

    Shapes:
        ink: (H, W)  ->  returns (h, w)
    """
    rows = np.flatnonzero((ink > INK_LEVEL).any(axis=1))
    cols = np.flatnonzero((ink > INK_LEVEL).any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _scale_to_box(digit: np.ndarray) -> np.ndarray:
    """Scale so the longer side is BOX pixels, keeping the aspect ratio (antialiased).

    Shapes:
        digit: (h, w)  ->  returns (h', w') with max(h', w') == BOX
    """
    h, w = digit.shape
    factor = BOX / max(h, w)
    size = (max(1, round(w * factor)), max(1, round(h * factor)))  # PIL wants (width, height)
    picture = Image.fromarray(digit.astype(np.float32))  # Pillow mode "F", 32-bit float
    scaled = picture.resize(size, Image.LANCZOS)
    return np.clip(np.asarray(scaled, dtype=np.float32), 0.0, 1.0)  # Lanczos overshoots


def _centre(digit: np.ndarray) -> np.ndarray:
    """Paste into a SIDE x SIDE field with the centre of mass nearest (CENTRE, CENTRE).

    Whole-pixel placement keeps the strokes sharp; the digit always stays inside.

    Shapes:
        digit: (h, w) with h, w <= BOX  ->  returns (SIDE, SIDE) float32
    """
    h, w = digit.shape
    mass = digit.sum()
    cy = (digit.sum(axis=1) @ np.arange(h)) / mass  # centre of mass, row
    cx = (digit.sum(axis=0) @ np.arange(w)) / mass  # centre of mass, column
    top = int(np.clip(round(CENTRE - cy), 0, SIDE - h))
    left = int(np.clip(round(CENTRE - cx), 0, SIDE - w))
    field = np.zeros((SIDE, SIDE), dtype=np.float32)
    field[top : top + h, left : left + w] = digit
    return field

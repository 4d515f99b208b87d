"""A user's own photo or drawing of a digit, prepared the way MNIST's digits were.

MNIST's recipe (LeCun et al.): the digit is scaled, keeping its aspect ratio, so that it
fits a 20x20 box (with antialiasing, hence grey levels), and then placed in a 28x28
field so that its centre of mass lies at the centre. The network expects white ink
(1.0) on black (0.0), so a light background is inverted first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from tiefnet.errors import DataError

SIDE = 28  # output field, SIDE x SIDE
BOX = 20  # the digit's longer side after scaling
CENTRE = 14.0  # where MNIST's centres of mass lie (mean over the training set: 14.0, 14.0)
MIN_CONTRAST = 0.1  # darkest-to-lightest difference below this: no ink at all
INK_LEVEL = 0.1  # pixels above this (of the ink's maximum) define the bounding box


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


def _read_grayscale(path: Path) -> np.ndarray:
    """Pixel intensities in [0, 1]; a transparent background counts as white.

    Shapes:
        returns (H, W) float32
    """
    if not path.is_file():
        raise DataError(f"{path}: {'a folder, not a file' if path.is_dir() else 'file not found'}")
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                rgba = img.convert("RGBA")
                img = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
            gray = img.convert("L")
    except UnidentifiedImageError as exc:
        raise DataError(f"{path}: not an image Pillow can read (use PNG or JPEG)") from exc
    except OSError as exc:  # truncated or otherwise broken image data
        raise DataError(f"{path}: cannot read image ({exc})") from exc
    return np.asarray(gray, dtype=np.float32) / 255.0


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

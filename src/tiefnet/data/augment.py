"""Expanding the training data (lecture 2.7.3): "leicht drehen, verschieben, schräg stellen".

Each new image is an old one slightly rotated, shifted and skewed about the image
centre, with the old label. Every transform is one affine map x_in = M x_out + offset
evaluated by `scipy.ndimage.affine_transform` with bilinear interpolation (order=1),
so intensities stay in [0, 1]; pixels that come from outside the image are 0 (black).

Coordinates are (row, col) with rows pointing down, as arrays are indexed.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from tiefnet.errors import ConfigError, ShapeError

SIDE = 28  # MNIST images are SIDE x SIDE


def rotate(img: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate counter-clockwise (as seen on screen) by `degrees` about the centre.

    Shapes:
        img: (H, W)  ->  returns (H, W) float32
    """
    return _warp(img, _rotation(degrees), np.zeros(2))


def shift(img: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """Move the content dy pixels down and dx pixels right (fractions interpolate).

    Shapes:
        img: (H, W)  ->  returns (H, W) float32
    """
    return _warp(img, np.eye(2), np.array([dy, dx], dtype=np.float64))


def skew(img: np.ndarray, s: float) -> np.ndarray:
    """Shear horizontally about the centre: s > 0 leans the top to the right, like italics.

    A pixel `r` rows above the centre moves `s * r` pixels right.

    Shapes:
        img: (H, W)  ->  returns (H, W) float32
    """
    return _warp(img, _shear(s), np.zeros(2))


def expand(
    x: np.ndarray,
    y: np.ndarray,
    copies: int,
    rng: np.random.Generator | int | None,
    max_angle: float = 15.0,
    max_shift: float = 2.0,
    max_skew: float = 0.2,
) -> tuple[np.ndarray, np.ndarray]:
    """The originals, then `copies` randomly transformed copies of each image: the training set
    (x_i, y_i) grows to (x_i, y_i), (M_1(x_i), y_i), ..., (M_copies(x_i), y_i) (2.7.3), each M_j a
    slight rotation, skew and shift.

    Each copy: rotation by U(-max_angle, max_angle) degrees, horizontal skew by
    U(-max_skew, max_skew), both about the centre, then a shift by U(-max_shift, max_shift)
    pixels in each direction. The same rng state gives the same result.

    Shapes:
        x: (N, 784) float32 in [0, 1], y: (N,)
        returns x_new ((copies + 1) * N, 784) float32 in [0, 1], y_new ((copies + 1) * N,);
        rows k*N .. (k+1)*N - 1 hold copy k of every image (k = 0: the originals).
    """
    x, y = _check_expand_args(x, y, copies, max_angle, max_shift, max_skew)
    rng = np.random.default_rng(rng)
    N = len(x)
    angles = rng.uniform(-max_angle, max_angle, size=(copies, N))
    skews = rng.uniform(-max_skew, max_skew, size=(copies, N))
    shifts = rng.uniform(-max_shift, max_shift, size=(copies, N, 2))  # (dy, dx)

    images = x.reshape(N, SIDE, SIDE)  # (N, 28, 28)
    x_new = np.empty(((copies + 1) * N, SIDE, SIDE), dtype=np.float32)
    x_new[:N] = images
    for k in range(copies):
        for n in range(N):
            A = _shear(skews[k, n]) @ _rotation(angles[k, n])  # rotate first, then skew
            _warp(images[n], A, shifts[k, n], out=x_new[(k + 1) * N + n])
    np.clip(x_new, 0.0, 1.0, out=x_new)
    return x_new.reshape(-1, SIDE * SIDE), np.tile(y, copies + 1)


# --- helpers -------------------------------------------------------------------------


def _rotation(degrees: float) -> np.ndarray:
    """2x2 matrix acting on (row, col); rows point down, so the signs differ from (x, y)."""
    t = np.deg2rad(degrees)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def _shear(s: float) -> np.ndarray:
    """2x2 matrix on (row, col): col' = col - s * row (rows above the centre go right)."""
    return np.array([[1.0, 0.0], [-s, 1.0]])


def _warp(
    img: np.ndarray, A: np.ndarray, t: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Apply p' = A (p - c) + c + t to the content of img, c the centre pixel position.

    affine_transform needs the inverse map, output -> input: p = A^-1 (p' - c - t) + c.

    Shapes:
        img: (H, W), A: (2, 2), t: (2,)  ->  (H, W) float32 (written into `out` if given)
    """
    img = np.asarray(img, dtype=np.float32)
    if img.ndim != 2:
        raise ShapeError(f"expected one image of shape (H, W), got shape {img.shape}")
    c = (np.array(img.shape, dtype=np.float64) - 1) / 2  # (13.5, 13.5) for 28x28
    A_inv = np.linalg.inv(A)
    offset = c - A_inv @ (c + t)
    if out is None:
        out = np.empty(img.shape, dtype=np.float32)
    ndimage.affine_transform(img, A_inv, offset=offset, output=out, order=1, mode="constant")
    return out


def _check_expand_args(x, y, copies, max_angle, max_shift, max_skew):
    """Validate expand()'s arguments; return x as float32 and y as an array."""
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y)
    if x.ndim != 2 or x.shape[1] != SIDE * SIDE:
        raise ShapeError(f"expand: x must be (N, {SIDE * SIDE}), got shape {x.shape}")
    if y.shape != (len(x),):
        raise ShapeError(f"expand: y must be ({len(x)},) to match x, got shape {y.shape}")
    if isinstance(copies, bool) or not isinstance(copies, (int, np.integer)) or copies < 0:
        raise ConfigError(f"expand: copies must be a whole number >= 0, got {copies!r}")
    for name, value in [("max_angle", max_angle), ("max_shift", max_shift), ("max_skew", max_skew)]:
        if not value >= 0:
            raise ConfigError(f"expand: {name} must be >= 0, got {value}")
    return x, y

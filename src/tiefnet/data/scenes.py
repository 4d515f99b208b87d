"""Generated captioning scenes (4.4.1-4.4.2): 1-3 real MNIST digits on a canvas, each in one of the four
quadrants, large or small, in one of five ink colours, with captions written by a small grammar.

    "a large red 7 in the upper left and a small green 3 in the lower right"   (absolute places)
    "a large red 7 at the top left and a small green 3 at the bottom right"     (synonyms)
    "a large red 7 in the upper left and a small green 3 below it"             (relative to the last digit)

Three references per image, the digits always named in reading order (upper left, upper right, lower
left, lower right). The generator knows every digit's box, so an attention map can be scored against it.

Splits (fixed by the seed): ``train`` takes its handwriting from MNIST's first 50,000 training images,
``validation`` from the last 10,000 and ``test`` and ``compositional`` from the 10,000 test images. Ten
(digit, place, size) combinations never occur in train/validation/test (:data:`HELD_OUT`: digit d is
never in place d mod 4 at size (d // 4) mod 2); every ``compositional`` scene has at least one of them,
so a model that only memorised what it saw cannot describe it.
"""
from __future__ import annotations

import numpy
from PIL import Image

from tiefnet.data.captions import Box, CaptionSet
from tiefnet.errors import ConfigError
from tiefnet.limits import check_allocation
from tiefnet.settings import check_seed

PLACES = ("upper left", "upper right", "lower left", "lower right")  # quadrants in reading order
SYNONYMS = {"upper left": "top left", "upper right": "top right", "lower left": "bottom left",
            "lower right": "bottom right"}
SIZES = {"large": 28, "small": 16}  # side of the pasted MNIST frame (28 x 28 scaled), pixels
COLOURS = {"red": (1.0, 0.15, 0.1), "green": (0.15, 1.0, 0.2), "blue": (0.25, 0.4, 1.0),
           "yellow": (1.0, 0.95, 0.1), "white": (1.0, 1.0, 1.0)}
HELD_OUT = frozenset((d, PLACES[d % 4], ("large", "small")[(d // 4) % 2]) for d in range(10))
SPLITS = ("train", "validation", "test", "compositional")
MAX_SCENES = 1_000_000


def _relative(previous: int, place: int) -> str | None:
    """'below it' / 'to the right of it' when the digit lies straight below / right of the last one."""
    if place == previous + 2:
        return "below it"
    if place == previous + 1 and previous % 2 == 0:
        return "to the right of it"
    return None


def captions_for(digits: list[tuple[int, int, str, str]]) -> list[list[str]]:
    """The three reference captions of a scene, its digits (digit, place index, size, colour) in reading order."""
    absolute, synonyms, relative = [], [], []
    for k, (digit, place, size, colour) in enumerate(digits):
        thing = f"a {size} {colour} {digit}"
        absolute.append(f"{thing} in the {PLACES[place]}")
        synonyms.append(f"{thing} at the {SYNONYMS[PLACES[place]]}")
        near = _relative(digits[k - 1][1], place) if k else None
        relative.append(f"{thing} {near}" if near else absolute[-1])
    return [" and ".join(parts).split() for parts in (absolute, synonyms, relative)]


def _digit_pool(split: str):
    """(images (M, 28, 28) uint8, labels (M,)) of the MNIST part a split takes its handwriting from."""
    from tiefnet.data.mnist import load_mnist

    mnist = load_mnist()
    part = {"train": mnist.train, "validation": mnist.validation}.get(split, mnist.test)
    return (part.x.reshape(-1, 28, 28) * 255).round().astype(numpy.uint8), part.y


def _layout(rng: numpy.random.Generator, count: int, compositional: bool) -> list[tuple[int, int, str, str]]:
    """Digits (digit, place, size, colour) for one scene, in reading order: held-out combinations
    never, or (compositional) at least one."""
    while True:
        places = sorted(rng.choice(4, size=count, replace=False).tolist())
        layout = [(int(rng.integers(10)), p, ("large", "small")[int(rng.integers(2))],
                   list(COLOURS)[int(rng.integers(len(COLOURS)))]) for p in places]
        held = [(d, PLACES[p], s) in HELD_OUT for d, p, s, _ in layout]
        if (any(held) if compositional else not any(held)):
            return layout


def make_scenes(split: str, count: int, seed: int = 0, canvas: int = 64,
                digit_counts: tuple[int, ...] = (1, 2, 3)) -> CaptionSet:
    """``count`` scenes of one split (see the module docstring), the same for the same arguments.

    Shapes: images (count, canvas, canvas, 3) uint8; boxes: one Box per digit (the pasted frame)."""
    if split not in SPLITS:
        raise ConfigError(f"split={split!r} is not one of {', '.join(SPLITS)}")
    if not 1 <= count <= MAX_SCENES:
        raise ConfigError(f"count={count} scenes must be 1 to {MAX_SCENES:,}")
    if canvas < 2 * SIZES["large"] or canvas > 512:
        raise ConfigError(f"canvas={canvas} must be {2 * SIZES['large']} to 512 pixels")
    if not digit_counts or any(c not in (1, 2, 3) for c in digit_counts):
        raise ConfigError(f"digit_counts={digit_counts} must be chosen from 1, 2, 3")
    check_seed(seed)
    check_allocation(count * canvas * canvas * 3, f"{count:,} scenes of {canvas} x {canvas} pixels")
    pool, labels = _digit_pool(split)
    by_digit = [numpy.flatnonzero(labels == d) for d in range(10)]
    rng = numpy.random.default_rng([seed, SPLITS.index(split)])
    half = canvas // 2
    images = numpy.zeros((count, canvas, canvas, 3), dtype=numpy.uint8)
    captions, boxes, digits = [], [], []
    for n in range(count):
        layout = _layout(rng, int(rng.choice(digit_counts)), split == "compositional")
        scene = numpy.zeros((canvas, canvas, 3), dtype=numpy.float32)
        scene_boxes = []
        for digit, place, size, colour in layout:
            side = SIZES[size]
            ink = pool[by_digit[digit][int(rng.integers(len(by_digit[digit])))]]
            if side != 28:
                ink = numpy.asarray(Image.fromarray(ink).resize((side, side), Image.BILINEAR))
            y0 = (place // 2) * half + int(rng.integers(0, half - side + 1))
            x0 = (place % 2) * half + int(rng.integers(0, half - side + 1))
            patch = ink.astype(numpy.float32)[:, :, None] * numpy.asarray(COLOURS[colour], numpy.float32)
            region = scene[y0:y0 + side, x0:x0 + side]
            numpy.maximum(region, patch, out=region)
            scene_boxes.append(Box(str(digit), x0, y0, x0 + side, y0 + side))
        images[n] = scene.round().astype(numpy.uint8)
        captions.append(captions_for(layout))
        boxes.append(scene_boxes)
        digits.append(len(layout))
    names = [f"{split}-{seed}-{n}" for n in range(count)]
    return CaptionSet(images, captions, names, boxes, digits,
                      {"format": "scenes", "split": split, "seed": seed, "canvas": canvas})

"""The Captions and Style views: describe a picture with a ``tiefnet caption train`` model (4.4; an
attention model shows where it looked for each word), and paint a picture in the style a
``tiefnet fast-style`` network learned (3.4), in one forward pass.

Pictures come as bytes from the page: they are opened with the checks of every picture file
(:func:`tiefnet.data.image.opened_image`: the pixel count from the header first, a decompression
bomb refused), never written anywhere.
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy
from PIL import Image, ImageOps

from tiefnet.errors import DataError

MAX_STYLE_SIDE = 512  # pixels of the longer side a picture is stylised at, at the most
DEFAULT_STYLE_SIDE = 256


def open_picture(data: bytes, longest: int | None = None, max_pixels: int | None = None) -> Image.Image:
    """An RGB picture from bytes (upright, transparency laid on white), of at most ``max_pixels``
    pixels (checked from its header); with ``longest`` its longer side scaled to at most that many."""
    from tiefnet.data.image import opened_image

    if not data:
        raise DataError("the picture: empty, not an image")
    with opened_image(io.BytesIO(data), "the picture", max_pixels) as img:
        if longest is not None:
            img.draft("RGB", (longest, longest))  # a JPEG decodes at a fraction of its size where it can
        picture = ImageOps.exif_transpose(img)
        if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
            rgba = picture.convert("RGBA")
            picture = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
        picture = picture.convert("RGB")
    if longest is not None and max(picture.size) > longest:
        scale = longest / max(picture.size)
        picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
                                 Image.LANCZOS)
    return picture


def png_data_url(rgb: numpy.ndarray) -> str:
    """(H, W, 3) uint8 as a data: URL the page shows without another request."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@dataclass(frozen=True)
class CaptionModel:
    name: str
    model: Any
    vocab: Any
    info: dict
    app = "caption"

    @classmethod
    def load(cls, name: str, folder: str | Path) -> "CaptionModel":
        from tiefnet.text.caption_use import load_captioner

        model, vocab, info = load_captioner(folder)
        return cls(name, model, vocab, info)

    @property
    def kind(self) -> str:
        return "attention" if type(self.model).__name__ == "ShowAttendTell" else "show-and-tell"

    @property
    def size(self) -> int:
        return int(self.info["size"])

    def describe(self, image: numpy.ndarray, beam: int = 1) -> dict[str, Any]:
        """The caption of one (S, S, 3) uint8 image and, for an attention model, per word the
        weights alpha over the feature grid (rows of the grid, each a list)."""
        from tiefnet.text.caption_use import generate

        words, alphas = generate(self.model, image[None], self.vocab, int(self.info["max_length"]), beam)
        caption, alpha = words[0], alphas[0]
        maps = None
        if alpha is not None:
            R = alpha.shape[-1]
            side = int(round(R ** 0.5))
            if side * side == R:  # one map per word written (the END's is left out)
                maps = [numpy.round(a.reshape(side, side).astype(float), 4).tolist() for a in alpha[:len(caption)]]
        return {"model": self.name, "kind": self.kind, "words": list(caption), "caption": " ".join(caption),
                "attention": maps, "image": png_data_url(image)}

    def picture(self, data: bytes, max_pixels: int | None = None) -> numpy.ndarray:
        """An uploaded picture as this model reads it: (S, S, 3) uint8, squashed as for training."""
        picture = open_picture(data, max_pixels=max_pixels).resize((self.size, self.size), Image.BILINEAR, reducing_gap=3.0)
        return numpy.asarray(picture, dtype=numpy.uint8)

    def scene(self, split: str, seed: int) -> tuple[numpy.ndarray, list[str], list[dict[str, Any]]]:
        """One generated scene of the model's size (4.4's digits on a canvas): image, reference
        captions and the digits' boxes."""
        from tiefnet.data.scenes import make_scenes

        scenes = make_scenes(split, 1, seed=seed, canvas=self.size)
        boxes = [{"word": b.word, "x0": b.x0, "y0": b.y0, "x1": b.x1, "y1": b.y1} for b in scenes.boxes[0]]
        return scenes.images[0], [" ".join(c) for c in scenes.captions[0]], boxes


@dataclass(frozen=True)
class Stylizer:
    name: str
    net: Any
    info: dict
    app = "fast-style"

    @classmethod
    def load(cls, name: str, folder: str | Path) -> "Stylizer":
        from tiefnet.vision.fast_style import load_stylizer

        net, info = load_stylizer(folder)
        return cls(name, net, info)

    @property
    def kind(self) -> str:
        style = self.info.get("style")
        return Path(style).stem[:40] if isinstance(style, str) and style else "style"

    def stylize(self, data: bytes, side: int, max_pixels: int | None = None) -> bytes:
        """The picture (its longer side scaled to at most ``side``) in this network's style, as PNG."""
        from tiefnet.data.pictures import MIN_SIDE, to_uint8
        from tiefnet.vision.fast_style import stylize

        picture = open_picture(data, side, max_pixels)
        if min(picture.size) < MIN_SIDE:
            raise DataError(f"the picture is {picture.width}x{picture.height} pixels; style transfer needs at "
                            f"least {MIN_SIDE} on each side")
        x = (numpy.asarray(picture, dtype=numpy.float32) / 255.0).transpose(2, 0, 1).copy()
        y = stylize(self.net, x)
        buffer = io.BytesIO()
        Image.fromarray(to_uint8(y)).save(buffer, "PNG")
        return buffer.getvalue()

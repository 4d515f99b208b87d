"""Feature networks for style transfer (3.4): a fixed CNN whose activations at named layers give
the content representation a^l and, through Gram matrices, the style representation.

A :class:`FeatureNet` is a :class:`~tiefnet.nn.Taps` over a frozen Sequential, plus what the
losses need to know: which taps carry the style (with their weights w_l), which one carries the
content, and how a picture in [0, 1] RGB becomes the network's input ((x - mean) / std per
channel, as the ImageNet weights expect).

Two networks:
- :func:`random_features` (the default, nothing to download): a VGG-shaped conv-ReLU-max-pool
  network with random He-initialised filters from a fixed seed, five scales (each pooling halves
  the resolution and doubles the filters' reach). Random filters carry no knowledge of objects:
  they measure colour, edges and texture statistics at five scales (Ustyuzhaninov et al.
  2016/17 showed that random multi-scale filters suffice to synthesise natural textures), so the
  style comes through as colours, strokes and texture, and the content is kept as the photo's
  layout and edges, not as recognised objects.
- VGG-19 with ImageNet weights the user has (:mod:`tiefnet.vision.vgg`), the network of Gatys et al.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy

from tiefnet.backend import Array, xp
from tiefnet.errors import ConfigError, ShapeError
from tiefnet.nn import Conv2d, MaxPool2d, ReLU, Sequential, Taps

STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")  # the lecture's w_l = 1/5 each
CONTENT_LAYER = "conv4_2"  # "Fuer L_content verwendet man nur Layer 4"
RANDOM_WIDTHS = (32, 64, 128, 128, 128)  # filters of the five stages of the random network
RANDOM_SEED = 0
# The random filters are He-initialised and then scaled by RANDOM_GAIN: the network has no biases and
# ReLU and max-pooling commute with a positive factor, so every activation scales by it, L_content by
# its square and L_style by its fourth power, so the gain sets how the lecture's alpha/beta = 1e-3
# weighs the two costs on this network. At gain 1 the content cost outweighs the style so much that
# L-BFGS from the photo lowers L_style by 13% in 300 iterations; at 64, by 99.6-99.8% (Adam or
# L-BFGS) while L_content stays at a fifth to a sixth of the painting's, and the painting's colours
# and strokes show (astronaut and starry_night at 256 x 256: bench/RESULTS.md).
RANDOM_GAIN = 64.0
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the input normalisation of torchvision's ImageNet weights
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class FeatureNet:
    """A frozen feature network with the taps of the style and content losses.

    Attributes:
        taps: forward(x) -> {name: a^l}, backward({name: dC/da^l}) -> dC/dx (one pass for all taps).
        style_weights: {tap name: w_l} of L_style = sum_l w_l L_style(l).
        content_layer: the tap of L_content.
        mean, std: per-channel input normalisation of a picture in [0, 1] RGB.
        name: "random" or "vgg19", written to a fast-style model's folder.
        min_side: the smallest picture side the network accepts (every pooling needs >= 2 positions).
    """

    taps: Taps
    style_weights: dict[str, float]
    content_layer: str
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    name: str = "random"
    min_side: int = 16

    def __post_init__(self) -> None:
        missing = [n for n in (*self.style_weights, self.content_layer) if n not in self.taps.taps]
        if missing:
            raise ConfigError(f"FeatureNet: no tap named {', '.join(missing)} (taps: {', '.join(self.taps.taps)})")
        self.taps.freeze()  # 3.4: "Die Netz-Parameter bleiben unveraendert"

    def forward(self, x: Array, train: bool = False) -> dict[str, Array]:
        """x: pictures (N, 3, H, W) in [0, 1] RGB -> {tap: a^l (N, F_l, H_l, W_l)}."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ShapeError(f"{self.name} features: expected pictures (N, 3, H, W), got {tuple(x.shape)}")
        if min(x.shape[2:]) < self.min_side:
            raise ShapeError(f"{self.name} features: the picture is {x.shape[3]}x{x.shape[2]} pixels; "
                             f"the network needs at least {self.min_side} on each side")
        mean, std = self._stats(x.dtype)
        return self.taps.forward((x - mean) / std, train)

    def backward(self, grads: Mapping[str, Array | None]) -> Array:
        """{tap: dC/da^l} -> dC/dx (N, 3, H, W) of the picture (the chain rule through (x - mean) / std)."""
        d_input = self.taps.backward(grads)
        return d_input / self._stats(d_input.dtype)[1]

    def _stats(self, dtype) -> tuple[Array, Array]:
        mean = xp.asarray(self.mean, dtype=dtype).reshape(1, 3, 1, 1)
        std = xp.asarray(self.std, dtype=dtype).reshape(1, 3, 1, 1)
        return mean, std


def random_features(seed: int = RANDOM_SEED, widths: tuple[int, ...] = RANDOM_WIDTHS,
                    gain: float = RANDOM_GAIN) -> FeatureNet:
    """The default feature network: conv1_1 pool conv2_1 pool conv3_1 pool conv4_1 conv4_2 pool conv5_1,
    each a 3x3 convolution (padding 1) with random He-initialised filters and ReLU,
    a^l_{f,j} = ReLU(sum_{c,k} w_{f,c,k} a^{l-1}_{c,j+k}) (3.3, no bias), each pool a 2 x 2 max-pooling.

    The filters are drawn from ``seed``, so the network is the same on every machine and needs no file;
    the first layer's are multiplied by ``gain`` (see RANDOM_GAIN), the biases are zero.
    Taps read the ReLU outputs (conv1_1 = relu1_1, as in Gatys et al.'s code).
    """
    if len(widths) != 5 or any(int(w) < 1 for w in widths):
        raise ConfigError(f"random_features: widths={widths!r} must be five positive filter counts")
    rng = numpy.random.default_rng(seed)
    layers: list = []
    taps: dict[str, int] = {}
    channels = 3

    def conv(name: str, features: int) -> None:
        nonlocal channels
        layers.extend([Conv2d(channels, features, 3, padding=1, init="he", rng=rng), ReLU()])
        taps[name] = len(layers) - 1
        channels = features

    for stage, features in enumerate(widths, start=1):
        conv(f"conv{stage}_1", features)
        if stage == 4:
            conv("conv4_2", features)
        if stage < 5:
            layers.append(MaxPool2d(2))
    first = layers[0].params["W"]
    first *= gain  # every activation scales by gain (no biases; ReLU(g z) = g ReLU(z), max-pool likewise)
    net = Taps(Sequential(*layers), taps)
    return FeatureNet(net, {name: 1 / len(STYLE_LAYERS) for name in STYLE_LAYERS}, CONTENT_LAYER, name="random",
                      min_side=16)


__all__ = ["CONTENT_LAYER", "IMAGENET_MEAN", "IMAGENET_STD", "FeatureNet", "STYLE_LAYERS", "random_features"]

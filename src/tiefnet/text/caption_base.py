"""What both captioning models of :mod:`tiefnet.text.caption` share (4.4.1-4.4.2): the encoder CNN,
the softmax output, the decoder's state between generation steps and the container of the parts."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy

from tiefnet.backend import Array, xp
from tiefnet.errors import ShapeError
from tiefnet.nn import Container, Conv2d, Dense, Embedding, MaxPool2d, ReLU, Sequential, Tanh
from tiefnet.nn.layer import layer_to_config


def build_encoder(channels: tuple[int, ...], rng: numpy.random.Generator, extra: int = 0) -> Sequential:
    """3 -> channels[0] -> ... : each a 3x3 convolution (padding 1) + ReLU + 2x2 max-pooling; a 64 x 64
    image and three layers give an 8 x 8 map of channels[-1] features, each seeing 22 x 22 pixels.
    ``extra`` more 3x3 convolutions + ReLU at that resolution widen each position's view (by 16 pixels each)."""
    layers, previous = [], 3
    for F in channels:
        layers += [Conv2d(previous, F, 3, padding=1, init="he", rng=rng), ReLU(), MaxPool2d(2)]
        previous = F
    for _ in range(extra):
        layers += [Conv2d(previous, previous, 3, padding=1, init="he", rng=rng), ReLU()]
    return Sequential(*layers)


def softmax(z: Array) -> Array:
    z = z - z.max(axis=-1, keepdims=True)
    p = xp.exp(z, out=z)
    p /= p.sum(axis=-1, keepdims=True)
    return p


def output_ends(output) -> tuple[int | None, int | None]:
    """(n_in of the first Dense, n_out of the last) of the output layer: a Dense, or Xu et al.'s deep
    output Sequential(Dense, Tanh, Dense)."""
    dense = [output] if isinstance(output, Dense) else [layer for _, layer in output.walk() if isinstance(layer, Dense)]
    if not dense or (isinstance(output, Sequential) and not all(
            isinstance(layer, (Dense, Tanh)) for layer in output.layers)):
        raise ValueError("the output layer must be a Dense or a Sequential of Dense and Tanh layers")
    return dense[0].n_in, dense[-1].n_out


class DecoderState(NamedTuple):
    """The decoder between two generation steps; every part has the captions as its first axis."""

    h: Array  # (B, H)
    c: Array  # (B, H)
    regions: Array | None  # the attention model's a_j (B, R, C)
    proj: Array | None  # W_a a_j + b (B, R, A)

    def take(self, index: Array) -> DecoderState:
        """The states of the captions ``index`` (beam search keeps, drops and copies beams)."""
        return DecoderState(*(None if s is None else s[index] for s in self))


class Captioner(Container):
    """What both models share: the encoder, the embedding, the output layer, the image as input."""

    def __init__(self, encoder: Sequential, init: Dense, embed: Embedding, output: Dense):
        super().__init__()
        self.encoder, self.init, self.embed, self.output_layer = encoder, init, embed, output

    @property
    def H(self) -> int:
        return self.init.n_out // 2

    @property
    def V(self) -> int:
        return self.embed.V

    def _check_parts(self, kinds: dict[str, type], sizes: Callable[[], list[tuple[str, int, int]]]) -> None:
        """A model from a file: every part of the right type and the sizes where parts meet equal
        (a ValueError, which loading reports as a CheckpointError)."""
        for name, layer in self.parts().items():
            kind = kinds[name] if isinstance(kinds[name], tuple) else (kinds[name],)
            if not isinstance(layer, kind):
                raise ValueError(f"{type(self).__name__}: {name} must be a {' or '.join(k.__name__ for k in kind)}, "
                                 f"got {type(layer).__name__}")
        for what, got, expected in sizes():  # (called once the types are known to be right)
            if got != expected:
                raise ValueError(f"{type(self).__name__}: {what} is {got}, expected {expected}")

    def features(self, images: Array, train: bool = False) -> Array:
        """The CNN's output a_CNN (N, C, H', W') for images (N, 3, S, S)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ShapeError(f"{type(self).__name__}: expected images of shape (N, 3, S, S), got {tuple(images.shape)}")
        return self.encoder.forward(images, train)

    def _initial_state(self, a: Array, train: bool) -> tuple[Array, Array]:
        hc = self.init.forward(a, train)  # (h^0, c^0) = W_init a + b_init, (N, 2H)
        return hc[:, :self.H], hc[:, self.H:]

    @staticmethod
    def _check_words(words: Array, N: int) -> None:
        if words.ndim != 2 or words.shape[0] != N or words.dtype.kind not in "iu":
            raise ShapeError(f"expected word ids of shape ({N}, T), got {words.dtype} {tuple(words.shape)}")

    def parts(self) -> dict[str, Any]:
        """The children by the constructor's argument names."""
        return {"encoder": self.encoder, "init": self.init, "embed": self.embed, "output": self.output_layer}

    def to_config(self) -> dict[str, Any]:
        return {name: layer_to_config(layer) for name, layer in self.parts().items()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Captioner:
        return cls(**config)

    @classmethod
    def array_count(cls, config: dict[str, Any]) -> int | None:
        return 0  # the children hold the arrays

"""VGG-19 (Simonyan & Zisserman 2014), the feature network of Gatys et al.'s style transfer (3.4).

    x (N, 3, H, W) -> [conv 3x3 (padding 1) -> ReLU] x 2 -> pool     64 filters,  H x W
                   -> [conv -> ReLU] x 2 -> pool                    128 filters, H/2 x W/2
                   -> [conv -> ReLU] x 4 -> pool                    256 filters, H/4 x W/4
                   -> [conv -> ReLU] x 4 -> pool                    512 filters, H/8 x W/8
                   -> [conv -> ReLU] x 4 -> pool                    512 filters, H/16 x W/16

Layer i of :func:`vgg19_net` is layer i of torchvision's ``vgg19().features`` (37 layers: the
pools at 4, 9, 18, 27, 36), so its weights are torchvision's ``features.i.weight`` (F, C, 3, 3)
and ``features.i.bias`` (F,) without a transpose. The taps read the ReLU outputs (relu1_1 is
"conv1_1", as in Gatys et al.'s code): the style representation at conv1_1 ... conv5_1 (w_l = 1/5)
and the content representation at conv4_2.

The ImageNet weights are the user's own file (nothing is downloaded): :func:`convert_weights`
reads torchvision's state dict (``.pth``; read without pickle and without PyTorch) or a ``.safetensors`` file and
writes a tiefnet ``.npz``; :func:`load_vgg19` reads that (or the original file) into a
:class:`~tiefnet.vision.features.FeatureNet`. Nothing in such a file is trusted: no pickle, and
every layer's name, shape and dtype is checked before its numbers are read.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

import numpy

from tiefnet.backend import xp
from tiefnet.checkpoint import read_npz, write_npz
from tiefnet.errors import CheckpointError, ConfigError, DataError
from tiefnet.nn import Conv2d, MaxPool2d, ReLU, Sequential, Taps
from tiefnet.vision.features import CONTENT_LAYER, IMAGENET_MEAN, IMAGENET_STD, STYLE_LAYERS, FeatureNet
from tiefnet.vision.pth import TensorRef, read_state_dict

VGG19_STAGES = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))  # (filters, convolutions) per stage
VGG19_TAPS = {"conv1_1": 1, "conv2_1": 6, "conv3_1": 11, "conv4_1": 20, "conv4_2": 22, "conv5_1": 29}


def _conv_layout() -> tuple[tuple[int, int, int], ...]:
    """(layer index, C, F) of the 16 convolutions; each is followed by a ReLU, each stage by a pool."""
    convs, index, channels = [], 0, 3
    for features, count in VGG19_STAGES:
        for _ in range(count):
            convs.append((index, channels, features))
            index, channels = index + 2, features  # conv, ReLU
        index += 1  # the stage's pool
    return tuple(convs)


VGG19_CONVS = _conv_layout()  # ((0, 3, 64), (2, 64, 64), (5, 64, 128), ..., (34, 512, 512))
VGG19_POOLS = (4, 9, 18, 27, 36)
VGG19_LAYERS = 37
FORMAT = "tiefnet-vgg19/1"
TORCH_SUFFIXES = (".pth", ".pt")


def _shapes() -> dict[str, tuple[int, ...]]:
    """{array name in a converted file: shape}: "features.0.W" (64, 3, 3, 3), "features.0.b" (64,), ..."""
    shapes = {}
    for index, C, F in VGG19_CONVS:
        shapes[f"features.{index}.W"], shapes[f"features.{index}.b"] = (F, C, 3, 3), (F,)
    return shapes


def vgg19_net(rng: numpy.random.Generator | None = None) -> Sequential:
    """VGG-19's convolutional part, layer for layer torchvision's ``vgg19().features``: 16 conv 3x3
    (padding 1) + ReLU, max-pool 2x2 at 4, 9, 18, 27, 36. Random He-initialised filters from ``rng``.

    Shapes: x (N, 3, H, W) -> (N, 512, H/32, W/32) after the last pool.
    """
    rng = numpy.random.default_rng() if rng is None else rng
    convs = {index: (C, F) for index, C, F in VGG19_CONVS}
    layers = []
    for i in range(VGG19_LAYERS):
        if i in convs:
            layers.append(Conv2d(*convs[i], 3, padding=1, init="he", rng=rng))
        elif i in VGG19_POOLS:
            layers.append(MaxPool2d(2))
        else:
            layers.append(ReLU())
    return Sequential(*layers)


def vgg19_features(net: Sequential) -> FeatureNet:
    """The FeatureNet of Gatys et al. on a :func:`vgg19_net`: taps :data:`VGG19_TAPS` (ReLU outputs),
    style weights w_l = 1/5 on conv1_1 ... conv5_1, content at conv4_2, ImageNet mean and std.

    Taps run the network only up to conv5_1 (layer 29), after four pools: pictures need 16 pixels a side.
    """
    if not isinstance(net, Sequential) or len(net) != VGG19_LAYERS:
        raise ConfigError(f"vgg19_features: expected the {VGG19_LAYERS}-layer Sequential of vgg19_net, "
                        f"got {type(net).__name__} of {len(net) if isinstance(net, Sequential) else '?'} layers")
    return FeatureNet(Taps(net, VGG19_TAPS), {name: 1 / len(STYLE_LAYERS) for name in STYLE_LAYERS}, CONTENT_LAYER,
                      mean=IMAGENET_MEAN, std=IMAGENET_STD, name="vgg19", min_side=16)


# --- reading the user's weights -----------------------------------------------------------------

class _Source:
    """The tensors of a weights file as the checks need them, before any is read: their names,
    shapes and dtypes, and a reader for one tensor's numbers."""

    def __init__(self, names, shape: Callable, dtype: Callable, is_float: Callable, read: Callable) -> None:
        self.names, self.shape, self.dtype, self.is_float, self.read = set(names), shape, dtype, is_float, read


def _first_line(error: Exception) -> str:
    """The first line of an error from a reader library, for a one-line message."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()  # torch colours some messages
    return (text.splitlines() or [type(error).__name__])[0][:200]


def _prefix(path: Path, names: set[str]) -> str:
    """Where the conv layers are: "features." (torchvision), "module.features." (DataParallel), or
    "module." or "" (a state dict of ``features`` alone)."""
    for prefix in ("features.", "module.features.", "module.", ""):
        if f"{prefix}0.weight" in names:
            return prefix
    shown = ", ".join(repr(name[:60]) for name in sorted(names)[:5]) or "none"  # repr: a key may hold a newline
    raise DataError(f"{path}: not a VGG-19 state dict: no layer features.0.weight (its keys: {shown}"
                    f"{', ...' if len(names) > 5 else ''})")


def _collect(path: Path, source: _Source) -> dict[str, numpy.ndarray]:
    """{"features.i.W": float32 array, ...} from ``source``, every layer's name, shape, dtype and
    values checked; each tensor's shape and dtype before its numbers are read."""
    prefix = _prefix(path, source.names)
    if f"{prefix}1.running_mean" in source.names:
        raise DataError(f"{path}: a VGG-19 with batch normalisation (vgg19_bn); tiefnet reads plain vgg19 weights")
    arrays = {}
    for index, C, F in VGG19_CONVS:
        for kind, ours, shape in (("weight", "W", (F, C, 3, 3)), ("bias", "b", (F,))):
            key = f"{prefix}{index}.{kind}"
            layer = f"layer features.{index} ({key})"
            if key not in source.names:
                raise DataError(f"{path}: missing {layer}: not a VGG-19 state dict (a VGG-11/13/16?)")
            got = source.shape(key)
            if got != shape:
                raise DataError(f"{path}: {layer} has shape {got}, VGG-19 expects {shape}")
            if not source.is_float(key):
                raise DataError(f"{path}: {layer} holds {source.dtype(key)} values, not floating-point numbers")
            try:
                a = source.read(key)
            except DataError:
                raise
            except Exception as error:  # a sparse or otherwise unusual tensor, a truncated file
                raise DataError(f"{path}: {layer} could not be read ({_first_line(error)})") from None
            if not numpy.isfinite(a).all():
                raise DataError(f"{path}: {layer} holds NaN or infinite values")
            arrays[f"features.{index}.{ours}"] = a
    return arrays


def _read_torch(path: Path) -> dict[str, numpy.ndarray]:
    """A PyTorch state dict (torch.save, zip or legacy format) without pickle and without PyTorch
    (:mod:`tiefnet.vision.pth`): a tensor's numbers are read only after its shape and dtype passed."""
    state = read_state_dict(path)
    if not isinstance(state, dict):
        raise DataError(f"{path}: holds a {type(state).__name__}, not a state dict (save model.state_dict())")

    def tensor(key: str) -> TensorRef:
        value = state[key]
        if not isinstance(value, TensorRef):
            raise DataError(f"{path}: {key} is a {type(value).__name__}, not a tensor")
        return value

    return _collect(path, _Source(
        (k for k in state if isinstance(k, str)),
        shape=lambda key: tensor(key).shape,
        dtype=lambda key: tensor(key).dtype,
        is_float=lambda key: tensor(key).is_float,
        read=lambda key: tensor(key).read().astype(numpy.float32),
    ))


SAFETENSORS_FLOATS = ("F16", "F32", "F64")  # numpy has no bfloat16


def _read_safetensors(path: Path) -> dict[str, numpy.ndarray]:
    """A .safetensors file (no pickle by design): each tensor's header shape and dtype checked
    (``get_slice``) before ``get_tensor`` reads it."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np") as f:
            return _collect(path, _Source(
                f.keys(),
                shape=lambda key: tuple(f.get_slice(key).get_shape()),
                dtype=lambda key: f.get_slice(key).get_dtype(),
                is_float=lambda key: f.get_slice(key).get_dtype() in SAFETENSORS_FLOATS,
                read=lambda key: numpy.asarray(f.get_tensor(key), dtype=numpy.float32),
            ))
    except DataError:
        raise
    except Exception as error:  # safetensors' SafetensorError for a bad header, OSError, ...
        raise DataError(f"{path}: not a readable .safetensors file ({_first_line(error)})") from None


def _read_weights(source: str | os.PathLike) -> dict[str, numpy.ndarray]:
    """The 16 conv layers of a torchvision vgg19 state dict (.pth/.pt) or a .safetensors file."""
    path = Path(source)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in TORCH_SUFFIXES:
        return _read_torch(path)
    if suffix == ".safetensors":
        return _read_safetensors(path)
    raise DataError(f"{path}: unknown weights format {suffix or '(no suffix)'}; expected .pth, .pt or .safetensors")


def convert_weights(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """torchvision's vgg19 state dict (``.pth``/``.pt``, no PyTorch needed; the "features.i.weight/bias"
    keys, optionally under "module.", classifier ignored) or a ``.safetensors`` file with those keys
    -> a tiefnet ``.npz`` at ``target`` ("features.i.W" (F, C, 3, 3), "features.i.b" (F,), float32),
    written atomically. Returns the target's path; one DataError naming the file and the layer for
    anything that is not VGG-19's weights, and then nothing is written."""
    arrays = _read_weights(source)
    target = Path(target)
    write_npz(target, arrays, {"app": "vgg19", "format": FORMAT, "source": Path(source).name})
    return target


def _read_converted(path: Path) -> dict[str, numpy.ndarray]:
    """The arrays of a file written by :func:`convert_weights`, every name, shape and dtype checked."""
    try:
        arrays, meta = read_npz(path)  # allow_pickle=False; the headers' sizes checked before reading
    except CheckpointError as error:
        raise DataError(str(error)) from None
    if meta.get("app") != "vgg19":
        raise DataError(f"{path}: not a converted VGG-19 file (app {meta.get('app')!r}); make one with convert_weights")
    shapes = _shapes()
    for name, shape in shapes.items():
        if name not in arrays:
            raise DataError(f"{path}: missing layer {name}")
        a = arrays[name]
        if a.shape != shape:
            raise DataError(f"{path}: layer {name} has shape {a.shape}, VGG-19 expects {shape}")
        if a.dtype.kind != "f":
            raise DataError(f"{path}: layer {name} holds {a.dtype} values, not floating-point numbers")
        if not numpy.isfinite(a).all():
            raise DataError(f"{path}: layer {name} holds NaN or infinite values")
    extra = sorted(set(arrays) - set(shapes))
    if extra:
        raise DataError(f"{path}: arrays {', '.join(extra[:5])} are no layers of VGG-19")
    return arrays


def load_vgg19(path: str | os.PathLike) -> FeatureNet:
    """The VGG-19 FeatureNet (:func:`vgg19_features`) with the weights of ``path``: a ``.npz`` written
    by :func:`convert_weights`, or the original ``.pth``/``.pt``/``.safetensors`` (converted in memory).
    The filters are float32."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        arrays = _read_converted(path)
    else:
        arrays = _read_weights(path)
    net = vgg19_net(numpy.random.default_rng(0))  # the random filters are replaced below
    for index, _, _ in VGG19_CONVS:
        conv = net[index]
        conv.params["W"] = xp.asarray(arrays[f"features.{index}.W"], dtype=xp.float32)  # (F, C, 3, 3)
        conv.params["b"] = xp.asarray(arrays[f"features.{index}.b"], dtype=xp.float32)  # (F,)
    return vgg19_features(net)


__all__ = ["VGG19_CONVS", "VGG19_POOLS", "VGG19_TAPS", "convert_weights", "load_vgg19", "vgg19_features", "vgg19_net"]

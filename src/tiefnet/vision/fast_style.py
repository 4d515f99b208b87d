"""Fast style transfer (3.4, "Fast Style Transfer"; Johnson, Alahi, Fei-Fei 2016): a convolutional
network N_FST that computes the stylised picture x^ from the photo in ONE feed-forward pass,

    x_content --N_FST--> x^

trained once per style with L_total of :mod:`tiefnet.vision.style_losses` as its cost, x_in =
x_content (:mod:`tiefnet.vision.fast_style_run`). This module builds N_FST, loads a trained one
from a model folder and applies it to pictures and files.

N_FST (Johnson et al.'s supplementary material, with instance normalisation, Ulyanov et al. 2016):

    (N, 3, H, W)        reflection pad 4, conv 9x9, IN, ReLU            -> (N, c1, H, W)
    (N, c1, H, W)       reflection pad, conv 3x3 stride 2, IN, ReLU     -> (N, c2, H/2, W/2)
    (N, c2, H/2, W/2)   reflection pad, conv 3x3 stride 2, IN, ReLU     -> (N, c3, H/4, W/4)
    5 x residual block  y = g(x) + x, g = conv3x3-IN-ReLU-conv3x3-IN    -> (N, c3, H/4, W/4)
    nearest upsample x2, reflection pad 1, conv 3x3, IN, ReLU            -> (N, c2, H/2, W/2)
    nearest upsample x2, reflection pad 1, conv 3x3, IN, ReLU            -> (N, c1, H, W)
    reflection pad 4, conv 9x9                                            -> (N, 3, H, W) = x^

H and W must be multiples of 4; :func:`stylize` pads any other picture by reflection and cuts the
result back. Upsampling is nearest-neighbour + convolution instead of a transposed convolution, whose
uneven overlap paints checkerboards (Odena et al. 2016).
"""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy

from tiefnet import backend
from tiefnet.backend import Array, split_batch, xp
from tiefnet.checkpoint import read_model
from tiefnet.data.pictures import MAX_PIXELS, read_picture, resolve, save_picture
from tiefnet.errors import CheckpointError, ConfigError, ShapeError
from tiefnet.files import replacing
from tiefnet.nn import Conv2d, InstanceNorm2d, ReflectionPad2d, ReLU, Residual, Sequential, Sigmoid, Upsample
from tiefnet.nn.conv import channels_last, im2col
from tiefnet.limits import check_allocation
from tiefnet.nn.layer import Layer, layer_to_config
from tiefnet.settings import is_whole

APP = "fast-style"  # model.json's "app"
# c1, c2, c3. Johnson et al.: (32, 64, 128), 4x the arithmetic: a training step of 4 crops 128x128 took
# 1.6 s on one core of a 2-core AMD EPYC, (16, 32, 64) 0.5-0.65 s (3000 steps in 32 min)
WIDTHS = (16, 32, 64)
RESIDUAL_BLOCKS = 5  # "fuenf residual blocks"
# The layer types a fast-style model folder may name: a file naming any other is refused.
PICTURE_LAYERS = (Sequential, Residual, Conv2d, InstanceNorm2d, ReflectionPad2d, ReLU, Sigmoid, Upsample)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")  # what a folder's images are
BAND_NUMBERS = 2**22  # stylize's im2col matrices hold at most this many numbers (16 MB in float32)
MAX_WIDTH, MAX_RESIDUAL_BLOCKS = 1024, 64  # what a model folder may name


def _conv(C: int, F: int, kernel: int, stride: int, rng: numpy.random.Generator) -> list[Layer]:
    """Reflection padding + convolution: 'same' size (stride 1, pad kernel // 2) or half size (stride 2).

    A 3x3 stride-2 convolution halves an even side with one row and column of padding in all:
    torch's ReflectionPad2d(1) + stride 2 never reads the last padded row and column, so padding
    only the top and the left (left, right, top, bottom) = (1, 0, 1, 0) is the same function.
    """
    pad = ReflectionPad2d(kernel // 2) if stride == 1 else ReflectionPad2d((1, 0, 1, 0))
    return [pad, Conv2d(C, F, kernel, stride=stride, init="he", rng=rng)]


def transform_net(widths: Sequence[int] = WIDTHS, residual_blocks: int = RESIDUAL_BLOCKS,
                  rng: numpy.random.Generator | None = None) -> Sequential:
    """N_FST with c1, c2, c3 = ``widths`` features at full, half and quarter resolution.

    Shapes: x_in (N, 3, H, W) -> x^ (N, 3, H, W), H and W multiples of 4, pictures in [0, 1] RGB.

    The output is the last convolution itself, with no squashing: a Sigmoid's sigma' = a (1 - a)
    vanishes exactly where a style wants black or white, and damps every gradient by 1/4 at the
    start. L_content keeps x^ near the photo's range; :func:`stylize` clips to [0, 1]. The last
    layer starts as mid grey with faint noise: bias 0.5 (Adam's steps of ~eta = 1e-3 would need
    hundreds to get there) and filters of a tenth of He's scale (whose x^ has a std of about 1).
    """
    if len(widths) != 3 or not all(isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= 4096
                                   for w in widths):
        raise ConfigError(f"transform_net: widths={tuple(widths)!r} must be three feature counts in [1, 4096]")
    if isinstance(residual_blocks, bool) or not isinstance(residual_blocks, int) or not 0 <= residual_blocks <= 64:
        raise ConfigError(f"transform_net: residual_blocks={residual_blocks!r} must be a whole number in [0, 64]")
    rng = numpy.random.default_rng() if rng is None else rng
    c1, c2, c3 = widths

    def block(C: int, F: int, kernel: int, stride: int = 1) -> list[Layer]:  # conv, IN, ReLU
        return [*_conv(C, F, kernel, stride, rng), InstanceNorm2d(F), ReLU()]

    def residual() -> Residual:  # y = g(x) + x (5.5), g = conv-IN-ReLU-conv-IN
        return Residual(Sequential(*block(c3, c3, 3), *_conv(c3, c3, 3, 1, rng), InstanceNorm2d(c3)))

    out = _conv(c1, 3, 9, 1, rng)
    out[-1].params["W"] *= 0.1
    out[-1].params["b"][...] = 0.5
    return Sequential(*block(3, c1, 9), *block(c1, c2, 3, 2), *block(c2, c3, 3, 2),
                      *[residual() for _ in range(residual_blocks)],
                      Upsample(2), *block(c3, c2, 3), Upsample(2), *block(c2, c1, 3), *out)


def size_multiple(net: Layer) -> int:
    """The number H and W must be multiples of: the product of the convolutions' strides (4 for N_FST)."""
    return math.prod(layer.S for _, layer in net.walk() if isinstance(layer, Conv2d))


def forward(layer: Layer, x: Array) -> Array:
    """The evaluation forward pass of a picture network, its convolutions computed in bands of output
    rows (the same sums as Conv2d.forward, whose im2col matrix of a 9x9 layer over a 1000 x 1000
    picture would take 5 GB)."""
    if isinstance(layer, Sequential):
        for part in layer.layers:
            x = forward(part, x)
        return x
    if isinstance(layer, Residual) and layer.shortcut is None:
        return forward(layer.body, x) + x
    if isinstance(layer, Conv2d):
        return _conv_in_bands(layer, x)
    return layer.forward(x)


def _conv_in_bands(conv: Conv2d, x: Array) -> Array:
    """z = conv(x) (3.3), im2col + GEMM over a band of output rows at a time. Shapes as Conv2d."""
    H_out, W_out = conv.geometry(x.shape)
    Q, R, S = conv.Q, conv.R, conv.S
    x_hwc = channels_last(x, conv.P)  # (N, H + 2P, W + 2P, C)
    W_mat = conv.params["W"].transpose(0, 2, 3, 1).reshape(conv.F, -1)  # (F, Q R C), as im2col's rows
    N = x.shape[0]
    z = xp.empty((N, H_out, W_out, conv.F), dtype=x.dtype)
    rows = max(1, BAND_NUMBERS // (W_out * W_mat.shape[1]))  # output rows per band
    bands = [(n, top, min(H_out, top + rows)) for n in range(N) for top in range(0, H_out, rows)]

    def work(lo: int, hi: int) -> None:  # bands lo..hi-1; each writes its own rows of z
        for n, top, bottom in bands[lo:hi]:
            cols = im2col(x_hwc[n:n + 1, top * S:(bottom - 1) * S + Q], Q, R, S, bottom - top, W_out)
            z[n, top:bottom] = (cols @ W_mat.T + conv.params["b"]).reshape(bottom - top, W_out, conv.F)

    split_batch(work, len(bands), min_part=1)  # the bands spread over backend.thread_limit's threads
    return z.transpose(0, 3, 1, 2)  # (N, F, H_out, W_out), features innermost in memory


def stylize(net: Layer, picture: Array) -> numpy.ndarray:
    """x^ = N_FST(x_content) in one forward pass: picture (3, H, W) in [0, 1] -> (3, H, W) in [0, 1].

    Sides that are no multiple of 4 are padded by reflection (split between both edges) and cut back.
    """
    picture = backend.asarray(picture)
    if picture.ndim != 3 or picture.shape[0] != 3:
        raise ShapeError(f"stylize: expected a picture (3, H, W), got {tuple(picture.shape)}")
    multiple = size_multiple(net)
    _, H, W = picture.shape
    if min(H, W) < 2 * multiple:
        raise ShapeError(f"stylize: the picture is {W}x{H} pixels; the network needs at least {2 * multiple} "
                         f"on each side")
    check_allocation(forward_bytes(net, H, W), f"stylizing a {W}x{H} picture")
    pad_h, pad_w = -H % multiple, -W % multiple
    top, left = pad_h // 2, pad_w // 2
    x = xp.pad(picture[None], ((0, 0), (0, 0), (top, pad_h - top), (left, pad_w - left)), mode="reflect")
    x_hat = forward(net, x)[0, :, top:top + H, left:left + W]  # (3, H, W)
    return numpy.clip(backend.to_numpy(x_hat), 0.0, 1.0)


def check_layer_types(net: Layer, source: str) -> None:
    """A CheckpointError unless ``net`` is a Sequential of picture layers only."""
    if not isinstance(net, Sequential):
        raise CheckpointError(f"{source}: its network is {type(net).__name__}, not a Sequential")
    for _, layer in net.walk():
        if type(layer) not in PICTURE_LAYERS or isinstance(layer, Residual) and layer.shortcut is not None:
            raise CheckpointError(f"{source}: its network holds {layer.describe()[:60]}, not a layer of a "
                                  f"picture-to-picture network")


def check_picture_net(net: Layer, source: str) -> None:
    """A CheckpointError unless ``net`` is a Sequential of picture layers that maps a (1, 3, S, S)
    picture to (1, 3, S, S) finite numbers (one small dry forward)."""
    check_layer_types(net, source)
    multiple = size_multiple(net)
    if not 1 <= multiple <= 64:
        raise CheckpointError(f"{source}: its convolutions shrink a picture {multiple} times")
    side = max(16, 2 * multiple)
    ramp = xp.linspace(0.0, 1.0, 3 * side * side, dtype=backend.dtype()).reshape(1, 3, side, side)
    try:
        with numpy.errstate(all="ignore"):
            out = forward(net, ramp)
    except (ShapeError, ConfigError, ValueError) as error:
        raise CheckpointError(f"{source}: its network does not take a picture (1, 3, {side}, {side}) ({error})") \
            from None
    if tuple(out.shape) != tuple(ramp.shape):
        raise CheckpointError(f"{source}: its network maps a picture (1, 3, {side}, {side}) to {tuple(out.shape)}, "
                              f"not to a picture of the same size")
    if not bool(xp.isfinite(out).all()):
        raise CheckpointError(f"{source}: its network maps a picture to NaN or infinite values")


def load_stylizer(model_dir: str | Path) -> tuple[Sequential, dict[str, Any]]:
    """(N_FST, info) from a folder written by ``tiefnet fast-style`` (model.npz + model.json); the info
    names the style, the feature network and the widths. Nothing in the folder is trusted."""
    net, meta = read_model(model_dir)
    source = str(Path(model_dir) / "model.npz")
    if meta["app"] != APP:
        raise CheckpointError(f"{model_dir}: holds a model of tiefnet {str(meta['app'])[:40]}, not a fast "
                              f"style transfer network")
    info = meta["info"] if isinstance(meta["info"], dict) else {}
    check_layer_types(net, source)
    check_architecture(net, info, source)
    check_picture_net(net, source)
    return net, info


def check_architecture(net: Layer, info: dict[str, Any], source: str) -> None:
    """A CheckpointError unless ``net`` is exactly transform_net(info["widths"], info["residual_blocks"]):
    a folder from someone else must not bring its own layers, scales, paddings or widths (each could make
    a picture's forward pass allocate without limit)."""
    widths, blocks = info.get("widths"), info.get("residual_blocks")
    if not (isinstance(widths, list) and len(widths) == 3 and all(is_whole(w, 1, MAX_WIDTH) for w in widths)
            and is_whole(blocks, 0, MAX_RESIDUAL_BLOCKS)):
        raise CheckpointError(f"{source}: model.json names widths {str(widths)[:40]} and residual_blocks "
                              f"{str(blocks)[:20]}, not three feature counts in [1, {MAX_WIDTH}] and a count in "
                              f"[0, {MAX_RESIDUAL_BLOCKS}]")
    expected = transform_net(tuple(widths), blocks, numpy.random.default_rng(0))
    if layer_to_config(net) != layer_to_config(expected):
        raise CheckpointError(f"{source}: its network is not N_FST with widths {widths} and {blocks} residual "
                              f"blocks (a layer, size, padding or scale differs)")


def forward_bytes(net: Layer, H: int, W: int) -> int:
    """About the memory a forward pass of N_FST over an H x W picture holds at once: a few copies of the
    widest full-resolution maps, the half- and quarter-resolution ones, and one band of im2col."""
    c1 = max((layer.F for _, layer in net.walk() if isinstance(layer, Conv2d)), default=3)
    return 4 * (H + 8) * (W + 8) * (8 * c1 + 12) + 4 * BAND_NUMBERS * 2


def picture_files(images: Sequence[str | Path]) -> list[Path]:
    """Files, shipped names and folders (their image files, sorted) -> the image paths."""
    paths: list[Path] = []
    for spec in images:
        path = resolve(spec)
        if path.is_dir():
            paths += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                            and not p.name.startswith("."))
        else:
            paths.append(path)
    return paths


def stylize_files(model_dir: str | Path, images: Sequence[str | Path], out_dir: str | Path,
                  size: int | None = None, max_pixels: int = MAX_PIXELS, threads: int = 1,
                  overwrite: bool = False) -> list[Path]:
    """Stylise every picture of ``images`` (files, folders, sample-photo names) with the model in
    ``model_dir`` and write ``out_dir/<stem>.png`` each; ``size`` scales a picture's longer side first,
    ``threads`` CPU threads share each convolution's bands. Returns the written paths. Refuses to
    overwrite an input or to write two outputs of one name, and (unless ``overwrite``) a file already there."""
    net, _ = load_stylizer(model_dir)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: a file, not a folder for the stylised pictures")
    inputs = picture_files(images)
    if not inputs:
        raise ConfigError("stylize: no pictures given (or the folders hold no images)")
    targets = [out_dir / f"{path.stem}.png" for path in inputs]
    resolved = {path.resolve() for path in inputs}
    names = Counter(targets)
    for path, target in zip(inputs, targets):
        if target.resolve() in resolved:
            raise ConfigError(f"{target}: refusing to overwrite an input picture (choose another output folder)")
        if names[target] > 1:
            raise ConfigError(f"{path}: another input is also named {path.stem}; its output {target} would be "
                              f"overwritten")
        if not overwrite and (target.exists() or target.is_symlink()):
            raise ConfigError(f"{target} exists; give --overwrite to replace it (or choose another --out)")
    out_dir.mkdir(parents=True, exist_ok=True)
    with backend.thread_limit(threads):
        for path, target in zip(inputs, targets):
            x_hat = stylize(net, read_picture(path, size, max_pixels))
            with replacing(target) as temp:  # never through a symbolic link, never half-written
                save_picture(x_hat, temp)
    return targets


__all__ = ["APP", "RESIDUAL_BLOCKS", "WIDTHS", "check_picture_net", "forward", "load_stylizer", "picture_files",
           "size_multiple", "stylize", "stylize_files", "transform_net"]

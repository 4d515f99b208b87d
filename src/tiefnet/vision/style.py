"""``tiefnet style CONTENT STYLE``: artistic style transfer by optimising the picture (3.4, Gatys et al.).

"Grundlegender Unterschied zum bisherigen Trainieren: Die Netz-Parameter bleiben unveraendert.
Stattdessen wird das Gradientenverfahren auf x^ angewendet." The feature network is frozen; each
iteration is one forward pass of x^ to the taps, the costs of :mod:`tiefnet.vision.style_losses`,
one backward pass to the input (backpropagation down to the pixels), and a step on x^:

    x^' = x^ - lambda dL_total/dx^        (optimizer "gd", the lecture's step; "adam" as an option)

with Adam (the default: x^ clipped to [0, 1] after every step), or L-BFGS-B (scipy.optimize, "lbfgs",
as in Gatys et al., with the bounds [0, 1]; scipy's bounded step costs 50-80 ms per pass on a
256 x 256 picture, about as much as the network's forward and backward).

The run folder: result.png, frames.gif (x^ every few iterations), loss.png, metrics.jsonl (the
costs per iteration), config.json and summary.json (the costs of the content image, the style
image and the result, the seconds per iteration).
"""
from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy

from tiefnet import backend
from tiefnet.backend import Array, xp
from tiefnet.data.image import MAX_PIXELS as IMAGE_PIXELS
from tiefnet.data.pictures import MAX_PIXELS, MIN_SIDE, fit, read_picture, save_gif, save_picture
from tiefnet.errors import ConfigError
from tiefnet.optim import Adam
from tiefnet.runs import RunFolder
from tiefnet.settings import check_seed, setting
from tiefnet.vision.features import FeatureNet
from tiefnet.vision.style_losses import PerceptualLoss

OPTIMIZERS = ("adam", "lbfgs", "gd")
INITS = ("content", "noise")
FRAMES = 40  # intermediate pictures in frames.gif, at most


@dataclass(frozen=True)
class Config:
    """Settings of one style transfer; the CLI builds its options from these fields.

    L_total = alpha L_content + beta L_style (+ tv L_TV), alpha/beta = 1e-3 by default (3.4), minimised
    over the picture x^ in ``iterations`` steps of ``optimizer``."""

    size: int = setting(256, "Scale the content picture's longer side to this many pixels (0: keep its size).")
    net: str = setting("random", "Feature network: 'random' (random filters, no download: colours, strokes and "
                                 "texture, not objects) or a VGG-19 .npz made by 'tiefnet style-convert' (also "
                                 ".pth / .safetensors ImageNet weights).")
    alpha: float = setting(1.0, "Weight alpha of L_content.")
    beta: float = setting(1e3, "Weight beta of L_style (alpha/beta = 1e-3, as in the lecture).")
    tv: float = setting(0.0, "Weight of the total-variation term (smoothness; 0: off).")
    optimizer: str = setting("adam", "adam, lbfgs (scipy's L-BFGS-B, as Gatys et al.; each pass costs about twice "
                                     "as much here), or gd: the lecture's x^' = x^ - lambda dL/dx^.")
    eta: float = setting(0.02, "adam: its step size (pixels in [0, 1]); gd: how far the first step x^' = x^ - "
                               "lambda dL/dx^ moves the most-moved pixel (lambda = eta / max|dL/dx^|, then fixed).")
    iterations: int = setting(300, "Forward and backward passes (L-BFGS: function evaluations).")
    init: str = setting("content", "Start x^ from the 'content' picture or from 'noise'.")
    seed: int = setting(0, "Seed of the noise start.")
    max_pixels: int = setting(MAX_PIXELS, "Refuse pictures with more pixels than this (after --size).")
    threads: int = setting(1, "BLAS threads.")

    def __post_init__(self) -> None:
        for name, low in (("size", 0), ("iterations", 1), ("threads", 1), ("max_pixels", 256)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name}={value!r} must be a whole number >= {low}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer={self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if self.init not in INITS:
            raise ConfigError(f"init={self.init!r} is not one of {', '.join(INITS)}")
        for name in ("alpha", "beta", "tv", "eta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
                    or value < 0 or (name == "eta" and value == 0):
                raise ConfigError(f"{name}={value!r} must be a finite number {'> 0' if name == 'eta' else '>= 0'}")
        check_seed(self.seed)


def feature_net(spec: str) -> FeatureNet:
    """The feature network whose activations a^l give L_content and, through the Gram matrices G^l,
    L_style (3.4): 'random' -> the random multi-scale network (:func:`~tiefnet.vision.features.random_features`);
    a file (a .npz from ``tiefnet style-convert``, or torchvision's .pth / .safetensors) -> VGG-19 with
    those weights (:func:`~tiefnet.vision.vgg.load_vgg19`)."""
    if spec == "random":
        from tiefnet.vision.features import random_features

        return random_features()
    from tiefnet.vision.vgg import load_vgg19

    return load_vgg19(Path(spec))


Step = Callable[[int, float, dict[str, float], numpy.ndarray], None]


class _Enough(Exception):
    """Raised inside L-BFGS-B's function once the iterations are spent (its own maxfun may run over)."""


def optimise(loss: PerceptualLoss, x0: numpy.ndarray, a_content, config: Config, on_step: Step) -> numpy.ndarray:
    """Minimise L_total over x^ in [0, 1]^(3 H W) from x0 (1, 3, H, W); ``on_step(i, L, parts, x)`` after
    each forward/backward pass i = 1..iterations (exactly ``config.iterations`` of them). Returns the
    best x^ seen.

    "gd" is the lecture's step x^' = x^ - lambda dL_total/dx^ with one fixed lambda = eta / max|dL/dx^|
    of the first pass: the gradient's size depends on the network and the weights (1e8 and more on the
    random network), so eta says how far the first step moves the most-moved pixel (0.02: 2% of the range).
    """
    best = {"L": math.inf, "x": x0}
    count = 0

    def evaluate(x: Array) -> tuple[float, Array]:
        """L_total and dL/dx^ at x^ (on the array device); the best x^ and on_step's copy on the host."""
        nonlocal count
        L, parts, dx = loss(x, a_content)
        count += 1
        host = backend.to_numpy(x)
        if L < best["L"]:
            best.update(L=L, x=host.copy())
        on_step(count, L, parts, host)
        return L, dx

    if config.optimizer == "lbfgs":  # scipy works on the host, in float64
        from scipy.optimize import Bounds, minimize

        shape = x0.shape

        def f(flat: numpy.ndarray) -> tuple[float, numpy.ndarray]:
            if count >= config.iterations:
                raise _Enough
            L, g = evaluate(backend.asarray(flat.reshape(shape).astype(numpy.float32)))
            return L, backend.to_numpy(g).reshape(-1).astype(numpy.float64)

        try:
            minimize(f, x0.reshape(-1).astype(numpy.float64), jac=True, method="L-BFGS-B", bounds=Bounds(0.0, 1.0),
                     options={"maxfun": config.iterations + 1, "maxiter": config.iterations, "maxcor": 20,
                              "ftol": 0.0, "gtol": 0.0})
        except _Enough:
            pass
        return best["x"]
    x = backend.asarray(x0).copy()  # x^ lives where the network computes (NumPy or CuPy)
    adam = Adam(eta=config.eta).bind(x) if config.optimizer == "adam" else None
    lmbda = None
    for _ in range(config.iterations):
        _, g = evaluate(x)
        if adam is not None:
            adam.step(g)
        else:
            if lmbda is None:
                largest = float(xp.abs(g).max())
                lmbda = config.eta / largest if largest > 0 else 0.0
            x -= lmbda * g  # the lecture's step x^' = x^ - lambda dL_total/dx^
        xp.clip(x, 0.0, 1.0, out=x)  # stay a picture
    return best["x"]


def run(config: Config, content: str | Path, style: str | Path, out: str | Path, progress: bool = True) -> dict[str, Any]:
    """Transfer the style of ``style`` onto ``content`` (files or shipped names); write the run folder."""
    content_picture = read_picture(content, config.size or None, config.max_pixels)  # (3, H, W)
    _, H, W = content_picture.shape
    painting = read_picture(style, max_pixels=IMAGE_PIXELS)
    _, h, w = painting.shape
    scale = max(max(H, W) / max(h, w), MIN_SIDE / min(h, w))  # its longer side the content's, no side < MIN_SIDE
    painting = fit(painting, round(h * scale), round(w * scale))  # in its own aspect ratio
    style_picture = fit(painting, H, W)  # stretched to the content's size: only to report its L_content
    features = feature_net(config.net)
    folder = RunFolder(out, app="style", progress=progress).start(config)
    with folder, backend.picture_threads(config.threads):
        x_content = backend.asarray(content_picture[None])
        loss = PerceptualLoss(features, backend.asarray(painting[None]), config.alpha, config.beta, config.tv,
                              size=(H, W))  # the painting in its own aspect ratio, G_style rescaled to H x W
        a_content = loss.content_target(x_content)
        before = {"content image": loss.parts_of(x_content, a_content),
                  "style image": loss.parts_of(backend.asarray(style_picture[None]), a_content)}
        rng = numpy.random.default_rng(config.seed)
        x0 = content_picture[None].copy() if config.init == "content" else \
            rng.uniform(0.0, 1.0, size=(1, 3, H, W)).astype(numpy.float32)
        log = folder.metrics()
        frames: list[numpy.ndarray] = [x0[0].copy()]
        frame_every = max(1, config.iterations // FRAMES)
        bar = folder.progress_bar(config.iterations, "style transfer", unit="it")
        history: list[dict[str, float]] = []
        started = time.perf_counter()

        def on_step(i: int, L: float, parts: dict[str, float], x: numpy.ndarray) -> None:
            entry = {"iteration": i, "total": L, **parts, "seconds": time.perf_counter() - started}
            log.append(entry)
            history.append(entry)
            if i % frame_every == 0:
                frames.append(x[0].copy())
            if bar is not None:
                bar.update(1)
                bar.set_postfix(total=f"{L:.4g}", style=f"{parts['style']:.3g}", content=f"{parts['content']:.3g}",
                                refresh=False)

        x = optimise(loss, x0, a_content, config, on_step)
        if bar is not None:
            bar.close()
        elapsed = time.perf_counter() - started
        result = loss.parts_of(backend.asarray(x), a_content)
        frames.append(x[0])
        for name, write in (("result.png", lambda path: save_picture(x[0], path)),
                            ("frames.gif", lambda path: save_gif(frames, path)),
                            ("loss.png", lambda path: _loss_plot(history, before, path))):
            with folder.replacing(name) as path:  # never through a symbolic link, never half-written
                write(path)
        summary = {"content_image": before["content image"], "style_image": before["style image"], "result": result,
                   "style_reduction": 1 - result["style"] / before["content image"]["style"]
                   if before["content image"]["style"] > 0 else None,
                   "iterations": len(history), "seconds": elapsed,
                   "seconds_per_iteration": elapsed / max(1, len(history)),
                   "size": [H, W], "net": features.name}
        folder.write_json("summary.json", summary)
    return summary


def _loss_plot(history: list[dict[str, float]], before: dict[str, dict[str, float]], path: Path) -> None:
    from tiefnet.plot import plt, save

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    steps = [h["iteration"] for h in history]
    for ax, part in zip(axes, ("style", "content")):
        ax.plot(steps, [h[part] for h in history], label="x^")
        for name, style in (("content image", ":"), ("style image", "--")):
            ax.axhline(before[name][part], linestyle=style, color="grey", label=name)
        ax.set(xlabel="iteration", ylabel=f"L_{part}", title=f"L_{part}", yscale="symlog")
        ax.grid(alpha=0.3)
        ax.legend()
    save(fig, path)


__all__ = ["Config", "INITS", "OPTIMIZERS", "feature_net", "optimise", "run"]

"""Training the fast style transfer network N_FST (3.4, Johnson, Alahi, Fei-Fei 2016).

"Setze x_in = x_content (Foto) und verwende L_total als Kostenfunktion zum Trainieren von N_FST."
Each step draws a mini-batch of random crops x_in of the content photos (a random photo, window
size, position and horizontal flip), and then

    x^ = N_FST(x_in)                                  forward through the transformation network
    L_total = alpha L_content(x_in, x^) + beta L_style(x_style, x^) (+ tv L_TV)    (3.4)
    dL/dx^ = one backward pass through the frozen feature network (style_losses)
    dL/dtheta = N_FST.backward(dL/dx^)                backpropagation into N_FST's parameters
    theta -> Adam step

The content target is the feature network's a^l of x_in itself; the style target G_style is computed
once from the painting. The run folder: config.json, metrics.jsonl (the costs of every step),
checkpoint.npz (N_FST, Adam's m and v, the generator, the costs so far: ``--resume`` continues
bit-identically), model.npz + model.json (N_FST, for :func:`tiefnet.vision.fast_style.stylize_files`),
loss.png, samples.png (photos and their stylised pictures) and summary.json.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy
from PIL import Image

from tiefnet import backend
from tiefnet.checkpoint import read_checkpoint, load_state, write_npz
from tiefnet.data.pictures import MIN_SIDE, PHOTOS, open_rgb, photo_path, read_picture, save_picture
from tiefnet.errors import CheckpointError, ConfigError, DataError, TrainingDiverged
from tiefnet.limits import check_allocation
from tiefnet.optim import Adam
from tiefnet.runs import RunFolder
from tiefnet.settings import check_seed, is_number, is_whole, layer_sizes, setting
from tiefnet.vision.fast_style import APP, IMAGE_SUFFIXES, stylize, transform_net
from tiefnet.vision.style import feature_net
from tiefnet.vision.style_losses import PerceptualLoss

RESUMABLE_CHANGES = {"steps", "threads", "checkpoint_every", "max_minutes"}
RESUME_COMMAND = "tiefnet style-train --resume"
CHECKPOINT_FORMAT = "tiefnet-fast-style-checkpoint/1"
SAMPLES = 4  # photos shown in samples.png


@dataclass(frozen=True)
class Config:
    """Settings of one training run of N_FST; the CLI builds its options from these fields.

    N_FST is trained on L_total = alpha L_content + beta L_style (+ tv L_TV) (3.4) by Adam steps."""

    APP = APP  # the application whose run folders --resume continues (not a setting)

    style: str = setting("starry_night", "The painting: starry_night, the_scream, shipwreck or an image file.")
    images: str = setting("", "A folder of your own photos to train on (empty: scikit-image's sample photos).")
    style_size: int = setting(256, "Scale the painting's longer side to this many pixels (the size of its "
                                   "strokes as the feature network sees them).")
    photo_side: int = setting(256, "Scale each photo's shorter side to this many pixels before cropping.")
    crop: int = setting(128, "Side of the square training crops x_in (a multiple of 4).")
    jitter: float = setting(2.0, "Scale jitter: a crop's window on the photo has a side drawn log-uniformly "
                                 "from [crop, jitter x crop] pixels, resized to crop (1: no jitter).")
    batch_size: int = setting(4, "Crops per mini-batch (Johnson et al.: 4).")
    steps: int = setting(3000, "Training steps (mini-batches); about 30 min on one CPU core at the defaults.")
    eta: float = setting(1e-3, "Adam learning rate eta.")
    alpha: float = setting(1.0, "Weight alpha of L_content.")
    beta: float = setting(10.0, "Weight beta of L_style.")
    tv: float = setting(0.0, "Weight of the total-variation term (smoothness; 0: off).")
    widths: str = setting("16,32,64", "Features c1,c2,c3 of N_FST at full, half and quarter resolution "
                                      "(Johnson et al.: 32,64,128).")
    residual_blocks: int = setting(5, "Residual blocks of N_FST.")
    net: str = setting("random", "Feature network of the costs: 'random' (no download) or a VGG-19 .npz made "
                                 "by 'tiefnet style-convert' (also .pth / .safetensors ImageNet weights).")
    seed: int = setting(0, "Seed of every random choice (N_FST's initial filters, the crops).")
    threads: int = setting(1, "BLAS threads.")
    checkpoint_every: int = setting(100, "Write checkpoint.npz every this many steps (and at the end).")
    max_minutes: float = setting(0.0, "Stop after this many minutes of training and write the folder; "
                                      "--resume continues (0: no limit).")

    def __post_init__(self) -> None:
        for name, low, high in (("style_size", MIN_SIDE, 4096), ("photo_side", MIN_SIDE, 4096), ("crop", 16, 2048),
                                ("batch_size", 1, 1024), ("steps", 1, 10**9), ("residual_blocks", 0, 64),
                                ("threads", 1, 1024), ("checkpoint_every", 1, 10**9)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"{name}={value!r} must be a whole number in [{low}, {high:,}]")
        if self.crop % 4:
            raise ConfigError(f"crop={self.crop} must be a multiple of 4 (N_FST halves it twice)")
        if self.photo_side < self.crop:
            raise ConfigError(f"photo_side={self.photo_side} must be at least crop={self.crop}")
        for name, low in (("jitter", 1.0), ("eta", 1e-12), ("alpha", 0.0), ("beta", 0.0), ("tv", 0.0),
                          ("max_minutes", 0.0)):
            if not is_number(getattr(self, name), low):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be a finite number >= {low:g}")
        if len(self.transform_widths) != 3 or max(self.transform_widths) > 4096:
            raise ConfigError(f"widths={self.widths!r}: give three feature counts c1,c2,c3 of at most 4096")
        if not self.style:
            raise ConfigError("style: name a painting or an image file")
        check_seed(self.seed)

    @property
    def transform_widths(self) -> tuple[int, ...]:
        return tuple(layer_sizes(self.widths, "widths", "16,32,64"))


def content_photos(config: Config) -> list[numpy.ndarray]:
    """The training photos as (H, W, 3) uint8, each scaled so that its shorter side is photo_side."""
    if config.images:
        folder = Path(config.images)
        if not folder.is_dir():
            raise DataError(f"{folder}: not a folder of photos")
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir()
                       and not p.name.startswith("."))  # not macOS's ._photo.jpg
        if not paths:
            raise DataError(f"{folder}: holds no photos ({', '.join(IMAGE_SUFFIXES)})")
    else:
        paths = [photo_path(name) for name in PHOTOS]
    photos, total = [], 0
    for path in paths:
        rgb = open_rgb(path)  # a clear DataError for anything that is no picture, or under MIN_SIDE on a side
        width, height = rgb.size
        scale = config.photo_side / min(width, height)
        size = (max(config.photo_side, round(width * scale)), max(config.photo_side, round(height * scale)))
        total += 3 * size[0] * size[1]
        check_allocation(total, f"the photos of {config.images or 'scikit-image'} at photo_side {config.photo_side}")
        photos.append(numpy.asarray(rgb.resize(size, Image.LANCZOS), dtype=numpy.uint8))
    return photos


def crops(photos: list[numpy.ndarray], config: Config, rng: numpy.random.Generator) -> numpy.ndarray:
    """x_in: (batch_size, 3, crop, crop) float32 in [0, 1], one random photo, window side, position and
    horizontal flip per crop; every draw comes from ``rng``. These are N_FST's inputs and its content
    targets at once (3.4: "Setze x_in = x_content (Foto)")."""
    side = config.crop
    batch = numpy.empty((config.batch_size, side, side, 3), dtype=numpy.float32)
    for n in range(config.batch_size):
        photo = photos[int(rng.integers(len(photos)))]
        H, W, _ = photo.shape
        largest = min(H, W, int(config.jitter * side))
        window = int(round(side * math.exp(rng.uniform(0.0, math.log(largest / side)))))  # log-uniform
        i, j = int(rng.integers(H - window + 1)), int(rng.integers(W - window + 1))
        patch = photo[i:i + window, j:j + window]
        if window != side:
            patch = numpy.asarray(Image.fromarray(patch).resize((side, side), Image.BILINEAR, reducing_gap=None))
        batch[n] = patch[:, ::-1] if rng.random() < 0.5 else patch
    return (batch / 255.0).transpose(0, 3, 1, 2)


def perceptual_loss(config: Config) -> PerceptualLoss:
    """L_total = alpha L_content + beta L_style (+ tv L_TV) (3.4) on config.net's features, with G_style
    of the painting (its longer side style_size) rescaled to a crop's number of positions (see
    PerceptualLoss's ``size``)."""
    features = feature_net(config.net)
    style = backend.asarray(read_picture(config.style, config.style_size)[None])
    return PerceptualLoss(features, style, config.alpha, config.beta, config.tv, size=(config.crop, config.crop))


def train_step(net, loss: PerceptualLoss, optimizer: Adam, x_in) -> tuple[float, dict[str, float]]:
    """One step of the list above on the mini-batch x_in (N, 3, crop, crop); returns (L_total, parts):

        x^ = N_FST(x_in),  L_total = alpha L_content(x_in, x^) + beta L_style(x_style, x^)  (3.4),
        dL_total/dtheta by backpropagation through the frozen feature network and N_FST, one Adam step.
    """
    a_content = loss.content_target(x_in)  # the content target: a^l of x_in itself
    x_hat = net.forward(x_in, train=True)  # (N, 3, crop, crop)
    L, parts, dx_hat = loss(x_hat, a_content)  # L_total (the 1/N inside) and dL/dx^
    net.backward(dx_hat, need_input_grad=False)  # into N_FST's parameters
    optimizer.step()
    return L, parts


def run(config: Config, out: str | Path, progress: bool = True, resume: bool = False,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train N_FST as ``config`` says (with ``resume``: from ``out``'s checkpoint.npz) and write the run
    folder ``out``. Returns the summary (also summary.json)."""
    folder = RunFolder(out, app=APP, resume_command=RESUME_COMMAND, progress=progress)
    photos = content_photos(config)
    c1, c2, c3 = config.transform_widths
    check_allocation(8 * config.batch_size * config.crop**2 * (81 * (3 + c1) + 16 * c1 + 6 * c2 + 2 * c3),
                     f"training N_FST with widths {config.widths} on {config.batch_size} crops of {config.crop}")
    loss = perceptual_loss(config)
    rng = numpy.random.default_rng(config.seed)
    with folder.start(config, resume, RESUMABLE_CHANGES), backend.picture_threads(config.threads):
        net = transform_net(config.transform_widths, config.residual_blocks, rng)
        optimizer = Adam(config.eta).bind(net)
        columns = ["total", "content", "style", "tv", *(f"style:{n}" for n in loss.features.style_weights)]
        state: dict[str, Any] = {"step": 0, "seconds": 0.0, "history": numpy.zeros((0, len(columns) + 1))}
        if resume:
            state = restore(folder.path / "checkpoint.npz", net, optimizer, rng, config, columns)
        history = [list(row) for row in state["history"]]  # the costs of every step, then its seconds
        metrics = folder.metrics(entries=[_entry(i + 1, row, columns) for i, row in enumerate(history)])
        step = state["step"]
        log(f"tiefnet style-train: {config.style} -> N_FST {config.widths}, {len(photos)} photos, "
            f"{config.steps} steps of {config.batch_size} crops {config.crop}x{config.crop}"
            f"{f' (resumed after step {step})' if resume else ''} -> {folder.path}")
        started, stop = time.perf_counter() - state["seconds"], time.perf_counter() + 60 * config.max_minutes
        bar = folder.progress_bar(config.steps, "fast style", initial=step)
        try:
            while step < config.steps:
                L, parts = train_step(net, loss, optimizer, backend.asarray(crops(photos, config, rng)))
                step += 1
                if not math.isfinite(L):
                    raise TrainingDiverged(f"L_total became {L} at step {step}; try a smaller --eta")
                history.append([L, *(parts[c] for c in columns[1:]), time.perf_counter() - started])
                metrics.append(_entry(step, history[-1], columns))
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(total=f"{L:.4g}", style=f"{parts['style']:.3g}", refresh=False)
                out_of_time = config.max_minutes and time.perf_counter() > stop
                if step % config.checkpoint_every == 0 or step == config.steps or out_of_time:
                    save_checkpoint(folder.path / "checkpoint.npz", net, optimizer, rng, step, history, columns)
                if out_of_time:
                    break
        finally:
            if bar is not None:
                bar.close()
        seconds = history[-1][-1] if history else 0.0
        info = {"style": config.style, "net": loss.features.name, "widths": list(config.transform_widths),
                "residual_blocks": config.residual_blocks, "crop": config.crop, "steps": step}
        folder.save_model(net, info)
        with folder.replacing("samples.png") as path:
            save_picture(_samples(net, photos, config.photo_side), path)
        with folder.replacing("loss.png") as path:
            _plot(history, columns, path, f"{config.style}, N_FST {config.widths}")
        summary = {"steps": step, "finished": step == config.steps, "seconds": seconds,
                   "seconds_per_step": seconds / max(1, step), "images_per_second": step * config.batch_size /
                   max(seconds, 1e-9), "final": dict(zip(columns, history[-1][:-1])) if history else {},
                   "style": config.style, "net": loss.features.name, "photos": len(photos), "device": backend.DEVICE}
        folder.write_json("summary.json", summary)
    return summary


def _entry(step: int, row: list[float], columns: list[str]) -> dict[str, Any]:
    return {"step": step, **dict(zip(columns, row[:-1])), "seconds": row[-1]}


def save_checkpoint(path: Path, net, optimizer: Adam, rng: numpy.random.Generator, step: int,
                    history: list[list[float]], columns: list[str]) -> None:
    """checkpoint.npz (atomic): N_FST, Adam's state, the generator, the costs of every step so far."""
    opt_meta, opt_arrays = optimizer.state_dict()
    arrays: dict[str, Any] = {f"model.{k}": v for k, v in net.arrays().items()}
    arrays.update({f"opt.{k}": v for k, v in opt_arrays.items()})
    arrays["history"] = numpy.asarray(history, dtype=numpy.float64).reshape(step, len(columns) + 1)
    write_npz(path, arrays, {"format": CHECKPOINT_FORMAT, "step": step, "columns": columns,
                             "rng": rng.bit_generator.state, "optimizer": {"name": optimizer.name, **opt_meta}})


def restore(path: Path, net, optimizer: Adam, rng: numpy.random.Generator, config: Config,
            columns: list[str]) -> dict[str, Any]:
    """Load checkpoint.npz into N_FST, Adam and the generator; every value is checked first (the file may
    come from anyone), each problem one CheckpointError line. Returns {step, seconds, history}."""
    arrays, meta = read_checkpoint(path, CHECKPOINT_FORMAT, "fast style")
    step, opt = meta.get("step"), meta.get("optimizer")
    if not is_whole(step, 1, config.steps):
        raise CheckpointError(f"{path}: step {step!r} is not in [1, {config.steps}] (--steps)")
    if meta.get("columns") != columns:
        raise CheckpointError(f"{path}: its costs are not {', '.join(columns)}")
    if not isinstance(opt, dict) or opt.get("name") != optimizer.name or opt.get("t") != step:
        raise CheckpointError(f"{path}: its optimizer state is not Adam's after step {step}")
    expected: dict[str, Any] = {f"model.{k}": (tuple(v.shape), v.dtype) for k, v in net.arrays().items()}
    expected.update({f"opt.{k}": (tuple(v.shape), v.dtype) for k, v in optimizer.state_dict()[1].items()})
    expected["history"] = ((step, len(columns) + 1), numpy.dtype(numpy.float64))  # shapes only: nothing allocated
    missing, extra = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{path}: " + "; ".join(f"{what} arrays {', '.join(names[:5])}" for what, names in
                                                      (("missing", missing), ("unexpected", extra)) if names))
    for name, (shape, dtype) in expected.items():
        if arrays[name].shape != shape or arrays[name].dtype.kind not in "iuf":
            raise CheckpointError(f"{path}: array {name} is {arrays[name].dtype} {arrays[name].shape}, expected "
                                  f"numbers of shape {shape}")
        with numpy.errstate(over="ignore"):
            arrays[name] = arrays[name].astype(dtype)
        impossible = name == "history" or name.startswith("opt.v")  # costs, times, means of squares are >= 0
        if not numpy.isfinite(arrays[name]).all() or impossible and (arrays[name] < 0).any():
            raise CheckpointError(f"{path}: array {name} holds NaN, infinite or impossible values")
    seconds = arrays["history"][:, -1]
    if (numpy.diff(seconds) < 0).any():
        raise CheckpointError(f"{path}: the times in its history run backwards")
    try:
        rng.bit_generator.state = meta.get("rng")
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise CheckpointError(f"{path}: its random generator state does not load ({error})") from None
    load_state(net, {k[6:]: v for k, v in arrays.items() if k.startswith("model.")}, str(path))
    optimizer.load_state_dict({"eta": config.eta, "t": step},
                              {k[4:]: backend.asarray(v) for k, v in arrays.items() if k.startswith("opt.")})
    return {"step": step, "seconds": float(seconds[-1]), "history": arrays["history"]}


def _samples(net, photos: list[numpy.ndarray], side: int) -> numpy.ndarray:
    """(3, 2 side, k side): the centre squares of the first photos above their stylised pictures."""
    squares = []
    for photo in photos[:SAMPLES]:
        H, W, _ = photo.shape
        top, left = (H - side) // 2, (W - side) // 2
        squares.append(photo[top:top + side, left:left + side].transpose(2, 0, 1) / numpy.float32(255.0))
    return numpy.concatenate([numpy.concatenate(squares, axis=2),
                              numpy.concatenate([stylize(net, x) for x in squares], axis=2)], axis=1)


def _plot(history: list[list[float]], columns: list[str], path: Path, title: str) -> None:
    from tiefnet.plot import plt, save

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    steps = numpy.arange(1, len(history) + 1)
    values = numpy.asarray(history, dtype=numpy.float64).reshape(len(history), len(columns) + 1)
    for ax, part in zip(axes, ("total", "content", "style")):
        ax.plot(steps, values[:, columns.index(part)], alpha=0.3, label="per step")
        window = max(1, len(history) // 50)
        if len(history) >= window:
            ax.plot(steps[window - 1:], numpy.convolve(values[:, columns.index(part)], numpy.ones(window) / window,
                                                       mode="valid"), label=f"mean of {window}")
        ax.set(xlabel="step", ylabel=f"L_{part}", title=f"L_{part}", yscale="symlog")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    save(fig, path)


__all__ = ["Config", "RESUMABLE_CHANGES", "content_photos", "crops", "perceptual_loss", "restore", "run",
           "save_checkpoint", "train_step"]

"""Lecture 3.1 "Lokal rezeptive Felder", "Uniforme Gewichte", "Pooling": what a CNN learns.

A conv layer slides one 5 x 5 filter w^l (shared weights and bias) over the image; its output
a^l_{jx,jy} = sigma(sum_k w^l_k a^{l-1}_{j+k} + b^l) is a feature map that lights up where the
image holds the filter's feature, e.g. a slanted edge (the lecture's example filter). Pooling then
keeps the maximum of each 2 x 2 region: whether a feature is there, not exactly where.
This experiment trains Nielsen's chapter-6 network (conv 5x5x20 -> pool -> conv 5x5x40 -> pool ->
FC 100 -> softmax; ReLU, log-likelihood, eta 0.03, L2 lambda 0.1) briefly and draws the 20
learned filters of the first conv layer with the feature maps they give for one test digit.
After a short training the random start (w ~ N(0, 2/25)) still dominates each filter, so the
figure also shows w - w_start, what training wrote into the filter: strokes and edges.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy

from tiefnet import backend
from tiefnet.experiments._common import QUICK_EPOCHS, data, output_dir, percent, series, settings, write_json
from tiefnet.nn import LOSSES, Conv2d, Sequential
from tiefnet.nn.activations import Activation
from tiefnet.nn.pool import Pool2d
from tiefnet.files import replacing
from tiefnet.train import fit
from tiefnet.vision.mnist import Config, build_network, build_optimizer

DESCRIPTION = "3.1 conv features: the learned 5x5 filters of the first conv layer and the feature maps of one digit"
CONFIG = Config(model="cnn", features="20,40", hidden="100")  # the chapter-6 defaults: relu, softmax, eta 0.03
TRAIN_SIZE, EPOCHS = 10_000, 2
DIGIT = 0  # the first test image, a 7: a horizontal bar and a slanted stroke


def first_stage(net: Sequential, x: numpy.ndarray) -> tuple[Conv2d, dict[str, numpy.ndarray]]:
    """The first conv layer and, for the one image x (1, 784), its feature maps after the conv
    and its activation, (F, H_out, W_out), and after the pooling, (F, H_out/2, W_out/2)."""
    a = backend.asarray(x)
    maps: dict[str, numpy.ndarray] = {}
    conv, seen = None, set()
    for layer in net.layers:
        a = layer.forward(a)
        if isinstance(layer, Conv2d) and conv is None:
            conv, z = layer, a
        elif conv is not None and isinstance(layer, (Activation, Pool2d)):
            seen.add(Activation if isinstance(layer, Activation) else Pool2d)
            if isinstance(layer, Activation):  # the map after conv + activation, whatever the order
                maps["conv"] = backend.to_numpy(type(layer)().forward(z))[0]
            if seen == {Activation, Pool2d}:  # after both the pooling and the activation
                maps["pool"] = backend.to_numpy(a)[0]
                return conv, maps
    raise ValueError(f"{net.describe()}: no conv -> activation and pool stage")


def run(out: str | Path, epochs: int | None = None, seed: int = 0, quick: bool = False,
        progress: bool = True) -> dict[str, Any]:
    """Write conv_features.png/.json: the 20 filters, the digit's feature maps, the test accuracy."""
    out = output_dir(out)
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    train_set, _, test = data(TRAIN_SIZE, quick)
    rng = numpy.random.default_rng(seed)
    net = build_network(CONFIG, rng)
    w_start = backend.to_numpy(first_stage(net, test.x[:1])[0].params["W"])[:, 0].copy()  # (F, Q, R)
    history = fit(net, LOSSES[CONFIG.cost](), build_optimizer(CONFIG), (train_set.x, train_set.y), epochs,
                  CONFIG.batch_size, test=(test.x, test.y), rng=rng, monitor_train=False, progress=progress)
    x = test.x[DIGIT : DIGIT + 1]
    conv, maps = first_stage(net, x)
    filters = backend.to_numpy(conv.params["W"])[:, 0]  # (F, Q, R): one input channel
    bias = backend.to_numpy(conv.params["b"])
    prediction = int(backend.to_numpy(net.forward(backend.asarray(x))).argmax())
    label = int(numpy.asarray(test.y)[DIGIT])
    accuracy = series(history, "test_accuracy")
    result = {
        "settings": settings(CONFIG, model=CONFIG.model, features=CONFIG.features, kernel=CONFIG.kernel,
                             pool=CONFIG.pool, train_size=len(train_set), test_size=len(test), epochs=epochs,
                             seed=seed, quick=quick),
        "network": CONFIG.describe(),
        "test_accuracy": accuracy,
        "final_test_accuracy": accuracy[-1],
        "training_seconds": sum(e["seconds"] for e in history.epochs),
        "digit": {"test_index": DIGIT, "label": label, "prediction": prediction},
        "feature_map_shapes": {k: list(v.shape) for k, v in maps.items()},
        "filter_std": float(filters.std()),
        "filter_change_std": float((filters - w_start).std()),  # how far training moved the filters
        "filters": numpy.round(filters.astype(float), 4).tolist(),
        "biases": numpy.round(bias.astype(float), 4).tolist(),
    }
    write_json(out, "conv_features", result)
    with replacing(out / "conv_features.png") as path:
        _figure(filters, filters - w_start, maps, x.reshape(28, 28), result, path)
    print(f"{CONFIG.describe()}, {len(train_set)} images, {epochs} epochs: test accuracy "
          f"{percent(accuracy[-1])}; test digit {DIGIT} (a {label}) classified as {prediction}; "
          f"{len(filters)} filters {filters.shape[1]}x{filters.shape[2]}, feature maps "
          f"{'x'.join(map(str, maps['conv'].shape[1:]))} -> pooled {'x'.join(map(str, maps['pool'].shape[1:]))}")
    return result


def _figure(filters: numpy.ndarray, change: numpy.ndarray, maps: dict[str, numpy.ndarray], image: numpy.ndarray,
            result: dict[str, Any], path: Path) -> None:
    """The digit on the left; per feature f a column: its filter w, w - w_start, its feature map,
    the pooled map. Two blocks of columns, one above the other."""
    from tiefnet.plot import plt

    s = result["settings"]
    F, Q, R = filters.shape
    columns = (F + 1) // 2
    rows = {  # name: (pictures, colour map, symmetric, row label)
        "filter": (filters, "RdBu_r", True, f"filter w\n{Q}x{R}"),
        "change": (change, "RdBu_r", True, "w - w_start"),
        "conv": (maps["conv"], "magma", False, "conv + {}\n{}x{}".format(s["activation"], *maps["conv"].shape[1:])),
        "pool": (maps["pool"], "magma", False, "{}-pool\n{}x{}".format(s["pool"], *maps["pool"].shape[1:])),
    }
    fig = plt.figure(figsize=(3.2 + 1.0 * columns, 10.6))
    grid = fig.add_gridspec(2 * len(rows) + 1, columns + 2, width_ratios=[2.6, 0.5, *[1] * columns],
                            height_ratios=[*[1] * len(rows), 0.35, *[1] * len(rows)],
                            left=0.02, right=0.99, bottom=0.01, top=0.88, wspace=0.08, hspace=0.15)
    ax = fig.add_subplot(grid[len(rows) - 2 : len(rows) + 3, 0])
    ax.imshow(image, cmap="gray_r", vmin=0, vmax=1)
    digit = result["digit"]
    ax.set_title(f"input: test image {digit['test_index']}\n(a {digit['label']}; the net says {digit['prediction']})",
                 fontsize=10)
    ax.set_xticks([]), ax.set_yticks([])
    for f in range(F):
        block, column = divmod(f, columns)
        for r, (name, (pictures, cmap, symmetric, label)) in enumerate(rows.items()):
            picture = pictures[f]
            # filters: each on its own symmetric scale; feature maps: one scale per row (0 = black)
            high = max(float(numpy.abs(picture).max() if symmetric else pictures.max()), 1e-12)
            ax = fig.add_subplot(grid[block * (len(rows) + 1) + r, column + 2])
            ax.imshow(picture, cmap=cmap, vmin=-high if symmetric else 0, vmax=high, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(f"f = {f + 1}", fontsize=9)
            if column == 0:
                ax.set_ylabel(label, fontsize=9)
    fig.suptitle(f"3.1 the first conv layer of {result['network']}, {s['epochs']} epochs on {s['train_size']:,} "
                 f"images (test accuracy {percent(result['final_test_accuracy'])})\n"
                 f"filters: red = positive, blue = negative weight, each on its own scale; after a short training the "
                 f"random start still dominates w,\nw - w_start shows what training added (strokes and edges); "
                 f"feature maps of the digit: one brightness scale per row, black = 0", fontsize=11)
    fig.savefig(path, dpi=90)
    plt.close(fig)

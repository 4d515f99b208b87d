"""Ensembles by majority vote (Nielsen's chapter 6: five CNNs vote, 99.67% on the MNIST test set).

Each member classifies every image as the digit with its highest output (2.4); the ensemble
answers the digit that most members chose. Where two or more digits get the same number of
votes, the digit with the largest sum of the members' probabilities wins.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from tiefnet.backend import Array, xp
from tiefnet.checkpoint import read_model
from tiefnet.errors import ConfigError, TiefnetError
from tiefnet.nn import Layer, Sigmoid, Softmax
from tiefnet.train import as_data, predict

PIXELS = 784  # a 28 x 28 MNIST image as one row
CLASSES = 10


def probabilities(model: Layer, x: Array, batch_size: int = 500) -> Array:
    """The model's outputs for the rows of x as distributions, (N, K): a softmax output as it is,
    sigmoid outputs normalised to sum to 1."""
    a = predict(model, x, batch_size)
    output_layer = getattr(model, "layers", [model])[-1]
    if isinstance(output_layer, Softmax):
        return a
    return a / xp.maximum(a.sum(axis=1, keepdims=True), 1e-12)


def majority_vote(outputs: Sequence[Array]) -> Array:
    """The ensemble's labels (N,) from the members' outputs, a list of M arrays (N, K).

    Each member votes for the argmax of its row; the most votes win. Ties between digits are
    broken by the summed outputs (each row normalised to sum to 1, so sigmoid outputs count as
    probabilities too); a tie there goes to the smaller digit.
    """
    if not outputs:
        raise ConfigError("majority_vote: no members to vote")
    shapes = {tuple(a.shape) for a in outputs}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ConfigError(f"majority_vote: every member's output must be the same (N, K) shape, got {sorted(shapes)}")
    a = xp.stack([xp.asarray(o) for o in outputs])  # (M, N, K)
    K = a.shape[2]
    votes = a.argmax(axis=2)  # (M, N): each member's digit
    counts = (votes[..., None] == xp.arange(K)).sum(axis=0)  # (N, K): votes per digit
    p = a / xp.maximum(a.sum(axis=2, keepdims=True), 1e-12)
    summed = p.sum(axis=0)  # (N, K), each entry in [0, M]
    leaders = counts == counts.max(axis=1, keepdims=True)  # (N, K): the digits with the most votes
    return xp.where(leaders, summed, -1.0).argmax(axis=1)


def ties(outputs: Sequence[Array]) -> int:
    """How many rows have two or more digits sharing the most votes."""
    a = xp.stack([xp.asarray(o) for o in outputs])
    counts = (a.argmax(axis=2)[..., None] == xp.arange(a.shape[2])).sum(axis=0)
    return int(((counts == counts.max(axis=1, keepdims=True)).sum(axis=1) > 1).sum())


def check_digit_model(model: Layer, source: Any) -> None:
    """Refuse a model that does not take 28 x 28 images as rows of 784 pixels, or does not answer with
    sigmoid or softmax outputs for the 10 digits (one image is tried)."""
    n_in = getattr(model, "input_features", None)
    if n_in not in (None, PIXELS):
        raise ConfigError(f"{source}: model takes {n_in} inputs, not a 28x28 image")
    output_layer = getattr(model, "layers", [model])[-1]
    if not isinstance(output_layer, (Sigmoid, Softmax)):
        raise ConfigError(f"{source}: the model's output layer is {type(output_layer).__name__}, not the sigmoid "
                          f"or softmax of a digit classifier")
    try:
        a = predict(model, xp.zeros((1, PIXELS), dtype=xp.float32))
    except (TiefnetError, ValueError, TypeError, IndexError) as error:
        raise ConfigError(f"{source}: the model does not take a 28x28 image as 784 pixels ({error})") from None
    if tuple(a.shape) != (1, CLASSES):
        raise ConfigError(f"{source}: the model gives {tuple(a.shape)[1:] or 'no'} outputs per image, not one "
                          f"for each of the {CLASSES} digits")


def load_digit_model(folder: str | Path) -> Layer:
    """The model of a run folder of ``tiefnet mnist`` (model.npz + model.json), checked to classify digits;
    a model of another application is refused by its name."""
    model, meta = read_model(folder)
    if meta["app"] not in (None, "mnist"):
        raise ConfigError(f"{folder}: holds a model of tiefnet {meta['app']}, not an MNIST digit classifier "
                          f"(tiefnet mnist)")
    check_digit_model(model, folder)
    return model


def load_members(folders: Sequence[str | Path]) -> list[Layer]:
    """The models saved in the run folders (model.npz + model.json), checked to classify MNIST digits."""
    if not folders:
        raise ConfigError("an ensemble needs at least one model folder")
    return [load_digit_model(folder) for folder in folders]


def evaluate_ensemble(members: Sequence[Layer], data: Any, batch_size: int = 500) -> dict[str, Any]:
    """The accuracy of each member and of their majority vote on ``data`` ((x, y) or .x/.y)."""
    data = as_data(data, 10)
    outputs = [probabilities(model, data.x, batch_size) for model in members]
    for model, a in zip(members, outputs):
        if a.shape != (len(data), 10):
            raise ConfigError(f"{model.describe()[:60]}...: gives {tuple(a.shape)} outputs, not 10 per image")
    accuracy = lambda labels: float((labels == data.labels).mean())  # noqa: E731
    return {
        "images": len(data),
        "member_accuracy": [accuracy(a.argmax(axis=1)) for a in outputs],
        "vote_accuracy": accuracy(majority_vote(outputs)),
        "ties": ties(outputs),
    }

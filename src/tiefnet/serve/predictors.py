"""The models a server answers with: each loaded once, read-only afterwards, so that one instance
serves concurrent requests (an evaluation forward writes nothing onto the model).

A digit classifier (a ``tiefnet mnist`` run folder, dense or CNN) returns the ten output
probabilities and what its first hidden layer computed: the activations of a dense network's hidden
neurons, or the feature maps of a CNN's first convolution (after its pooling and activation).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tiefnet.backend import to_numpy, xp
from tiefnet.errors import TiefnetError
from tiefnet.nn.activations import Softmax

MAX_MODELS = 64  # model folders one server loads at the most
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


@dataclass(frozen=True)
class DigitPredictor:
    """One ``tiefnet mnist`` model: ``predict(x)`` for a (784,) input as ``tiefnet predict`` prepares it."""

    name: str
    model: Any
    kind: str  # "dense" or "cnn"

    @classmethod
    def load(cls, name: str, folder: str | Path) -> "DigitPredictor":
        from tiefnet.vision.ensemble import load_digit_model

        model = load_digit_model(folder)
        kind = "cnn" if any(type(layer).__name__ == "Conv2d" for layer in model.layers) else "dense"
        return cls(name, model, kind)

    def predict(self, x: np.ndarray) -> dict[str, Any]:
        """The prediction for one input (784,) in [0, 1]: digit, the ten probabilities (summing to 1,
        as in ``tiefnet predict``) and the first hidden layer's output."""
        a = xp.asarray(np.asarray(x, dtype=np.float32).reshape(1, 784))
        hidden = None
        layers = self.model.layers
        for i, layer in enumerate(layers):
            a = layer.forward(a, train=False)
            # the first hidden activation: not the output layer's (the last two layers: Dense, activation)
            if hidden is None and type(layer).__name__ in ("Sigmoid", "ReLU", "Tanh") and i < len(layers) - 2:
                hidden = to_numpy(a)[0]
        out = to_numpy(a)[0].astype(np.float64)
        p = out if isinstance(layers[-1], Softmax) else out / max(out.sum(), 1e-12)
        result = {"model": self.name, "kind": self.kind, "digit": int(np.argmax(p)),
                  "probabilities": [round(float(v), 6) for v in p]}
        if hidden is not None:
            key = "feature_maps" if hidden.ndim == 3 else "hidden"
            result[key] = np.round(hidden.astype(np.float64), 4).tolist()
        return result


def find_models(models: list[str | Path], runs: str | Path | None = None) -> dict[str, DigitPredictor]:
    """The digit models of the folders given and of the run folders directly under ``runs`` (those of
    other applications are skipped there, refused when named), by a name made of the folder's name."""
    from tiefnet.files import read_json

    folders = [Path(m) for m in models]
    if runs is not None:
        root = Path(runs)
        if not root.is_dir():
            raise TiefnetError(f"--runs {root}: not a folder")
        for sub in sorted(root.iterdir()):
            if (sub / "model.json").is_file() and not sub.is_symlink():
                try:
                    meta = read_json(sub / "model.json")
                except TiefnetError:
                    continue
                if isinstance(meta, dict) and meta.get("app") in (None, "mnist") and sub not in folders:
                    folders.append(sub)
    if len(folders) > MAX_MODELS:
        raise TiefnetError(f"{len(folders)} model folders: a server loads at most {MAX_MODELS}")
    found: dict[str, DigitPredictor] = {}
    for folder in folders:
        name = "".join(c if c in NAME_CHARS else "-" for c in folder.resolve().name) or "model"
        base, k = name, 2
        while name in found:
            name, k = f"{base}-{k}", k + 1
        found[name] = DigitPredictor.load(name, folder)
    return found

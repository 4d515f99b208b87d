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
from tiefnet.nn.activations import Softmax

@dataclass(frozen=True)
class DigitPredictor:
    """One ``tiefnet mnist`` model: ``predict(x)`` for a (784,) input as ``tiefnet predict`` prepares it."""

    name: str
    model: Any
    kind: str  # "dense" or "cnn"
    app = "mnist"  # the application whose folders this serves (not a field)

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

"""The layer contract and the containers that compose layers (lecture 2.3, 2.6).

Every layer maps ``a^{l-1} -> a^l`` in ``forward`` and, in ``backward``, maps the
upstream gradient ``dC/da^l`` back to ``dC/da^{l-1}`` while filling ``grads``.
Rows are samples (mini-batch matrix form, 2.6 last remark): the lecture's column
vectors ``z^l`` are our rows, so ``z = a_prev @ W.T + b`` is its ``z^l = w^l a^{l-1} + b^l``.
"""
from __future__ import annotations

from typing import Any, Iterator

from tiefnet.backend import Array, xp
from tiefnet.errors import ShapeError


class Layer:
    """Base class. Subclasses set ``params``/``grads`` and implement forward/backward.

    ``to_config()`` returns the JSON-able constructor arguments; ``from_config``
    rebuilds the layer, so a model's architecture can be saved beside its arrays.
    """

    params: dict[str, Array]
    grads: dict[str, Array]

    def __init__(self) -> None:
        self.params = {}
        self.grads = {}

    def forward(self, x: Array, train: bool = False) -> Array:
        raise NotImplementedError

    def backward(self, grad: Array, need_input_grad: bool = True) -> Array | None:
        """``grad`` is dC/d(output) (``delta`` where the output is a z); returns dC/d(input),
        or None when the caller needs no ``need_input_grad`` (the first layer of a network)."""
        raise NotImplementedError

    def _grad(self, name: str) -> Array:
        """The array that backward writes dC/d(params[name]) into, in place: an optimizer
        may have made it a view of one flat gradient array (optim.Group)."""
        g = self.grads.get(name)
        p = self.params[name]
        if g is None or g.shape != p.shape or g.dtype != p.dtype:
            g = self.grads[name] = xp.empty_like(p)
        return g

    def _require_cache(self, name: str) -> Array:
        value = getattr(self, name, None)
        if value is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() called without a forward(x, train=True) first"
            )
        return value

    # --- (de)serialisation -------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Layer":
        return cls(**config)

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.to_config().items())
        return f"{type(self).__name__}({args})"

    def __repr__(self) -> str:
        return self.describe()


class Sequential(Layer):
    """Layers applied in order; ``backward`` is (BP2) iterated from the output to the input.

    Shapes: x (N, n_in) -> output (N, n_out) for a stack of Dense layers.
    """

    def __init__(self, *layers: Layer) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for position, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {position} is {type(layer).__name__}, not a Layer")
        self.layers: list[Layer] = list(layers)
        # The first layer that has parameters: layers before it need no backward at all,
        # and it needs no dC/dx (saves the largest GEMM of a 784-input net).
        self._first_trainable = next((i for i, l in enumerate(self.layers) if l.params), len(self.layers))
        self._n_in = self._input_features()  # checked on every forward: computed once

    # The containers expose the parameters of their children under "index.name" keys.
    @property
    def params(self) -> dict[str, Array]:  # type: ignore[override]
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()}

    @params.setter
    def params(self, value) -> None:  # Layer.__init__ assigns {}; containers derive theirs
        pass

    @property
    def grads(self) -> dict[str, Array]:  # type: ignore[override]
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads.items()}

    @grads.setter
    def grads(self, value) -> None:
        pass

    def param_layers(self) -> Iterator[Layer]:
        """Every leaf layer that owns parameters, in order (nested containers are flattened)."""
        for layer in self.layers:
            if isinstance(layer, Sequential):
                yield from layer.param_layers()
            elif layer.params:
                yield layer

    def forward(self, x: Array, train: bool = False) -> Array:
        self._check_input(x)
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    def backward(self, grad: Array, need_input_grad: bool = True) -> Array | None:
        """(BP2) applied layer by layer: delta^l from delta^{l+1}; ``grad`` = dC/d(output)."""
        return self._backward_through(len(self.layers) - 1, grad, need_input_grad)

    def backward_from(self, loss, y: Array, need_input_grad: bool = False) -> Array | None:
        """Start backpropagation at the cost: (BP1), or delta^L = a - y where the cost
        and the output layer cancel sigma' (cross-entropy + sigmoid 2.7.1, log-likelihood + softmax 2.7.2)."""
        last = self.layers[-1]
        if loss.cancels(last):
            delta_L = loss.delta(last.output, y)  # dC/dz^L = (a^L - y)/N: skip the output activation
            return self._backward_through(len(self.layers) - 2, delta_L, need_input_grad)
        return self._backward_through(len(self.layers) - 1, loss.grad(last.output, y), need_input_grad)

    def _backward_through(self, top: int, grad: Array, need_input_grad: bool) -> Array | None:
        """Backward through layers ``top``, ``top - 1``, ..., down to the first one that matters:
        without ``need_input_grad``, layers before the first trainable one are skipped."""
        stop = 0 if need_input_grad else self._first_trainable
        for i in range(top, stop - 1, -1):
            grad = self.layers[i].backward(grad, need_input_grad or i > stop)
        return grad if need_input_grad else None

    @property
    def output(self) -> Array:
        return self.layers[-1].output

    def _check_input(self, x: Array) -> None:
        expected = self._n_in
        if expected is None:
            return
        if x.ndim != 2 or x.shape[1] != expected:
            first = self.layers[0]
            raise ShapeError(
                f"{first.describe()}: expected input of shape (N, {expected}), got {tuple(x.shape)}"
            )

    @property
    def input_features(self) -> int | None:
        """The number of input features the first Dense layer takes (None if not fixed)."""
        return self._n_in

    def _input_features(self) -> int | None:
        for layer in self.layers:
            n_in = getattr(layer, "n_in", None)
            if n_in is not None:
                return n_in
            if isinstance(layer, Sequential):
                return layer.input_features
            if layer.params:  # a trainable layer without n_in: no simple check
                return None
        return None

    def to_config(self) -> dict[str, Any]:
        return {"layers": [layer_to_config(l) for l in self.layers]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Sequential":
        return cls(*[layer_from_config(c) for c in config["layers"]])

    def describe(self) -> str:
        return "Sequential(" + ", ".join(l.describe() for l in self.layers) + ")"

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]


# --- a registry so that model.json can name layer types ---------------------------------
LAYER_TYPES: dict[str, type[Layer]] = {"Sequential": Sequential}


def register(cls: type[Layer]) -> type[Layer]:
    """Class decorator: make a layer type loadable from a saved architecture."""
    LAYER_TYPES[cls.__name__] = cls
    return cls


def layer_to_config(layer: Layer) -> dict[str, Any]:
    return {"type": type(layer).__name__, **layer.to_config()}


def layer_from_config(config: dict[str, Any]) -> Layer:
    from tiefnet.errors import CheckpointError

    if not isinstance(config, dict) or "type" not in config:
        raise CheckpointError(f"layer entry {config!r} has no 'type'")
    kind = config["type"]
    if kind not in LAYER_TYPES:
        raise CheckpointError(f"unknown layer type {kind!r} (known: {', '.join(sorted(LAYER_TYPES))})")
    args = {k: v for k, v in config.items() if k != "type"}
    try:
        return LAYER_TYPES[kind].from_config(args)
    except (TypeError, ValueError, KeyError) as error:
        raise CheckpointError(f"layer {kind}: bad settings {args}: {error}") from error

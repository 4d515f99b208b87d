"""Containers: layers made of layers (lecture 2.6, 3.4, 5.5).

- :class:`Sequential` applies its layers in order; its backward is (BP2) iterated.
- :class:`Residual` computes g(x) + x, the residual block of AlphaGo Zero's network (5.5).
- :class:`Parallel` gives one input to several heads and returns their outputs as a tuple; the
  gradients that come back from the heads add up (AlphaGo Zero's policy p and value nu, 5.4).
- :class:`Taps` reads named intermediate outputs of a Sequential feature network and takes a
  gradient at each of them in ONE backward pass (style losses at conv1_1 ... conv5_1 and the
  content loss at conv4_2, 3.4).

A container lists its parts in ``children()``; the walk of :mod:`tiefnet.nn.layer` finds their
parameters, buffers and generators there, so every part of every container trains and is saved.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from tiefnet.backend import Array
from tiefnet.errors import ConfigError, ShapeError
from tiefnet.nn import layer as tree
from tiefnet.nn.layer import Container, Layer, layer_to_config


def _check_layers(owner: str, layers: Sequence[Any]) -> list[Layer]:
    for position, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"{owner}: item {position} is {type(layer).__name__}, not a Layer")
    return list(layers)


def _zero_grads(layer: Layer) -> None:
    """dC/d(params) = 0 for a part that no gradient reached (its output does not enter the cost)."""
    for p in layer.parameters():
        if p.trainable:
            p.layer._grad(p.name)[...] = 0


class Sequential(Container):
    """Layers applied in order; ``backward`` is (BP2) iterated from the output to the input.

    For Dense layers each followed by an activation the forward is the lecture's matrix-vector
    form (2.6) "a^l = σ(w^l · a^{l−1} + b^l) =: σ(z^l), wobei hier σ komponentenweise angewendet
    wird" (σ applied element-wise), layer after layer; here one row per example of the mini-batch.
    Backward is (BP2) "δ^l = diag(σ'(z^l)) · (w^{l+1})^T · δ^{l+1}".

    Shapes: x (N, n_in) -> output (N, n_out) for a stack of Dense layers.
    """

    def __init__(self, *layers: Layer) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        self.layers: list[Layer] = _check_layers("Sequential", layers)
        self._n_in = self._input_features()  # checked on every forward: computed once
        self._first_trainable, self._first_trainable_at, self._first_trainable_len = 0, -1, -1  # see first_trainable

    def children(self) -> list[Layer]:
        return self.layers

    def forward(self, x: Array, train: bool = False) -> Array:
        self._check_input(x)
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    def backward(self, grad: Array, need_input_grad: bool = True) -> Array | None:
        """(BP2) applied layer by layer: delta^l from delta^{l+1}; ``grad`` = dC/d(output)."""
        return self._backward_through(len(self.layers) - 1, grad, need_input_grad)

    def backward_from(self, loss, *targets: Array, need_input_grad: bool = False) -> Array | None:
        """Start backpropagation at the cost: (BP1), or delta^L = a - y where the cost
        and the output layer cancel sigma' (cross-entropy + sigmoid 2.7.1, log-likelihood + softmax 2.7.2)."""
        last = self.layers[-1]
        if loss.cancels(last):
            delta_L = loss.delta(last.output, *targets)  # dC/dz^L = (a^L - y)/N: skip the output activation
            return self._backward_through(len(self.layers) - 2, delta_L, need_input_grad)
        return self._backward_through(len(self.layers) - 1, loss.grad(last.output, *targets), need_input_grad)

    def first_trainable(self) -> int:
        """The index of the first layer with trainable parameters (len(layers) if none): without
        need_input_grad, backward stops there; the layers before it need no backward at all, and
        it needs no dC/dx (saves the largest GEMM of a 784-input net)."""
        now = tree._generation  # (read directly: this runs at every backward)
        if now != self._first_trainable_at or len(self.layers) != self._first_trainable_len:  # recompute
            self._first_trainable = next((i for i, l in enumerate(self.layers) if l.has_trainable_params()),
                                         len(self.layers))
            self._first_trainable_at, self._first_trainable_len = now, len(self.layers)
        return self._first_trainable

    def _backward_through(self, top: int, grad: Array, need_input_grad: bool) -> Array | None:
        """Backward through layers ``top``, ``top - 1``, ..., down to the first one that matters."""
        stop = 0 if need_input_grad else self.first_trainable()
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
            if any(True for _ in layer.parameters()):  # a trainable layer without n_in: no simple check
                return None
        return None

    def to_config(self) -> dict[str, Any]:
        return {"layers": [layer_to_config(l) for l in self.layers]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Sequential":
        return cls(*config["layers"])

    def describe(self) -> str:
        return "Sequential(" + ", ".join(l.describe() for l in self.layers) + ")"

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]


class Residual(Container):
    """y = g(x) + x (5.5: the residual block), or g(x) + s(x) with a ``shortcut`` layer s where
    g changes the shape (a projection).

    Backward: dC/dx = g'(x)^T dy + dy: the identity path passes the gradient on unchanged.
    Shapes: g(x) and x (or s(x)) must have the same shape.
    """

    def __init__(self, body: Layer, shortcut: Layer | None = None) -> None:
        super().__init__()
        _check_layers("Residual", [body] if shortcut is None else [body, shortcut])
        self.body, self.shortcut = body, shortcut

    def children(self) -> list[Layer]:
        return [self.body] if self.shortcut is None else [self.body, self.shortcut]

    def forward(self, x: Array, train: bool = False) -> Array:
        g = self.body.forward(x, train)
        s = x if self.shortcut is None else self.shortcut.forward(x, train)
        if g.shape != s.shape:
            raise ShapeError(f"Residual: the body {self.body.describe()[:80]} gives {tuple(g.shape)}, "
                             f"the shortcut {tuple(s.shape)}: g(x) + x needs one shape (add a shortcut layer)")
        y = g + s
        if train:
            self.output = y
        return y

    def backward(self, grad: Array, need_input_grad: bool = True) -> Array | None:
        dx = self.body.backward(grad, need_input_grad)  # g'(x)^T dy
        ds = grad if self.shortcut is None else self.shortcut.backward(grad, need_input_grad)
        if not need_input_grad:
            return None
        return dx + ds  # the identity path adds dy itself

    def to_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"body": layer_to_config(self.body)}
        if self.shortcut is not None:
            config["shortcut"] = layer_to_config(self.shortcut)
        return config

    def describe(self) -> str:
        shortcut = "" if self.shortcut is None else f", shortcut={self.shortcut.describe()}"
        return f"Residual({self.body.describe()}{shortcut})"


class Parallel(Container):
    """Heads that read the same input: (y_1, ..., y_k) = (h_1(x), ..., h_k(x)).

    AlphaGo Zero's network ends in two heads on one trunk, the move probabilities p and the
    value nu (5.4): ``Sequential(trunk..., Parallel(policy_head, value_head))``.
    Backward takes one gradient per head (None for a head whose output is not in the cost) and
    returns dC/dx = sum_i h_i'(x)^T dy_i.
    """

    def __init__(self, *heads: Layer) -> None:
        super().__init__()
        if len(heads) == 1 and isinstance(heads[0], (list, tuple)):
            heads = tuple(heads[0])
        if not heads:
            raise ConfigError("Parallel needs at least one head")
        self.heads: list[Layer] = _check_layers("Parallel", heads)

    def children(self) -> list[Layer]:
        return self.heads

    def forward(self, x: Array, train: bool = False) -> tuple[Array, ...]:
        outputs = tuple(head.forward(x, train) for head in self.heads)
        if train:
            self.output = outputs
        return outputs

    def backward(self, grad: Sequence[Array | None], need_input_grad: bool = True) -> Array | None:
        if not isinstance(grad, (tuple, list)) or len(grad) != len(self.heads):
            raise ShapeError(f"Parallel: backward expects one gradient per head ({len(self.heads)}), "
                             f"got {type(grad).__name__} of length {len(grad) if hasattr(grad, '__len__') else '?'}")
        dx = None
        for head, g in zip(self.heads, grad):
            if g is None:
                _zero_grads(head)
                continue
            d = head.backward(g, need_input_grad)
            if need_input_grad:
                dx = d if dx is None else dx + d  # the heads' gradients add up at their shared input
        if need_input_grad and dx is None:
            raise ShapeError("Parallel: backward got no gradient for any head, so dC/dx is undefined")
        return dx

    def to_config(self) -> dict[str, Any]:
        return {"heads": [layer_to_config(h) for h in self.heads]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Parallel":
        return cls(*config["heads"])

    def describe(self) -> str:
        return "Parallel(" + ", ".join(h.describe() for h in self.heads) + ")"


class Taps(Container):
    """Named intermediate outputs of a Sequential feature network, and one backward pass that
    takes a gradient at each of them.

    ``taps`` maps a name to the index of the layer whose output it reads, e.g. for VGG-19
    {"conv1_1": 1, ..., "conv4_2": 22}. ``forward`` runs the network only as far as the last tap
    and returns {name: output}; ``backward({name: dC/d(output)})`` walks from the last tap down
    and adds each tap's gradient where its layer's output was read (3.4: C = sum of the style
    costs at several layers + the content cost at one, all in one pass).
    """

    def __init__(self, net: Sequential, taps: Mapping[str, int]) -> None:
        super().__init__()
        if not isinstance(net, Sequential):
            raise ConfigError(f"Taps: net is {type(net).__name__}, not a Sequential")
        if not taps:
            raise ConfigError("Taps: name at least one layer to read")
        self.net = net
        self.taps: dict[str, int] = {}
        for name, index in dict(taps).items():
            if not isinstance(name, str) or isinstance(index, bool) or not isinstance(index, int) \
                    or not 0 <= index < len(net):
                raise ConfigError(f"Taps: tap {name!r} -> {index!r} must name a layer index in [0, {len(net)})")
            self.taps[name] = index
        self._last = max(self.taps.values())
        self._names_at: dict[int, list[str]] = {}
        for name, index in self.taps.items():
            self._names_at.setdefault(index, []).append(name)

    def children(self) -> list[Layer]:
        return [self.net]

    def forward(self, x: Array, train: bool = False) -> dict[str, Array]:
        self.net._check_input(x)
        out: dict[str, Array] = {}
        for i, layer in enumerate(self.net.layers[: self._last + 1]):
            x = layer.forward(x, train)
            for name in self._names_at.get(i, ()):
                out[name] = x
        if train:
            self.output = out
        return out

    def backward(self, grad: Mapping[str, Array | None], need_input_grad: bool = True) -> Array | None:
        unknown = sorted(set(grad) - set(self.taps))
        if unknown:
            raise ShapeError(f"Taps: no tap named {', '.join(map(repr, unknown))} (taps: {', '.join(self.taps)})")
        layers = self.net.layers
        stop = 0 if need_input_grad else self.net.first_trainable()
        g = None
        for i in range(self._last, stop - 1, -1):
            for name in self._names_at.get(i, ()):
                if grad.get(name) is not None:
                    g = grad[name] if g is None else g + grad[name]  # dC/da^i: the cost's own part at this tap
            if g is None:  # nothing above this layer enters the cost
                _zero_grads(layers[i])
                continue
            g = layers[i].backward(g, need_input_grad or i > stop)
        if need_input_grad and g is None:
            raise ShapeError("Taps: backward got no gradient at any tap, so dC/dx is undefined")
        return g if need_input_grad else None

    def to_config(self) -> dict[str, Any]:
        return {"net": layer_to_config(self.net), "taps": dict(self.taps)}

    def describe(self) -> str:
        return f"Taps({', '.join(f'{k}@{v}' for k, v in self.taps.items())} of {self.net.describe()})"

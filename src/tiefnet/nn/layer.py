"""The layer contract and the one walk over a tree of layers (lecture 2.3, 2.6).

Every layer maps ``a^{l-1} -> a^l`` in ``forward`` and, in ``backward``, maps the
upstream gradient ``dC/da^l`` back to ``dC/da^{l-1}`` while filling ``grads``.
Rows are samples (mini-batch matrix form, 2.6 last remark): the lecture's column
vectors ``z^l`` are our rows, so ``z = a_prev @ W.T + b`` is its ``z^l = w^l a^{l-1} + b^l``.

A model is a tree: containers (:mod:`tiefnet.nn.containers`) list their parts in
``children()``, leaves own ``params`` (trained), ``buffers`` (saved, not trained) and
perhaps a random generator ``rng``. :meth:`Layer.walk` is the one traversal through which the
library finds all of them: the optimizer's parameters, the arrays a model file holds, the
generators a checkpoint restores, the layers a ``freeze()`` reaches. A parameter's key is the
path of child indices to its layer plus its name: ``"2.0.W"`` is ``W`` of child 0 of child 2.

Train and evaluation mode travel with each call, ``forward(x, train)``, not as a flag stored on
the model: an evaluation forward writes nothing onto any layer, so one loaded model can answer
many threads at once (see :func:`tiefnet.train.predict`).
"""
from __future__ import annotations

from typing import Any, Iterator, NamedTuple

from tiefnet.backend import Array, xp

_generation = 0  # bumped whenever a trainable flag changes: cached decisions (Sequential, optimizers) recheck


def generation() -> int:
    """A counter that changes whenever some layer's ``trainable`` flag changes."""
    return _generation


class Param(NamedTuple):
    """One parameter found by the walk: its key in the model, its layer and its name there."""

    key: str
    layer: "Layer"
    name: str

    @property
    def value(self) -> Array:
        return self.layer.params[self.name]

    @property
    def decayed(self) -> bool:
        """Whether weight decay / L1 / L2 applies (2.7.3: weights yes, biases no)."""
        return self.layer.decays(self.name)

    @property
    def trainable(self) -> bool:
        return self.layer.trainable


class Layer:
    """Base class. Subclasses set ``params``/``grads`` (and ``buffers``) and implement forward/backward.

    Attributes:
        params: trainable arrays by name ("W", "b"); backward writes dC/d(each) into ``grads``.
        buffers: arrays saved and loaded with the model but not trained (BatchNorm's running statistics).
        trainable: False freezes the layer: backward then computes dC/dx only, no weight gradient,
            and optimizers bound afterwards leave its parameters alone.
        decayed: the names of the parameters that regularisation shrinks; None (the default) means
            every parameter of two or more dimensions (weight matrices, filters; never biases or scales).
        batch_coupled: True where a training forward couples the samples of a batch (batch
            normalisation's batch statistics, a stateful layer's carried state): a step of such a
            model is not cut into parts of the mini-batch (tiefnet.parallel).

    ``to_config()`` returns the JSON-able constructor arguments; ``from_config``
    rebuilds the layer, so a model's architecture can be saved beside its arrays.
    """

    is_container = False  # containers own no arrays: their params/grads/buffers are views of their children's
    decayed: frozenset[str] | None = None
    batch_coupled = False
    _trainable = True

    def __init__(self) -> None:
        if not self.is_container:
            self.params: dict[str, Array] = {}
            self.grads: dict[str, Array] = {}
            self.buffers: dict[str, Array] = {}

    # --- the contract -------------------------------------------------------------------
    def forward(self, x: Array, train: bool = False) -> Array:
        """``train=True`` caches what backward needs (and, for dropout, draws a mask); ``train=False``
        writes nothing onto the layer. So backward always belongs to the last *training* forward,
        even after evaluation passes in between (whose inputs it never sees)."""
        raise NotImplementedError

    def backward(self, grad: Array, need_input_grad: bool = True) -> Array | None:
        """``grad`` is dC/d(output) (``delta`` where the output is a z); returns dC/d(input),
        or None when the caller needs no ``need_input_grad`` (the first layer of a network)."""
        raise NotImplementedError

    def backward_from(self, loss, *targets: Array, need_input_grad: bool = False) -> Array | None:
        """Start backpropagation at the cost: (BP1), dC/da^L = loss.grad(a^L, targets), then backward."""
        a = self._require_cache("output")
        return self.backward(loss.grad(a, *targets), need_input_grad)

    def children(self) -> list["Layer"]:
        """The layers this one is made of (none for a leaf); the walk enters them."""
        return []

    # --- the walk -----------------------------------------------------------------------
    def walk(self, prefix: str = "") -> Iterator[tuple[str, "Layer"]]:
        """(key prefix, layer) for this layer and every layer below it, parents before children."""
        yield prefix, self
        for i, child in enumerate(self.children()):
            yield from child.walk(f"{prefix}{i}.")

    def parameters(self) -> Iterator[Param]:
        """Every parameter of the tree, frozen ones included, in walk order."""
        for prefix, layer in self.walk():
            if not layer.is_container:
                for name in layer.params:
                    yield Param(prefix + name, layer, name)

    def named_buffers(self) -> Iterator[tuple[str, "Layer", str]]:
        for prefix, layer in self.walk():
            if not layer.is_container:
                for name in layer.buffers:
                    yield prefix + name, layer, name

    def arrays(self) -> dict[str, Array]:
        """Every array a model file holds: the parameters, then the buffers, by key."""
        arrays = {p.key: p.value for p in self.parameters()}
        arrays.update({key: layer.buffers[name] for key, layer, name in self.named_buffers()})
        return arrays

    def random_layers(self) -> list["Layer"]:
        """The layers with a random generator of their own (dropout), in walk order."""
        import numpy

        return [layer for _, layer in self.walk() if isinstance(getattr(layer, "rng", None), numpy.random.Generator)]

    def decays(self, name: str) -> bool:
        """Whether regularisation applies to ``params[name]`` (see ``decayed``)."""
        if self.decayed is not None:
            return name in self.decayed
        return self.params[name].ndim >= 2

    # --- freezing -----------------------------------------------------------------------
    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        global _generation
        self._trainable = bool(value)
        _generation += 1

    def freeze(self) -> "Layer":
        """Make this layer and every layer below it untrainable (backward: dC/dx only); returns self."""
        for _, layer in self.walk():
            layer.trainable = False
        return self

    def unfreeze(self) -> "Layer":
        for _, layer in self.walk():
            layer.trainable = True
        return self

    def has_trainable_params(self) -> bool:
        return any(p.trainable for p in self.parameters())

    # --- helpers for subclasses ---------------------------------------------------------
    def _grad(self, name: str) -> Array:
        """The array that backward writes dC/d(params[name]) into, in place: an optimizer
        may have made it a view of one flat gradient array (param_groups.Group)."""
        g = self.grads.get(name)
        p = self.params[name]
        if g is None or g.shape != p.shape or g.dtype != p.dtype:
            g = self.grads[name] = xp.empty_like(p)
        return g

    def _require_cache(self, name: str) -> Any:
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
    def array_count(cls, config: dict[str, Any]) -> int | None:
        """How many numbers (parameters and buffers) ``from_config(config)`` would allocate, computed
        from the settings alone: a file's architecture is checked against the memory limit and its
        arrays before it is built. None: not known (the settings are not whole numbers, or a layer type
        of your own that does not say)."""
        return None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Layer":
        """Rebuild from ``to_config()``; child layers arrive already built (see nn.registry)."""
        return cls(**config)

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.to_config().items())
        return f"{type(self).__name__}({args})"

    def __repr__(self) -> str:
        return self.describe()


class Container(Layer):
    """A layer made of other layers. It owns no arrays: ``params``, ``grads`` and ``buffers`` are
    views of its children's, keyed by path ("index.name"), built by the walk."""

    is_container = True

    @property
    def params(self) -> dict[str, Array]:  # type: ignore[override]
        return {p.key: p.value for p in self.parameters()}

    @property
    def grads(self) -> dict[str, Array]:  # type: ignore[override]
        return {p.key: p.layer.grads[p.name] for p in self.parameters() if p.name in p.layer.grads}

    @property
    def buffers(self) -> dict[str, Array]:  # type: ignore[override]
        return {key: layer.buffers[name] for key, layer, name in self.named_buffers()}

    @property
    def trainable(self) -> bool:  # type: ignore[override]
        return self.has_trainable_params()

    @trainable.setter
    def trainable(self, value: bool) -> None:
        for child in self.children():
            child.trainable = value

    def freeze(self) -> "Layer":
        self.trainable = False
        return self

    def unfreeze(self) -> "Layer":
        self.trainable = True
        return self

    def param_layers(self) -> Iterator[Layer]:
        """Every leaf layer that owns parameters, in walk order."""
        for _, layer in self.walk():
            if not layer.is_container and layer.params:
                yield layer


def whole_numbers(config: dict[str, Any], *names: str) -> list[int] | None:
    """The settings ``names`` of ``config`` as ints >= 1, or None if one is not (its constructor then
    says what is wrong): what an ``array_count`` multiplies."""
    values = [config.get(name) for name in names]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        return None
    return values


def layer_to_config(layer: Layer) -> dict[str, Any]:
    """{"type": class name, **constructor arguments}; containers nest their children's configs."""
    return {"type": type(layer).__name__, **layer.to_config()}

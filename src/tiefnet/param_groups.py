"""The parameters an optimizer updates, as flat arrays (see :class:`Group`): one vector operation
per step updates them all, and tiefnet.parallel moves them into shared memory (``relocate``).
"""
from __future__ import annotations

from typing import Any

from tiefnet.backend import Array, xp
from tiefnet.errors import ConfigError


class Group:
    """All decayed parameters (or all others) of a model in one flat array, with their gradients likewise.

    ``bind`` copies each parameter into the flat array and hands the layer a view of it, so
    one vector operation updates every parameter of the group: a step costs the same few
    array operations whatever the number of layers. Layers write their gradients in place
    into the matching views of ``g``; one that assigns a new array instead (or code that
    assigns a new parameter array) is caught by :meth:`attach` and copied in before each step.
    """

    def __init__(self, slots: list[tuple[Any, str]], decayed: bool):
        first = slots[0][0].params[slots[0][1]]
        total = sum(int(layer.params[name].size) for layer, name in slots)
        self.p = xp.empty(total, dtype=first.dtype)  # parameters, flat
        self.g = xp.zeros(total, dtype=first.dtype)  # dC/d(parameters), flat
        self.decayed = decayed  # the regulariser applies to these (2.7.3: weights, not biases)
        self.slots: list[tuple[Any, str, Array, Array]] = []  # (layer, name, param view, grad view)
        offset = 0
        for layer, name in slots:
            old = layer.params[name]
            view = self.p[offset : offset + old.size].reshape(old.shape)
            view[...] = old
            layer.params[name] = view
            grad = self.g[offset : offset + old.size].reshape(old.shape)
            if name in layer.grads and layer.grads[name].shape == old.shape:
                grad[...] = layer.grads[name]  # keep a gradient computed before bind
            layer.grads[name] = grad
            if layer.params.get(name) is not view or layer.grads.get(name) is not grad:
                raise ConfigError(f"{type(layer).__name__}.params (or .grads) does not keep the arrays assigned to "
                                  f"it: a layer built from inner layers must list them in children(), so that "
                                  f"their own parameters are trained")
            self.slots.append((layer, name, view, grad))
            offset += old.size

    @classmethod
    def of_array(cls, array: Array) -> "Group":
        """A plain array as its own group: it is updated in place, nothing is copied."""
        group = cls.__new__(cls)
        if not (hasattr(array, "dtype") and array.dtype.kind == "f"):
            raise ConfigError(f"bind: expects float arrays, got {type(array).__name__} "
                              f"{getattr(array, 'dtype', '')}")
        if not array.flags.c_contiguous:
            raise ConfigError("bind: an array to optimise must be C-contiguous (use xp.ascontiguousarray)")
        group.p, group.g, group.decayed, group.slots = array.reshape(-1), xp.zeros(array.size, dtype=array.dtype), \
            False, []
        return group

    def relocate(self, p: Array) -> None:
        """Move the parameters into ``p`` (a flat array of the same size, e.g. in shared memory,
        tiefnet.parallel), copying their values and re-pointing every layer's view."""
        self.attach()  # a parameter array a layer replaced since bind is copied in first
        p[...] = self.p
        self.p = p
        self._repoint(p, 2, "params")

    def relocate_grads(self, g: Array) -> None:
        """Let the layers write their gradients into ``g`` (a flat array of the same size) from now on."""
        g[...] = self.g
        self.g = g
        self._repoint(g, 3, "grads")

    def _repoint(self, flat: Array, index: int, where: str) -> None:
        offset = 0
        for k, slot in enumerate(self.slots):
            layer, name = slot[0], slot[1]
            view = flat[offset : offset + slot[index].size].reshape(slot[index].shape)
            getattr(layer, where)[name] = view
            self.slots[k] = (*slot[:index], view, *slot[index + 1:])
            offset += view.size

    def attach(self) -> None:
        """Copy in any parameter or gradient array a layer replaced since bind, and re-point it."""
        for layer, name, view, grad in self.slots:
            if layer.grads[name] is not grad:
                grad[...] = layer.grads[name]
                layer.grads[name] = grad
            if layer.params[name] is not view:
                view[...] = layer.params[name]
                layer.params[name] = view

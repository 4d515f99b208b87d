"""Gradient descent steps (2.5) and learning-rate schedules (2.7.3 "Wahl der Lernrate").

An optimizer owns its state (velocities, moments); layers never hold an optimizer.
``bind(model, n)`` tells it which arrays to update — every trainable parameter the model's walk
finds — and the training-set size n that the regularisation term lambda/n needs; ``bind(array)``
(or a list of arrays) optimises plain arrays instead, e.g. the pixels of an image (3.4).
Gradients arrive already averaged over the mini-batch (the loss holds the 1/m), so a step is
v -> v - eta * grad.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Sequence

import numpy

from tiefnet import backend
from tiefnet.backend import Array, xp
from tiefnet.errors import CheckpointError, ConfigError
from tiefnet.nn import layer as tree
from tiefnet.nn.layer import Layer
from tiefnet.nn.regularizers import Regularizer
from tiefnet.param_groups import Group


def _hidden_layers(model: Layer) -> None:
    """A clear error for a layer that keeps a parameterised layer in an attribute (or a list, tuple or
    dict of them) that no children() anywhere in the tree lists: the walk would not find its
    parameters, and they would silently never train. (A reference to a layer that is in the tree
    elsewhere, e.g. tied weights, is fine.)"""
    in_tree = {id(layer) for _, layer in model.walk()}
    for _, layer in model.walk():
        for attribute, value in vars(layer).items():
            values = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) \
                else [value]
            for item in values:
                if isinstance(item, Layer) and id(item) not in in_tree and any(True for _ in item.parameters()):
                    raise ConfigError(f"{type(layer).__name__}.{attribute} holds {type(item).__name__} but "
                                      f"{type(layer).__name__}.children() does not list it: its parameters would "
                                      f"never be trained or saved")


def clip_gradients(model_or_layers: Layer | Iterable[Layer], max_norm: float) -> float:
    """Global-norm clipping: if ||g|| = sqrt(sum of all squared grads) > max_norm, scale every
    gradient by max_norm / ||g|| in place (against exploding gradients in BPTT, 4.2). The
    gradients are those of the trainable parameters the walk finds. Returns ||g|| before clipping."""
    if not max_norm > 0:
        raise ConfigError(f"clip_gradients: max_norm={max_norm} must be positive")
    layers = [model_or_layers] if isinstance(model_or_layers, Layer) else list(model_or_layers)
    grads = [p.layer.grads[p.name] for layer in layers for p in layer.parameters()
             if p.trainable and p.name in p.layer.grads]
    norm = float(sum(float((g * g).sum()) for g in grads)) ** 0.5
    if norm > max_norm:
        scale = max_norm / norm
        for g in grads:
            g *= scale  # in place: the arrays may be views of an optimizer's flat gradient
    return norm


class Optimizer:
    name = ""

    def __init__(self, eta: float, regularizer: Regularizer | None = None):
        if not (isinstance(eta, numbers.Real) and not isinstance(eta, bool) and math.isfinite(eta) and eta > 0):
            raise ConfigError(f"{type(self).__name__}: eta={eta} must be a positive number")
        self.eta = float(eta)
        self.regularizer = regularizer
        self.n = 1
        self.groups: list[Group] = []
        self._flags: list[tuple[Layer, bool]] = []  # the bound model's parameter layers and their trainable flags
        self._generation = -1  # tree.generation() when the flags were last found unchanged
        self._plain = False  # bound to plain arrays: every step brings their gradients

    def bind(self, target: Layer | Array | Sequence[Array], n: int = 1) -> "Optimizer":
        """Update the trainable parameters of ``target``, a model; n = number of training samples.

        The parameters move into flat arrays (see :class:`Group`): after ``bind``, set a
        parameter's values in place (``p[...] = values``), not by assigning a new array.
        Frozen layers (``trainable`` False) are left out; bind again after changing a flag.

        ``target`` may also be a plain array or a list of them (not decayed): they are updated in
        place by each ``step(grads)``.
        """
        self.groups = []
        if isinstance(target, Layer):
            _hidden_layers(target)
            params = [p for p in target.parameters() if p.trainable]
            seen: set[int] = set()
            for p in params:
                if id(p.value) in seen:
                    raise ConfigError(f"bind: the array of {p.key} appears twice in the model (a layer "
                                      f"shared by two parents, or params derived from a child's)")
                seen.add(id(p.value))
            for decayed in (True, False):
                slots = [(p.layer, p.name) for p in params if p.decayed == decayed]
                if slots:
                    self.groups.append(Group(slots, decayed))
            owners = {id(p.layer): p.layer for p in target.parameters()}
            self._flags = [(layer, layer.trainable) for layer in owners.values()]
            self._plain = False
        else:
            arrays = [target] if hasattr(target, "shape") else list(target)
            self.groups = [Group.of_array(a) for a in arrays]
            self._flags, self._plain = [], True
        self._generation = tree.generation()
        self.n = int(n)
        self._init_state()
        return self

    def step(self, grads: Sequence[Array] | Array | None = None) -> None:
        """One update of every bound array; ``grads`` gives the gradients of plain arrays (bind(arrays))."""
        if grads is not None or self._plain or self._generation != tree._generation:  # a flag changed somewhere
            self._check_bound(grads)
        self._update()

    def _update(self) -> None:
        raise NotImplementedError

    def _check_bound(self, grads: Sequence[Array] | Array | None) -> None:
        """Before a step: the bound model's trainable flags are those of bind (some flag somewhere has
        changed), and plain arrays come with their gradients."""
        if self._generation != tree.generation():
            if any(layer.trainable != flag for layer, flag in self._flags):
                raise ConfigError(f"{type(self).__name__}: a layer of the bound model was frozen or unfrozen "
                                  f"after bind(); call bind(model) again so that the step updates its "
                                  f"trainable parameters")
            self._generation = tree.generation()  # another model's flag changed: nothing to do
        if self._plain and grads is None:
            raise ConfigError(f"{type(self).__name__}.step(grads): an optimizer bound to plain arrays needs "
                              f"their gradients at every step")
        if grads is not None:
            if not self._plain:
                raise ConfigError(f"{type(self).__name__}.step: gradients are given for plain arrays only; "
                                  f"a model's layers write theirs in backward")
            grads = [grads] if hasattr(grads, "shape") else list(grads)
            if len(grads) != len(self.groups):
                raise ConfigError(f"step: {len(grads)} gradients for {len(self.groups)} bound arrays")
            for group, g in zip(self.groups, grads):
                if g.size != group.g.size:
                    raise ConfigError(f"step: a gradient of {g.size} entries for an array of {group.g.size}")
                group.g[...] = g.reshape(-1)

    def _init_state(self) -> None:
        pass

    def _reg_grad(self, group: Group) -> Array:
        reg = self.regularizer
        if group.decayed and reg is not None and reg.lmbda:
            return group.g + reg.grad(group.p, self.n)
        return group.g

    # state for checkpoints: plain arrays and numbers only
    def state_dict(self) -> tuple[dict[str, Any], dict[str, Array]]:
        return {"eta": self.eta}, {}

    def load_state_dict(self, meta: dict[str, Any], arrays: dict[str, Array]) -> None:
        """Restore what :meth:`state_dict` saved; a saved state may be crafted: a missing entry, an
        array of the wrong shape or with NaN, or a step size that is not a positive number is a
        CheckpointError (no broadcasting into the state)."""
        eta = meta.get("eta") if isinstance(meta, dict) else None
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not (math.isfinite(eta) and eta > 0):
            raise CheckpointError(f"optimizer state: eta={eta!r} is not a positive number")
        self.eta = float(eta)

    @staticmethod
    def _restore(target: Array, arrays: dict[str, Array], key: str) -> None:
        """target[...] = arrays[key], checked first (present, same shape, finite)."""
        if key not in arrays:
            raise CheckpointError(f"optimizer state: array {key} is missing")
        saved = arrays[key]
        if tuple(saved.shape) != tuple(target.shape):
            raise CheckpointError(f"optimizer state: array {key} has shape {tuple(saved.shape)}, "
                                  f"the model needs {tuple(target.shape)}")
        if not (numpy.issubdtype(saved.dtype, numpy.number) and numpy.all(numpy.isfinite(backend.to_numpy(saved)))):
            raise CheckpointError(f"optimizer state: array {key} holds values that are not finite numbers")
        target[...] = saved


class SGD(Optimizer):
    """w -> w - eta dC/dw (2.5); with L2 the lecture's form w -> (1 - eta lambda/n) w - eta dC_0/dw."""

    name = "sgd"

    def _update(self) -> None:
        eta, reg = self.eta, self.regularizer
        for group in self.groups:
            group.attach()
            if group.decayed and reg is not None and reg.lmbda:
                reg.shrink(group.p, eta, self.n)  # L2: w -> (1 - eta lambda/n) w; L1: w - (eta lambda/n) sgn(w)
            group.p -= eta * group.g  # ... - eta dC_0/dw


class Momentum(Optimizer):
    """v -> mu v - eta grad; w -> w + v (heavy-ball momentum)."""

    name = "momentum"

    def __init__(self, eta: float, mu: float = 0.9, regularizer: Regularizer | None = None):
        super().__init__(eta, regularizer)
        if not 0.0 <= mu < 1.0:
            raise ConfigError(f"Momentum: mu={mu} must be in [0, 1)")
        self.mu = float(mu)

    def _init_state(self) -> None:
        self.velocity = [xp.zeros_like(group.p) for group in self.groups]

    def _update(self) -> None:
        for group, v in zip(self.groups, self.velocity):
            group.attach()
            v *= self.mu
            v -= self.eta * self._reg_grad(group)
            group.p += v

    def state_dict(self):
        return {"eta": self.eta}, {f"v{i}": v for i, v in enumerate(self.velocity)}

    def load_state_dict(self, meta, arrays) -> None:
        super().load_state_dict(meta, arrays)
        for i, v in enumerate(self.velocity):
            self._restore(v, arrays, f"v{i}")


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), named in 2.5 as an improved alternative to SGD:
    m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; w -> w - eta m_hat / (sqrt(v_hat) + eps_hat),
    in the paper's "efficient" order: the bias corrections are folded into the step size, so
    eps acts as eps_hat = eps sqrt(1 - b2^t) (as in PyTorch's Adam up to that rescaling)."""

    name = "adam"

    def __init__(self, eta: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 regularizer: Regularizer | None = None):
        super().__init__(eta, regularizer)
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ConfigError(f"Adam: beta1={beta1}, beta2={beta2} must be in [0, 1)")
        if not eps > 0:
            raise ConfigError(f"Adam: eps={eps} must be positive")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def _init_state(self) -> None:
        self.t = 0
        self.m = [xp.zeros_like(group.p) for group in self.groups]
        self.v = [xp.zeros_like(group.p) for group in self.groups]
        self._buffers: dict[int, tuple[Array, Array]] = {}

    def _scratch(self, group: Group) -> tuple[Array, Array]:
        """Two work arrays like group.p, kept from step to step."""
        buffers = self._buffers.get(id(group))
        if buffers is None or buffers[0].shape != group.p.shape or buffers[0].dtype != group.p.dtype:
            buffers = self._buffers[id(group)] = (xp.empty_like(group.p), xp.empty_like(group.p))
        return buffers

    def _update(self) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        step_size = self.eta * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)  # bias corrections
        for group, m, v in zip(self.groups, self.m, self.v):
            group.attach()
            g = self._reg_grad(group)
            s1, s2 = self._scratch(group)  # the steps in place: no temporary arrays
            m *= b1
            xp.multiply(g, 1 - b1, out=s1)
            m += s1  # m = b1 m + (1 - b1) g
            v *= b2
            xp.multiply(g, g, out=s1)
            s1 *= 1 - b2
            v += s1  # v = b2 v + (1 - b2) g^2
            xp.sqrt(v, out=s1)
            s1 += self.eps
            xp.multiply(m, step_size, out=s2)
            s2 /= s1
            group.p -= s2  # p -= step_size m / (sqrt(v) + eps)

    def state_dict(self):
        arrays = {f"m{i}": m for i, m in enumerate(self.m)}
        arrays.update({f"v{i}": v for i, v in enumerate(self.v)})
        return {"eta": self.eta, "t": self.t}, arrays

    def load_state_dict(self, meta, arrays) -> None:
        super().load_state_dict(meta, arrays)
        t = meta.get("t")
        if isinstance(t, bool) or not isinstance(t, int) or t < 0:
            raise CheckpointError(f"optimizer state: Adam's step count t={t!r} is not a whole number >= 0")
        self.t = t
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            self._restore(m, arrays, f"m{i}")
            self._restore(v, arrays, f"v{i}")


class RMSProp(Optimizer):
    """RMSProp (Tieleman & Hinton 2012), the optimizer of Mnih et al. 2015 (5.3):
    v = alpha v + (1 - alpha) g^2; w -> w - eta g / (sqrt(v) + eps).

    As in torch.optim.RMSprop (centered=False, momentum=0), eps is added outside the square
    root and v starts at 0 (no bias correction)."""

    name = "rmsprop"

    def __init__(self, eta: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 regularizer: Regularizer | None = None):
        super().__init__(eta, regularizer)
        if not 0.0 <= alpha < 1.0:
            raise ConfigError(f"RMSProp: alpha={alpha} must be in [0, 1)")
        if not eps > 0:
            raise ConfigError(f"RMSProp: eps={eps} must be positive")
        self.alpha, self.eps = float(alpha), float(eps)

    def _init_state(self) -> None:
        self.v = [xp.zeros_like(group.p) for group in self.groups]

    def _update(self) -> None:
        for group, v in zip(self.groups, self.v):
            group.attach()
            g = self._reg_grad(group)
            v *= self.alpha
            v += (1 - self.alpha) * (g * g)  # running mean of g^2
            group.p -= self.eta * g / (xp.sqrt(v) + self.eps)

    def state_dict(self):
        return {"eta": self.eta}, {f"v{i}": v for i, v in enumerate(self.v)}

    def load_state_dict(self, meta, arrays) -> None:
        super().load_state_dict(meta, arrays)
        for i, v in enumerate(self.v):
            self._restore(v, arrays, f"v{i}")


OPTIMIZERS = {cls.name: cls for cls in (SGD, Momentum, Adam)}


class ReduceOnPlateau:
    """Divide eta by ``factor`` when validation accuracy has not improved for ``patience`` epochs
    (2.7.3: "Oft ist es sinnvoll, die Lernrate im Verlauf des Trainings zu reduzieren")."""

    def __init__(self, patience: int = 5, factor: float = 2.0, min_eta: float = 0.0):
        if patience < 1 or factor <= 1.0:
            raise ConfigError(f"ReduceOnPlateau: patience={patience} must be >= 1 and factor={factor} > 1")
        self.patience, self.factor, self.min_eta = int(patience), float(factor), float(min_eta)
        self.best = -math.inf
        self.bad_epochs = 0

    def update(self, optimizer: Optimizer, accuracy: float) -> bool:
        """Call once per epoch; returns True when it lowered eta."""
        if accuracy > self.best:
            self.best, self.bad_epochs = accuracy, 0
            return False
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience:
            optimizer.eta = max(optimizer.eta / self.factor, self.min_eta)
            self.bad_epochs = 0
            return True
        return False

    def state(self) -> dict[str, float]:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state(self, state: dict[str, float]) -> None:
        self.best, self.bad_epochs = float(state["best"]), int(state["bad_epochs"])

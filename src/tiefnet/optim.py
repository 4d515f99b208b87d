"""Gradient descent steps (2.5) and learning-rate schedules (2.7.3 "Wahl der Lernrate").

An optimizer owns its state (velocities, moments); layers never hold an optimizer.
``bind(model, n)`` tells it which arrays to update and the training-set size n that the
regularisation term lambda/n needs. Gradients arrive already averaged over the mini-batch
(the loss holds the 1/m), so a step is v -> v - eta * grad.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

from tiefnet.backend import Array, xp
from tiefnet.errors import ConfigError
from tiefnet.nn.regularizers import Regularizer


def is_weight(name: str) -> bool:
    return name.startswith("W")  # weights are regularised, biases are not (2.7.3)


class Group:
    """All weights (or all biases) of a model in one flat array, with their gradients likewise.

    ``bind`` copies each parameter into the flat array and hands the layer a view of it, so
    one vector operation updates every parameter of the group: a step costs the same few
    array operations whatever the number of layers. Layers write their gradients in place
    into the matching views of ``g``; one that assigns a new array instead (or code that
    assigns a new parameter array) is caught by :meth:`attach` and copied in before each step.
    """

    def __init__(self, slots: list[tuple[Any, str]], is_weight: bool):
        first = slots[0][0].params[slots[0][1]]
        total = sum(int(layer.params[name].size) for layer, name in slots)
        self.p = xp.empty(total, dtype=first.dtype)  # parameters, flat
        self.g = xp.zeros(total, dtype=first.dtype)  # dC/d(parameters), flat
        self.is_weight = is_weight
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
            self.slots.append((layer, name, view, grad))
            offset += old.size

    def attach(self) -> None:
        """Copy in any parameter or gradient array a layer replaced since bind, and re-point it."""
        for layer, name, view, grad in self.slots:
            if layer.grads[name] is not grad:
                grad[...] = layer.grads[name]
                layer.grads[name] = grad
            if layer.params[name] is not view:
                view[...] = layer.params[name]
                layer.params[name] = view


class Optimizer:
    name = ""

    def __init__(self, eta: float, regularizer: Regularizer | None = None):
        if not (isinstance(eta, numbers.Real) and not isinstance(eta, bool) and math.isfinite(eta) and eta > 0):
            raise ConfigError(f"{type(self).__name__}: eta={eta} must be a positive number")
        self.eta = float(eta)
        self.regularizer = regularizer
        self.n = 1
        self.groups: list[Group] = []

    def bind(self, model, n: int) -> "Optimizer":
        """Update the parameters of ``model``'s leaf layers; n = number of training samples.

        The parameters move into flat arrays (see :class:`Group`): after ``bind``, set a
        parameter's values in place (``p[...] = values``), not by assigning a new array.
        """
        layers = list(model.param_layers()) if hasattr(model, "param_layers") else [model]
        self.groups = []
        for weights in (True, False):
            slots = [(layer, name) for layer in layers for name in layer.params if is_weight(name) == weights]
            if slots:
                self.groups.append(Group(slots, weights))
        self.n = int(n)
        self._init_state()
        return self

    def _init_state(self) -> None:
        pass

    def _reg_grad(self, group: Group) -> Array:
        reg = self.regularizer
        if group.is_weight and reg is not None and reg.lmbda:
            return group.g + reg.grad(group.p, self.n)
        return group.g

    def step(self) -> None:
        raise NotImplementedError

    # state for checkpoints: plain arrays and numbers only
    def state_dict(self) -> tuple[dict[str, Any], dict[str, Array]]:
        return {"eta": self.eta}, {}

    def load_state_dict(self, meta: dict[str, Any], arrays: dict[str, Array]) -> None:
        self.eta = float(meta["eta"])


class SGD(Optimizer):
    """w -> w - eta dC/dw (2.5); with L2 the lecture's form w -> (1 - eta lambda/n) w - eta dC_0/dw."""

    name = "sgd"

    def step(self) -> None:
        eta, reg = self.eta, self.regularizer
        for group in self.groups:
            group.attach()
            if group.is_weight and reg is not None and reg.lmbda:
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

    def step(self) -> None:
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
            v[...] = arrays[f"v{i}"]


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

    def step(self) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        step_size = self.eta * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)  # bias corrections
        for group, m, v in zip(self.groups, self.m, self.v):
            group.attach()
            g = self._reg_grad(group)
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            group.p -= step_size * m / (xp.sqrt(v) + self.eps)

    def state_dict(self):
        arrays = {f"m{i}": m for i, m in enumerate(self.m)}
        arrays.update({f"v{i}": v for i, v in enumerate(self.v)})
        return {"eta": self.eta, "t": self.t}, arrays

    def load_state_dict(self, meta, arrays) -> None:
        super().load_state_dict(meta, arrays)
        self.t = int(meta["t"])
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            m[...] = arrays[f"m{i}"]
            v[...] = arrays[f"v{i}"]


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

    def step(self) -> None:
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
            v[...] = arrays[f"v{i}"]


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

"""Deep Q-learning with experience replay and a target network (5.3; Mnih et al., Nature 2015).

The algorithm of the lecture, in its order:

    initialise the Q-network Q(., .; theta) with random weights, set theta^- = theta
    for episode = 1, ..., M:
        phi_1 = phi(s_1)
        for t = 1, ..., T:
            with probability epsilon a random action a_t, else a_t = argmax_a Q(phi_t, a; theta)
            execute a_t, observe r_t and x_{t+1}; phi_{t+1} = phi(s_{t+1})
            store (phi_t, a_t, r_t, phi_{t+1}) in the replay memory D
            sample a mini-batch (phi_j, a_j, r_j, phi_{j+1}) from D
            y_j = r_j if the episode ends at step j + 1, else r_j + gamma max_a' Q(phi_{j+1}, a'; theta^-)
            gradient descent step on (y_j - Q(phi_j, a_j; theta))^2, the error term clipped to [-1, 1]
            every C steps theta^- = theta

This module holds the settings (:class:`DQNConfig`) and the pieces: the Q-network, epsilon,
:func:`select_action`, :func:`td_targets`, :func:`train_step`, the target network's refresh.
:mod:`tiefnet.rl.dqn_run` puts them together into the training loop and the run folder.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy

from tiefnet import backend
from tiefnet.backend import Array, xp
from tiefnet.errors import ConfigError
from tiefnet.checkpoint import copy_state
from tiefnet.nn import Dense, Layer, ReLU, Sequential, layer_from_config, layer_to_config
from tiefnet.nn.losses import TDError
from tiefnet.optim import Adam, Optimizer, RMSProp
from tiefnet.train import train_step as gradient_step
from tiefnet.rl.replay import Transitions
from tiefnet.settings import check_seed, check_types, layer_sizes, setting

OPTIMIZERS = {"adam": Adam, "rmsprop": RMSProp}


@dataclass(frozen=True)
class DQNConfig:
    """Settings of one DQN run; the CLI builds its options from these fields. The defaults solve
    CartPole-v1; the lecture's Atari values are noted where they differ."""

    env: str = setting("CartPole-v1", "Gymnasium environment id (ALE/... for Atari: frames, the Nature CNN).")
    steps: int = setting(100_000, "Environment steps t to train for (all episodes together).")
    hidden: str = setting("128,128", "Hidden ReLU layers of the MLP Q-network for vector observations.")
    memory: int = setting(50_000, "Replay memory capacity N (Atari: 10^6).")
    batch_size: int = setting(128, "Mini-batch size of each gradient step (Atari: 32).")
    gamma: float = setting(0.99, "Discount factor gamma of the targets y_j.")
    optimizer: str = setting("adam", "adam or rmsprop (Mnih et al. 2015).")
    eta: float = setting(1e-3, "Learning rate eta (Mnih et al.: 2.5e-4 with their RMSProp, whose alpha 0.95 and "
                         "eps 0.01 differ from this rmsprop's 0.99 and 1e-8).")
    target_every: int = setting(500, "C: copy theta to the target network theta^- every C environment steps "
                                "(Mnih et al. count 10^4 gradient steps: 4*10^4 environment steps with "
                                "train_every 4).")
    epsilon_start: float = setting(1.0, "epsilon at the first step (1: play at random).")
    epsilon_end: float = setting(0.05, "epsilon after the annealing (the lecture: 0.1).")
    epsilon_steps: int = setting(10_000, "Steps over which epsilon falls linearly from start to end (Atari: 10^6).")
    learning_starts: int = setting(1_000, "Environment steps of play before the first gradient step.")
    train_every: int = setting(1, "One gradient step every this many environment steps (Atari: 4).")
    error_clip: float = setting(1.0, "Clip the error term Q - y to [-error_clip, error_clip] (Huber loss); "
                                "0 for the plain squared error.")
    check_every: int = setting(2_500, "Every this many steps play check_episodes greedy episodes; the network with "
                               "the best mean so far is kept (model.npz) and evaluated at the end. 0: keep the "
                               "final network.")
    check_episodes: int = setting(20, "Greedy episodes of each check (see check_every).")
    eval_episodes: int = setting(100, "Greedy episodes of the final evaluation (eval_mean_return).")
    checkpoint_every: int = setting(10_000, "Write the resumable checkpoint every this many steps (and at the end).")
    log_every: int = setting(1_000, "Write the mean loss to metrics.jsonl every this many steps.")
    seed: int = setting(0, "Seed of every random choice (weights, epsilon-greedy, mini-batches, episodes).")
    threads: int = setting(1, "CPU threads for the layers.")

    def __post_init__(self) -> None:
        check_types(self)
        check_seed(self.seed)
        for name, low in (("steps", 1), ("memory", 1), ("batch_size", 1), ("target_every", 1), ("epsilon_steps", 1),
                          ("learning_starts", 0), ("train_every", 1), ("check_every", 0), ("check_episodes", 1),
                          ("eval_episodes", 0),
                          ("checkpoint_every", 1), ("log_every", 1), ("threads", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name}={value!r} must be an integer of at least {low}")
        if self.batch_size > self.memory:
            raise ConfigError(f"batch_size={self.batch_size} is larger than the replay memory (memory={self.memory}): "
                              f"no mini-batch could be drawn")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer={self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if not (math.isfinite(self.eta) and self.eta > 0):
            raise ConfigError(f"eta={self.eta} must be a positive number")
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"gamma={self.gamma} must be in [0, 1]")
        for name in ("epsilon_start", "epsilon_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name}={getattr(self, name)} must be in [0, 1]")
        if not (math.isfinite(self.error_clip) and self.error_clip >= 0):
            raise ConfigError(f"error_clip={self.error_clip} must be a number >= 0")
        hidden_sizes(self.hidden)
        if not self.env:
            raise ConfigError("env must name a gymnasium environment, e.g. CartPole-v1")


def hidden_sizes(hidden: str) -> list[int]:
    """'128,128' -> [128, 128]; '' -> [] (a linear Q-function); the parser of mnist's --hidden."""
    return layer_sizes(hidden, "hidden", "128,128")


# --- the Q-network Q(phi, .; theta) and the target network theta^- -------------------------
def mlp_q_network(n_obs: int, n_actions: int, hidden: list[int], rng: numpy.random.Generator) -> Sequential:
    """Q(phi, .; theta) for vector observations: Dense -> ReLU per hidden layer -> Dense(n_actions),
    one output per action, so that one feedforward pass gives every Q(phi, a; theta): the lecture's
    "approximiere Q*(s, a) ≈ Q(s, a, ϑ)" with ϑ the weights of a Q-network (5.3). He init, biases 0."""
    sizes = [n_obs, *hidden]
    layers: list[Layer] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [Dense(n_in, n_out, init="he", rng=rng), ReLU()]
    layers.append(Dense(sizes[-1], n_actions, init="scaled", rng=rng))
    model = Sequential(*layers)
    for layer in model.param_layers():
        layer.params["b"][...] = 0
    return model


def clone(model: Layer) -> Layer:
    """A second model of the same architecture with copied (never shared) parameters: theta^- = theta."""
    twin = layer_from_config(layer_to_config(model))
    sync_target(twin, model)
    return twin


def sync_target(target_net: Layer, q_net: Layer) -> None:
    """theta^- = theta, copied into the target network's own arrays (buffers too)."""
    copy_state(target_net, q_net)


# --- acting: epsilon-greedy ------------------------------------------------------------------
def epsilon_at(step: int, config: DQNConfig) -> float:
    """epsilon falls linearly from epsilon_start to epsilon_end over epsilon_steps, then stays."""
    fraction = min(step / config.epsilon_steps, 1.0)
    return config.epsilon_start + fraction * (config.epsilon_end - config.epsilon_start)


def as_input(obs: numpy.ndarray) -> Array:
    """Observations as network input on the device: floats; uint8 frames scaled to [0, 1]."""
    x = backend.asarray(obs)
    if obs.dtype == numpy.uint8:
        x *= 1.0 / 255
    return x


def greedy_action(q_net: Layer, obs: numpy.ndarray) -> int:
    """a = argmax_a Q(phi, a; theta) for one observation phi."""
    Q = q_net.forward(as_input(obs[None]))  # (1, A)
    return int(Q[0].argmax())


def select_action(q_net: Layer, obs: numpy.ndarray, epsilon: float, n_actions: int,
                  rng: numpy.random.Generator) -> int:
    """epsilon-greedy (5.3): with probability epsilon a random action, else a_t = argmax_a Q(phi_t, a; theta)."""
    if rng.random() < epsilon:
        return int(rng.integers(n_actions))
    return greedy_action(q_net, obs)


# --- learning: targets y_j and the gradient step ----------------------------------------------
def td_targets(target_net: Layer, batch: Transitions, gamma: float) -> Array:
    """y_j = r_j if the episode ended at j + 1, else r_j + gamma max_a' Q(phi_{j+1}, a'; theta^-). (B,)"""
    Q_next = target_net.forward(as_input(batch.next_obs))  # (B, A), the frozen parameters theta^-
    r = backend.asarray(batch.reward)  # (B,)
    not_terminal = 1 - backend.asarray(batch.terminated)  # a time-limit truncation still bootstraps
    return r + gamma * not_terminal * Q_next.max(axis=1)


def train_step(q_net: Layer, target_net: Layer, loss: TDError, optimizer: Optimizer, batch: Transitions,
               gamma: float) -> float:
    """One gradient-descent step on the mini-batch's (y_j - Q(phi_j, a_j; theta))^2 (clipped); returns the cost."""
    y = td_targets(target_net, batch, gamma)  # (B,), no gradient flows into theta^-
    actions = xp.asarray(batch.action)
    Q = gradient_step(q_net, loss, optimizer, as_input(batch.obs), actions, y)  # (B, A); (BP1)-(BP4) from dC/dQ
    return loss.cost(Q, actions, y)


def make_loss(config: DQNConfig) -> TDError:
    return TDError(config.error_clip or None)


def make_optimizer(config: DQNConfig, q_net: Layer) -> Optimizer:
    return OPTIMIZERS[config.optimizer](config.eta).bind(q_net, 1)

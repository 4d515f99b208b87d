"""The environments DQN (5.3) plays: gymnasium ids with a discrete action set A.

A vector-observation environment (CartPole-v1, MountainCar-v0, ...) gets an MLP Q-network and the
plain :class:`~tiefnet.rl.replay.ReplayMemory`; an Atari id ("ALE/...") gets phi of 5.3 (84x84
grayscale frames, the last 4 stacked: :func:`tiefnet.rl.atari.make_atari_env`), the Nature CNN and
the frame-sharing replay memory.
"""
from __future__ import annotations

from typing import Any

import numpy

from tiefnet.errors import ConfigError


def is_atari(env_id: str) -> bool:
    return env_id.startswith("ALE/")


def _atari():
    try:
        from tiefnet.rl import atari
    except ImportError as error:
        raise ConfigError(f"Atari environments (ALE/...) need tiefnet.rl.atari, which is not available ({error})") from None
    missing = [name for name in ("make_atari_env", "FrameReplayMemory", "nature_cnn") if not hasattr(atari, name)]
    if missing:
        raise ConfigError(f"Atari environments (ALE/...) are not ready yet: tiefnet.rl.atari lacks {', '.join(missing)}")
    return atari


def make_env(env_id: str, *, seed: int | None = None, render_mode: str | None = None) -> Any:
    """gymnasium.make(env_id) (or the Atari phi), checked: a discrete action space, a Box observation."""
    import gymnasium

    try:
        if is_atari(env_id):
            env = _atari().make_atari_env(env_id, seed=seed, render_mode=render_mode)
        else:
            env = gymnasium.make(env_id, render_mode=render_mode)
    except gymnasium.error.Error as error:
        raise ConfigError(f"unknown environment {env_id!r}: {error}") from None
    if not isinstance(env.action_space, gymnasium.spaces.Discrete):
        env.close()
        raise ConfigError(f"{env_id}: DQN needs a discrete action space, this one is {env.action_space}")
    if not isinstance(env.observation_space, gymnasium.spaces.Box):
        env.close()
        raise ConfigError(f"{env_id}: DQN needs array observations (a Box space), this one is {env.observation_space}")
    return env


def make_memory(env_id: str, capacity: int, obs_shape: tuple[int, ...]):
    """The replay memory D for this environment: frames stored once as uint8 for Atari."""
    if is_atari(env_id):
        return _atari().FrameReplayMemory(capacity, obs_shape, numpy.uint8)
    from tiefnet.rl.replay import ReplayMemory

    return ReplayMemory(capacity, obs_shape, numpy.float32)


def make_q_network(env_id: str, obs_shape: tuple[int, ...], n_actions: int, hidden: list[int],
                   rng: numpy.random.Generator):
    """The Nature CNN for Atari frames, an MLP with ``hidden`` layers for vector observations."""
    if is_atari(env_id):
        return _atari().nature_cnn(n_actions, stack=obs_shape[0], rng=rng)
    if len(obs_shape) != 1:
        raise ConfigError(f"{env_id}: observations of shape {obs_shape}; the MLP Q-network takes vectors")
    from tiefnet.rl.dqn import mlp_q_network

    return mlp_q_network(obs_shape[0], n_actions, hidden, rng)

"""The environments DQN (5.3) plays: gymnasium ids with a discrete action set A.

A vector-observation environment (CartPole-v1, MountainCar-v0, ...) gets an MLP Q-network and the
plain :class:`~tiefnet.rl.replay.ReplayMemory`; an Atari id ("ALE/...") gets phi of 5.3 (84x84
grayscale frames, the last 4 stacked: :func:`tiefnet.rl.atari.make_atari_env`), the Nature CNN and
the frame-sharing replay memory.

An id is checked before gymnasium sees it (:func:`check_env_id`): ``gymnasium.make("mod:Env-v0")``
imports the module ``mod`` (any file of that name on sys.path, the current folder included), so the
``module:Env`` form is only taken from the command line with ``--allow-env-module``, never from a
model or run folder, which may come from someone else.
"""
from __future__ import annotations

import importlib
import math
from typing import Any

import numpy

from tiefnet.errors import ConfigError, TiefnetError
from tiefnet.limits import check_allocation

NATURE_CNN_PARAMS = 32 * (8 * 8 + 1) + 64 * (32 * 4 * 4 + 1) + 64 * (64 * 3 * 3 + 1) + 512 * (3136 + 1)  # + stack, A
NATURE_CNN_UNITS = 4 * 84 * 84 + 32 * 20 * 20 + 64 * 9 * 9 + 64 * 7 * 7 + 512  # activations of one sample


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


def register_atari() -> None:
    """Add ale_py's ALE/... ids to gymnasium's registry."""
    import gymnasium

    try:
        import ale_py
    except ImportError as error:
        raise ConfigError(f"Atari environments (ALE/...) need the package ale-py ({error})") from None
    gymnasium.register_envs(ale_py)


def check_env_id(env_id: Any, allow_module: bool = False, source: str = "") -> None:
    """Refuse an id that is not in gymnasium's registry (ALE/... ids after registering ale_py), before
    anything is imported. ``module:Env`` imports ``module`` first, only with ``allow_module`` (the
    command line's --allow-env-module). ``source`` names where the id comes from (a model folder)."""
    import gymnasium

    where = f"{source}: " if source else ""
    if not isinstance(env_id, str) or not env_id.strip():
        raise ConfigError(f"{where}environment id {env_id!r} is not a gymnasium id such as CartPole-v1")
    name = env_id
    if ":" in env_id:
        module, _, name = env_id.partition(":")
        if not allow_module:
            how = ("a folder's environment id is never imported" if source
                   else "give --allow-env-module to import it")
            raise ConfigError(f"{where}environment id {env_id!r} names a Python module to import ({module!r}); "
                              f"{how}")
        if not module or not name or ":" in name:
            raise ConfigError(f"environment id {env_id!r}: the form is module:Env-v0")
        try:
            importlib.import_module(module)
        except Exception as error:  # any error of the user's module: one line
            raise ConfigError(f"--allow-env-module: cannot import {module!r} of {env_id!r} "
                              f"({type(error).__name__}: {error})") from None
    if is_atari(name):
        register_atari()
    try:
        gymnasium.spec(name)  # no ':' left: the registry alone, nothing imported
    except gymnasium.error.Error as error:
        message = " ".join(str(error).split())
        raise ConfigError(f"{where}unknown environment {env_id!r}: {message}") from None


def make_env(env_id: str, *, seed: int | None = None, render_mode: str | None = None,
             allow_module: bool = False, source: str = "") -> Any:
    """gymnasium.make(env_id) (or the Atari phi), checked: a registered id (:func:`check_env_id`), a
    discrete action space, a Box observation."""
    import gymnasium

    check_env_id(env_id, allow_module, source)
    try:
        if is_atari(env_id):
            env = _atari().make_atari_env(env_id, seed=seed, render_mode=render_mode)
        else:
            env = gymnasium.make(env_id, render_mode=render_mode)
    except TiefnetError:
        raise
    except Exception as error:  # gymnasium's errors, and any of a --allow-env-module module
        message = " ".join(str(error).split())
        raise ConfigError(f"environment {env_id!r}: {type(error).__name__}: {message}") from None
    if not isinstance(env.action_space, gymnasium.spaces.Discrete):
        env.close()
        raise ConfigError(f"{env_id}: DQN needs a discrete action space, this one is {env.action_space}")
    if not isinstance(env.observation_space, gymnasium.spaces.Box) or not env.observation_space.shape:
        env.close()
        raise ConfigError(f"{env_id}: DQN needs array observations (a Box space), this one is {env.observation_space}")
    return env


def make_memory(env_id: str, capacity: int, obs_shape: tuple[int, ...]):
    """The replay memory D for this environment: frames stored once as uint8 for Atari."""
    if is_atari(env_id):
        return _atari().FrameReplayMemory(capacity, obs_shape, numpy.uint8)
    from tiefnet.rl.replay import ReplayMemory

    return ReplayMemory(capacity, obs_shape, numpy.float32)


def memory_parts(env_id: str, obs_shape: tuple[int, ...], n_actions: int, hidden: list[int], capacity: int,
                 batch_size: int, episodes: int = 0) -> dict[str, float]:
    """Bytes DQN allocates on this environment, by part: the replay memory D; theta in six float32
    copies (theta, theta^-, the best check's, the gradients, two optimizer moments) and its float64
    initialisation; a mini-batch (phi_j and phi_{j+1}, the activations of three passes); the seeds and
    returns of ``episodes`` evaluation episodes."""
    from tiefnet.rl.replay import ReplayMemory

    n_obs = math.prod(obs_shape)
    if is_atari(env_id):
        replay = _atari().FrameReplayMemory.bytes_needed(capacity, obs_shape)
        params = NATURE_CNN_PARAMS + 32 * 8 * 8 * (obs_shape[0] - 1) + 513 * n_actions
        units = NATURE_CNN_UNITS + n_actions
    else:
        replay = ReplayMemory.bytes_needed(capacity, obs_shape, numpy.float32)
        sizes = [n_obs, *hidden, n_actions]
        params = sum((n_in + 1) * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
        units = sum(sizes)
    return {"the replay memory": float(replay), "the Q-networks": float(params) * (6 * 4 + 8),
            "a mini-batch": float(batch_size) * (2 * 4 * n_obs + 3 * 2 * 4 * units),
            "the evaluation episodes": float(episodes) * (8 + 32)}


def make_q_network(env_id: str, obs_shape: tuple[int, ...], n_actions: int, hidden: list[int],
                   rng: numpy.random.Generator):
    """The Nature CNN for Atari frames, an MLP with ``hidden`` layers for vector observations."""
    if is_atari(env_id):
        return _atari().nature_cnn(n_actions, stack=obs_shape[0], rng=rng)
    if len(obs_shape) != 1:
        raise ConfigError(f"{env_id}: observations of shape {obs_shape}; the MLP Q-network takes vectors")
    from tiefnet.rl.dqn import mlp_q_network

    return mlp_q_network(obs_shape[0], n_actions, hidden, rng)


def check_memory(env_id: str, obs_shape: tuple[int, ...], n_actions: int, hidden: list[int], capacity: int,
                 batch_size: int, episodes: int = 0) -> None:
    """Refuse settings whose arrays (:func:`memory_parts`) cannot fit in this machine's memory."""
    network = "the Nature CNN" if is_atari(env_id) else f"--hidden {','.join(map(str, hidden))}"
    check_allocation(memory_parts(env_id, obs_shape, n_actions, hidden, capacity, batch_size, episodes),
               f"DQN on {env_id} with --memory {capacity}, {network}, --batch-size {batch_size}")

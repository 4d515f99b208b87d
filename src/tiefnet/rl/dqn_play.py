"""Playing a trained Q-network greedily, a = argmax_a Q(phi, a; theta) (5.3): the final evaluation of
a DQN run and ``tiefnet dqn play`` (optionally written as an animated GIF)."""
from __future__ import annotations

import math

from pathlib import Path
from typing import Any, Callable

import numpy

from tiefnet.checkpoint import read_model
from tiefnet.errors import CheckpointError, ConfigError, TiefnetError
from tiefnet.files import write_bytes
from tiefnet.rl.dqn import as_input, greedy_action
from tiefnet.rl.environments import make_env
from tiefnet.limits import check_allocation
from tiefnet.settings import check_seed


def evaluate(q_net, env, episodes: int, seed) -> list[float]:
    """Returns of ``episodes`` greedy episodes (epsilon = 0) in ``env``, each reset with a seed drawn from ``seed``."""
    seeds = numpy.random.default_rng(seed).integers(2**31, size=episodes)
    return [play_episode(env, q_net, int(s)) for s in seeds]


def play_episode(env, q_net, seed: int, frames: list | None = None) -> float:
    """One greedy episode; appends an RGB image of every state to ``frames`` if given. Returns the return."""
    obs, _ = env.reset(seed=seed)
    render = renderer(env) if frames is not None else None
    total, done = 0.0, False
    while not done:
        if render is not None:
            frames.append(render())
        obs, reward, terminated, truncated, _ = env.step(greedy_action(q_net, obs))
        total += float(reward)
        done = terminated or truncated
    if render is not None:
        frames.append(render())
    return total


def renderer(env) -> Callable[[], numpy.ndarray]:
    """env.render (render_mode="rgb_array"); for CartPole without pygame, a drawing of its state with PIL."""
    import gymnasium

    try:
        env.render()
        return env.render
    except gymnasium.error.DependencyNotInstalled as error:
        if type(env.unwrapped).__name__ == "CartPoleEnv":
            return lambda: draw_cartpole(env.unwrapped.state)
        raise ConfigError(f"--gif: rendering {env.spec.id if env.spec else env} needs a package: {error}") from None


def draw_cartpole(state, width: int = 600, height: int = 400) -> numpy.ndarray:
    """CartPole's picture as gymnasium draws it: the cart at x on the track, the pole at angle theta."""
    from PIL import Image, ImageDraw

    x, _, theta, _ = (float(v) for v in state)
    scale = width / 4.8  # the track is +-2.4 wide
    cart_x, cart_y = x * scale + width / 2, height - 100  # image y grows downwards
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.line([(0, cart_y), (width, cart_y)], fill="black")
    draw.rectangle([cart_x - 25, cart_y - 15, cart_x + 25, cart_y + 15], fill="black")
    pole = scale * 1.0  # the pole is 2 * 0.5 long
    top = (cart_x + pole * math.sin(theta), cart_y - 8 - pole * math.cos(theta))
    draw.line([(cart_x, cart_y - 8), top], fill=(202, 152, 101), width=10)
    draw.ellipse([cart_x - 5, cart_y - 13, cart_x + 5, cart_y - 3], fill=(129, 132, 203))
    return numpy.asarray(image)


def load_player(folder: str | Path) -> tuple[Any, str]:
    """The Q-network of a DQN run folder and its environment id."""
    try:
        model, meta = read_model(folder)
    except MemoryError:
        raise CheckpointError(f"{folder}: its arrays are too large to load") from None
    info = meta["info"]
    if (meta["app"] not in ("dqn", None) or not isinstance(info, dict) or info.get("kind") != "dqn"
            or not isinstance(info.get("env"), str)):
        raise CheckpointError(f"{folder}: not a DQN model (model.json names no environment)")
    return model, info["env"]


def check_player(q_net, env, folder: str | Path, env_id: str) -> None:
    """The network takes ``env``'s observations and gives one Q(phi, a) per action: (1, *obs) -> (1, |A|)."""
    obs = numpy.zeros(env.observation_space.shape, dtype=env.observation_space.dtype)
    try:
        Q = q_net.forward(as_input(obs[None]))
    except (TiefnetError, ValueError, TypeError, IndexError) as error:
        raise CheckpointError(f"{folder}: its network does not take {env_id}'s observations of shape "
                              f"{obs.shape} ({' '.join(str(error).split())})") from None
    n_actions = int(env.action_space.n)
    if tuple(Q.shape) != (1, n_actions):
        raise CheckpointError(f"{folder}: its network gives outputs of shape {tuple(Q.shape[1:])} for one "
                              f"observation; a Q-network of {env_id} gives one Q-value per action ({n_actions},)")


def check_gif(gif: str | Path) -> Path:
    """--gif: a file name in an existing folder, not a folder or a symbolic link (checked before playing)."""
    path = Path(gif)
    if path.is_symlink():
        raise ConfigError(f"--gif {path} is a symbolic link; give the name of a new or a regular file")
    if path.exists() and not path.is_file():
        raise ConfigError(f"--gif {path} exists and is not a file")
    if not path.parent.is_dir():
        raise ConfigError(f"--gif {path}: the folder {path.parent} does not exist")
    return path


def play(folder: str | Path, episodes: int = 1, gif: str | Path | None = None, seed: int = 0) -> list[float]:
    """Play ``episodes`` greedy episodes with the model in ``folder``; the first one goes to ``gif`` if given."""
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"--episodes {episodes} must be at least 1")
    check_seed(seed, "--seed")
    check_allocation({"the episodes' seeds and returns": episodes * (8 + 32)}, f"--episodes {episodes}")
    if gif is not None:
        gif = check_gif(gif)
    q_net, env_id = load_player(folder)
    env = make_env(env_id, render_mode="rgb_array" if gif else None, source=f"{folder}/model.json")
    check_player(q_net, env, folder, env_id)
    seeds = numpy.random.default_rng([seed, 2]).integers(2**31, size=episodes)
    returns = []
    for i, s in enumerate(seeds):
        frames: list | None = [] if gif and i == 0 else None
        returns.append(play_episode(env, q_net, int(s), frames))
        if frames:
            write_gif(frames, gif)
    env.close()
    return returns


def write_gif(frames: list[numpy.ndarray], path: str | Path, fps: int = 30, max_side: int = 320) -> Path:
    """An animated GIF of RGB frames (H, W, 3) uint8, scaled down to at most ``max_side`` pixels."""
    from PIL import Image

    path = Path(path)
    images = [Image.fromarray(numpy.asarray(f, dtype=numpy.uint8)) for f in frames if f is not None]
    if not images:
        raise ConfigError("--gif: the environment rendered no frames")
    scale = min(1.0, max_side / max(images[0].size))
    if scale < 1.0:
        size = (max(1, round(images[0].width * scale)), max(1, round(images[0].height * scale)))
        images = [im.resize(size, Image.BILINEAR) for im in images]
    write_bytes(path, lambda f: images[0].save(f, format="GIF", save_all=True, append_images=images[1:],
                                               duration=round(1000 / fps), loop=0))  # never through a symlink
    return path

"""Atari for DQN (5.3, Mnih et al. 2015): the preprocessing phi, a replay memory that stores each
frame once, and the Q-network Q(phi(s), a, theta).

    phi(s_t) = the last m = 4 frames x_t as 84 x 84 grayscale images, where each frame is
               x = resize_84x84(Y(max(raw frame, previous raw frame)))     (5.3 "Preprocessing-Funktion phi")

The emulator runs with frameskip=1; :class:`Phi` repeats each action ``frame_skip`` times, sums the
rewards, takes the pixel-wise maximum of the last two raw RGB frames (sprites that flicker), the
luminance Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, the same numbers as ALE's own grayscale
screen) and the area average onto 84 x 84 (the weights OpenCV's INTER_AREA uses for a reduction, here in
exact integers; written in NumPy because gymnasium's AtariPreprocessing needs opencv-python, which is no
dependency of tiefnet).
gymnasium's FrameStackObservation stacks the last m frames; after reset it repeats the first frame.
"""
from __future__ import annotations

import gymnasium
import numpy

from tiefnet.errors import CheckpointError, ConfigError, ShapeError
from tiefnet.nn import Conv2d, Dense, Flatten, ReLU, Sequential
from tiefnet.limits import check_allocation
from tiefnet.rl.replay import Transitions, check_stored

SCREEN = 84  # side of phi's frames (5.3: "skaliere auf 84 x 84 Pixel")


def luminance(rgb: numpy.ndarray) -> numpy.ndarray:
    """Y = 0.299 R + 0.587 G + 0.114 B, rounded half up. Shapes: (H, W, 3) uint8 -> (H, W) uint8."""
    R, G, B = (rgb[..., c].astype(numpy.uint32) for c in range(3))
    return ((299 * R + 587 * G + 114 * B + 500) // 1000).astype(numpy.uint8)


def area_taps(n_in: int, n_out: int) -> tuple[numpy.ndarray, numpy.ndarray]:
    """The area average along one axis as taps: input pixel k covers [k n_out, (k+1) n_out) and
    output pixel i covers [i n_in, (i+1) n_in) on a common integer grid; output i takes input
    index[i, q] with weight[i, q] = the overlap length (each row of weights sums to n_in).

    Shapes: index, weight (n_out, K), K = the most input pixels one output pixel touches.
    """
    i, k = numpy.arange(n_out)[:, None], numpy.arange(n_in)[None, :]
    overlap = numpy.minimum((i + 1) * n_in, (k + 1) * n_out) - numpy.maximum(i * n_in, k * n_out)
    overlap = numpy.clip(overlap, 0, None)  # (n_out, n_in), a band
    K = int((overlap > 0).sum(axis=1).max())
    span = (overlap > 0).argmax(axis=1)[:, None] + numpy.arange(K)  # from the first input pixel it touches
    index = numpy.minimum(span, n_in - 1)
    weight = numpy.take_along_axis(overlap, index, axis=1) * (span < n_in)  # 0 past the band
    return index, weight.astype(numpy.int64)


def resize_area(gray: numpy.ndarray, size: int = SCREEN, taps=None) -> numpy.ndarray:
    """x[i, j] = the mean of the image over output pixel (i, j)'s area, rounded half up.

    Shapes: (H, W) uint8 -> (size, size) uint8. Integer sums (no BLAS call, exact).
    """
    H, W = gray.shape
    (index_H, weight_H), (index_W, weight_W) = taps if taps is not None else (area_taps(H, size),
                                                                             area_taps(W, size))
    rows = (gray[index_H] * weight_H[:, :, None]).sum(axis=1)  # (size, W), in units of 1 / H
    total = (rows[:, index_W] * weight_W[None, :, :]).sum(axis=2)  # (size, size), in units of 1 / (H W)
    return ((total + H * W // 2) // (H * W)).astype(numpy.uint8)


class Phi(gymnasium.Wrapper):
    """One agent step = ``frame_skip`` emulator frames with the same action a_t and the sum of their
    rewards; the observation is resize_area(Y(max(x_raw, x_raw_previous))) of the two most recent
    raw frames, (84, 84) uint8. An episode that ends inside the skip stops there.

    reset() takes 1..noop_max random NOOPs first (random start states, Mnih et al. 2015); the raw
    frame before the first one of an episode counts as equal to it.
    """

    def __init__(self, env: gymnasium.Env, frame_skip: int = 4, noop_max: int = 30):
        super().__init__(env)
        self.frame_skip, self.noop_max = int(frame_skip), int(noop_max)
        H, W, _ = env.observation_space.shape
        self._taps = (area_taps(H, SCREEN), area_taps(W, SCREEN))
        self.observation_space = gymnasium.spaces.Box(0, 255, (SCREEN, SCREEN), numpy.uint8)
        self._raw = self._raw_previous = None

    def _observe(self, raw: numpy.ndarray) -> None:
        self._raw_previous = raw if self._raw is None else self._raw
        self._raw = raw

    def _phi(self) -> numpy.ndarray:
        frame = numpy.maximum(self._raw, self._raw_previous)  # (210, 160, 3): max of the last two frames
        return resize_area(luminance(frame), SCREEN, self._taps)  # a new array each step

    def reset(self, *, seed=None, options=None):
        raw, info = self.env.reset(seed=seed, options=options)
        self._raw = None
        self._observe(raw)
        noops = int(self.env.unwrapped.np_random.integers(1, self.noop_max + 1)) if self.noop_max else 0
        for _ in range(noops):
            raw, _, terminated, truncated, info = self.env.step(0)  # action 0 is NOOP in ALE
            if terminated or truncated:
                raw, info = self.env.reset()
                self._raw = None
            self._observe(raw)
        return self._phi(), info

    def step(self, action):
        R = 0.0
        for _ in range(self.frame_skip):
            raw, r, terminated, truncated, info = self.env.step(action)
            self._observe(raw)
            R += float(r)
            if terminated or truncated:
                break
        return self._phi(), R, terminated, truncated, info


def make_atari_env(env_id: str, *, seed: int | None = None, frame_skip: int = 4, stack: int = 4,
                   render_mode: str | None = None, max_episode_steps: int | None = None,
                   noop_max: int = 30, repeat_action_probability: float = 0.25) -> gymnasium.Env:
    """phi of 5.3 / Mnih et al. 2015: grayscale, 84x84, frame skip (max over the last 2 raw frames),
    the last ``stack`` frames stacked; observations (stack, 84, 84) uint8.

    Args:
        env_id: an ALE id, e.g. "ALE/Pong-v5".
        seed: seeds the emulator, the no-op starts and the action space (a first reset(seed=seed) here).
        max_episode_steps: truncate episodes after this many agent steps (each ``frame_skip`` frames).
        noop_max: reset() takes 1..noop_max NOOPs (0: none).
        repeat_action_probability: sticky actions; 0.25 is the v5 default (Machado et al. 2018),
            the 2015 paper's emulator was deterministic (0.0).
    """
    import ale_py

    gymnasium.register_envs(ale_py)
    try:
        spec = gymnasium.spec(env_id)
    except gymnasium.error.Error as error:
        raise ConfigError(f"unknown environment {env_id!r} ({error}); Atari ids look like ALE/Pong-v5") from None
    if "ale_py" not in str(spec.entry_point):
        raise ConfigError(f"{env_id!r} is not an Atari (ALE) environment; Atari ids look like ALE/Pong-v5")
    for name, value, low in (("frame_skip", frame_skip, 1), ("stack", stack, 1), ("noop_max", noop_max, 0)):
        if int(value) != value or value < low:
            raise ConfigError(f"{name}={value} must be an integer >= {low}")
    if not 0.0 <= repeat_action_probability <= 1.0:
        raise ConfigError(f"repeat_action_probability={repeat_action_probability} must lie in [0, 1]")
    if max_episode_steps is not None and max_episode_steps < 1:
        raise ConfigError(f"max_episode_steps={max_episode_steps} must be at least 1")
    env = gymnasium.make(env_id, frameskip=1, repeat_action_probability=repeat_action_probability,
                         obs_type="rgb", render_mode=render_mode, disable_env_checker=True)
    env = Phi(env, frame_skip=frame_skip, noop_max=noop_max)
    if max_episode_steps is not None:
        env = gymnasium.wrappers.TimeLimit(env, max_episode_steps)
    env = gymnasium.wrappers.FrameStackObservation(env, stack)  # padding "reset": the first frame repeated
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


class FrameReplayMemory:
    """The replay memory D of 5.3 for stacked frames: each 84 x 84 frame is stored once.

    Consecutive transitions of an episode share m - 1 frames (phi_{t+1} = phi_t shifted by one
    frame), so D keeps a ring of frames and, per transition, where phi_{t+1}'s newest frame lies:
    phi_t = frames[p - m .. p - 1], phi_{t+1} = frames[p - m + 1 .. p]. A push whose obs is not the
    previous next_obs starts an episode and stores all m frames of obs; then each push adds one frame.
    Sampled stacks therefore equal the pushed ones exactly and never mix two episodes.

    The frame ring has capacity + m slots: it holds ``capacity`` transitions of one long episode,
    and m fewer per further episode start in it (a transition leaves D when its frames are overwritten).

    Args: as :class:`tiefnet.rl.replay.ReplayMemory`; obs_shape is (m, H, W).
    """

    def __init__(self, capacity: int, obs_shape: tuple[int, ...] = (4, SCREEN, SCREEN), obs_dtype=numpy.uint8):
        if int(capacity) < 1:
            raise ConfigError(f"FrameReplayMemory: capacity={capacity} must be at least 1")
        if len(obs_shape) != 3 or min(obs_shape) < 1:
            raise ConfigError(f"FrameReplayMemory: obs_shape={tuple(obs_shape)} must be (stack, H, W)")
        self.capacity = int(capacity)
        self.obs_shape = tuple(int(n) for n in obs_shape)
        check_allocation({"the replay memory": self.bytes_needed(self.capacity, self.obs_shape, obs_dtype)},
                   f"a frame replay memory of {self.capacity} transitions of shape {self.obs_shape}")
        self.stack = self.obs_shape[0]  # m
        self.frames = numpy.zeros((self.capacity + self.stack, *self.obs_shape[1:]), dtype=obs_dtype)
        self.newest_frame = numpy.zeros(self.capacity, dtype=numpy.int64)  # p: frames pushed before it
        self.action = numpy.zeros(self.capacity, dtype=numpy.int64)  # a_t
        self.reward = numpy.zeros(self.capacity, dtype=numpy.float32)  # r_t
        self.terminated = numpy.zeros(self.capacity, dtype=numpy.float32)
        self.oldest = 0  # ring index of the oldest transition
        self.size = 0  # transitions held
        self.frames_pushed = 0  # frames ever written; frame number n lies in slot n % len(frames)

    def _stacks(self, p: numpy.ndarray) -> numpy.ndarray:
        """(B,) newest-frame numbers -> (B, m + 1, H, W): phi_t = [:, :m], phi_{t+1} = [:, 1:]."""
        numbers = p[:, None] - self.stack + numpy.arange(self.stack + 1)  # (B, m + 1)
        return self.frames[numbers % len(self.frames)]

    def _check(self, name: str, stack) -> numpy.ndarray:
        stack = numpy.asarray(stack)
        if stack.shape != self.obs_shape:
            raise ShapeError(f"FrameReplayMemory.push: {name} has shape {stack.shape}, expected {self.obs_shape}")
        return stack

    def push(self, obs, action: int, reward: float, next_obs, terminated: bool) -> None:
        """Store (phi_t, a_t, r_t, phi_{t+1}); the oldest transitions leave when D is full."""
        obs, next_obs = self._check("obs", obs), self._check("next_obs", next_obs)
        if not numpy.array_equal(obs[1:], next_obs[:-1]):
            raise ShapeError("FrameReplayMemory.push: next_obs is not obs shifted by one frame "
                             "(stacked frames, newest last, are expected)")
        newest = (self.oldest + self.size - 1) % self.capacity
        continues = self.size > 0 and numpy.array_equal(
            obs, self._stacks(self.newest_frame[newest : newest + 1])[0, 1:])  # obs == previous next_obs
        new_frames = next_obs[-1:] if continues else numpy.concatenate([obs, next_obs[-1:]])
        last = self.frames_pushed + len(new_frames) - 1  # the frame number of phi_{t+1}'s newest frame
        while self.size and (self.size == self.capacity
                             or self.newest_frame[self.oldest] - self.stack <= last - len(self.frames)):
            self.oldest, self.size = (self.oldest + 1) % self.capacity, self.size - 1  # its frames get overwritten
        slots = numpy.arange(self.frames_pushed, last + 1) % len(self.frames)
        self.frames[slots] = new_frames
        self.frames_pushed = last + 1
        i = (self.oldest + self.size) % self.capacity
        self.newest_frame[i], self.action[i], self.reward[i] = last, action, reward
        self.terminated[i] = float(terminated)
        self.size += 1

    def sample(self, batch_size: int, rng: numpy.random.Generator) -> Transitions:
        """A mini-batch of ``batch_size`` transitions drawn uniformly (with replacement) from D."""
        if self.size == 0:
            raise ConfigError("FrameReplayMemory.sample: the memory is empty")
        i = (self.oldest + rng.integers(0, self.size, size=batch_size)) % self.capacity  # (B,)
        both = self._stacks(self.newest_frame[i])  # (B, m + 1, H, W)
        m = self.stack
        return Transitions(both[:, :m], self.action[i], self.reward[i], both[:, 1:], self.terminated[i])

    def __len__(self) -> int:
        return self.size

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.frames, self.newest_frame, self.action, self.reward, self.terminated))

    @staticmethod
    def bytes_needed(capacity: int, obs_shape: tuple[int, ...], obs_dtype=numpy.uint8) -> int:
        """:attr:`nbytes` of a memory of these settings, known before it is allocated."""
        frame = int(numpy.prod(obs_shape[1:], dtype=object)) * numpy.dtype(obs_dtype).itemsize
        return (int(capacity) + int(obs_shape[0])) * frame + int(capacity) * (8 + 8 + 4 + 4)

    # --- checkpoints: the live frames and transitions, oldest first --------------------------
    def state_arrays(self) -> dict[str, numpy.ndarray]:
        """Everything needed to restore D: the frames still in use and the transitions, oldest first."""
        i = (self.oldest + numpy.arange(self.size)) % self.capacity
        first = int(self.newest_frame[self.oldest]) - self.stack if self.size else self.frames_pushed
        # the live frames are one run of the ring, perhaps wrapping round its end: two views, no copy
        # of the (up to 7 GB) frames while the checkpoint is written
        start, count, ring = first % len(self.frames), self.frames_pushed - first, len(self.frames)
        head = self.frames[start : min(start + count, ring)]
        return {"frames": head, "frames_wrapped": self.frames[: count - len(head)],
                "newest_frame": self.newest_frame[i] - first,
                "action": self.action[i], "reward": self.reward[i], "terminated": self.terminated[i],
                "counters": numpy.array([self.capacity, *self.obs_shape], dtype=numpy.int64)}

    def load_state_arrays(self, arrays: dict[str, numpy.ndarray]) -> None:
        try:
            capacity, *obs_shape = (int(v) for v in arrays["counters"])
            head, wrapped = numpy.asarray(arrays["frames"]), numpy.asarray(arrays["frames_wrapped"])
            newest = numpy.asarray(arrays["newest_frame"], dtype=numpy.int64)
            columns = [numpy.asarray(arrays[name]) for name in ("action", "reward", "terminated")]
        except (KeyError, ValueError, TypeError) as error:
            raise CheckpointError(f"frame replay memory: incomplete state ({error!r})") from None
        n = len(newest)
        if capacity != self.capacity or tuple(obs_shape) != self.obs_shape:
            raise CheckpointError(f"frame replay memory: saved capacity {capacity}, obs {tuple(obs_shape)} does not "
                                  f"fit a memory of capacity {self.capacity}, obs {self.obs_shape}")
        count = len(head) + len(wrapped)
        if (n > capacity or count > len(self.frames)
                or any(f.shape[1:] != self.frames.shape[1:] for f in (head, wrapped))
                or any(c.shape != (n,) for c in columns)
                or (n and (newest.min() < self.stack or newest.max() >= count))):
            raise CheckpointError("frame replay memory: saved arrays have inconsistent shapes or frame numbers")
        for name, values in (("frames", head), ("frames_wrapped", wrapped)):
            check_stored(f"frame replay memory: {name}", values, integer=True, high=255)
        for name, values in zip(("action", "reward", "terminated"), columns):
            check_stored(f"frame replay memory: {name}", values, integer=name == "action",
                         binary=name == "terminated")
        self.frames[: len(head)] = head  # frame numbers restart at 0, oldest first
        self.frames[len(head) : count] = wrapped
        self.newest_frame[:n], self.action[:n], self.reward[:n], self.terminated[:n] = newest, *columns
        self.oldest, self.size, self.frames_pushed = 0, n, count


def nature_cnn(n_actions: int, *, stack: int = 4, rng: numpy.random.Generator) -> Sequential:
    """Mnih et al. 2015: conv 8x8/4 32 -> ReLU -> conv 4x4/2 64 -> ReLU -> conv 3x3/1 64 -> ReLU
    -> flatten -> dense 512 -> ReLU -> dense n_actions. Input (N, stack, 84, 84) float in [0, 1].

    Shapes: (N, m, 84, 84) -> (N, 32, 20, 20) -> (N, 64, 9, 9) -> (N, 64, 7, 7) -> (N, 3136)
    -> (N, 512) -> (N, n_actions): one Q(phi(s), a, theta) per action in one forward pass (Bild 5.1).
    He initialisation N(0, 2/n_in) before each ReLU, N(0, 1/n_in) for the output layer, biases 0
    (the lecture's N(0, 1) dense biases would give Q-values of size ~ sqrt(512) at the start).
    """
    if int(n_actions) < 1 or int(stack) < 1:
        raise ConfigError(f"nature_cnn: n_actions={n_actions} and stack={stack} must be at least 1")
    layers = [Conv2d(stack, 32, 8, stride=4, init="he", rng=rng), ReLU(),  # 84 -> (84 - 8)/4 + 1 = 20
              Conv2d(32, 64, 4, stride=2, init="he", rng=rng), ReLU(),  # 20 -> (20 - 4)/2 + 1 = 9
              Conv2d(64, 64, 3, stride=1, init="he", rng=rng), ReLU(),  # 9 -> 7
              Flatten(),
              Dense(64 * 7 * 7, 512, init="he", rng=rng), ReLU(),
              Dense(512, int(n_actions), init="scaled", rng=rng)]
    for layer in layers:
        if "b" in layer.params:
            layer.params["b"][...] = 0
    return Sequential(*layers)

"""Experience replay (5.3, "Training mit Experience Replay"): the replay memory D holds the last N
transitions (phi_t, a_t, r_t, phi_{t+1}); mini-batches are drawn from it uniformly, so that the
samples of one gradient step are not the strongly correlated consecutive steps of one episode.

The memory is a ring buffer on the host (NumPy): once full, each new transition overwrites the
oldest. Mini-batches are host arrays; the agent moves them to the device (``xp``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy

from tiefnet.errors import CheckpointError, ConfigError
from tiefnet.limits import check_allocation


@dataclass
class Transitions:
    """A sampled mini-batch (phi_j, a_j, r_j, phi_{j+1}, terminal_j), j = 1..B, as host arrays.

    Shapes: obs, next_obs (B, *obs_shape) in the memory's dtype; action (B,) int64; reward (B,)
    float32; terminated (B,) float32, 1.0 where the episode ended in a terminal state (not for a
    time-limit truncation: there y = r + gamma max Q(next) still holds).
    """

    obs: numpy.ndarray
    action: numpy.ndarray
    reward: numpy.ndarray
    next_obs: numpy.ndarray
    terminated: numpy.ndarray

    def __len__(self) -> int:
        return len(self.action)


class ReplayMemory:
    """Uniform experience replay D, a ring buffer of ``capacity`` transitions (5.3):
    D = {(phi_j, a_j, r_j, phi_{j+1}, terminal_j)}, the last N of them; a mini-batch draws j ~ U(D).

    Args:
        capacity: N, the number of transitions kept (the lecture's Atari value is 10^6).
        obs_shape: the shape of one observation phi(s).
        obs_dtype: float32 for vector observations, uint8 for frames.
    """

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype=numpy.float32):
        if int(capacity) < 1:
            raise ConfigError(f"ReplayMemory: capacity={capacity} must be at least 1")
        self.capacity = int(capacity)
        self.obs_shape = tuple(int(n) for n in obs_shape)
        check_allocation({"the replay memory": self.bytes_needed(self.capacity, self.obs_shape, obs_dtype)},
                   f"a replay memory of {self.capacity} transitions of shape {self.obs_shape}")
        self.obs = numpy.zeros((self.capacity, *self.obs_shape), dtype=obs_dtype)  # phi_t
        self.next_obs = numpy.zeros_like(self.obs)  # phi_{t+1}
        self.action = numpy.zeros(self.capacity, dtype=numpy.int64)  # a_t
        self.reward = numpy.zeros(self.capacity, dtype=numpy.float32)  # r_t
        self.terminated = numpy.zeros(self.capacity, dtype=numpy.float32)
        self.position = 0  # where the next transition goes
        self.size = 0  # transitions held, at most capacity

    def push(self, obs, action: int, reward: float, next_obs, terminated: bool) -> None:
        """Store the transition (phi_t, a_t, r_t, phi_{t+1}) in D, overwriting the oldest when full."""
        i = self.position
        self.obs[i] = obs
        self.action[i] = action
        self.reward[i] = reward
        self.next_obs[i] = next_obs
        self.terminated[i] = float(terminated)
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: numpy.random.Generator) -> Transitions:
        """A mini-batch of ``batch_size`` transitions drawn uniformly (with replacement) from D."""
        if self.size == 0:
            raise ConfigError("ReplayMemory.sample: the memory is empty")
        j = rng.integers(0, self.size, size=batch_size)  # (B,)
        return Transitions(self.obs[j], self.action[j], self.reward[j], self.next_obs[j], self.terminated[j])

    def __len__(self) -> int:
        return self.size

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.obs, self.next_obs, self.action, self.reward, self.terminated))

    @staticmethod
    def bytes_needed(capacity: int, obs_shape: tuple[int, ...], obs_dtype=numpy.float32) -> int:
        """:attr:`nbytes` of a memory of these settings, known before it is allocated."""
        obs = math.prod(obs_shape) * numpy.dtype(obs_dtype).itemsize
        return int(capacity) * (2 * obs + 8 + 4 + 4)  # phi_t, phi_{t+1}, a_t, r_t, terminated

    # --- checkpoints: plain arrays, written to .npz -------------------------------------------
    def state_arrays(self) -> dict[str, numpy.ndarray]:
        """Everything needed to restore the memory (only the filled part of the storage)."""
        n = self.size
        return {"obs": self.obs[:n], "next_obs": self.next_obs[:n], "action": self.action[:n],
                "reward": self.reward[:n], "terminated": self.terminated[:n],
                "counters": numpy.array([self.position, self.size, self.capacity], dtype=numpy.int64)}

    def load_state_arrays(self, arrays: dict[str, numpy.ndarray]) -> None:
        try:
            position, size, capacity = (int(v) for v in arrays["counters"])
            stored = {name: arrays[name] for name in ("obs", "next_obs", "action", "reward", "terminated")}
        except (KeyError, ValueError, TypeError) as error:
            raise CheckpointError(f"replay memory: incomplete state ({error!r})") from None
        if capacity != self.capacity or not 0 <= size <= capacity or not 0 <= position < capacity:
            raise CheckpointError(f"replay memory: saved capacity {capacity} (size {size}, position {position}) "
                                  f"does not fit a memory of capacity {self.capacity}")
        for name, values in stored.items():
            target = getattr(self, name)
            if values.shape != (size, *target.shape[1:]):
                raise CheckpointError(f"replay memory: {name} has shape {values.shape}, "
                                      f"expected {(size, *target.shape[1:])}")
            check_stored(f"replay memory: {name}", values, integer=name == "action",
                         binary=name == "terminated")
        for name, values in stored.items():
            getattr(self, name)[:size] = values
        self.position, self.size = position, size


def check_stored(name: str, values: numpy.ndarray, integer: bool = False, binary: bool = False,
                 high: float | None = None) -> None:
    """A stored column of a checkpoint: numbers, finite; whole numbers >= 0 (actions); 0 or 1 (terminated);
    at most ``high``."""
    if values.dtype == bool or not numpy.issubdtype(values.dtype, numpy.number):
        raise CheckpointError(f"{name} holds {values.dtype} values, not numbers")
    if not numpy.isfinite(values).all():
        raise CheckpointError(f"{name} holds NaN or infinite values")
    if values.size and integer and ((values != numpy.round(values)).any() or values.min() < 0):
        raise CheckpointError(f"{name} holds values that are not whole numbers >= 0")
    if values.size and binary and not numpy.isin(values, (0, 1)).all():
        raise CheckpointError(f"{name} holds values other than 0 and 1")
    if values.size and high is not None and values.max() > high:
        raise CheckpointError(f"{name} holds values above {high:g}")

"""The replay memory D of 5.3: a ring buffer of the last N transitions, sampled uniformly."""

import numpy as np
import pytest

from tiefnet.errors import CheckpointError, ConfigError
from tiefnet.rl.replay import ReplayMemory


def filled(capacity=5, pushes=3, shape=(2,)):
    memory = ReplayMemory(capacity, shape)
    for t in range(pushes):
        memory.push(np.full(shape, t), t % 3, float(t) / 2, np.full(shape, t + 1), t % 4 == 3)
    return memory


def test_push_stores_the_transition():
    memory = filled(pushes=4)
    assert len(memory) == 4
    np.testing.assert_array_equal(memory.obs[3], [3, 3])
    np.testing.assert_array_equal(memory.next_obs[3], [4, 4])
    assert memory.action[3] == 0 and memory.reward[3] == 1.5 and memory.terminated[3] == 1.0
    assert memory.terminated[2] == 0.0


def test_ring_buffer_overwrites_the_oldest():
    memory = filled(capacity=3, pushes=5)  # transitions 0..4, the last three kept
    assert len(memory) == 3
    assert sorted(memory.obs[:, 0].tolist()) == [2, 3, 4]
    assert memory.position == 2


def test_sample_draws_uniformly_from_the_filled_part():
    memory = filled(capacity=10, pushes=4)
    batch = memory.sample(4000, np.random.default_rng(0))
    assert batch.obs.shape == (4000, 2) and batch.action.dtype == np.int64
    assert batch.reward.dtype == np.float32 and batch.terminated.dtype == np.float32
    counts = np.bincount(batch.obs[:, 0].astype(int), minlength=4)
    assert len(counts) == 4  # never an unfilled slot
    assert np.all(np.abs(counts / 4000 - 0.25) < 0.03)
    np.testing.assert_array_equal(batch.next_obs[:, 0], batch.obs[:, 0] + 1)  # rows stay together
    assert len(batch) == 4000


def test_same_seed_same_batch():
    memory = filled()
    a, b = memory.sample(8, np.random.default_rng(3)), memory.sample(8, np.random.default_rng(3))
    np.testing.assert_array_equal(a.obs, b.obs)
    np.testing.assert_array_equal(a.action, b.action)


def test_uint8_frames_and_nbytes():
    memory = ReplayMemory(4, (2, 3, 3), obs_dtype=np.uint8)
    memory.push(np.full((2, 3, 3), 255, np.uint8), 1, 1.0, np.zeros((2, 3, 3), np.uint8), False)
    assert memory.sample(2, np.random.default_rng(0)).obs.dtype == np.uint8
    assert memory.nbytes == 2 * 4 * 18 + 4 * (8 + 4 + 4)


def test_state_round_trip_continues_identically():
    memory = filled(capacity=4, pushes=6)
    copy = ReplayMemory(4, (2,))
    copy.load_state_arrays({k: v.copy() for k, v in memory.state_arrays().items()})
    assert (copy.position, copy.size) == (memory.position, memory.size)
    for m in (memory, copy):
        m.push(np.full(2, 9), 2, 0.0, np.full(2, 10), True)
    a, b = memory.sample(16, np.random.default_rng(1)), copy.sample(16, np.random.default_rng(1))
    np.testing.assert_array_equal(a.obs, b.obs)
    np.testing.assert_array_equal(a.terminated, b.terminated)


def test_state_of_a_partly_filled_memory_holds_only_the_filled_part():
    arrays = filled(capacity=100, pushes=3).state_arrays()
    assert arrays["obs"].shape == (3, 2)


def test_bad_state_is_a_checkpoint_error():
    arrays = filled(capacity=4).state_arrays()
    with pytest.raises(CheckpointError, match="capacity"):
        ReplayMemory(5, (2,)).load_state_arrays(arrays)
    with pytest.raises(CheckpointError, match="incomplete"):
        ReplayMemory(4, (2,)).load_state_arrays({"obs": arrays["obs"]})
    arrays["reward"] = arrays["reward"][:1]
    with pytest.raises(CheckpointError, match="reward"):
        ReplayMemory(4, (2,)).load_state_arrays(arrays)


def test_bad_capacity_and_empty_sample_are_config_errors():
    with pytest.raises(ConfigError, match="capacity"):
        ReplayMemory(0, (2,))
    with pytest.raises(ConfigError, match="empty"):
        ReplayMemory(3, (2,)).sample(1, np.random.default_rng(0))

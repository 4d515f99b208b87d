"""Atari for DQN (5.3): phi checked frame by frame against a reference written here from the raw
emulator frames, the frame replay memory against the stacks that were pushed, and the Nature CNN
by shapes, central differences and PyTorch."""
import io
import math
from collections import deque

import gymnasium
import numpy as np
import pytest
from helpers import dev, host

from tiefnet.errors import CheckpointError, ConfigError, ShapeError
from tiefnet.gradcheck import relative_error
from tiefnet.rl.atari import FrameReplayMemory, luminance, make_atari_env, nature_cnn, resize_area

PONG = "ALE/Pong-v5"


# --- reference phi, written independently of the library ---------------------------------------
def reference_resize(gray, size):
    """Area average by brute force: repeat every pixel onto the least common multiple grid, where
    input and output pixels are whole blocks, and average each output block (rounded half up)."""
    H, W = gray.shape
    L_H, L_W = math.lcm(H, size), math.lcm(W, size)
    fine = np.repeat(np.repeat(gray.astype(np.int64), L_H // H, axis=0), L_W // W, axis=1)  # (L_H, L_W)
    bh, bw = L_H // size, L_W // size
    sums = fine.reshape(size, bh, size, bw).sum(axis=(1, 3))
    return (2 * sums + bh * bw) // (2 * bh * bw)  # round(sums / (bh bw)) with ties up


def reference_frame(raw_last, raw_before):
    """phi's frame: max of the two raw RGB frames, then Y = (299 R + 587 G + 114 B)/1000, then 84 x 84."""
    rgb = np.maximum(raw_last, raw_before).astype(np.int64)
    Y = (299 * rgb[..., 0] + 587 * rgb[..., 1] + 114 * rgb[..., 2] + 500) // 1000
    return reference_resize(Y, 84).astype(np.uint8)


@pytest.mark.parametrize("shape, size", [((210, 160), 84), ((7, 5), 3), ((9, 12), 4), ((5, 5), 5), ((3, 4), 2)])
def test_area_resize_equals_the_block_average_on_the_common_grid(shape, size):
    gray = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    np.testing.assert_array_equal(resize_area(gray, size), reference_resize(gray, size))
    constant = np.full(shape, 77, dtype=np.uint8)
    np.testing.assert_array_equal(resize_area(constant, size), 77)


def test_luminance_is_ales_grayscale_screen():
    """Y = 0.299 R + 0.587 G + 0.114 B gives exactly the grayscale screen ALE computes itself."""
    import ale_py

    gymnasium.register_envs(ale_py)
    env = gymnasium.make(PONG, frameskip=1, repeat_action_probability=0.0, disable_env_checker=True)
    rgb, _ = env.reset(seed=3)
    rng = np.random.default_rng(3)
    gray = np.empty(rgb.shape[:2], dtype=np.uint8)
    for _ in range(60):
        rgb, *_ = env.step(int(rng.integers(env.action_space.n)))
        env.unwrapped.ale.getScreenGrayscale(gray)
        np.testing.assert_array_equal(luminance(rgb), gray)
    env.close()


def test_phi_frame_by_frame_against_the_raw_emulator():
    """The same seed and actions in a raw frameskip=1 emulator and in make_atari_env: every stacked
    observation equals the reference stack (max of the last two raw frames of each 4-frame skip,
    luminance, area resize), rewards are the sums over the skip, truncation and reset refill the stack."""
    seed, skip, limit = 7, 4, 20
    env = make_atari_env(PONG, seed=seed, noop_max=0, max_episode_steps=limit)
    raw = gymnasium.make(PONG, frameskip=1, repeat_action_probability=0.25, disable_env_checker=True)
    raw.reset(seed=seed)  # make_atari_env's own first reset(seed=seed)
    rng = np.random.default_rng(seed)
    for episode in range(2):
        obs, _ = env.reset()
        x, _ = raw.reset()
        stack = deque([reference_frame(x, x)] * 4, maxlen=4)  # reset: the first frame repeated
        np.testing.assert_array_equal(obs, np.stack(stack))
        for t in range(1, limit + 1):
            a = int(rng.integers(env.action_space.n))
            obs, R, terminated, truncated, _ = env.step(a)
            frames, R_raw = [x], 0.0
            for _ in range(skip):
                x, r, term_raw, _, _ = raw.step(a)
                frames.append(x)
                R_raw += r
            stack.append(reference_frame(frames[-1], frames[-2]))
            np.testing.assert_array_equal(obs, np.stack(stack), err_msg=f"episode {episode}, step {t}")
            assert (R, terminated) == (R_raw, term_raw)
            assert truncated == (t == limit)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert len({frame.tobytes() for frame in stack}) > 1  # the frames did change
    env.close()
    raw.close()


class Screens(gymnasium.Env):
    """A stand-in emulator: frame t is a seeded random 10 x 8 RGB screen, reward t, terminal at t = 6."""
    observation_space = gymnasium.spaces.Box(0, 255, (10, 8, 3), np.uint8)
    action_space = gymnasium.spaces.Discrete(2)

    def screen(self):
        return np.random.default_rng(self.t).integers(0, 256, (10, 8, 3), dtype=np.uint8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.screen(), {}

    def step(self, action):
        self.t += 1
        return self.screen(), float(self.t), self.t == 6, False, {}


def test_frame_skip_sums_rewards_and_stops_at_a_terminal_frame():
    from tiefnet.rl.atari import Phi

    env, screens = Phi(Screens(), frame_skip=4, noop_max=0), Screens()
    screens.reset()
    frames = [screens.screen()] + [screens.step(0)[0] for _ in range(6)]
    obs, _ = env.reset()
    np.testing.assert_array_equal(obs, reference_frame(frames[0], frames[0]))
    obs, R, terminated, _, _ = env.step(1)  # frames 1..4
    np.testing.assert_array_equal(obs, reference_frame(frames[4], frames[3]))
    assert (R, terminated) == (1 + 2 + 3 + 4, False)
    obs, R, terminated, _, _ = env.step(1)  # frames 5, 6: terminal, the skip stops
    np.testing.assert_array_equal(obs, reference_frame(frames[6], frames[5]))
    assert (R, terminated) == (5 + 6, True)


def test_stack_shifts_by_one_frame_and_seeds_repeat():
    envs = [make_atari_env(PONG, seed=1, frame_skip=2, stack=3) for _ in range(2)]
    firsts = [env.reset() for env in envs]
    np.testing.assert_array_equal(firsts[0][0], firsts[1][0])
    noops = firsts[0][1]["episode_frame_number"]
    assert 1 <= noops <= 30  # 1..noop_max NOOPs before the first phi
    raw = gymnasium.make(PONG, frameskip=1, repeat_action_probability=0.25, disable_env_checker=True)
    raw.reset(seed=1)
    x = [raw.reset()[0]]
    x += [raw.step(0)[0] for _ in range(noops)]
    np.testing.assert_array_equal(firsts[0][0], np.stack([reference_frame(x[-1], x[-2])] * 3))
    raw.close()
    previous = firsts[0][0]
    for action in [0, 2, 3, 2, 1, 3, 0, 2] * 4:
        obs, *_ = envs[0].step(action)
        twin, *_ = envs[1].step(action)
        np.testing.assert_array_equal(obs, twin)
        np.testing.assert_array_equal(obs[:-1], previous[1:])
        previous = obs
    assert obs.shape == (3, 84, 84)


@pytest.mark.parametrize("env_id, message", [("ALE/NoSuchGame-v5", "unknown environment"),
                                             ("CartPole-v1", "not an Atari")])
def test_unknown_or_non_atari_ids_are_config_errors(env_id, message):
    with pytest.raises(ConfigError, match=message):
        make_atari_env(env_id)


@pytest.mark.parametrize("options", [{"frame_skip": 0}, {"stack": 0}, {"repeat_action_probability": 1.5},
                                     {"max_episode_steps": 0}, {"noop_max": -1}])
def test_bad_settings_are_config_errors(options):
    with pytest.raises(ConfigError):
        make_atari_env(PONG, **options)


# --- FrameReplayMemory -------------------------------------------------------------------------------
def synthetic_episodes(rng, lengths, stack=4, side=6, padding="reset"):
    """Transitions (obs, id, reward, next_obs, terminated) of episodes with random frames, stacked
    as FrameStackObservation does ("reset": the first frame repeated; "zero": zero frames)."""
    transitions = []
    for length in lengths:
        first = rng.integers(0, 256, (side, side), dtype=np.uint8)
        pad = first if padding == "reset" else np.zeros_like(first)
        frames = deque([pad] * (stack - 1) + [first], maxlen=stack)
        for t in range(length):
            obs = np.stack(frames)
            frames.append(rng.integers(0, 256, (side, side), dtype=np.uint8))
            transitions.append((obs, len(transitions), float(rng.standard_normal()), np.stack(frames),
                                t == length - 1 and length % 2 == 0))
    return transitions


def assert_holds_exactly(memory, pushed, rng):
    """Sample many times: every sampled transition equals the one pushed with that id (the action)."""
    batch = memory.sample(256, rng)
    ids = batch.action.tolist()
    for k, name in enumerate(("obs", "action", "reward", "next_obs", "terminated")):
        expected = np.array([pushed[i][k] for i in ids], dtype=getattr(batch, name).dtype)
        np.testing.assert_array_equal(getattr(batch, name), expected, err_msg=name)
    return set(ids)


@pytest.mark.parametrize("padding", ["reset", "zero"])
@pytest.mark.parametrize("capacity", [1, 7, 40])
def test_frame_memory_returns_the_pushed_stacks_across_episodes_and_wrap_around(padding, capacity):
    rng = np.random.default_rng(capacity)
    pushed = synthetic_episodes(rng, [1, 5, 2, 30, 1, 1, 12, 3, 25], padding=padding)
    memory = FrameReplayMemory(capacity, (4, 6, 6))
    for n, transition in enumerate(pushed, 1):
        memory.push(*transition)
        assert 1 <= len(memory) <= min(n, capacity)
        seen = assert_holds_exactly(memory, pushed, rng)
        assert seen <= set(range(n - len(memory), n))  # only the newest len(memory) transitions
    assert n - 1 in seen


def test_frame_memory_stores_each_frame_once():
    memory = FrameReplayMemory(10, (4, 6, 6))
    pushed = synthetic_episodes(np.random.default_rng(0), [30])
    for transition in pushed:
        memory.push(*transition)
    assert len(memory) == 10  # one long episode: the full capacity
    assert memory.frames_pushed == 4 + 30  # the first stack, then one frame per transition
    naive = 10 * 2 * 4 * 36  # obs and next_obs of every transition
    assert memory.frames.nbytes == (10 + 4) * 36 < naive / 5


def test_frame_memory_checkpoint_round_trip_samples_and_continues_the_same():
    rng = np.random.default_rng(1)
    pushed = synthetic_episodes(rng, [9, 3, 14, 6])
    memory = FrameReplayMemory(12, (4, 6, 6))
    for transition in pushed[:-3]:
        memory.push(*transition)
    buffer = io.BytesIO()
    assert len(memory.state_arrays()["frames_wrapped"]) > 0  # the live frames wrap round the ring's end
    np.savez(buffer, **memory.state_arrays())
    buffer.seek(0)
    restored = FrameReplayMemory(12, (4, 6, 6))
    restored.load_state_arrays(dict(np.load(buffer, allow_pickle=False)))
    assert len(restored) == len(memory) and restored.nbytes == memory.nbytes
    for transition in pushed[-3:]:  # continues the episode: one new frame per push
        frames_before = restored.frames_pushed
        memory.push(*transition)
        restored.push(*transition)
        assert restored.frames_pushed == frames_before + 1
    a, b = memory.sample(64, np.random.default_rng(5)), restored.sample(64, np.random.default_rng(5))
    for name in ("obs", "action", "reward", "next_obs", "terminated"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert_holds_exactly(restored, pushed, rng)
    empty = FrameReplayMemory(12, (4, 6, 6))
    empty.load_state_arrays(FrameReplayMemory(12, (4, 6, 6)).state_arrays())
    assert len(empty) == 0
    with pytest.raises(CheckpointError, match="capacity"):
        FrameReplayMemory(13, (4, 6, 6)).load_state_arrays(memory.state_arrays())
    with pytest.raises(CheckpointError, match="incomplete"):
        restored.load_state_arrays({"frames": memory.frames})


def test_frame_memory_errors():
    memory = FrameReplayMemory(4, (4, 6, 6))
    with pytest.raises(ConfigError, match="empty"):
        memory.sample(1, np.random.default_rng(0))
    obs = np.zeros((4, 6, 6), dtype=np.uint8)
    with pytest.raises(ShapeError, match="obs has shape"):
        memory.push(obs[:3], 0, 0.0, obs, False)
    with pytest.raises(ShapeError, match="shifted"):
        memory.push(obs, 0, 0.0, obs + 1, False)
    with pytest.raises(ConfigError):
        FrameReplayMemory(0)
    with pytest.raises(ConfigError):
        FrameReplayMemory(4, (84, 84))


def test_env_to_memory_to_nature_cnn_on_a_sampled_batch():
    """The pieces of DQN on Atari end to end: Pong episodes (truncated after 15 steps) into a frame
    memory smaller than what was played, stacks sampled back exactly, a forward/backward pass of the
    Nature CNN on the batch scaled to [0, 1]."""
    env = make_atari_env(PONG, seed=2, max_episode_steps=15)
    memory, pushed, rng = FrameReplayMemory(24), [], np.random.default_rng(2)
    obs, _ = env.reset()
    while len(pushed) < 50:
        next_obs, reward, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
        pushed.append((obs, len(pushed), reward, next_obs, terminated))
        memory.push(*pushed[-1])
        obs = env.reset()[0] if terminated or truncated else next_obs
    assert 18 <= len(memory) <= 24  # 24 minus up to 4 frames per episode start in the ring
    assert_holds_exactly(memory, pushed, rng)
    batch = memory.sample(8, rng)
    net = nature_cnn(env.action_space.n, rng=np.random.default_rng(0))
    Q = net.forward(dev(batch.obs, dtype=np.float32) * (1 / 255), train=True)
    assert Q.shape == (8, env.action_space.n) and np.isfinite(host(Q)).all()
    net.backward(dev(np.ones(Q.shape, dtype=np.float32)))
    assert all(np.isfinite(host(g)).all() for g in net.grads.values())
    env.close()


# --- nature_cnn ---------------------------------------------------------------------------------------
def test_nature_cnn_shapes():
    net = nature_cnn(6, rng=np.random.default_rng(0))
    x = dev(np.random.default_rng(1).random((2, 4, 84, 84)), dtype=np.float32)
    net.forward(x, train=True)  # a training pass keeps each layer's output
    shapes = [tuple(layer.output.shape) for layer in net.layers]
    assert shapes[::2][:3] + shapes[6:8] + shapes[-1:] == [(2, 32, 20, 20), (2, 64, 9, 9), (2, 64, 7, 7), (2, 3136),
                                                           (2, 512), (2, 6)]
    assert sum(p.size for p in net.params.values()) == 1_687_206  # Mnih et al.'s network for 6 actions
    with pytest.raises(ShapeError):
        net.forward(dev(np.zeros((2, 3, 84, 84), dtype=np.float32)))
    with pytest.raises(ConfigError):
        nature_cnn(0, rng=np.random.default_rng(0))


def test_nature_cnn_gradient_on_sampled_entries(float64):
    """backward's dC/dtheta for C = sum(Q * upstream) against central differences on 6 random
    entries of each of the 10 parameter arrays, on two 84 x 84 inputs."""
    net = nature_cnn(3, stack=2, rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    for p in net.params.values():  # nonzero biases, so that their gradients are checked too
        p[...] += dev(rng.standard_normal(p.shape) * 0.01)
    x = dev(rng.random((2, 2, 84, 84)))
    upstream = dev(rng.standard_normal((2, 3)))
    net.forward(x, train=True)
    net.backward(upstream)
    h = 1e-6
    for name, p in net.params.items():
        flat, grad = p.reshape(-1), host(net.grads[name]).reshape(-1)
        picks = rng.choice(flat.size, size=min(6, flat.size), replace=False)
        numeric = np.empty(len(picks))
        for i, j in enumerate(picks.tolist()):
            old = float(flat[j])
            flat[j] = old + h
            plus = float((net.forward(x) * upstream).sum())
            flat[j] = old - h
            minus = float((net.forward(x) * upstream).sum())
            flat[j] = old
            numeric[i] = (plus - minus) / (2 * h)
        assert relative_error(grad[picks], numeric) < 1e-6, name


def test_nature_cnn_matches_torch_forward_and_backward():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    net = nature_cnn(4, rng=np.random.default_rng(0))
    peer = nn.Sequential(nn.Conv2d(4, 32, 8, 4), nn.ReLU(), nn.Conv2d(32, 64, 4, 2), nn.ReLU(), nn.Conv2d(64, 64, 3, 1),
                         nn.ReLU(), nn.Flatten(), nn.Linear(3136, 512), nn.ReLU(), nn.Linear(512, 4)).double()
    ours = [layer for layer in net.layers if layer.params]
    theirs = [layer for layer in peer if isinstance(layer, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        for a, b in zip(ours, theirs):
            b.weight.copy_(torch.from_numpy(host(a.params["W"]).astype(np.float64)))
            b.bias.copy_(torch.from_numpy(host(a.params["b"]).astype(np.float64)))
    rng = np.random.default_rng(2)
    x, upstream = rng.random((3, 4, 84, 84)), rng.standard_normal((3, 4))
    Q = host(net.forward(dev(x, dtype=np.float32), train=True))
    net.backward(dev(upstream, dtype=np.float32))
    Q_torch = peer(torch.from_numpy(x))
    (Q_torch * torch.from_numpy(upstream)).sum().backward()
    np.testing.assert_allclose(Q, Q_torch.detach().numpy(), rtol=1e-4, atol=1e-5)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(host(a.grads["W"]), b.weight.grad.numpy(), rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(host(a.grads["b"]), b.bias.grad.numpy(), rtol=1e-3, atol=1e-4)

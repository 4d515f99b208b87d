"""Memory of the replay memory D for the lecture's N = 10^6 Atari transitions (5.3).

Allocates a FrameReplayMemory of capacity N, fills all of it with synthetic 84 x 84 frames in
episodes of a fixed length (stacked as FrameStackObservation does: the first frame repeated), and
reports the storage bytes (nbytes), the resident memory of the process (VmRSS/VmHWM from
/proc/self/status), the push and sample rates, against the naive storage of obs and next_obs,
2 x 4 x 84 x 84 bytes per transition. Needs about 7.1 GB of free RAM at N = 10^6.

    .venv/bin/python bench/replay_memory.py [--capacity 1000000] [--episode 1000]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from tiefnet.rl.atari import FrameReplayMemory

STACK, SIDE = 4, 84


def status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in KiB (VmRSS: resident now, VmHWM: peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def fill(memory: FrameReplayMemory, transitions: int, episode: int, rng: np.random.Generator) -> None:
    """Push ``transitions`` transitions: episodes of ``episode`` steps over 256 random frames."""
    pool = rng.integers(0, 256, (256, SIDE, SIDE), dtype=np.uint8)
    pushed = 0
    while pushed < transitions:
        steps = min(episode, transitions - pushed)
        picks = rng.integers(0, len(pool), steps + 1)
        frames = pool[np.concatenate([np.repeat(picks[:1], STACK - 1), picks])]  # (m - 1 + steps + 1, 84, 84)
        for t in range(steps):  # obs = frames[t : t + m], next_obs = frames[t + 1 : t + m + 1], views
            memory.push(frames[t : t + STACK], int(picks[t]) % 6, 0.0, frames[t + 1 : t + STACK + 1], t == steps - 1)
        pushed += steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", type=int, default=1_000_000)
    parser.add_argument("--episode", type=int, default=1000, help="steps per synthetic episode")
    args = parser.parse_args()
    rss_start = status_kib("VmRSS")
    memory = FrameReplayMemory(args.capacity, (STACK, SIDE, SIDE))
    rss_allocated = status_kib("VmRSS")  # numpy.zeros: pages are mapped lazily, resident once written
    start = time.perf_counter()
    fill(memory, args.capacity, args.episode, np.random.default_rng(0))
    fill_s = time.perf_counter() - start
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    for _ in range(1000):
        memory.sample(32, rng)
    sample_ms = (time.perf_counter() - start)  # 1000 batches -> ms per batch
    naive = args.capacity * 2 * STACK * SIDE * SIDE
    GB = 1e9
    result = {
        "capacity": args.capacity, "held": len(memory), "episode_steps": args.episode,
        "nbytes_GB": round(memory.nbytes / GB, 3), "frames_GB": round(memory.frames.nbytes / GB, 3),
        "naive_obs_next_obs_GB": round(naive / GB, 3), "ratio_naive_to_ours": round(naive / memory.nbytes, 2),
        "rss_start_GB": round(rss_start * 1024 / GB, 3), "rss_after_alloc_GB": round(rss_allocated * 1024 / GB, 3),
        "rss_filled_GB": round(status_kib("VmRSS") * 1024 / GB, 3), "rss_peak_GB": round(status_kib("VmHWM") * 1024 / GB, 3),
        "fill_s": round(fill_s, 1), "push_per_s": round(args.capacity / fill_s), "sample_32_ms": round(sample_ms, 3),
    }
    print(json.dumps(result))
    del memory  # freed before the process ends (the machine is shared)


if __name__ == "__main__":
    main()

"""The grid world of lecture 5.1: its transition probabilities and rewards, maps of other layouts,
the printed table, and the simulated environment a model-free agent acts in."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from tiefnet.errors import ConfigError
from tiefnet.rl.gridworld import ARROWS, GridWorldEnv, from_map, lecture_gridworld, load_map

UP, DOWN, RIGHT, LEFT = (ARROWS.index(a) for a in "↑↓→←")


def successors(world, cell, action) -> dict:
    P = world.mdp.dense()[action, world.state(*cell)]
    return {world.cells[s]: round(float(p), 12) for s, p in enumerate(P) if p > 0}


def test_lecture_layout_and_rewards():
    world = lecture_gridworld()
    assert (world.width, world.height, world.walls) == (4, 3, frozenset({(2, 2)}))
    assert world.cells[world.start] == (1, 1) and len(world.cells) == 11
    R = dict(zip(world.cells, world.mdp.R))
    assert R.pop((4, 3)) == 1.0 and R.pop((4, 2)) == -1.0 and set(R.values()) == {-0.04}
    terminal = {world.cells[s] for s in np.flatnonzero(world.mdp.terminal)}
    assert terminal == {(4, 3), (4, 2)} and world.mdp.gamma == 1.0


def test_transitions_as_in_the_lecture():
    """P(s + (0,1) | s, ↑) = 0.8, P(s + (1,0) | s, ↑) = P(s + (-1,0) | s, ↑) = 0.1; blocked moves stay."""
    world = lecture_gridworld()
    assert successors(world, (1, 2), RIGHT) == {(1, 2): 0.8, (1, 3): 0.1, (1, 1): 0.1}  # into the wall (2,2)
    assert successors(world, (1, 1), UP) == {(1, 2): 0.8, (2, 1): 0.1, (1, 1): 0.1}  # left: off the board
    assert successors(world, (3, 2), UP) == {(3, 3): 0.8, (4, 2): 0.1, (3, 2): 0.1}
    assert successors(world, (3, 1), LEFT) == {(2, 1): 0.8, (3, 2): 0.1, (3, 1): 0.1}
    assert successors(world, (2, 3), DOWN) == {(2, 3): 0.8, (1, 3): 0.1, (3, 3): 0.1}  # down: the wall
    assert (world.mdp.dense()[:, world.state(4, 3)] == 0).all()  # an exit has no successor


def test_options_reward_gamma_and_slip():
    world = from_map("S . +1", reward=-0.5, gamma=0.9, p_intended=0.6)
    assert world.mdp.gamma == 0.9 and world.mdp.R.tolist() == [-0.5, -0.5, 1.0]
    assert successors(world, (1, 1), RIGHT) == {(2, 1): 0.6, (1, 1): 0.4}


def test_map_with_another_layout():
    world = from_map("""
        ; a 5x2 world
        . # . . +2
        S . . # -1
    """)
    assert (world.width, world.height, world.cells[world.start]) == (5, 2, (1, 1))
    assert world.walls == frozenset({(2, 2), (4, 1)})
    assert world.mdp.R[world.state(5, 2)] == 2.0 and world.mdp.terminal[world.state(5, 1)]
    with pytest.raises(ConfigError, match="not a field"):
        world.state(2, 2)


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("S . +1\n. .", "row 2 has 2 fields"),
    ("S x +1", "'x'"),
    (". . +1", "exactly one start"),
    ("S S +1", "exactly one start"),
    ("S . .", "no exit"),
])
def test_bad_maps(text, message):
    with pytest.raises(ConfigError, match=message):
        from_map(text)


def test_load_map(tmp_path):
    path = tmp_path / "world.txt"
    path.write_text("S . +1\n")
    assert len(load_map(path).cells) == 3
    with pytest.raises(ConfigError, match="cannot read"):
        load_map(tmp_path / "missing.txt")


def test_table_like_the_lecture():
    world = lecture_gridworld()
    lines = world.table(world.arrows(np.array([0, 3, 3, 3, 0, 0, -1, 2, 2, 2, -1]))).splitlines()
    assert lines[0].split() == ["3", "→", "→", "→", "E+1"]
    assert lines[1].split() == ["2", "↑", "■", "↑", "E-1"]
    assert lines[2].split() == ["1", "↑", "←", "←", "←"]
    assert lines[3].split() == ["1", "2", "3", "4"]


def test_env_samples_P_and_pays_R_of_the_current_state():
    world = lecture_gridworld()
    env = GridWorldEnv(world, np.random.default_rng(0))
    counts = Counter()
    for _ in range(20_000):
        env.reset()
        env.s = world.state(3, 2)
        s, r, terminated, truncated = env.step(UP)
        counts[world.cells[s]] += 1
        assert r == -0.04 and not terminated and not truncated
    expected = successors(world, (3, 2), UP)
    assert set(counts) == set(expected)
    for cell, p in expected.items():
        assert counts[cell] / 20_000 == pytest.approx(p, abs=0.01)


def test_env_exit_step_and_time_limit():
    world = lecture_gridworld()
    env = GridWorldEnv(world, np.random.default_rng(0), max_episode_steps=3)
    env.reset()
    env.s = world.state(4, 2)  # standing on the -1 exit: one more step collects R and ends the episode
    assert env.step(UP)[1:3] == (-1.0, True)
    env.reset()
    truncated = [env.step(LEFT)[3] for _ in range(3)]  # ← from (1,1) mostly bumps into the edge
    assert truncated == [False, False, True]


def test_env_exploring_starts_and_seeding():
    world = lecture_gridworld()
    env = GridWorldEnv(world, np.random.default_rng(1), exploring_starts=True)
    starts = {world.cells[env.reset()] for _ in range(500)}
    assert starts == {c for s, c in enumerate(world.cells) if not world.mdp.terminal[s]}
    walks = []
    for _ in range(2):
        env = GridWorldEnv(world, np.random.default_rng(7))
        env.reset()
        walks.append([env.step(UP)[0] for _ in range(30)])
    assert walks[0] == walks[1]
    assert GridWorldEnv(world, np.random.default_rng(0)).reset() == world.start

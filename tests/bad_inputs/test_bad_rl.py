"""Bad input to ``tiefnet gridworld``, ``qlearn``, ``dqn train`` and ``dqn play`` (issue 10, "Trust no
folder"): environment ids that would import a module, crafted run folders and checkpoints, settings too
large for the memory, bad map files. Each is one line ``tiefnet: error: ...`` and exit code 1."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tiefnet.checkpoint import read_npz, save_model, write_npz
from tiefnet.cli import main

TINY = ["--steps", "300", "--learning-starts", "100", "--batch-size", "16", "--hidden", "16", "--check-every",
        "0", "--eval-episodes", "1", "--log-every", "100", "--checkpoint-every", "150", "--target-every", "50",
        "--memory", "300", "--no-progress"]
EVIL = "from pathlib import Path\nPath({marker!r}).write_text('imported')\n"


def one_line_error(capsys, code: int, *fragments: str) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 1, (code, err)
    assert "Traceback" not in captured.err and len(err.splitlines()) == 1, err
    assert err.startswith("tiefnet: error: "), err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.fixture
def evil(tmp_path, monkeypatch) -> Path:
    """evilmod.py in the current folder (on sys.path), which writes the marker file when imported."""
    marker = tmp_path / "imported.txt"
    (tmp_path / "evilmod.py").write_text(EVIL.format(marker=str(marker)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "evilmod", raising=False)
    return marker


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dqn") / "run"
    assert main(["dqn", "train", "CartPole-v1", *TINY, "--out", str(out)]) == 0
    return out


def copy_run(trained: Path, tmp_path: Path) -> Path:
    run = tmp_path / "copy"
    shutil.copytree(trained, run)
    return run


def set_model_env(run: Path, env_id) -> None:
    arrays, meta = read_npz(run / "model.npz")
    meta["info"]["env"] = env_id
    write_npz(run / "model.npz", arrays, meta)
    (run / "model.json").write_text(json.dumps(meta))


# --- 1. environment ids never import a module unless the command line says so ----------------------
def test_dqn_play_refuses_a_module_id_from_the_folder(trained, tmp_path, evil, capsys):
    run = copy_run(trained, tmp_path)
    set_model_env(run, "evilmod:CartPole-v1")
    one_line_error(capsys, main(["dqn", "play", "--model", str(run)]), "evilmod:CartPole-v1", "never imported")
    assert not evil.exists()


@pytest.mark.parametrize("extra", [[], ["--allow-env-module"]])
def test_dqn_resume_refuses_a_module_id_from_config_json(trained, tmp_path, evil, capsys, extra):
    run = copy_run(trained, tmp_path)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "env": "evilmod:CartPole-v1"}))
    code = main(["dqn", "train", "--resume", "--steps", "400", "--no-progress", *extra, "--out", str(run)])
    one_line_error(capsys, code, "evilmod:CartPole-v1", "never imported")
    assert not evil.exists()


@pytest.mark.parametrize("argv", [["qlearn", "evilmod:FrozenLake-v1"], ["dqn", "train", "evilmod:CartPole-v1"],
                                  ["dqn", "evilmod:CartPole-v1"]])
def test_a_module_id_needs_allow_env_module(tmp_path, evil, capsys, argv):
    one_line_error(capsys, main([*argv, "--out", str(tmp_path / "out")]), "--allow-env-module")
    assert not evil.exists() and not (tmp_path / "out").exists()


def test_allow_env_module_imports_the_module(tmp_path, evil, capsys):
    code = main(["qlearn", "evilmod:FrozenLake-v1", "--allow-env-module", "--steps", "1000", "--eval-episodes", "2",
                 "--json"])
    assert code == 0 and evil.exists()
    assert json.loads(capsys.readouterr().out)["env"] == "evilmod:FrozenLake-v1"


@pytest.mark.parametrize("argv", [["qlearn", "no_such_module_xyz:FrozenLake-v1"],
                                  ["dqn", "train", "no_such_module_xyz:CartPole-v1"],
                                  ["qlearn", "a:b:c"], ["dqn", "train", ":"]])
def test_allow_env_module_with_a_missing_module_is_one_line(tmp_path, capsys, argv):
    one_line_error(capsys, main([*argv, "--allow-env-module", "--out", str(tmp_path / "out")]), argv[-1])


@pytest.mark.parametrize("argv, fragment", [
    (["qlearn", "x/y"], "unknown environment"), (["qlearn", "/"], "unknown environment"),
    (["dqn", "train", "Bad Id!"], "unknown environment"), (["dqn", "train", " "], "not a gymnasium id"),
    (["qlearn", "Blackjack-v1"], "Discrete"), (["dqn", "train", "Blackjack-v1"], "Box"),
    (["dqn", "train", "Pendulum-v1"], "discrete action space"), (["dqn", "train", "FrozenLake-v1"], "Box"),
    (["dqn", "train", "ALE/NoSuchGame-v5"], "unknown environment"),
])
def test_nonsense_ids_and_spaces(tmp_path, capsys, argv, fragment):
    one_line_error(capsys, main([*argv, "--out", str(tmp_path / "out")]), fragment)


# --- 2. qlearn on Atari: ALE registered, then "not Discrete" -----------------------------------
def test_qlearn_atari_says_the_space_is_not_discrete():
    """In a fresh interpreter: no earlier test has registered the ALE ids."""
    done = subprocess.run([sys.executable, "-c", "import sys; from tiefnet.cli import main; sys.exit(main())",
                           "qlearn", "ALE/Pong-v5"], capture_output=True, text=True, timeout=300)
    err = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert err.startswith("tiefnet: error: ") and "Box observation space" in err and "Discrete" in err, err


# --- 3. gamma = 0 is gamma = 0 ------------------------------------------------------------------
def test_qlearn_gamma_zero_is_a_myopic_agent(capsys):
    assert main(["qlearn", "FrozenLake-v1", "--gamma", "0", "--steps", "2000", "--eval-episodes", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["gamma"] == 0.0


def test_qlearn_gamma_zero_on_the_grid_world_is_refused(capsys):
    one_line_error(capsys, main(["qlearn", "--gamma", "0"]), "gamma=0")


# --- 4. seeds -------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["qlearn", "--seed", "-1"], ["dqn", "train", "--seed", "-1"],
                                  ["qlearn", "--seed", str(2**64)]])
def test_negative_seeds(tmp_path, capsys, argv):
    one_line_error(capsys, main([*argv, "--out", str(tmp_path / "out")]), "seed")


def test_dqn_play_negative_seed(trained, capsys):
    one_line_error(capsys, main(["dqn", "play", "--model", str(trained), "--seed", "-1"]), "seed")


# --- 5. sizes that cannot fit in memory -------------------------------------------------------------
@pytest.mark.parametrize("option, value, part", [
    ("--memory", 10**12, "the replay memory"), ("--hidden", str(10**9), "mini-batch"),
    ("--batch-size", 10**9, "mini-batch"), ("--eval-episodes", 10**12, "evaluation episodes"),
])
def test_dqn_sizes_beyond_the_memory(tmp_path, capsys, option, value, part):
    argv = ["dqn", "train", option, str(value), "--out", str(tmp_path / "out"), "--no-progress"]
    if option == "--batch-size":
        argv += ["--memory", str(10**9)]
    err = one_line_error(capsys, main(argv), "needs about", part, "memory limit")
    assert " TB" in err or " GB" in err
    assert not (tmp_path / "out").exists()  # refused before the run folder is made


def test_dqn_batch_larger_than_the_memory(tmp_path, capsys):
    one_line_error(capsys, main(["dqn", "train", "--batch-size", "1000", "--memory", "100", "--out",
                                 str(tmp_path / "out")]), "batch_size=1000")


# --- 6. grid-world maps -------------------------------------------------------------------------------
def test_gridworld_map_of_a_million_fields(tmp_path, capsys):
    rows = [". " * 999 + "." for _ in range(1000)]
    rows[0], rows[-1] = ". " * 999 + "+1", "S " + ". " * 998 + "."
    path = tmp_path / "big.txt"
    path.write_text("\n".join(rows) + "\n")
    assert main(["gridworld", "--map", str(path), "--gamma", "0.5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("value iteration, gamma = 0.5") and "converged" in out


@pytest.mark.parametrize("content, fragment", [
    (b"\xff\xfe\x00\x01binary", "cannot read"), (b"", "empty"), (b"; only a comment\n\n", "empty"),
    (b"S . +1\n. .\n", "row 2 has 2 fields"), (b". . +1\n", "start field S"), (b"S S +1\n", "start field S"),
    (b"S x +1\n", "'x'"), (b"S . nan\n", "'nan'"), (b"S . inf\n", "'inf'"), (b"S . .\n", "no exit"),
    (b"S . +1\x00\n", "NUL"), (b"S " + b"y" * 10**6 + b" +1\n", "yyyy'..."),
])
def test_bad_map_files(tmp_path, capsys, content, fragment):
    path = tmp_path / "map.txt"
    path.write_bytes(content)
    err = one_line_error(capsys, main(["gridworld", "--map", str(path)]), fragment)
    assert len(err) < 500


def test_map_that_is_too_large_or_not_a_file(tmp_path, capsys):
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as f:
        f.truncate(65 * 2**20)  # a sparse file: 65 MiB of NUL bytes
    one_line_error(capsys, main(["gridworld", "--map", str(huge)]), "larger than 64 MiB")
    one_line_error(capsys, main(["gridworld", "--map", str(tmp_path)]), "not a file")
    one_line_error(capsys, main(["gridworld", "--map", "/dev/zero"]), "not a file")


# --- 7. crafted DQN checkpoints -----------------------------------------------------------------------
def _progress(name, value):
    def change(arrays, meta):
        meta["progress"][name] = value
    return change


def _meta(path, value):
    def change(arrays, meta):
        *parents, last = path
        for key in parents:
            meta = meta[key]
        meta[last] = value
    return change


def _array(name, value):
    def change(arrays, meta):
        arrays[name] = value(arrays[name])
    return change


CRAFTED = {
    "episode_actions a string": _progress("episode_actions", "abc"),
    "episode_actions out of range": _progress("episode_actions", [7]),
    "episode_actions negative": _progress("episode_actions", [-1]),
    "episode_actions floats": _progress("episode_actions", [0.5]),
    "episode_actions too many": _progress("episode_actions", [0] * 1000),
    "episode_actions beyond the episode's end": _progress("episode_actions", [0] * 200),
    "step negative": _progress("step", -5), "step a string": _progress("step", "150"),
    "step a float": _progress("step", 1e30), "episode above step": _progress("episode", 10**6),
    "episode_seed negative": _progress("episode_seed", -1), "episode_return a list": _progress("episode_return", []),
    "losses not numbers": _progress("losses", ["x"]), "losses a dict": _progress("losses", {}),
    "best_return a string": _progress("best_return", "high"), "best_step above step": _progress("best_step", 10**9),
    "seconds negative": _progress("seconds", -1.0), "metrics_lines a bool": _progress("metrics_lines", True),
    "progress a list": _meta(["progress"], [1, 2]), "progress without step": _meta(["progress"], {"episode": 0}),
    "optimizer t negative": _meta(["optimizer", "t"], -3), "optimizer eta changed": _meta(["optimizer", "eta"], 5.0),
    "optimizer another": _meta(["optimizer", "name"], "sgd"), "rng garbage": _meta(["rng"], {"state": 1}),
    "rng another generator": _meta(["rng", "bit_generator"], "MT19937"),
    "rng state out of range": _meta(["rng", "state", "state"], -1),
    "memory action out of range": _array("memory.action", lambda a: np.full_like(a, 5)),
    "memory action negative": _array("memory.action", lambda a: np.full_like(a, -1)),
    "memory reward NaN": _array("memory.reward", lambda a: np.full_like(a, np.nan)),
    "memory terminated 7": _array("memory.terminated", lambda a: np.full_like(a, 7)),
    "memory obs strings": _array("memory.obs", lambda a: np.full(a.shape, "x")),
    "memory counters 2-d": _array("memory.counters", lambda a: a.reshape(1, -1)),
    "optimizer array shape": _array("opt.m0", lambda a: a[:1]),
    "optimizer array NaN": _array("opt.v0", lambda a: np.full_like(a, np.nan)),
    "q-network shape": _array("q.0.W", lambda a: a[:1]),
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_checkpoints_are_refused_on_resume(trained, tmp_path, capsys, name):
    run = copy_run(trained, tmp_path)
    arrays, meta = read_npz(run / "checkpoint.npz")
    CRAFTED[name](arrays, meta)
    write_npz(run / "checkpoint.npz", arrays, meta)
    code = main(["dqn", "train", "--resume", "--steps", "400", "--no-progress", "--out", str(run)])
    one_line_error(capsys, code, "checkpoint.npz")


# --- 8. model folders that do not fit their environment; play's options ------------------------------
def _model_folder(tmp_path: Path, model, env_id: str = "CartPole-v1", app: str = "dqn") -> Path:
    folder = tmp_path / "model"
    save_model(folder, model, {"kind": "dqn", "env": env_id, "step": 1, "check_mean_return": None}, app=app)
    return folder


def test_dqn_play_models_that_are_no_q_network_of_the_env(tmp_path, capsys):
    from tiefnet.nn import Conv2d, Sequential
    from tiefnet.rl.dqn import mlp_q_network

    rng = np.random.default_rng(0)
    three = _model_folder(tmp_path / "a", mlp_q_network(4, 3, [8], rng))  # CartPole has 2 actions
    one_line_error(capsys, main(["dqn", "play", "--model", str(three)]), "one Q-value per action (2,)")
    five = _model_folder(tmp_path / "b", mlp_q_network(5, 2, [8], rng))  # CartPole observations have 4 numbers
    one_line_error(capsys, main(["dqn", "play", "--model", str(five)]), "does not take", "(4,)")
    conv = _model_folder(tmp_path / "c", Sequential(Conv2d(1, 2, 3, rng=rng)))
    one_line_error(capsys, main(["dqn", "play", "--model", str(conv)]), "does not take")
    mnist = _model_folder(tmp_path / "d", mlp_q_network(4, 2, [8], rng), app="mnist")
    one_line_error(capsys, main(["dqn", "play", "--model", str(mnist)]), "not a DQN model")


@pytest.mark.parametrize("env_id", [5, None, "", "NoSuchEnv-v0", "ALE/NoSuchGame-v5"])
def test_dqn_play_bad_env_ids_in_the_folder(trained, tmp_path, capsys, env_id):
    run = copy_run(trained, tmp_path)
    set_model_env(run, env_id)
    one_line_error(capsys, main(["dqn", "play", "--model", str(run)]))


@pytest.mark.parametrize("episodes", ["0", "-1"])
def test_dqn_play_episodes(trained, capsys, episodes):
    one_line_error(capsys, main(["dqn", "play", "--model", str(trained), "--episodes", episodes]), "--episodes")


def test_dqn_play_too_many_episodes(trained, capsys):
    one_line_error(capsys, main(["dqn", "play", "--model", str(trained), "--episodes", str(10**12)]), "memory limit")


def test_dqn_play_gif_paths(trained, tmp_path, capsys):
    one_line_error(capsys, main(["dqn", "play", "--model", str(trained), "--gif", str(tmp_path / "no" / "a.gif")]),
                   "does not exist")
    assert not (tmp_path / "no").exists()
    target = tmp_path / "target.txt"
    target.write_text("keep me")
    (tmp_path / "link.gif").symlink_to(target)
    one_line_error(capsys, main(["dqn", "play", "--model", str(trained), "--gif", str(tmp_path / "link.gif")]),
                   "symbolic link")
    assert target.read_text() == "keep me"
    one_line_error(capsys, main(["dqn", "play", "--model", str(trained), "--gif", str(tmp_path)]), "not a file")


# --- 9. and 10. options -------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, fragment", [
    (["dqn", "train", "--hidden", "30,,10"], "hidden"), (["dqn", "train", "--hidden", "-3"], "hidden"),
    (["dqn", "train", "--steps", "0"], "steps"), (["qlearn", "--steps", "0"], "steps"),
    (["dqn", "train", "--gamma", "nan"], "gamma"), (["dqn", "train", "--eta", "inf"], "eta"),
    (["dqn", "train", "--eta", "-1"], "eta"), (["dqn", "train", "--epsilon-start", "nan"], "epsilon_start"),
    (["dqn", "train", "--epsilon-end", "-0.1"], "epsilon_end"), (["dqn", "train", "--error-clip", "nan"], "error_clip"),
    (["qlearn", "--gamma", "nan"], "gamma"), (["qlearn", "--gamma", "-0.5"], "gamma"),
    (["qlearn", "--epsilon", "nan"], "epsilon"), (["qlearn", "--eta-c", "nan"], "eta"),
    (["qlearn", "--eta", "nan", "--eta-schedule", "constant"], "eta"), (["qlearn", "--eta", "0"], "eta"),
    (["qlearn", "--q0", "nan"], "q0"), (["qlearn", "--reward", "nan"], "reward"),
    (["qlearn", "--reward", "inf"], "reward"), (["qlearn", "--eval-episodes", "0"], "eval_episodes"),
    (["gridworld", "--gamma", "nan"], "gamma"), (["gridworld", "--reward", "nan"], "reward"),
    (["gridworld", "--epsilon", "nan"], "epsilon"), (["gridworld", "--epsilon", "0"], "epsilon"),
    (["gridworld", "--method", "modified", "--k", "-1"], "k=-1"), (["gridworld", "--max-sweeps", "0"], "max_sweeps"),
])
def test_bad_options(tmp_path, capsys, argv, fragment):
    out = ["--out", str(tmp_path / "out")] if argv[0] != "gridworld" else []
    one_line_error(capsys, main([*argv, *out]), fragment)


def test_dqn_config_json_of_the_wrong_types(trained, tmp_path, capsys):
    run = copy_run(trained, tmp_path)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "gamma": "0.99"}))
    one_line_error(capsys, main(["dqn", "train", "--resume", "--no-progress", "--out", str(run)]), "gamma")

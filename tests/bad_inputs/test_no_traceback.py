"""A sweep of bad inputs across every command (issue 10): each ends in exactly one line
``tiefnet ...: error: ...`` on stderr and exit code 1 (bad input) or 2 (usage), within seconds: never
a traceback, a warning, a hang or a run that starts anyway. The cases of each application, with the
behaviour they check in detail, are in the other modules of tests/bad_inputs/."""
from __future__ import annotations

import re
import signal

import pytest

from tiefnet.cli import main

HUGE = "1000000000000"  # 10^12
NUMBERS = ["-1", "nan", "inf", "-inf"]

MNIST = ["mnist", "--train-size", "100", "--epochs", "1", "--no-progress"]
CHARRNN = ["charrnn", "train", "--steps", "2", "--hidden", "8", "--no-progress"]
QLEARN = ["qlearn", "--steps", "50", "--no-progress"]
DQN = ["dqn", "train", "--steps", "50", "--no-progress"]


def options(command: list[str], names: list[str], values: list[str]) -> list[list[str]]:
    return [[*command, f"--{name}", value] for name in names for value in values]


CASES = [
    ["nonsense"], ["mnist", "--nonsense"], ["charrnn"] + ["--nonsense"], ["dqn", "play"],
    # tiefnet mnist
    *options(MNIST, ["kernel", "epochs", "batch-size", "expand", "train-size", "patience", "early-stop", "seed",
                     "threads"], ["-1", "x"]),
    *options(MNIST, ["eta", "lmbda", "dropout"], NUMBERS),
    *options(MNIST, ["eta"], ["0"]), *options(MNIST, ["dropout"], ["1"]),
    *options(MNIST, ["model", "pool", "activation", "cost", "reg", "init", "optimizer"], ["nonsense", ""]),
    *options(MNIST, ["hidden"], ["30,,10", "abc", "-5", "0"]),
    *options(MNIST, ["seed"], ["-1", str(2**64)]),
    *options(MNIST, ["train-size"], ["70000"]), *options(MNIST, ["expand"], [HUGE]),
    *options(MNIST, ["hidden"], [HUGE]),
    [*MNIST, "--model", "cnn", "--features", ""], [*MNIST, "--model", "cnn", "--features", "20,0"],
    [*MNIST, "--model", "cnn", "--kernel", "30"],
    [*MNIST, "--data", "/nonexistent"], [*MNIST, "--data", "/etc/hostname"], [*MNIST, "--resume"],
    [*MNIST, "--resume", "--out", "empty"],
    # tiefnet predict / ensemble
    ["predict", "--model", "/nonexistent", "x.png"], ["predict", "--model", "empty", "x.png"],
    ["predict", "--model", "/etc", "x.png"], ["predict"],
    ["ensemble", "--models", "/nonexistent"], ["ensemble", "--models", "empty", "empty"],
    ["ensemble", "--models", "empty", "--threads", "0"], ["ensemble", "--models", "empty", "--split", "train"],
    # tiefnet experiment
    ["experiment", "nonsense"], ["experiment", "perceptron", "--epochs", "-1"],
    ["experiment", "perceptron", "--seed", "-1"], ["experiment", "slow-learning", "--threads", "0"],
    # tiefnet charrnn train / sample
    *options(CHARRNN, ["layers", "embed", "seq-length", "batch-size", "steps", "eval-every", "seed", "threads",
                       "sample-length"], ["-1", "x"]),
    *options(CHARRNN, ["eta", "clip", "held-out", "temperature"], NUMBERS),
    *options(CHARRNN, ["cell"], ["gru", ""]), *options(CHARRNN, ["held-out"], ["0", "1"]),
    *options(CHARRNN, ["hidden"], [HUGE, "0"]),
    [*CHARRNN, "/nonexistent.txt"], [*CHARRNN, "/etc"], [*CHARRNN, "empty.txt"], [*CHARRNN, "binary.bin"],
    [*CHARRNN, "one.txt"], [*CHARRNN, "--resume"], [*CHARRNN, "--resume", "--out", "empty"],
    ["charrnn", "sample", "--model", "/nonexistent"], ["charrnn", "sample", "--model", "empty"],
    *options(["charrnn", "sample", "--model", "empty"], ["temperature"], ["0", *NUMBERS]),
    *options(["charrnn", "sample", "--model", "empty"], ["length", "seed"], ["-1"]),
    # tiefnet gridworld
    *options(["gridworld"], ["gamma"], ["0", "1.5", *NUMBERS]),
    *options(["gridworld"], ["reward", "epsilon"], ["nan", "inf"]),
    *options(["gridworld", "--method", "modified"], ["k", "max-sweeps"], ["0", "-1"]),
    ["gridworld", "--map", "/nonexistent"], ["gridworld", "--map", "/etc"], ["gridworld", "--map", "empty.txt"],
    ["gridworld", "--map", "binary.bin"], ["gridworld", "--map", "ragged.txt"], ["gridworld", "--method", "x"],
    # tiefnet qlearn
    [*QLEARN, "Nonsense-v0"], [*QLEARN, "evilmodule:Env-v0"], [*QLEARN, "ALE/Pong-v5"], [*QLEARN, "CartPole-v1"],
    [*QLEARN, "--allow-env-module", "missing_module_xyz:Env-v0"],
    *options(QLEARN, ["steps", "seed", "eval-episodes", "max-episode-steps"], ["-1"]),
    *options(QLEARN, ["epsilon", "eta", "gamma", "eta-c"], NUMBERS),
    *options(QLEARN, ["epsilon", "gamma"], ["1.5"]), *options(QLEARN, ["eta-schedule"], ["x"]),
    [*QLEARN, "--map", "/nonexistent"],
    # tiefnet dqn train / play
    [*DQN, "Nonsense-v0"], [*DQN, "evilmodule:Env-v0"], [*DQN, "FrozenLake-v1"],
    [*DQN, "--allow-env-module", "missing_module_xyz:Env-v0"],
    *options(DQN, ["steps", "memory", "batch-size", "target-every", "epsilon-steps", "learning-starts",
                   "train-every", "check-every", "eval-episodes", "checkpoint-every", "log-every", "seed",
                   "threads"], ["-1"]),
    *options(DQN, ["gamma", "eta", "epsilon-start", "epsilon-end", "error-clip"], NUMBERS),
    *options(DQN, ["memory", "batch-size"], [HUGE]), *options(DQN, ["hidden"], ["30,,10", "x", HUGE]),
    *options(DQN, ["optimizer"], ["x"]), [*DQN, "--resume"], [*DQN, "--resume", "--out", "empty"],
    ["dqn", "play", "--model", "/nonexistent"], ["dqn", "play", "--model", "empty"],
    *options(["dqn", "play", "--model", "empty"], ["episodes", "seed"], ["-1"]),
]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh current folder with the files the cases name."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "one.txt").write_text("a")
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "ragged.txt").write_text(". . +1\n. #\nS . -1 . .\n")
    return tmp_path


class TookTooLong(Exception):
    pass


def _alarm(signum, frame):
    raise TookTooLong("a bad input must be refused within seconds, not start a run")


@pytest.mark.parametrize("argv", CASES, ids=[" ".join(argv) for argv in CASES])
def test_a_bad_input_is_one_line(workdir, capsys, argv):
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(60)
    try:
        code = main(list(argv))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    err = capsys.readouterr().err
    assert code in (1, 2), (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and re.match(r"^tiefnet( [a-z]+)*: error: \S", lines[0]), err


@pytest.mark.parametrize("argv, command", [(["mnist", "--nonsense"], "tiefnet mnist"),
                                           (["dqn", "train", "--nonsense"], "tiefnet dqn train"),
                                           (["charrnn", "sample", "--model", "x", "--nonsense"], "tiefnet charrnn sample")])
def test_an_unknown_option_points_to_its_own_command_help(capsys, argv, command):
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == (f"{command}: error: unrecognized arguments: --nonsense "
                                               f"(see {command} --help)")

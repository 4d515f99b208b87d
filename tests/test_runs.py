"""The run folder (tiefnet.runs.RunFolder) that every application writes: config.json, metrics.jsonl
(cut back to what a checkpoint holds on resume), summary.json, never through a symlink; --out that
is a file; Ctrl-C in the middle of tiefnet mnist / dqn train / charrnn train: exit 130 and one line
that names the folder and, where the application can resume, the command that continues the run."""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

import tiefnet.rl.dqn_run
import tiefnet.text.charrnn
import tiefnet.train
import tiefnet.train_steps
from tiefnet.cli import main
from tiefnet.errors import ConfigError
from tiefnet.files import write_text
from tiefnet.runs import RunFolder, RunInterrupted


@dataclass(frozen=True)
class Config:
    eta: float = 0.5
    name: str = "tiny"


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_config_metrics_and_summary_are_written(tmp_path):
    out = tmp_path / "run"
    with RunFolder(out).start(Config(eta=0.25)) as folder:
        metrics = folder.metrics()
        metrics.append({"epoch": 1, "cost": 0.5})
        metrics.append({"epoch": 2, "cost": 0.25})
        assert lines(out / "metrics.jsonl") == [{"epoch": 1, "cost": 0.5}, {"epoch": 2, "cost": 0.25}]  # flushed
        assert metrics.lines == 2 and metrics.entries()[1]["epoch"] == 2
        folder.write_json("summary.json", {"cost": 0.25, "policy": "→"}, ascii=False)
    assert json.loads((out / "config.json").read_text()) == {"eta": 0.25, "name": "tiny"}
    assert (out / "summary.json").read_text(encoding="utf-8") == '{\n  "cost": 0.25,\n  "policy": "→"\n}\n'
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "metrics.jsonl", "summary.json"]  # no temp files


def test_metrics_are_cut_back_to_the_checkpoint_on_resume(tmp_path):
    folder = RunFolder(tmp_path).start(Config())
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({"step": s}) + "\n" for s in (1, 2, 3)))
    log = folder.metrics(keep_lines=2)  # the checkpoint was written after line 2 (DQN)
    log.append({"step": 4})
    log.close()
    assert lines(tmp_path / "metrics.jsonl") == [{"step": 1}, {"step": 2}, {"step": 4}]
    log = folder.metrics(entries=[{"epoch": 1}])  # the checkpoint holds the entries themselves (mnist)
    log.append({"epoch": 2})
    log.close()
    assert lines(tmp_path / "metrics.jsonl") == [{"epoch": 1}, {"epoch": 2}]
    assert folder.metrics().lines == 0 and (tmp_path / "metrics.jsonl").read_text() == ""  # a new run


@pytest.mark.parametrize("name", ["config.json", "metrics.jsonl", "summary.json"])
def test_a_symlink_in_the_folder_is_not_written_through(tmp_path, name):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    out = tmp_path / "run"
    out.mkdir()
    (out / name).symlink_to(victim)
    with RunFolder(out).start(Config()) as folder:
        folder.metrics().append({"epoch": 1})
        folder.write_json("summary.json", {"done": True})
    assert victim.read_text() == "keep me\n"
    assert not (out / name).is_symlink() and (out / name).is_file()


def test_write_text_replaces_a_symlink_instead_of_following_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (tmp_path / "samples.txt").symlink_to(victim)
    write_text(tmp_path / "samples.txt", "new\n")
    assert victim.read_text() == "keep me\n" and (tmp_path / "samples.txt").read_text() == "new\n"


def test_out_that_is_a_file_is_refused_before_anything_runs(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        RunFolder(target)


@pytest.mark.parametrize("argv", [
    ["charrnn", "train", "--steps", "1"],
    ["dqn", "train", "--steps", "10"],
    ["qlearn", "--steps", "1000"],
    ["experiment", "perceptron"],
])
def test_cli_out_that_is_a_file_is_one_line(tmp_path, capsys, argv):
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert main([*argv, "--out", str(target), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [f"tiefnet: error: --out {target} is a file, not a folder"]
    assert target.read_text() == "x"


def interrupt_after(monkeypatch, module, name: str, calls: int) -> None:
    """Ctrl-C at the ``calls``-th call of ``module.name`` (a training step inside the loop)."""
    original, count = getattr(module, name), [0]

    def step(*args, **kwargs):
        count[0] += 1
        if count[0] == calls:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, step)


def interrupted_line(capsys, code: int) -> str:
    assert code == 130
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


MNIST = ["mnist", "--train-size", "200", "--epochs", "2", "--batch-size", "20", "--no-progress"]  # 10 steps/epoch


def test_ctrl_c_in_mnist_names_the_folder_and_the_resume_command(tmp_path, capsys, monkeypatch):
    out = tmp_path / "mnist"
    interrupt_after(monkeypatch, tiefnet.train_steps, "train_step", 15)  # in epoch 2: epoch 1 is saved
    err = interrupted_line(capsys, main([*MNIST, "--out", str(out)]))
    command = f"tiefnet mnist --resume --out {shlex.quote(str(out))}"
    assert err == f"tiefnet: interrupted; the last checkpoint is in {out}: continue with {command}"
    assert [e["epoch"] for e in lines(out / "metrics.jsonl")] == [1]
    monkeypatch.undo()
    assert main(shlex.split(command)[1:] + ["--no-progress"]) == 0  # the command it names continues the run
    assert [e["epoch"] for e in lines(out / "metrics.jsonl")] == [1, 2]


def test_ctrl_c_before_the_first_checkpoint(tmp_path, capsys, monkeypatch):
    out = tmp_path / "mnist"
    interrupt_after(monkeypatch, tiefnet.train_steps, "train_step", 1)
    err = interrupted_line(capsys, main([*MNIST, "--out", str(out)]))
    assert err == f"tiefnet: interrupted; before the first checkpoint; {out} holds nothing to resume from"


DQN = ["--steps", "300", "--learning-starts", "50", "--batch-size", "8", "--hidden", "8", "--check-every", "0",
       "--eval-episodes", "1", "--checkpoint-every", "100", "--memory", "300", "--no-progress"]


def test_ctrl_c_in_dqn_train_names_the_folder_and_the_resume_command(tmp_path, capsys, monkeypatch):
    out = tmp_path / "dqn"
    interrupt_after(monkeypatch, tiefnet.rl.dqn_run, "train_step", 100)  # step 150: the checkpoint of step 100
    err = interrupted_line(capsys, main(["dqn", "train", *DQN, "--out", str(out)]))
    assert err == (f"tiefnet: interrupted; the last checkpoint is in {out}: "
                   f"continue with tiefnet dqn train --resume --out {out}")
    monkeypatch.undo()
    assert main(["dqn", "train", "--resume", "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "summary.json").read_text())["steps"] == 300


def test_ctrl_c_in_charrnn_train_names_the_folder(tmp_path, capsys, monkeypatch):
    text = tmp_path / "hallo.txt"
    text.write_text("hallo " * 100)
    out = tmp_path / "charrnn"
    interrupt_after(monkeypatch, tiefnet.text.charrnn, "train_step", 3)
    code = main(["charrnn", "train", str(text), "--hidden", "8", "--layers", "1", "--steps", "5", "--eval-every", "2",
                 "--sample-length", "5", "--no-progress", "--out", str(out)])
    err = interrupted_line(capsys, code)
    assert err == (f"tiefnet: interrupted; the last checkpoint is in {out}: "
                   f"continue with tiefnet charrnn train --resume --out {out}")
    assert [e["step"] for e in lines(out / "metrics.jsonl")] == [2]  # the evaluation before Ctrl-C is kept


def test_run_interrupted_is_a_keyboard_interrupt(tmp_path):
    """Python callers that catch KeyboardInterrupt still do; the message says where the files are."""
    with pytest.raises(KeyboardInterrupt) as caught:
        with RunFolder(tmp_path, resume_command="tiefnet mnist --resume").start(Config()):
            raise KeyboardInterrupt
    assert isinstance(caught.value, RunInterrupted) and str(tmp_path) in str(caught.value)


def test_ctrl_c_of_a_new_run_never_points_at_an_older_runs_checkpoint(tmp_path, capsys, monkeypatch):
    """A fresh run into a folder that holds another run's checkpoint, stopped before its own first one:
    resuming would continue the other run, so the line does not offer it."""
    out = tmp_path / "mnist"
    assert main([*MNIST, "--epochs", "1", "--out", str(out)]) == 0
    interrupt_after(monkeypatch, tiefnet.train_steps, "train_step", 1)
    err = interrupted_line(capsys, main([*MNIST, "--eta", "0.5", "--out", str(out), "--overwrite"]))
    assert err == f"tiefnet: interrupted; before the first checkpoint; {out} holds nothing to resume from"


def test_a_symlinked_metrics_file_is_not_read_into_the_folder(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text('{"line": "of someone else"}\n')
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").symlink_to(outside)
    folder = RunFolder(run).start(Config())
    with pytest.raises(ConfigError, match="is a symbolic link"):
        folder.metrics(keep_lines=1)
    assert outside.read_text() == '{"line": "of someone else"}\n'


def test_an_existing_run_is_not_overwritten_without_overwrite(tmp_path, capsys):  # issue 10
    out = tmp_path / "mnist"
    assert main([*MNIST, "--epochs", "1", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main([*MNIST, "--epochs", "1", "--eta", "0.5", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tiefnet: error: --out {out} already holds files") and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing written
    assert main([*MNIST, "--epochs", "1", "--eta", "0.5", "--out", str(out), "--overwrite"]) == 0
    assert json.loads((out / "config.json").read_text())["eta"] == 0.5

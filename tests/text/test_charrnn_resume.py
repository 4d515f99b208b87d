"""Checkpoint and resume of the char-rnn: ``tiefnet charrnn train`` killed (SIGKILL) at a random moment
and continued with ``--resume`` ends with the same metrics.jsonl (apart from "seconds"), model.npz and
samples as the uninterrupted run; a resumed run may be longer; the warm-up text travels in model.json."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy
import pytest

from tiefnet.cli import main
from tiefnet.text.charrnn import Config, load_sampler, prepare, run, sample, warmup_text

WORDS = "the king and queen of rome said to my lord good night come here now".split()
TINY = ["--layers", "2", "--hidden", "32", "--seq-length", "20", "--batch-size", "8", "--eval-every", "150",
        "--checkpoint-every", "20", "--sample-length", "40", "--no-progress"]


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    rng = numpy.random.default_rng(0)
    path = tmp_path_factory.mktemp("text") / "words.txt"
    path.write_text("\n".join(" ".join(rng.choice(WORDS, 8)) + "." for _ in range(400)))
    return path


def cli(*argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tiefnet.cli", "charrnn", "train", *argv],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err


def metrics(out):
    """metrics.jsonl without its time field."""
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (out / "metrics.jsonl").read_text().splitlines()]


def assert_same_run(a, b) -> None:
    assert metrics(a) == metrics(b)
    with numpy.load(a / "model.npz") as x, numpy.load(b / "model.npz") as y:
        assert sorted(x.files) == sorted(y.files)
        for name in x.files:
            numpy.testing.assert_array_equal(x[name], y[name], err_msg=name)
    assert (a / "samples.txt").read_text() == (b / "samples.txt").read_text()


def test_sigkill_at_a_random_moment_then_resume_is_the_uninterrupted_run(text, tmp_path):
    steps = ["--steps", "600"]
    finished(cli(str(text), *TINY, *steps, "--out", str(tmp_path / "whole")))
    out = tmp_path / "killed"
    process = cli(str(text), *TINY, *steps, "--out", str(out))
    deadline = time.monotonic() + 60
    while not (out / "checkpoint.npz").exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(random.uniform(0.0, 0.3))
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    finished(cli("--resume", "--out", str(out)))  # every setting from the folder's config.json
    assert_same_run(tmp_path / "whole", out)


def test_resume_with_more_steps_continues_the_run(text, tmp_path):
    tiny = dict(layers=1, hidden=16, seq_length=20, batch_size=8, eval_every=50, checkpoint_every=0,
                sample_length=20)
    run(Config(text=str(text), steps=150, **tiny), tmp_path / "whole", progress=False, log=lambda line: None)
    run(Config(text=str(text), steps=100, **tiny), tmp_path / "longer", progress=False, log=lambda line: None)
    assert [m["step"] for m in metrics(tmp_path / "longer")] == [50, 100]
    assert main(["charrnn", "train", "--resume", "--out", str(tmp_path / "longer"), "--steps", "150"]) == 0
    assert_same_run(tmp_path / "whole", tmp_path / "longer")


def test_resume_refuses_other_settings(text, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["charrnn", "train", str(text), *TINY, "--steps", "20", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["charrnn", "train", "--resume", "--out", str(out), "--hidden", "16"]) == 1
    err = capsys.readouterr().err
    assert "--hidden 32 -> 16" in err and len(err.splitlines()) == 1, err
    assert main(["charrnn", "train", "--resume", "--out", str(out), "--steps", "10"]) == 1
    assert "step 20 is not in [1, 10]" in capsys.readouterr().err


def test_a_fresh_run_into_a_used_folder_needs_resume_or_overwrite(text, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["charrnn", "train", str(text), *TINY, "--steps", "20", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["charrnn", "train", str(text), *TINY, "--steps", "20", "--out", str(out)]) == 1
    assert "--resume" in capsys.readouterr().err


def test_the_stream_position_follows_the_step(text):
    """Corpus.position_after(step) is where the training loop's blocks have got to."""
    corpus = prepare(Config(text=str(text), batch_size=8, seq_length=300))
    L, T, position = corpus.data.shape[1], corpus.T, 0
    for step in range(1, 40):
        position = 0 if position + T >= L else position
        position += T
        assert corpus.position_after(step) == position, step


def test_the_warmup_is_the_start_of_the_training_text_cut_at_a_break():
    text = "First Citizen:\nBefore we proceed.\n\nAll:\nSpeak, speak.\n\nFirst Citizen:\nYou are all resolved"
    assert warmup_text(text, 70) == "First Citizen:\nBefore we proceed.\n\nAll:\nSpeak, speak.\n\n"
    assert warmup_text("hallo " * 100, 500) == "hallo " * 83
    assert warmup_text("x" * 600, 500) == "x" * 500


def test_model_folder_keeps_the_warmup_and_samples_after_it(text, tmp_path):
    out = tmp_path / "run"
    tiny = dict(layers=1, hidden=16, seq_length=20, batch_size=8, steps=30, eval_every=30, sample_length=20)
    run(Config(text=str(text), **tiny), out, progress=False, log=lambda line: None)
    model, vocab, warmup = load_sampler(out)
    assert warmup == warmup_text(text.read_text()) and warmup.endswith("\n")
    assert json.loads((out / "model.json").read_text())["info"]["warmup"] == warmup
    rng = numpy.random.default_rng
    assert sample(model, vocab, "the", 10, 1.0, rng(1), warmup) == sample(model, vocab, "the", 10, 1.0, rng(1),
                                                                           warmup)
    assert len(sample(model, vocab, "", 10, 1.0, rng(1), warmup)) == 10  # no prime: continues the warm-up

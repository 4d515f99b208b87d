"""The char-rnn of lecture 4.1/4.4.1 on the lecture's "hallo" text: it learns, it samples, its run
folder reloads through the CLI, and bad settings are one-line errors."""
from __future__ import annotations

import json
import math

import numpy
import pytest

from tiefnet.cli import main
from tiefnet.errors import ConfigError
from tiefnet.text.charrnn import Config, TimeFlatten, build_model, load_sampler, sample, streams

HALLO = "hallo " * 200
SMALL = {"layers": 1, "hidden": 32, "seq_length": 20, "batch_size": 8, "steps": 300, "eval_every": 100,
         "sample_length": 20}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("charrnn")
    text = folder / "hallo.txt"
    text.write_text(HALLO)
    from tiefnet.text.charrnn import run

    summary = run(Config(text=str(text), **SMALL), folder / "run", progress=False)
    return folder / "run", summary


def test_learns_hallo(trained):
    out, summary = trained
    V = 5  # ' ', 'a', 'h', 'l', 'o'
    assert summary["vocabulary_size"] == V
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [100, 200, 300]
    assert metrics[-1]["validation_loss"] < 0.25 * math.log(V)  # far below guessing uniformly
    assert metrics[-1]["validation_bpc"] == pytest.approx(metrics[-1]["validation_loss"] / math.log(2))
    assert summary["final_validation_loss"] == metrics[-1]["validation_loss"]


def test_run_folder(trained):
    out, summary = trained
    for name in ("config.json", "metrics.jsonl", "model.npz", "model.json", "summary.json", "loss.png",
                 "samples.txt"):
        assert (out / name).is_file(), name
    assert json.loads((out / "config.json").read_text())["hidden"] == 32
    assert summary["chars_per_second"] > 0


def test_sample_continues_hallo(trained):
    model, vocab, _ = load_sampler(trained[0])
    text = sample(model, vocab, "h", 4, temperature=0.1, rng=numpy.random.default_rng(0))
    assert text == "hallo"


def test_cli_sample(trained, capsys):
    assert main(["charrnn", "sample", "--model", str(trained[0]), "--prime", "hal", "--length", "12",
                 "--temperature", "0.1", "--seed", "0"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("hallo") and len(out) == 15


def test_cli_train(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text(HALLO)
    assert main(["charrnn", "train", str(text), "--cell", "rnn", "--hidden", "8", "--steps", "3",
                 "--eval-every", "2", "--sample-length", "5", "--no-progress", "--out", str(tmp_path / "r")]) == 0
    assert "nats/char" in capsys.readouterr().out
    assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 2  # steps 2 and 3


@pytest.mark.parametrize("argv, fragment", [
    (["charrnn", "train", "--cell", "gru"], "cell='gru'"),
    (["charrnn", "train", "--layers", "0"], "layers=0"),
    (["charrnn", "train", "--eta", "-1"], "eta=-1"),
    (["charrnn", "train", "--steps", "x"], "--steps"),
    (["charrnn", "sample", "--model", "/nonexistent/run"], "no such model folder"),
])
def test_cli_errors(argv, fragment, capsys):
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and fragment in err, err


def test_sample_errors(trained, capsys):
    assert main(["charrnn", "sample", "--model", str(trained[0]), "--prime", "xyz"]) == 1
    assert "not in the vocabulary" in capsys.readouterr().err
    model, vocab, _ = load_sampler(trained[0])
    with pytest.raises(ConfigError, match="temperature"):
        sample(model, vocab, "h", 3, temperature=0.0)


def test_model_shapes_and_streams():
    model = build_model(7, Config(layers=2, hidden=6, embed=3), numpy.random.default_rng(0))
    p = model.forward(numpy.zeros((2, 4), dtype=numpy.int64), train=True)
    assert p.shape == (2 * 4, 7) and numpy.allclose(p.sum(axis=1), 1, atol=1e-5)
    assert any(isinstance(layer, TimeFlatten) for layer in model.layers)
    assert streams(numpy.arange(10), 3).tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


def test_one_loaded_model_samples_for_many_threads_at_once(trained):
    """Sampling passes the recurrent state explicitly: the model's carried state is neither read nor
    written, so threads sampling from one model get what each would get alone."""
    from concurrent.futures import ThreadPoolExecutor

    out, _ = trained
    model, vocab, _ = load_sampler(out)
    alone = [sample(model, vocab, "h", 40, 1.0, numpy.random.default_rng(seed)) for seed in range(8)]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda seed: sample(model, vocab, "h", 40, 1.0, numpy.random.default_rng(seed)),
                                 range(8)))
    assert together == alone
    assert all(layer.state is None for layer in model.layers if hasattr(layer, "reset_state"))

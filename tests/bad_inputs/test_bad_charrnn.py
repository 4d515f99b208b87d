"""Bad inputs to ``tiefnet charrnn train|sample``: each is one line ``tiefnet: error: ...`` (exit 1, or 2
for a usage error) or correct behaviour, never a traceback: seeds, a diverging run, texts that cannot
train, models too large for memory, model folders whose metadata disagrees with their arrays, sample
settings, and crafted checkpoints given to --resume."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy
import pytest

from tiefnet.checkpoint import read_model, read_npz, save_model, write_npz
from tiefnet.cli import main

TINY = ["--layers", "1", "--hidden", "8", "--seq-length", "10", "--batch-size", "4", "--eval-every", "10",
        "--sample-length", "5", "--no-progress"]


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "hallo.txt"
    path.write_text("hallo welt, hallo tiefnet.\n" * 40)
    return path


@pytest.fixture(scope="module")
def trained(text, tmp_path_factory):
    out = tmp_path_factory.mktemp("charrnn") / "run"
    assert main(["charrnn", "train", str(text), *TINY, "--steps", "20", "--out", str(out)]) == 0
    return out


def one_line_error(capsys, code: int, fragment: str, exit_code: int = 1) -> str:
    err = capsys.readouterr().err.strip()
    assert code == exit_code, err
    assert len(err.splitlines()) == 1 and err.startswith("tiefnet") and "Traceback" not in err, err
    assert fragment in err, err
    return err


def refused_at_once(*argv: str) -> str:
    """The one-line error of ``tiefnet charrnn ARGV`` run in a subprocess that may take 30 s at most."""
    try:
        result = subprocess.run([sys.executable, "-m", "tiefnet.cli", "charrnn", *argv], capture_output=True,
                                text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("still running after 30 s: not refused")
    err = result.stderr.strip()
    assert result.returncode == 1 and len(err.splitlines()) == 1 and err.startswith("tiefnet: error:"), err
    return err


def sample(model, *options: str) -> int:
    return main(["charrnn", "sample", "--model", str(model), *options])


def craft(trained, tmp_path, info=None, arrays=None):
    """A copy of the trained model folder with its info (model.json and model.npz) or arrays changed."""
    model, meta = read_model(trained)
    for name, value in (arrays or {}).items():
        model.arrays()[name][...] = value
    save_model(tmp_path / "crafted", model, {**meta["info"], **(info or {})}, app="charrnn")
    return tmp_path / "crafted"


# --- seeds -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", ["-1", str(2**64)])
def test_sample_seed_out_of_range(trained, capsys, seed):
    one_line_error(capsys, sample(trained, "--seed", seed), f"seed={seed}")


def test_train_seed_out_of_range(text, tmp_path, capsys):
    code = main(["charrnn", "train", str(text), *TINY, "--steps", "2", "--seed", "-1", "--out", str(tmp_path / "r")])
    one_line_error(capsys, code, "seed=-1")
    assert not (tmp_path / "r").exists()


# --- a diverging run ---------------------------------------------------------------------------------
def test_a_huge_eta_is_training_diverged_and_the_last_good_model_stays(text, tmp_path, capsys):
    out = tmp_path / "r"
    code = main(["charrnn", "train", str(text), "--hidden", "16", "--layers", "1", "--batch-size", "32",
                 "--steps", "30", "--eval-every", "10", "--sample-length", "20", "--eta", "1e30", "--no-progress",
                 "--out", str(out)])
    err = one_line_error(capsys, code, "training diverged at step")
    assert "smaller --eta" in err
    kept = json.loads((out / "model.json").read_text())["info"]["step"] if (out / "model.json").exists() else None
    assert kept is None or f"model.npz keeps step {kept}" in err


# --- texts that cannot train -------------------------------------------------------------------------
@pytest.mark.parametrize("content, fragment", [
    (b"", "at least two characters"),
    (b"a", "at least two characters"),
    (b"\xff\xfe\x00binary", "not UTF-8"),
    (b"ab", "too short"),
])
def test_texts_that_cannot_train(tmp_path, capsys, content, fragment):
    path = tmp_path / "t.txt"
    path.write_bytes(content)
    one_line_error(capsys, main(["charrnn", "train", str(path), *TINY, "--steps", "2", "--out", str(tmp_path / "r")]),
                   fragment)


def test_a_folder_or_a_device_as_the_text(tmp_path, capsys):
    one_line_error(capsys, main(["charrnn", "train", str(tmp_path), "--out", str(tmp_path / "r")]), "a folder")
    one_line_error(capsys, main(["charrnn", "train", "/dev/null", "--out", str(tmp_path / "r")]),
                   "/dev/null: not a regular file")


def test_a_text_of_one_character_kind_and_a_huge_seq_length_train(tmp_path, capsys):
    path = tmp_path / "a.txt"
    path.write_text("a" * 300)
    out = tmp_path / "r"
    assert main(["charrnn", "train", str(path), *TINY, "--steps", "3", "--seq-length", str(10**12),
                 "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["vocabulary_size"] == 1


@pytest.mark.parametrize("options", [["--hidden", "1000000"], ["--embed", str(10**12)],
                                     ["--layers", "64", "--hidden", "100000"]])
def test_a_model_too_large_for_memory_is_refused_with_its_size(text, tmp_path, capsys, options):
    code = main(["charrnn", "train", str(text), *TINY, *options, "--out", str(tmp_path / "r")])
    err = one_line_error(capsys, code, "more than tiefnet's memory limit")
    assert "parameters" in err


def test_a_sane_limit_on_the_layers(text, tmp_path):
    """Refused at once, not a model that takes minutes to build and hours a step (a subprocess with a
    timeout: the old code would)."""
    err = refused_at_once("train", str(text), *TINY, "--layers", str(10**5), "--out", str(tmp_path / "r"))
    assert "layers=100000 must be at most 64" in err


def test_sample_length_of_the_run_is_capped(text, tmp_path):
    err = refused_at_once("train", str(text), *TINY, "--sample-length", str(10**9), "--out", str(tmp_path / "r"))
    assert "sample_length=1000000000 must be at most 1,000,000" in err


# --- model folders whose metadata disagrees with their arrays -----------------------------------------
@pytest.mark.parametrize("change, fragment", [
    (lambda chars: chars[:-1], "has 13 characters, but the model reads 14"),
    (lambda chars: chars + "X", "has 15 characters, but the model reads 14"),
    (lambda chars: chars[:-1] + chars[0], "repeats"),
    (lambda chars: list(chars), "not a char-rnn model"),
    (lambda chars: "", "empty"),
])
def test_a_vocabulary_that_does_not_fit_the_model(trained, tmp_path, capsys, change, fragment):
    chars = json.loads((trained / "model.json").read_text())["info"]["chars"]
    assert len(chars) == 14
    one_line_error(capsys, sample(craft(trained, tmp_path, {"chars": change(chars)}), "--seed", "0"), fragment)


@pytest.mark.parametrize("warmup", ["XYZ", 17, "a" * 20_000])
def test_a_bad_warmup_text(trained, tmp_path, capsys, warmup):
    one_line_error(capsys, sample(craft(trained, tmp_path, {"warmup": warmup})), "warm-up text")


def test_huge_weights_make_nan_probabilities_a_clear_error(trained, tmp_path, capsys):
    folder = craft(trained, tmp_path, arrays={"1.U": 3e38, "1.W": -3e38})
    one_line_error(capsys, sample(folder, "--seed", "0", "--prime", "hallo"), "NaN or infinite")


def test_a_model_of_another_application(tmp_path, capsys):
    from tiefnet.nn import Dense

    save_model(tmp_path / "dense", Dense(3, 2), {"cost": "quadratic"}, app="mnist")
    one_line_error(capsys, sample(tmp_path / "dense"), "not a char-rnn model")


# --- sample settings -----------------------------------------------------------------------------------
@pytest.mark.parametrize("options, fragment", [
    (["--prime", "hallo QX"], "'QX' are not in the vocabulary"),
    (["--temperature", "0"], "temperature=0.0"),
    (["--temperature", "-1"], "temperature=-1.0"),
    (["--temperature", "nan"], "temperature=nan"),
    (["--temperature", "inf"], "temperature=inf"),
    (["--length", "-1"], "length=-1"),
    (["--length", "x"], "--length"),
])
def test_bad_sample_settings(trained, capsys, options, fragment):
    code = sample(trained, *options)
    one_line_error(capsys, code, fragment, exit_code=2 if options[1] == "x" else 1)


def test_a_tiny_temperature_samples_the_most_likely_characters(trained, capsys):
    assert sample(trained, "--temperature", "1e-320", "--prime", "hallo", "--length", "20", "--seed", "0") == 0
    assert len(capsys.readouterr().out.strip("\n")) == 25


def test_a_huge_length_is_refused_at_once(trained):
    """Not a sample that runs for hours (a subprocess with a timeout: the old code would)."""
    err = refused_at_once("sample", "--model", str(trained), "--length", str(10**12))
    assert "length=1000000000000 must be from 0 to 1,000,000" in err


# --- crafted checkpoints given to --resume ----------------------------------------------------------
@pytest.fixture
def resumable(text, tmp_path):
    out = tmp_path / "run"
    assert main(["charrnn", "train", str(text), *TINY, "--steps", "30", "--checkpoint-every", "5",
                 "--out", str(out)]) == 0
    return out


def tamper(folder, meta=None, progress=None, arrays=None, drop=()):
    """Rewrite folder/checkpoint.npz with parts of its meta, progress or arrays replaced (an array by a
    new one, or by a function of the old one), or arrays dropped."""
    path = folder / "checkpoint.npz"
    old_arrays, old_meta = read_npz(path)
    old_meta["progress"].update(progress or {})
    old_meta.update(meta or {})
    changed = {k: v(old_arrays[k]) if callable(v) else v for k, v in (arrays or {}).items()}  # v(old) or new
    new_arrays = {k: v for k, v in {**old_arrays, **changed}.items() if k not in drop}
    write_npz(path, new_arrays, old_meta)


STATE = "state.0.0"  # h of the first recurrent layer, (N, H) = (4, 8)


@pytest.mark.parametrize("change, fragment", [
    (dict(meta={"format": "something else"}), "not a tiefnet char-rnn checkpoint"),
    (dict(meta={"text_sha256": "0" * 64}), "another text"),
    (dict(progress={"step": 10**9}), "step 1000000000 is not in [1, 30]"),
    (dict(progress={"step": -1}), "step -1 is not in"),
    (dict(progress={"step": "20"}), "step '20' is not in"),
    (dict(progress={"step": True}), "step True is not in"),
    (dict(progress={"position": 10**9}), "is not where step 30 leaves the streams"),
    (dict(progress={"chars": 1}), "is not where step 30 leaves the streams"),
    (dict(progress={"train_losses": [float("nan")] * 0 + ["x"]}), "train_losses"),
    (dict(progress={"metrics": [{"step": 1}]}), "metrics entries"),
    (dict(progress={"metrics": "x"}), "metrics entries"),
    (dict(progress={"seconds": -5}), "seconds"),
    (dict(progress={"extra": 1}), "progress entry"),
    (dict(meta={"progress": None}), "progress entry"),
    (dict(meta={"optimizer": {"name": "sgd", "eta": 0.002}}), "optimizer state"),
    (dict(meta={"rng": {"bit_generator": "PCG64", "state": "x"}}), "random generator state"),
    (dict(meta={"rng": None}), "random generator state"),
    (dict(arrays={STATE: numpy.zeros((3, 8), numpy.float32)}), f"array {STATE} is float32 (3, 8)"),
    (dict(arrays={STATE: numpy.full((4, 8), numpy.nan, numpy.float32)}), f"array {STATE} holds NaN"),
    (dict(arrays={STATE: numpy.full((4, 8), 1e300)}), f"array {STATE} holds NaN"),
    (dict(arrays={STATE: numpy.array([["x"] * 8] * 4)}), f"array {STATE} is <U1"),
    (dict(arrays={"opt.v0": lambda v: -numpy.ones_like(v)}), "array opt.v0 holds"),
    (dict(arrays={"extra": numpy.zeros(2)}), "unexpected arrays extra"),
    (dict(drop=(STATE,)), f"missing arrays {STATE}"),
    (dict(arrays={"model.1.W": numpy.zeros((3, 3), numpy.float32)}), "array model.1.W"),
])
def test_a_crafted_checkpoint_is_one_line(resumable, capsys, change, fragment):
    tamper(resumable, **change)
    capsys.readouterr()
    code = main(["charrnn", "train", "--resume", "--out", str(resumable), "--steps", "30"])
    one_line_error(capsys, code, fragment)


def test_a_checkpoint_that_is_not_an_npz_file(resumable, capsys):
    (resumable / "checkpoint.npz").write_bytes(b"not a zip file")
    one_line_error(capsys, main(["charrnn", "train", "--resume", "--out", str(resumable)]), "not a readable .npz")


def test_a_pickled_array_in_the_checkpoint_is_refused(resumable, capsys):
    numpy.savez(resumable / "checkpoint.npz", evil=numpy.array([{"x": 1}], dtype=object))
    one_line_error(capsys, main(["charrnn", "train", "--resume", "--out", str(resumable)]), "checkpoint.npz")


def test_resume_without_a_checkpoint_or_without_out(tmp_path, capsys):
    one_line_error(capsys, main(["charrnn", "train", "--resume", "--out", str(tmp_path)]), "no checkpoint.npz")
    one_line_error(capsys, main(["charrnn", "train", "--resume"]), "--resume needs --out")

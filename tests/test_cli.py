"""Smoke tests of the ``tiefnet`` command line with tiny budgets, and its error contract:
bad input gives one clear line on stderr and a non-zero exit, never a traceback."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
from PIL import Image, ImageDraw

from tiefnet.cli import main

SHIPPED = Path(__import__("tiefnet.data.mnist", fromlist=["x"]).__file__).parent / "mnist"
TINY = ["--train-size", "500", "--epochs", "2", "--no-progress"]
CNN_TINY = ["--model", "cnn", "--train-size", "200", "--epochs", "1", "--no-progress"]
SMALL_CNN = [*CNN_TINY, "--features", "4", "--hidden", "10"]  # a cheaper CNN where the default net is not the point


def _one_line_error(capsys, code: int, *fragments: str) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code != 0
    assert "Traceback" not in captured.err
    assert len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    assert main(["mnist", *TINY, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def small_cnn(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cnn")
    assert main(["mnist", *SMALL_CNN, "--out", str(out)]) == 0
    return out


def test_mnist_run_folder(trained):
    for name in ("metrics.jsonl", "summary.json", "model.npz", "model.json", "curves.png", "config.json"):
        assert (trained / name).is_file(), name
    lines = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in lines] == [1, 2]
    for e in lines:
        assert {"epoch", "train_cost", "validation_accuracy", "test_accuracy", "seconds"} <= set(e)
        assert 0.0 <= e["test_accuracy"] <= 1.0 and 0.0 <= e["validation_accuracy"] <= 1.0
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["test_accuracy"] == lines[-1]["test_accuracy"]
    assert summary["best_test_accuracy"] == max(e["test_accuracy"] for e in lines)
    assert summary["options"]["hidden"] == "30" and summary["options"]["eta"] == 3.0
    assert summary["test_accuracy"] > 0.25  # 500 images, 2 epochs: well above chance (0.1)


def test_resume_continues_to_the_same_result(tmp_path, trained):
    out = tmp_path / "resumed"
    assert main(["mnist", "--train-size", "500", "--epochs", "1", "--no-progress", "--out", str(out)]) == 0
    assert main(["mnist", *TINY, "--out", str(out), "--resume"]) == 0
    a = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    strip = lambda es: [{k: v for k, v in e.items() if k != "seconds"} for e in es]  # noqa: E731
    assert strip(a) == strip(b)
    with numpy.load(out / "model.npz") as x, numpy.load(trained / "model.npz") as y:
        for key in ("0.W", "0.b", "2.W", "2.b"):
            numpy.testing.assert_array_equal(x[key], y[key])


def test_cnn_run_folder_and_predict(tmp_path, capsys):
    cnn_trained = tmp_path / "cnn"
    assert main(["mnist", *CNN_TINY, "--out", str(cnn_trained)]) == 0  # the chapter-6 net
    for name in ("metrics.jsonl", "summary.json", "model.npz", "model.json", "curves.png", "config.json",
                 "checkpoint.npz"):
        assert (cnn_trained / name).is_file(), name
    config = json.loads((cnn_trained / "config.json").read_text())
    assert (config["model"], config["features"], config["hidden"], config["activation"], config["cost"]) == \
        ("cnn", "20,40", "100", "relu", "log-likelihood")  # --hidden defaults to 100 for a cnn
    architecture = json.loads((cnn_trained / "model.json").read_text())["architecture"]["layers"]
    assert [layer["type"] for layer in architecture] == ["Reshape", "Conv2d", "MaxPool2d", "ReLU", "Conv2d", "MaxPool2d",
                                                         "ReLU", "Flatten", "Dense", "ReLU", "Dense", "Softmax"]
    [epoch] = [json.loads(line) for line in (cnn_trained / "metrics.jsonl").read_text().splitlines()]
    assert epoch["epoch"] == 1 and epoch["test_accuracy"] > 0.2  # 200 images, one epoch: above chance
    capsys.readouterr()
    assert main(["predict", "--model", str(cnn_trained), str(_digit(tmp_path / "one.png"))]) == 0
    out = capsys.readouterr().out.strip()
    probabilities = [float(part.split(": ")[1]) for part in out.split("(")[1].rstrip(")").split("  ")]
    assert 0 <= int(out.split(": ")[1].split()[0]) <= 9 and sum(probabilities) <= 1.0 + 1e-6


def test_cnn_resume_continues(small_cnn, tmp_path):
    out = tmp_path / "cnn"
    shutil.copytree(small_cnn, out)
    assert main(["mnist", "--resume", "--out", str(out), "--epochs", "2", "--no-progress"]) == 0
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in lines] == [1, 2]
    assert json.loads((out / "config.json").read_text())["model"] == "cnn"


def test_resume_of_a_run_folder_from_before_the_cnn_settings(trained, tmp_path):
    out = tmp_path / "old"
    shutil.copytree(trained, out)
    config = json.loads((out / "config.json").read_text())
    for key in ("model", "features", "kernel", "pool"):  # an older config.json does not name them
        del config[key]
    (out / "config.json").write_text(json.dumps(config))
    assert main(["mnist", "--resume", "--out", str(out), "--epochs", "3", "--no-progress"]) == 0
    assert json.loads((out / "config.json").read_text())["model"] == "dense"


def test_ensemble_votes_over_run_folders(small_cnn, trained, tmp_path, capsys):
    other = tmp_path / "other"
    assert main(["mnist", *SMALL_CNN, "--seed", "1", "--out", str(other)]) == 0
    capsys.readouterr()
    folders = [small_cnn, other, trained]  # two CNNs and a dense net: all classify 28x28 digits
    assert main(["ensemble", "--models", *map(str, folders), "--out", str(tmp_path / "vote.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("majority vote of 3 models: ")
    result = json.loads((tmp_path / "vote.json").read_text())
    summaries = [json.loads((folder / "summary.json").read_text()) for folder in folders]
    assert result["member_accuracy"] == [s["test_accuracy"] for s in summaries]  # the same test images
    assert result["images"] == 10_000 and 0.1 < result["vote_accuracy"] <= 1.0


def test_ensemble_rejects_a_folder_without_a_model(small_cnn, tmp_path, capsys):
    code = main(["ensemble", "--models", str(small_cnn), str(tmp_path)])
    _one_line_error(capsys, code, "model.npz")


def _digit(path: Path, invert: bool = False) -> Path:
    img = Image.new("L", (120, 160), 255 if not invert else 0)
    ImageDraw.Draw(img).line([(60, 20), (60, 140)], fill=0 if not invert else 255, width=14)  # a "1"
    img.save(path)
    return path


def test_predict_prints_digit_and_probabilities(trained, tmp_path, capsys):
    assert main(["predict", "--model", str(trained), str(_digit(tmp_path / "one.png"))]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(str(tmp_path / "one.png") + ": ")
    digit = int(out.split(": ")[1].split()[0])
    assert 0 <= digit <= 9 and "(" in out


def test_predict_rejects_a_file_that_is_not_an_image(trained, tmp_path, capsys):
    bogus = tmp_path / "notes.png"
    bogus.write_text("this is not a picture")
    _one_line_error(capsys, main(["predict", "--model", str(trained), str(bogus)]), "notes.png")


@pytest.mark.parametrize("damage", ["missing-array", "wrong-shape", "no-model"])
def test_predict_rejects_a_broken_model_folder(trained, tmp_path, capsys, damage):
    broken = tmp_path / "model"
    shutil.copytree(trained, broken)
    if damage == "no-model":
        (broken / "model.npz").unlink()
    else:
        with numpy.load(broken / "model.npz") as data:
            arrays = {k: data[k] for k in data.files}
        if damage == "missing-array":
            del arrays["2.W"]
        else:
            arrays["2.W"] = numpy.zeros((10, 31), numpy.float32)
        numpy.savez(broken / "model.npz", **arrays)
    code = main(["predict", "--model", str(broken), str(_digit(tmp_path / "d.png"))])
    _one_line_error(capsys, code, "model.npz")


@pytest.mark.parametrize("args, fragment", [
    (["--hidden", "30x"], "does not parse"),
    (["--hidden", "100,,30"], "does not parse"),
    (["--cost", "hinge"], "cost"),
    (["--eta", "-1"], "eta"),
    (["--dropout", "1.5"], "dropout"),
    (["--batch-size", "0"], "batch_size"),
    (["--eta", "abc"], "--eta"),
    (["--model", "mlp"], "model='mlp'"),
    (["--model", "cnn", "--features", "20,x"], "does not parse"),
    (["--model", "cnn", "--features", "20,40,60"], "too small"),
    (["--model", "cnn", "--pool", "mean"], "pool"),
])
def test_mnist_rejects_bad_options(capsys, args, fragment, tmp_path):
    _one_line_error(capsys, main(["mnist", *args, "--out", str(tmp_path / "r")]), fragment)


def _user_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "mnist"
    shutil.copytree(SHIPPED, folder)
    return folder


def test_data_dir_truncated_file(tmp_path, capsys):
    folder = _user_copy(tmp_path)
    raw = gzip.decompress((folder / "t10k-images-idx3-ubyte.gz").read_bytes())[:100_000]
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    (folder / "t10k-images-idx3-ubyte").write_bytes(raw)
    code = main(["mnist", *TINY, "--data", str(folder), "--no-verify", "--out", str(tmp_path / "r")])
    _one_line_error(capsys, code, "t10k-images", "truncated")


def test_data_dir_checksum_mismatch(tmp_path, capsys):
    folder = _user_copy(tmp_path)
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[-1] = (raw[-1] + 1) % 10
    labels.write_bytes(gzip.compress(bytes(raw)))
    code = main(["mnist", *TINY, "--data", str(folder), "--out", str(tmp_path / "r")])
    _one_line_error(capsys, code, "t10k-labels", "checksum")


def test_data_dir_corrupt_gzip(tmp_path, capsys):
    folder = _user_copy(tmp_path)
    target = folder / "train-labels-idx1-ubyte.gz"
    target.write_bytes(target.read_bytes()[:2000] + b"\x00garbage" * 10)
    code = main(["mnist", *TINY, "--data", str(folder), "--no-verify", "--out", str(tmp_path / "r")])
    _one_line_error(capsys, code, "train-labels")


def test_divergence_stops_cleanly_and_keeps_last_good_checkpoint(tmp_path, capsys):
    out = tmp_path / "r"
    code = main(["mnist", "--train-size", "300", "--epochs", "3", "--no-progress", "--activation", "relu",
                 "--cost", "log-likelihood", "--eta", "1e30", "--out", str(out)])
    _one_line_error(capsys, code, "NaN or infinite")
    if (out / "checkpoint.npz").exists():  # the checkpoint left behind is one of a finite epoch
        with numpy.load(out / "checkpoint.npz", allow_pickle=False) as data:
            assert all(numpy.isfinite(data[k]).all() for k in data.files if k.startswith("param."))


def test_console_script_and_help():
    exe = Path(sys.executable).parent / "tiefnet"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "tiefnet.cli"]
    result = subprocess.run([*command, "mnist", "--help"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "COLUMNS": "100"})
    assert result.returncode == 0
    for option in ("--hidden", "--activation", "--cost", "--eta", "--lmbda", "--reg", "--dropout", "--init",
                   "--optimizer", "--epochs", "--batch-size", "--expand", "--train-size", "--seed", "--threads",
                   "--data", "--out", "--model", "--features", "--kernel", "--pool"):
        assert option in result.stdout, option
    assert "cnn: '100'" in result.stdout  # --hidden's default for --model cnn


def test_resume_takes_the_saved_settings_and_refuses_others(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["mnist", "--train-size", "300", "--epochs", "1", "--eta", "2.5", "--no-progress",
                 "--out", str(out)]) == 0
    assert main(["mnist", "--resume", "--out", str(out), "--epochs", "2", "--no-progress"]) == 0
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    assert json.loads((out / "config.json").read_text())["eta"] == 2.5  # kept, not the default 3.0
    capsys.readouterr()
    code = main(["mnist", "--resume", "--out", str(out), "--epochs", "3", "--eta", "0.1", "--no-progress"])
    _one_line_error(capsys, code, "other settings", "--eta")
    assert json.loads((out / "config.json").read_text())["eta"] == 2.5  # a refused resume changes nothing


def test_resume_needs_a_checkpoint(tmp_path, capsys):
    code = main(["mnist", "--resume", "--out", str(tmp_path / "empty"), "--no-progress"])
    _one_line_error(capsys, code, "no checkpoint.npz")


def test_out_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    _one_line_error(capsys, main(["mnist", *TINY, "--out", str(target)]), "is a file")


def test_bad_device_is_one_line():
    env = {**os.environ, "TIEFNET_DEVICE": "tpu"}
    result = subprocess.run([sys.executable, "-m", "tiefnet.cli", "gridworld"], capture_output=True,
                            text=True, timeout=60, env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == ["tiefnet: error: TIEFNET_DEVICE='tpu' is not one of 'cpu', 'gpu'"]


def test_bad_device_still_prints_the_help():  # issue 10: the help is how a user finds the right value
    env = {**os.environ, "TIEFNET_DEVICE": "tpu"}
    for argv in (["--help"], ["mnist", "--help"], ["--version"]):
        result = subprocess.run([sys.executable, "-m", "tiefnet.cli", *argv], capture_output=True,
                                text=True, timeout=60, env=env)
        assert result.returncode == 0 and "Traceback" not in result.stderr
        assert result.stdout.strip() and "TIEFNET_DEVICE='tpu'" in result.stderr

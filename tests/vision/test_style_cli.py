"""``tiefnet style | style-convert | style-train | stylize`` with tiny budgets: the run folders, a VGG-19
converted from torchvision-layout weights end to end, and one clear line for every bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tiefnet.cli import main
from tiefnet.vision.vgg import VGG19_CONVS

TINY_GATYS = ["--size", "32", "--iterations", "2", "--no-progress"]


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("tiefnet: error: "), err
    return err


def random_vgg19_safetensors(path) -> None:
    """torchvision's vgg19 feature layers with He-random filters, as a .safetensors state dict (no torch)."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    tensors = {}
    for index, C, F in VGG19_CONVS:
        tensors[f"features.{index}.weight"] = (rng.standard_normal((F, C, 3, 3)) * np.sqrt(2 / (9 * C))).astype(np.float32)
        tensors[f"features.{index}.bias"] = np.zeros(F, np.float32)
    save_file(tensors, str(path))


def test_style_writes_its_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["style", "astronaut", "starry_night", *TINY_GATYS, "--out", str(out)]) == 0
    for name in ("result.png", "frames.gif", "loss.png", "metrics.jsonl", "config.json", "summary.json"):
        assert (out / name).is_file(), name
    assert Image.open(out / "result.png").size == (32, 32)
    assert "lower" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["iterations"] == 2 and summary["net"] == "random"


def test_style_refuses_to_overwrite_a_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["style", "astronaut", "starry_night", *TINY_GATYS, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["style", "astronaut", "starry_night", *TINY_GATYS, "--out", str(out)]) == 1
    assert "--overwrite" in error_line(capsys)


def test_vgg19_from_safetensors_runs_end_to_end(tmp_path, capsys):
    weights, converted = tmp_path / "vgg19.safetensors", tmp_path / "vgg19.npz"
    random_vgg19_safetensors(weights)
    assert main(["style-convert", str(weights), "--out", str(converted)]) == 0
    assert converted.is_file()
    out = tmp_path / "run"
    assert main(["style", "chelsea", "the_scream", *TINY_GATYS, "--net", str(converted), "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["net"] == "vgg19"


def test_vgg19_from_a_torch_state_dict_runs_end_to_end(tmp_path):
    torch = pytest.importorskip("torch")
    from test_vgg import torch_vgg19

    weights, converted = tmp_path / "vgg19.pth", tmp_path / "vgg19.npz"
    torch.save(torch_vgg19(torch).state_dict(), weights)
    assert main(["style-convert", str(weights), "--out", str(converted)]) == 0
    assert main(["style", "coffee", "shipwreck", *TINY_GATYS, "--net", str(converted), "--out",
                 str(tmp_path / "run")]) == 0


@pytest.mark.parametrize("make, expected", [
    (lambda p: p.write_text("no picture"), "not an image"),
    (lambda p: Image.new("RGB", (1, 1)).save(p, format="PNG"), "at least 16"),
    (lambda p: p.write_bytes(b""), "empty file"),
])
def test_style_bad_pictures_give_one_line(tmp_path, capsys, make, expected):
    bad = tmp_path / "bad.png"
    make(bad)
    assert main(["style", str(bad), "starry_night", *TINY_GATYS, "--out", str(tmp_path / "run")]) == 1
    assert expected in error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_style_refuses_more_pixels_than_max_pixels(tmp_path, capsys):
    assert main(["style", "astronaut", "starry_night", "--size", "64", "--max-pixels", "1000", "--no-progress",
                 "--out", str(tmp_path / "run")]) == 1
    assert "--max-pixels" in error_line(capsys)


def test_unknown_shipped_name_gives_one_line(tmp_path, capsys):
    assert main(["style", "astronaut", "starry", *TINY_GATYS, "--out", str(tmp_path / "run")]) == 1
    assert "file not found" in error_line(capsys)


@pytest.mark.parametrize("damage, expected", [
    ("missing", "features.34"),
    ("shape", "shape"),
])
def test_style_convert_bad_weights_give_one_line(tmp_path, capsys, damage, expected):
    from safetensors.numpy import load_file, save_file

    weights = tmp_path / "vgg19.safetensors"
    random_vgg19_safetensors(weights)
    tensors = load_file(str(weights))
    if damage == "missing":
        del tensors["features.34.weight"]
    else:
        tensors["features.0.weight"] = tensors["features.0.weight"][:, :, :2, :2].copy()
    save_file(tensors, str(weights))
    assert main(["style-convert", str(weights), "--out", str(tmp_path / "vgg19.npz")]) == 1
    assert expected in error_line(capsys)
    assert not (tmp_path / "vgg19.npz").exists()


def test_style_help_says_what_the_random_network_can_and_cannot_do(capsys):
    assert main(["style", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "random filters" in text and "knows no objects" in text


TINY_TRAIN = ["--crop", "32", "--steps", "2", "--widths", "4,8,8", "--residual-blocks", "1", "--batch-size", "1",
              "--style-size", "64", "--photo-side", "48", "--checkpoint-every", "1", "--no-progress"]


def test_style_train_then_stylize(tmp_path, capsys):
    model = tmp_path / "fst"
    assert main(["style-train", "the_scream", *TINY_TRAIN, "--out", str(model)]) == 0
    for name in ("config.json", "metrics.jsonl", "checkpoint.npz", "model.npz", "model.json", "summary.json",
                 "loss.png", "samples.png"):
        assert (model / name).is_file(), name
    assert json.loads((model / "config.json").read_text())["style"] == "the_scream"
    assert main(["style-train", "--resume", "--steps", "3", "--out", str(model), "--no-progress"]) == 0
    assert json.loads((model / "summary.json").read_text())["steps"] == 3
    capsys.readouterr()
    painted = tmp_path / "painted"
    assert main(["stylize", "--model", str(model), "astronaut", "--size", "40", "--out", str(painted)]) == 0
    assert Image.open(painted / "astronaut.png").size == (40, 40)
    assert main(["stylize", "--model", str(model), "astronaut", "--size", "40", "--out", str(painted)]) == 1
    assert "--overwrite" in error_line(capsys)  # an earlier result is not replaced unasked
    assert main(["stylize", "--model", str(model), "astronaut", "--size", "40", "--out", str(painted),
                 "--overwrite"]) == 0


def test_stylize_bad_inputs_give_one_line(tmp_path, capsys):
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    assert main(["stylize", "--model", str(not_a_model), "astronaut", "--out", str(tmp_path / "o")]) == 1
    error_line(capsys)


def test_style_never_writes_through_a_symbolic_link(tmp_path):
    out, victim = tmp_path / "run", tmp_path / "victim.txt"
    out.mkdir()
    victim.write_text("keep me")
    (out / "result.png").symlink_to(victim)
    (out / "frames.gif").symlink_to(tmp_path / "elsewhere.gif")
    assert main(["style", "astronaut", "starry_night", *TINY_GATYS, "--out", str(out), "--overwrite"]) == 0
    assert victim.read_text() == "keep me" and not (tmp_path / "elsewhere.gif").exists()
    assert not (out / "result.png").is_symlink() and Image.open(out / "result.png").size == (32, 32)


def test_style_of_a_picture_with_itself_reports_no_reduction(tmp_path, capsys):
    assert main(["style", "chelsea", "chelsea", *TINY_GATYS, "--out", str(tmp_path / "run")]) == 0
    assert "n/a" in capsys.readouterr().out


def test_style_convert_needs_npz_and_overwrite(tmp_path, capsys):
    weights = tmp_path / "vgg19.safetensors"
    random_vgg19_safetensors(weights)
    assert main(["style-convert", str(weights), "--out", str(tmp_path / "vgg19.bin")]) == 1
    assert ".npz" in error_line(capsys)
    target = tmp_path / "vgg19.npz"
    target.write_text("mine")
    assert main(["style-convert", str(weights), "--out", str(target)]) == 1
    assert "--overwrite" in error_line(capsys) and target.read_text() == "mine"
    assert main(["style-convert", str(weights), "--out", str(target), "--overwrite"]) == 0

"""Issue 10, "trust no folder": bad input to ``tiefnet mnist``, ``predict``, ``ensemble`` and ``experiment``
(options, images, model folders, run folders, crafted checkpoints, data folders) is one clear line on
stderr and a non-zero exit, never a traceback; a refused resume changes nothing."""
from __future__ import annotations

import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

import tiefnet.cli.mnist as cli_mnist
from tiefnet.checkpoint import read_npz, save_model, write_npz
from tiefnet.cli import main
from tiefnet.data.image import load_digit
from tiefnet.data.mnist import SHIPPED_DIR, read_idx
from tiefnet.nn import Dense, Reshape, Sequential, Softmax

FAST = ["--no-progress", "--no-verify"]


def one_line_error(capsys, code: int, *fragments: str) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code != 0, captured.out
    assert "Traceback" not in err and "Warning" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("tiefnet: error: ") or ": error: " in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def idx_bytes(array: np.ndarray) -> bytes:
    magic = {1: 2049, 3: 2051}[array.ndim]
    return magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape) + array.tobytes()


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    """MNIST IDX files with 300 training images (+ the 10,000 of validation) and 300 test images."""
    folder = tmp_path_factory.mktemp("small_mnist")
    for stem, n in (("train-images-idx3-ubyte", 10_300), ("train-labels-idx1-ubyte", 10_300),
                    ("t10k-images-idx3-ubyte", 300), ("t10k-labels-idx1-ubyte", 300)):
        (folder / stem).write_bytes(idx_bytes(read_idx(SHIPPED_DIR / f"{stem}.gz")[:n]))
    return folder


def mnist(small_data, *args: str) -> list[str]:
    return ["mnist", "--data", str(small_data), "--train-size", "300", *FAST, *args]


@pytest.fixture(scope="module")
def run_folder(small_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(mnist(small_data, "--epochs", "1", "--out", str(out))) == 0
    return out


@pytest.fixture(scope="module")
def momentum_run(small_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "momentum"
    assert main(mnist(small_data, "--epochs", "1", "--optimizer", "momentum", "--patience", "2", "--out",
                      str(out))) == 0
    return out


def digit(path: Path, mode: str = "L", ink: float = 0, paper: float = 255, size=(120, 160)) -> Path:
    """A thick "1" drawn in ``mode`` with grey levels ink on paper."""
    picture = Image.new(mode, size, paper)
    ImageDraw.Draw(picture).line([(60, 20), (60, 140)], fill=ink, width=14)
    picture.save(path)
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# --- 1. seeds ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["mnist", "experiment"])
def test_a_negative_seed_is_one_line(small_data, tmp_path, capsys, command):
    args = mnist(small_data, "--seed", "-1") if command == "mnist" else ["experiment", "perceptron", "--quick",
                                                                          "--no-progress", "--seed", "-1"]
    one_line_error(capsys, main([*args, "--out", str(tmp_path / "r")]), "seed", "-1")
    assert not (tmp_path / "r").exists()


# --- 2. decompression bombs ---------------------------------------------------------------------------------
def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that claims width x height 1-bit pixels (a few bytes: a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("side", [8_000, 10_000, 15_000])  # ours, Pillow's warning and its error
def test_predict_refuses_a_decompression_bomb_naming_the_limit(run_folder, tmp_path, capsys, recwarn, side):
    bomb = png_header_only(tmp_path / "bomb.png", side, side)
    one_line_error(capsys, main(["predict", "--model", str(run_folder), str(bomb)]), "bomb.png",
                   f"{side * side:,} pixels", "40,000,000")
    assert not [w for w in recwarn if "DecompressionBomb" in type(w.message).__name__]


def test_a_large_1_bit_png_is_refused_before_decoding(tmp_path, capsys, recwarn):
    path = tmp_path / "big.png"
    Image.new("1", (9_000, 9_000), 1).save(path)  # 81 megapixels in a few kilobytes
    with pytest.raises(Exception, match="81,000,000 pixels"):
        load_digit(path)
    assert not recwarn.list


# --- 3. grey levels of every kind of picture ------------------------------------------------------------
def reference(tmp_path) -> np.ndarray:
    return load_digit(digit(tmp_path / "reference.png"))


@pytest.mark.parametrize("kind", ["I;16 png", "I tiff", "F tiff", "F 0..255 tiff"])
def test_16_bit_and_float_pictures_keep_their_grey_levels(tmp_path, kind):
    mode, suffix = kind.split()[0], kind.split()[-1]
    scale = {"I;16": 65535, "I": 65535, "F": 255.0 if "255" in kind else 1.0}[mode]
    ink = 0.1 * scale if mode == "F" else int(0.1 * scale)
    path = digit(tmp_path / f"digit.{'png' if suffix == 'png' else 'tif'}", mode, ink=ink, paper=scale)
    if mode == "I;16":
        assert Image.open(path).mode == "I;16"
    np.testing.assert_allclose(load_digit(path), reference(tmp_path), atol=0.02)


def test_predict_classifies_a_16_bit_png(run_folder, tmp_path, capsys):
    path = digit(tmp_path / "sixteen.png", "I;16", ink=5000, paper=60000)  # convert("L") clips both to 255
    assert main(["predict", "--model", str(run_folder), str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: ")


@pytest.mark.parametrize("mode", ["LA", "RGBA", "P", "CMYK", "1"])
def test_other_modes_give_the_same_digit(tmp_path, mode):
    if mode in ("LA", "RGBA"):  # ink drawn opaque on a transparent background
        picture = Image.new(mode, (120, 160), (0,) * len(mode))
        ImageDraw.Draw(picture).line([(60, 20), (60, 140)], fill=(0,) * (len(mode) - 1) + (255,), width=14)
        path = tmp_path / "digit.png"
        picture.save(path)
    elif mode == "CMYK":
        path = digit(tmp_path / "digit.tif", "CMYK", ink=(0, 0, 0, 255), paper=(0, 0, 0, 0))
    elif mode == "P":
        picture = Image.new("P", (120, 160), 0)
        picture.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
        ImageDraw.Draw(picture).line([(60, 20), (60, 140)], fill=1, width=14)
        path = tmp_path / "digit.gif"
        picture.save(path)
    else:
        path = digit(tmp_path / "digit.png", "1", ink=0, paper=1)
    np.testing.assert_allclose(load_digit(path), reference(tmp_path), atol=0.02)


def test_an_animated_gif_is_read_by_its_first_frame(tmp_path):
    frames = []
    for k in range(3):  # frames that differ, so that Pillow keeps all three
        frame = Image.new("P", (120, 160), 0)
        frame.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
        ImageDraw.Draw(frame).line([(60, 20), (60, 140)], fill=1, width=14)
        ImageDraw.Draw(frame).point([(k, 0)], fill=1)
        frames.append(frame)
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert Image.open(tmp_path / "anim.gif").n_frames == 3
    assert load_digit(tmp_path / "anim.gif").max() == pytest.approx(1.0)


def test_a_one_pixel_picture_is_one_line(run_folder, tmp_path, capsys):
    Image.new("L", (1, 1), 0).save(tmp_path / "pixel.png")
    one_line_error(capsys, main(["predict", "--model", str(run_folder), str(tmp_path / "pixel.png")]),
                   "pixel.png", "blank")


def test_a_float_picture_with_nan_is_one_line(run_folder, tmp_path, capsys):
    Image.fromarray(np.full((20, 20), np.nan, np.float32)).save(tmp_path / "nan.tif")
    one_line_error(capsys, main(["predict", "--model", str(run_folder), str(tmp_path / "nan.tif")]), "NaN")


# --- 4. every bad image is reported, the others classified --------------------------------------------------
def test_predict_reports_each_bad_image_and_goes_on(run_folder, tmp_path, capsys):
    good = [digit(tmp_path / "a.png"), digit(tmp_path / "b.png")]
    (tmp_path / "notes.png").write_text("not a picture")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "folder.png").mkdir()
    os.symlink(tmp_path / "nowhere.png", tmp_path / "broken.png")
    os.mkfifo(tmp_path / "pipe.png")
    bad = ["notes.png", "empty.png", "folder.png", "broken.png", "pipe.png", "missing.png"]
    paths = [good[0], *(tmp_path / name for name in bad), good[1]]
    code = main(["predict", "--model", str(run_folder), *map(str, paths)])
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err
    assert [line.split(": ")[0] for line in captured.out.splitlines()] == [str(p) for p in good]
    errors = captured.err.strip().splitlines()
    assert [line.split(": ")[2] for line in errors] == [str(tmp_path / name) for name in bad]
    assert all(line.startswith("tiefnet: error: ") for line in errors)
    assert "a folder" in errors[2] and "broken symbolic link" in errors[3] and "not a regular file" in errors[4]


# --- 5. model folders that are not digit classifiers --------------------------------------------------------
def model_folder(tmp_path: Path, model, app: str | None = "mnist") -> Path:
    return save_model(tmp_path / "model", model, {"cost": "log-likelihood"}, app=app)


@pytest.mark.parametrize("model, fragment", [
    (Sequential(Dense(784, 3), Softmax()), "10 digits"),
    (Sequential(Reshape((1, 32, 32)), Dense(1024, 10), Softmax()), "28x28"),
    (Sequential(Dense(784, 10)), "output layer is Dense"),
], ids=["three-classes", "32x32-input", "no-output-activation"])
@pytest.mark.parametrize("command", ["predict", "ensemble"])
def test_a_model_that_does_not_classify_digits_is_one_line(tmp_path, capsys, model, fragment, command):
    folder = model_folder(tmp_path, model)
    args = ["predict", "--model", str(folder), str(digit(tmp_path / "d.png"))] if command == "predict" else \
        ["ensemble", "--models", str(folder)]
    one_line_error(capsys, main(args), str(folder), fragment)


@pytest.mark.parametrize("app", ["charrnn", "dqn"])
def test_a_model_of_another_application_is_named(tmp_path, capsys, app):
    folder = model_folder(tmp_path, Sequential(Dense(784, 10), Softmax()), app=app)
    one_line_error(capsys, main(["predict", "--model", str(folder), str(digit(tmp_path / "d.png"))]),
                   f"tiefnet {app}")


# --- 6. ensemble --out is checked before any work -------------------------------------------------------
@pytest.mark.parametrize("problem", ["no-folder", "a-folder", "a-symlink"])
def test_ensemble_checks_its_out_file_first(run_folder, tmp_path, capsys, monkeypatch, problem):
    def no_data(*args, **kwargs):
        raise AssertionError("the data was loaded before --out was checked")

    monkeypatch.setattr(cli_mnist, "load_mnist", no_data)
    out = {"no-folder": tmp_path / "missing" / "vote.json", "a-folder": tmp_path, "a-symlink": tmp_path / "link"}[problem]
    if problem == "a-symlink":
        os.symlink(tmp_path / "target.json", out)
    one_line_error(capsys, main(["ensemble", "--models", str(run_folder), "--out", str(out)]), str(out))


# --- 7. --epochs 0, --train-size beyond the data, resume with fewer epochs ----------------------------------
def test_zero_epochs_is_refused(small_data, tmp_path, capsys):
    one_line_error(capsys, main(mnist(small_data, "--epochs", "0", "--out", str(tmp_path / "r"))), "epochs=0")


def test_a_train_size_beyond_the_data_is_refused(small_data, tmp_path, capsys):
    code = main(mnist(small_data, "--epochs", "1", "--train-size", "301", "--out", str(tmp_path / "r")))
    one_line_error(capsys, code, "train_size=301", "300")


def test_resume_asking_for_fewer_epochs_than_the_checkpoint_holds(small_data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(mnist(small_data, "--epochs", "2", "--out", str(out))) == 0
    capsys.readouterr()
    before = snapshot(out)
    code = main(["mnist", "--resume", "--out", str(out), "--epochs", "1", *FAST])
    one_line_error(capsys, code, "already holds 2 epochs", "total")
    assert snapshot(out) == before


# --- 8. a network that learns nothing is warned about ----------------------------------------------------
def test_a_saturating_eta_warns_after_the_epoch(small_data, tmp_path, capsys):
    assert main(mnist(small_data, "--epochs", "1", "--eta", "1e30", "--out", str(tmp_path / "r"))) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tiefnet: warning: after epoch 1 the training accuracy"), err
    assert "chance" in err[0] and "eta=1e+30" in err[0]


def test_the_lecture_default_does_not_warn(tmp_path, capsys):
    assert main(["mnist", "--train-size", "1000", "--epochs", "1", "--no-progress", "--out", str(tmp_path / "r")]) == 0
    assert "warning" not in capsys.readouterr().err


def test_stuck_criterion():
    from tiefnet.vision.mnist import stuck

    assert stuck({"train_accuracy": 0.11, "train_cost": 0.5}, None)
    assert stuck({"train_accuracy": 0.15, "train_cost": 0.5}, {"train_accuracy": 0.1, "train_cost": 0.5})
    assert not stuck({"train_accuracy": 0.12, "train_cost": 0.4}, {"train_accuracy": 0.1, "train_cost": 0.5})
    assert not stuck({"train_accuracy": 0.16, "train_cost": 0.5}, None)


# --- 9. resuming another application's folder; crafted checkpoints -----------------------------------------
def test_resume_names_the_application_of_the_folder(run_folder, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(run_folder, out)
    meta = json.loads((out / "model.json").read_text())
    (out / "model.json").write_text(json.dumps({**meta, "app": "dqn"}))
    before = snapshot(out)
    one_line_error(capsys, main(["mnist", "--resume", "--out", str(out), "--epochs", "2", *FAST]), "tiefnet dqn")
    assert snapshot(out) == before


def test_resume_of_a_folder_without_model_json_and_other_settings(run_folder, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(run_folder, out)
    (out / "model.json").unlink()
    (out / "config.json").write_text(json.dumps({"cell": "lstm", "hidden": 256, "seq_length": 100, "seed": 0}))
    before = snapshot(out)
    one_line_error(capsys, main(["mnist", "--resume", "--out", str(out), *FAST]), "not a run folder of tiefnet mnist",
                   "cell")
    assert snapshot(out) == before


@pytest.mark.parametrize("setting, value, fragment", [
    ("eta", "abc", "eta='abc'"), ("hidden", 30, "hidden=30"),
    ("seed", 1.5, "seed=1.5"), ("epochs", True, "epochs=True"), ("model", ["dense"], "model=['dense']"),
])
def test_resume_with_a_crafted_config_json(run_folder, tmp_path, capsys, setting, value, fragment):
    out = tmp_path / "run"
    shutil.copytree(run_folder, out)
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, setting: value}))
    before = snapshot(out)
    one_line_error(capsys, main(["mnist", "--resume", "--out", str(out), *FAST]), fragment)
    assert snapshot(out) == before


PCG = {"bit_generator": "PCG64", "state": {"state": "x", "inc": 1}, "has_uint32": 0, "uinteger": 0}
CRAFTED = {  # a change to the checkpoint's meta data (or arrays) -> a fragment of the error
    "history-not-a-list": ({"history": {"epoch": 1}}, "history"),
    "history-entry-not-a-dict": ({"history": [[1, 2]]}, "history entry 1"),
    "history-epochs-not-increasing": ({"epoch": 2, "history": "repeat"}, "history entry 2"),
    "history-nan": ({"history": "nan"}, "bad values for train_cost"),
    "history-accuracy-above-1": ({"history": "accuracy"}, "bad values for test_accuracy"),
    "history-longer-than-epoch": ({"history": "repeat"}, "history"),
    "more-epochs-than-config": ({"epoch": 7, "history": "seven"}, "already holds 7 epochs"),
    "epoch-a-string": ({"epoch": "1"}, "epoch '1'"),
    "epoch-zero": ({"epoch": 0, "history": []}, "epoch 0"),
    "stale-negative": ({"stale": -1}, "stale -1"),
    "stale-a-string": ({"stale": "0"}, "stale '0'"),
    "stopped-by-a-number": ({"stopped_by": 3}, "stopped_by 3"),
    "rng-a-string": ({"rng": "seed"}, "generator state"),
    "rng-another-generator": ({"rng": {"bit_generator": "MT19937", "state": {}}}, "MT19937"),
    "rng-bad-state": ({"rng": PCG}, "not a valid PCG64 state"),
    "layer-rngs": ({"layer_rngs": [PCG]}, "random layers"),
    "optimizer-eta-nan": ({"optimizer": {"name": "momentum", "eta": float("nan")}}, "eta nan"),
    "optimizer-eta-a-string": ({"optimizer": {"name": "momentum", "eta": "3"}}, "eta '3'"),
    "optimizer-not-a-dict": ({"optimizer": "momentum"}, "optimizer None"),
    "optimizer-array-shape": ({"arrays": {"opt.v0": np.zeros(3, np.float32)}}, "optimizer array v0"),
    "optimizer-array-missing": ({"arrays": {"opt.v0": None}}, "missing v0"),
    "optimizer-array-nan": ({"arrays": {"opt.v1": "nan"}}, "optimizer array v1"),
    "param-shape": ({"arrays": {"param.0.W": np.zeros((30, 3), np.float32)}}, "model array 0.W"),
    "schedule": ({"schedule": {"best": "x", "bad_epochs": -1}}, "schedule"),
}


def craft(checkpoint: Path, change: dict) -> None:
    arrays, meta = read_npz(checkpoint)
    first = dict(meta["history"][0])
    history = {"repeat": [first, first], "nan": [{**first, "train_cost": float("nan")}],
               "accuracy": [{**first, "test_accuracy": 1.5}],
               "seven": [{**first, "epoch": k} for k in range(1, 8)]}
    for key, value in change.items():
        if key == "arrays":
            for name, array in value.items():
                if array is None:
                    del arrays[name]
                else:
                    arrays[name] = np.full_like(arrays[name], np.nan) if isinstance(array, str) else array
        else:
            meta[key] = history.get(value, value) if isinstance(value, str) and key == "history" else value
    write_npz(checkpoint, arrays, meta)


@pytest.mark.parametrize("damage", sorted(CRAFTED))
def test_resume_from_a_crafted_checkpoint_is_one_line_and_changes_nothing(momentum_run, tmp_path, capsys, damage):
    out = tmp_path / "run"
    shutil.copytree(momentum_run, out)
    change, fragment = CRAFTED[damage]
    craft(out / "checkpoint.npz", change)
    before = snapshot(out)
    code = main(["mnist", "--resume", "--out", str(out), "--epochs", "2", *FAST])
    one_line_error(capsys, code, "checkpoint.npz" if damage != "more-epochs-than-config" else "epochs=2", fragment)
    assert snapshot(out) == before


# --- 10. figures of one-epoch runs --------------------------------------------------------------------------
@pytest.fixture
def figures(monkeypatch):
    """The figures that tiefnet.plot.save would write, kept open for inspection."""
    import tiefnet.plot

    kept = []
    monkeypatch.setattr(tiefnet.plot, "save", lambda fig, path: kept.append(fig) or Path(path))
    yield kept
    for fig in kept:
        tiefnet.plot.plt.close(fig)


def assert_visible_with_whole_epoch_ticks(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    lines = [line for line in ax.get_lines() if len(line.get_xdata()) == 1]
    assert lines and all(line.get_marker() not in (None, "", "None", " ") for line in lines)
    assert isinstance(ax.xaxis.get_major_locator(), MaxNLocator)
    ax.figure.canvas.draw()
    assert all(float(t).is_integer() for t in ax.get_xticks())


def test_training_curves_of_one_epoch(figures, tmp_path):
    from tiefnet.plot import training_curves

    epoch = {"epoch": 1, "train_cost": 0.3, "train_accuracy": 0.5, "test_cost": 0.4, "test_accuracy": 0.45}
    training_curves([epoch], tmp_path / "curves.png")
    for ax in figures[0].axes:
        assert_visible_with_whole_epoch_ticks(ax)


def test_experiment_figures_of_one_epoch(figures, tmp_path):
    from tiefnet.experiments import dropout, overfitting

    run = {"test_accuracy": [0.8], "train_accuracy": [0.9], "train_cost": [0.2], "final_test_accuracy": 0.8,
           "best_test_accuracy": 0.8}
    dropout._figure({"no dropout": {**run, "p": 0.0}, "dropout": {**run, "p": 0.5}}, 100, tmp_path / "d.png")
    overfitting._figure({"none": {**run, "lmbda": 0.0}, "l2": {**run, "lmbda": 0.1}}, 100, tmp_path / "o.png")
    for fig in figures:
        for ax in fig.axes:
            assert_visible_with_whole_epoch_ticks(ax)


def l1_l2_runs(l1: tuple[float, float, float], l2: tuple[float, float, float]) -> dict:
    def run(sparse, largest, accuracy):
        return {"weights": {"fraction_below_1e-3": sparse, "max_abs": largest}, "final_test_accuracy": accuracy}

    return {"l2": run(*l2), "l1": run(*l1)}


@pytest.mark.parametrize("l1, l2, claims", [
    ((0.9, 1.5, 0.93), (0.1, 0.5, 0.94), ["L1 set more weights to ~0 (|w| < 0.001: 90% vs 10%)",
                                         "L1 kept the larger weights", "L2 reached the higher test accuracy"]),
    ((0.1, 0.4, 0.95), (0.2, 0.9, 0.94), ["L2 set more weights to ~0 (|w| < 0.001: 20% vs 10%)",
                                         "L2 kept the larger weights (max |w| 0.90 vs 0.40)",
                                         "L1 reached the higher test accuracy (95.0% vs 94.0%)"]),
    ((0.1, 0.5, 0.94), (0.1, 0.5, 0.94), ["both set as many weights", "both kept weights as large",
                                         "both reached the same test accuracy (94.0%)"]),
])
def test_l1_vs_l2_title_states_what_its_numbers_show(figures, tmp_path, l1, l2, claims):
    from tiefnet.experiments import l1_vs_l2

    runs = l1_l2_runs(l1, l2)
    title = l1_vs_l2.headline(runs)
    for claim in claims:
        assert claim in title, title
    assert "L1 sets most weights to ~0" not in title
    rng = np.random.default_rng(0)
    l1_vs_l2._figure({"l2": rng.normal(0, 0.1, (30, 784)), "l1": rng.normal(0, 0.1, (30, 784))}, runs,
                     tmp_path / "l1.png")
    assert figures[0]._suptitle.get_text() == title


# --- 11. more bad inputs -----------------------------------------------------------------------------------
@pytest.mark.parametrize("args, fragment", [
    (["--hidden", str(10**9)], "memory"),
    (["--model", "cnn", "--features", str(10**9)], "memory"),
    (["--expand", str(10**9)], "memory"),
    (["--batch-size", str(10**12)], "batch_size=1000000000000 is larger than the 300 training images"),
    (["--eta", "inf"], "eta=inf"), (["--eta", "nan"], "eta=nan"), (["--lmbda", "nan"], "lmbda=nan"),
    (["--dropout", "inf"], "dropout=inf"), (["--threads", "0"], "threads=0"), (["--seed", str(2**64)], "seed"),
    (["--kernel", str(10**12), "--model", "cnn"], "too small"),
])
def test_mnist_refuses_what_cannot_work_before_allocating(small_data, tmp_path, capsys, args, fragment):
    code = main(mnist(small_data, "--epochs", "1", *args, "--out", str(tmp_path / "r")))
    one_line_error(capsys, code, fragment)


def test_the_memory_refusal_names_the_size(small_data, tmp_path, capsys):
    code = main(mnist(small_data, "--hidden", str(10**9), "--out", str(tmp_path / "r")))
    one_line_error(capsys, code, "TB", "795,000,000,010 parameters")


def test_the_memory_limit_is_tiefnets(small_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TIEFNET_MEMORY_LIMIT", "100M")  # the default net fits, one of 100,000 hidden neurons not
    assert main(mnist(small_data, "--epochs", "1", "--out", str(tmp_path / "a"))) == 0
    capsys.readouterr()
    code = main(mnist(small_data, "--epochs", "1", "--hidden", "100000", "--out", str(tmp_path / "b")))
    one_line_error(capsys, code, "79,500,010 parameters", "memory limit of 105 MB")
    assert not (tmp_path / "b").exists()


def test_a_gzip_bomb_in_the_data_folder_is_not_unpacked(small_data, tmp_path, capsys, monkeypatch):
    import gzip

    import tiefnet.data.mnist

    folder = tmp_path / "data"
    shutil.copytree(small_data, folder)
    (folder / "t10k-labels-idx1-ubyte").unlink()
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00" * 20_000_000))  # 20 kB
    monkeypatch.setattr(tiefnet.data.mnist, "MAX_BYTES", 10_000_000, raising=False)
    code = main(["mnist", "--data", str(folder), *FAST, "--out", str(tmp_path / "r")])
    one_line_error(capsys, code, "t10k-labels", "more than 10,000,000 bytes")


@pytest.mark.parametrize("name", ["empty", "header-only", "fifo"])
def test_a_broken_idx_file_is_one_line(small_data, tmp_path, capsys, name):
    folder = tmp_path / "data"
    shutil.copytree(small_data, folder)
    target = folder / "train-images-idx3-ubyte"
    target.unlink()
    if name == "fifo":
        os.mkfifo(target)
    else:
        target.write_bytes(b"" if name == "empty" else (2051).to_bytes(4, "big") + (10**9).to_bytes(4, "big"))
    code = main(["mnist", "--data", str(folder), *FAST, "--out", str(tmp_path / "r")])
    one_line_error(capsys, code, "train-images")


@pytest.mark.parametrize("args, fragment", [(["--threads", "0"], "--threads 0"), (["--epochs", "0"], "--epochs 0"),
                                            (["--seed", str(2**63)], "--seed")])
def test_experiment_refuses_bad_options(tmp_path, capsys, args, fragment):
    one_line_error(capsys, main(["experiment", "perceptron", "--quick", *args, "--out", str(tmp_path / "r")]),
                   fragment)


def test_ensemble_with_nonsense_data_is_one_line(run_folder, tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train-images-idx3-ubyte").write_text("nonsense")
    code = main(["ensemble", "--models", str(run_folder), "--data", str(tmp_path / "data"), "--no-verify"])
    one_line_error(capsys, code, "missing MNIST files")

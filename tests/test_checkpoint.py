"""Model folders: .npz arrays + JSON architecture, never pickle; every broken file is a clear
CheckpointError; a save is atomic even when the process is killed midway."""

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
from helpers import dev, host

from tiefnet.checkpoint import FORMAT, META_KEY, load_model, read_npz, save_model, write_npz
from tiefnet.errors import CheckpointError
from tiefnet.nn import Dense, Dropout, ReLU, Sequential, Sigmoid, Softmax, Tanh


def model_with_dropout_and_softmax(seed=0):
    rng = np.random.default_rng(seed)
    return Sequential(Dense(6, 5, init="he", rng=rng), ReLU(), Dropout(0.25), Sequential(Dense(5, 4, rng=rng), Tanh()),
                      Dense(4, 3, rng=rng), Softmax())


def assert_same_model(a, b):
    assert a.describe() == b.describe()
    assert list(a.params) == list(b.params)
    for name in a.params:
        np.testing.assert_array_equal(host(a.params[name]), host(b.params[name]))
        assert a.params[name].dtype == b.params[name].dtype


def rewrite_npz(path, change):
    """Load path's entries, let ``change(dict)`` edit them, and write them back with plain numpy.savez."""
    with np.load(path, allow_pickle=False) as data:
        entries = {name: data[name] for name in data.files}
    change(entries)
    with open(path, "wb") as f:
        np.savez(f, **entries)


def edit_meta(path, change):
    def edit(entries):
        meta = json.loads(str(entries[META_KEY]))
        change(meta)
        entries[META_KEY] = np.array(json.dumps(meta))
    rewrite_npz(path, edit)


def expect_error(folder, *parts):
    with pytest.raises(CheckpointError) as excinfo:
        load_model(folder)
    message = str(excinfo.value)
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"
    return message


@pytest.fixture
def saved(tmp_path):
    model = model_with_dropout_and_softmax()
    save_model(tmp_path / "model", model, info={"epochs": 3, "accuracy": 0.95})
    return tmp_path / "model", model


# --- round trip -----------------------------------------------------------------------------------------
def test_round_trip_restores_architecture_and_arrays(saved):
    folder, model = saved
    loaded, info = load_model(folder)
    assert_same_model(loaded, model)
    assert info == {"epochs": 3, "accuracy": 0.95}
    assert isinstance(loaded.layers[2], Dropout) and loaded.layers[2].p == 0.25
    assert isinstance(loaded.layers[-1], Softmax)
    x = dev(np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32))
    np.testing.assert_array_equal(host(loaded.forward(x)), host(model.forward(x)))


def test_round_trip_float64(tmp_path, float64):
    model = Sequential(Dense(3, 2, rng=np.random.default_rng(0)), Sigmoid())
    save_model(tmp_path, model)
    loaded, info = load_model(tmp_path)
    assert_same_model(loaded, model)
    assert info == {}


def test_folder_contents_and_no_pickle(saved):
    folder, model = saved
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.npz"]
    with np.load(folder / "model.npz", allow_pickle=False) as data:  # no object arrays inside
        assert sorted(data.files) == sorted([*model.params, META_KEY])
        meta = json.loads(str(data[META_KEY]))
    assert meta["format"] == FORMAT
    assert json.loads((folder / "model.json").read_text()) == meta
    assert meta["architecture"]["type"] == "Sequential"
    assert [layer["type"] for layer in meta["architecture"]["layers"]] == [
        "Dense", "ReLU", "Dropout", "Sequential", "Dense", "Softmax"]


def test_saving_twice_overwrites(saved):
    folder, _ = saved
    other = model_with_dropout_and_softmax(seed=1)
    save_model(folder, other)
    assert_same_model(load_model(folder)[0], other)
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.npz"]


def test_write_and_read_npz_round_trip(tmp_path):
    arrays = {"a": np.arange(6.0).reshape(2, 3), "b": np.array([1, 2], dtype=np.int64)}
    meta = {"epoch": 3, "nested": {"x": [1, 2.5, None]}, "inf": float("-inf")}
    write_npz(tmp_path / "sub" / "state.npz", arrays, meta)
    got_arrays, got_meta = read_npz(tmp_path / "sub" / "state.npz")
    assert got_meta == meta
    assert sorted(got_arrays) == ["a", "b"]
    np.testing.assert_array_equal(got_arrays["a"], arrays["a"])


# --- broken folders and files ------------------------------------------------------------------------------
def test_missing_folder(tmp_path):
    expect_error(tmp_path / "nowhere", "nowhere", "no such model folder")


def test_missing_model_npz(saved):
    folder, _ = saved
    (folder / "model.npz").unlink()
    expect_error(folder, "model.npz", "no such file")


def test_array_removed(saved):
    folder, _ = saved
    rewrite_npz(folder / "model.npz", lambda entries: entries.pop("4.W"))
    expect_error(folder, "model.npz", "missing arrays 4.W", "Dense(n_in=4, n_out=3")


def test_wrong_shaped_array(saved):
    folder, _ = saved
    rewrite_npz(folder / "model.npz", lambda entries: entries.update({"0.W": np.zeros((6, 5), np.float32)}))
    expect_error(folder, "array 0.W has shape (6, 5), the model expects (5, 6)")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_an_array(saved, bad):
    folder, _ = saved

    def poison(entries):
        entries["3.0.b"] = entries["3.0.b"].copy()
        entries["3.0.b"][1] = bad
    rewrite_npz(folder / "model.npz", poison)
    expect_error(folder, "array 3.0.b holds NaN or infinite values")


def test_extra_array(saved):
    folder, _ = saved
    rewrite_npz(folder / "model.npz", lambda entries: entries.update({"9.W": np.zeros(2)}))
    expect_error(folder, "arrays 9.W do not belong to")


@pytest.mark.parametrize("keep", [0, 10, 100, 0.5, -30])
def test_truncated_npz(saved, keep):
    folder, _ = saved
    path = folder / "model.npz"
    data = path.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else (keep if keep >= 0 else len(data) + keep)
    path.write_bytes(data[:cut])
    expect_error(folder, "model.npz", "not a readable .npz file")


def test_corrupt_bytes_inside_npz(saved):
    """Flipped bytes in an array's data: the zip CRC check catches them."""
    folder, _ = saved
    path = folder / "model.npz"
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("0.W.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200  # inside the array bytes
    data[start : start + 16] = bytes(16)
    path.write_bytes(bytes(data))
    expect_error(folder, "model.npz", "not a readable .npz file")


def test_not_a_zip_at_all(saved):
    folder, _ = saved
    (folder / "model.npz").write_text("hello, I am not a model\n")
    expect_error(folder, "not a readable .npz file")


def test_pickled_object_array_is_refused(saved):
    folder, _ = saved
    rewrite_npz(folder / "model.npz", lambda entries: entries.update({"evil": np.array([{"a": 1}], dtype=object)}))
    expect_error(folder, "'evil.npy' holds Python objects (pickle); refusing to load it")


def test_npz_without_meta(saved):
    folder, _ = saved
    rewrite_npz(folder / "model.npz", lambda entries: entries.pop(META_KEY))
    expect_error(folder, f"has no {META_KEY} entry")


def test_meta_not_json(saved):
    folder, _ = saved
    rewrite_npz(folder / "model.npz", lambda entries: entries.update({META_KEY: np.array("{not json")}))
    expect_error(folder, "not valid JSON")


def test_wrong_format(saved):
    folder, _ = saved
    edit_meta(folder / "model.npz", lambda meta: meta.update({"format": "keras/9"}))
    expect_error(folder, "not a tiefnet model", "keras/9")


def test_unknown_layer_type(saved):
    folder, _ = saved
    edit_meta(folder / "model.npz", lambda meta: meta["architecture"]["layers"][1].update({"type": "Swish"}))
    message = expect_error(folder, "unknown layer type 'Swish'", "Dense", "Dropout")
    assert "\n" not in message


@pytest.mark.parametrize("change, part", [
    (lambda layer: layer.update({"n_in": 0}), "bad settings"),
    (lambda layer: layer.update({"init": "xavier"}), "bad settings"),
    (lambda layer: layer.update({"colour": "blue"}), "bad settings"),
    (lambda layer: layer.pop("type"), "has no 'type'"),
])
def test_bad_layer_settings(saved, change, part):
    folder, _ = saved
    edit_meta(folder / "model.npz", lambda meta: change(meta["architecture"]["layers"][0]))
    expect_error(folder, part)


def test_plain_npy_file_is_a_checkpoint_error(saved):
    folder, _ = saved
    with open(folder / "model.npz", "wb") as f:
        np.save(f, np.zeros(3))
    expect_error(folder, "model.npz")


def test_meta_not_an_object(saved):
    folder, _ = saved
    rewrite_npz(folder / "model.npz", lambda entries: entries.update({META_KEY: np.array("[1, 2]")}))
    expect_error(folder, "model.npz")


def test_sequential_without_layers(saved):
    folder, _ = saved
    edit_meta(folder / "model.npz", lambda meta: meta["architecture"].pop("layers"))
    expect_error(folder, "Sequential")


def test_model_npz_gets_the_usual_file_permissions(saved):
    folder, _ = saved
    assert (folder / "model.npz").stat().st_mode & 0o777 == (folder / "model.json").stat().st_mode & 0o777


# --- atomicity ----------------------------------------------------------------------------------------------
def test_failed_save_keeps_previous_model_and_leaves_no_temp_file(saved, monkeypatch):
    folder, model = saved
    real_savez = np.savez

    def savez_then_fail(file, **arrays):
        file.write(b"PK\x03\x04 half a zip file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", savez_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save_model(folder, model_with_dropout_and_softmax(seed=5))
    monkeypatch.setattr(np, "savez", real_savez)
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.npz"]
    assert_same_model(load_model(folder)[0], model)


def test_interrupted_save_keeps_previous_model(saved, monkeypatch):
    """A KeyboardInterrupt midway (a BaseException) cleans up too."""
    folder, model = saved

    def interrupted(file, **arrays):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_model(folder, model_with_dropout_and_softmax(seed=5))
    monkeypatch.undo()
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.npz"]
    assert_same_model(load_model(folder)[0], model)


SAVER = textwrap.dedent("""
    import sys
    import numpy as np
    from tiefnet.checkpoint import save_model
    from tiefnet.nn import Dense, Sequential

    folder, version = sys.argv[1], int(sys.argv[2])
    model = Sequential(Dense(2000, 2000, rng=np.random.default_rng(0)))  # 16 MB of float32
    while True:
        version += 1
        for p in model.params.values():
            p[...] = version  # every array of version k holds k only
        save_model(folder, model, info={"version": version})
        if version == int(sys.argv[2]) + 1:
            print("saving", flush=True)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_save_killed_at_a_random_moment_leaves_a_loadable_model(tmp_path):
    folder = tmp_path / "model"
    model = Sequential(Dense(2000, 2000, rng=np.random.default_rng(0)))
    for p in model.params.values():
        p[...] = 0
    save_model(folder, model, info={"version": 0})
    delays = random.Random(1234)
    last = 0
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for _ in range(3):
        child = subprocess.Popen([sys.executable, "-c", SAVER, str(folder), str(last)], stdout=subprocess.PIPE,
                                 env=env, text=True)
        try:
            assert child.stdout.readline().strip() == "saving"  # one save done, more under way
            try:
                child.wait(timeout=delays.uniform(0.0, 0.25))
            except subprocess.TimeoutExpired:
                pass
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait(timeout=30)
            child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        loaded, info = load_model(folder)
        version = info["version"]
        assert version > last
        for name, p in loaded.params.items():  # arrays all from one and the same save
            assert float(p.min()) == float(p.max()) == version, name
        last = version


@pytest.mark.parametrize("name", ["model.npz", "model.json", "model.json.tmp"])
def test_save_never_writes_through_a_symlink(tmp_path, name):
    """A model folder from someone else may hold links to files outside it (at the final names, or at
    the fixed temp name model.json.tmp that saving once wrote through): the file a link points to
    stays as it was."""
    folder, outside = tmp_path / "model", tmp_path / "precious.txt"
    folder.mkdir()
    outside.write_text("keep me")
    (folder / name).symlink_to(outside)
    save_model(folder, model_with_dropout_and_softmax())
    assert outside.read_text() == "keep me"
    assert not (folder / "model.npz").is_symlink() and not (folder / "model.json").is_symlink()
    assert_same_model(load_model(folder)[0], model_with_dropout_and_softmax())

"""Model and run folders are untrusted input (issue 10): a crafted folder cannot make tiefnet allocate
beyond a set limit, recurse without end, or write outside its folder; each gives one error line."""
from __future__ import annotations

import json
import os
import signal
import struct
import time
import zipfile

import numpy as np
import pytest

from tiefnet.checkpoint import META_KEY, load_model, read_npz, save_model, write_npz
from tiefnet.cli import main
from tiefnet.errors import CheckpointError
from tiefnet.nn import Dense, Sequential, Sigmoid

MNIST = ["mnist", "--train-size", "100", "--epochs", "1", "--batch-size", "20", "--no-progress"]


class Hung(Exception):
    pass


def _hung(signum, frame):
    raise Hung("no answer within 60 s: a crafted folder made tiefnet block or work without end")


@pytest.fixture(autouse=True)
def within_a_minute():
    """A crafted folder must be refused quickly; a blocked read (a FIFO) fails the test, not the suite."""
    old = signal.signal(signal.SIGALRM, _hung)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture
def folder(tmp_path):
    """A small saved model: Dense(4, 3) -> Sigmoid."""
    save_model(tmp_path / "model", Sequential(Dense(4, 3, rng=np.random.default_rng(0)), Sigmoid()), {}, app="mnist")
    return tmp_path / "model"


def npy_header(shape, dtype="<f4") -> bytes:
    """A version-1.0 .npy header that declares ``shape`` (no data follows)."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": tuple(shape)}).encode("latin1")
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def with_meta(folder, entries: dict[str, bytes]) -> None:
    """Rewrite model.npz as a zip of the raw .npy ``entries`` plus the folder's own meta entry."""
    with np.load(folder / "model.npz", allow_pickle=False) as data:
        meta = str(data[META_KEY])
    with zipfile.ZipFile(folder / "model.npz", "w") as archive:
        for name, raw in entries.items():
            archive.writestr(f"{name}.npy", raw)
        with archive.open(f"{META_KEY}.npy", "w") as f:
            np.lib.format.write_array(f, np.array(meta))


def refused(folder, *parts) -> str:
    started = time.perf_counter()
    with pytest.raises(CheckpointError) as excinfo:
        load_model(folder)
    assert time.perf_counter() - started < 5  # refused from the sizes, not after trying
    for part in parts:
        assert part in str(excinfo.value), str(excinfo.value)
    return str(excinfo.value)


def test_a_header_claiming_10_to_the_12_floats_is_refused_before_reading(folder):
    with_meta(folder, {"0.W": npy_header((10**12,)) + b"\0" * 64, "0.b": npy_header((3,)) + b"\0" * 12})
    refused(folder, "0.W.npy", "declares 4 TB")


def test_a_small_file_that_decompresses_to_gigabytes_is_refused(folder, monkeypatch):
    """A real zip bomb: 300 MB of zeros in an entry of a few hundred kB; the limit is set to 100 MB."""
    monkeypatch.setenv("TIEFNET_MEMORY_LIMIT", "100M")
    with np.load(folder / "model.npz", allow_pickle=False) as data:
        meta = str(data[META_KEY])
    with zipfile.ZipFile(folder / "model.npz", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("0.W.npy", "w", force_zip64=True) as f:
            f.write(npy_header((75_000_000,)))
            zeros = bytes(2**22)
            for _ in range(300_000_000 // len(zeros) + 1):
                f.write(zeros)
        with archive.open(f"{META_KEY}.npy", "w") as f:
            np.lib.format.write_array(f, np.array(meta))
    assert (folder / "model.npz").stat().st_size < 2_000_000
    refused(folder, "needs 300 MB, more than tiefnet's memory limit of 105 MB")


def test_an_architecture_larger_than_its_arrays_is_refused_before_it_is_built(folder):
    arrays, meta = read_npz(folder / "model.npz")
    meta["architecture"] = {"type": "Sequential", "layers": [{"type": "Dense", "n_in": 10**6, "n_out": 10**6}]}
    write_npz(folder / "model.npz", arrays, meta)
    refused(folder, "its architecture has 1000001000000 parameters and buffers, its arrays hold only 15 numbers")


def test_an_architecture_beyond_the_memory_limit_is_refused(monkeypatch):
    from tiefnet.nn.registry import layer_from_config

    monkeypatch.setenv("TIEFNET_MEMORY_LIMIT", "1M")
    with pytest.raises(CheckpointError, match="the architecture needs 4 MB, more than tiefnet's memory limit"):
        layer_from_config({"type": "Dense", "n_in": 1000, "n_out": 1000})


@pytest.mark.parametrize("nesting", ["json", "layers"])
def test_deep_nesting_is_one_error_not_a_recursion_error(folder, nesting):
    arrays, meta = read_npz(folder / "model.npz")
    text = json.dumps(meta)
    if nesting == "json":  # 100,000 levels of lists: json.loads alone would raise RecursionError
        text = text.replace('"info": {}', '"info": ' + "[" * 100_000 + "]" * 100_000)
    else:  # 90 containers in containers: within the JSON limit, beyond the layers' (64)
        meta["architecture"] = "ARCHITECTURE"
        architecture = '{"type": "Sequential", "layers": [' * 90 + '{"type": "Sigmoid"}' + "]}" * 90
        text = json.dumps(meta).replace('"ARCHITECTURE"', architecture)
    rewrite = {name: a for name, a in arrays.items()}
    rewrite[META_KEY] = np.array(text)
    with open(folder / "model.npz", "wb") as f:
        np.savez(f, **rewrite)
    message = refused(folder)
    assert "nested" in message or "levels deep" in message


@pytest.mark.parametrize("architecture, part", [
    ({"type": "Sequential", "layers": []}, "holds no layers"),
    ({"type": "Sequential", "layers": [{"type": "Sequential", "layers": []}]}, "holds no layers"),
    ({}, "has no 'type'"),
    ([], "has no 'type'"),
    ({"type": "Sequential", "layers": [{"type": "ReLU"}] * 100_001}, "more than 100000 layers"),
])
def test_an_empty_or_huge_architecture_is_refused(tmp_path, architecture, part):
    save_model(tmp_path / "m", Sequential(Sigmoid()), {}, app="mnist")
    arrays, meta = read_npz(tmp_path / "m" / "model.npz")
    write_npz(tmp_path / "m" / "model.npz", arrays, {**meta, "architecture": architecture})
    refused(tmp_path / "m", part)


def test_a_bad_memory_limit_setting_is_one_line(folder, monkeypatch, capsys):
    monkeypatch.setenv("TIEFNET_MEMORY_LIMIT", "lots")
    assert main(["predict", "--model", str(folder), str(folder / "model.json")]) == 1
    assert capsys.readouterr().err.strip() == "tiefnet: error: TIEFNET_MEMORY_LIMIT='lots' is not a size such as 8G or 512M"


@pytest.fixture
def mnist_run(tmp_path):
    out = tmp_path / "run"
    assert main([*MNIST, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("config, part", [
    ('{"eta": "fast"}', "eta='fast' is not a float"),
    ('{"epochs": 1.5}', "epochs=1.5 is not an int"),
    ('{"verify": 1}', "verify=1 is not a bool"),
    ('[1, 2]', "is not a JSON object"),
    ("[" * 50_000 + "]" * 50_000, "not valid JSON (nested too deeply)"),
    ("\xff\xfe", "not UTF-8"),
])
def test_a_crafted_config_json_is_refused_on_resume(mnist_run, capsys, config, part):
    (mnist_run / "config.json").write_bytes(config.encode("latin1"))
    assert main([*MNIST, "--epochs", "2", "--resume", "--out", str(mnist_run)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("tiefnet: error: --resume: ") and part in err and "\n" not in err


def test_a_fifo_in_place_of_config_json_does_not_block(mnist_run, capsys):
    (mnist_run / "config.json").unlink()
    os.mkfifo(mnist_run / "config.json")
    assert main([*MNIST, "--epochs", "2", "--resume", "--out", str(mnist_run)]) == 1
    assert "is not a regular file" in capsys.readouterr().err


def test_a_resumed_run_never_writes_outside_its_folder(mnist_run, tmp_path):
    """Every file the run writes replaced by a symlink to a file outside: resuming replaces the links
    and leaves the files they pointed to as they were."""
    victims = {}
    for name in ("metrics.jsonl", "summary.json", "model.npz", "model.json", "curves.png"):
        victim = tmp_path / f"victim-{name}"
        victim.write_text("precious")
        (mnist_run / name).unlink()
        (mnist_run / name).symlink_to(victim)
        victims[name] = victim
    assert main([*MNIST, "--epochs", "2", "--resume", "--out", str(mnist_run)]) == 0
    for name, victim in victims.items():
        assert victim.read_text() == "precious", name
        assert (mnist_run / name).is_file() and not (mnist_run / name).is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["run", *(v.name for v in victims.values())])


def test_values_beyond_the_models_dtype_are_refused(folder):
    """1e300 is a finite float64 but inf in the float32 model: refused, not loaded as inf."""
    arrays, meta = read_npz(folder / "model.npz")
    arrays["0.W"] = arrays["0.W"].astype(np.float64)
    arrays["0.W"][0, 0] = 1e300
    write_npz(folder / "model.npz", arrays, meta)
    refused(folder, "array 0.W holds NaN or infinite values (in float32)")


def test_temp_files_of_a_killed_write_are_removed_when_the_run_starts_again(mnist_run, tmp_path):
    stale = mnist_run / ".checkpoint.k3x9_q2a.npz"  # what a write killed midway leaves
    stale.write_bytes(b"half a checkpoint")
    kept = mnist_run / ".notes.txt"
    kept.write_text("mine")
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (mnist_run / ".model.abcdefgh.npz").symlink_to(victim)
    assert main([*MNIST, "--epochs", "2", "--resume", "--out", str(mnist_run)]) == 0
    assert not stale.exists() and kept.read_text() == "mine" and victim.read_text() == "precious"

"""tn.load_model on a run folder of every application, in a fresh interpreter, gives the same
predictions as the model that was saved (issue 9, acceptance 4): the layer types come from the
registry of tiefnet.nn itself, never from importing the application that wrote the folder."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import dev, host

from tiefnet import checkpoint
from tiefnet.cli import main
from tiefnet.train import predict

MNIST = ["--epochs", "1", "--train-size", "200", "--no-progress"]
RUNS = {  # name: (command line, input of the predictions: shape, kind)
    "mnist": (["mnist", "--hidden", "10", *MNIST], ((5, 784), "float")),
    "cnn": (["mnist", "--model", "cnn", "--features", "2", "--hidden", "8", *MNIST], ((3, 784), "float")),
    "charrnn": (["charrnn", "train", "TEXT", "--layers", "2", "--hidden", "8", "--seq-length", "10",
                 "--batch-size", "2", "--steps", "3", "--eval-every", "3", "--sample-length", "5", "--no-progress"],
                ((1, 12), "ids")),
    "dqn": (["dqn", "train", "CartPole-v1", "--steps", "300", "--learning-starts", "100", "--hidden", "8",
             "--check-every", "0", "--eval-episodes", "0", "--no-progress"], ((5, 4), "float")),
    "atari": (["dqn", "train", "ALE/Pong-v5", "--steps", "60", "--learning-starts", "40", "--batch-size", "4",
               "--memory", "100", "--check-every", "0", "--eval-episodes", "0", "--no-progress"],
              ((2, 4, 84, 84), "unit")),
}
APPS = {"mnist": "mnist", "cnn": "mnist", "charrnn": "charrnn", "dqn": "dqn", "atari": "dqn"}


def inputs(shape, kind, vocabulary=None):
    rng = np.random.default_rng(0)
    if kind == "ids":
        return rng.integers(0, vocabulary, shape)
    return rng.random(shape).astype(np.float32) if kind == "unit" else rng.standard_normal(shape).astype(np.float32)


def predictions(model, x):
    """The model's outputs for x from a zero state (a stateful recurrent layer's carried state is
    set aside for the call and put back, so that a training run that saves mid-way goes on unchanged)."""
    carried = [(layer, layer.state) for _, layer in model.walk() if hasattr(layer, "reset_state")]
    for layer, _ in carried:
        layer.reset_state()
    try:
        return host(predict(model, dev(x)))
    finally:
        for layer, state in carried:
            layer.state = state


@pytest.fixture(scope="module")
def run_folders(tmp_path_factory):
    """Every application's run folder, and the predictions of each model as it was saved."""
    monkeypatch = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("apps")
    text = root / "text.txt"
    text.write_text("hallo welt, hallo tiefnet. " * 40)
    original = checkpoint.save_model
    saved: dict[Path, tuple] = {}

    def save_and_remember(folder, model, info=None, *args, **kwargs):
        result = original(folder, model, info, *args, **kwargs)
        shape, kind = current["input"]
        chars = (info or {}).get("chars")
        x = inputs(shape, kind, len(chars) if chars else None)
        saved[Path(folder)] = (x, predictions(model, x))  # the last save is the one in the folder
        return result

    for module in list(sys.modules.values()):  # every module that imported save_model by name
        if getattr(module, "__name__", "").startswith("tiefnet") and getattr(module, "save_model", None) is original:
            monkeypatch.setattr(module, "save_model", save_and_remember)
    monkeypatch.setattr(checkpoint, "save_model", save_and_remember)
    current: dict = {}
    folders = {}
    try:
        for name, (argv, spec) in RUNS.items():
            if name == "atari":
                pytest.importorskip("ale_py")
            current["input"] = spec
            folders[name] = root / name
            argv = [str(text) if a == "TEXT" else a for a in argv]
            assert main([*argv, "--out", str(folders[name])]) == 0, name
    finally:
        monkeypatch.undo()
    return {name: (folder, *saved[folder]) for name, folder in folders.items()}


def test_every_application_folder_loads_in_a_fresh_interpreter(run_folders, tmp_path):
    np.savez(tmp_path / "inputs.npz", **{name: x for name, (_, x, _) in run_folders.items()})
    script = textwrap.dedent("""
        import json, sys
        import numpy as np
        import tiefnet as tn
        from tiefnet.checkpoint import read_model
        folders = json.loads(sys.argv[1])
        inputs = np.load(sys.argv[2])
        out = {}
        for name, folder in folders.items():
            model, meta = read_model(folder)
            for _, layer in model.walk():
                if hasattr(layer, "reset_state"):
                    layer.reset_state()
            out[name] = np.asarray(tn.predict(model, inputs[name]))
            out[name + ".app"] = np.array(meta["app"])
        np.savez(sys.argv[3], **out)
        apps = [m for m in sys.modules if m.startswith(("tiefnet.vision", "tiefnet.text", "tiefnet.rl", "tiefnet.cli"))]
        assert not apps, apps  # nothing but tiefnet.nn and the checkpoint code was needed
    """)
    folders = {name: str(folder) for name, (folder, _, _) in run_folders.items()}
    result = subprocess.run([sys.executable, "-c", script, json.dumps(folders), str(tmp_path / "inputs.npz"),
                             str(tmp_path / "out.npz")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    fresh = np.load(tmp_path / "out.npz")
    for name, (_, _, expected) in run_folders.items():
        # float32 GEMMs split over another number of BLAS threads round differently: not bit for bit
        np.testing.assert_allclose(fresh[name], expected, rtol=1e-5, atol=1e-6, err_msg=name)
        assert str(fresh[name + ".app"]) == APPS[name]


OLD = Path(__file__).parent / "fixtures" / "models_42af797"  # written before the layer tree (see make.py)


@pytest.mark.parametrize("name, app", [("mnist", "mnist"), ("charrnn", "charrnn"), ("dqn", "dqn")])
def test_model_folders_written_before_the_layer_tree_still_load(name, app):
    """Folders of commit 42af797: no "app" in model.json (it is inferred from the info), TimeFlatten
    from the char-rnn's module; the loaded model predicts what the old code predicted."""
    model, meta = checkpoint.read_model(OLD / name)
    assert meta["app"] == app
    expected = np.load(OLD / name / "expected.npz")
    for _, layer in model.walk():
        if hasattr(layer, "reset_state"):
            layer.reset_state()
    np.testing.assert_allclose(host(predict(model, dev(expected["x"]))), expected["y"], rtol=1e-5, atol=1e-6)

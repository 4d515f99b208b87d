"""Gatys et al.'s style transfer by optimising the picture (vision/style.py, lecture 3.4): the network
stays fixed and the gradient step is taken on x^ ("Stattdessen wird das Gradientenverfahren auf x^
angewendet"), x^' = x^ - lambda dL_total/dx^ (gd), Adam or L-BFGS-B, x^ kept in [0, 1].

The Config's errors, each optimizer on a tiny problem (a small random network, 16 x 16 pictures),
and run() end to end at 32 pixels with its run folder."""
from __future__ import annotations

import json
import math
from dataclasses import FrozenInstanceError, asdict

import numpy as np
import pytest
from PIL import Image

from tiefnet.backend import thread_limit
from tiefnet.data.pictures import read_picture, save_picture
from tiefnet.errors import ConfigError
from tiefnet.vision.features import random_features
from tiefnet.vision.style import INITS, OPTIMIZERS, Config, feature_net, optimise, run
from tiefnet.vision.style_losses import PerceptualLoss

SMALL = (4, 8, 8, 8, 8)


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Small GEMMs: a second BLAS thread only waits (and crawls on a busy machine)."""
    with thread_limit(1):
        yield


# --- Config --------------------------------------------------------------------------------------

def test_config_defaults_are_the_lectures():
    config = Config()
    assert config.alpha / config.beta == pytest.approx(1e-3)  # alpha/beta = 1e-3
    assert (config.optimizer, config.init, config.net, config.tv) == ("adam", "content", "random", 0.0)
    assert OPTIMIZERS == ("adam", "lbfgs", "gd") and INITS == ("content", "noise")
    with pytest.raises(FrozenInstanceError):
        config.eta = 1.0


@pytest.mark.parametrize("settings, message", [
    ({"optimizer": "sgd"}, "optimizer='sgd' is not one of adam, lbfgs, gd"),
    ({"optimizer": "LBFGS"}, "optimizer='LBFGS' is not one of adam, lbfgs, gd"),
    ({"init": "zeros"}, "init='zeros' is not one of content, noise"),
    ({"iterations": 0}, "iterations=0 must be a whole number >= 1"),
    ({"iterations": -3}, "iterations=-3 must be a whole number >= 1"),
    ({"iterations": 2.0}, "iterations=2.0 must be a whole number >= 1"),
    ({"iterations": True}, "iterations=True must be a whole number >= 1"),
    ({"eta": 0.0}, "eta=0.0 must be a finite number > 0"),
    ({"eta": -0.02}, "eta=-0.02 must be a finite number > 0"),
    ({"eta": math.nan}, "eta=nan must be a finite number > 0"),
    ({"eta": math.inf}, "eta=inf must be a finite number > 0"),
    ({"size": -1}, "size=-1 must be a whole number >= 0"),
    ({"threads": 0}, "threads=0 must be a whole number >= 1"),
    ({"max_pixels": 255}, "max_pixels=255 must be a whole number >= 256"),
    ({"seed": -1}, "seed=-1 must be a whole number from 0 to 2^63 - 1"),
    ({"beta": -1.0}, "beta=-1.0 must be a finite number >= 0"),
    ({"alpha": math.nan}, "alpha=nan must be a finite number >= 0"),
    ({"tv": "x"}, "tv='x' must be a finite number >= 0"),
    ({"eta": "x"}, "eta='x' must be a finite number > 0"),
])
def test_config_errors_name_the_setting(settings, message):
    with pytest.raises(ConfigError) as caught:
        Config(**settings)
    assert message in str(caught.value)


def test_feature_net_spec():
    assert feature_net("random").name == "random"


# --- optimise on a tiny problem -------------------------------------------------------------------

def tiny_problem(seed: int = 0):
    """(loss, x0 = the content picture, a_content) on a small random network, 16 x 16 pictures."""
    rng = np.random.default_rng(seed)
    content, style = (rng.random((1, 3, 16, 16)).astype(np.float32) for _ in range(2))
    loss = PerceptualLoss(random_features(0, SMALL), style, alpha=1.0, beta=1e3, tv=1.0)
    return loss, content, loss.content_target(content)


def record(steps: list):
    def on_step(i, L, parts, x):
        steps.append((i, L, dict(parts), np.array(x, copy=True)))
    return on_step


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_optimise_lowers_the_total_cost_and_returns_the_best_picture(optimizer):
    loss, x0, a_content = tiny_problem()
    L0, _, dx = loss(x0, a_content)
    # gd: lambda = eta / max|dL/dx^| of the first pass, so eta = 1e-3 moves the most-moved pixel by 1e-3
    eta = 1e-3 if optimizer == "gd" else 0.02
    steps: list = []
    x = optimise(loss, x0.copy(), a_content, Config(optimizer=optimizer, iterations=6, eta=eta), record(steps))
    assert [s[0] for s in steps] == list(range(1, len(steps) + 1))
    assert len(steps) == 6  # exactly the iterations (L-BFGS-B's own maxfun may run over: stopped here)
    costs = [s[1] for s in steps]
    assert costs[0] == pytest.approx(L0, rel=1e-6)  # the first pass is at x0
    assert min(costs) < 0.9 * L0, costs
    assert x.shape == x0.shape and x.dtype == np.float32
    assert loss(x, a_content)[0] == pytest.approx(min(costs), rel=1e-6)  # the best x^ seen
    for _, L, parts, seen in steps:
        assert {"content", "style", "tv"} <= set(parts)
        assert L == pytest.approx(parts["content"] + 1e3 * parts["style"] + parts["tv"], rel=1e-6)
        assert seen.min() >= 0.0 and seen.max() <= 1.0
    assert x.min() >= 0.0 and x.max() <= 1.0


def test_lbfgs_keeps_the_picture_in_the_box():
    """Every picture L-BFGS-B evaluates lies in [0, 1], also when its steps run into the bounds
    (a large style weight pulls the pixels far out)."""
    loss, x0, a_content = tiny_problem(1)
    steps: list = []
    optimise(loss, x0.copy(), a_content, Config(optimizer="lbfgs", iterations=8), record(steps))
    pictures = np.stack([s[3] for s in steps])
    assert pictures.min() >= 0.0 and pictures.max() <= 1.0
    assert (pictures == 0.0).any() or (pictures == 1.0).any()  # the bounds were active


@pytest.mark.parametrize("optimizer", ["adam", "gd"])
def test_adam_and_gd_leave_x0_alone(optimizer):
    loss, x0, a_content = tiny_problem()
    before = x0.copy()
    optimise(loss, x0, a_content, Config(optimizer=optimizer, iterations=2, eta=1e-12 if optimizer == "gd" else 0.02),
             lambda *step: None)
    np.testing.assert_array_equal(x0, before)


# --- run: the whole application ---------------------------------------------------------------------

def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_writes_the_run_folder(tmp_path):
    config = Config(size=32, iterations=3)
    out = tmp_path / "out"
    summary = run(config, "astronaut", "starry_night", out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "frames.gif", "loss.png", "metrics.jsonl",
                                                     "result.png", "summary.json"]
    with Image.open(out / "result.png") as result:
        assert result.size == (32, 32) and result.mode == "RGB"  # the astronaut is square
    with Image.open(out / "frames.gif") as frames:
        assert frames.size == (32, 32) and frames.n_frames >= 2
    with Image.open(out / "loss.png") as plot:
        assert plot.format == "PNG"
    assert json.loads((out / "config.json").read_text()) == asdict(config)

    metrics = lines(out / "metrics.jsonl")
    assert len(metrics) == 3 and [m["iteration"] for m in metrics] == list(range(1, len(metrics) + 1))
    for entry in metrics:
        assert {"total", "content", "style", "tv", "seconds", "style:conv1_1", "style:conv5_1"} <= set(entry)
        assert entry["total"] == pytest.approx(entry["content"] + 1e3 * entry["style"], rel=1e-6)
    assert metrics[0]["content"] == 0.0  # x^ starts as the content picture

    saved = json.loads((out / "summary.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    assert set(saved) == {"content_image", "style_image", "result", "style_reduction", "iterations", "seconds",
                          "seconds_per_iteration", "size", "net"}
    for name in ("content_image", "style_image", "result"):
        assert set(saved[name]) == {"content", "style", "tv"}
    assert saved["content_image"]["content"] == 0.0  # the style image is the painting stretched to 32 x 32: its L_style is small, not 0
    assert saved["size"] == [32, 32] and saved["net"] == "random" and saved["iterations"] == len(metrics)
    assert saved["style_reduction"] == pytest.approx(1 - saved["result"]["style"] / saved["content_image"]["style"])
    assert 0.0 < saved["style_reduction"] <= 1.0  # L_total fell, and L_content can only have grown
    best = min(m["total"] for m in metrics)
    assert saved["result"]["content"] + 1e3 * saved["result"]["style"] == pytest.approx(best, rel=1e-5)
    assert saved["seconds"] > 0 and saved["seconds_per_iteration"] == pytest.approx(saved["seconds"] / len(metrics))
    result = read_picture(out / "result.png")
    assert result.shape == (3, 32, 32)


def test_run_from_files_with_a_noise_start_is_reproducible(tmp_path):
    """Pictures from files at their own size (size 0), x^ from noise of the seed, Adam: the same twice."""
    rng = np.random.default_rng(5)
    content = save_picture(rng.random((3, 20, 28)), tmp_path / "photo.png")
    style = save_picture(rng.random((3, 40, 30)), tmp_path / "painting.png")
    config = Config(size=0, iterations=2, init="noise", optimizer="adam", tv=1.0, seed=3)
    first = run(config, content, style, tmp_path / "one", progress=False)
    again = run(config, str(content), str(style), tmp_path / "two", progress=False)
    assert first["size"] == [20, 28] and first["iterations"] == 2
    with Image.open(tmp_path / "one" / "result.png") as result:
        assert result.size == (28, 20)
    assert first["result"] == again["result"]
    assert (tmp_path / "one" / "result.png").read_bytes() == (tmp_path / "two" / "result.png").read_bytes()
    metrics = lines(tmp_path / "one" / "metrics.jsonl")
    assert metrics[0]["content"] > 0  # noise is not the content picture
    assert all(m["tv"] > 0 for m in metrics)


# regressions: a small content picture with a wide painting, L-BFGS's pass count, the gd step's size
def test_size_16_runs_with_a_wide_painting(tmp_path):
    summary = run(Config(size=16, iterations=1), "astronaut", "starry_night", tmp_path / "out", progress=False)
    assert summary["size"] == [16, 16]


@pytest.mark.parametrize("iterations", [1, 2, 5])
def test_lbfgs_makes_exactly_the_iterations(tmp_path, iterations):
    summary = run(Config(size=32, iterations=iterations, optimizer="lbfgs"), "astronaut", "starry_night", tmp_path / "out",
                  progress=False)
    assert summary["iterations"] == iterations


def test_bad_weights_are_refused_before_the_run_folder(tmp_path):
    with pytest.raises(ConfigError, match="beta=-1.0"):
        run(Config(beta=-1.0), "astronaut", "starry_night", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_gd_with_the_default_eta_lowers_the_style_cost(tmp_path):
    summary = run(Config(size=32, iterations=10, optimizer="gd"), "astronaut", "starry_night", tmp_path / "o",
                  progress=False)
    assert summary["style_reduction"] > 0

"""Fast style transfer (vision/fast_style.py, fast_style_run.py; lecture 3.4, Johnson et al. 2016):
N_FST's shapes, dL_total/dtheta through the perceptual loss against difference quotients (float64),
N_FST's forward and backward against a PyTorch twin built like pytorch/examples' TransformerNet,
training that lowers L_total, a resumed run that ends bit-identical to an uninterrupted one, the run
folder, stylised files of their input sizes, and one clear error line for each bad input."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers import dev, host
from PIL import Image

from tiefnet import backend
from tiefnet.checkpoint import read_npz, save_model, write_npz
from tiefnet.errors import CheckpointError, ConfigError, DataError, ShapeError
from tiefnet.gradcheck import relative_error
from tiefnet.nn import Conv2d, Dense, Flatten, InstanceNorm2d, ReflectionPad2d, Residual, Sequential, Upsample
from tiefnet.optim import Adam
from tiefnet.vision import fast_style
from tiefnet.vision.fast_style import forward, load_stylizer, stylize, stylize_files, transform_net
from tiefnet.vision.fast_style_run import Config, content_photos, crops, run, train_step
from tiefnet.vision.features import random_features
from tiefnet.vision.style_losses import PerceptualLoss

SMALL_FEATURES = (4, 8, 8, 8, 8)
TINY = dict(widths="4,8,8", residual_blocks=1, crop=32, photo_side=40, batch_size=2, style_size=48,
            checkpoint_every=2)


def quiet(line: str) -> None:
    pass


def size_of(path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def one_line(error) -> str:
    text = str(error.value)
    assert "\n" not in text and "Traceback" not in text
    return text


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """A tiny run of 4 steps, uninterrupted."""
    out = tmp_path_factory.mktemp("fast") / "whole"
    run(Config(steps=4, **TINY), out, progress=False, log=quiet)
    return out


# --- N_FST ------------------------------------------------------------------------------------------------

def test_the_network_maps_pictures_to_pictures_with_five_residual_blocks():
    net = transform_net((4, 8, 8), rng=np.random.default_rng(0))
    assert sum(isinstance(layer, Residual) for layer in net.layers) == 5
    assert not any(type(layer).__name__.startswith("ConvTranspose") for _, layer in net.walk())
    x = dev(np.random.default_rng(1).uniform(0, 1, (2, 3, 32, 44)).astype(np.float32))
    assert net.forward(x).shape == (2, 3, 32, 44)
    strides = [layer.S for _, layer in net.walk() if isinstance(layer, Conv2d)]
    assert strides.count(2) == 2 and fast_style.size_multiple(net) == 4


@pytest.mark.parametrize("widths, blocks", [((4, 8), 5), ((4, 0, 8), 5), ((4, 8, 8), -1), ((4, 8, 8), True)])
def test_bad_widths_or_blocks_are_config_errors(widths, blocks):
    with pytest.raises(ConfigError):
        transform_net(widths, blocks)


def test_dL_dtheta_through_the_perceptual_loss_matches_difference_quotients(float64):
    rng = np.random.default_rng(0)
    loss = PerceptualLoss(random_features(widths=SMALL_FEATURES), dev(rng.uniform(0, 1, (1, 3, 16, 16))),
                          alpha=1.0, beta=10.0, tv=5.0)
    net = transform_net((3, 4, 4), residual_blocks=1, rng=rng)
    x_in = dev(rng.uniform(0, 1, (2, 3, 16, 16)))
    a_content = loss.content_target(x_in)

    def L() -> float:
        return loss(net.forward(x_in, train=True), a_content)[0]

    _, _, dx_hat = loss(net.forward(x_in, train=True), a_content)
    net.backward(dx_hat, need_input_grad=False)
    convs = [layer for _, layer in net.walk() if isinstance(layer, Conv2d)]
    norm = next(layer for _, layer in net.walk() if isinstance(layer, InstanceNorm2d))
    chosen = [(convs[0], "W"), (norm, "gamma"), (norm, "beta"), (convs[3], "W"), (convs[-2], "W"),
              (convs[-1], "W"), (convs[-1], "b")]  # the first conv and IN, a residual conv, the last convs
    h = 1e-6
    for layer, name in chosen:
        p = layer.params[name]
        analytic, numeric = [], []
        for j in np.random.default_rng(1).choice(p.size, size=min(4, p.size), replace=False):
            index = np.unravel_index(j, p.shape)
            old = float(p[index])
            p[index] = old + h
            plus = L()
            p[index] = old - h
            minus = L()
            p[index] = old
            numeric.append((plus - minus) / (2 * h))
            analytic.append(float(layer.grads[name][index]))
        assert relative_error(np.array(analytic), np.array(numeric)) < 1e-6, (type(layer).__name__, name)


def torch_transform_net(nn, widths, blocks):
    """pytorch/examples' fast_neural_style TransformerNet with InstanceNorm2d(affine=True): every conv
    pads by ReflectionPad2d(kernel // 2), the stride-2 ones too (ours pad (1, 0, 1, 0): the same function)."""
    c1, c2, c3 = widths

    def conv(C, F, k, s=1):
        return [nn.ReflectionPad2d(k // 2), nn.Conv2d(C, F, k, stride=s)]

    def block(C, F, k, s=1):
        return [*conv(C, F, k, s), nn.InstanceNorm2d(F, affine=True), nn.ReLU()]

    class ResidualBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.g = nn.Sequential(*block(c3, c3, 3), *conv(c3, c3, 3), nn.InstanceNorm2d(c3, affine=True))

        def forward(self, x):
            return self.g(x) + x

    up = [nn.Upsample(scale_factor=2, mode="nearest")]
    return nn.Sequential(*block(3, c1, 9), *block(c1, c2, 3, 2), *block(c2, c3, 3, 2),
                         *[ResidualBlock() for _ in range(blocks)], *up, *block(c3, c2, 3), *up,
                         *block(c2, c1, 3), *conv(c1, 3, 9)).double()


def test_forward_and_backward_match_torch(float64):
    torch = pytest.importorskip("torch")
    from torch_helpers import close, leaf

    torch.manual_seed(0)
    theirs = torch_transform_net(torch.nn, (4, 6, 8), 2)
    ours = transform_net((4, 6, 8), residual_blocks=2, rng=np.random.default_rng(0))
    pairs = list(zip([m for m in theirs.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.InstanceNorm2d))],
                     [layer for _, layer in ours.walk() if isinstance(layer, (Conv2d, InstanceNorm2d))]))
    assert len(pairs) == 2 * 3 + 2 * 2 * 2 + 2 * 2 + 1
    with torch.no_grad():
        for t, o in pairs:
            if isinstance(t, torch.nn.InstanceNorm2d):
                t.weight.uniform_(0.5, 1.5)
                t.bias.uniform_(-0.5, 0.5)
            for name, value in (("W", t.weight), ("b", t.bias)) if isinstance(o, Conv2d) else \
                    (("gamma", t.weight), ("beta", t.bias)):
                o.params[name][...] = dev(value.numpy())
    rng = np.random.default_rng(1)
    x, upstream = rng.uniform(0, 1, (2, 3, 16, 20)), rng.standard_normal((2, 3, 16, 20))
    xt = leaf(x)
    yt = theirs(xt)
    yt.backward(torch.tensor(upstream))
    close(ours.forward(dev(x), train=True), yt)
    close(ours.backward(dev(upstream)), xt.grad)
    for t, o in pairs:
        for name, value in (("W", t.weight), ("b", t.bias)) if isinstance(o, Conv2d) else \
                (("gamma", t.weight), ("beta", t.bias)):
            if float(value.grad.abs().max()) < 1e-9:  # a conv bias before IN: d/db = 0 up to rounding
                assert float(np.abs(host(o.grads[name])).max()) < 1e-9
            else:
                close(o.grads[name], value.grad)


def test_banded_forward_and_stylize_of_an_odd_size(monkeypatch):
    net = transform_net((4, 8, 8), residual_blocks=2, rng=np.random.default_rng(0))
    x = dev(np.random.default_rng(2).uniform(0, 1, (1, 3, 36, 28)).astype(np.float32))
    monkeypatch.setattr(fast_style, "BAND_NUMBERS", 5000)  # many bands of a few rows
    banded = host(forward(net, x))
    np.testing.assert_allclose(banded, host(net.forward(x)), atol=1e-5)
    with backend.thread_limit(2):  # the bands shared by two threads: the same sums
        np.testing.assert_array_equal(host(forward(net, x)), banded)
    picture = np.random.default_rng(3).uniform(0, 1, (3, 37, 50)).astype(np.float32)
    x_hat = stylize(net, picture)
    assert x_hat.shape == (3, 37, 50) and x_hat.min() >= 0.0 and x_hat.max() <= 1.0
    with pytest.raises(ShapeError):
        stylize(net, picture[:, :5])


# --- training ---------------------------------------------------------------------------------------------

def test_training_lowers_the_loss_of_a_fixed_crop():
    rng = np.random.default_rng(0)
    config = Config(**{**TINY, "steps": 1})
    style = dev(rng.uniform(0, 1, (1, 3, 32, 32)).astype(np.float32))
    loss = PerceptualLoss(random_features(widths=SMALL_FEATURES), style, alpha=1.0, beta=10.0)
    x_in = dev(crops(content_photos(config), config, rng)[:1])
    net = transform_net((4, 8, 8), residual_blocks=1, rng=rng)
    optimizer = Adam(1e-2).bind(net)
    losses = [train_step(net, loss, optimizer, x_in)[0] for _ in range(30)]
    assert losses[-1] < losses[0] / 5


def test_crops_are_reproducible_pictures():
    config = Config(**TINY)
    photos = content_photos(config)
    assert all(min(p.shape[:2]) == 40 and p.dtype == np.uint8 for p in photos)
    a, b = crops(photos, config, np.random.default_rng(5)), crops(photos, config, np.random.default_rng(5))
    assert a.shape == (2, 3, 32, 32) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    np.testing.assert_array_equal(a, b)


def test_the_run_folder(whole):
    for name in ("config.json", "metrics.jsonl", "checkpoint.npz", "model.npz", "model.json", "loss.png",
                 "samples.png", "summary.json"):
        assert (whole / name).is_file(), name
    lines = [json.loads(line) for line in (whole / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2, 3, 4]
    assert {"total", "content", "style", "tv", "style:conv1_1", "seconds"} <= set(lines[0])
    summary = json.loads((whole / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["seconds_per_step"] > 0 and summary["final"]["total"] > 0
    info = json.loads((whole / "model.json").read_text())
    assert info["app"] == "fast-style"
    assert info["info"]["style"] == "starry_night" and info["info"]["net"] == "random"
    assert info["info"]["widths"] == [4, 8, 8]
    assert size_of(whole / "samples.png") == (4 * 40, 2 * 40)


def test_a_resumed_run_ends_bit_identical_to_the_uninterrupted_one(whole, tmp_path):
    out = tmp_path / "resumed"
    run(Config(steps=2, **TINY), out, progress=False, log=quiet)
    run(Config(steps=4, **TINY), out, progress=False, resume=True, log=quiet)

    def costs(folder):
        return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
                for line in (folder / "metrics.jsonl").read_text().splitlines()]

    assert costs(out) == costs(whole)
    with np.load(whole / "model.npz") as a, np.load(out / "model.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    with pytest.raises(ConfigError, match="other settings"):
        run(Config(steps=4, **{**TINY, "crop": 36}), out, progress=False, resume=True, log=quiet)


def test_a_crafted_checkpoint_is_one_checkpoint_error(whole, tmp_path):
    out = tmp_path / "crafted"
    shutil.copytree(whole, out)
    arrays, meta = read_npz(out / "checkpoint.npz")
    arrays["history"] = arrays["history"][:2]
    write_npz(out / "checkpoint.npz", arrays, meta)
    with pytest.raises(CheckpointError) as error:
        run(Config(steps=5, **TINY), out, progress=False, resume=True, log=quiet)
    assert "history" in one_line(error)


# --- stylising files --------------------------------------------------------------------------------------

def test_stylize_files_writes_pngs_of_the_input_sizes(whole, tmp_path):
    odd = tmp_path / "odd.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (37, 50, 3), dtype=np.uint8)).save(odd)
    written = stylize_files(whole, [odd, "chelsea"], tmp_path / "out", size=None)
    assert [p.name for p in written] == ["odd.png", "chelsea.png"]
    assert size_of(written[0]) == (50, 37) and size_of(written[1]) == (451, 300)
    assert size_of(stylize_files(whole, [odd], tmp_path / "small", size=24)[0]) == (24, 18)
    two_threads = stylize_files(whole, [odd], tmp_path / "threads", threads=2)[0]
    assert two_threads.read_bytes() == written[0].read_bytes()
    with pytest.raises(ConfigError) as error:
        stylize_files(whole, [tmp_path / "out" / "odd.png"], tmp_path / "out")
    assert "overwrite" in one_line(error)


def test_bad_photo_folders_are_one_data_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as error:
        run(Config(images=str(empty), steps=1, **TINY), tmp_path / "a", progress=False, log=quiet)
    assert "no photos" in one_line(error)
    bad = tmp_path / "bad"
    bad.mkdir()
    Image.new("RGB", (40, 40)).save(bad / "good.png")
    (bad / "broken.png").write_text("not a picture")
    with pytest.raises(DataError) as error:
        run(Config(images=str(bad), steps=1, **TINY), tmp_path / "b", progress=False, log=quiet)
    assert "broken.png" in one_line(error)
    assert not (tmp_path / "b").exists()
    with pytest.raises(ConfigError):
        Config(crop=30)


@pytest.mark.parametrize("kind", ["app", "channels", "layers", "shape", "upsample", "widths"])
def test_bad_model_folders_are_one_checkpoint_error(whole, tmp_path, kind):
    folder = tmp_path / kind
    rng = np.random.default_rng(0)
    if kind == "app":
        save_model(folder, transform_net((4, 8, 8), 1, rng), app="mnist")
    elif kind == "channels":  # 3 in, 2 out
        save_model(folder, Sequential(ReflectionPad2d(1), Conv2d(3, 2, 3, rng=rng)), app="fast-style")
    elif kind == "layers":
        save_model(folder, Sequential(Flatten(), Dense(3 * 16 * 16, 2, rng=rng)), app="fast-style")
    elif kind == "upsample":  # a picture layer that would allocate 40,000 x the picture: not N_FST
        save_model(folder, Sequential(Upsample(200), Conv2d(3, 3, 1, rng=rng)), app="fast-style",
                   info={"widths": [4, 8, 8], "residual_blocks": 1})
    elif kind == "widths":  # N_FST itself, but model.json claims widths no N_FST may have
        save_model(folder, transform_net((4, 8, 8), 1, rng), app="fast-style",
                   info={"widths": [4, 8, 10**6], "residual_blocks": 1})
    else:
        shutil.copytree(whole, folder)
        arrays, meta = read_npz(folder / "model.npz")
        arrays["1.W"] = arrays["1.W"][:, :, :3]
        write_npz(folder / "model.npz", arrays, meta)
    with pytest.raises(CheckpointError) as error:
        load_stylizer(folder)
    assert {"app": "mnist", "channels": "names widths None", "layers": "Flatten", "shape": "1.W",
            "upsample": "is not N_FST", "widths": "names widths [4, 8, 1000000]"}[kind] in one_line(error)


def test_the_stylizer_of_a_run_folder(whole):
    net, info = load_stylizer(whole)
    assert info["widths"] == [4, 8, 8]
    picture = np.random.default_rng(0).uniform(0, 1, (3, 32, 32)).astype(np.float32)
    assert stylize(net, picture).dtype == backend.dtype()

"""VGG-19 for style transfer (vision/vgg.py, lecture 3.4): the layer layout of torchvision's
``vgg19().features``, weights from a torch state dict (.pth) and from .safetensors through the
converted .npz, features and dC/dx at every tap against PyTorch, and one clear DataError for each
bad weights file (with nothing written)."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers import dev, host

from tiefnet.checkpoint import write_npz
from tiefnet.errors import DataError
from tiefnet.nn import Conv2d, MaxPool2d, ReLU
from tiefnet.vision.features import CONTENT_LAYER, IMAGENET_MEAN, IMAGENET_STD, STYLE_LAYERS
from tiefnet.vision.vgg import VGG19_POOLS, VGG19_TAPS, convert_weights, load_vgg19, vgg19_features, vgg19_net

CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]  # "E"


def reference_layout():
    """("conv", C, F) / ("relu",) / ("pool",) per index, and {conv<stage>_<k>: its ReLU's index}, from
    torchvision's configuration "E" the way torchvision.models.vgg.make_layers unrolls it."""
    layout, names, channels, stage, k = [], {}, 3, 1, 0
    for v in CFG:
        if v == "M":
            layout.append(("pool",))
            stage, k = stage + 1, 0
            continue
        k += 1
        layout += [("conv", channels, v), ("relu",)]
        names[f"conv{stage}_{k}"] = len(layout) - 1
        channels = v
    return layout, names


def torch_vgg19(torch):
    """torchvision's vgg19 built by hand: state dict keys features.i.weight/bias (+ a classifier,
    which conversion ignores); He-normal filters, small random biases."""
    nn = torch.nn
    layers = []
    for entry in reference_layout()[0]:
        if entry[0] == "conv":
            layers += [nn.Conv2d(entry[1], entry[2], 3, padding=1)]
        else:
            layers += [nn.ReLU() if entry[0] == "relu" else nn.MaxPool2d(kernel_size=2, stride=2)]
    model = nn.Module()
    model.features = nn.Sequential(*layers)
    model.classifier = nn.Sequential(nn.Linear(8, 2))
    torch.manual_seed(0)
    with torch.no_grad():
        for layer in model.features:
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                layer.bias.normal_(0.0, 0.05)
    return model.eval()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """(torch model, its state dict, the .pth file of it)."""
    torch = pytest.importorskip("torch")
    model = torch_vgg19(torch)
    state = model.state_dict()
    path = tmp_path_factory.mktemp("vgg") / "vgg19.pth"
    torch.save(state, path)
    return model, state, path


def assert_matches_torch(features, model, seed=0):
    """Features at every tap and dC/dx for a random upstream gradient at all taps, against autograd
    on the same (x - mean) / std input, to 1e-5 relative to the largest entry."""
    torch = pytest.importorskip("torch")
    from torch_helpers import close

    rng = np.random.default_rng(seed)
    x = rng.random((1, 3, 32, 32)).astype(np.float32)
    ours = features.forward(dev(x), train=True)
    grads = {name: rng.standard_normal(host(a).shape).astype(np.float32) for name, a in ours.items()}
    dx = features.backward({name: dev(g) for name, g in grads.items()})

    x_t = torch.tensor(x, requires_grad=True)
    a = (x_t - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    theirs = {}
    for i, layer in enumerate(model.features[: max(VGG19_TAPS.values()) + 1]):
        a = layer(a)
        theirs.update({name: a for name, index in VGG19_TAPS.items() if index == i})
    sum((theirs[name] * torch.tensor(g)).sum() for name, g in grads.items()).backward()
    assert set(ours) == set(VGG19_TAPS)
    for name in VGG19_TAPS:
        close(ours[name], theirs[name])
    close(dx, x_t.grad)


def test_layout_is_torchvisions_vgg19_features():
    layout, names = reference_layout()
    net = vgg19_net(np.random.default_rng(0))
    assert len(net) == len(layout) == 37
    for i, (layer, entry) in enumerate(zip(net.layers, layout)):
        kind = {"conv": Conv2d, "relu": ReLU, "pool": MaxPool2d}[entry[0]]
        assert isinstance(layer, kind), f"layer {i}: {layer.describe()} is not {entry}"
        if entry[0] == "conv":
            assert host(layer.params["W"]).shape == (entry[2], entry[1], 3, 3) and layer.P == 1 and layer.S == 1
            assert host(layer.params["b"]).shape == (entry[2],)
            std = host(layer.params["W"]).std()  # He: N(0, 2 / (C Q R))
            assert abs(std / np.sqrt(2 / (9 * entry[1])) - 1) < 0.1
        if entry[0] == "pool":
            assert layer.k == layer.s == 2
    assert tuple(i for i, e in enumerate(layout) if e[0] == "pool") == VGG19_POOLS == (4, 9, 18, 27, 36)
    assert [e[2] for e in layout if e[0] == "conv"] == [64] * 2 + [128] * 2 + [256] * 4 + [512] * 8
    assert VGG19_TAPS == {name: names[name] for name in VGG19_TAPS}  # the ReLU after each named conv
    assert set(VGG19_TAPS) == {*STYLE_LAYERS, CONTENT_LAYER}

    features = vgg19_features(net)
    assert features.name == "vgg19" and features.content_layer == CONTENT_LAYER
    assert features.style_weights == {name: 0.2 for name in STYLE_LAYERS}
    assert (features.mean, features.std) == (IMAGENET_MEAN, IMAGENET_STD) and features.min_side == 16
    assert not net.has_trainable_params()  # frozen (3.4)


def test_pth_converted_to_npz_matches_torch(reference, tmp_path):
    model, state, path = reference
    target = convert_weights(path, tmp_path / "vgg19.npz")
    assert target == tmp_path / "vgg19.npz" and target.is_file()
    features = load_vgg19(target)
    assert_matches_torch(features, model)
    conv = features.taps.net[34]  # the last layer, beyond the taps, loaded too
    assert host(conv.params["W"]).dtype == np.float32
    np.testing.assert_array_equal(host(conv.params["W"]), state["features.34.weight"].numpy())
    direct = load_vgg19(path)  # a .pth read directly, converted in memory
    for index in (0, 21, 34):
        np.testing.assert_array_equal(host(direct.taps.net[index].params["W"]), state[f"features.{index}.weight"].numpy())
        np.testing.assert_array_equal(host(direct.taps.net[index].params["b"]), state[f"features.{index}.bias"].numpy())


def test_safetensors_converted_to_npz_matches_torch(reference, tmp_path):
    from safetensors.numpy import save_file

    model, state, _ = reference
    path = tmp_path / "vgg19.safetensors"
    save_file({name: tensor.numpy() for name, tensor in state.items()}, str(path))
    features = load_vgg19(convert_weights(path, tmp_path / "vgg19.npz"))
    assert_matches_torch(features, model, seed=1)


# --- bad weights files: one DataError line naming the file and the layer, nothing written --------

SHAPES = {index: (F, C, 3, 3) for index, C, F in
          [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256)]}


def first_layers(upto: int, dtype=np.float32, replace: dict | None = None) -> dict[str, np.ndarray]:
    """The state dict of the conv layers features.0 ... features.<upto> (zeros), with ``replace``'s entries."""
    state = {}
    for index, shape in SHAPES.items():
        if index <= upto:
            state[f"features.{index}.weight"] = np.zeros(shape, dtype)
            state[f"features.{index}.bias"] = np.zeros(shape[:1], dtype)
    return {**state, **(replace or {})}


def save(kind: str, state: dict, path):
    if kind == "pth":
        torch = pytest.importorskip("torch")
        torch.save({name: torch.from_numpy(a) for name, a in state.items()}, path)
    else:
        from safetensors.numpy import save_file

        save_file(state, str(path))
    return path


def assert_refused(source, target, *fragments):
    with pytest.raises(DataError) as caught:
        convert_weights(source, target)
    message = str(caught.value)
    assert "\n" not in message and str(source) in message
    for fragment in fragments:
        assert fragment in message, message
    assert not target.exists()
    return message


@pytest.mark.parametrize("kind", ["pth", "safetensors"])
def test_a_missing_layer_is_named(kind, tmp_path):
    source = save(kind, first_layers(7), tmp_path / f"w.{kind}")
    assert_refused(source, tmp_path / "out.npz", "missing layer features.10 (features.10.weight)")
    prefixed = {"module." + name: a for name, a in first_layers(0).items()}  # nn.DataParallel's keys
    source = save(kind, prefixed, tmp_path / f"m.{kind}")
    assert_refused(source, tmp_path / "out.npz", "missing layer features.2 (module.features.2.weight)")
    bare = {name.removeprefix("features."): a for name, a in first_layers(2).items()}  # vgg.features alone
    source = save(kind, bare, tmp_path / f"b.{kind}")
    assert_refused(source, tmp_path / "out.npz", "missing layer features.5 (5.weight)")


@pytest.mark.parametrize("kind", ["pth", "safetensors"])
def test_a_misshaped_layer_names_expected_and_got(kind, tmp_path):
    state = first_layers(5, replace={"features.5.weight": np.zeros((128, 64, 5, 5), np.float32)})
    source = save(kind, state, tmp_path / f"w.{kind}")
    assert_refused(source, tmp_path / "out.npz", "features.5 (features.5.weight)", "shape (128, 64, 5, 5)",
                   "expects (128, 64, 3, 3)")
    source = save(kind, first_layers(0, replace={"features.0.bias": np.zeros((65,), np.float32)}), tmp_path / f"b.{kind}")
    assert_refused(source, tmp_path / "out.npz", "features.0 (features.0.bias)", "(65,)", "expects (64,)")


@pytest.mark.parametrize("kind, shown", [("pth", "int64"), ("safetensors", "I64")])
def test_integer_weights_are_refused(kind, shown, tmp_path):
    source = save(kind, first_layers(2, np.int64), tmp_path / f"w.{kind}")
    assert_refused(source, tmp_path / "out.npz", "features.0 (features.0.weight)", f"holds {shown} values",
                   "not floating-point")


@pytest.mark.parametrize("kind", ["pth", "safetensors"])
def test_nan_weights_and_vgg19_bn_are_refused(kind, tmp_path):
    state = first_layers(2, replace={"features.2.bias": np.full((64,), np.nan, np.float32)})
    assert_refused(save(kind, state, tmp_path / f"n.{kind}"), tmp_path / "out.npz", "features.2 (features.2.bias)",
                   "NaN")
    state = first_layers(0, replace={"features.1.running_mean": np.zeros((64,), np.float32)})
    assert_refused(save(kind, state, tmp_path / f"bn.{kind}"), tmp_path / "out.npz", "vgg19_bn")


@pytest.mark.parametrize("kind", ["pth", "safetensors"])
def test_files_that_are_no_state_dict(kind, tmp_path):
    source = save(kind, {"weight": np.zeros((2, 2), np.float32)}, tmp_path / f"other.{kind}")
    assert_refused(source, tmp_path / "out.npz", "not a VGG-19 state dict", "no layer features.0.weight",
                   "keys: 'weight')")
    garbage = tmp_path / f"garbage.{kind}"
    garbage.write_bytes(b"\x80\x04 not a weights file" * 10)
    assert_refused(garbage, tmp_path / "out.npz", "not a readable")


def test_torch_files_holding_no_dict_or_pickled_objects(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save([torch.zeros(2)], tmp_path / "list.pth")
    assert_refused(tmp_path / "list.pth", tmp_path / "out.npz", "holds a list, not a state dict")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pth")  # a pickled module: weights_only refuses it
    assert_refused(tmp_path / "module.pth", tmp_path / "out.npz", "holds pickled Python objects",
                   "torch.nn.modules.linear.Linear", "state_dict()")
    torch.save({"features.0.weight": "text"}, tmp_path / "str.pth")
    assert_refused(tmp_path / "str.pth", tmp_path / "out.npz", "features.0.weight is a str, not a tensor")


def test_legacy_torch_files_are_read_without_mmap(tmp_path):
    torch = pytest.importorskip("torch")  # torchvision's 2017 weights predate the zip format
    state = {name: torch.from_numpy(a) for name, a in first_layers(7).items()}
    torch.save(state, tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    assert_refused(tmp_path / "old.pth", tmp_path / "out.npz", "missing layer features.10")  # read up to there


def test_missing_file_and_unknown_format(tmp_path):
    assert_refused(tmp_path / "absent.pth", tmp_path / "out.npz", "no such file")
    (tmp_path / "w.h5").write_bytes(b"x")
    assert_refused(tmp_path / "w.h5", tmp_path / "out.npz", "unknown weights format .h5", ".safetensors")
    with pytest.raises(DataError, match="no such file"):
        load_vgg19(tmp_path / "absent.npz")


@pytest.mark.parametrize("zip_format", [True, False])
def test_pth_is_read_without_torch(zip_format, tmp_path, monkeypatch):
    """tiefnet parses the pickle's opcodes itself: with torch hidden a .pth still converts, to the same numbers."""
    torch = pytest.importorskip("torch")  # only to write the file
    state = first_layers(2)
    state["features.2.bias"] = np.arange(64, dtype=np.float32) / 7
    torch.save({name: torch.from_numpy(a) for name, a in state.items()}, tmp_path / "w.pth",
               _use_new_zipfile_serialization=zip_format)
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    message = assert_refused(tmp_path / "w.pth", tmp_path / "out.npz", "missing layer features.5")
    assert "PyTorch" not in message
    from tiefnet.vision.pth import read_state_dict

    read = read_state_dict(tmp_path / "w.pth")
    assert sorted(read) == sorted(state)
    for name, a in state.items():
        assert read[name].shape == a.shape and read[name].dtype == "float32"
        np.testing.assert_array_equal(read[name].read(), a)


def test_a_failed_conversion_leaves_an_existing_target_alone(tmp_path):
    target = tmp_path / "vgg19.npz"
    target.write_bytes(b"the previous file")
    source = save("safetensors", first_layers(0), tmp_path / "w.safetensors")
    with pytest.raises(DataError, match="missing layer features.2"):
        convert_weights(source, target)
    assert target.read_bytes() == b"the previous file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vgg19.npz", "w.safetensors"]  # no temp file left


def npz_layers(**replace) -> dict[str, np.ndarray]:
    """A converted file's first layer, entries replaced ("features_0_W")."""
    arrays = {"features.0.W": np.zeros((64, 3, 3, 3), np.float32), "features.0.b": np.zeros(64, np.float32)}
    arrays.update({key.replace("_", "."): value for key, value in replace.items()})
    return arrays


@pytest.mark.parametrize("arrays, meta, fragments", [
    (npz_layers(), {"app": "vgg19"}, ["missing layer features.2.W"]),
    (npz_layers(features_0_W=np.zeros((64, 3, 5, 5), np.float32)), {"app": "vgg19"},
     ["layer features.0.W has shape (64, 3, 5, 5), VGG-19 expects (64, 3, 3, 3)"]),
    (npz_layers(features_0_b=np.zeros(64, np.int32)), {"app": "vgg19"}, ["features.0.b holds int32 values"]),
    (npz_layers(), {"app": "mnist"}, ["not a converted VGG-19 file", "convert_weights"]),
])
def test_bad_converted_files(arrays, meta, fragments, tmp_path):
    path = tmp_path / "vgg19.npz"
    write_npz(path, arrays, meta)
    with pytest.raises(DataError) as caught:
        load_vgg19(path)
    assert str(path) in str(caught.value) and all(f in str(caught.value) for f in fragments), str(caught.value)


def test_a_text_file_named_npz(tmp_path):
    (tmp_path / "vgg19.npz").write_text("weights")
    with pytest.raises(DataError, match="not a readable .npz file"):
        load_vgg19(tmp_path / "vgg19.npz")

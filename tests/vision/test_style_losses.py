"""The costs of style transfer (vision/style_losses.py) and its feature networks (vision/features.py),
lecture 3.4 (Gatys, Ecker, Bethge 2016):

    L_content = 1/2 sum_{f,j} (a^l_content,f,j - a^^l_f,j)^2                     (layer conv4_2)
    G^^l_{f,f'} = sum_j a^^l_{f,j} a^^l_{f',j}
    L_style(l) = 1/(4 (F_l M_l)^2) sum_{f,f'} (G^l_style,f,f' - G^^l_f,f')^2,  L_style = sum_l 1/5 L_style(l)
    L_total = alpha L_content + beta L_style + tv L_TV      (averaged over the N pictures)

Values by hand, each cost's gradient and dL_total/dx through the whole (float64) feature network by
central differences, and L_total, its parts, the Gram matrices and dL_total/dx against PyTorch autograd
on a hand-built torchvision VGG-19 (through convert_weights + load_vgg19) and on the random network."""
from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import dev, host

from tiefnet.backend import thread_limit, xp
from tiefnet.errors import ConfigError, ShapeError
from tiefnet.gradcheck import numerical_gradient, relative_error
from tiefnet.nn import Conv2d, MaxPool2d, ReLU
from tiefnet.vision.features import (CONTENT_LAYER, IMAGENET_MEAN, IMAGENET_STD, RANDOM_GAIN, STYLE_LAYERS,
                                     FeatureNet, random_features)
from tiefnet.vision.style_losses import PerceptualLoss, content_loss, gram, style_loss, tv_loss

TOL = 1e-6  # central differences, float64
SMALL = (4, 8, 8, 8, 8)  # filters of a small random network for the difference quotients
SHAPES = [(1, 1, 2, 3), (2, 3, 4, 5), (2, 4, 1, 6), (3, 2, 3, 3)]  # (N, F, H, W) of a layer's activations
IDS = ["N{}-F{}-{}x{}".format(*s) for s in SHAPES]


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Small GEMMs: a second BLAS thread only waits (and crawls on a busy machine)."""
    with thread_limit(1):
        yield


def randn(shape, seed):
    return dev(np.random.default_rng(seed).standard_normal(shape))


def pictures(shape, seed, dtype=np.float64):
    return dev(np.random.default_rng(seed).random(shape).astype(dtype))


def small_net(seed: int = 0, widths=SMALL, dtype=np.float64) -> FeatureNet:
    """random_features with its filters cast to ``dtype`` (they are made float32)."""
    features = random_features(seed, widths)
    for layer in features.taps.param_layers():
        for name, p in layer.params.items():
            layer.params[name] = dev(host(p).astype(dtype))
    return features


def check_cost(cost, v, seed: int) -> float:
    """Relative error of c dL/dv (``cost()`` -> (L, dL/dv)) against difference quotients of c L, for a
    random upstream scale c = dC/dL."""
    c = float(np.random.default_rng(seed).standard_normal()) + 2.0  # away from 0
    _, grad = cost()
    grad = grad.copy()
    numeric = numerical_gradient(lambda: xp.asarray(cost()[0]), v, xp.asarray(c))
    return relative_error(c * grad, numeric)


# --- values by hand --------------------------------------------------------------------------

# one picture, F = 2 feature maps of 2 x 2 positions: a_{0,:} = (0, 1, 2, 3), a_{1,:} = (4, 5, 6, 7)
TINY = np.arange(8.0).reshape(1, 2, 2, 2)
TINY_GRAM = np.array([[0 + 1 + 4 + 9, 0 * 4 + 1 * 5 + 2 * 6 + 3 * 7],
                      [0 * 4 + 1 * 5 + 2 * 6 + 3 * 7, 16 + 25 + 36 + 49]])  # [[14, 38], [38, 126]]


def test_gram_by_hand():
    np.testing.assert_array_equal(host(gram(dev(TINY))), TINY_GRAM[None])
    two = np.concatenate([TINY, 2 * TINY[:, ::-1]])  # a second picture: maps swapped and doubled
    np.testing.assert_array_equal(host(gram(dev(two))), [TINY_GRAM, 4 * TINY_GRAM[::-1, ::-1]])


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_gram_is_the_inner_products_of_the_feature_maps(shape):
    """G_{f,f'} = <a_{f,:}, a_{f',:}>, also for a Conv2d's output layout (features innermost in memory)."""
    a = host(randn(shape, 1))
    expected = np.einsum("nfhw,nghw->nfg", a, a)
    np.testing.assert_allclose(host(gram(dev(a))), expected, rtol=1e-12, atol=1e-12)
    channels_last = np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # same values, (N, F, H, W)
    np.testing.assert_allclose(host(gram(dev(channels_last))), expected, rtol=1e-12, atol=1e-12)


def test_content_loss_by_hand():
    a_content = np.zeros((1, 2, 2, 2))
    L, da = content_loss(dev(TINY), dev(a_content))
    assert L == 0.5 * (np.arange(8.0) ** 2).sum() == 70.0
    np.testing.assert_array_equal(host(da), TINY)  # dL/da^ = a^ - a_content


def test_style_loss_by_hand():
    """Against G_style = 0: L = 1/(4 F^2 M^2) sum G^2 = (14^2 + 2 38^2 + 126^2) / (4 * 2^2 * 4^2) = 74.0625."""
    L, da = style_loss(dev(TINY), dev(np.zeros((1, 2, 2))))
    assert L == pytest.approx((14**2 + 2 * 38**2 + 126**2) / (4 * 2**2 * 4**2), rel=1e-12)
    assert L == pytest.approx(74.0625, rel=1e-12)
    A = TINY.reshape(2, 4)  # a_{f,j}
    np.testing.assert_allclose(host(da), (TINY_GRAM @ A / (2 * 4) ** 2).reshape(1, 2, 2, 2), rtol=1e-12)


def test_tv_loss_by_hand():
    """One 2 x 3 channel: vertical differences (3, 0, 1), horizontal (1, 1) and (-2, 2): L = 10 + 10 = 20."""
    x = np.array([[[[0.0, 1.0, 2.0], [3.0, 1.0, 3.0]]]])
    L, dx = tv_loss(dev(x))
    assert L == (9 + 0 + 1) + (1 + 1 + 4 + 4) == 20.0
    # dL/dx_{i,j} = 2 (sum of the differences that end at the pixel - those that start there)
    expected = 2 * np.array([[[[-3 - 1, -0 + 1 - 1, -1 + 1], [3 - (-2), 0 + (-2) - 2, 1 + 2]]]])  # [[-8, 0, 0], [10, -8, 6]]
    np.testing.assert_array_equal(host(dx), expected)


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_equal_inputs_cost_nothing(shape):
    a = randn(shape, 2)
    L, da = content_loss(a, a.copy())
    assert L == 0.0 and not host(da).any()
    L, da = style_loss(a, gram(a))  # a picture against its own Gram matrices
    assert L == pytest.approx(0.0, abs=1e-24) and np.abs(host(da)).max() < 1e-12
    x = dev(np.full((shape[0], 3, *shape[2:]), 0.37))  # a constant picture has no variation
    L, dx = tv_loss(x)
    assert L == 0.0 and not host(dx).any()


def test_style_loss_is_the_same_for_every_arrangement_of_the_positions():
    """The Gram matrix forgets where a feature occurs (3.4: the sun could be elsewhere in the painting)."""
    a = host(randn((2, 3, 4, 5), 3))
    shuffled = a.reshape(2, 3, 20)[:, :, np.random.default_rng(0).permutation(20)].reshape(2, 3, 4, 5)
    np.testing.assert_allclose(host(gram(dev(shuffled))), host(gram(dev(a))), rtol=1e-12)
    assert style_loss(dev(shuffled), gram(dev(a)))[0] == pytest.approx(0.0, abs=1e-20)


# --- gradients by central differences (float64) ---------------------------------------------

@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_content_loss_gradcheck(shape):
    a, a_content = randn(shape, 10), randn(shape, 11)
    assert check_cost(lambda: content_loss(a, a_content), a, seed=1) < TOL


@pytest.mark.parametrize("one_style", [True, False], ids=["G_style-1-for-all", "G_style-per-picture"])
@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_style_loss_gradcheck(shape, one_style):
    a = randn(shape, 12)
    target = randn(((1,) if one_style else shape[:1]) + shape[1:], 13)
    G_style = gram(target)  # a Gram matrix (symmetric), as PerceptualLoss gives
    assert check_cost(lambda: style_loss(a, G_style), a, seed=2) < TOL


@pytest.mark.parametrize("shape", [(1, 3, 2, 2), (2, 3, 4, 5), (2, 1, 1, 4), (3, 3, 5, 1)])
def test_tv_loss_gradcheck(shape):
    x = randn(shape, 14)
    assert check_cost(lambda: tv_loss(x), x, seed=3) < TOL


def total_of(loss: PerceptualLoss, x, a_content) -> float:
    """L_total from parts_of (forward only: half the work of loss(x, a_content) per difference quotient;
    that the two agree is tested below)."""
    parts = loss.parts_of(x, a_content)
    return loss.alpha * parts["content"] + loss.beta * parts["style"] + loss.tv * parts["tv"]


def test_perceptual_loss_gradcheck_through_the_feature_network():
    """dL_total/dx of a mini-batch of N = 2 pictures (16 x 20: the last pooling drops a row) through the
    whole random network, with alpha, beta and tv all nonzero and each part of L_total a similar share
    (so that an error in one part's gradient cannot hide behind the others)."""
    features = small_net()
    x, content, style = pictures((2, 3, 16, 20), 20), pictures((2, 3, 16, 20), 21), pictures((1, 3, 16, 20), 22)
    probe = PerceptualLoss(features, style)
    parts = probe.parts_of(x, probe.content_target(content))
    alpha, beta, tv = 0.7, 1.3 * parts["content"] / parts["style"], 0.9 * parts["content"] / parts["tv"]
    loss = PerceptualLoss(features, style, alpha, beta, tv)
    a_content = loss.content_target(content)
    _, _, dx = loss(x, a_content)
    c = 1.7  # an upstream scale dC/dL_total
    numeric = numerical_gradient(lambda: xp.asarray(total_of(loss, x, a_content)), x, xp.asarray(c), h=1e-6)
    assert relative_error(c * dx, numeric) < TOL
    assert host(dx).dtype == np.float64 and dx.shape == x.shape


def test_perceptual_loss_averages_over_the_pictures():
    """L_total and its parts of a mini-batch are the mean of each picture's own; dL/dx of the batch is
    each picture's dL/dx divided by N (the 1/N appears once, in PerceptualLoss)."""
    features = small_net()
    x, content, style = pictures((2, 3, 16, 16), 30), pictures((2, 3, 16, 16), 31), pictures((1, 3, 16, 16), 32)
    loss = PerceptualLoss(features, style, alpha=0.5, beta=2e3, tv=3.0)
    total, parts, dx = loss(x, loss.content_target(content))
    alone = [loss(x[i:i + 1], loss.content_target(content[i:i + 1])) for i in range(2)]
    assert total == pytest.approx((alone[0][0] + alone[1][0]) / 2, rel=1e-12)
    for name in parts:
        assert parts[name] == pytest.approx((alone[0][1][name] + alone[1][1][name]) / 2, rel=1e-12), name
    for i in range(2):
        np.testing.assert_allclose(host(dx[i]), host(alone[i][2][0]) / 2, rtol=1e-10, atol=1e-12 * np.abs(host(dx)).max())


def test_perceptual_loss_parts_add_up_and_the_gradient_is_linear_in_the_weights():
    features = small_net()
    x, content, style = pictures((2, 3, 16, 16), 40), pictures((2, 3, 16, 16), 41), pictures((1, 3, 16, 16), 42)
    alpha, beta, tv = 0.3, 5e2, 2.0
    loss = PerceptualLoss(features, style, alpha, beta, tv)
    a_content = loss.content_target(content)
    total, parts, dx = loss(x, a_content)
    assert set(parts) == {"content", "style", "tv", *(f"style:{name}" for name in STYLE_LAYERS)}
    assert parts["style"] == pytest.approx(sum(parts[f"style:{name}"] for name in STYLE_LAYERS) / 5, rel=1e-12)
    assert total == pytest.approx(alpha * parts["content"] + beta * parts["style"] + tv * parts["tv"], rel=1e-12)
    assert total == pytest.approx(total_of(loss, x, a_content), rel=1e-12)
    alone = loss.parts_of(x, a_content)  # the costs without a backward pass
    assert alone == pytest.approx({name: parts[name] for name in ("content", "style", "tv")}, rel=1e-12)
    dx_of = {}
    for part, weights in (("content", (1, 0, 0)), ("style", (0, 1, 0)), ("tv", (0, 0, 1))):
        one = PerceptualLoss(features, style, *weights)
        _, one_parts, dx_of[part] = one(x, a_content)
        assert one_parts["content"] == pytest.approx(parts["content"], rel=1e-12)
        assert one_parts["style"] == pytest.approx(parts["style"], rel=1e-12)
    np.testing.assert_allclose(host(dx), host(alpha * dx_of["content"] + beta * dx_of["style"] + tv * dx_of["tv"]),
                               rtol=1e-9, atol=1e-12 * np.abs(host(dx)).max())


def test_perceptual_loss_with_the_content_layer_among_the_style_layers():
    """A layer that carries both costs gets both gradients (the dict of taps adds them)."""
    features = small_net()
    both = FeatureNet(features.taps, {"conv1_1": 0.5, "conv4_2": 0.5}, "conv4_2")
    x, content, style = pictures((1, 3, 16, 16), 50), pictures((1, 3, 16, 16), 51), pictures((1, 3, 16, 16), 52)
    probe = PerceptualLoss(both, style)
    parts = probe.parts_of(x, probe.content_target(content))
    loss = PerceptualLoss(both, style, alpha=1.0, beta=parts["content"] / parts["style"])
    a_content = loss.content_target(content)
    _, _, dx = loss(x, a_content)
    numeric = numerical_gradient(lambda: xp.asarray(total_of(loss, x, a_content)), x, xp.asarray(1.0))
    assert relative_error(dx, numeric) < TOL


# --- against PyTorch autograd -----------------------------------------------------------------

def torch_layers(torch, features: FeatureNet):
    """A torch.nn.Sequential with the same layers and weights (float64) as a FeatureNet's network."""
    nn = torch.nn
    layers = []
    for layer in features.taps.net.layers:
        if isinstance(layer, Conv2d):
            conv = nn.Conv2d(layer.C, layer.F, (layer.Q, layer.R), stride=layer.S, padding=layer.P)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(host(layer.params["W"]).astype(np.float64)))
                conv.bias.copy_(torch.from_numpy(host(layer.params["b"]).astype(np.float64)))
            layers.append(conv)
        elif isinstance(layer, ReLU):
            layers.append(nn.ReLU())
        else:
            assert isinstance(layer, MaxPool2d), layer.describe()
            layers.append(nn.MaxPool2d(layer.k, layer.s))
    return nn.Sequential(*layers).double().requires_grad_(False)


class TorchCosts:
    """The lecture's costs in torch (float64), written from the formulas, for one feature network."""

    def __init__(self, torch, layers, features: FeatureNet):
        self.torch, self.layers, self.features = torch, layers, features
        self.mean = torch.tensor(features.mean, dtype=torch.float64).view(1, 3, 1, 1)
        self.std = torch.tensor(features.std, dtype=torch.float64).view(1, 3, 1, 1)

    def acts(self, x):
        taps = self.features.taps.taps
        a, out = (x - self.mean) / self.std, {}
        for i, layer in enumerate(self.layers[: max(taps.values()) + 1]):
            a = layer(a)
            out.update({name: a for name, index in taps.items() if index == i})
        return out

    @staticmethod
    def gram(a):
        N, F, H, W = a.shape
        A = a.reshape(N, F, H * W)  # a_{f,j}
        return A @ A.transpose(1, 2)

    def __call__(self, x, content, style, alpha, beta, tv):
        """{"total", "content", "style", "tv", "gram:<layer>", "G_style:<layer>"} for pictures x."""
        a_x, a_content, a_style = self.acts(x), self.acts(content), self.acts(style)
        layer = self.features.content_layer
        out = {"content": 0.5 * ((a_x[layer] - a_content[layer]) ** 2).sum()}
        L_style = 0.0
        for name, w in self.features.style_weights.items():
            N, F, H, W = a_x[name].shape
            out[f"gram:{name}"], out[f"G_style:{name}"] = self.gram(a_x[name]), self.gram(a_style[name])
            L_style = L_style + w * ((out[f"gram:{name}"] - out[f"G_style:{name}"]) ** 2).sum() / (4 * (F * H * W) ** 2)
        out["style"] = L_style
        out["tv"] = ((x[:, :, 1:, :] - x[:, :, :-1, :]) ** 2).sum() + ((x[:, :, :, 1:] - x[:, :, :, :-1]) ** 2).sum()
        out["total"] = (alpha * out["content"] + beta * out["style"] + tv * out["tv"]) / x.shape[0]
        return out


class TorchReference:
    """Three pictures (x, content, style: float32, in [0, 1]) and torch's costs of them through the
    network, computed once: each part's value and its dL_part/dx (autograd, float64), and the Gram matrices."""

    def __init__(self, features: FeatureNet, layers, shape, seed: int):
        torch = pytest.importorskip("torch")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as BLAS above; restored below for the other test modules
        try:
            self._compute(torch, features, layers, shape, seed)
        finally:
            torch.set_num_threads(threads)

    def _compute(self, torch, features, layers, shape, seed):
        self.features = features
        self.x, self.content, self.style = (pictures(s, seed + k, np.float32)
                                            for k, s in enumerate((shape, shape, (1,) + shape[1:])))
        x_t = torch.tensor(host(self.x), dtype=torch.float64, requires_grad=True)
        content_t, style_t = (torch.tensor(host(a), dtype=torch.float64) for a in (self.content, self.style))
        self.costs = TorchCosts(torch, layers, features)(x_t, content_t, style_t, 1.0, 1.0, 1.0)
        self.dx = {part: torch.autograd.grad(self.costs[part], x_t, retain_graph=True)[0]
                   for part in ("content", "style", "tv")}

    def check(self, weights):
        """Ours, with L_total's weights (alpha, beta, tv), against the reference, to 1e-5 relative."""
        from torch_helpers import close

        alpha, beta, tv = weights
        N = self.x.shape[0]
        loss = PerceptualLoss(self.features, self.style, alpha, beta, tv)
        a_content = loss.content_target(self.content)
        total, parts, dx = loss(self.x, a_content)
        acts = self.features.forward(self.x)
        for name in self.features.style_weights:
            close(loss.G_style[name], self.costs[f"G_style:{name}"])
            close(gram(acts[name]), self.costs[f"gram:{name}"])
        theirs = {part: self.costs[part] / N for part in ("content", "style", "tv")}
        alone = loss.parts_of(self.x, a_content)
        for part in theirs:
            close(np.float64(alone[part]), theirs[part])
            if part != "tv" or tv > 0:  # with tv = 0, loss() reports "tv" as 0 (it skips L_TV); parts_of computes it
                close(np.float64(parts[part]), theirs[part])
        close(np.float64(total), alpha * theirs["content"] + beta * theirs["style"] + tv * theirs["tv"])
        close(dx, (alpha * self.dx["content"] + beta * self.dx["style"] + tv * self.dx["tv"]) / N)


WEIGHTS = [(1.0, 1e3, 10.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (0.5, 2e2, 0.0)]
WEIGHT_IDS = ["alpha{}-beta{}-tv{}".format(*w) for w in WEIGHTS]


@pytest.fixture(scope="module")
def torch_vgg(tmp_path_factory):
    """The VGG-19 FeatureNet read through convert_weights + load_vgg19 from the .pth state dict of a
    torchvision-layout model with random weights, and torch's costs on that model (float64)."""
    torch = pytest.importorskip("torch")
    from test_vgg import torch_vgg19  # tests/vision/test_vgg.py: torchvision's vgg19 built by hand

    from tiefnet.vision.vgg import convert_weights, load_vgg19

    model = torch_vgg19(torch)
    folder = tmp_path_factory.mktemp("vgg19")
    torch.save(model.state_dict(), folder / "vgg19.pth")
    features = load_vgg19(convert_weights(folder / "vgg19.pth", folder / "vgg19.npz"))
    assert features.name == "vgg19" and (features.mean, features.std) == (IMAGENET_MEAN, IMAGENET_STD)
    layers = model.features.double().requires_grad_(False)  # autograd for dL/dx only
    return TorchReference(features, layers, (1, 3, 32, 32), seed=60)


@pytest.fixture(scope="module")
def torch_random():
    """The default random network (float32) and torch's costs on a copy of it, for N = 2 pictures."""
    torch = pytest.importorskip("torch")
    features = random_features()
    return TorchReference(features, torch_layers(torch, features), (2, 3, 32, 24), seed=70)


@pytest.mark.parametrize("weights", WEIGHTS, ids=WEIGHT_IDS)
def test_vgg19_costs_and_gradient_match_torch(torch_vgg, weights):
    torch_vgg.check(weights)


@pytest.mark.parametrize("weights", WEIGHTS, ids=WEIGHT_IDS)
def test_random_network_costs_and_gradient_match_torch(torch_random, weights):
    torch_random.check(weights)


# --- the random feature network ------------------------------------------------------------------

def test_random_network_layout():
    """conv1_1 pool conv2_1 pool conv3_1 pool conv4_1 conv4_2 pool conv5_1, 3 x 3 convolutions with
    padding 1 and no biases, taps at the ReLUs, He filters times the gain in the first layer; frozen."""
    features = random_features()
    layers = features.taps.net.layers
    kinds = "".join({Conv2d: "c", ReLU: "r", MaxPool2d: "p"}[type(layer)] for layer in layers)
    assert kinds == "crp" "crp" "crp" "crcrp" "cr"
    assert features.taps.taps == {"conv1_1": 1, "conv2_1": 4, "conv3_1": 7, "conv4_1": 10, "conv4_2": 12,
                                  "conv5_1": 15}
    convs = [layer for layer in layers if isinstance(layer, Conv2d)]
    assert [conv.F for conv in convs] == [32, 64, 128, 128, 128, 128]
    assert [conv.C for conv in convs] == [3, 32, 64, 128, 128, 128]
    for i, conv in enumerate(convs):
        assert (conv.Q, conv.R, conv.P, conv.S) == (3, 3, 1, 1)
        assert not host(conv.params["b"]).any()
        std = host(conv.params["W"]).std() / (RANDOM_GAIN if i == 0 else 1.0)
        assert abs(std / math.sqrt(2 / (9 * conv.C)) - 1) < 0.1, (i, std)
    assert features.style_weights == {name: 0.2 for name in STYLE_LAYERS}
    assert features.content_layer == CONTENT_LAYER == "conv4_2" and features.min_side == 16
    assert not features.taps.has_trainable_params()  # 3.4: the network's parameters stay fixed


def test_random_network_is_the_same_for_the_same_seed():
    x = pictures((1, 3, 16, 16), 80, np.float32)
    first, again, other = (random_features(seed).forward(x) for seed in (0, 0, 1))
    assert set(first) == {*STYLE_LAYERS, CONTENT_LAYER}
    for name in first:
        np.testing.assert_array_equal(host(again[name]), host(first[name]))  # bit for bit
        assert not np.allclose(host(other[name]), host(first[name])), name


def test_the_gain_scales_every_activation():
    """No biases, ReLU(g z) = g ReLU(z), max(g a) = g max(a): twice the gain, twice every feature."""
    x = pictures((1, 3, 16, 16), 81)
    one, two = small_net(), random_features(0, SMALL, gain=2 * RANDOM_GAIN)
    for layer in two.taps.param_layers():
        layer.params["W"] = dev(host(layer.params["W"]).astype(np.float64))
    a1, a2 = one.forward(x), two.forward(x)
    for name in a1:
        np.testing.assert_allclose(host(a2[name]), 2 * host(a1[name]), rtol=1e-6, atol=1e-12)


def test_feature_net_normalises_the_picture():
    """The input to the network is (x - mean) / std per channel, and dL/dx has the 1 / std."""
    features = small_net()
    x = pictures((1, 3, 16, 16), 82)
    mean, std = np.array(IMAGENET_MEAN).reshape(1, 3, 1, 1), np.array(IMAGENET_STD).reshape(1, 3, 1, 1)
    direct = features.taps.forward(dev((host(x) - mean) / std), train=True)
    acts = features.forward(x, train=True)
    for name in acts:
        np.testing.assert_allclose(host(acts[name]), host(direct[name]), rtol=1e-12)
    g = {name: randn(a.shape, 83) for name, a in acts.items()}
    dx = features.backward(g)
    features.taps.forward(dev((host(x) - mean) / std), train=True)
    np.testing.assert_allclose(host(dx), host(features.taps.backward(g)) / std, rtol=1e-12)


# --- error messages ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 1, 32, 32), (2, 4, 32, 32), (3, 32, 32)])
def test_feature_net_refuses_no_rgb_pictures(shape):
    with pytest.raises(ShapeError) as caught:
        random_features(0, SMALL).forward(dev(np.zeros(shape, np.float32)))
    assert "expected pictures (N, 3, H, W)" in str(caught.value) and str(shape) in str(caught.value)


@pytest.mark.parametrize("H, W", [(15, 32), (32, 8), (4, 4)])
def test_feature_net_refuses_pictures_below_min_side(H, W):
    with pytest.raises(ShapeError) as caught:
        random_features(0, SMALL).forward(dev(np.zeros((1, 3, H, W), np.float32)))
    message = str(caught.value)
    assert f"{W}x{H} pixels" in message and "at least 16 on each side" in message, message


def test_feature_net_refuses_unknown_taps_and_random_features_bad_widths():
    taps = random_features(0, SMALL).taps
    with pytest.raises(ConfigError, match="no tap named conv9_9"):
        FeatureNet(taps, {"conv1_1": 1.0, "conv9_9": 1.0}, CONTENT_LAYER)
    for widths in [(4, 8, 8, 8), (4, 8, 0, 8, 8)]:
        with pytest.raises(ConfigError, match="five positive filter counts"):
            random_features(0, widths)


@pytest.mark.parametrize("name", ["alpha", "beta", "tv"])
@pytest.mark.parametrize("value", [-1.0, -1e-9, float("nan"), float("inf"), "1"])
def test_perceptual_loss_refuses_bad_weights(name, value):
    features = random_features(0, SMALL)
    with pytest.raises(ConfigError) as caught:
        PerceptualLoss(features, pictures((1, 3, 16, 16), 0, np.float32), **{name: value})
    assert f"{name}={value!r}" in str(caught.value) and "finite number >= 0" in str(caught.value)


def test_perceptual_loss_refuses_a_content_target_of_another_size():
    features = random_features(0, SMALL)
    loss = PerceptualLoss(features, pictures((1, 3, 16, 16), 0, np.float32))
    a_content = loss.content_target(pictures((1, 3, 32, 32), 1, np.float32))
    with pytest.raises(ShapeError) as caught:
        loss(pictures((1, 3, 16, 16), 2, np.float32), a_content)
    assert "(1, 8, 4, 4)" in str(caught.value) and "(1, 8, 2, 2)" in str(caught.value) and "conv4_2" in str(caught.value)


def test_tv_part_is_reported_when_its_weight_is_zero():
    features = random_features(0, (4, 8, 8, 8, 8))
    x = np.random.default_rng(0).random((1, 3, 16, 16)).astype(np.float32)
    loss = PerceptualLoss(features, x)
    a = loss.content_target(x)
    assert loss(x, a)[1]["tv"] == pytest.approx(loss.parts_of(x, a)["tv"]) and loss(x, a)[1]["tv"] > 0


def test_style_targets_are_rescaled_to_the_pictures_positions():
    """G sums over positions: for pictures of twice the painting's sides, G_style is 4 x the painting's
    own (the same correlations per position); for the painting's own size it is unchanged."""
    features = random_features(0, (4, 8, 8, 8, 8))
    painting = np.random.default_rng(1).random((1, 3, 32, 48)).astype(np.float32)
    own = PerceptualLoss(features, painting).G_style
    same = PerceptualLoss(features, painting, size=(32, 48)).G_style
    double = PerceptualLoss(features, painting, size=(64, 96)).G_style
    for name in own:
        np.testing.assert_array_equal(same[name], own[name])
        np.testing.assert_allclose(double[name], 4 * own[name], rtol=1e-6)

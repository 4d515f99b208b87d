"""BatchNorm1d, BatchNorm2d and InstanceNorm2d: central differences, the formulas by hand, the running
statistics, the errors; and the layer contract for every layer of norm.py, pad.py and upsample.py
(an evaluation forward writes nothing, a frozen layer writes no gradient, config round trips).

    x_hat = (x - mu) / sqrt(var + eps),  y = gamma x_hat + beta
    BatchNorm: mu, var over N (and H, W) of each channel;  InstanceNorm: over H, W of each (n, c)
    dx = (gamma / sigma) (dy - mean(dy) - x_hat mean(dy x_hat))

The PyTorch comparisons are in test_norm_torch.py.
"""

import re

import numpy as np
import pytest
from helpers import dev, guard_against_writes, host

from tiefnet.errors import ConfigError, ShapeError
from tiefnet.gradcheck import check_layer, numerical_gradient, relative_error
from tiefnet.nn import (BatchNorm1d, BatchNorm2d, Conv2d, InstanceNorm2d, ReflectionPad2d, Sequential, Tanh, Upsample,
                        ZeroPad2d)
from tiefnet.nn.registry import layer_from_config, layer_to_config

TOL = 1e-6
# Groups of M >= 3 values: with M = 2, x_hat = (-1, 1) whatever x is, so dx is O(eps) and a difference
# quotient measures only its own rounding.
BN1D_SHAPES = [(3, 1), (4, 4), (8, 3)]  # (N, D)
BN2D_SHAPES = [(1, 2, 3, 4), (2, 3, 4, 5), (4, 1, 2, 2), (3, 2, 1, 3)]  # (N, C, H, W); N = 1 has H W samples
IN2D_SHAPES = [(1, 2, 3, 4), (2, 3, 4, 5), (3, 1, 3, 1)]  # M = H W


def make(kind, C, seed=0, **options):
    """A layer with random gamma, beta (and running statistics), so no term of the formula vanishes."""
    layer = {"bn1d": BatchNorm1d, "bn2d": BatchNorm2d, "in2d": InstanceNorm2d}[kind](C, **options)
    rng = np.random.default_rng(seed)
    for name in layer.params:
        layer.params[name][...] = dev(rng.standard_normal(C) + (1.0 if name == "gamma" else 0.0))
    if "running_var" in layer.buffers:
        layer.buffers["running_mean"][...] = dev(rng.standard_normal(C))
        layer.buffers["running_var"][...] = dev(rng.uniform(0.5, 2.0, C))
    return layer


def data(shape, seed):
    """Inputs with a non-zero mean and a scale far from 1 per channel."""
    rng = np.random.default_rng(seed)
    return 3.0 * rng.standard_normal(shape) + 2.0


def channel_shape(x):
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def reference(layer, x, axes):
    """y = gamma (x - mu) / sqrt(var + eps) + beta with NumPy's mean and var (biased) over ``axes``."""
    gamma = host(layer.params["gamma"]).reshape(channel_shape(x)) if layer.affine else 1.0
    beta = host(layer.params["beta"]).reshape(channel_shape(x)) if layer.affine else 0.0
    mu, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    return gamma * (x - mu) / np.sqrt(var + layer.eps) + beta


def assert_grads_ok(errors, names):
    assert set(errors) == set(names), errors
    bad = {name: err for name, err in errors.items() if not err < TOL}
    assert not bad, f"relative errors above {TOL}: {bad}"


# --- central differences ---------------------------------------------------------------------
GRADCHECK_CASES = ([("bn1d", shape, {}) for shape in BN1D_SHAPES] + [("bn2d", shape, {}) for shape in BN2D_SHAPES]
                   + [("in2d", shape, {"affine": affine}) for shape in IN2D_SHAPES for affine in (True, False)])


@pytest.mark.parametrize("kind, shape, options", GRADCHECK_CASES,
                         ids=[f"{k}-{'x'.join(map(str, s))}-{o}" for k, s, o in GRADCHECK_CASES])
def test_norm_gradcheck(float64, kind, shape, options):
    layer = make(kind, shape[1], seed=shape[0], **options)
    errors = check_layer(layer, dev(data(shape, 1)), seed=2)
    assert_grads_ok(errors, ["x", "gamma", "beta"] if layer.affine else ["x"])


@pytest.mark.parametrize("kind", ["bn2d", "in2d"])
def test_norm_gradcheck_on_a_channels_last_view(float64, kind):
    """A Conv2d output is a transposed view of a (N, H, W, C) array; the layers read it by strides."""
    x = dev(data((2, 4, 5, 3), 7).transpose(0, 3, 1, 2))  # (2, 3, 4, 5), channels innermost in memory
    errors = check_layer(make(kind, 3), x, seed=8)
    assert_grads_ok(errors, ["x", "gamma", "beta"])


def test_a_style_transfer_block_gradcheck(float64):
    """ReflectionPad2d -> Conv2d -> InstanceNorm2d -> Tanh -> Upsample -> ZeroPad2d -> Conv2d -> BatchNorm2d:
    every new layer inside one chain of (BP2), with every parameter checked. The bias of a Conv2d right
    before a normalisation shifts every value of a group alike, so the mean takes it away: its
    gradient is 0 (up to rounding), where a difference quotient measures only noise."""
    rng = np.random.default_rng(9)
    model = Sequential(ReflectionPad2d(1), Conv2d(2, 3, 3, rng=rng), make("in2d", 3, seed=1), Tanh(), Upsample(2),
                       ZeroPad2d((1, 0, 0, 1)), Conv2d(3, 2, 2, rng=rng), make("bn2d", 2, seed=2))
    errors = check_layer(model, dev(data((2, 2, 3, 4), 10)), seed=11)
    biases = {"1.b", "6.b"}
    assert_grads_ok({k: v for k, v in errors.items() if k not in biases},
                    ["x", "1.W", "2.gamma", "2.beta", "6.W", "7.gamma", "7.beta"])
    for name in biases:
        assert np.abs(host(model.grads[name])).max() < 1e-12


# --- the formulas by hand ------------------------------------------------------------------------
@pytest.mark.parametrize("kind, shape, axes", [("bn1d", (5, 3), (0,)), ("bn2d", (2, 3, 4, 5), (0, 2, 3)),
                                               ("bn2d", (1, 2, 3, 3), (0, 2, 3)), ("in2d", (2, 3, 4, 5), (2, 3))])
def test_training_forward_is_the_formula(float64, kind, shape, axes):
    layer = make(kind, shape[1])
    x = data(shape, 12)
    np.testing.assert_allclose(host(layer.forward(dev(x), train=True)), reference(layer, x, axes), rtol=1e-12,
                               atol=1e-12)


def test_batch_norm_1d_worked_by_hand(float64):
    """x = (1, 3): mu = 2, var = 1 (unbiased 2), x_hat = (-1, 1) / sqrt(1 + eps). With gamma = 2,
    beta = 0.5: y = (-1.5, 2.5); running_mean = 0.1 * 2, running_var = 0.9 * 1 + 0.1 * 2."""
    layer = BatchNorm1d(1, eps=1e-5)
    layer.params["gamma"][...] = 2.0
    layer.params["beta"][...] = 0.5
    y = host(layer.forward(dev(np.array([[1.0], [3.0]])), train=True))
    s = np.sqrt(1 + 1e-5)
    np.testing.assert_allclose(y[:, 0], [0.5 - 2 / s, 0.5 + 2 / s], rtol=1e-14)
    np.testing.assert_allclose(host(layer.buffers["running_mean"]), [0.2], rtol=1e-14)
    np.testing.assert_allclose(host(layer.buffers["running_var"]), [1.1], rtol=1e-14)
    # dy = (1, 0): mean(dy) = 1/2, mean(dy x_hat) = -1/(2 s); dx = (2/s) ((1, 0) - 1/2 - x_hat (-1/(2 s)))
    # = (2/s) (1/2 - 1/(2 s^2)) (1, -1), of order eps: two values normalise to about (-1, 1) whatever they are
    dx = host(layer.backward(dev(np.array([[1.0], [0.0]]))))
    x_hat = np.array([-1.0, 1.0]) / s
    np.testing.assert_allclose(dx[:, 0], 2 / s * (np.array([1.0, 0.0]) - 0.5 + x_hat / (2 * s)), rtol=1e-9)
    assert 0 < dx[0, 0] < 1e-4
    np.testing.assert_allclose(host(layer.grads["gamma"]), [x_hat[0]], rtol=1e-14)
    np.testing.assert_allclose(host(layer.grads["beta"]), [1.0], rtol=1e-14)


@pytest.mark.parametrize("kind, shape, axes", [("bn1d", (6, 3), (0,)), ("bn2d", (2, 3, 4, 5), (0, 2, 3)),
                                               ("bn2d", (1, 2, 3, 3), (0, 2, 3))])
@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0, 0.0])
def test_running_statistics_after_three_steps_and_evaluation_uses_them(float64, kind, shape, axes, momentum):
    layer = make(kind, shape[1], momentum=momentum)
    mean, var = host(layer.buffers["running_mean"]).copy(), host(layer.buffers["running_var"]).copy()
    M = int(np.prod([shape[a] for a in axes]))
    for step in range(3):
        x = data(shape, 20 + step)
        layer.forward(dev(x), train=True)
        mean = (1 - momentum) * mean + momentum * x.mean(axis=axes)
        var = (1 - momentum) * var + momentum * x.var(axis=axes) * M / (M - 1)  # unbiased, as torch
    np.testing.assert_allclose(host(layer.buffers["running_mean"]), mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(host(layer.buffers["running_var"]), var, rtol=1e-12)
    x = data(shape, 30)
    gamma, beta = (host(layer.params[k]).reshape(channel_shape(x)) for k in ("gamma", "beta"))
    expected = gamma * (x - mean.reshape(channel_shape(x))) / np.sqrt(var.reshape(channel_shape(x)) + layer.eps) + beta
    np.testing.assert_allclose(host(layer.forward(dev(x))), expected, rtol=1e-12, atol=1e-12)


def test_running_statistics_are_updated_in_place(float64):
    """A checkpoint loader or a target network may hold the buffer arrays themselves."""
    layer = BatchNorm2d(2)
    arrays = dict(layer.buffers)
    layer.forward(dev(data((2, 2, 3, 3), 31)), train=True)
    assert all(layer.buffers[k] is arrays[k] for k in arrays)
    assert not np.allclose(host(arrays["running_mean"]), 0.0)


def test_instance_norm_is_the_same_in_training_and_evaluation(float64):
    layer = make("in2d", 3)
    x = dev(data((2, 3, 4, 4), 32))
    np.testing.assert_array_equal(host(layer.forward(x)), host(layer.forward(x, train=True)))
    assert not layer.buffers  # no running statistics


def test_batch_norm_2d_with_one_sample_matches_the_flattened_batch_norm_1d(float64):
    """BatchNorm2d on (1, C, H, W) is BatchNorm1d on the (H W, C) rows: N H W samples per channel."""
    x = data((1, 3, 4, 5), 33)
    rows = x.transpose(0, 2, 3, 1).reshape(-1, 3)
    bn2d, bn1d = make("bn2d", 3), make("bn1d", 3)
    y2 = host(bn2d.forward(dev(x), train=True))
    y1 = host(bn1d.forward(dev(rows), train=True))
    np.testing.assert_allclose(y2.transpose(0, 2, 3, 1).reshape(-1, 3), y1, rtol=1e-12)
    dy = data(x.shape, 34)
    dx2 = host(bn2d.backward(dev(dy)))
    dx1 = host(bn1d.backward(dev(dy.transpose(0, 2, 3, 1).reshape(-1, 3))))
    np.testing.assert_allclose(dx2.transpose(0, 2, 3, 1).reshape(-1, 3), dx1, rtol=1e-10, atol=1e-12)
    for name in ("gamma", "beta", "running_mean", "running_var"):
        ours = bn2d.grads.get(name, bn2d.buffers.get(name))
        theirs = bn1d.grads.get(name, bn1d.buffers.get(name))
        np.testing.assert_allclose(host(ours), host(theirs), rtol=1e-10)


@pytest.mark.parametrize("kind", ["bn1d", "bn2d", "in2d"])
def test_norm_keeps_float32_and_its_scales_are_not_decayed(kind):
    shape = (4, 3) if kind == "bn1d" else (2, 3, 4, 4)
    layer = make(kind, 3)
    assert all(v.dtype == np.float32 for v in [*layer.params.values(), *layer.buffers.values()])
    x = dev(data(shape, 35).astype(np.float32))
    assert layer.forward(x).dtype == np.float32
    y = layer.forward(x, train=True)
    assert y.dtype == np.float32
    assert layer.backward(dev(np.ones(shape, dtype=np.float32))).dtype == np.float32
    assert not any(layer.decays(name) for name in layer.params)  # 1-d scales and shifts: never regularised


def test_need_input_grad_false_fills_the_parameter_gradients_only(float64):
    layer = make("bn2d", 2)
    x, dy = dev(data((2, 2, 3, 3), 36)), dev(data((2, 2, 3, 3), 37))
    layer.forward(x, train=True)
    layer.backward(dy)
    expected = {k: host(g).copy() for k, g in layer.grads.items()}
    for g in layer.grads.values():
        g[...] = 0
    assert layer.backward(dy, need_input_grad=False) is None
    for k, g in layer.grads.items():
        np.testing.assert_array_equal(host(g), expected[k])


def test_batch_norm_1d_gives_sequential_its_input_width():
    model = Sequential(BatchNorm1d(4), Tanh())
    assert model.input_features == 4
    with pytest.raises(ShapeError, match=r"BatchNorm1d\(D=4, .*\): expected input of shape \(N, 4\), got \(2, 5\)"):
        model.forward(dev(np.ones((2, 5))))


# --- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [BatchNorm1d, BatchNorm2d, InstanceNorm2d])
@pytest.mark.parametrize("C", [0, -2, 2.5, True, "3", None])
def test_norm_rejects_a_bad_number_of_channels(cls, C):
    name = "D" if cls is BatchNorm1d else "C"
    with pytest.raises(ConfigError, match=re.escape(f"{cls.__name__}: {name}={C!r} must be a whole number >= 1")):
        cls(C)


@pytest.mark.parametrize("cls", [BatchNorm1d, BatchNorm2d, InstanceNorm2d])
@pytest.mark.parametrize("eps", [0, -1e-5, float("nan"), float("inf"), "small", True])
def test_norm_rejects_a_bad_eps(cls, eps):
    with pytest.raises(ConfigError, match=re.escape(f"{cls.__name__}: eps={eps!r} must be a positive number")):
        cls(3, eps=eps)


@pytest.mark.parametrize("cls", [BatchNorm1d, BatchNorm2d])
@pytest.mark.parametrize("momentum", [-0.1, 1.5, float("nan"), None, False])
def test_batch_norm_rejects_a_bad_momentum(cls, momentum):
    with pytest.raises(ConfigError, match=re.escape(f"{cls.__name__}: momentum={momentum!r} must be a number in [0, 1]")):
        cls(3, momentum=momentum)


@pytest.mark.parametrize("affine", [1, "yes", None])
def test_instance_norm_rejects_a_bad_affine(affine):
    with pytest.raises(ConfigError, match=re.escape(f"InstanceNorm2d: affine={affine!r} must be true or false")):
        InstanceNorm2d(3, affine=affine)


@pytest.mark.parametrize("kind, shape, expected", [
    ("bn1d", (4, 2), "(N, 3)"), ("bn1d", (4, 3, 1), "(N, 3)"), ("bn1d", (3,), "(N, 3)"),
    ("bn2d", (2, 2, 4, 4), "(N, 3, H, W)"), ("bn2d", (2, 3, 4), "(N, 3, H, W)"),
    ("in2d", (2, 4, 4, 4), "(N, 3, H, W)"), ("in2d", (6, 3), "(N, 3, H, W)"),
])
@pytest.mark.parametrize("train", [False, True])
def test_norm_wrong_input_is_a_shape_error(kind, shape, expected, train):
    layer = make(kind, 3)
    with pytest.raises(ShapeError) as excinfo:
        layer.forward(dev(np.ones(shape, dtype=np.float32)), train=train)
    message = str(excinfo.value)
    assert message.startswith(layer.describe()), message
    assert f"expected input {expected}, got {shape}" in message


@pytest.mark.parametrize("kind, shape", [("bn1d", (1, 3)), ("bn2d", (1, 3, 1, 1))])
def test_batch_norm_training_needs_two_values_per_channel(float64, kind, shape):
    """No batch variance from one value (torch refuses it too); evaluation of one sample is fine."""
    layer = make(kind, 3)
    before = host(layer.buffers["running_mean"]).copy()
    with pytest.raises(ShapeError, match=rf"{type(layer).__name__}\(.*\): training needs more than one value "
                                         rf"per channel .*got input {re.escape(str(shape))}"):
        layer.forward(dev(np.ones(shape)), train=True)
    np.testing.assert_array_equal(host(layer.buffers["running_mean"]), before)
    assert layer.forward(dev(np.ones(shape))).shape == shape


@pytest.mark.parametrize("train", [False, True])
def test_instance_norm_needs_two_positions(train):
    with pytest.raises(ShapeError, match=r"InstanceNorm2d\(C=3, .*\): needs more than one position"):
        InstanceNorm2d(3).forward(dev(np.ones((2, 3, 1, 1))), train=train)


# --- the layer contract, for every layer of norm.py, pad.py, upsample.py ------------------------
# (a fresh layer and an input that fits)
CONTRACT = {
    "BatchNorm1d": lambda: (make("bn1d", 3, momentum=0.3), data((4, 3), 40)),
    "BatchNorm2d": lambda: (make("bn2d", 2, eps=1e-3), data((2, 2, 3, 4), 41)),
    "InstanceNorm2d": lambda: (make("in2d", 2), data((2, 2, 3, 4), 42)),
    "InstanceNorm2d-plain": lambda: (make("in2d", 2, affine=False, eps=1e-4), data((2, 2, 3, 4), 43)),
    "ZeroPad2d": lambda: (ZeroPad2d((1, 0, 2, 3)), data((2, 2, 3, 4), 44)),
    "ReflectionPad2d": lambda: (ReflectionPad2d(2), data((2, 2, 3, 4), 45)),
    "Upsample": lambda: (Upsample(3), data((2, 2, 3, 4), 46)),
}


def state_of(layer):
    """Every attribute of the layer: arrays (also inside params, grads, buffers) by bytes, the rest by identity."""
    def value(v):
        return (v.dtype.str, v.shape, host(v).tobytes()) if hasattr(v, "shape") else id(v)

    return {name: ({k: value(a) for k, a in v.items()} if isinstance(v, dict) else value(v))
            for name, v in vars(layer).items()}


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_an_evaluation_forward_changes_nothing_on_the_layer(float64, name):
    layer, x = CONTRACT[name]()
    before = state_of(layer)
    layer.forward(dev(x))  # a fresh layer: no cache appears
    assert state_of(layer) == before
    layer.forward(dev(x), train=True)
    layer.backward(dev(np.ones(layer.output.shape)))
    after_training = state_of(layer)
    layer.forward(dev(data(x.shape, 47)), train=False)  # a trained layer: cache and statistics stay
    assert state_of(layer) == after_training


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_backward_without_a_training_forward_is_a_clear_error(name):
    layer, x = CONTRACT[name]()
    y = layer.forward(dev(x))
    with pytest.raises(RuntimeError, match=rf"{type(layer).__name__}.backward\(\) called without a forward"):
        layer.backward(dev(np.ones(y.shape)))


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_config_round_trip(float64, name):
    layer, x = CONTRACT[name]()
    config = layer_to_config(layer)
    rebuilt = layer_from_config(config)
    assert type(rebuilt) is type(layer) and layer_to_config(rebuilt) == config
    assert rebuilt.describe() == layer.describe()
    assert {k: v.shape for k, v in rebuilt.params.items()} == {k: v.shape for k, v in layer.params.items()}
    assert {k: v.shape for k, v in rebuilt.buffers.items()} == {k: v.shape for k, v in layer.buffers.items()}
    for k in rebuilt.params:  # copy the arrays: the same function
        rebuilt.params[k][...] = layer.params[k]
    for k in rebuilt.buffers:
        rebuilt.buffers[k][...] = layer.buffers[k]
    np.testing.assert_array_equal(host(rebuilt.forward(dev(x))), host(layer.forward(dev(x))))


@pytest.mark.parametrize("freeze", ["flag", "freeze()"])
@pytest.mark.parametrize("name", ["BatchNorm1d", "BatchNorm2d", "InstanceNorm2d"])
def test_a_frozen_layer_writes_no_gradient_and_returns_the_right_dx(float64, name, freeze):
    """InstanceNorm frozen: the same function, dx as before. BatchNorm frozen: a fixed function, the
    normalisation with the running statistics, in a training forward too (its statistics stay)."""
    reference, x = CONTRACT[name]()
    layer, _ = CONTRACT[name]()
    dy = dev(data(x.shape, 48))
    layer.forward(dev(x), train=True)
    layer.backward(dy)  # creates the gradient arrays (and, for BatchNorm, moves the running statistics)
    if freeze == "flag":
        layer.trainable = False
    else:
        assert layer.freeze() is layer
    if name.startswith("BatchNorm"):
        for key in layer.buffers:
            reference.buffers[key][...] = layer.buffers[key]
        buffers = {k: host(b).copy() for k, b in layer.buffers.items()}
        xd = dev(x.copy())
        dx_expected = host(numerical_gradient(lambda: reference.forward(xd, train=False), xd, dy))
        expected_output = host(reference.forward(dev(x)))
    else:
        reference.forward(dev(x), train=True)
        dx_expected = host(reference.backward(dy))
        expected_output = host(reference.forward(dev(x), train=True))
    untouched = guard_against_writes(layer.grads.values())  # any write by backward shows (or raises)
    np.testing.assert_allclose(host(layer.forward(dev(x), train=True)), expected_output, rtol=1e-12)
    assert relative_error(layer.backward(dy), dev(dx_expected)) < 1e-7
    assert layer.backward(dy, need_input_grad=False) is None
    assert untouched()
    assert not layer.has_trainable_params()
    if name.startswith("BatchNorm"):
        for key, before in buffers.items():
            np.testing.assert_array_equal(host(layer.buffers[key]), before)

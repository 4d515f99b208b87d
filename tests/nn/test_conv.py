"""Conv2d (3.1-3.3) against the lecture's plain loops, central differences, and its error messages.

The lecture's pseudocode (3.2, "Modifikation für mehrere Features" with stride S, 3.3 zero padding):
    forward:   for f, i, j: a[f, i, j] = sum(w[f] * x[:, i S : i S + Q, j S : j S + R]) + b[f]
    backward:  for f, i, j: dx[:, i S : i S + Q, j S : j S + R] += da[f, i, j] * w[f]
                            dw[f] += da[f, i, j] * x[:, i S : i S + Q, j S : j S + R]
               db = sum(da)   (per feature)
The references below are exactly these loops (plus one over the mini-batch), on the zero-padded
input; the library's im2col + GEMM / col2im must agree with them to rounding.
"""

import numpy as np
import pytest
from helpers import dev, host

from tiefnet.errors import ConfigError, ShapeError
from tiefnet.gradcheck import check_layer
from tiefnet.nn import Conv2d, Flatten, Reshape
from tiefnet.nn.conv import col2im, im2col, output_size, windows
from tiefnet.nn.registry import layer_from_config, layer_to_config
from helpers import every_variant  # noqa: F401  (each test runs with every variant of tiefnet.plans forced)

TOL = 1e-6  # finite differences, float64

# (N, C, F, H, W, kernel, P, S): channels 1-3, paddings 0-2, strides 1-3, odd and non-square
# images, square and non-square kernels, 1x1 kernels and kernels as large as the padded input.
GEOMETRIES = [
    (2, 1, 1, 5, 5, 3, 0, 1),
    (2, 2, 3, 7, 9, 3, 1, 1),
    (1, 3, 2, 7, 9, 3, 0, 2),
    (2, 2, 2, 11, 7, (3, 2), 2, 3),
    (3, 1, 2, 7, 6, (3, 2), 1, 2),
    (2, 3, 4, 5, 7, (2, 3), 0, 1),
    (1, 2, 3, 9, 9, 3, 0, 3),
    (2, 1, 2, 11, 5, (5, 3), 2, 1),
    (1, 2, 1, 5, 5, 3, 2, 3),
    (2, 3, 2, 4, 5, 1, 0, 1),
    (2, 2, 3, 3, 4, (5, 6), 1, 1),
]
IDS = [f"N{g[0]}-C{g[1]}-F{g[2]}-{g[3]}x{g[4]}-k{g[5]}-P{g[6]}-S{g[7]}" for g in GEOMETRIES]


def kernel_hw(kernel):
    return (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)


def pad(x, P):
    """Zero padding by P on both sides of the two image axes (3.3 "Zero Padding")."""
    N, C, H_in, W_in = x.shape
    x_pad = np.zeros((N, C, H_in + 2 * P, W_in + 2 * P))
    x_pad[:, :, P : P + H_in, P : P + W_in] = x
    return x_pad


def conv_forward_loops(x, w, b, P, S):
    """a[n, f, i, j] = sum(w[f] * x_pad[n, :, iS : iS + Q, jS : jS + R]) + b[f], by plain loops."""
    x_pad = pad(x, P)
    N, C, H_pad, W_pad = x_pad.shape
    F, _, Q, R = w.shape
    H_out, W_out = (H_pad - Q) // S + 1, (W_pad - R) // S + 1
    a = np.zeros((N, F, H_out, W_out))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    a[n, f, i, j] = np.sum(w[f] * x_pad[n, :, i * S : i * S + Q, j * S : j * S + R]) + b[f]
    return a


def conv_backward_loops(x, w, da, P, S):
    """The lecture's backward loops: (dx, dw, db) for the upstream gradient da = dC/da."""
    x_pad = pad(x, P)
    N, C, H_in, W_in = x.shape
    F, _, Q, R = w.shape
    _, _, H_out, W_out = da.shape
    dx_pad, dw = np.zeros_like(x_pad), np.zeros_like(w)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    dx_pad[n, :, i * S : i * S + Q, j * S : j * S + R] += da[n, f, i, j] * w[f]
                    dw[f] += da[n, f, i, j] * x_pad[n, :, i * S : i * S + Q, j * S : j * S + R]
    db = da.sum(axis=(0, 2, 3))
    return dx_pad[:, :, P : P + H_in, P : P + W_in], dw, db


def make_conv(C, F, kernel, P, S, seed=0):
    """A Conv2d with random weights and (unlike the default init) random, non-zero biases."""
    layer = Conv2d(C, F, kernel, padding=P, stride=S, rng=np.random.default_rng(seed))
    layer.params["b"][...] = dev(np.random.default_rng(seed + 1).standard_normal(F))
    return layer


def random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


# --- the lecture's geometry -----------------------------------------------------------------
@pytest.mark.parametrize("size, kernel, P, S, expected", [
    (28, 5, 0, 1, 24),  # 28 x 28 image, 5 x 5 field: 24 x 24 hidden neurons (3.1)
    (3, 2, 0, 1, 2),  # the im2col illustration (3.3)
    (28, 3, 1, 1, 28),  # "same" padding
    (7, 3, 0, 2, 3), (7, 3, 1, 3, 3), (9, 3, 0, 3, 3), (5, 3, 2, 3, 3), (3, 5, 1, 1, 1), (4, 1, 0, 1, 4),
    (8, 3, 0, 2, None),  # W + 2P - R = 5 is no multiple of S = 2
    (8, 3, 1, 3, None), (2, 3, 0, 1, None),  # kernel larger than the padded input
])
def test_output_size_is_the_lecture_formula(size, kernel, P, S, expected):
    """W_out = (W + 2P - R)/S + 1, and W + 2P - R must be a non-negative multiple of S (3.3)."""
    assert output_size(size, kernel, P, S) == expected


def test_parameter_count_is_features_times_field_plus_one():
    """20 features of 5 x 5 fields: 20 (5 x 5 + 1) = 520 parameters (3.1)."""
    layer = Conv2d(1, 20, 5)
    assert layer.params["W"].shape == (20, 1, 5, 5) and layer.params["b"].shape == (20,)
    assert sum(p.size for p in layer.params.values()) == 520


def test_im2col_is_the_lecture_matrix():
    """H = W = 3, C = 1, a 2 x 2 filter: the rows are (x00 x01 x10 x11), (x01 x02 x11 x12), ... (3.3)."""
    x = np.arange(9.0).reshape(1, 3, 3, 1)  # x[i, j] = 3 i + j; im2col takes (N, H, W, C)
    cols = host(im2col(dev(x), 2, 2, 1, 2, 2))
    np.testing.assert_array_equal(cols, [[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]])


@pytest.mark.parametrize("N, C, F, H, W, kernel, P, S", GEOMETRIES, ids=IDS)
def test_windows_are_the_receptive_fields(N, C, F, H, W, kernel, P, S):
    Q, R = kernel_hw(kernel)
    x_pad = pad(random((N, C, H, W), 1), P)
    H_out, W_out = output_size(H, Q, P, S), output_size(W, R, P, S)
    fields = host(windows(dev(x_pad), Q, R, S, H_out, W_out))
    assert fields.shape == (N, C, H_out, W_out, Q, R)
    for i in range(H_out):
        for j in range(W_out):
            np.testing.assert_array_equal(fields[:, :, i, j], x_pad[:, :, i * S : i * S + Q, j * S : j * S + R])


@pytest.mark.parametrize("N, C, F, H, W, kernel, P, S", GEOMETRIES, ids=IDS)
def test_col2im_is_the_adjoint_of_im2col(float64, N, C, F, H, W, kernel, P, S):
    """<im2col(x), c> = <x, col2im(c)> for all x, c: backward through im2col is col2im (BP2-conv).
    Both work on the padded input with channels innermost, (N, H + 2P, W + 2P, C)."""
    Q, R = kernel_hw(kernel)
    H_out, W_out = output_size(H, Q, P, S), output_size(W, R, P, S)
    x_hwc = random((N, H + 2 * P, W + 2 * P, C), 2)
    c = random((N * H_out * W_out, Q * R * C), 3)
    cols = host(im2col(dev(x_hwc), Q, R, S, H_out, W_out))
    back = host(col2im(dev(c), x_hwc.shape, Q, R, S, H_out, W_out))
    assert cols.shape == c.shape and back.shape == x_hwc.shape
    assert np.sum(cols * c) == pytest.approx(np.sum(x_hwc * back), rel=1e-12)


@pytest.mark.parametrize("N, C, F, H, W, kernel, P, S", GEOMETRIES, ids=IDS)
def test_im2col_rows_are_the_receptive_fields(N, C, F, H, W, kernel, P, S):
    """Row (n, i, j) of im2col holds x_pad[n, :, iS : iS + Q, jS : jS + R], in (q, r, c) order."""
    Q, R = kernel_hw(kernel)
    H_out, W_out = output_size(H, Q, P, S), output_size(W, R, P, S)
    x_pad = pad(random((N, C, H, W), 1), P)
    cols = host(im2col(dev(np.ascontiguousarray(x_pad.transpose(0, 2, 3, 1))), Q, R, S, H_out, W_out))
    cols = cols.reshape(N, H_out, W_out, Q, R, C)
    for i in range(H_out):
        for j in range(W_out):
            field = x_pad[:, :, i * S : i * S + Q, j * S : j * S + R]  # (N, C, Q, R)
            np.testing.assert_array_equal(cols[:, i, j], field.transpose(0, 2, 3, 1))


# --- forward and backward against the plain loops --------------------------------------------
@pytest.mark.parametrize("N, C, F, H, W, kernel, P, S", GEOMETRIES, ids=IDS)
def test_conv_forward_and_backward_match_the_loops(float64, N, C, F, H, W, kernel, P, S):
    Q, R = kernel_hw(kernel)
    layer = make_conv(C, F, kernel, P, S, seed=N + C + F)
    w, b = host(layer.params["W"]).copy(), host(layer.params["b"]).copy()
    x = random((N, C, H, W), 4)
    a_ref = conv_forward_loops(x, w, b, P, S)
    a = host(layer.forward(dev(x), train=True))
    assert a.shape == a_ref.shape == (N, F, output_size(H, Q, P, S), output_size(W, R, P, S))
    np.testing.assert_allclose(a, a_ref, rtol=1e-12, atol=1e-12)

    da = random(a.shape, 5)
    dx_ref, dw_ref, db_ref = conv_backward_loops(x, w, da, P, S)
    dx = host(layer.backward(dev(da)))
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(host(layer.grads["W"]), dw_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(host(layer.grads["b"]), db_ref, rtol=1e-12, atol=1e-12)


def test_conv_on_a_non_contiguous_input(float64):
    """A transposed view (as a previous layer may hand on) is read by its strides, not its memory."""
    layer = make_conv(2, 3, (3, 2), 0, 1)
    x = random((5, 4, 2, 2), 6).transpose(2, 3, 0, 1)  # (2, 2, 5, 4), not C-contiguous
    a = host(layer.forward(dev(x), train=True))
    np.testing.assert_allclose(a, conv_forward_loops(x, host(layer.params["W"]), host(layer.params["b"]), 0, 1),
                               rtol=1e-12, atol=1e-12)


def test_conv_single_feature_is_the_1d_example_in_2d(float64):
    """w = (0.75, 1, -0.5) as a 1 x 3 filter: y_1 = 0.75 a_0 + a_1 - 0.5 a_2, ... (3.1)."""
    layer = Conv2d(1, 1, (1, 3))
    layer.params["W"][...] = dev([[[[0.75, 1.0, -0.5]]]])
    layer.params["b"][...] = 0.0
    a = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    y = host(layer.forward(dev(a.reshape(1, 1, 1, 5))))
    np.testing.assert_allclose(y.ravel(), [0.75 * a[k] + a[k + 1] - 0.5 * a[k + 2] for k in range(3)])


def test_conv_need_input_grad_false_returns_none_but_fills_grads(float64):
    layer = make_conv(2, 3, 3, 1, 2)
    x = random((2, 2, 5, 7), 7)
    a = layer.forward(dev(x), train=True)
    da = random(a.shape, 8)
    assert layer.backward(dev(da), need_input_grad=False) is None
    _, dw_ref, db_ref = conv_backward_loops(x, host(layer.params["W"]), da, 1, 2)
    np.testing.assert_allclose(host(layer.grads["W"]), dw_ref, rtol=1e-12)
    np.testing.assert_allclose(host(layer.grads["b"]), db_ref, rtol=1e-12)


def test_conv_backward_overwrites_grads_in_place(float64):
    """backward writes into the same arrays every time (an optimizer may hold views of them)
    and overwrites, never accumulates."""
    layer = make_conv(1, 2, 3, 0, 1)
    x = random((2, 1, 5, 5), 9)
    a = layer.forward(dev(x), train=True)
    layer.backward(dev(random(a.shape, 10)))
    gW, gb = layer.grads["W"], layer.grads["b"]
    da = random(a.shape, 11)
    layer.backward(dev(da))
    assert layer.grads["W"] is gW and layer.grads["b"] is gb
    _, dw_ref, db_ref = conv_backward_loops(x, host(layer.params["W"]), da, 0, 1)
    np.testing.assert_allclose(host(gW), dw_ref, rtol=1e-12)
    np.testing.assert_allclose(host(gb), db_ref, rtol=1e-12)


# --- central differences ---------------------------------------------------------------------
@pytest.mark.parametrize("N, C, F, H, W, kernel, P, S", GEOMETRIES, ids=IDS)
def test_conv_gradcheck(float64, N, C, F, H, W, kernel, P, S):
    layer = make_conv(C, F, kernel, P, S, seed=3 * N + F)
    assert layer.params["W"].dtype == np.float64
    x = dev(random((N, C, H, W), 12))
    Q, R = kernel_hw(kernel)
    upstream = dev(random((N, F, output_size(H, Q, P, S), output_size(W, R, P, S)), 13))
    errors = check_layer(layer, x, upstream)
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < TOL, errors


# --- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("C, kernel, P, S, x_shape, bad", [
    (1, 3, 0, 2, (1, 1, 8, 8), "8 + 0 - 3"),  # 5 is no multiple of 2, in both directions
    (1, 3, 0, 2, (2, 1, 7, 8), "8 + 0 - 3"),  # the height fits, the width does not
    (2, 3, 1, 3, (1, 2, 7, 6), "7 + 2 - 3"),  # the height does not fit, with padding
    (1, (3, 2), 1, 2, (1, 1, 7, 7), "7 + 2 - 2"),  # the non-square kernel's width
    (1, 5, 0, 1, (1, 1, 3, 3), "3 + 0 - 5"),  # a kernel larger than the image
])
def test_conv_geometry_error_names_layer_and_numbers(C, kernel, P, S, x_shape, bad):
    layer = Conv2d(C, 2, kernel, padding=P, stride=S)
    with pytest.raises(ShapeError) as excinfo:
        layer.forward(dev(np.zeros(x_shape)))
    message = str(excinfo.value)
    assert message.startswith("Conv2d(")
    assert layer.describe() in message
    assert f"{x_shape[2]}x{x_shape[3]}" in message
    assert bad in message
    assert f"S = {S}" in message
    assert "\n" not in message


@pytest.mark.parametrize("x_shape", [(2, 2, 5, 5), (2, 4, 5, 5), (2, 5, 5), (3, 25)])
def test_conv_wrong_channels_or_rank_is_a_shape_error(x_shape):
    layer = Conv2d(3, 2, 3)
    with pytest.raises(ShapeError, match=r"Conv2d\(C=3, F=2.*\(N, 3, H, W\)") as excinfo:
        layer.forward(dev(np.zeros(x_shape)))
    assert str(tuple(x_shape)) in str(excinfo.value)


@pytest.mark.parametrize("kwargs, shown", [
    (dict(C=0, F=2), "C=0"), (dict(C=1, F=0), "F=0"), (dict(C=-1, F=2), "C=-1"),
    (dict(C=1, F=2, kernel=0), "kernel=0x0"), (dict(C=1, F=2, kernel=(3, 0)), "kernel=3x0"),
    (dict(C=1, F=2, stride=0), "stride=0"), (dict(C=1, F=2, padding=-1), "padding=-1"),
    (dict(C=1, F=2, init="xavier"), "init='xavier'"),
])
def test_conv_rejects_bad_settings(kwargs, shown):
    with pytest.raises(ConfigError) as excinfo:
        Conv2d(**kwargs)
    assert shown in str(excinfo.value)


@pytest.mark.parametrize("kernel", [(3,), (3, 2, 1), 2.5])
def test_conv_rejects_malformed_kernel(kernel):
    with pytest.raises(ConfigError, match="kernel"):
        Conv2d(1, 2, kernel)


def test_conv_backward_before_forward_raises():
    layer = Conv2d(1, 2, 3)
    with pytest.raises(RuntimeError, match=r"Conv2d.backward\(\) called without a forward\(x, train=True\)"):
        layer.backward(dev(np.ones((1, 2, 3, 3))))


def test_conv_backward_after_only_a_test_mode_forward_raises():
    layer = Conv2d(1, 2, 3)
    x = dev(np.ones((1, 1, 5, 5)))
    layer.forward(x)  # a test-mode pass caches nothing
    with pytest.raises(RuntimeError, match="without a forward"):
        layer.backward(dev(np.ones((1, 2, 3, 3))))


@pytest.mark.parametrize("kwargs", [
    dict(C=1, F=20, kernel=5), dict(C=3, F=4, kernel=(3, 2), padding=2, stride=3, init="he"),
    dict(C=2, F=1, kernel=(1, 4), padding=0, stride=2, init="large"),
])
def test_conv_config_round_trip(kwargs):
    layer = Conv2d(**kwargs, rng=np.random.default_rng(0))
    config = layer_to_config(layer)
    assert config["type"] == "Conv2d"
    rebuilt = layer_from_config(config)
    assert type(rebuilt) is Conv2d
    assert layer_to_config(rebuilt) == config
    assert rebuilt.describe() == layer.describe()
    assert (rebuilt.C, rebuilt.F, rebuilt.Q, rebuilt.R, rebuilt.P, rebuilt.S) == \
           (layer.C, layer.F, layer.Q, layer.R, layer.P, layer.S)
    assert rebuilt.params["W"].shape == layer.params["W"].shape


# --- Flatten and Reshape -----------------------------------------------------------------------
def test_flatten_round_trip():
    x = random((3, 2, 4, 5), 14)
    layer = Flatten()
    out = host(layer.forward(dev(x), train=True))
    np.testing.assert_array_equal(out, x.reshape(3, 40))  # C, H, W order: channel by channel
    grad = random((3, 40), 15)
    np.testing.assert_array_equal(host(layer.backward(dev(grad))), grad.reshape(3, 2, 4, 5))


def test_reshape_round_trip():
    x = random((4, 64), 16)
    layer = Reshape((1, 8, 8))
    out = host(layer.forward(dev(x), train=True))
    assert out.shape == (4, 1, 8, 8)
    np.testing.assert_array_equal(out[:, 0], x.reshape(4, 8, 8))
    grad = random((4, 1, 8, 8), 17)
    np.testing.assert_array_equal(host(layer.backward(dev(grad))), grad.reshape(4, 64))
    np.testing.assert_array_equal(host(Flatten().forward(layer.forward(dev(x)))), x)  # Flatten undoes it


def test_reshape_and_flatten_config_round_trip():
    for layer in (Reshape((3, 4, 5)), Flatten()):
        rebuilt = layer_from_config(layer_to_config(layer))
        assert rebuilt.describe() == layer.describe()
    assert Reshape((3, 4, 5)).n_in == 60


@pytest.mark.parametrize("x_shape", [(2, 63), (2, 65), (1, 8, 7)])
def test_reshape_wrong_size_is_a_shape_error(x_shape):
    with pytest.raises(ShapeError, match=r"Reshape\(shape=\[1, 8, 8\]\).*64") as excinfo:
        Reshape((1, 8, 8)).forward(dev(np.zeros(x_shape)))
    assert str(tuple(x_shape)) in str(excinfo.value)


@pytest.mark.parametrize("shape", [(), (0, 8), (1, -2, 3)])
def test_reshape_rejects_bad_shape(shape):
    with pytest.raises(ConfigError, match="shape="):
        Reshape(shape)


@pytest.mark.parametrize("make", [Flatten, lambda: Reshape((2, 2))], ids=["Flatten", "Reshape"])
def test_reshape_layers_backward_before_forward_raises(make):
    with pytest.raises(RuntimeError, match="without a forward"):
        make().backward(dev(np.ones((1, 4))))

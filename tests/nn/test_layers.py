"""Every layer's backward against central differences (float64), and the layer contract's errors.

For each layer: dC/dx and every dC/d(param) from ``backward`` must match the difference quotients
of sum(forward(x) * upstream) for a random upstream gradient, to a relative error below 1e-6.
"""

import numpy as np
import pytest
from helpers import dev, fixed_mask, host

from tiefnet.backend import default_dtype
from tiefnet.errors import ConfigError, ShapeError
from tiefnet.gradcheck import check_layer, numerical_gradient, relative_error
from tiefnet.nn import Dense, Dropout, ReLU, Sequential, Sigmoid, Softmax, Step, Tanh
from tiefnet.nn.layer import Layer
from tiefnet.nn.registry import layer_from_config, layer_to_config

TOL = 1e-6
DENSE_SHAPES = [(1, 1, 1), (1, 3, 2), (4, 5, 3), (7, 2, 6)]  # (N, n_in, n_out)
ACTIVATION_SHAPES = [(1, 1), (3, 4), (6, 2), (2, 3, 4)]  # (N, ...) ; softmax acts on the last axis


def upstream_for(shape, seed=1):
    """A random dC/d(output): the check then covers every output entry with a different weight."""
    return np.random.default_rng(seed).standard_normal(shape)


def away_from_zero(shape, seed=0, margin=0.1):
    """Inputs with |x| >= margin: ReLU is not differentiable at 0, the quotient straddles the kink."""
    u = np.random.default_rng(seed).standard_normal(shape)
    return np.sign(u) * (margin + np.abs(u))



def assert_grads_ok(errors: dict[str, float], names) -> None:
    assert set(errors) == set(names), errors
    bad = {name: err for name, err in errors.items() if not err < TOL}
    assert not bad, f"relative errors above {TOL}: {bad}"


# --- finite-difference checks ------------------------------------------------------------
@pytest.mark.parametrize("N, n_in, n_out", DENSE_SHAPES)
@pytest.mark.parametrize("init", ["scaled", "large", "he"])
def test_dense_gradcheck(float64, N, n_in, n_out, init):
    layer = Dense(n_in, n_out, init=init, rng=np.random.default_rng(N * 100 + n_in))
    assert layer.params["W"].dtype == np.float64 and layer.params["b"].dtype == np.float64
    x = dev(np.random.default_rng(7).standard_normal((N, n_in)))
    errors = check_layer(layer, x, dev(upstream_for((N, n_out))))
    assert_grads_ok(errors, ["x", "W", "b"])


@pytest.mark.parametrize("shape", ACTIVATION_SHAPES)
@pytest.mark.parametrize("cls", [Sigmoid, Tanh, ReLU, Softmax])
def test_activation_gradcheck(float64, cls, shape):
    x = dev(away_from_zero(shape, seed=len(shape)) * 1.5)
    errors = check_layer(cls(), x, dev(upstream_for(shape)))
    assert_grads_ok(errors, ["x"])


@pytest.mark.parametrize("shape", ACTIVATION_SHAPES)
@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.8])
def test_dropout_gradcheck_with_fixed_mask(float64, shape, p):
    layer = fixed_mask(Dropout(p), seed=3)
    x = dev(np.random.default_rng(5).standard_normal(shape))
    errors = check_layer(layer, x, dev(upstream_for(shape)))
    assert_grads_ok(errors, ["x"])


@pytest.mark.parametrize("shape", ACTIVATION_SHAPES)
@pytest.mark.parametrize("p", [0.25, 0.5])
@pytest.mark.parametrize("per_sample", [False, True])
def test_dropout_backward_is_the_mask(shape, p, per_sample):
    """forward = x * mask / (1 - p); backward = delta * mask / (1 - p) with the same mask:
    one mask (1, n) per mini-batch as in the lecture, or one per sample (N, n)."""
    x = np.random.default_rng(5).standard_normal(shape)
    delta = upstream_for(shape)
    layer = Dropout(p, per_sample=per_sample, rng=np.random.default_rng(11))
    out = layer.forward(dev(x), train=True)
    mask_shape = shape if per_sample else (1, *shape[1:])
    keep = np.random.default_rng(11).random(mask_shape) >= p  # the draw Dropout makes
    np.testing.assert_allclose(host(out), x * keep / (1 - p), rtol=1e-6)
    np.testing.assert_allclose(host(layer.backward(dev(delta))), delta * keep / (1 - p), rtol=1e-6)


def test_dropout_test_mode_is_identity_and_keeps_expectation():
    layer = Dropout(0.5, rng=np.random.default_rng(0))
    x = dev(np.ones((40, 2000)))
    assert layer.forward(x, train=False) is x
    out = host(layer.forward(x, train=True))
    dropped = float((out == 0).mean())
    assert 0.45 < dropped < 0.55  # about p of the neurons are deleted ...
    assert abs(float(out.mean()) - 1.0) < 0.05  # ... and the kept ones scaled by 1/(1-p)
    assert set(np.unique(out)) <= {0.0, 2.0}
    assert (out == out[0]).all()  # the same neurons for every sample of the mini-batch (2.7.3)


def test_dropout_same_seed_same_mask():
    x = dev(np.ones((5, 8)))
    a = Dropout(0.5, rng=np.random.default_rng(42)).forward(x, train=True)
    b = Dropout(0.5, rng=np.random.default_rng(42)).forward(x, train=True)
    np.testing.assert_array_equal(host(a), host(b))


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan")])
def test_dropout_rejects_bad_p(p):
    with pytest.raises(ConfigError, match="p="):
        Dropout(p)


SEQUENTIAL_CASES = {
    "dense-sigmoid": lambda rng: [Dense(4, 5, rng=rng), Sigmoid(), Dense(5, 3, rng=rng), Sigmoid()],
    "tanh-relu-softmax": lambda rng: [Dense(4, 6, rng=rng), Tanh(), Dense(6, 5, rng=rng), ReLU(),
                                      Dense(5, 3, rng=rng), Softmax()],
    "dropout": lambda rng: [Dense(4, 6, rng=rng), Sigmoid(), fixed_mask(Dropout(0.5), seed=9),
                            Dense(6, 3, rng=rng), Softmax()],
    "leading-activation": lambda rng: [Tanh(), Dense(4, 3, rng=rng), Sigmoid()],
    "nested": lambda rng: [Sequential(Dense(4, 5, rng=rng), Tanh()), Dense(5, 3, rng=rng)],
}


@pytest.mark.parametrize("case", sorted(SEQUENTIAL_CASES))
@pytest.mark.parametrize("N", [1, 5])
def test_sequential_gradcheck(float64, case, N):
    model = Sequential(*SEQUENTIAL_CASES[case](np.random.default_rng(21)))
    x = dev(np.random.default_rng(N).standard_normal((N, 4)))
    out = model.forward(x)
    errors = check_layer(model, x, dev(upstream_for(out.shape)))
    assert_grads_ok(errors, ["x", *model.params])


def test_sequential_params_are_the_children_arrays():
    inner = Dense(3, 2, rng=np.random.default_rng(0))
    model = Sequential(Dense(4, 3, rng=np.random.default_rng(0)), Sigmoid(), Sequential(inner, Tanh()))
    assert list(model.params) == ["0.W", "0.b", "2.0.W", "2.0.b"]
    assert model.params["2.0.W"] is inner.params["W"]
    assert [type(l).__name__ for l in model.param_layers()] == ["Dense", "Dense"]
    assert len(model) == 3 and model[1].__class__ is Sigmoid


def test_sequential_accepts_a_list_and_rejects_non_layers():
    assert len(Sequential([Sigmoid(), Tanh()])) == 2
    with pytest.raises(TypeError, match="item 1 is int"):
        Sequential(Sigmoid(), 3)


# --- need_input_grad -----------------------------------------------------------------------
class Spy(Layer):
    """Identity layer that records each backward call's need_input_grad flag and delta."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x, train=False):
        self.output = x
        return x

    def backward(self, delta, need_input_grad=True):
        self.calls.append((need_input_grad, delta.copy()))
        return delta if need_input_grad else None


def test_need_input_grad_false_skips_dx_of_first_trainable_layer(float64):
    rng = np.random.default_rng(0)
    x = dev(rng.standard_normal((3, 4)))
    upstream = dev(upstream_for((3, 2)))
    reference = Sequential(Dense(4, 5, rng=np.random.default_rng(1)), Sigmoid(),
                           Dense(5, 2, rng=np.random.default_rng(2)))
    reference.forward(x, train=True)
    dx = reference.backward(upstream)
    assert dx.shape == x.shape

    spy = Spy()
    first = Dense(4, 5, rng=np.random.default_rng(1))
    model = Sequential(spy, first, Sigmoid(), Dense(5, 2, rng=np.random.default_rng(2)))
    flags = []
    first_backward = first.backward

    def recording_backward(delta, need_input_grad=True):
        flags.append(need_input_grad)
        return first_backward(delta, need_input_grad)

    first.backward = recording_backward
    model.forward(x, train=True)
    assert model.backward(upstream, need_input_grad=False) is None
    assert flags == [False]  # the first trainable layer was told to skip dC/dx ...
    assert spy.calls == []  # ... and the layers before it get no backward at all
    for name, g in reference.grads.items():  # ... yet its grads are filled
        i, key = name.split(".")
        np.testing.assert_allclose(host(model.grads[f"{int(i) + 1}.{key}"]), host(g), rtol=1e-12)

    flags.clear()
    model.forward(x, train=True)
    dx_full = model.backward(upstream, need_input_grad=True)
    assert flags == [True] and len(spy.calls) == 1
    np.testing.assert_allclose(host(dx_full), host(dx), rtol=1e-12)


def test_need_input_grad_false_on_dense_returns_none(float64):
    layer = Dense(3, 2, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((4, 3))
    layer.forward(dev(x), train=True)
    assert layer.backward(dev(np.ones((4, 2))), need_input_grad=False) is None
    np.testing.assert_allclose(host(layer.grads["W"]), np.ones((2, 4)) @ x)
    np.testing.assert_allclose(host(layer.grads["b"]), [4.0, 4.0])


# --- errors ----------------------------------------------------------------------------------
BACKWARD_BEFORE_FORWARD = {
    "Dense": lambda: Dense(3, 2),
    "Sigmoid": Sigmoid,
    "Tanh": Tanh,
    "ReLU": ReLU,
    "Softmax": Softmax,
    "Dropout": lambda: Dropout(0.5),
    "Sequential": lambda: Sequential(Dense(3, 2), Sigmoid()),
}


@pytest.mark.parametrize("name", sorted(BACKWARD_BEFORE_FORWARD))
def test_backward_before_forward_raises(name):
    layer = BACKWARD_BEFORE_FORWARD[name]()
    with pytest.raises(RuntimeError, match=r"backward\(\) called without a forward\(x, train=True\)"):
        layer.backward(dev(np.ones((2, 2))))


@pytest.mark.parametrize("name", ["Dense", "Dropout"])
def test_backward_after_test_mode_forward_raises(name):
    """Layers whose backward needs a training cache refuse a backward after forward(train=False)."""
    layer = BACKWARD_BEFORE_FORWARD[name]()
    x = dev(np.ones((2, 3)) if name == "Dense" else np.ones((2, 2)))
    layer.forward(x, train=False)
    with pytest.raises(RuntimeError, match="without a forward"):
        layer.backward(dev(np.ones((2, 2))))


@pytest.mark.parametrize("x_shape", [(2, 5), (2, 3), (4,), (2, 4, 1)])
def test_sequential_input_shape_error_names_layer_and_shapes(x_shape):
    model = Sequential(Dense(4, 3, rng=np.random.default_rng(0)), Sigmoid())
    with pytest.raises(ShapeError) as excinfo:
        model.forward(dev(np.zeros(x_shape)))
    message = str(excinfo.value)
    assert "Dense(n_in=4, n_out=3" in message
    assert "(N, 4)" in message
    assert str(tuple(x_shape)) in message
    assert "\n" not in message
    assert isinstance(excinfo.value, ValueError)


def test_sequential_nested_input_shape_check():
    model = Sequential(Sequential(Dense(6, 3)), Sigmoid())
    assert model.input_features == 6
    with pytest.raises(ShapeError, match=r"\(N, 6\).*\(1, 5\)"):
        model.forward(dev(np.zeros((1, 5))))


def test_sequential_of_activations_accepts_any_shape():
    model = Sequential(Sigmoid(), Tanh())
    assert model.input_features is None
    assert model.forward(dev(np.zeros((2, 3, 4)))).shape == (2, 3, 4)


@pytest.mark.parametrize("n_in, n_out", [(0, 3), (3, 0), (-1, 2)])
def test_dense_rejects_bad_sizes(n_in, n_out):
    with pytest.raises(ConfigError, match="must be at least 1"):
        Dense(n_in, n_out)


def test_dense_rejects_unknown_init():
    with pytest.raises(ConfigError, match="init='xavier'"):
        Dense(3, 2, init="xavier")


@pytest.mark.parametrize("init, std", [
    ("large", lambda n: 1.0), ("scaled", lambda n: n**-0.5), ("he", lambda n: (2 / n) ** 0.5)])
def test_dense_init_std(init, std):
    """(2.7.3) weights ~ N(0, s^2) with s = 1, 1/sqrt(n_in) or sqrt(2/n_in); biases ~ N(0, 1)."""
    layer = Dense(400, 300, init=init, rng=np.random.default_rng(0))
    W, b = layer.params["W"], layer.params["b"]
    assert W.shape == (300, 400) and b.shape == (300,) and W.dtype == np.float32
    assert abs(float(W.std()) / std(400) - 1) < 0.02
    assert abs(float(W.mean())) < 0.01 * std(400)
    assert abs(float(b.std()) - 1) < 0.15


def test_dense_same_seed_same_weights():
    a, b = Dense(5, 4, rng=np.random.default_rng(3)), Dense(5, 4, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(host(a.params["W"]), host(b.params["W"]))
    np.testing.assert_array_equal(host(a.params["b"]), host(b.params["b"]))


def test_dense_forward_is_lecture_form(float64):
    """z^l = w^l a^{l-1} + b^l per sample column vector; our rows: z = x @ W.T + b. W[j, k] = w_jk."""
    layer = Dense(3, 2, rng=np.random.default_rng(0))
    W, b = host(layer.params["W"]), host(layer.params["b"])
    x = np.random.default_rng(1).standard_normal((4, 3))
    z = host(layer.forward(dev(x)))
    for n in range(4):
        for j in range(2):
            assert z[n, j] == pytest.approx(sum(W[j, k] * x[n, k] for k in range(3)) + b[j], rel=1e-12)


def test_activation_values():
    z = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_allclose(host(Sigmoid().forward(dev(z))), 1 / (1 + np.exp(-z)))
    np.testing.assert_allclose(host(Tanh().forward(dev(z))), np.tanh(z))
    np.testing.assert_array_equal(host(ReLU().forward(dev(z))), [[0.0, 0.0, 3.0]])
    a = host(Softmax().forward(dev(z)))
    np.testing.assert_allclose(a, np.exp(z) / np.exp(z).sum())
    assert a.sum() == pytest.approx(1.0)


def test_sigmoid_and_softmax_do_not_overflow():
    z = dev(np.array([[-1000.0, 0.0, 1000.0]]))
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # NumPy backend only; CuPy never raises
        np.testing.assert_allclose(host(Sigmoid().forward(z)), [[0.0, 0.5, 1.0]])
        np.testing.assert_allclose(host(Softmax().forward(z)), [[0.0, 0.0, 1.0]])


# --- Step: the perceptron ------------------------------------------------------------------
def test_step_layer_is_the_nand_perceptron():
    """(2.1) a perceptron with w = (-2, -2), b = 3 computes NAND."""
    nand = Dense(2, 1)
    nand.params["W"][...] = dev([[-2.0, -2.0]])
    nand.params["b"][...] = dev([3.0])
    model = Sequential(nand, Step())
    x = dev(np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32))
    out = model.forward(x)
    np.testing.assert_array_equal(host(out), [[1], [1], [1], [0]])
    assert out.dtype == np.float32


def test_step_output_at_threshold():
    """output 1 if w.x + b > 0, else 0: exactly at the threshold the perceptron does not fire."""
    np.testing.assert_array_equal(host(Step().forward(dev(np.array([[-1.0, 0.0, 1e-7, 5.0]])))), [[0, 0, 1, 1]])


def test_step_has_no_backward():
    layer = Step()
    layer.forward(dev(np.zeros((1, 2))), train=True)
    with pytest.raises(RuntimeError, match="Sigmoid"):
        layer.backward(dev(np.ones((1, 2))))


# --- to_config / describe -----------------------------------------------------------------
def test_describe_and_config_round_trip():
    model = Sequential(Dense(4, 3, init="he"), ReLU(), Dropout(0.3), Dense(3, 2), Softmax())
    assert model.describe() == (
        "Sequential(Dense(n_in=4, n_out=3, init=he), ReLU(), Dropout(p=0.3, per_sample=False), "
        "Dense(n_in=3, n_out=2, init=scaled), Softmax())"
    )
    rebuilt = layer_from_config(layer_to_config(model))
    assert rebuilt.describe() == model.describe()


def test_check_layer_on_sequential_restores_parameters(float64):
    """The difference quotients perturb parameters in place and must put them back exactly."""
    model = Sequential(Dense(3, 2, rng=np.random.default_rng(0)), Tanh())
    before = {k: host(v).copy() for k, v in model.params.items()}
    check_layer(model, dev(np.random.default_rng(1).standard_normal((2, 3))))
    for k, v in model.params.items():
        np.testing.assert_array_equal(host(v), before[k])


def test_float32_default_dtype_is_restored():
    with default_dtype(np.float64):
        assert Dense(2, 2).params["W"].dtype == np.float64
    assert Dense(2, 2).params["W"].dtype == np.float32


def test_numerical_gradient_through_a_layer_matches_backward_for_x(float64):
    layer = Softmax()
    x = dev(np.random.default_rng(0).standard_normal((3, 4)))
    upstream = dev(upstream_for((3, 4)))
    layer.forward(x, train=True)
    analytic = layer.backward(upstream)
    numeric = numerical_gradient(lambda: layer.forward(x), x, upstream)
    assert relative_error(analytic, numeric) < TOL
    np.testing.assert_allclose(host(analytic.sum(axis=-1)), 0.0, atol=1e-12)  # softmax rows sum to 1


@pytest.mark.parametrize("cls", [Sigmoid, Tanh, ReLU, Softmax])
def test_activation_backward_needs_a_training_forward(cls):
    layer = cls()
    layer.forward(dev(np.ones((2, 3))))  # a test-mode pass caches nothing
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(dev(np.ones((2, 3))))


def test_dense_time_distributed_gradcheck(float64):
    """A Dense layer on (N, T, n_in) is the same layer at every step: a_t = W h_t + b (4.1)."""
    layer = Dense(4, 3, rng=np.random.default_rng(0))
    x = dev(np.random.default_rng(1).standard_normal((2, 5, 4)))
    errors = check_layer(layer, x, dev(np.random.default_rng(2).standard_normal((2, 5, 3))))
    assert max(errors.values()) < 1e-6, errors
    assert host(layer.forward(x)).shape == (2, 5, 3)

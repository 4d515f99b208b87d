"""RNN and LSTM (4.1-4.4): BPTT against central differences (float64), explicit and carried state,
frozen layers, evaluation forwards that write nothing, stacking, gradient clipping and the error messages."""

from functools import partial

import numpy as np
import pytest
from helpers import dev, guard_against_writes, host

from tiefnet import backend
from tiefnet.errors import ConfigError, ShapeError
from tiefnet.gradcheck import check_layer, numerical_gradient, relative_error
from tiefnet.nn import Dense, Sequential
from tiefnet.nn.cells import LSTMCell, RNNCell
from tiefnet.nn.registry import layer_from_config, layer_to_config
from tiefnet.nn.recurrent import LSTM, RNN
from tiefnet.optim import clip_gradients

TOL = 1e-6
N, T, D, H = 2, 4, 3, 5
ALL = [RNN, LSTM, RNNCell, LSTMCell]  # the fused layers and the cells share forward_state/backward_state


def data(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def make(cls, seed=0, **kwargs):
    layer = cls(D, H, rng=np.random.default_rng(seed), **kwargs)
    layer.params["b"][...] = dev(0.5 * data(layer.params["b"].shape, seed + 1))  # non-zero biases
    return layer


def initial_state(cls, seed=5):
    return tuple(dev(data((N, H), seed + k)) for k in range(len(cls.state_names)))


def assert_ok(errors, names):
    assert set(errors) == set(names), errors
    bad = {name: err for name, err in errors.items() if not err < TOL}
    assert not bad, f"relative errors above {TOL}: {bad}"


# --- finite differences ---------------------------------------------------------------------
@pytest.mark.parametrize("cls", [RNN, LSTM])
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("with_state", [False, True])
def test_gradcheck(float64, cls, return_sequences, with_state):
    layer = make(cls, return_sequences=return_sequences)
    if with_state:
        layer.forward = partial(layer.forward, state=initial_state(cls))
    x = dev(data((N, T, D), 3))
    out_shape = (N, T, H) if return_sequences else (N, H)
    assert_ok(check_layer(layer, x, dev(data(out_shape, 4))), ["x", "W", "U", "b"])


@pytest.mark.parametrize("cls", ALL)
def test_gradient_of_initial_state(float64, cls):
    layer = make(cls)
    state = initial_state(cls)
    x, upstream = dev(data((N, T, D), 3)), dev(data((N, T, H), 4))
    layer.forward(x, train=True, state=state)
    layer.backward(upstream)
    for k, s in enumerate(state):
        numeric = numerical_gradient(lambda: layer.forward(x, train=True, state=state), s, upstream)
        assert relative_error(layer.dstate[k], numeric) < TOL


@pytest.mark.parametrize("cls", [RNN, LSTM])
def test_stacked_gradcheck(float64, cls):
    rng = np.random.default_rng(1)
    model = Sequential(cls(3, 5, rng=rng), cls(5, 4, rng=rng, return_sequences=False), Dense(4, 2, rng=rng))
    x = dev(data((N, T, 3), 2))
    assert_ok(check_layer(model, x, dev(data((N, 2), 3))),
              ["x", "0.W", "0.U", "0.b", "1.W", "1.U", "1.b", "2.W", "2.b"])


def test_stacked_lstm_gradcheck(float64):
    model = Sequential(LSTM(3, 5, rng=np.random.default_rng(0)), LSTM(5, 4, rng=np.random.default_rng(1)))
    x = dev(data((N, T, 3), 2))
    assert_ok(check_layer(model, x, dev(data((N, T, 4), 3))), ["x", "0.W", "0.U", "0.b", "1.W", "1.U", "1.b"])


# --- state ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [RNN, LSTM])
def test_stateful_carries_state_across_blocks(float64, cls):
    x = dev(data((N, 2 * T, D), 3))
    whole = make(cls).forward(x)
    layer = make(cls, stateful=True)
    first, second = layer.forward(x[:, :T]), layer.forward(x[:, T:])
    np.testing.assert_allclose(host(first), host(whole[:, :T]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(host(second), host(whole[:, T:]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(host(layer.state[0]), host(whole[:, -1]), rtol=1e-12, atol=1e-12)
    layer.reset_state()
    assert layer.state is None
    np.testing.assert_allclose(host(layer.forward(x[:, T:])), host(make(cls).forward(x[:, T:])), rtol=1e-12)


@pytest.mark.parametrize("cls", [RNN, LSTM])
def test_stateless_starts_from_zeros_every_call(float64, cls):
    layer = make(cls)
    x = dev(data((N, T, D), 3))
    a = host(layer.forward(x)).copy()
    np.testing.assert_array_equal(host(layer.forward(x)), a)
    out, last = layer.forward_state(x)
    np.testing.assert_array_equal(host(out), a)
    assert len(last) == len(cls.state_names) and all(s.shape == (N, H) for s in last)
    np.testing.assert_array_equal(host(last[0]), a[:, -1])  # h^T
    zeros = tuple(dev(np.zeros((N, H))) for _ in last)
    np.testing.assert_array_equal(host(layer.forward(x, state=zeros)), a)
    with pytest.raises(AttributeError, match="not stateful.*forward_state"):
        layer.state  # noqa: B018 -- a stateless layer carries nothing to read


@pytest.mark.parametrize("cls", [RNN, LSTM])
def test_truncated_bptt_blocks_gradients(float64, cls):
    """Backward of the second block leaves the first block's gradients out: dstate is reported,
    but nothing flows into the previous call."""
    layer = make(cls, stateful=True)
    x = dev(data((N, 2 * T, D), 3))
    layer.forward(x[:, :T], train=True)
    carried = layer.state
    layer.forward(x[:, T:], train=True)
    dx = layer.backward(dev(data((N, T, H), 4)))
    assert dx.shape == (N, T, D)
    fresh = make(cls)
    fresh.forward(x[:, T:], train=True, state=carried)
    np.testing.assert_allclose(host(fresh.backward(dev(data((N, T, H), 4)))), host(dx), rtol=1e-12)


# --- explicit state: forward_state / backward_state (fused layers and cells alike) ------------
def explicit_state_cost(layer, x, state, grad, dlast):
    """f and its upstream for numerical_gradient: C = <grad, output> + sum_k <dlast_k, last_k>."""
    xp = backend.xp

    def f():
        out, last = layer.forward_state(x, state, train=True)
        return xp.concatenate([out.ravel(), *(s.ravel() for s in last)])

    out, _ = layer.forward_state(x, state)
    grad = xp.zeros(out.shape) if grad is None else grad  # no gradient from the output: 0
    return f, xp.concatenate([grad.ravel(), *(d.ravel() for d in dlast)])


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("with_output_grad", [True, False])
def test_backward_state_with_dlast_gradcheck(float64, cls, with_output_grad):
    """dlast = dC/d(last state) enters BPTT at t = T (an encoder whose last state starts a decoder);
    dx, dC/d(initial state) and every parameter gradient against central differences."""
    layer = make(cls)
    x, state, dlast = dev(data((N, T, D), 3)), initial_state(cls, 5), initial_state(cls, 7)
    grad = dev(data((N, T, H), 4)) if with_output_grad else None
    f, upstream = explicit_state_cost(layer, x, state, grad, dlast)
    layer.forward_state(x, state, train=True)
    dx, dstate0 = layer.backward_state(grad, dlast)
    grads = {name: host(g).copy() for name, g in layer.grads.items()}
    assert relative_error(dx, numerical_gradient(f, x, upstream)) < TOL
    for k, s in enumerate(state):
        assert relative_error(dstate0[k], numerical_gradient(f, s, upstream)) < TOL
    for name, p in layer.params.items():
        assert relative_error(dev(grads[name]), numerical_gradient(f, p, upstream)) < TOL, name


@pytest.mark.parametrize("return_sequences", [True, False])
def test_last_output_and_last_state_gradients_add(float64, return_sequences):
    """With return_sequences=False the output is h^T, which is also the last state's h: both
    gradients reach h^T (the BPTT start is their sum)."""
    layer = make(LSTM, return_sequences=return_sequences)
    x, state, dlast = dev(data((N, T, D), 3)), initial_state(LSTM, 5), initial_state(LSTM, 7)
    grad = dev(data((N, T, H) if return_sequences else (N, H), 4))
    f, upstream = explicit_state_cost(layer, x, state, grad, dlast)
    layer.forward_state(x, state, train=True)
    dx, _ = layer.backward_state(grad, dlast)
    assert relative_error(dx, numerical_gradient(f, x, upstream)) < TOL


@pytest.mark.parametrize("cls", ALL)
def test_forward_and_backward_are_forward_state_and_backward_state(float64, cls):
    x, state, grad = dev(data((N, T, D), 3)), initial_state(cls), dev(data((N, T, H), 4))
    layer = make(cls)
    out, last = layer.forward_state(x, state, train=True)
    dx, dstate0 = layer.backward_state(grad)
    expected = [host(a).copy() for a in (out, *last, dx, *dstate0, *layer.grads.values())]
    again = make(cls)
    out = again.forward(x, train=True, state=state)
    dx = again.backward(grad)
    assert again.dstate is not None
    for a, b in zip(expected, [out, *last, dx, *again.dstate, *again.grads.values()]):
        np.testing.assert_array_equal(host(b), a)
    assert again.backward(grad, need_input_grad=False) is None
    assert layer.backward_state(grad, need_input_grad=False)[0] is None


@pytest.mark.parametrize("cls", [RNN, LSTM])
def test_forward_state_never_touches_the_carried_state(float64, cls):
    layer = make(cls, stateful=True)
    x = dev(data((N, T, D), 3))
    layer.forward(x)
    carried = layer.state
    out, last = layer.forward_state(x)  # from zeros, not from the carried state
    np.testing.assert_array_equal(host(out), host(make(cls).forward(x)))
    assert layer.state is carried
    layer.state = last  # the carried state can be set (a stream resumed, as charrnn.evaluate does)
    np.testing.assert_array_equal(host(layer.forward(x)), host(make(cls).forward(x, state=last)))


# --- frozen layers, evaluation forwards -----------------------------------------------------
@pytest.mark.parametrize("cls", ALL)
def test_frozen_layer_writes_no_gradient_but_returns_dx_and_dstate(float64, cls):
    x, state, dlast, grad = dev(data((N, T, D), 3)), initial_state(cls), initial_state(cls, 7), dev(data((N, T, H), 4))
    layer = make(cls)

    def backward_both():  # backward_state with dlast, and the plain backward
        layer.forward_state(x, state, train=True)
        dx, dstate0 = layer.backward_state(grad, dlast)
        layer.forward(x, train=True, state=state)
        return [host(a).copy() for a in (dx, *dstate0, layer.backward(grad), *layer.dstate)]

    expected = backward_both()
    untouched = guard_against_writes(layer.grads.values())  # any write by backward shows (or raises)
    layer.freeze()
    for a, b in zip(expected, backward_both()):
        np.testing.assert_array_equal(b, a)
    assert untouched()


def attributes(layer):
    """What is written onto a layer: each attribute's object, and the entries of dict attributes."""
    return {k: (v, dict(v) if isinstance(v, dict) else None) for k, v in vars(layer).items()}


def assert_same_attributes(before, after, changed=()):
    assert after.keys() == before.keys()
    for key in before:
        if key not in changed:
            assert after[key][0] is before[key][0], key
            if before[key][1] is not None:
                assert after[key][1].keys() == before[key][1].keys(), key
                assert all(after[key][1][k] is v for k, v in before[key][1].items()), key


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("trained", [False, True])
def test_evaluation_forward_writes_nothing(float64, cls, trained):
    """train=False leaves the layer as it was (before and after a training pass): one layer can
    answer several threads; the arrays it holds keep their values too."""
    x, state = dev(data((N, T, D), 3)), initial_state(cls)
    layer = make(cls)
    if trained:
        layer.forward(x, train=True)
        layer.backward(dev(data((N, T, H), 4)))
    before = attributes(layer)
    values = {k: host(v).copy() for k, v in {**layer.params, **layer.grads}.items()}
    layer.forward(x)
    layer.forward(x, state=state)
    layer.forward_state(x, state)
    if hasattr(layer, "step"):
        layer.step(x[:, 0], state)
    assert_same_attributes(before, attributes(layer))
    for k, v in {**layer.params, **layer.grads}.items():
        np.testing.assert_array_equal(host(v), values[k])


@pytest.mark.parametrize("cls", [RNN, LSTM])
def test_stateful_evaluation_forward_writes_only_the_carried_state(float64, cls):
    layer = make(cls, stateful=True)
    x = dev(data((N, T, D), 3))
    before = attributes(layer)
    layer.forward(x)
    assert_same_attributes(before, attributes(layer), changed={"_carried"})
    assert layer.state is not None and layer.state[0].shape == (N, H)


# --- clipping -------------------------------------------------------------------------------
def test_clip_gradients_scales_to_max_norm(float64):
    model = Sequential(LSTM(3, 5, rng=np.random.default_rng(0)), RNN(5, 4, rng=np.random.default_rng(1)))
    model.forward(dev(data((N, T, 3), 2)), train=True)
    model.backward(dev(100 * data((N, T, 4), 3)))
    before = {k: host(g).copy() for k, g in model.grads.items()}
    norm = np.sqrt(sum((g ** 2).sum() for g in before.values()))
    assert clip_gradients(model, 1.0) == pytest.approx(norm)
    after = np.sqrt(sum((host(g) ** 2).sum() for g in model.grads.values()))
    assert after == pytest.approx(1.0)
    for k, g in model.grads.items():
        np.testing.assert_allclose(host(g), before[k] / norm)
    assert clip_gradients(list(model.param_layers()), 10.0) == pytest.approx(1.0)  # below: untouched
    for k, g in model.grads.items():
        np.testing.assert_allclose(host(g), before[k] / norm)
    with pytest.raises(ConfigError, match="max_norm"):
        clip_gradients(model, 0.0)


# --- errors and config ----------------------------------------------------------------------
@pytest.mark.parametrize("cls", ALL)
def test_shape_errors_name_the_layer(cls):
    layer = cls(D, H, rng=np.random.default_rng(0))
    for bad in [(N, D), (N, T, D + 1), (N, 0, D)]:
        with pytest.raises(ShapeError, match=cls.__name__):
            layer.forward(dev(np.zeros(bad, dtype=np.float32)))
    x = dev(np.zeros((N, T, D), dtype=np.float32))
    wrong = tuple(dev(np.zeros((N + 1, H), dtype=np.float32)) for _ in cls.state_names)
    with pytest.raises(ShapeError, match=rf"{cls.__name__}.*state.*\({N}, {H}\).*\({N + 1}, {H}\)"):
        layer.forward(x, state=wrong)
    with pytest.raises(ShapeError, match=rf"{cls.__name__}.*state"):
        layer.forward_state(x, wrong[:1] if len(wrong) == 2 else wrong * 2)  # (h,) for (h, c) and vice versa
    layer.forward(x, train=True)
    with pytest.raises(ShapeError, match=rf"{cls.__name__}.*\({N}, {H}\)"):
        layer.backward(dev(np.zeros((N, H), dtype=np.float32)))
    with pytest.raises(ShapeError, match=rf"{cls.__name__}.*dlast"):
        layer.backward_state(dev(np.zeros((N, T, H), dtype=np.float32)), wrong)


@pytest.mark.parametrize("cls", ALL)
def test_backward_without_training_forward_raises(cls):
    layer = cls(D, H, rng=np.random.default_rng(0))
    with pytest.raises(RuntimeError, match=cls.__name__):
        layer.backward(dev(np.zeros((N, T, H), dtype=np.float32)))
    layer.forward(dev(np.zeros((N, T, D), dtype=np.float32)))  # test mode: no cache
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(dev(np.zeros((N, T, H), dtype=np.float32)))


@pytest.mark.parametrize("cls", [RNN, LSTM])
def test_config_round_trip_and_validation(cls):
    layer = cls(D, H, rng=np.random.default_rng(0), return_sequences=False, stateful=True)
    again = layer_from_config(layer_to_config(layer))
    assert type(again) is cls and again.to_config() == layer.to_config()
    assert layer.params["W"].shape == (cls.gates * H, H) and layer.params["U"].shape == (cls.gates * H, D)
    with pytest.raises(ConfigError, match=cls.__name__):
        cls(0, H)


def test_lstm_forget_bias_and_gate_order():
    layer = LSTM(D, H, rng=np.random.default_rng(0), forget_bias=2.0)
    b = host(layer.params["b"])
    np.testing.assert_array_equal(b[:H], 2.0)  # blocks f, i, o, g: b_f first
    np.testing.assert_array_equal(b[H:], 0.0)


# --- parallel parts -------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [RNN, LSTM])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_batch_parts_on_two_threads_match_one_thread(float64, cls, return_sequences):
    """With thread_limit(2) the N sequences run as two parts on two threads; the outputs, the
    carried state and every gradient equal the one-part computation."""
    from tiefnet.backend import thread_limit

    n = 20  # split_batch cuts batches of 16 or more into two parts
    x, h_out = dev(data((n, T, D), 3)), dev(data((n, T, H) if return_sequences else (n, H), 4))
    results = []
    for threads in (1, 2):
        layer = make(cls, return_sequences=return_sequences)
        with thread_limit(threads):
            out, last = layer.forward_state(x, train=True)
            out = host(out).copy()
            assert len(layer._parts) == threads  # really split into parts
            dx = host(layer.backward(h_out)).copy()
        results.append((out, dx, [host(s).copy() for s in last], [host(s).copy() for s in layer.dstate],
                        {k: host(g).copy() for k, g in layer.grads.items()}))
    (out1, dx1, state1, dstate1, grads1), (out2, dx2, state2, dstate2, grads2) = results
    np.testing.assert_allclose(out2, out1, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx2, dx1, rtol=1e-12, atol=1e-12)
    for a, b in zip(state2 + dstate2, state1 + dstate1):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    for name in grads1:
        np.testing.assert_allclose(grads2[name], grads1[name], rtol=1e-10, atol=1e-12)

"""RNNCell and LSTMCell (4.1, 4.4): one step forward and backward against central differences
(float64), a decoder that feeds its own output back in, the step loop against the fused layers,
one cell serving two sequences, gradient accumulation, errors and saving.

What the cells share with the fused layers (forward_state/backward_state with dlast, frozen
layers, evaluation forwards that write nothing, state shape errors) is tested in test_recurrent.py."""

import re

import numpy as np
import pytest
from helpers import dev, host

from tiefnet import backend
from tiefnet.checkpoint import load_model, save_model
from tiefnet.errors import ShapeError
from tiefnet.gradcheck import check_layer, numerical_gradient, relative_error
from tiefnet.nn import Dense, Sequential
from tiefnet.nn.cells import LSTMCell, RNNCell
from tiefnet.nn.recurrent import LSTM, RNN
from tiefnet.nn.registry import layer_from_config, layer_to_config

TOL = 1e-6
N, T, D, H = 2, 4, 3, 5
CELLS = [RNNCell, LSTMCell]
FUSED = {RNNCell: RNN, LSTMCell: LSTM}


def data(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def make(cls, seed=0, D=D):
    cell = cls(D, H, rng=np.random.default_rng(seed))
    cell.params["b"][...] = dev(0.5 * data(cell.params["b"].shape, seed + 1))  # non-zero biases
    return cell


def random_state(cls, seed):
    return tuple(dev(data((N, H), seed + k)) for k in range(len(cls.state_names)))


def assert_close(a, b, tol=1e-12):
    np.testing.assert_allclose(host(a), host(b), rtol=tol, atol=tol)


# --- one step -------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("given", ["dh and dstate", "dh only", "dstate only"])
def test_step_gradcheck(float64, cls, given):
    """C = <dh, h^t> + <dstate, state^t>: dx_t, dC/d(state^{t-1}) (dh_prev, dc_prev) and this step's
    dW, dU, db against central differences."""
    cell = make(cls)
    x_t, state = dev(data((N, D), 3)), random_state(cls, 4)
    dh = dev(data((N, H), 6)) if given != "dstate only" else None
    dstate = random_state(cls, 8) if given != "dh only" else None
    zeros = [0 * s for s in state]
    outside = [zeros[0] if dh is None else dh, *zeros[1:]]  # dh reaches h^t = state^t[0] only
    recursive = zeros if dstate is None else dstate
    upstream = backend.xp.concatenate([(a + b).ravel() for a, b in zip(outside, recursive)])  # dC/d(state^t)

    def f():
        return backend.xp.concatenate([s.ravel() for s in cell.step(x_t, state)[1]])

    _, _, cache = cell.step(x_t, state, train=True)
    cell.zero_grads()
    dx_t, dstate_prev = cell.step_backward(cache, dh, dstate)
    assert relative_error(dx_t, numerical_gradient(f, x_t, upstream)) < TOL
    assert len(dstate_prev) == len(state)
    for k, s in enumerate(state):
        assert relative_error(dstate_prev[k], numerical_gradient(f, s, upstream)) < TOL, cls.state_names[k]
    grads = {name: host(g).copy() for name, g in cell.grads.items()}
    for name, p in cell.params.items():
        assert relative_error(dev(grads[name]), numerical_gradient(f, p, upstream)) < TOL, name


@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("with_state", [False, True])
def test_loop_gradcheck(float64, cls, with_state):
    """The Layer contract, forward over T steps and backward over them, through check_layer."""
    cell = make(cls)
    if with_state:
        state = random_state(cls, 5)
        forward = cell.forward
        cell.forward = lambda x, train=False: forward(x, train, state=state)
    errors = check_layer(cell, dev(data((N, T, D), 3)), dev(data((N, T, H), 4)))
    assert set(errors) == {"x", "W", "U", "b"} and all(e < TOL for e in errors.values()), errors


@pytest.mark.parametrize("cls", CELLS)
def test_cell_in_a_sequential_gradcheck(float64, cls):
    model = Sequential(make(cls), Dense(H, 2, rng=np.random.default_rng(2)))
    errors = check_layer(model, dev(data((N, T, D), 3)), dev(data((N, T, 2), 4)))
    assert all(e < TOL for e in errors.values()), errors


# --- a generating decoder: h^t -> Dense -> part of x^{t+1} ----------------------------------
E, K = 2, 3  # x^t = [e^t; y^{t-1}]: E features from outside, K fed back from the previous step's output


def decode(cell, dense, e, y0, state, train=False):
    """y^t = Dense(h^t), h^t = cell([e^t; y^{t-1}], state^{t-1}); returns y (N, T, K), caches, hs."""
    xp = backend.xp
    y, ys, caches, hs = y0, [], [], []
    for t in range(e.shape[1]):
        h, state, cache = cell.step(xp.concatenate([e[:, t], y], axis=1), state, train)
        y = dense.forward(h)  # evaluation forward: the decoder keeps h^t itself
        ys.append(y), caches.append(cache), hs.append(h)
    return xp.stack(ys, axis=1), caches, hs


def decode_backward(cell, dense, caches, hs, upstream):
    """BPTT through the decoder: dC/dy^t = (output at t) + (through x^{t+1}); returns de, dy0,
    dC/d(initial state) and the Dense gradients summed over t."""
    cell.zero_grads()
    dense_grads = {name: 0 for name in dense.params}
    de = backend.xp.empty((N, len(caches), E))
    dy_next, dstate = 0, None  # nothing flows back from beyond the last step
    for t in range(len(caches) - 1, -1, -1):
        dy = upstream[:, t] + dy_next
        dh = dense.backward_rows(dy, hs[t], need_input_grad=True)  # dC/dh^t from outside the recursion
        dense_grads = {name: g + host(dense.grads[name]) for name, g in dense_grads.items()}
        dx_t, dstate = cell.step_backward(caches[t], dh, dstate)
        de[:, t], dy_next = dx_t[:, :E], dx_t[:, E:]  # dC/de^t and dC/dy^{t-1} through x^t
    return de, dy_next, dstate, dense_grads


@pytest.mark.parametrize("cls", CELLS)
def test_decoder_feeding_its_output_back_gradcheck(float64, cls):
    cell, dense = make(cls, D=E + K), Dense(H, K, rng=np.random.default_rng(9))
    e, y0, state = dev(data((N, T, E), 3)), dev(data((N, K), 4)), random_state(cls, 5)
    upstream = dev(data((N, T, K), 7))
    _, caches, hs = decode(cell, dense, e, y0, state, train=True)
    de, dy0, dstate0, dense_grads = decode_backward(cell, dense, caches, hs, upstream)

    def f():
        return decode(cell, dense, e, y0, state)[0]

    assert relative_error(de, numerical_gradient(f, e, upstream)) < TOL
    assert relative_error(dy0, numerical_gradient(f, y0, upstream)) < TOL
    for k, s in enumerate(state):
        assert relative_error(dstate0[k], numerical_gradient(f, s, upstream)) < TOL
    cell_grads = {name: host(g).copy() for name, g in cell.grads.items()}
    for name, p in cell.params.items():
        assert relative_error(dev(cell_grads[name]), numerical_gradient(f, p, upstream)) < TOL, name
    for name, p in dense.params.items():
        assert relative_error(dev(dense_grads[name]), numerical_gradient(f, p, upstream)) < TOL, "dense " + name


# --- the cell loop is the fused layer -------------------------------------------------------
@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("with_dlast", [False, True])
def test_loop_equals_fused_layer(float64, cls, with_dlast):
    """Same seed, same parameters (layout, init, forget bias); then outputs, last state, dC/dx,
    dC/d(initial state) and every gradient agree to 1e-12 (different order of the float ops)."""
    cell, fused = cls(D, H, rng=np.random.default_rng(0)), FUSED[cls](D, H, rng=np.random.default_rng(0))
    for name, p in cell.params.items():
        np.testing.assert_array_equal(host(p), host(fused.params[name]))  # the weights copy 1:1
        fused.params[name][...] = cell.params[name] = dev(data(p.shape, 1))
    x, state, grad = dev(data((N, T, D), 3)), random_state(cls, 4), dev(data((N, T, H), 6))
    dlast = random_state(cls, 8) if with_dlast else None
    results = []
    for layer in (cell, fused):
        out, last = layer.forward_state(x, state, train=True)
        dx, dstate0 = layer.backward_state(grad, dlast)
        results.append([out, *last, dx, *dstate0, *(layer.grads[name] for name in cell.params)])
    for a, b in zip(*results):
        assert_close(a, b)


@pytest.mark.parametrize("cls", CELLS)
def test_one_cell_serves_two_sequences(float64, cls):
    """The caches live with the caller: two sequences stepped in turn through one cell give each
    sequence's own outputs and dC/dx, and gradients that add up."""
    cell = make(cls)
    xs, grads = [dev(data((N, T, D), 3 + s)) for s in range(2)], [dev(data((N, T, H), 5 + s)) for s in range(2)]
    expected, expected_grads = [], {name: 0 for name in cell.params}
    for x, g in zip(xs, grads):  # one after the other, through the Layer contract
        out = host(cell.forward(x, train=True)).copy()
        expected.append((out, host(cell.backward(g)).copy()))
        expected_grads = {name: v + host(cell.grads[name]) for name, v in expected_grads.items()}
    states, caches, outs = [None, None], [[], []], [[], []]
    for t in range(T):  # interleaved, step by step
        for s in range(2):
            h, states[s], cache = cell.step(xs[s][:, t], states[s], train=True)
            outs[s].append(h), caches[s].append(cache)
    cell.zero_grads()
    dstates, dxs = [None, None], [[None] * T, [None] * T]
    for t in range(T - 1, -1, -1):
        for s in range(2):
            dxs[s][t], dstates[s] = cell.step_backward(caches[s][t], grads[s][:, t], dstates[s])
    for s, (out, dx) in enumerate(expected):
        assert_close(backend.xp.stack(outs[s], axis=1), out)
        assert_close(backend.xp.stack(dxs[s], axis=1), dx)
    for name, g in cell.grads.items():
        assert_close(g, expected_grads[name])


@pytest.mark.parametrize("cls", CELLS)
def test_step_backward_adds_to_the_gradients(float64, cls):
    cell = make(cls)
    _, _, cache = cell.step(dev(data((N, D), 3)), None, train=True)
    dh = dev(data((N, H), 4))
    cell.zero_grads()
    cell.step_backward(cache, dh)
    once = {name: host(g).copy() for name, g in cell.grads.items()}
    cell.step_backward(cache, dh)  # a second step without zero_grads: the sum of both
    for name, g in cell.grads.items():
        assert_close(g, 2 * once[name])
    cell.zero_grads()
    assert all(not host(g).any() for g in cell.grads.values())
    cell.forward(dev(data((N, T, D), 5)), train=True)
    cell.backward(dev(data((N, T, H), 6)))
    again = {name: host(g).copy() for name, g in cell.grads.items()}
    cell.backward(dev(data((N, T, H), 6)))  # backward (the Layer contract) overwrites, it does not add
    for name, g in cell.grads.items():
        assert_close(g, again[name])


# --- errors, evaluation steps, saving -------------------------------------------------------
@pytest.mark.parametrize("cls", CELLS)
def test_step_errors_name_the_cell_and_shapes(cls):
    cell = cls(D, H, rng=np.random.default_rng(0))
    x_t = dev(np.zeros((N, D), dtype=np.float32))
    for bad in [(N, D + 1), (N, 1, D), (D,)]:
        with pytest.raises(ShapeError, match=rf"{cls.__name__}.*x_t " + re.escape(f"of shape (N, {D}), got {bad}")):
            cell.step(dev(np.zeros(bad, dtype=np.float32)))
    wrong = tuple(dev(np.zeros((N, H + 1), dtype=np.float32)) for _ in cls.state_names)
    with pytest.raises(ShapeError, match=rf"{cls.__name__}.*state.*\({N}, {H}\).*\({N}, {H + 1}\)"):
        cell.step(x_t, wrong)
    h, state, cache = cell.step(x_t, train=True)
    with pytest.raises(ShapeError, match=rf"{cls.__name__}.*dh.*\({N}, {H}\)"):
        cell.step_backward(cache, dev(np.zeros((N + 1, H), dtype=np.float32)))
    with pytest.raises(ShapeError, match=rf"{cls.__name__}.*dstate"):
        cell.step_backward(cache, None, wrong)
    h, state, cache = cell.step(x_t, state)  # an evaluation step returns no cache
    assert cache is None
    with pytest.raises(RuntimeError, match=rf"{cls.__name__}.*train=True"):
        cell.step_backward(cache, h)


@pytest.mark.parametrize("cls", CELLS)
def test_step_state_defaults_to_zeros_and_h_is_the_first_state_part(float64, cls):
    cell = make(cls)
    x_t = dev(data((N, D), 3))
    h, state, _ = cell.step(x_t)
    zeros = tuple(dev(np.zeros((N, H))) for _ in cls.state_names)
    np.testing.assert_array_equal(host(cell.step(x_t, zeros)[0]), host(h))
    assert len(state) == len(cls.state_names) and state[0] is h
    if cls is RNNCell:
        np.testing.assert_array_equal(host(cell.step(x_t, zeros[0])[0]), host(h))  # h alone for (h,)


@pytest.mark.parametrize("cls", CELLS)
def test_config_round_trip_and_saving(cls, tmp_path):
    cell = cls(D, H, rng=np.random.default_rng(0))
    again = layer_from_config(layer_to_config(cell))
    assert type(again) is cls and again.to_config() == cell.to_config()
    assert cell.params["W"].shape == (cls.gates * H, H) and cell.params["U"].shape == (cls.gates * H, D)
    save_model(tmp_path / "cell", cell)
    loaded, _ = load_model(tmp_path / "cell")
    assert type(loaded) is cls
    for name, p in cell.params.items():
        np.testing.assert_array_equal(host(loaded.params[name]), host(p))


def test_lstm_cell_forget_bias_and_gate_order():
    cell = LSTMCell(D, H, rng=np.random.default_rng(0), forget_bias=2.0)
    b = host(cell.params["b"])
    np.testing.assert_array_equal(b[:H], 2.0)  # blocks f, i, o, g: b_f first
    np.testing.assert_array_equal(b[H:], 0.0)
    assert cell.to_config()["forget_bias"] == 2.0

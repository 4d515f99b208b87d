"""RNN and LSTM against torch.nn.RNN / torch.nn.LSTM (float64, copied weights, batch_first): outputs,
final states and autograd's gradients of the inputs, the initial state and every weight; the explicit
state API (a gradient into the last state); and RNNCell / LSTMCell, stepped T times through the step
API, against torch.nn.RNNCell / torch.nn.LSTMCell. PyTorch is the test-only referee; without it this
module is skipped.

Weight copies: torch's weight_ih(_l{k}) is our U, weight_hh(_l{k}) our W; torch adds two biases
b_ih + b_hh, so b_ih = our b and b_hh = 0. torch orders the LSTM blocks i, f, g, o, ours f, i, o, g
(the lecture's order), so the blocks are permuted.
"""

import numpy as np
import pytest
from helpers import dev, host

torch = pytest.importorskip("torch")

from torch_helpers import close, data  # noqa: E402

from tiefnet.nn.cells import LSTMCell, RNNCell  # noqa: E402
from tiefnet.nn.recurrent import LSTM, RNN  # noqa: E402

N, T, D = 3, 5, 4
TORCH_BLOCKS = [1, 0, 3, 2]  # torch block k (i, f, g, o) = our block TORCH_BLOCKS[k] (f, i, o, g)


def to_torch_order(a, H):
    """Our fused (4H, ...) array with blocks f, i, o, g -> torch's blocks i, f, g, o."""
    return np.concatenate([a[k * H:(k + 1) * H] for k in TORCH_BLOCKS]) if a.shape[0] == 4 * H else a


def from_torch_order(a, H):
    """Inverse of to_torch_order (the permutation is its own inverse); takes a device array."""
    return to_torch_order(host(a), H)


def build(cls, H, layers, seed):
    """Our stack of ``layers`` layers and the torch module with the same weights."""
    ours, D_in = [], D
    for k in range(layers):
        layer = cls(D_in, H, rng=np.random.default_rng(seed + k))
        layer.params["b"][...] = dev(0.5 * data(layer.params["b"].shape, seed + 10 + k))
        ours.append(layer)
        D_in = H
    torch_cls = torch.nn.LSTM if cls is LSTM else torch.nn.RNN
    kwargs = {} if cls is LSTM else {"nonlinearity": "tanh"}
    theirs = torch_cls(D, H, num_layers=layers, batch_first=True, **kwargs).double()
    for k, layer in enumerate(ours):
        copy_weights(layer, theirs, H, f"_l{k}")
    return ours, theirs


def copy_weights(ours, theirs, H, suffix=""):
    """Our U, W, b into torch's weight_ih, weight_hh, bias_ih (+ suffix), bias_hh = 0, blocks permuted."""
    p = {name: host(v) for name, v in ours.params.items()}
    with torch.no_grad():
        getattr(theirs, "weight_ih" + suffix).copy_(torch.tensor(to_torch_order(p["U"], H)))
        getattr(theirs, "weight_hh" + suffix).copy_(torch.tensor(to_torch_order(p["W"], H)))
        getattr(theirs, "bias_ih" + suffix).copy_(torch.tensor(to_torch_order(p["b"], H)))
        getattr(theirs, "bias_hh" + suffix).zero_()


@pytest.mark.parametrize("cls", [RNN, LSTM])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("with_state", [False, True])
def test_matches_torch(float64, cls, layers, with_state):
    H = 6
    ours, theirs = build(cls, H, layers, seed=layers)
    n_states = 2 if cls is LSTM else 1
    x = data((N, T, D), 1)
    states = [data((layers, N, H), 2 + s) for s in range(n_states)] if with_state else None

    xt = torch.tensor(x, requires_grad=True)
    statet = [torch.tensor(s, requires_grad=True) for s in states] if with_state else None
    if statet is None:
        out_t, final_t = theirs(xt)
    else:
        out_t, final_t = theirs(xt, tuple(statet) if cls is LSTM else statet[0])
    upstream = data(tuple(out_t.shape), 4)
    out_t.backward(torch.tensor(upstream))

    a, lasts = dev(x), []
    for k, layer in enumerate(ours):
        state = tuple(dev(s[k]) for s in states) if with_state else None
        a, last = layer.forward_state(a, state, train=True)
        lasts.append(last)
    close(a, out_t)
    final_t = final_t if cls is LSTM else (final_t,)
    for s in range(n_states):
        for k, last in enumerate(lasts):
            close(last[s], final_t[s][k])

    grad = dev(upstream)
    for layer in reversed(ours):
        grad = layer.backward(grad)
    close(grad, xt.grad)
    for k, layer in enumerate(ours):
        close(from_torch_order(layer.grads["U"], H), getattr(theirs, f"weight_ih_l{k}").grad)
        close(from_torch_order(layer.grads["W"], H), getattr(theirs, f"weight_hh_l{k}").grad)
        close(from_torch_order(layer.grads["b"], H), getattr(theirs, f"bias_ih_l{k}").grad)
        close(from_torch_order(layer.grads["b"], H), getattr(theirs, f"bias_hh_l{k}").grad)
        if with_state:
            for s in range(n_states):
                close(layer.dstate[s], statet[s].grad[k])


@pytest.mark.parametrize("cls", [RNN, LSTM])
def test_last_output_matches_torch(float64, cls):
    """return_sequences=False: h^T only, the cost fed by the last step (torch: out[:, -1])."""
    H = 5
    (layer,), theirs = build(cls, H, 1, seed=7)
    layer.return_sequences = False
    x = data((N, T, D), 8)
    xt = torch.tensor(x, requires_grad=True)
    last_t = theirs(xt)[0][:, -1]
    upstream = data((N, H), 9)
    last_t.backward(torch.tensor(upstream))
    close(layer.forward(dev(x), train=True), last_t)
    close(layer.backward(dev(upstream)), xt.grad)
    close(from_torch_order(layer.grads["W"], H), theirs.weight_hh_l0.grad)
    close(from_torch_order(layer.grads["U"], H), theirs.weight_ih_l0.grad)


@pytest.mark.parametrize("cls", [RNN, LSTM])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_explicit_state_matches_torch(float64, cls, return_sequences):
    """forward_state / backward_state: the last state is torch's (h_n, c_n), and a gradient dlast
    into it (C = <grad, out> + <dlast, last state>) gives autograd's dC/dx, dC/d(h^0, c^0), dC/dW."""
    H = 4
    (layer,), theirs = build(cls, H, 1, seed=11)
    layer.return_sequences = return_sequences
    n_states = len(cls.state_names)
    x, states = data((N, T, D), 12), [data((1, N, H), 13 + s) for s in range(n_states)]
    dlast = [data((N, H), 15 + s) for s in range(n_states)]
    xt, statet = torch.tensor(x, requires_grad=True), [torch.tensor(s, requires_grad=True) for s in states]
    out_t, final_t = theirs(xt, tuple(statet) if cls is LSTM else statet[0])
    out_t = out_t if return_sequences else out_t[:, -1]
    final_t = final_t if cls is LSTM else (final_t,)
    upstream = data(tuple(out_t.shape), 17)
    cost = (out_t * torch.tensor(upstream)).sum() + sum((f[0] * torch.tensor(d)).sum() for f, d in zip(final_t, dlast))
    cost.backward()

    out, last = layer.forward_state(dev(x), tuple(dev(s[0]) for s in states), train=True)
    close(out, out_t)
    for s in range(n_states):
        close(last[s], final_t[s][0])
    dx, dstate0 = layer.backward_state(dev(upstream), tuple(dev(d) for d in dlast))
    close(dx, xt.grad)
    for s in range(n_states):
        close(dstate0[s], statet[s].grad[0])
    close(from_torch_order(layer.grads["W"], H), theirs.weight_hh_l0.grad)
    close(from_torch_order(layer.grads["U"], H), theirs.weight_ih_l0.grad)
    close(from_torch_order(layer.grads["b"], H), theirs.bias_ih_l0.grad)


# --- cells, step by step ----------------------------------------------------------------------
def build_cell(cls, H, seed):
    """Our cell and the torch cell with the same weights."""
    ours = cls(D, H, rng=np.random.default_rng(seed))
    ours.params["b"][...] = dev(0.5 * data(ours.params["b"].shape, seed + 1))
    theirs = (torch.nn.LSTMCell(D, H) if cls is LSTMCell else torch.nn.RNNCell(D, H, nonlinearity="tanh")).double()
    copy_weights(ours, theirs, H)
    return ours, theirs


@pytest.mark.parametrize("cls", [RNNCell, LSTMCell])
def test_cell_steps_match_torch(float64, cls):
    H = 6
    ours, theirs = build_cell(cls, H, 3)
    n_states = len(cls.state_names)
    x, grad = data((N, T, D), 4), data((N, T, H), 5)
    state0, dlast = [data((N, H), 6 + s) for s in range(n_states)], [data((N, H), 8 + s) for s in range(n_states)]

    xt, statet = torch.tensor(x, requires_grad=True), [torch.tensor(s, requires_grad=True) for s in state0]
    state_t, steps_t = tuple(statet) if cls is LSTMCell else statet[0], []
    for t in range(T):
        state_t = theirs(xt[:, t], state_t)
        steps_t.append(state_t if cls is LSTMCell else (state_t,))
    cost = sum((s[0] * torch.tensor(grad[:, t])).sum() for t, s in enumerate(steps_t))
    cost = cost + sum((s * torch.tensor(d)).sum() for s, d in zip(steps_t[-1], dlast))
    cost.backward()

    state, caches = tuple(dev(s) for s in state0), []
    for t in range(T):
        _, state, cache = ours.step(dev(x[:, t]), state, train=True)
        caches.append(cache)
        for s in range(n_states):
            close(state[s], steps_t[t][s])
    ours.zero_grads()
    dstate, dx = tuple(dev(d) for d in dlast), [None] * T
    for t in range(T - 1, -1, -1):
        dx[t], dstate = ours.step_backward(caches[t], dev(grad[:, t]), dstate)
    close(np.stack([host(d) for d in dx], axis=1), xt.grad)
    for s in range(n_states):
        close(dstate[s], statet[s].grad)
    close(from_torch_order(ours.grads["W"], H), theirs.weight_hh.grad)
    close(from_torch_order(ours.grads["U"], H), theirs.weight_ih.grad)
    close(from_torch_order(ours.grads["b"], H), theirs.bias_ih.grad)
    close(from_torch_order(ours.grads["b"], H), theirs.bias_hh.grad)

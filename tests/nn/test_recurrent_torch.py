"""RNN and LSTM against torch.nn.RNN / torch.nn.LSTM (float64, copied weights, batch_first): outputs,
final states and autograd's gradients of the inputs, the initial state and every weight.
PyTorch is the test-only referee; without it this module is skipped.

Weight copies: torch's weight_ih_l{k} is our U, weight_hh_l{k} our W; torch adds two biases
b_ih + b_hh, so b_ih = our b and b_hh = 0. torch orders the LSTM blocks i, f, g, o, ours f, i, o, g
(the lecture's order), so the blocks are permuted.
"""

import numpy as np
import pytest
from helpers import dev, host

torch = pytest.importorskip("torch")

from torch_helpers import close, data  # noqa: E402

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
    with torch.no_grad():
        for k, layer in enumerate(ours):
            p = {name: host(v) for name, v in layer.params.items()}
            getattr(theirs, f"weight_ih_l{k}").copy_(torch.tensor(to_torch_order(p["U"], H)))
            getattr(theirs, f"weight_hh_l{k}").copy_(torch.tensor(to_torch_order(p["W"], H)))
            getattr(theirs, f"bias_ih_l{k}").copy_(torch.tensor(to_torch_order(p["b"], H)))
            getattr(theirs, f"bias_hh_l{k}").zero_()
    return ours, theirs


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

    a = dev(x)
    for k, layer in enumerate(ours):
        state = tuple(dev(s[k]) for s in states) if with_state else None
        a = layer.forward(a, train=True, state=state)
    close(a, out_t)
    final_t = final_t if cls is LSTM else (final_t,)
    for s in range(n_states):
        for k, layer in enumerate(ours):
            close(layer.state[s], final_t[s][k])

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

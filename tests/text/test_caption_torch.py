"""ShowAndTell and ShowAttendTell (4.4.1-4.4.2) against a PyTorch twin of the whole computation
(float64, the model's own weights): the encoder (3x3 convolutions, padding 1, + ReLU + 2x2 max-pooling),
the init Dense giving (h^0, c^0), the embedding, the LSTM (torch.nn.LSTMCell with the blocks
reordered), for ShowAttendTell the regions with their two place features, soft attention and
x^t = [E w_{t-1}; z^t], the output Dense over h^t (or [h^t; z^t]), the softmax, and the cost

    C = -1/N sum_n sum_t m_nt ln p^t_{n, y_nt}  (+ lambda/N sum_n sum_j (1 - sum_t m_nt alpha_ntj)^2)

whose autograd gradients are compared with model.backward's, for every parameter. Also the
generation API: start + step over the teacher-forced words gives the forward's p (and alpha).
PyTorch is the test-only referee; without it this module is skipped.
"""

import numpy as np
import pytest
from helpers import dev, host

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch_helpers import close, data, leaf  # noqa: E402

from tiefnet import backend  # noqa: E402
from tiefnet.nn import Conv2d, LogLikelihood  # noqa: E402
from tiefnet.text.caption import ShowAttendTell, build_model  # noqa: E402

CANVAS, CHANNELS, H, E, V, A = 16, (3, 4), 5, 4, 7, 6  # a 16 x 16 image -> a 4 x 4 map of 4 features
N, T = 3, 4
LENGTHS = [4, 2, 3]  # words per caption; the rest is padding (mask 0)
RTOL = 1e-10
TORCH_BLOCKS = [1, 0, 3, 2]  # torch block k (i, f, g, o) = our block TORCH_BLOCKS[k] (f, i, o, g)


def to_torch_order(a):
    """Our (4H, ...) LSTM array, blocks f, i, o, g -> torch's i, f, g, o (its own inverse)."""
    a = host(a)
    return np.concatenate([a[k * H:(k + 1) * H] for k in TORCH_BLOCKS])


def make(attention, seed=0):
    """The tiefnet model in float64, every bias random (build_model zeroes init's and output's)."""
    with backend.default_dtype(np.float64):
        model = build_model(attention, V, CANVAS, CHANNELS, H, E, A, np.random.default_rng(seed))
    for k, layer in enumerate(model.param_layers()):
        if "b" in layer.params:  # all but the embedding
            layer.params["b"][...] = dev(0.3 * data(layer.params["b"].shape, 100 + k))
    assert all(p.dtype == np.float64 for p in model.params.values())
    return model


def batch(seed=1):
    images = data((N, 3, CANVAS, CANVAS), seed)  # (N, 3, S, S)
    words = np.random.default_rng(seed + 1).integers(0, V, (N, T))  # START w_1 ... (N, T)
    targets = np.random.default_rng(seed + 2).integers(0, V, (N, T))  # w_1 ... END (N, T)
    mask = np.arange(T)[None, :] < np.array(LENGTHS)[:, None]  # (N, T) bool
    return images, words, targets, mask


class Twin:
    """The captioning computation in torch ops, from leaf copies of the model's weights."""

    def __init__(self, model):
        self.model = model
        self.p = {key: leaf(v) for key, v in model.params.items()}  # tiefnet's layout, keyed like model.params
        lstm = model.cell if isinstance(model, ShowAttendTell) else model.lstm
        self.lstm_key = "4" if isinstance(model, ShowAttendTell) else "3"
        self.cell = torch.nn.LSTMCell(lstm.D, H).double()  # weight_ih = our U, weight_hh = our W, reordered
        with torch.no_grad():
            self.cell.weight_ih.copy_(torch.tensor(to_torch_order(lstm.params["U"])))
            self.cell.weight_hh.copy_(torch.tensor(to_torch_order(lstm.params["W"])))
            self.cell.bias_ih.copy_(torch.tensor(to_torch_order(lstm.params["b"])))
            self.cell.bias_hh.zero_()

    def encoder(self, x):
        """(N, 3, S, S) -> (N, C, S / 2^L, S / 2^L): conv + ReLU + max-pool per layer."""
        for k, layer in enumerate(self.model.encoder.children()):
            if isinstance(layer, Conv2d):
                x = F.max_pool2d(F.relu(F.conv2d(x, self.p[f"0.{k}.W"], self.p[f"0.{k}.b"], padding=1)), 2)
        return x

    def initial_state(self, a):
        hc = a @ self.p["1.W"].T + self.p["1.b"]  # (N, 2H)
        return hc[:, :H], hc[:, H:]

    @staticmethod
    def regions(a):
        """(N, C, H', W') -> (N, R, C + 2): the features of each position, then its row and column in [-1, 1]."""
        n, c, hf, wf = a.shape
        rows, cols = torch.meshgrid(torch.linspace(-1, 1, hf, dtype=a.dtype), torch.linspace(-1, 1, wf, dtype=a.dtype),
                                    indexing="ij")
        places = torch.stack([rows.reshape(-1), cols.reshape(-1)], dim=1).expand(n, hf * wf, 2)  # (N, R, 2)
        return torch.cat([a.reshape(n, c, -1).transpose(1, 2), places], dim=2)

    def attend(self, regions, proj, h):
        """z (N, C), alpha (N, R) from h^{t-1}."""
        u = torch.tanh(proj + (h @ self.p["3.Wh"].T)[:, None, :])  # (N, R, A)
        alpha = torch.softmax(u @ self.p["3.v"], dim=1)  # (N, R)
        return (alpha[:, :, None] * regions).sum(dim=1), alpha

    def forward(self, images, words):
        """logits (N, T, V) and, for the attention model, alpha (N, T, R)."""
        a = self.encoder(torch.tensor(images))
        x = self.p["2.W"][torch.tensor(words)]  # the embedding, (N, T, E)
        if not isinstance(self.model, ShowAttendTell):
            h, c = self.initial_state(a.reshape(N, -1))
            hs = []
            for t in range(T):
                h, c = self.cell(x[:, t], (h, c))
                hs.append(h)
            return torch.stack(hs, dim=1) @ self.p["4.W"].T + self.p["4.b"], None
        regions = self.regions(a)  # (N, R, C + 2)
        h, c = self.initial_state(regions.mean(dim=1))
        proj = regions @ self.p["3.Wa"].T + self.p["3.b"]  # (N, R, A)
        hz, alphas = [], []
        for t in range(T):
            z, alpha = self.attend(regions, proj, h)  # from h^{t-1}
            h, c = self.cell(torch.cat([x[:, t], z], dim=1), (h, c))
            hz.append(torch.cat([h, z], dim=1))
            alphas.append(alpha)
        return torch.stack(hz, dim=1) @ self.p["5.W"].T + self.p["5.b"], torch.stack(alphas, dim=1)

    def grad(self, key):
        """autograd's dC/d(model.params[key]), in tiefnet's layout."""
        lstm = {"W": self.cell.weight_hh, "U": self.cell.weight_ih, "b": self.cell.bias_ih}
        prefix, name = key.rsplit(".", 1)
        if prefix == self.lstm_key:
            return to_torch_order(lstm[name].grad.numpy())
        return self.p[key].grad


def cost(logits, alpha, targets, mask, penalty):
    m = torch.tensor(mask, dtype=torch.float64)  # (N, T)
    log_p = torch.log_softmax(logits, dim=2).gather(2, torch.tensor(targets)[:, :, None])[:, :, 0]  # (N, T)
    C = -(m * log_p).sum() / N
    if penalty:
        gap = 1 - (alpha * m[:, :, None]).sum(dim=1)  # (N, R)
        C = C + penalty / N * (gap * gap).sum()
    return C


CASES = [(False, 0.0), (True, 0.0), (True, 0.5)]


@pytest.mark.parametrize("attention, penalty", CASES, ids=["show-and-tell", "attend", "attend-penalty"])
def test_forward_and_every_gradient_match_torch(attention, penalty):
    model, images, words, targets, mask = make(attention), *batch()
    twin = Twin(model)
    logits, alpha_t = twin.forward(images, words)
    C_t = cost(logits, alpha_t, targets, mask, penalty)
    C_t.backward()

    with backend.default_dtype(np.float64):
        p = model.forward((dev(images), dev(words)), train=True)  # (N, T, V)
        y = dev(np.eye(V)[targets])  # one-hot (N, T, V)
        loss = LogLikelihood()
        delta = loss.delta(p, y, dev(mask))  # m (p - y) / N
        if attention:
            model.backward(delta, penalty=penalty, mask=dev(mask))
        else:
            model.backward(delta)  # ShowAndTell.backward takes no mask (no penalty either)
    close(p, torch.softmax(logits, dim=2), rtol=RTOL)
    ours_C = loss.cost(p, y, dev(mask)) + (model.penalty_cost(penalty, dev(mask)) if attention else 0.0)
    assert abs(ours_C - C_t.item()) < 1e-10 * abs(C_t.item())
    if attention:
        close(model.alpha, alpha_t, rtol=RTOL)  # (N, T, R)
    grads = model.grads
    assert sorted(grads) == sorted(model.params)
    for key in model.params:
        close(grads[key], twin.grad(key), rtol=RTOL)
    close(twin.cell.bias_hh.grad, twin.cell.bias_ih.grad, rtol=RTOL)  # torch's second bias: the same gradient


def test_penalty_changes_only_the_attention_path():
    """The penalty's gradient reaches the parameters that alpha depends on (not the output layer)."""
    grads = {}
    for penalty in (0.0, 0.5):
        model, images, words, targets, mask = make(True), *batch()
        with backend.default_dtype(np.float64):
            p = model.forward((dev(images), dev(words)), train=True)
            delta = LogLikelihood().delta(p, dev(np.eye(V)[targets]), dev(mask))
            model.backward(delta, penalty=penalty, mask=dev(mask))
        grads[penalty] = {key: host(g).copy() for key, g in model.grads.items()}
    for key in ("5.W", "5.b"):
        np.testing.assert_array_equal(grads[0.5][key], grads[0.0][key])
    for key in ("3.Wa", "3.Wh", "3.v", "0.0.W"):
        assert not np.allclose(grads[0.5][key], grads[0.0][key]), key


@pytest.mark.parametrize("attention", [False, True], ids=["show-and-tell", "attend"])
def test_generation_steps_match_the_teacher_forced_forward(attention):
    """start + step over words[:, t] (each step's word given, as teacher forcing does) gives
    the forward's p^t and alpha^t at every t, and the torch twin's."""
    model, images, words, _, _ = make(attention, seed=3), *batch(seed=4)
    logits, alpha_t = Twin(model).forward(images, words)
    with backend.default_dtype(np.float64):
        p = model.forward((dev(images), dev(words)), train=True)  # (N, T, V); alpha is kept by training forwards only
        alpha = model.alpha if attention else None
        state = model.start(dev(images))
        for t in range(T):
            p_t, state, alpha_step = model.step(dev(words[:, t]), state)  # (N, V), state, (N, R) or None
            close(p_t, p[:, t], rtol=1e-12)
            close(p_t, torch.softmax(logits[:, t], dim=1), rtol=RTOL)
            if attention:
                close(alpha_step, alpha[:, t], rtol=1e-12)
                close(alpha_step, alpha_t[:, t], rtol=RTOL)
            else:
                assert alpha_step is None

"""Conv2d, MaxPool2d, L2Pool2d and a small CNN against PyTorch (float64, copied weights): forward
values and autograd's gradients. PyTorch is the test-only referee; without it this module is skipped.

Both libraries compute the cross-correlation of the lecture's (3.3), with W as (F, C, Q, R), so the
weights are copied without flips or transposes. torch floors a stride that does not fit; ours
refuses it (ShapeError), so only geometries that fit are compared.
"""

import numpy as np
import pytest
from helpers import dev, every_variant, host  # noqa: F401  (every_variant: each test runs with every variant of tiefnet.plans forced)

torch = pytest.importorskip("torch")
F = torch.nn.functional

from torch_helpers import RTOL, close, data, leaf  # noqa: E402

from tiefnet.nn import (  # noqa: E402  (after the importorskip)
    Conv2d, Dense, Flatten, L2Pool2d, LogLikelihood, MaxPool2d, ReLU, Reshape, Sequential, Softmax, Tanh,
)


# (N, C, F, H, W, kernel, P, S)
CONV_GEOMETRIES = [
    (2, 1, 3, 8, 8, 3, 1, 1),
    (3, 2, 4, 7, 9, 3, 0, 2),
    (2, 3, 2, 11, 7, (3, 2), 2, 3),
    (1, 2, 5, 7, 6, (3, 2), 1, 2),
    (2, 3, 2, 9, 9, 5, 2, 1),
    (4, 1, 2, 5, 5, 1, 0, 1),
    (2, 2, 3, 5, 5, 3, 2, 3),
]
# (N, C, H, W, k, s)
POOL_GEOMETRIES = [(2, 3, 8, 8, 2, 2), (2, 2, 7, 9, 2, 2), (1, 3, 11, 5, 3, 3), (2, 2, 7, 7, 3, 1),
                   (3, 1, 9, 8, 3, 2), (2, 2, 5, 8, 2, 3)]




@pytest.mark.parametrize("N, C, F_, H, W, kernel, P, S", CONV_GEOMETRIES)
def test_conv2d_matches_torch(float64, N, C, F_, H, W, kernel, P, S):
    layer = Conv2d(C, F_, kernel, padding=P, stride=S, rng=np.random.default_rng(C * 10 + F_))
    layer.params["b"][...] = dev(data(F_, 1))  # non-zero biases
    x = data((N, C, H, W), 2)
    Wt, bt, xt = leaf(layer.params["W"]), leaf(layer.params["b"]), leaf(x)
    zt = F.conv2d(xt, Wt, bt, stride=S, padding=P)
    upstream = data(tuple(zt.shape), 3)
    zt.backward(torch.tensor(upstream))
    close(layer.forward(dev(x), train=True), zt)
    close(layer.backward(dev(upstream)), xt.grad)
    close(layer.grads["W"], Wt.grad)
    close(layer.grads["b"], bt.grad)


@pytest.mark.parametrize("N, C, H, W, k, s", POOL_GEOMETRIES)
def test_max_pool_matches_torch(float64, N, C, H, W, k, s):
    x = data((N, C, H, W), 4)  # continuous random values: no ties
    xt = leaf(x)
    at = F.max_pool2d(xt, k, stride=s)  # floor mode, like ours
    upstream = data(tuple(at.shape), 5)
    at.backward(torch.tensor(upstream))
    layer = MaxPool2d(k, s)
    close(layer.forward(dev(x), train=True), at)
    close(layer.backward(dev(upstream)), xt.grad)


@pytest.mark.parametrize("N, C, H, W, k, s", POOL_GEOMETRIES)
def test_l2_pool_matches_torch_lp_pool(float64, N, C, H, W, k, s):
    x = data((N, C, H, W), 6)
    xt = leaf(x)
    at = F.lp_pool2d(xt, norm_type=2, kernel_size=k, stride=s)
    upstream = data(tuple(at.shape), 7)
    at.backward(torch.tensor(upstream))
    layer = L2Pool2d(k, s)
    close(layer.forward(dev(x), train=True), at)
    close(layer.backward(dev(upstream)), xt.grad)


def test_flatten_matches_torch_flatten():
    x = data((3, 2, 4, 5), 8)
    np.testing.assert_array_equal(host(Flatten().forward(dev(x))), torch.flatten(torch.tensor(x), 1).numpy())


@pytest.mark.parametrize("pool", [MaxPool2d, L2Pool2d])
def test_small_cnn_matches_torch(float64, pool):
    """Reshape -> Conv2d -> ReLU -> pool -> Conv2d (stride 2) -> Tanh -> Flatten -> Dense -> Softmax,
    and the log-likelihood cost through backward_from: the whole chain of (BP1)-(BP4)-conv."""
    rng = np.random.default_rng(0)
    model = Sequential(Reshape((2, 8, 8)), Conv2d(2, 4, 3, padding=1, init="he", rng=rng), ReLU(), pool(2),
                       Conv2d(4, 3, (2, 2), stride=2, rng=rng), Tanh(), Flatten(), Dense(12, 5, rng=rng), Softmax())
    model.layers[1].params["b"][...] = dev(data(4, 9))
    model.layers[4].params["b"][...] = dev(data(3, 10))
    x = data((6, 128), 11)
    labels = np.random.default_rng(12).integers(0, 5, 6)
    y = np.eye(5)[labels]
    params = {k: leaf(v) for k, v in model.params.items()}
    xt = leaf(x)
    h = F.relu(F.conv2d(xt.reshape(6, 2, 8, 8), params["1.W"], params["1.b"], padding=1))
    h = F.max_pool2d(h, 2) if pool is MaxPool2d else F.lp_pool2d(h, 2, 2)
    h = torch.tanh(F.conv2d(h, params["4.W"], params["4.b"], stride=2))
    zt = F.linear(torch.flatten(h, 1), params["7.W"], params["7.b"])
    cost = F.nll_loss(F.log_softmax(zt, dim=1), torch.tensor(labels))  # mean over the batch
    cost.backward()
    loss = LogLikelihood()
    a = model.forward(dev(x), train=True)
    assert loss.cost(a, dev(y)) == pytest.approx(cost.item(), rel=RTOL)
    close(model.backward_from(loss, dev(y), need_input_grad=True), xt.grad)
    for name, g in model.grads.items():
        close(g, params[name].grad)

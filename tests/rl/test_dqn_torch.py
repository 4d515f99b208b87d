"""DQN's gradients against PyTorch (issue 5, acceptance 5): the clipped TD error on gathered Q-values
is torch's smooth_l1_loss / huber_loss with delta 1; a whole training step of an MLP matches autograd
on the same weights; RMSProp matches torch.optim.RMSprop (eps outside the square root in both)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from helpers import dev, host  # noqa: E402
from torch_helpers import close, leaf  # noqa: E402

from tiefnet.nn.losses import TDError  # noqa: E402
from tiefnet.optim import SGD, RMSProp  # noqa: E402
from tiefnet.rl.dqn import clone, mlp_q_network, td_targets, train_step  # noqa: E402
from tiefnet.rl.replay import Transitions  # noqa: E402


def transitions(B, n_obs, A, seed):
    rng = np.random.default_rng(seed)
    return Transitions(rng.standard_normal((B, n_obs)).astype(np.float32), rng.integers(A, size=B),
                       (3 * rng.standard_normal(B)).astype(np.float32), rng.standard_normal((B, n_obs)).astype(np.float32),
                       (rng.random(B) < 0.3).astype(np.float32))


def torch_q(params, x):
    """The MLP Q-network of rl.dqn in torch: Dense -> ReLU ... -> Dense, W stored (out, in) in both."""
    n = len(params) // 2
    for i in range(n):
        x = F.linear(x, params[f"{2 * i}.W"], params[f"{2 * i}.b"])
        if i < n - 1:
            x = torch.relu(x)
    return x


@pytest.mark.parametrize("B, A", [(1, 2), (8, 3), (32, 6)])
@pytest.mark.parametrize("clipped", [True, False])
def test_td_error_matches_torch_on_gathered_q(float64, B, A, clipped):
    rng = np.random.default_rng(B + A)
    Q, actions, y = 2 * rng.standard_normal((B, A)), rng.integers(A, size=B), 2 * rng.standard_normal(B)
    Qt = leaf(Q)
    gathered = Qt.gather(1, torch.tensor(actions)[:, None]).squeeze(1)
    yt = torch.tensor(y)
    cost_t = F.huber_loss(gathered, yt, delta=1.0) if clipped else 0.5 * F.mse_loss(gathered, yt)
    cost_t.backward()
    cost, delta = TDError(1.0 if clipped else None)(dev(Q), dev(actions), dev(y))
    assert cost == pytest.approx(cost_t.item(), rel=1e-12)
    close(delta, Qt.grad, rtol=1e-12)
    if clipped:
        assert F.smooth_l1_loss(gathered, yt, beta=1.0).item() == pytest.approx(cost, rel=1e-12)


@pytest.mark.parametrize("hidden", [[8], [16, 12]])
def test_whole_train_step_matches_torch_autograd(float64, hidden):
    """Same weights: torch computes y with theta^- under no_grad, the Huber loss on the gathered
    Q(phi_j, a_j; theta), backward; tiefnet's train_step with SGD(eta) moves theta by eta * that gradient."""
    rng = np.random.default_rng(len(hidden))
    q_net = mlp_q_network(5, 4, hidden, rng)
    for layer in q_net.param_layers():
        layer.params["b"][...] = dev(0.3 * rng.standard_normal(layer.params["b"].shape))
    target_net = clone(q_net)
    for p in target_net.params.values():
        p[...] += dev(0.2 * rng.standard_normal(p.shape))
    b, gamma, eta = transitions(16, 5, 4, seed=9), 0.97, 0.1
    theta = {k: leaf(v) for k, v in q_net.params.items()}
    theta_minus = {k: torch.tensor(host(v)) for k, v in target_net.params.items()}
    with torch.no_grad():
        y = (torch.tensor(b.reward, dtype=torch.float64) + gamma * (1 - torch.tensor(b.terminated, dtype=torch.float64))
             * torch_q(theta_minus, torch.tensor(b.next_obs, dtype=torch.float64)).max(dim=1).values)
    Q = torch_q(theta, torch.tensor(b.obs, dtype=torch.float64)).gather(1, torch.tensor(b.action)[:, None]).squeeze(1)
    loss = F.smooth_l1_loss(Q, y, beta=1.0)
    loss.backward()
    close(td_targets(target_net, b, gamma), y)
    before = {k: host(v).copy() for k, v in q_net.params.items()}
    cost = train_step(q_net, target_net, TDError(1.0), SGD(eta).bind(q_net, 1), b, gamma)
    assert cost == pytest.approx(loss.item(), rel=1e-10)
    for name, p in q_net.params.items():
        close((before[name] - host(p)) / eta, theta[name].grad, rtol=1e-9)


@pytest.mark.parametrize("alpha, eps", [(0.99, 1e-8), (0.95, 0.01)])
def test_rmsprop_matches_torch(float64, alpha, eps):
    """Five steps on a fixed quadratic: v = alpha v + (1 - alpha) g^2, w -= eta g / (sqrt(v) + eps)."""
    rng = np.random.default_rng(0)
    net = mlp_q_network(3, 2, [4], rng)
    x, target = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    theta = {k: leaf(v) for k, v in net.params.items()}
    opt_t = torch.optim.RMSprop(list(theta.values()), lr=0.01, alpha=alpha, eps=eps)
    opt = RMSProp(0.01, alpha=alpha, eps=eps).bind(net, 1)
    for _ in range(5):
        opt_t.zero_grad()
        (0.5 * ((torch_q(theta, torch.tensor(x)) - torch.tensor(target)) ** 2).sum() / 6).backward()
        opt_t.step()
        a = net.forward(dev(x), train=True)
        net.backward((a - dev(target)) / 6, need_input_grad=False)
        opt.step()
    for name, p in net.params.items():
        close(p, theta[name], rtol=1e-10)

"""f_theta (5.5): the residual tower with its policy and value heads, checked whole.

In float64 with BatchNorm in training mode (the mini-batch statistics): the lecture's cost
L = (z - nu)^2 - pi . log p by central differences w.r.t. the input planes and a sample of every
parameter (tower, BatchNorm gamma/beta, both heads), and a PyTorch twin of the same network
(Conv2d / BatchNorm2d / ReLU / g(x) + x / heads, weights copied) for the forward outputs and all
parameter gradients. Then masked_softmax and the Evaluator (priors over the legal moves only,
one batch = one position at a time).
"""

import numpy as np
import pytest
from helpers import dev, host

from tiefnet.errors import ConfigError
from tiefnet.gradcheck import relative_error
from tiefnet.nn import (BatchNorm2d, Conv2d, Dense, Flatten, Parallel, PolicyValue, ReLU, Residual, Sequential,
                        Tanh)
from tiefnet.rl.alphazero.net import VALUE_HIDDEN, Evaluator, masked_softmax, policy_value_net
from tiefnet.rl.games import make_game

BLOCKS, FILTERS = 2, 4


def positions(game, count, seed, min_ply=0):
    """``count`` non-terminal states of random games (at least ``min_ply`` moves in where possible)."""
    rng = np.random.default_rng(seed)
    states = []
    while len(states) < count:
        state = game.initial()
        target = int(rng.integers(min_ply, 2 * game.action_count))
        while not state.terminal and state.ply < target:
            after = game.play(state, int(rng.choice(game.legal_actions(state))))
            if after.terminal:
                break
            state = after
        states.append(state)
    return states


def training_batch(game, N, seed):
    """(planes (N, C, H, W) float64, pi (N, A) over the legal moves, z (N,)) on the device."""
    rng = np.random.default_rng(seed)
    states = positions(game, N, seed, min_ply=1)
    planes = np.stack([game.encode(s) for s in states]).astype(np.float64)
    pi = np.zeros((N, game.action_count))
    for row, s in zip(pi, states):
        legal = game.legal_actions(s)
        row[legal] = rng.dirichlet(np.ones(len(legal)))
    z = rng.integers(-1, 2, N).astype(np.float64)
    return dev(planes), dev(pi), dev(z)


@pytest.fixture
def tictactoe():
    return make_game("tictactoe", history=2)  # 5 planes: this and the previous position, the colour


def cost_of(net, x, pi, z):
    return PolicyValue().cost(net.forward(x, True), pi, z)


def sampled_difference_check(net, x, pi, z, per_array=8, h=1e-6, seed=0):
    """The analytic dL/dw against central differences at up to ``per_array`` random entries of each
    parameter array (all entries of one with fewer): ({key: relative error}, {key: the differences})."""
    net.forward(x, True)
    net.backward_from(PolicyValue(), pi, z)
    analytic = {k: host(g).copy() for k, g in net.grads.items()}
    rng = np.random.default_rng(seed)
    errors, numerics = {}, {}
    for p in net.parameters():
        w = p.value
        flat = rng.permutation(w.size)[:per_array]
        numeric, exact = [], []
        for j in flat:
            index = np.unravel_index(j, w.shape)
            old = float(w[index])
            w[index] = old + h
            plus = cost_of(net, x, pi, z)
            w[index] = old - h
            minus = cost_of(net, x, pi, z)
            w[index] = old
            numeric.append((plus - minus) / (2 * h))
            exact.append(analytic[p.key][index])
        errors[p.key] = relative_error(np.array(exact), np.array(numeric))
        numerics[p.key] = np.array(numeric)
    return errors, numerics


def conv_biases(net):
    """The keys of the conv biases (every conv of f_theta is followed by a BatchNorm)."""
    return {prefix + "b" for prefix, layer in net.walk() if isinstance(layer, Conv2d)}


def test_the_architecture(tictactoe):
    net = policy_value_net(tictactoe, BLOCKS, FILTERS, np.random.default_rng(0))
    *stem_and_tower, heads = net.layers
    assert [type(l) for l in stem_and_tower[:3]] == [Conv2d, BatchNorm2d, ReLU]
    tower = stem_and_tower[3:]
    assert [type(l) for l in tower] == [Residual, ReLU] * BLOCKS
    g = tower[0].body
    assert [type(l) for l in g.layers] == [Conv2d, BatchNorm2d, ReLU, Conv2d, BatchNorm2d]
    assert isinstance(heads, Parallel) and len(heads.heads) == 2
    policy, value = heads.heads
    assert [type(l) for l in policy.layers] == [Conv2d, BatchNorm2d, ReLU, Flatten, Dense]
    assert [type(l) for l in value.layers] == [Conv2d, BatchNorm2d, ReLU, Flatten, Dense, ReLU, Dense, Tanh]
    assert policy.layers[-1].n_out == tictactoe.action_count and value.layers[4].n_out == VALUE_HIDDEN
    x = dev(np.stack([tictactoe.encode(s) for s in positions(tictactoe, 3, 1)]))
    logits, nu = net.forward(x)
    assert logits.shape == (3, 9) and nu.shape == (3, 1)
    assert (np.abs(host(nu)) <= 1).all()


@pytest.mark.parametrize("blocks, filters", [(-1, 4), (65, 4), (2, 0), (True, 4), (2, 2.0)])
def test_bad_sizes(tictactoe, blocks, filters):
    with pytest.raises(ConfigError, match="policy_value_net"):
        policy_value_net(tictactoe, blocks, filters)


def test_whole_network_by_central_differences(float64, tictactoe):
    """dL/d(input planes) in full, and a sample of every parameter: tower, BN gamma/beta, both heads."""
    net = policy_value_net(tictactoe, BLOCKS, FILTERS, np.random.default_rng(1))
    x, pi, z = training_batch(tictactoe, 6, seed=2)
    x = x + dev(0.1 * np.random.default_rng(3).standard_normal(x.shape))  # off the 0/1 grid: a generic point
    net.forward(x, True)
    dx = host(net.backward_from(PolicyValue(), pi, z, need_input_grad=True)).copy()
    numeric = np.zeros_like(dx)
    h = 1e-6
    for index in np.ndindex(*x.shape):
        old = float(x[index])
        x[index] = old + h
        plus = cost_of(net, x, pi, z)
        x[index] = old - h
        minus = cost_of(net, x, pi, z)
        x[index] = old
        numeric[index] = (plus - minus) / (2 * h)
    assert relative_error(dx, numeric) < 1e-6
    errors, numeric = sampled_difference_check(net, x, pi, z)
    names = {key.rsplit(".", 1)[1] for key in errors}
    assert names == {"W", "b", "gamma", "beta"}
    # 2 arrays per layer: stem conv + BN, 2 convs + 2 BNs per block, policy conv/BN/Dense, value conv/BN/Dense/Dense
    assert len(errors) == len(list(net.parameters())) == 2 * (2 + 4 * BLOCKS + 3 + 4)
    zero = conv_biases(net)
    assert len(zero) == 1 + 2 * BLOCKS + 2
    for key in zero:  # the bias of a conv before BatchNorm: the batch mean takes it out again, dL/db = 0
        assert np.abs(host(net.grads[key])).max() < 1e-12 and np.abs(numeric[key]).max() < 1e-8
    bad = {k: e for k, e in errors.items() if k not in zero and not e < 1e-6}
    assert not bad, bad


# --- the PyTorch twin ----------------------------------------------------------------------------------
def torch_twin(layer, torch, keys, prefix=""):
    """The torch module that computes what ``layer`` computes, its weights copied; ``keys`` collects
    our parameter key -> torch parameter."""
    nn = torch.nn

    class Add(nn.Module):  # g(x) + x
        def __init__(self, body):
            super().__init__()
            self.body = body

        def forward(self, x):
            return self.body(x) + x

    class Heads(nn.Module):
        def __init__(self, heads):
            super().__init__()
            self.heads = nn.ModuleList(heads)

        def forward(self, x):
            return tuple(h(x) for h in self.heads)

    def copy(module, names):
        with torch.no_grad():
            for ours, theirs in names.items():
                getattr(module, theirs).copy_(torch.tensor(host(layer.params.get(ours, layer.buffers.get(ours)))))
                if ours in layer.params:
                    keys[prefix + ours] = getattr(module, theirs)
        return module.double()

    if isinstance(layer, Sequential):
        return nn.Sequential(*[torch_twin(l, torch, keys, f"{prefix}{i}.") for i, l in enumerate(layer.layers)])
    if isinstance(layer, Residual):
        return Add(torch_twin(layer.body, torch, keys, prefix + "0."))
    if isinstance(layer, Parallel):
        return Heads([torch_twin(h, torch, keys, f"{prefix}{i}.") for i, h in enumerate(layer.heads)])
    if isinstance(layer, Conv2d):
        conv = nn.Conv2d(layer.C, layer.F, (layer.Q, layer.R), stride=layer.S, padding=layer.P).double()
        return copy(conv, {"W": "weight", "b": "bias"})
    if isinstance(layer, BatchNorm2d):
        bn = nn.BatchNorm2d(layer.C, eps=layer.eps, momentum=layer.momentum).double()
        return copy(bn, {"gamma": "weight", "beta": "bias", "running_mean": "running_mean",
                         "running_var": "running_var"})
    if isinstance(layer, Dense):
        return copy(nn.Linear(layer.n_in, layer.n_out).double(), {"W": "weight", "b": "bias"})
    return {ReLU: nn.ReLU, Tanh: nn.Tanh, Flatten: nn.Flatten}[type(layer)]()


@pytest.mark.parametrize("game_name, N", [("tictactoe", 5), ("connect4", 3)])
def test_matches_a_torch_twin(float64, game_name, N):
    """Forward (logits, nu), every parameter gradient of L and dL/dx, in training mode; then the running
    statistics and the evaluation forward after the step."""
    torch = pytest.importorskip("torch")
    from torch_helpers import close, leaf

    game = make_game(game_name, history=2)
    net = policy_value_net(game, BLOCKS, FILTERS, np.random.default_rng(4))
    for p in net.parameters():  # BatchNorm's gamma = 1, beta = 0 would hide a swapped pair
        if p.name in ("gamma", "beta"):
            p.value[...] = dev(np.random.default_rng(len(p.key)).uniform(0.5, 1.5, p.value.shape))
    keys = {}
    twin = torch_twin(net, torch, keys).train()
    assert sorted(keys) == sorted(p.key for p in net.parameters())
    x, pi, z = training_batch(game, N, seed=5)
    xt = leaf(x)
    logits_t, nu_t = twin(xt)
    pit, zt = torch.tensor(host(pi)), torch.tensor(host(z)).reshape(N, 1)
    L = ((zt - nu_t) ** 2).mean() - (pit * torch.log_softmax(logits_t, 1)).sum(1).mean()
    L.backward()
    logits, nu = net.forward(x, True)
    close(logits, logits_t, rtol=1e-10)
    close(nu, nu_t, rtol=1e-10)
    assert PolicyValue().cost((logits, nu), pi, z) == pytest.approx(L.item(), rel=1e-10)
    dx = net.backward_from(PolicyValue(), pi, z, need_input_grad=True)
    close(dx, xt.grad, rtol=1e-9)
    zero = conv_biases(net)
    for key, grad in net.grads.items():
        if key in zero:  # dL/db = 0 before BatchNorm, in both up to rounding
            assert np.abs(host(grad)).max() < 1e-12 and keys[key].grad.abs().max().item() < 1e-12
        else:
            close(grad, keys[key].grad, rtol=1e-9)
    # the running statistics moved as torch's did; the evaluation forward uses them
    for module_key, module in twin.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            ours = next(layer for prefix, layer in net.walk() if isinstance(layer, BatchNorm2d)
                        and keys[prefix + "gamma"] is module.weight)
            close(ours.buffers["running_mean"], module.running_mean, rtol=1e-10)
            close(ours.buffers["running_var"], module.running_var, rtol=1e-10)
    twin.eval()
    with torch.no_grad():
        logits_t, nu_t = twin(torch.tensor(host(x)))
    logits, nu = net.forward(x)
    close(logits, logits_t, rtol=1e-10)
    close(nu, nu_t, rtol=1e-10)


# --- masked softmax and the Evaluator -------------------------------------------------------------------
def test_masked_softmax_is_zero_on_illegal_moves():
    rng = np.random.default_rng(6)
    logits = 3.0 * rng.standard_normal((50, 7))
    masks = rng.random((50, 7)) < 0.5
    masks[np.arange(50), rng.integers(0, 7, 50)] = True  # at least one legal move
    masks[0] = False
    masks[0, 3] = True  # one legal move: probability 1
    logits[1, masks[1]] += 800.0  # large logits: no overflow
    with np.errstate(over="raise", invalid="raise"):
        p = masked_softmax(logits, masks)
    assert (p[~masks] == 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(p[0], np.eye(7)[3])
    for row, logit, mask in zip(p, logits, masks):
        e = np.exp(logit[mask] - logit[mask].max())
        np.testing.assert_allclose(row[mask], e / e.sum(), rtol=1e-12)


@pytest.mark.parametrize("game_name", ["tictactoe", "connect4"])
def test_evaluator_priors_over_legal_moves_and_batches(game_name):
    game = make_game(game_name, history=2)
    net = policy_value_net(game, 1, FILTERS, np.random.default_rng(7))
    net.forward(dev(np.stack([game.encode(s) for s in positions(game, 8, 8)])), True)  # running stats != (0, 1)
    states = positions(game, 7, seed=9)
    evaluator = Evaluator(game, net, max_batch=3)
    P, nu = evaluator(states)
    assert evaluator.positions == 7 and evaluator.calls == 1
    assert len(P) == 7 and nu.shape == (7,) and (np.abs(nu) <= 1).all()
    # p over all A actions from the logits: zero off the legal moves, P is its legal part in legal_actions order
    logits, _ = evaluator.forward(np.stack([game.encode(s) for s in states]))
    for p, s, row in zip(P, states, logits):
        legal = game.legal_actions(s)
        assert p.shape == (len(legal),)
        assert p.sum() == pytest.approx(1.0, rel=1e-9) and (p > 0).all()
        full = masked_softmax(row[None], game.legal_mask(s)[None])[0]
        np.testing.assert_allclose(p, full[legal], rtol=1e-12)
        assert full[~game.legal_mask(s)].sum() == 0
    # one position at a time, and one batch without chunks: the same priors and values
    whole = Evaluator(game, net, max_batch=1024)(states)
    for i, s in enumerate(states):
        P1, nu1 = Evaluator(game, net)([s])
        np.testing.assert_allclose(P1[0], P[i], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(nu1[0], nu[i], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(whole[0][i], P[i], rtol=1e-5, atol=1e-7)
    assert Evaluator(game, net)([]) == ([], pytest.approx(np.zeros(0)))

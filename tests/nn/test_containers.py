"""Containers: Residual (g(x) + x, 5.5), Parallel heads (p, nu, 5.4) and Taps (losses at several
layers in one backward pass, 3.4) against central differences (float64), their errors and their
saved form. The PyTorch comparisons are at the end (skipped without torch)."""

import numpy as np
import pytest
from helpers import dev, host

from tiefnet.backend import xp
from tiefnet.errors import ConfigError, ShapeError
from tiefnet.gradcheck import check_layer, numerical_gradient, relative_error
from tiefnet.nn import Dense, Parallel, ReLU, Residual, Sequential, Sigmoid, Softmax, Taps, Tanh
from tiefnet.nn.registry import layer_from_config, layer_to_config

TOL = 1e-6


def rand(shape, seed):
    return dev(np.random.default_rng(seed).standard_normal(shape))


def block(n, seed, hidden=5):
    rng = np.random.default_rng(seed)
    return Sequential(Dense(n, hidden, rng=rng), Tanh(), Dense(hidden, n, rng=rng))


def multi_output_errors(model, x, upstreams):
    """Relative errors of backward(upstreams) against difference quotients of
    C = sum_k sum(out_k * upstream_k), for dx and every parameter (upstreams: a list, or a dict by tap)."""
    out = model.forward(x, train=True)
    analytic = {"x": model.backward(upstreams if not isinstance(out, dict) else dict(upstreams))}
    analytic.update({k: g.copy() for k, g in model.grads.items()})
    keys = list(upstreams) if isinstance(out, dict) else range(len(upstreams))
    ups = [upstreams[k] for k in keys]

    def cost():
        outs = model.forward(x, train=True)
        return xp.asarray(sum(float((outs[k] * u).sum()) for k, u in zip(keys, ups) if u is not None))

    errors = {"x": relative_error(analytic["x"], numerical_gradient(cost, x, xp.asarray(1.0)))}
    for name, p in model.params.items():
        errors[name] = relative_error(analytic[name], numerical_gradient(cost, p, xp.asarray(1.0)))
    return errors


# --- Residual --------------------------------------------------------------------------------
@pytest.mark.parametrize("N", [1, 4])
def test_residual_gradcheck(float64, N):
    model = Residual(block(3, 0))
    errors = check_layer(model, rand((N, 3), N))
    assert set(errors) == {"x", "0.0.W", "0.0.b", "0.2.W", "0.2.b"}
    assert max(errors.values()) < TOL, errors


def test_residual_with_a_projection_shortcut_gradcheck(float64):
    rng = np.random.default_rng(1)
    model = Residual(Sequential(Dense(3, 4, rng=rng), Tanh()), shortcut=Dense(3, 4, rng=rng))
    errors = check_layer(model, rand((5, 3), 2))
    assert set(errors) == {"x", "0.0.W", "0.0.b", "1.W", "1.b"} and max(errors.values()) < TOL, errors


def test_residual_is_g_of_x_plus_x(float64):
    body = block(3, 0)
    x = rand((2, 3), 1)
    np.testing.assert_allclose(host(Residual(body).forward(x)), host(body.forward(x) + x), rtol=1e-15)


def test_residual_refuses_a_body_that_changes_the_shape():
    with pytest.raises(ShapeError, match=r"Residual: the body .* gives \(2, 4\), the shortcut \(2, 3\)"):
        Residual(Dense(3, 4)).forward(rand((2, 3), 0))


def test_residual_without_input_gradient_still_fills_the_body_gradients(float64):
    model = Residual(block(3, 0))
    x, up = rand((4, 3), 1), rand((4, 3), 2)
    model.forward(x, train=True)
    assert model.backward(up, need_input_grad=False) is None
    full = Residual(block(3, 0))
    full.forward(x, train=True)
    full.backward(up)
    for key in full.grads:
        np.testing.assert_allclose(host(model.grads[key]), host(full.grads[key]), rtol=1e-13)


# --- Parallel ----------------------------------------------------------------------------------
def two_heads(seed=0):
    rng = np.random.default_rng(seed)
    return Sequential(Dense(4, 6, rng=rng), ReLU(),
                      Parallel(Sequential(Dense(6, 3, rng=rng), Softmax()), Sequential(Dense(6, 1, rng=rng), Tanh())))


@pytest.mark.parametrize("N", [1, 3])
def test_parallel_heads_gradcheck(float64, N):
    """dC/dx = sum over the heads: the policy and the value gradients add up in the trunk."""
    model = two_heads()
    x = dev(np.abs(np.random.default_rng(N).standard_normal((N, 4))) + 0.1)  # away from ReLU's kink
    errors = multi_output_errors(model, x, [rand((N, 3), 5), rand((N, 1), 6)])
    assert len(errors) == 1 + 6 and max(errors.values()) < TOL, errors


def test_parallel_head_without_gradient_gets_zero_gradients(float64):
    model = two_heads()
    x = rand((3, 4), 1)
    model.forward(x, train=True)
    model.backward_from(_FirstHeadCost(), None)
    assert not host(model.grads["2.1.0.W"]).any() and not host(model.grads["2.1.0.b"]).any()
    assert host(model.grads["2.0.0.W"]).any()


class _FirstHeadCost:
    """A cost on the first head only: C = sum(p) (a test stand-in for PolicyValue's two parts)."""

    def cancels(self, layer):
        return False

    def grad(self, outputs, y):
        p, _ = outputs
        return (xp.ones_like(p), None)


def test_parallel_outputs_and_errors():
    model = Parallel(Dense(2, 3), Dense(2, 1))
    p, v = model.forward(rand((4, 2), 0), train=True)
    assert p.shape == (4, 3) and v.shape == (4, 1)
    with pytest.raises(ShapeError, match="one gradient per head"):
        model.backward(rand((4, 3), 1))
    with pytest.raises(ShapeError, match="no gradient for any head"):
        model.backward((None, None))
    with pytest.raises(ConfigError, match="at least one head"):
        Parallel()
    with pytest.raises(TypeError, match="item 1 is str"):
        Parallel(Dense(2, 3), "value")


# --- Taps ----------------------------------------------------------------------------------------
def feature_net(seed=0):
    rng = np.random.default_rng(seed)
    return Sequential(Dense(3, 5, rng=rng), Tanh(), Dense(5, 4, rng=rng), Sigmoid(), Dense(4, 2, rng=rng), Tanh())


@pytest.mark.parametrize("grads_at", [("h1", "h2"), ("h1",), ("h2", "z3")])
def test_taps_gradcheck_with_gradients_at_several_layers(float64, grads_at):
    """One backward pass takes dC/d(a) at each tap and adds it where the tap reads the network
    (style costs at several layers + a content cost at another, 3.4)."""
    model = Taps(feature_net(), {"h1": 1, "h2": 3, "z3": 4})
    x = rand((3, 3), 0)
    shapes = {"h1": (3, 5), "h2": (3, 4), "z3": (3, 2)}
    upstreams = {name: (rand(shapes[name], i) if name in grads_at else None) for i, name in enumerate(shapes)}
    errors = multi_output_errors(model, x, upstreams)
    assert max(errors.values()) < TOL, errors


def test_taps_run_only_as_far_as_the_last_tap():
    net = feature_net()
    out = Taps(net, {"a": 1}).forward(rand((2, 3), 0), train=True)
    assert list(out) == ["a"] and out["a"].shape == (2, 5)
    assert not hasattr(net.layers[2], "output")  # layers after the last tap never ran


def test_taps_errors():
    with pytest.raises(ConfigError, match=r"tap 'x' -> 9 must name a layer index in \[0, 6\)"):
        Taps(feature_net(), {"x": 9})
    with pytest.raises(ConfigError, match="not a Sequential"):
        Taps(Dense(2, 2), {"x": 0})
    model = Taps(feature_net(), {"a": 1})
    model.forward(rand((2, 3), 0), train=True)
    with pytest.raises(ShapeError, match="no tap named 'b'"):
        model.backward({"b": rand((2, 5), 1)})


# --- saved form ------------------------------------------------------------------------------------
@pytest.mark.parametrize("build", [
    lambda: Residual(block(3, 0)),
    lambda: Residual(Dense(3, 4), shortcut=Dense(3, 4)),
    lambda: two_heads(),
    lambda: Taps(feature_net(), {"h1": 1, "z3": 4}),
], ids=["residual", "projection", "parallel", "taps"])
def test_containers_round_trip_through_their_config(build):
    model = build()
    config = layer_to_config(model)
    rebuilt = layer_from_config(config)
    assert layer_to_config(rebuilt) == config and rebuilt.describe() == model.describe()
    assert list(rebuilt.params) == list(model.params)


# --- against PyTorch ---------------------------------------------------------------------------------
def test_containers_match_torch(float64):
    torch = pytest.importorskip("torch")
    from torch_helpers import close, leaf

    F = torch.nn.functional
    rng = np.random.default_rng(0)
    model = Sequential(Residual(Sequential(Dense(4, 4, rng=rng), Tanh(), Dense(4, 4, rng=rng))),
                       Parallel(Sequential(Dense(4, 3, rng=rng), Softmax()), Dense(4, 1, rng=rng)))
    x = np.random.default_rng(1).standard_normal((5, 4))
    up_p, up_v = np.random.default_rng(2).standard_normal((5, 3)), np.random.default_rng(3).standard_normal((5, 1))
    t = {k: leaf(v) for k, v in model.params.items()}
    xt = leaf(x)
    h = xt + F.linear(torch.tanh(F.linear(xt, t["0.0.0.W"], t["0.0.0.b"])), t["0.0.2.W"], t["0.0.2.b"])
    pt = F.softmax(F.linear(h, t["1.0.0.W"], t["1.0.0.b"]), dim=-1)
    vt = F.linear(h, t["1.1.W"], t["1.1.b"])
    ((pt * torch.tensor(up_p)).sum() + (vt * torch.tensor(up_v)).sum()).backward()
    p, v = model.forward(dev(x), train=True)
    close(p, pt)
    close(v, vt)
    close(model.backward((dev(up_p), dev(up_v))), xt.grad)
    for key, g in model.grads.items():
        close(g, t[key].grad)

    taps = Taps(Sequential(Dense(4, 5, rng=rng), Tanh(), Dense(5, 3, rng=rng), Tanh()), {"a": 1, "b": 3})
    t = {k: leaf(v) for k, v in taps.params.items()}
    xt = leaf(x)
    at = torch.tanh(F.linear(xt, t["0.0.W"], t["0.0.b"]))
    bt = torch.tanh(F.linear(at, t["0.2.W"], t["0.2.b"]))
    ((at ** 2).sum() + (bt * 3).sum()).backward()  # a Gram-free stand-in for the style + content costs
    out = taps.forward(dev(x), train=True)
    close(taps.backward({"a": 2 * out["a"], "b": 3 * xp.ones_like(out["b"])}), xt.grad)
    for key, g in taps.grads.items():
        close(g, t[key].grad)

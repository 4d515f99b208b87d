"""SoftAttention (4.4.2): central differences (float64) through the Layer contract and through the
step API (a dalpha from the penalty, two steps over the same regions whose gradients add), the
softmax's properties, shape errors, saving, and a PyTorch comparison of z, alpha and every gradient.
Only the PyTorch test needs torch; it skips without it.

    e_j = v . tanh(W_a a_j + W_h h_prev + b),  alpha = softmax(e),  z = sum_j alpha_j a_j
"""

import warnings

import numpy as np
import pytest
from helpers import dev, host

from tiefnet import backend
from tiefnet.checkpoint import load_model, save_model
from tiefnet.errors import ConfigError, ShapeError
from tiefnet.gradcheck import numerical_gradient, relative_error
from tiefnet.nn import SoftAttention, layer_from_config, layer_to_config

TOL = 1e-6
SHAPES = [  # (N, R, C, H, A)
    (1, 1, 1, 1, 1),  # one region: alpha = 1, z = a_0
    (2, 3, 4, 5, 6),
    (3, 7, 2, 3, 4),
]


def data(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def make(C, H, A, seed=0):
    layer = SoftAttention(C, H, A, rng=np.random.default_rng(seed))
    layer.params["b"][...] = dev(0.5 * data((A,), seed + 1))  # b = 0 after init: make it count
    return layer


def inputs(N, R, C, H, seed=10):
    return dev(data((N, R, C), seed)), dev(data((N, H), seed + 1))


def flat(*arrays):
    return backend.xp.concatenate([x.ravel() for x in arrays])


# --- finite differences --------------------------------------------------------------------
@pytest.mark.parametrize("N, R, C, H, A", SHAPES)
def test_layer_contract_gradcheck(float64, N, R, C, H, A):
    """forward((a, h_prev)) -> z, backward(dz) -> (dC/da, dC/dh_prev), grads of W_a, W_h, b, v."""
    layer = make(C, H, A)
    a, h_prev = inputs(N, R, C, H)
    dz = dev(data((N, C), 20))  # C = <dz, z>
    z = layer.forward((a, h_prev), train=True)  # (N, C)
    assert z.shape == (N, C) and layer.alpha.shape == (N, R)
    da, dh_prev = layer.backward(dz)
    grads = {name: g.copy() for name, g in layer.grads.items()}

    def f():
        return layer.forward((a, h_prev), train=True)

    assert da.shape == a.shape and dh_prev.shape == h_prev.shape
    assert relative_error(da, numerical_gradient(f, a, dz)) < TOL
    assert relative_error(dh_prev, numerical_gradient(f, h_prev, dz)) < TOL
    assert sorted(grads) == ["Wa", "Wh", "b", "v"]
    for name, p in layer.params.items():
        assert relative_error(grads[name], numerical_gradient(f, p, dz)) < TOL, name


@pytest.mark.parametrize("N, R, C, H, A", SHAPES)
def test_step_api_gradcheck_two_steps(float64, N, R, C, H, A):
    """C = sum over two steps s of <dz_s, z_s> + <dalpha_s, alpha_s>, both steps reading the same
    regions (and one projection) with their own h_prev: step_backward twice plus project_backward
    once give dC/da (summed), each dC/dh_prev, and the parameter gradients ADDED over the steps."""
    layer = make(C, H, A, seed=3)
    a = dev(data((N, R, C), 30))
    hs = [dev(data((N, H), 31 + s)) for s in range(2)]
    dzs = [dev(data((N, C), 33 + s)) for s in range(2)]
    dalphas = [dev(data((N, R), 35 + s)) for s in range(2)]
    upstream = flat(dzs[0], dalphas[0], dzs[1], dalphas[1])

    def f():  # [z_1; alpha_1; z_2; alpha_2], the projection recomputed from the perturbed a, W_a, b
        proj = layer.project(a)
        return flat(*(x for h in hs for x in layer.step(a, proj, h)[:2]))

    proj = layer.project(a)  # (N, R, A)
    caches = [layer.step(a, proj, h, train=True)[2] for h in hs]
    layer.zero_grads()
    da, dproj, dh_prev = dev(np.zeros((N, R, C))), dev(np.zeros((N, R, A))), [None, None]
    for s in (1, 0):  # backwards, as BPTT
        da_s, dproj_s, dh_prev[s] = layer.step_backward(caches[s], dzs[s], dalphas[s])
        da, dproj = da + da_s, dproj + dproj_s
    da = da + layer.project_backward(a, dproj)  # (N, R, C)
    grads = {name: g.copy() for name, g in layer.grads.items()}

    assert relative_error(da, numerical_gradient(f, a, upstream)) < TOL
    for s in range(2):
        assert relative_error(dh_prev[s], numerical_gradient(f, hs[s], upstream)) < TOL, f"h_prev of step {s}"
    for name, p in layer.params.items():
        assert relative_error(grads[name], numerical_gradient(f, p, upstream)) < TOL, name


def test_step_backward_adds_and_zero_grads_resets(float64):
    """Two step_backward calls add up to the sum of each alone; zero_grads starts a new sweep."""
    N, R, C, H, A = 2, 3, 4, 5, 6
    layer = make(C, H, A)
    a, h = inputs(N, R, C, H)
    _, _, cache = layer.step(a, layer.project(a), h, train=True)
    dz, dalpha = dev(data((N, C), 1)), dev(data((N, R), 2))
    layer.zero_grads()
    layer.step_backward(cache, dz, dalpha)
    once = {name: host(g).copy() for name, g in layer.grads.items()}
    layer.step_backward(cache, dz, dalpha)
    for name in ("Wh", "v"):  # what step_backward writes
        np.testing.assert_allclose(host(layer.grads[name]), 2 * once[name], rtol=1e-12, atol=1e-12)
    layer.zero_grads()
    assert all(not host(g).any() for g in layer.grads.values())


def test_layer_backward_overwrites_grads(float64):
    """backward (the Layer contract) starts from zero: twice the same call, the same grads."""
    N, R, C, H, A = 2, 3, 4, 5, 6
    layer = make(C, H, A)
    a, h = inputs(N, R, C, H)
    dz = dev(data((N, C), 3))
    layer.forward((a, h), train=True)
    layer.backward(dz)
    first = {name: host(g).copy() for name, g in layer.grads.items()}
    layer.backward(dz)
    for name, g in layer.grads.items():
        np.testing.assert_array_equal(host(g), first[name])


# --- the softmax -----------------------------------------------------------------------------
@pytest.mark.parametrize("N, R, C, H, A", SHAPES)
def test_alpha_is_a_distribution_and_z_a_mixture(float64, N, R, C, H, A):
    layer = make(C, H, A)
    a, h = inputs(N, R, C, H)
    z = host(layer.forward((a, h), train=True))  # a training forward keeps alpha
    alpha = host(layer.alpha)  # (N, R)
    assert (alpha >= 0).all()
    np.testing.assert_allclose(alpha.sum(axis=1), 1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(z, np.einsum("nr,nrc->nc", alpha, host(a)), rtol=1e-12, atol=1e-12)
    z2, alpha2, cache = layer.step(a, layer.project(a), h)  # train=False: no cache
    assert cache is None
    np.testing.assert_allclose(host(z2), z, rtol=1e-12, atol=1e-12)


def test_large_scores_do_not_overflow(float64):
    """|e_j| up to ~ 4000 (exp(4000) = inf): the shifted softmax stays finite, forward and backward."""
    N, R, C, H, A = 2, 5, 3, 4, 4
    layer = make(C, H, A)
    layer.params["v"][...] = dev(1000 * np.array([1.0, -1.0, 1.0, 1.0]))
    layer.params["Wa"][...] *= 50  # tanh saturates: e_j = +-1000 +-1000 ... per region
    a, h = inputs(N, R, C, H)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        z = host(layer.forward((a, h), train=True))
        da, dh = layer.backward(dev(data((N, C), 4)))
    alpha = host(layer.alpha)
    assert np.isfinite(z).all() and np.isfinite(alpha).all()
    assert np.isfinite(host(da)).all() and np.isfinite(host(dh)).all()
    assert all(np.isfinite(host(g)).all() for g in layer.grads.values())
    np.testing.assert_allclose(alpha.sum(axis=1), 1, rtol=0, atol=1e-12)
    assert alpha.max() > 0.99  # one region wins outright


# --- errors ----------------------------------------------------------------------------------
def test_shape_errors_name_the_layer(float64):
    N, R, C, H, A = 2, 3, 4, 5, 6
    layer = make(C, H, A)
    a, h = inputs(N, R, C, H)
    proj = layer.project(a)
    bad = {
        "wrong C": lambda: layer.forward((dev(data((N, R, C + 1), 1)), h)),
        "regions 2-D": lambda: layer.forward((dev(data((N, C), 1)), h)),
        "wrong H": lambda: layer.forward((a, dev(data((N, H + 1), 2)))),
        "h of another batch": lambda: layer.forward((a, dev(data((N + 1, H), 2)))),
        "h 1-D": lambda: layer.forward((a, dev(data((H,), 2)))),
        "project, wrong C": lambda: layer.project(dev(data((N, R, C - 1), 3))),
        "step, wrong H": lambda: layer.step(a, proj, dev(data((N, H - 1), 4))),
    }
    for what, call in bad.items():
        with pytest.raises(ShapeError, match=r"SoftAttention\(C=4, H=5, A=6\)"):
            call()
    _, _, cache = layer.step(a, proj, h, train=True)
    with pytest.raises(ShapeError, match=r"SoftAttention\(C=4, H=5, A=6\).*dz"):
        layer.step_backward(cache, dev(data((N, C + 1), 5)))


def test_backward_without_a_cache_raises(float64):
    layer = make(4, 5, 6)
    dz = dev(data((2, 4), 1))
    with pytest.raises(RuntimeError, match="SoftAttention.step_backward"):
        layer.step_backward(None, dz)
    with pytest.raises(RuntimeError, match="SoftAttention.backward"):
        layer.backward(dz)
    a, h = inputs(2, 3, 4, 5)
    layer.forward((a, h))  # an evaluation forward keeps nothing
    with pytest.raises(RuntimeError):
        layer.backward(dz)


@pytest.mark.parametrize("C, H, A", [(0, 5, 6), (4, 0, 6), (4, 5, 0)])
def test_sizes_below_one_are_refused(C, H, A):
    with pytest.raises(ConfigError, match="SoftAttention"):
        SoftAttention(C, H, A)


# --- saving ------------------------------------------------------------------------------------
def test_config_round_trip_array_count_and_saving(tmp_path):
    layer = make(4, 5, 6, seed=7)
    config = layer_to_config(layer)
    assert config == {"type": "SoftAttention", "C": 4, "H": 5, "A": 6}
    again = layer_from_config(config)
    assert type(again) is SoftAttention and again.to_config() == layer.to_config()
    assert {name: p.shape for name, p in again.params.items()} == {name: p.shape for name, p in layer.params.items()}
    real = sum(int(p.size) for p in layer.params.values()) + sum(int(b.size) for b in layer.buffers.values())
    assert SoftAttention.array_count(layer.to_config()) == real == 6 * (4 + 5 + 2)
    assert SoftAttention.array_count({"C": 4, "H": "5", "A": 6}) is None  # not whole numbers: not known
    save_model(tmp_path / "attention", layer)
    loaded, _ = load_model(tmp_path / "attention")
    assert type(loaded) is SoftAttention and loaded.to_config() == layer.to_config()
    for name, p in layer.params.items():
        np.testing.assert_array_equal(host(loaded.params[name]), host(p))


# --- PyTorch ---------------------------------------------------------------------------------
@pytest.mark.parametrize("N, R, C, H, A", SHAPES)
@pytest.mark.parametrize("api", ["layer", "step"])
def test_matches_torch(float64, N, R, C, H, A, api):
    """z, alpha and autograd's dC/da, dC/dh_prev, dC/dW_a, dC/dW_h, dC/db, dC/dv (float64, the same
    weights); C = <dz, z> (+ <dalpha, alpha> through the step API)."""
    torch = pytest.importorskip("torch")
    from torch_helpers import close, leaf

    layer = make(C, H, A, seed=5)
    a, h = inputs(N, R, C, H, seed=40)
    dz, dalpha = data((N, C), 42), (data((N, R), 43) if api == "step" else np.zeros((N, R)))

    at, ht = leaf(a), leaf(h)  # (N, R, C), (N, H)
    p = {name: leaf(v) for name, v in layer.params.items()}  # Wa (A, C), Wh (A, H), b (A,), v (A,)
    u = torch.tanh(at @ p["Wa"].T + p["b"] + (ht @ p["Wh"].T)[:, None, :])  # (N, R, A)
    alpha_t = torch.softmax(u @ p["v"], dim=1)  # (N, R)
    z_t = (alpha_t[:, :, None] * at).sum(dim=1)  # (N, C)
    ((z_t * torch.tensor(dz)).sum() + (alpha_t * torch.tensor(dalpha)).sum()).backward()

    if api == "layer":
        z = layer.forward((a, h), train=True)
        alpha = layer.alpha
        da, dh = layer.backward(dev(dz))
    else:
        proj = layer.project(a)
        z, alpha, cache = layer.step(a, proj, h, train=True)
        layer.zero_grads()
        da, dproj, dh = layer.step_backward(cache, dev(dz), dev(dalpha))
        da = da + layer.project_backward(a, dproj)
    close(z, z_t, rtol=1e-10)
    close(alpha, alpha_t, rtol=1e-10)
    close(da, at.grad, rtol=1e-10)
    close(dh, ht.grad, rtol=1e-10)
    for name, g in layer.grads.items():
        close(g, p[name].grad, rtol=1e-10)

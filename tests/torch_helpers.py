"""What the PyTorch comparisons share: agreement to RTOL, tensors that collect gradients, data.
Import it after ``pytest.importorskip("torch")``."""
import numpy as np
import torch
from helpers import host

RTOL = 1e-5


def close(ours, theirs, rtol=RTOL):
    """Agreement to rtol relative to the largest entry (scale-free, like gradcheck.relative_error)."""
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    ours = host(ours)
    assert ours.shape == theirs.shape
    scale = max(np.abs(theirs).max(initial=0.0), 1e-30)
    err = np.abs(ours - theirs).max(initial=0.0) / scale
    assert err < rtol, f"relative error {err:.3g} >= {rtol}"


def leaf(a):
    """A float64 CPU tensor of ``a`` (a NumPy or device array) that collects autograd's gradient."""
    return torch.tensor(host(a), dtype=torch.float64, requires_grad=True)


def data(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)

"""BatchNorm1d, BatchNorm2d and InstanceNorm2d against PyTorch (float64, copied gamma and beta):
training forward and autograd's gradients, the running statistics after several training steps,
the evaluation forward. PyTorch is the test-only referee; without it this module is skipped.

torch's InstanceNorm2d defaults to affine=False; ours to affine=True (fast style transfer), so each
comparison names affine explicitly. Our backward needs a training forward; torch's evaluation-mode
backward (a fixed affine map) has no counterpart here and is not compared.
"""

import pytest
from helpers import dev

torch = pytest.importorskip("torch")

from torch_helpers import close, data, leaf  # noqa: E402

from tiefnet.nn import BatchNorm1d, BatchNorm2d, InstanceNorm2d  # noqa: E402  (after the importorskip)

# (class, torch class, input shape); N = 1 only where one sample still has several values per channel
BATCH_NORM_CASES = [
    (BatchNorm1d, torch.nn.BatchNorm1d, (2, 3)),
    (BatchNorm1d, torch.nn.BatchNorm1d, (7, 5)),
    (BatchNorm2d, torch.nn.BatchNorm2d, (1, 3, 4, 5)),
    (BatchNorm2d, torch.nn.BatchNorm2d, (4, 2, 3, 3)),
    (BatchNorm2d, torch.nn.BatchNorm2d, (2, 1, 1, 2)),
]
IDS = [f"{cls.__name__}-{'x'.join(map(str, shape))}" for cls, _, shape in BATCH_NORM_CASES]


def twins(cls, torch_cls, C, seed, **options):
    """Our layer and torch's, both with the same random gamma and beta (if they have them)."""
    ours = cls(C, **options)
    theirs = torch_cls(C, **options).double()
    if theirs.weight is None:
        return ours, theirs
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(data(C, seed) + 1.0))
        theirs.bias.copy_(torch.tensor(data(C, seed + 1)))
    ours.params["gamma"][...] = dev(theirs.weight.detach().numpy())
    ours.params["beta"][...] = dev(theirs.bias.detach().numpy())
    return ours, theirs


def compare_training_step(ours, theirs, x, upstream):
    """One training forward and backward in both libraries: y, dx (and dgamma, dbeta)."""
    xt = leaf(x)
    theirs.zero_grad(set_to_none=True)
    yt = theirs(xt)
    yt.backward(torch.tensor(upstream))
    close(ours.forward(dev(x), train=True), yt)
    close(ours.backward(dev(upstream)), xt.grad)
    if theirs.weight is not None:
        close(ours.grads["gamma"], theirs.weight.grad)
        close(ours.grads["beta"], theirs.bias.grad)


@pytest.mark.parametrize("cls, torch_cls, shape", BATCH_NORM_CASES, ids=IDS)
@pytest.mark.parametrize("momentum", [0.1, 0.4])
def test_batch_norm_matches_torch_in_training_and_evaluation(float64, cls, torch_cls, shape, momentum):
    ours, theirs = twins(cls, torch_cls, shape[1], seed=1, momentum=momentum, eps=1e-4)
    theirs.train()
    for step in range(3):
        x = 2.5 * data(shape, 10 + step) + step  # the statistics move from step to step
        compare_training_step(ours, theirs, x, data(shape, 20 + step))
    close(ours.buffers["running_mean"], theirs.running_mean)
    close(ours.buffers["running_var"], theirs.running_var)
    theirs.eval()
    x = data(shape, 30)
    with torch.no_grad():
        close(ours.forward(dev(x)), theirs(torch.tensor(x)))


@pytest.mark.parametrize("shape", [(1, 3, 4, 5), (2, 2, 3, 3), (3, 1, 1, 4)])
@pytest.mark.parametrize("affine", [True, False])
def test_instance_norm_matches_torch(float64, shape, affine):
    ours, theirs = twins(InstanceNorm2d, torch.nn.InstanceNorm2d, shape[1], seed=2, affine=affine)
    x = 2.0 * data(shape, 40) - 1.0
    compare_training_step(ours, theirs, x, data(shape, 41))
    theirs.eval()  # no running statistics: evaluation is the same function
    with torch.no_grad():
        close(ours.forward(dev(x)), theirs(torch.tensor(x)))

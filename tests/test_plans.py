"""tiefnet.plans: the one place where a faster variant of a formula is chosen, per shape."""
import numpy as np
import pytest

from tiefnet import plans
from tiefnet.errors import ConfigError
from tiefnet.nn import Conv2d, MaxPool2d


def test_measure_keeps_the_fastest_per_shape_and_off_or_force_pick_by_position():
    import time

    calls = []
    variants = {"slow": lambda: (calls.append("slow"), time.sleep(0.002), "s")[2],
                "fast": lambda: (calls.append("fast"), "f")[1]}
    plans.forget()
    with plans.tuning("measure"):
        assert plans.choose("test.site", (3,), variants) == "f"
        assert calls.count("slow") == plans.REPEATS and calls.count("fast") == plans.REPEATS + 1
        calls.clear()
        assert plans.choose("test.site", (3,), variants) == "f" and calls == ["fast"]  # cached for this shape
        assert plans.chosen()["test.site (3,)"] == "fast"
    with plans.tuning("off"):
        assert plans.choose("test.site", (3,), variants) == "s"  # the default: the first
    with plans.tuning("force:1"):
        assert plans.choose("test.site", (3,), variants) == "f"
    with plans.tuning("force:2"):
        assert plans.choose("test.site", (3,), variants) == "s"  # modulo the number of variants
    plans.forget()
    assert plans.chosen() == {}
    with pytest.raises(ConfigError, match="TIEFNET_TUNE"):
        plans.tuning("fastest").__enter__()


@pytest.mark.parametrize("C, kernel, padding, stride", [(1, 5, 0, 1), (3, 3, 1, 1), (4, 2, 0, 2)])
def test_the_variants_of_conv_and_pooling_compute_the_same(C, kernel, padding, stride):
    rng = np.random.default_rng(0)
    conv = Conv2d(C, 6, kernel, padding=padding, stride=stride, rng=rng)
    x = rng.standard_normal((3, C, 10, 10)).astype(np.float32)
    out, grads = [], []
    for mode in ("force:0", "force:1"):
        with plans.tuning(mode):
            z = conv.forward(x, True).copy()
            dx = conv.backward(np.ones_like(z) * z, True).copy()
            pool = MaxPool2d(2)
            a = pool.forward(conv.forward(x, True), True)
            dpool = pool.backward(a.copy(), True).copy()
            out.append((z, dx, dpool))
            grads.append(conv.grads["W"].copy())
    for first, second in zip(out[0], out[1]):
        np.testing.assert_allclose(second, first, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out[1][2], out[0][2])  # pooling's two ways: exactly the same dx

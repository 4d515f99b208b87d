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


def test_export_adopt_round_trip_and_bad_entries_are_skipped():
    plans.forget()
    with plans.tuning("measure"):
        plans.choose("test.round", ((2, 3), 5, "x"), {"a": lambda: 1, "b": lambda: 2})
    saved = plans.export()
    assert saved[0]["site"] == "test.round" and saved[0]["key"] == [[2, 3], 5, "x"]
    plans.forget()
    assert plans.adopt(saved + [{"site": 1}, "junk", {"site": "s", "variant": "v", "key": [[[[[[1]]]]]]},
                                {"site": "s", "variant": "v", "key": [True]}]) == 1
    with plans.tuning("measure"):
        calls = []
        result = plans.choose("test.round", ((2, 3), 5, "x"), {"a": lambda: calls.append("a") or 1,
                                                               "b": lambda: calls.append("b") or 2})
    assert calls == [saved[0]["variant"]] and result == {"a": 1, "b": 2}[saved[0]["variant"]]  # adopted: no measuring
    assert plans.adopt({"not": "a list"}) == 0
    plans.forget()


def test_a_run_folder_keeps_its_plans_and_a_resumed_run_adopts_them(tmp_path):
    import json
    from dataclasses import dataclass

    from tiefnet.runs import RunFolder

    @dataclass(frozen=True)
    class Config:
        size: int = 1

    plans.forget()
    with plans.tuning("measure"), RunFolder(tmp_path / "run").start(Config()):
        plans.choose("test.folder", (7,), {"a": lambda: 1, "b": lambda: 2})
    written = json.loads((tmp_path / "run" / "plans.json").read_text())
    assert [e["site"] for e in written] == ["test.folder"]
    plans.forget()
    (tmp_path / "run" / "checkpoint.npz").write_bytes(b"")  # resumable as far as RunFolder checks
    with RunFolder(tmp_path / "run").start(Config(), resume=True):
        assert "test.folder (7,)" in plans.chosen()
    plans.forget()

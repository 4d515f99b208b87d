"""fit at thread_limit(2): each epoch is measured in a forked process on the second core while the
next one trains, and ends exactly as the one-thread run: the same history, parameters, checkpoint,
early stop, schedule and callbacks (an epoch trained ahead is undone where the metrics change what
comes after them)."""
import numpy as np
import pytest

import tiefnet as tn
from tiefnet import backend
from tiefnet.checkpoint import read_npz
from tiefnet.errors import TrainingDiverged
from tiefnet.optim import ReduceOnPlateau
from tiefnet.train import fit


def _data(n=120, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 16)).astype(np.float32)
    labels = rng.integers(0, 4, n)
    x[np.arange(n), labels] += 1.0
    return x, labels


def _run(threads, tmp_path, *, epochs=5, eta=0.5, dropout=0.0, sgd=False, **options):
    rng = np.random.default_rng(0)
    layers = [tn.Dense(16, 12, rng=rng), tn.Sigmoid()]
    if dropout:
        layers.append(tn.Dropout(dropout, rng=np.random.default_rng(5)))
    net = tn.Sequential(*layers, tn.Dense(12, 4, rng=rng), tn.Softmax())
    seen = []
    callbacks = [lambda metrics: seen.append((metrics["epoch"], float(net.layers[0].params["W"].sum()))),
                 *options.pop("callbacks", [])]
    path = tmp_path / f"checkpoint-{threads}.npz"
    x, labels = _data()
    with backend.thread_limit(threads):
        history = fit(net, tn.LogLikelihood(), tn.SGD(eta) if sgd else tn.Adam(eta / 10), (x[:80], labels[:80]),
                      epochs=epochs, batch_size=10, validation=(x[80:100], labels[80:100]),
                      test=(x[100:], labels[100:]), rng=np.random.default_rng(1), classes=4, callbacks=callbacks, checkpoint=path, **options)
    epochs_seen = [{k: v for k, v in e.items() if k != "seconds"} for e in history.epochs]
    arrays, meta = read_npz(path)
    meta["history"] = [{k: v for k, v in e.items() if k != "seconds"} for e in meta["history"]]
    return epochs_seen, {k: v.copy() for k, v in net.arrays().items()}, seen, arrays, meta, history


def _same(one, two):
    assert one[0] == two[0]  # the metrics of every epoch
    for key in one[1]:
        np.testing.assert_array_equal(two[1][key], one[1][key])  # the final parameters, bit for bit
    assert one[2] == two[2]  # the callbacks saw each epoch's own model
    assert one[4] == two[4]  # the checkpoint's epoch, generators, history, schedule
    for key in one[3]:
        np.testing.assert_array_equal(two[3][key], one[3][key])
    assert one[5].stopped_by == two[5].stopped_by


@pytest.mark.parametrize("options", [{}, {"dropout": 0.5}, {"early_stopping": 1},
                                     {"schedule": "plateau"}, {"stop_at": 3}],
                         ids=["plain", "dropout", "early-stop", "schedule", "callback-stop"])
def test_two_threads_end_as_one_thread(tmp_path, options):
    options = dict(options)
    if options.get("schedule") == "plateau":
        options["schedule"] = None  # a fresh one per run, below
        make = lambda: ReduceOnPlateau(patience=1, factor=2.0)  # noqa: E731  (lowers eta on most epochs here)
    else:
        make = None
    stop_at = options.pop("stop_at", None)
    runs = []
    for threads in (1, 2):
        extra = dict(options)
        if make is not None:
            extra["schedule"] = make()
        if stop_at is not None:
            extra["callbacks"] = [lambda metrics: metrics["epoch"] >= stop_at]
        runs.append(_run(threads, tmp_path, epochs=6, **extra))
    _same(*runs)
    if make is not None:
        assert len({e["eta"] for e in runs[0][0]}) > 1  # the schedule did lower eta
    if stop_at is not None:
        assert len(runs[0][0]) == stop_at


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("make", [tn.SGD, tn.Momentum, tn.Adam], ids=["sgd", "momentum", "adam"])
def test_a_diverging_run_stops_at_the_same_epoch_and_keeps_the_same_checkpoint(tmp_path, make):
    """A callback raises eta after epoch 1 (epoch 2 was already trained ahead with the old one: it is
    trained again), epoch 2 diverges: the same error, the checkpoint of epoch 1 in both runs."""
    outcomes = []
    for threads in (1, 2):
        rng = np.random.default_rng(0)
        net = tn.Sequential(tn.Dense(2, 16, init="he", rng=rng), tn.ReLU(), tn.Dense(16, 2, rng=rng))
        optimizer = make(0.01)

        def blow_up(metrics):
            optimizer.eta = 1e6 if make is tn.SGD else 1e30

        x = np.random.default_rng(2).random((40, 2)).astype(np.float32)
        path = tmp_path / f"diverged-{threads}.npz"
        with backend.thread_limit(threads), pytest.raises(TrainingDiverged) as error:
            fit(net, tn.Quadratic(), optimizer, (x, x), epochs=4, rng=np.random.default_rng(0), classes=2,
                callbacks=[blow_up], checkpoint=path)
        arrays, meta = read_npz(path)
        outcomes.append((str(error.value), meta["epoch"], {k: v.copy() for k, v in arrays.items()}))
    assert outcomes[0][0] == outcomes[1][0] and "epoch 2" in outcomes[0][0]
    assert outcomes[0][1] == outcomes[1][1] == 1
    for key in outcomes[0][2]:
        np.testing.assert_array_equal(outcomes[1][2][key], outcomes[0][2][key])

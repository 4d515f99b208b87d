"""fit() (2.5, 2.7.3): it learns, it is reproducible, it monitors, stops early, reports divergence,
and a run resumed from its checkpoint ends exactly where the uninterrupted run ends."""

import math

import numpy as np
import pytest
from helpers import dev, host

from tiefnet.checkpoint import read_npz
from tiefnet.data import load_mnist
from tiefnet.errors import CheckpointError, ConfigError, TrainingDiverged
from tiefnet.nn import (
    L2, CrossEntropy, Dense, Dropout, LogLikelihood, Quadratic, ReLU, Sequential, Sigmoid, Softmax, Tanh,
)
from tiefnet.optim import SGD, Adam, Momentum, ReduceOnPlateau
from tiefnet.train import Data, History, as_data, evaluate, fit, predict, train_step


def blobs(n, seed):
    """Two Gaussian blobs in the plane, one per class; about 98% separable."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    x = np.array([[-1.5, -1.5], [1.5, 1.5]])[labels] + rng.standard_normal((n, 2))
    return x.astype(np.float32), labels


TRAIN, VALIDATION, TEST = blobs(400, 0), blobs(100, 1), blobs(100, 2)


def sigmoid_net(seed=0, hidden=8):
    rng = np.random.default_rng(seed)
    return Sequential(Dense(2, hidden, rng=rng), Sigmoid(), Dense(hidden, 2, rng=rng), Sigmoid())


def without_seconds(history: History):
    return [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in history.epochs]


@pytest.fixture(scope="module")
def mnist_small():
    splits = load_mnist()
    return splits.train.subset(2000), splits.validation.subset(1000)


# --- it learns --------------------------------------------------------------------------------------
def test_fit_learns_two_blobs():
    model = sigmoid_net()
    history = fit(model, CrossEntropy(), SGD(1.0), TRAIN, epochs=5, batch_size=10, validation=VALIDATION,
                  test=TEST, rng=np.random.default_rng(0), classes=2)
    assert len(history.epochs) == 5 and not history.stopped_early
    assert history.epochs[-1]["validation_accuracy"] > 0.9
    assert history.epochs[-1]["test_accuracy"] > 0.9
    assert history.epochs[-1]["train_cost"] < history.epochs[0]["train_cost"]
    assert history.best("validation_accuracy") == max(e["validation_accuracy"] for e in history.epochs)
    assert math.isnan(history.best("no_such_key"))
    labels = host(predict(model, dev(VALIDATION[0]))).argmax(axis=1)
    assert float((labels == VALIDATION[1]).mean()) == history.epochs[-1]["validation_accuracy"]


def test_fit_learns_mnist_subset(mnist_small):
    """The lecture's 784-30-10 sigmoid net, quadratic cost, eta = 3.0, m = 10, on 2,000 images."""
    train, validation = mnist_small
    model = Sequential(Dense(784, 30, rng=np.random.default_rng(0)), Sigmoid(),
                       Dense(30, 10, rng=np.random.default_rng(1)), Sigmoid())
    history = fit(model, Quadratic(), SGD(3.0), train, epochs=3, batch_size=10, validation=validation,
                  rng=np.random.default_rng(0))
    assert history.epochs[-1]["validation_accuracy"] > 0.6  # chance is 0.1


def test_online_learning_batch_size_1():
    model = sigmoid_net()
    history = fit(model, CrossEntropy(), SGD(0.1), blobs(200, 3), epochs=2, batch_size=1, validation=VALIDATION,
                  rng=np.random.default_rng(0), classes=2)
    assert history.epochs[-1]["validation_accuracy"] > 0.9


@pytest.mark.parametrize("batch_size", [1, 7, 10, 400, 1000])
def test_every_sample_is_used_once_per_epoch(batch_size):
    """The mini-batches are disjoint and cover the shuffled training set (the last may be short)."""
    seen = []

    class Recorder(Sigmoid):
        def forward(self, z, train=False):
            if train:
                seen.append(z.shape[0])
            return super().forward(z, train)

    model = Sequential(Dense(2, 2, rng=np.random.default_rng(0)), Recorder())
    fit(model, Quadratic(), SGD(0.1), TRAIN, epochs=1, batch_size=batch_size, rng=np.random.default_rng(0),
        classes=2, monitor_train=False)
    assert sum(seen) == 400 and max(seen) == min(batch_size, 400)


# --- reproducibility ------------------------------------------------------------------------------------
def run(seed, epochs=3, dropout=True):
    rng = np.random.default_rng(seed)
    layers = [Dense(2, 10, rng=rng), Tanh()]
    if dropout:
        layers.append(Dropout(0.3, rng=np.random.default_rng(seed + 1)))
    model = Sequential(*layers, Dense(10, 2, rng=rng), Softmax())
    history = fit(model, LogLikelihood(), SGD(0.5), TRAIN, epochs=epochs, batch_size=10, validation=VALIDATION,
                  rng=np.random.default_rng(seed + 2), classes=2)
    return model, history


def test_same_seed_identical_history_and_params():
    (a, history_a), (b, history_b) = run(7), run(7)
    assert without_seconds(history_a) == without_seconds(history_b)
    for name in a.params:
        np.testing.assert_array_equal(host(a.params[name]), host(b.params[name]))
    c, _ = run(8)
    assert not np.array_equal(host(a.params["0.W"]), host(c.params["0.W"]))


# --- monitoring, callbacks, early stopping, schedule --------------------------------------------------
def test_monitor_keys_and_ranges():
    history = fit(sigmoid_net(), CrossEntropy(), SGD(1.0), TRAIN, epochs=2, validation=VALIDATION, test=TEST,
                  rng=np.random.default_rng(0), classes=2)
    for number, epoch in enumerate(history.epochs, start=1):
        assert set(epoch) == {"epoch", "eta", "seconds", "train_cost", "train_accuracy", "validation_cost",
                              "validation_accuracy", "test_cost", "test_accuracy"}
        assert epoch["epoch"] == number and epoch["eta"] == 1.0
        for key in ("train_accuracy", "validation_accuracy", "test_accuracy"):
            assert 0.0 <= epoch[key] <= 1.0
        assert epoch["seconds"] > 0 and epoch["train_cost"] > 0


def test_monitor_train_false_and_no_held_out_data():
    history = fit(sigmoid_net(), CrossEntropy(), SGD(1.0), TRAIN, epochs=1, monitor_train=False,
                  rng=np.random.default_rng(0), classes=2)
    assert set(history.epochs[0]) == {"epoch", "eta", "seconds"}


def test_train_cost_includes_the_regularisation_term():
    model, loss, reg = sigmoid_net(), CrossEntropy(), L2(5.0)
    history = fit(model, loss, SGD(0.5, regularizer=reg), TRAIN, epochs=1, rng=np.random.default_rng(0), classes=2)
    cost_0, _ = evaluate(model, loss, as_data(TRAIN, 2))
    weights = [layer.params["W"] for layer in model.param_layers()]
    assert history.epochs[0]["train_cost"] == pytest.approx(cost_0 + reg.cost(weights, 400), rel=1e-9)


def test_callbacks_receive_each_epochs_metrics(tmp_path):
    received = []
    checkpoint = tmp_path / "run.npz"

    def callback(metrics):
        assert read_npz(checkpoint)[1]["epoch"] == metrics["epoch"]  # saved before the callback runs
        received.append(metrics)

    history = fit(sigmoid_net(), CrossEntropy(), SGD(1.0), TRAIN, epochs=3, validation=VALIDATION,
                  rng=np.random.default_rng(0), classes=2, callbacks=[callback, lambda m: None],
                  checkpoint=checkpoint)
    assert received == history.epochs and [m["epoch"] for m in received] == [1, 2, 3]


def test_a_callback_that_returns_true_stops_the_run(tmp_path):
    """A hyperparameter search prunes a trial from a callback: fit stops after that epoch."""
    def prune_after_two(metrics):
        return metrics["epoch"] >= 2

    history = fit(sigmoid_net(), CrossEntropy(), SGD(1.0), TRAIN, epochs=6, validation=VALIDATION,
                  rng=np.random.default_rng(0), classes=2, callbacks=[prune_after_two],
                  checkpoint=tmp_path / "run.npz")
    assert [e["epoch"] for e in history.epochs] == [1, 2]
    assert history.stopped_by == "prune_after_two" and not history.stopped_early
    assert read_npz(tmp_path / "run.npz")[1]["epoch"] == 2  # the stopped epoch is saved
    resumed = fit(sigmoid_net(), CrossEntropy(), SGD(1.0), TRAIN, epochs=6, validation=VALIDATION,
                  rng=np.random.default_rng(0), classes=2, checkpoint=tmp_path / "run.npz", resume=True)
    assert len(resumed.epochs) == 2 and resumed.stopped_by == "prune_after_two"  # a pruned run stays pruned


def test_train_step_is_one_step_of_any_model_and_cost(float64):
    """train_step = forward, backward_from the cost, clip, step: the same as writing them out."""
    x, y = dev(TRAIN[0][:10].astype(np.float64)), dev(np.eye(2)[TRAIN[1][:10]])
    by_hand, stepped = sigmoid_net(), sigmoid_net()
    hand_opt, step_opt = Adam(0.01).bind(by_hand, 10), Adam(0.01).bind(stepped, 10)
    for _ in range(3):
        by_hand.forward(x, True)
        by_hand.backward_from(CrossEntropy(), y)
        hand_opt.step()
        a = train_step(stepped, CrossEntropy(), step_opt, x, y)
    assert a.shape == (10, 2)
    for key, p in by_hand.params.items():
        np.testing.assert_array_equal(host(stepped.params[key]), host(p))


def test_early_stopping_stops_after_stale_epochs():
    """eta so small that nothing changes: validation accuracy never improves after epoch 1."""
    history = fit(sigmoid_net(), CrossEntropy(), SGD(1e-30), TRAIN, epochs=20, validation=VALIDATION,
                  rng=np.random.default_rng(0), classes=2, early_stopping=2)
    assert history.stopped_early
    assert len(history.epochs) == 3  # epoch 1 sets the best, epochs 2 and 3 are stale
    assert len({e["validation_accuracy"] for e in history.epochs}) == 1


def test_schedule_halves_eta_on_a_plateau():
    optimizer = SGD(1e-30)
    history = fit(sigmoid_net(), CrossEntropy(), optimizer, TRAIN, epochs=4, validation=VALIDATION,
                  rng=np.random.default_rng(0), classes=2, schedule=ReduceOnPlateau(patience=1))
    assert [e["eta"] for e in history.epochs] == [1e-30, 1e-30, 0.5e-30, 0.25e-30]
    assert optimizer.eta == 0.125e-30


# --- data and settings errors ---------------------------------------------------------------------------
def test_one_hot_targets_and_data_objects_work_like_labels():
    x, labels = TRAIN
    histories = []
    for train in (TRAIN, (x, np.eye(2)[labels]), as_data(TRAIN, 2)):
        histories.append(without_seconds(fit(sigmoid_net(), CrossEntropy(), SGD(1.0), train, epochs=2,
                                             rng=np.random.default_rng(0), classes=2)))
    assert histories[0] == histories[1] == histories[2]
    assert isinstance(as_data(TRAIN, 2), Data) and len(as_data(TRAIN, 2)) == 400


@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": -1}, "epochs=-1"),
    ({"epochs": 1, "batch_size": 0}, "batch_size=0"),
    ({"epochs": 1, "classes": 1}, r"labels must be in \[0, 1\)"),
])
def test_bad_settings_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        fit(sigmoid_net(), CrossEntropy(), SGD(1.0), TRAIN, **{"classes": 2, **kwargs})


def test_mismatched_lengths_are_a_config_error():
    with pytest.raises(ConfigError, match="400 inputs but 399 targets"):
        fit(sigmoid_net(), CrossEntropy(), SGD(1.0), (TRAIN[0], TRAIN[1][:399]), epochs=1, classes=2)


def test_zero_epochs_trains_nothing():
    model = sigmoid_net()
    before = {k: host(v).copy() for k, v in model.params.items()}
    history = fit(model, CrossEntropy(), SGD(1.0), TRAIN, epochs=0, classes=2)
    assert history.epochs == []
    for name, p in model.params.items():
        np.testing.assert_array_equal(host(p), before[name])


def test_progress_bar_smoke(capsys):
    fit(sigmoid_net(), CrossEntropy(), SGD(1.0), TRAIN, epochs=1, classes=2, rng=np.random.default_rng(0),
        progress=True)
    assert "training" in capsys.readouterr().err


# --- divergence ------------------------------------------------------------------------------------------
def relu_regression_net():
    rng = np.random.default_rng(0)
    return Sequential(Dense(2, 16, init="he", rng=rng), ReLU(), Dense(16, 2, rng=rng))  # linear output


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_huge_eta_raises_training_diverged():
    with pytest.raises(TrainingDiverged, match=r"epoch 1: the cost became NaN or infinite \(eta=1e\+06"):
        fit(relu_regression_net(), Quadratic(), SGD(1e6), TRAIN, epochs=3, rng=np.random.default_rng(0), classes=2)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_without_monitoring_checks_the_parameters():
    with pytest.raises(TrainingDiverged, match="epoch 1"):
        fit(relu_regression_net(), Quadratic(), SGD(1e6), TRAIN, epochs=3, rng=np.random.default_rng(0), classes=2,
            monitor_train=False)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_keeps_the_last_good_checkpoint(tmp_path):
    checkpoint = tmp_path / "run.npz"
    optimizer = SGD(0.01)

    def blow_up(metrics):  # after epoch 1: a learning rate no network survives
        optimizer.eta = 1e6

    model = relu_regression_net()
    with pytest.raises(TrainingDiverged, match="epoch 2: .*the checkpoint of epoch 1 is kept"):
        fit(model, Quadratic(), optimizer, TRAIN, epochs=5, rng=np.random.default_rng(0), classes=2,
            callbacks=[blow_up], checkpoint=checkpoint)
    assert not np.isfinite(host(model.params["2.W"])).all() or not np.isfinite(host(model.params["2.b"])).all()

    arrays, meta = read_npz(checkpoint)
    assert meta["epoch"] == 1 and len(meta["history"]) == 1
    assert math.isfinite(meta["history"][0]["train_cost"])
    assert all(np.isfinite(a).all() for a in arrays.values())

    fresh = relu_regression_net()  # the checkpoint loads into a fresh model: epoch 1's parameters
    history = fit(fresh, Quadratic(), SGD(0.01), TRAIN, epochs=1, rng=np.random.default_rng(0), classes=2,
                  checkpoint=checkpoint, resume=True)
    assert len(history.epochs) == 1
    for name, p in fresh.params.items():
        np.testing.assert_array_equal(host(p), arrays[f"param.{name}"])


# --- resume ------------------------------------------------------------------------------------------------
def resume_setup(kind, seed=0):
    """A fresh model, optimizer, schedule and shuffling rng, built the same way from one seed."""
    rng = np.random.default_rng(seed)
    dropout = kind != "adam"
    layers = [Dense(2, 12, rng=rng), Tanh()]
    if dropout:
        layers.append(Dropout(0.3, rng=np.random.default_rng(seed + 1)))
    if kind == "nested-dropout":
        layers = [Sequential(*layers)]
    model = Sequential(*layers, Dense(12, 2, rng=rng), Softmax())
    optimizer = {"sgd-dropout": lambda: SGD(0.5, regularizer=L2(1.0)),
                 "nested-dropout": lambda: SGD(0.5),
                 "momentum-dropout": lambda: Momentum(0.1, mu=0.8),
                 "adam": lambda: Adam(0.02, regularizer=L2(0.5))}[kind]()
    return model, optimizer, ReduceOnPlateau(patience=1), np.random.default_rng(seed + 2)


def train_for(kind, epochs, checkpoint, resume=False):
    model, optimizer, schedule, rng = resume_setup(kind)
    history = fit(model, LogLikelihood(), optimizer, TRAIN, epochs=epochs, batch_size=20, validation=VALIDATION,
                  test=TEST, rng=rng, classes=2, schedule=schedule, checkpoint=checkpoint, resume=resume)
    return model, optimizer, history


RESUME_CASES = [
    "sgd-dropout",
    "momentum-dropout",
    "adam",
    "nested-dropout",
]


@pytest.mark.parametrize("kind", RESUME_CASES)
def test_resume_matches_uninterrupted_run(tmp_path, kind):
    model_a, optimizer_a, history_a = train_for(kind, 4, tmp_path / "A.npz")

    train_for(kind, 2, tmp_path / "B.npz")  # interrupted after epoch 2
    assert read_npz(tmp_path / "B.npz")[1]["epoch"] == 2
    model_b, optimizer_b, history_b = train_for(kind, 4, tmp_path / "B.npz", resume=True)

    assert len(history_b.epochs) == 4
    assert without_seconds(history_b) == without_seconds(history_a)
    assert optimizer_b.eta == optimizer_a.eta
    for name in model_a.params:
        np.testing.assert_array_equal(host(model_b.params[name]), host(model_a.params[name]))
    arrays_a, meta_a = read_npz(tmp_path / "A.npz")
    arrays_b, meta_b = read_npz(tmp_path / "B.npz")
    assert sorted(arrays_a) == sorted(arrays_b) and meta_a["rng"] == meta_b["rng"]
    for name in arrays_a:
        np.testing.assert_array_equal(arrays_a[name], arrays_b[name])


def test_resume_with_a_finished_checkpoint_trains_nothing(tmp_path):
    model_a, _, history_a = train_for("sgd-dropout", 2, tmp_path / "A.npz")
    model_b, _, history_b = train_for("sgd-dropout", 2, tmp_path / "A.npz", resume=True)
    assert without_seconds(history_b) == without_seconds(history_a)
    for name in model_a.params:
        np.testing.assert_array_equal(host(model_b.params[name]), host(model_a.params[name]))


def test_resume_after_early_stopping_trains_nothing(tmp_path):
    def stagnant(resume):  # eta so small that validation accuracy never improves after epoch 1
        return fit(sigmoid_net(), CrossEntropy(), SGD(1e-30), TRAIN, epochs=20, validation=VALIDATION,
                   rng=np.random.default_rng(0), classes=2, early_stopping=2, checkpoint=tmp_path / "A.npz",
                   resume=resume)

    first = stagnant(resume=False)
    assert first.stopped_early and len(first.epochs) == 3
    again = stagnant(resume=True)
    assert len(again.epochs) == 3 and again.stopped_early


def test_resume_without_a_checkpoint_starts_fresh(tmp_path):
    _, _, history = train_for("adam", 1, tmp_path / "missing.npz", resume=True)
    assert [e["epoch"] for e in history.epochs] == [1]


def test_resume_with_another_optimizer_is_a_checkpoint_error(tmp_path):
    train_for("adam", 1, tmp_path / "A.npz")
    model, _, schedule, rng = resume_setup("adam")
    with pytest.raises(CheckpointError, match="written with optimizer 'adam', resuming with 'sgd'"):
        fit(model, LogLikelihood(), SGD(0.1), TRAIN, epochs=2, rng=rng, classes=2, checkpoint=tmp_path / "A.npz",
            resume=True)


def test_resume_with_another_architecture_is_a_checkpoint_error(tmp_path):
    train_for("adam", 1, tmp_path / "A.npz")
    with pytest.raises(CheckpointError, match="shape"):
        fit(sigmoid_net(hidden=5), LogLikelihood(), Adam(0.02), TRAIN, epochs=2, classes=2,
            checkpoint=tmp_path / "A.npz", resume=True)


def test_schedule_and_early_stopping_need_validation_data():
    from tiefnet.errors import ConfigError
    from tiefnet.optim import ReduceOnPlateau

    for kwargs in ({"schedule": ReduceOnPlateau(2)}, {"early_stopping": 3}):
        with pytest.raises(ConfigError, match="validation"):
            fit(sigmoid_net(), CrossEntropy(), SGD(0.5), TRAIN, epochs=1, **kwargs)

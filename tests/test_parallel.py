"""Data-parallel training steps (tiefnet.parallel): the parts' weighted gradients are the whole
mini-batch's, the parameters the workers read are the ones the update wrote, dropout draws what the
whole batch would, and layers that couple the samples of a batch are refused."""
import numpy as np
import pytest

import tiefnet as tn
from tiefnet import backend
from tiefnet.errors import ConfigError
from tiefnet.parallel import DataParallel, can_fork, splittable
from tiefnet.train import evaluate, fit, step_runner, train_step

pytestmark = pytest.mark.skipif(not can_fork(), reason="data parallelism forks CPU processes (Linux)")
from helpers import every_variant  # noqa: F401  (each test runs with every variant of tiefnet.plans forced)


def _cnn(seed=0, dropout=0.0, per_sample=False, bit_generator=np.random.PCG64):
    rng = np.random.default_rng(seed)
    layers = [tn.Reshape((1, 8, 8)), tn.Conv2d(1, 3, 3, rng=rng), tn.MaxPool2d(2), tn.ReLU(), tn.Flatten(),
              tn.Dense(27, 12, rng=rng), tn.ReLU()]
    if dropout:
        layers.append(tn.Dropout(dropout, per_sample=per_sample,
                                 rng=np.random.Generator(bit_generator(seed + 7))))
    layers += [tn.Dense(12, 4, rng=rng), tn.Softmax()]
    return tn.Sequential(*layers)


def _batch(n, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 64))
    y = np.eye(4)[rng.integers(0, 4, n)]
    return x, y


@pytest.mark.parametrize("n", [10, 7, 3])
@pytest.mark.parametrize("dropout, per_sample, bit_generator", [
    (0.0, False, np.random.PCG64), (0.5, False, np.random.PCG64), (0.5, True, np.random.PCG64),
    (0.5, True, np.random.MT19937), (0.5, False, np.random.Philox)])
def test_steps_in_parts_equal_one_process_steps(n, dropout, per_sample, bit_generator):
    """Three SGD steps on two processes give the parameters of three steps in one, to rounding,
    whatever bit generator the dropout layer draws from."""
    with backend.default_dtype(np.float64):
        one, two = (_cnn(dropout=dropout, per_sample=per_sample, bit_generator=bit_generator) for _ in range(2))
        loss = tn.LogLikelihood()
        opt_one, opt_two = tn.Momentum(0.1).bind(one, 100), tn.Momentum(0.1).bind(two, 100)
        batches = [_batch(n, seed) for seed in range(3)]
        for x, y in batches:
            train_step(one, loss, opt_one, x, y, clip=1.0)
        with DataParallel(two, loss, opt_two, parts=2) as engine:
            for x, y in batches:
                engine.step(x, y, clip=1.0)
            assert len(engine._workers) == (1 if n >= 4 else 0)  # a batch under 2 x min_part stays here
        for p, q in zip(one.parameters(), two.parameters()):
            np.testing.assert_allclose(q.value, p.value, rtol=1e-12, atol=1e-12)
        for a, b in zip(one.random_layers(), two.random_layers()):
            assert str(a.rng.bit_generator.state) == str(b.rng.bit_generator.state)  # the generators stayed in step


def test_a_larger_batch_restarts_the_workers_and_a_failure_is_reported():
    net, loss = _cnn(), tn.LogLikelihood()
    opt = tn.SGD(0.1).bind(net, 100)
    with DataParallel(net, loss, opt, parts=2) as engine:
        engine.step(*_batch(6))
        first = engine._workers[0][0].pid
        engine.step(*_batch(20))  # the inbox of 3 rows is too small for 10
        assert engine._workers[0][0].pid != first
        x, y = _batch(20)
        with pytest.raises(Exception, match="ShapeError|expected"):
            engine.step(x[:, :60], y)  # a bad input fails here and in the worker alike
        engine.step(x, y)  # and the engine still works
    assert engine._workers == []


def test_models_that_couple_samples_train_in_one_process():
    bn = tn.Sequential(tn.Dense(4, 3), tn.BatchNorm1d(3), tn.Dense(3, 2), tn.Softmax())
    rnn = tn.Sequential(tn.LSTM(2, 3, stateful=True))
    assert not splittable(bn) and not splittable(rnn) and splittable(tn.Sequential(tn.LSTM(2, 3)))
    with pytest.raises(ConfigError, match="couples the samples"):
        DataParallel(bn, tn.LogLikelihood(), tn.SGD(0.1).bind(bn, 1))
    with backend.thread_limit(2):
        assert type(step_runner(bn, tn.LogLikelihood(), tn.SGD(0.1).bind(bn, 1))).__name__ == "_OneProcess"
        runner = step_runner(_cnn(), tn.LogLikelihood(), tn.SGD(0.1).bind(_cnn(), 1))
        assert type(runner).__name__ == "_Processes"
        runner.close()


def test_fit_without_evaluation_splits_its_steps_over_processes(monkeypatch, every_variant):
    """fit at thread_limit(2) with nothing to measure per epoch cuts each mini-batch of 40 in two
    processes (also with the self-measurement off: from 32 samples on; forced to the other way, it
    stays in one): the parameters of the one-process run, to float32 rounding."""
    rng = np.random.default_rng(3)
    x = rng.random((200, 64)).astype(np.float32)
    labels = rng.integers(0, 4, 200)
    import tiefnet.parallel as parallel

    forks = []
    real_fork = parallel.fork
    monkeypatch.setattr(parallel, "fork", lambda *args: forks.append(args[0].__name__) or real_fork(*args))
    finals = []
    for threads in (1, 2):
        net, loss = _cnn(), tn.LogLikelihood()
        with backend.thread_limit(threads):
            fit(net, loss, tn.SGD(0.1), (x, labels), epochs=2, batch_size=40, rng=np.random.default_rng(0),
                classes=4, monitor_train=False)
        finals.append([p.value.copy() for p in net.parameters()])
        splits = threads == 2 and every_variant == "force:0"  # "parts", the default from 32 samples on
        assert forks == (["_work"] * len(forks) if splits else []) and (forks or not splits)
    for one, two in zip(*finals):
        np.testing.assert_allclose(two, one, rtol=1e-4, atol=1e-5)


def test_with_three_threads_each_epoch_is_measured_on_its_own_parameters():
    """--threads 3: mini-batches of 40 in two processes on shared parameters, each epoch measured in a
    third, forked while the next epoch trains: what it measured is epoch j's model, not one that
    moved on (checked against an evaluation of epoch j's model, which the callbacks see)."""
    rng = np.random.default_rng(3)
    x = rng.random((240, 64)).astype(np.float32)
    labels = rng.integers(0, 4, 240)
    net, loss = _cnn(), tn.LogLikelihood()
    seen = []

    def check(metrics):
        cost, accuracy = evaluate(net, loss, tn.train.as_data((x[200:], labels[200:]), 4))
        seen.append((metrics["validation_cost"], cost, metrics["validation_accuracy"], accuracy))

    with backend.thread_limit(3):
        fit(net, loss, tn.SGD(0.2), (x[:200], labels[:200]), epochs=4, batch_size=40,
            validation=(x[200:], labels[200:]), rng=np.random.default_rng(0), classes=4, callbacks=[check])
    assert len(seen) == 4
    for recorded, recomputed, accuracy, reaccuracy in seen:
        assert recorded == pytest.approx(recomputed, rel=1e-6) and accuracy == reaccuracy

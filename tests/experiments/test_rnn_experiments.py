"""The chapter-4 experiments: 4.1 "hallo" and 4.4 vanishing gradients (RNN vs LSTM)."""
from __future__ import annotations

import json

import pytest

from tiefnet.experiments import EXPERIMENTS, hallo, vanishing_gradients


@pytest.mark.parametrize("module, keys", [
    (hallo, ["probabilities", "continuation", "steps", "final_loss", "loss"]),
    (vanishing_gradients, ["runs", "distance_from_end", "lstm_over_rnn_far_end"]),
])
def test_quick_run_writes_figure_and_numbers(module, keys, tmp_path, capsys):
    name = module.__name__.rsplit(".", 1)[1]
    result = module.run(tmp_path, quick=True, progress=False)
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / f"{name}.json").read_text())
    assert saved == json.loads(json.dumps(result))
    for key in ["settings", *keys]:
        assert key in saved, key
    assert capsys.readouterr().out.strip()
    assert EXPERIMENTS[name.replace("_", "-")] is module


def test_hallo_continues_h_into_hallo(tmp_path):
    result = hallo.run(tmp_path, progress=False)  # the real default: a few dozen Adam steps
    assert result["continuation"] == "hallo"
    assert result["final_loss"] < 1.0 < result["loss"][0]
    rows = result["probabilities"]
    assert [row["input"] for row in rows] == list("hall")
    for row in rows:
        assert sum(row[v] for v in "halo") == pytest.approx(1.0)
        assert max("halo", key=lambda v: row[v]) == row["target"]
    # the same input "l" gives different outputs: the hidden state tells the two apart
    assert rows[2]["l"] > rows[2]["o"] and rows[3]["o"] > rows[3]["l"]


def test_hallo_epochs_fix_the_number_of_steps(tmp_path):
    result = hallo.run(tmp_path, epochs=5, progress=False)
    assert result["steps"] == 5 and len(result["loss"]) == 6


def test_rnn_gradient_vanishes_and_the_lstm_keeps_more(tmp_path):
    result = vanishing_gradients.run(tmp_path, quick=True, progress=False)
    T = result["settings"]["T"]
    runs = result["runs"]
    for r in runs.values():
        assert len(r["norm"]) == T + 1
    rnn = runs["RNN"]["norm"]
    assert rnn[0] < 1e-2 * rnn[-1]  # far end vs the last step
    assert runs["RNN"]["ratio_far_end"] == pytest.approx(rnn[0] / rnn[-1])
    for label in ("LSTM (forget bias 1, default)", "LSTM (forget bias 3)"):
        assert runs[label]["norm"][0] > 10 * rnn[0]
    assert runs["LSTM (forget bias 3)"]["ratio_far_end"] > 1e-2


def test_gradient_norms_match_the_full_sequence_backward():
    """At t = 0 the suffix is the whole sequence: dC/dh^0 is the ordinary BPTT's dstate."""
    import numpy

    from tiefnet import backend
    from tiefnet.nn import LSTM, RNN

    with backend.default_dtype(numpy.float64):
        rng = numpy.random.default_rng(3)
        x = backend.asarray(rng.standard_normal((2, 6, 3)))
        v = backend.asarray(rng.standard_normal((2, 4)))
        for cls in (RNN, LSTM):
            layer = cls(3, 4, rng=numpy.random.default_rng(4), return_sequences=False)
            norms = vanishing_gradients.gradient_norms(layer, x, v)
            layer.forward(x, train=True)
            layer.backward(v)
            expected = numpy.linalg.norm(backend.to_numpy(layer.dstate[0]), axis=1).mean()
            assert norms[0] == pytest.approx(expected)
            assert len(norms) == 7

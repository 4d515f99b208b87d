"""Ensembles by majority vote (vision/ensemble.py): the vote worked by hand, its tie-break, errors,
and the accuracies of members and vote on a small data set."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import dev, host

from tiefnet.errors import ConfigError
from tiefnet.nn import Dense, LogLikelihood, Sequential, Sigmoid, Softmax
from tiefnet.train import as_data, evaluate
from tiefnet.vision.ensemble import evaluate_ensemble, majority_vote, probabilities, ties


def test_three_voters_by_hand():
    #                 row 0: 2 votes for digit 1     row 1: all vote 0     row 2: a three-way tie
    voter_a = [[0.1, 0.7, 0.2], [0.6, 0.3, 0.1], [0.5, 0.3, 0.2]]
    voter_b = [[0.2, 0.5, 0.3], [0.5, 0.4, 0.1], [0.1, 0.6, 0.3]]
    voter_c = [[0.1, 0.1, 0.8], [0.4, 0.3, 0.3], [0.1, 0.2, 0.7]]
    labels = majority_vote([dev(np.array(v, dtype=np.float32)) for v in (voter_a, voter_b, voter_c)])
    # row 2: votes 0, 1, 2 once each; summed probabilities 0.7, 1.1, 1.2: digit 2
    assert host(labels).tolist() == [1, 0, 2]
    assert ties([dev(np.array(v)) for v in (voter_a, voter_b, voter_c)]) == 1


def test_votes_beat_probabilities():
    confident = [[0.0, 1.0, 0.0]]  # one voter sure of digit 1
    lukewarm = [[0.4, 0.35, 0.25]]  # two voters lean to digit 0
    labels = majority_vote([dev(np.array(v)) for v in (confident, lukewarm, lukewarm)])
    assert host(labels).tolist() == [0]  # 2 votes to 1, although digit 1 has the larger sum (1.7 vs 0.8)


def test_a_tie_between_two_voters_goes_to_the_larger_normalised_sum():
    # sigmoid outputs: voter a picks 0 (0.9) but almost as much 2 (0.8); voter b picks 2 (0.1 of 0.1).
    # Raw sums tie at 0.9; normalised to distributions: digit 0 gets 0.53, digit 2 gets 0.47 + 1.0.
    a, b = [[0.9, 0.0, 0.8]], [[0.0, 0.0, 0.1]]
    assert host(majority_vote([dev(np.array(a)), dev(np.array(b))])).tolist() == [2]
    # and an exact tie of the sums goes to the smaller digit
    assert host(majority_vote([dev(np.array([[0.6, 0.4]])), dev(np.array([[0.4, 0.6]]))])).tolist() == [0]


def test_one_voter_is_its_own_argmax():
    outputs = np.random.default_rng(0).random((50, 10))
    np.testing.assert_array_equal(host(majority_vote([dev(outputs)])), outputs.argmax(axis=1))


@pytest.mark.parametrize("outputs, fragment", [
    ([], "no members"),
    ([np.zeros((4, 10)), np.zeros((5, 10))], "same (N, K) shape"),
    ([np.zeros(10)], "same (N, K) shape"),
])
def test_vote_errors(outputs, fragment):
    with pytest.raises(ConfigError) as error:
        majority_vote([dev(o) for o in outputs])
    assert fragment in str(error.value)


def test_members_and_vote_on_data():
    rng = np.random.default_rng(0)
    x = rng.random((60, 784)).astype(np.float32)
    labels = rng.integers(0, 10, 60)
    members = [Sequential(Dense(784, 10, rng=np.random.default_rng(seed)), Softmax()) for seed in range(2)]
    members.append(Sequential(Dense(784, 10, rng=np.random.default_rng(2)), Sigmoid()))
    result = evaluate_ensemble(members, (x, labels))
    assert result["images"] == 60 and len(result["member_accuracy"]) == 3
    for model, accuracy in zip(members[:2], result["member_accuracy"]):
        assert accuracy == evaluate(model, LogLikelihood(), as_data((x, labels), 10))[1]
    outputs = [probabilities(m, dev(x)) for m in members]
    np.testing.assert_allclose(host(outputs[2]).sum(axis=1), 1.0, rtol=1e-5)  # sigmoid rows normalised
    assert result["vote_accuracy"] == float((host(majority_vote(outputs)) == labels).mean())
    same = evaluate_ensemble([members[0]] * 3, (x, labels))  # identical members: the vote is the member
    assert same["vote_accuracy"] == same["member_accuracy"][0] and same["ties"] == 0

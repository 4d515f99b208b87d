"""tiefnet mnist --digits: the lecture's reduced problem (2.7.3), only some digits in every split."""
import numpy as np
import pytest

from tiefnet.errors import ConfigError
from tiefnet.vision.mnist import Config, prepare_data


def test_only_the_digits_asked_for():
    train, validation, test = prepare_data(Config(digits="0,1", train_size=1000))
    for data in (train, validation, test):
        assert set(np.unique(data.y)) == {0, 1}
    first = prepare_data(Config(train_size=1000))[0]
    assert len(train) == int(np.isin(first.y, [0, 1]).sum())  # those among the first --train-size
    assert len(validation) == 2055 and len(test) == 2115  # every 0 and 1 of the 10,000 each


@pytest.mark.parametrize("digits, fragment", [("0,0", "distinct"), ("a", "does not parse"), ("10", "does not parse"),
                                              ("0,,1", "does not parse")])
def test_bad_digits(digits, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Config(digits=digits)


def test_a_batch_larger_than_the_reduced_set_is_refused():
    with pytest.raises(ConfigError, match="digits 0"):
        prepare_data(Config(digits="0", train_size=100, batch_size=50))

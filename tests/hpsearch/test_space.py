"""The search space (tiefnet.hpsearch.space): the command-line strings and the TOML file, typed to the
trainer's Config, and a clear error for each bad input."""
import pytest

from tiefnet.errors import ConfigError
from tiefnet.hpsearch.space import Param, build_space, parse_fixed, parse_param
from tiefnet.text.charrnn import Config as CharConfig
from tiefnet.vision.mnist import Config


class FakeTrial:
    """The suggest_* calls of an Optuna trial, answering the lower bound (or the last choice)."""

    def suggest_float(self, name, low, high, log=False):
        return low

    def suggest_int(self, name, low, high, step=1, log=False):
        return low

    def suggest_categorical(self, name, choices):
        return choices[-1]


def test_each_kind_parses():
    assert parse_param("eta=log:0.01..10", Config) == Param("eta", "log", 0.01, 10.0)
    assert parse_param("dropout=float:0..0.5", Config) == Param("dropout", "float", 0.0, 0.5)
    assert parse_param("hidden=int:10..300:10", Config) == Param("hidden", "int", 10, 300, 10)
    assert parse_param("batch-size=logint:1..100", Config) == Param("batch_size", "logint", 1, 100)
    assert parse_param("cost=choice:quadratic,cross-entropy", Config).choices == ("quadratic", "cross-entropy")
    assert parse_param("epochs=choice:5,10", Config).choices == (5, 10)  # typed as the int setting
    assert parse_param("lmbda=log:1e-3..10", Config).low == 0.001


def test_values_get_the_settings_types():
    space = build_space(Config, ["hidden=int:10..300", "eta=log:0.5..5", "cost=choice:quadratic,cross-entropy"],
                        ["epochs=3", "lmbda=1", "verify=false"])
    settings = space.suggest(FakeTrial(), Config)
    assert settings == {"epochs": 3, "lmbda": 1.0, "verify": False, "hidden": "10", "eta": 0.5,
                        "cost": "cross-entropy"}
    Config(**settings)  # accepted as it is
    assert isinstance(settings["lmbda"], float)


def test_text_round_trips_exactly():
    for text in ("eta=log:0.0123456789..10", "hidden=int:10..300:10", "cost=choice:quadratic,cross-entropy",
                 "dropout=float:0..0.5"):
        param = parse_param(text, Config)
        assert parse_param(param.text(), Config) == param


@pytest.mark.parametrize("text, fragment", [
    ("eta=log:-1..10", "LOW > 0"),
    ("eta=log:10..1", "LOW must be smaller"),
    ("eta=lug:1..10", "KIND one of"),
    ("eta", "NAME=KIND:RANGE"),
    ("eta=log:1", "LOW..HIGH"),
    ("eta=log:a..10", "'a' is not a number"),
    ("eta=log:1..inf", "not a finite number"),
    ("etaa=log:1..10", "'etaa' is not a setting"),
    ("hidden=int:1.5..10", "whole-number bounds"),
    ("eta=log:1..10:2", "only int:LOW..HIGH:STEP"),
    ("hidden=int:1..10:20", "step"),
    ("cost=choice:", "none of them empty"),
    ("cost=choice:a,a", "distinct"),
    ("epochs=choice:1,x", "'x' is not a number"),
    ("epochs=choice:1,2.5", "not a whole number"),
])
def test_bad_strings_are_one_clear_error(text, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(".", r"\.").replace("+", r"\+")):
        build_space(Config, [text])


def test_the_config_checks_every_bound_and_choice():
    with pytest.raises(ConfigError, match="hidden=0 is refused"):
        build_space(Config, ["hidden=int:0..10"])
    with pytest.raises(ConfigError, match="cost='foo' is refused"):
        build_space(Config, ["cost=choice:quadratic,foo"])
    with pytest.raises(ConfigError, match="--fixed cost=foo"):  # the fixed setting is named, not a range
        build_space(Config, ["eta=log:1..10"], ["cost=foo"])


def test_space_checks():
    with pytest.raises(ConfigError, match="empty"):
        build_space(Config, [], ["epochs=3"])
    with pytest.raises(ConfigError, match="both searched"):
        build_space(Config, ["eta=log:1..10"], ["eta=3"])
    with pytest.raises(ConfigError, match="set by the search itself"):
        build_space(Config, ["eta=log:1..10"], ["threads=2"], not_searched=("threads",))
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        parse_fixed("epochs", Config)
    with pytest.raises(ConfigError, match="not true or false"):
        parse_fixed("verify=maybe", Config)


def test_other_trainers_have_their_own_settings():
    space = build_space(CharConfig, ["eta=log:1e-4..1e-2", "hidden=int:16..64"], ["steps=10"])
    assert [p.name for p in space.params] == ["eta", "hidden"]
    with pytest.raises(ConfigError, match="'lmbda' is not a setting"):
        build_space(CharConfig, ["lmbda=log:1..10"])


def test_toml_file(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('[space]\neta = "log:0.01..10"\ncost = ["quadratic", "cross-entropy"]\n'
                    '[fixed]\nepochs = 3\nverify = false\n')
    space = build_space(Config, ["hidden=int:5..20"], ["train_size=500"], space_file=path)
    assert [p.name for p in space.params] == ["eta", "cost", "hidden"]
    assert space.fixed == {"epochs": 3, "verify": False, "train_size": 500}
    overridden = build_space(Config, ["eta=log:1..2"], space_file=path)  # the command line wins
    assert overridden.params[0] == Param("eta", "log", 1.0, 2.0)


@pytest.mark.parametrize("content, fragment", [
    ("x = [", "not valid TOML"),
    ("[space]\neta = 3\n", "is a string like"),
    ("[other]\na = 1\n", "only the tables"),
    ("space = 3\n", "only the tables"),
    ("[space]\neta = \"log:1..10\"\n[fixed]\nepochs = [1]\n", "single value"),
    ("[space]\netaa = \"log:1..10\"\n", "'etaa' is not a setting"),
    (b"\xff\xfe[space]", "not UTF-8"),
])
def test_bad_files_are_one_clear_error(tmp_path, content, fragment):
    path = tmp_path / "bad.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ConfigError, match=fragment):
        build_space(Config, [], space_file=path)


def test_missing_and_huge_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        build_space(Config, [], space_file=tmp_path / "none.toml")
    huge = tmp_path / "huge.toml"
    huge.write_text("# " + "x" * 1_000_001)
    with pytest.raises(ConfigError, match="larger than"):
        build_space(Config, [], space_file=huge)


def test_choices_that_hold_commas(tmp_path):
    """mnist's hidden layers are "100,30": such choices are separated by "|", in a file a list."""
    param = parse_param("hidden=choice:100,30|50", Config)
    assert param.choices == ("100,30", "50")
    assert parse_param(param.text(), Config) == param  # the text round-trips
    path = tmp_path / "space.toml"
    path.write_text('[space]\nhidden = ["100,30", "50"]\n')
    assert build_space(Config, space_file=path).params == (param,)
    path.write_text('[space]\nhidden = ["10|20", "5"]\n')
    with pytest.raises(ConfigError, match="cannot hold"):
        build_space(Config, space_file=path)

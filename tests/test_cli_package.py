"""The tiefnet.cli package: every command's --help, options built from the applications' Config
dataclasses, the --resume merge, and imports that flow one way (each module imports on its own)."""
from __future__ import annotations

import argparse
import ast
import importlib
import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

import tiefnet.cli
from tiefnet.cli import COMMANDS, build_parser, main
from tiefnet.cli.common import add_config_options, config_from, option
from tiefnet.rl.dqn import DQNConfig
from tiefnet.rl.qlearning_run import Config as QConfig
from tiefnet.text.charrnn import Config as CharConfig
from tiefnet.vision.mnist import Config as MnistConfig

CLI = Path(tiefnet.cli.__file__).parent
HELP = [[], ["mnist"], ["predict"], ["ensemble"], ["experiment"], ["charrnn"], ["charrnn", "train"],
        ["charrnn", "sample"], ["gridworld"], ["qlearn"], ["dqn"], ["dqn", "train"], ["dqn", "play"]]
# (command, its Config, the fields that are not options: positionals, or --no-verify instead of --verify)
CONFIGS = [(["mnist"], MnistConfig, {"verify"}), (["charrnn", "train"], CharConfig, {"text"}),
           (["qlearn"], QConfig, {"env"}), (["dqn", "train"], DQNConfig, {"env"})]


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    return build_parser([importlib.import_module(f"tiefnet.cli.{name}") for name in COMMANDS])


def subparser(parser: argparse.ArgumentParser, path: list[str]) -> argparse.ArgumentParser:
    for name in path:
        [actions] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = actions.choices[name]
    return parser


@pytest.mark.parametrize("command", HELP, ids=lambda c: " ".join(c) or "tiefnet")
def test_every_help_works(command, capsys):
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: tiefnet" + "".join(f" {c}" for c in command))


@pytest.mark.parametrize("command, config_class, not_options", CONFIGS, ids=lambda c: str(c))
def test_options_match_the_config_fields(parser, command, config_class, not_options):
    p = subparser(parser, command)
    options = {s for a in p._actions for s in a.option_strings}
    for f in fields(config_class):
        assert (option(f.name) in options) == (f.name not in not_options), f.name
    # no option given: the Config's own defaults
    assert config_from(p.parse_args([]), config_class) == config_class()


def test_a_bool_field_is_a_pair_of_options():
    p = argparse.ArgumentParser()
    add_config_options(p, QConfig)
    assert p.parse_args(["--no-exploring-starts"]).exploring_starts is False
    assert p.parse_args([]).exploring_starts is True


def test_resume_takes_the_saved_settings_for_the_options_not_given(parser, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"eta": 2.5, "epochs": 1, "hidden": "20", "unknown": 1}))
    args = parser.parse_args(["mnist", "--resume", "--out", str(tmp_path), "--epochs", "3"])
    config = config_from(args, MnistConfig)
    assert (config.eta, config.epochs, config.hidden, config.cost) == (2.5, 3, "20", "quadratic")


def test_shorthand_dqn_env():
    from tiefnet.cli.rl import shorthand

    assert shorthand(["dqn", "CartPole-v1", "--steps", "5"]) == ["dqn", "train", "CartPole-v1", "--steps", "5"]
    assert shorthand(["dqn", "play", "--model", "x"]) == ["dqn", "play", "--model", "x"]


def command_modules() -> list[str]:
    return sorted(p.stem for p in CLI.glob("*.py") if p.stem not in ("__init__", "__main__", "common"))


def test_every_command_module_is_listed():
    assert sorted(COMMANDS) == command_modules()


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return {n for n in names if n.startswith("tiefnet.cli")}


@pytest.mark.parametrize("module", ["common", *command_modules()])
def test_imports_flow_one_way(module):
    """Command modules import common, never the package's __init__ nor each other; common no command module."""
    imported = imported_modules(CLI / f"{module}.py")
    others = {n for n in imported if n != "tiefnet.cli.common" and not n.startswith("tiefnet.cli.common.")}
    assert not (imported if module == "common" else others)


@pytest.mark.parametrize("module", ["tiefnet.cli", "tiefnet.cli.common",
                                    *(f"tiefnet.cli.{m}" for m in command_modules())])
def test_each_module_imports_on_its_own(module):
    result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_python_dash_m():
    result = subprocess.run([sys.executable, "-m", "tiefnet.cli", "gridworld", "--json"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["method"] == "value"

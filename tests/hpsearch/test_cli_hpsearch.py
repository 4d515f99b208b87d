"""``tiefnet hpsearch`` on the command line: the report (table, best command, files, figures), resume,
and one clear error line for each bad input."""
import json
import shlex

import pytest

from tiefnet.cli import COMMANDS, build_parser, main

TINY = ["--fixed", "epochs=2", "train_size=300", "cost=cross-entropy", "--startup", "3", "--warmup", "1"]
SPACE = ["--space", "eta=log:0.05..10", "hidden=int:5..20"]


def one_line_error(capsys, code, *fragments):
    captured = capsys.readouterr()
    assert code == 1, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tiefnet: error: "), captured.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_a_search_reports_its_trials_and_the_best_command(tmp_path, capsys):
    out = tmp_path / "search"
    assert main(["hpsearch", *SPACE, *TINY, "--trials", "6", "--seed", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("\ntrial ") >= 6 and "train it again with:" in printed
    for name in ("search.json", "study.db", "trials.csv", "best.json", "history.png", "params.png",
                 "importances.png"):
        assert (out / name).is_file(), name
    best = json.loads((out / "best.json").read_text())
    assert best["trials"] == 6 and best["complete"] + best["pruned"] == 6
    assert best["epochs"] == sum(int(line.split(",")[3] or 0) for line in (out / "trials.csv").read_text()
                                 .splitlines()[1:])
    command = best["command"]
    assert command in printed and command.startswith("tiefnet mnist ")
    args = build_parser([__import__(f"tiefnet.cli.{m}", fromlist=["x"]) for m in COMMANDS]).parse_args(
        shlex.split(command)[1:])  # a command the CLI takes as it is
    assert args.eta == best["settings"]["eta"] and args.hidden == best["settings"]["hidden"]
    assert args.epochs == 2 and args.cost == "cross-entropy"
    trial = json.loads((out / "trials" / f"{best['best_trial']:05d}" / "config.json").read_text())
    assert trial["eta"] == best["settings"]["eta"]  # exactly the trained settings


def test_resume_continues_the_study(tmp_path, capsys):
    out = tmp_path / "search"
    assert main(["hpsearch", *SPACE, *TINY, "--trials", "3", "--seed", "2", "--out", str(out)]) == 0
    assert main(["hpsearch", *SPACE, *TINY, "--trials", "3", "--out", str(out)]) == 1  # the folder holds a search
    capsys.readouterr()
    assert main(["hpsearch", "--resume", "--trials", "5", "--out", str(out)]) == 0
    assert json.loads((out / "best.json").read_text())["trials"] == 5
    assert main(["hpsearch", "--resume", "--space", "eta=log:1..2", "--out", str(out)]) == 1
    one_line_error(capsys, 1, "cannot change")
    assert main(["hpsearch", *SPACE, *TINY, "--trials", "2", "--overwrite", "--out", str(out)]) == 0
    assert json.loads((out / "best.json").read_text())["trials"] == 2  # a new study


@pytest.mark.parametrize("argv, fragments", [
    (["--space", "eta=log:-1..10"], ["LOW > 0"]),
    (["--space", "etaa=log:1..10"], ["'etaa' is not a setting"]),
    (["--space", "eta=log:1..10", "--fixed", "nope=1"], ["'nope' is not a setting"]),
    (["--space", "eta=log:1..10", "--fixed", "cost=foo"], ["--fixed cost=foo"]),
    (["--fixed", "epochs=3"], ["search space is empty"]),
    (["--space", "eta=log:1..10", "--storage", "postgresql://u:secret@127.0.0.1:1/db"],
     ["cannot open the study's database", "u:***@127.0.0.1:1"]),
    (["--space", "eta=log:1..10", "--storage", "sqlite:////nonexistent/folder/x.db"], ["cannot open"]),
    (["--space", "eta=log:1..10", "--storage", "redis://host"], ["give 'memory', a sqlite"]),
    (["--space", "eta=log:1..10", "--trials", "-1"], ["--trials -1"]),
    (["--space", "eta=log:1..10", "--threads", "0"], ["--threads 0"]),
    (["--space", "eta=log:1..10", "--fixed", "threads=2"], ["set by the search itself"]),
    (["--strategy", "lecture", "--trainer", "charrnn"], ["tunes tiefnet mnist only"]),
    (["--strategy", "lecture", "--space", "eta=log:1..10"], ["give --fixed, not --space"]),
    (["--strategy", "lecture", "--fixed", "eta=3"], ["chooses eta itself"]),
    (["--resume"], ["holds no search.json"]),
])
def test_bad_input_is_one_clear_line(tmp_path, capsys, argv, fragments):
    out = tmp_path / "out"
    code = main(["hpsearch", *argv, "--out", str(out)])
    line = one_line_error(capsys, code, *fragments)
    assert "secret" not in line
    assert not (out / "search.json").exists()


def test_bad_space_file_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "space.toml"
    bad.write_text("[space\n")
    one_line_error(capsys, main(["hpsearch", "--space-file", str(bad), "--out", str(tmp_path / "o")]),
                   "not valid TOML")


def test_unknown_options_are_usage_errors(capsys):
    assert main(["hpsearch", "--bogus", "1"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    assert main(["hpsearch", "--trainer", "nothing"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_help_names_the_strategies_and_the_dashboard(capsys):
    with pytest.raises(SystemExit):
        build_parser([__import__(f"tiefnet.cli.{m}", fromlist=["x"]) for m in COMMANDS]).parse_args(
            ["hpsearch", "--help"])
    text = capsys.readouterr().out
    for fragment in ("--strategy", "lecture", "postgresql://", "optuna-dashboard", "log:0.01..10"):
        assert fragment in text


@pytest.mark.parametrize("saved, fragment", [
    ({"trainer": "mnist", "trials": 3, "space": ["eta=log:1..2"], "fixed": [], "study": 5}, "study=5"),
    ({"trainer": "mnist", "trials": "3", "space": ["eta=log:1..2"], "fixed": []}, "trials='3'"),
    ({"trainer": "mnist", "trials": 3, "space": [1], "fixed": []}, "space=[1]"),
    ({"trainer": "mnist", "trials": 3, "space": ["eta=log:1..2"], "fixed": [], "timeout": "x"}, "timeout='x'"),
    ({"trainer": "mnist", "trials": 3, "space": ["eta=log:1..2"], "fixed": [],
      "storage": "sqlite:////tmp/elsewhere.db"}, "give --storage again"),
    ([1, 2], "not a JSON object"),
])
def test_a_saved_search_is_checked_before_it_is_used(tmp_path, capsys, saved, fragment):
    """search.json may come from someone else: each setting of its kind, and no database it names opened."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "search.json").write_text(json.dumps(saved))
    one_line_error(capsys, main(["hpsearch", "--resume", "--out", str(out)]), fragment)
    assert not (tmp_path / "elsewhere.db").exists()


def test_trial_folders_of_another_study_are_not_overwritten(tmp_path, capsys):
    out = tmp_path / "search"
    assert main(["hpsearch", *SPACE, *TINY, "--trials", "2", "--out", str(out)]) == 0
    before = (out / "trials" / "00000" / "config.json").read_text()
    capsys.readouterr()
    code = main(["hpsearch", "--resume", "--storage", "memory", "--out", str(out)])  # an empty study
    one_line_error(capsys, code, "holds the trials of another study")
    assert (out / "trials" / "00000" / "config.json").read_text() == before


def test_every_worker_of_a_study_beats_at_the_same_rate(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    common = ["hpsearch", *SPACE, *TINY, "--storage", storage, "--study", "s", "--trials", "1"]
    assert main(common + ["--heartbeat", "5", "--out", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    one_line_error(capsys, main(common + ["--heartbeat", "7", "--out", str(tmp_path / "b")]), "--heartbeat 5")


def test_the_lecture_strategy_refuses_options_it_would_ignore(tmp_path, capsys):
    code = main(["hpsearch", "--strategy", "lecture", "--trials", "5", "--sampler", "random",
                 "--out", str(tmp_path / "x")])
    one_line_error(capsys, code, "--trials, --sampler would be ignored")

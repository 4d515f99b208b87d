"""``tiefnet hpsearch``: choose the hyperparameters of a trainer (lecture 2.7.3) by Bayesian
optimisation (Optuna's TPE) or random sampling with pruning, or by the lecture's heuristic strategy
(``--strategy lecture``); on one machine, or on many that share a study in PostgreSQL."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tiefnet.cli.common import add_run_options, default_out
from tiefnet.errors import ConfigError
from tiefnet.files import read_json, write_json

EPILOG = """\
examples:
  tiefnet hpsearch --space "eta=log:0.01..10" "lmbda=log:1e-3..10" "hidden=int:10..300" \\
                   --fixed cost=cross-entropy init=scaled epochs=30 --trials 40 --seed 1
  tiefnet hpsearch --strategy lecture --fixed hidden=100
  tiefnet hpsearch --trainer charrnn --space "eta=log:1e-4..1e-2" --fixed steps=2000 --trials 20

many machines, one study: start it on one, join it from the others with the same two options
  tiefnet hpsearch --storage postgresql://USER:PASSWORD@HOST/DB --study NAME --space ... --trials 100
  tiefnet hpsearch --storage postgresql://USER:PASSWORD@HOST/DB --study NAME
watch it:  pip install optuna-dashboard && optuna-dashboard sqlite:///OUT/study.db  (or the PostgreSQL URL)
"""

SEARCH_FILE = "search.json"  # the settings of the search in --out, read by --resume


def add_commands(sub) -> None:
    from tiefnet.hpsearch.study import PRUNERS, SAMPLERS
    from tiefnet.hpsearch.trainers import TRAINERS

    p = sub.add_parser("hpsearch", help="search hyperparameters (eta, lambda, sizes, ...) of any trainer (2.7.3)",
                       description="Search the settings of a trainer: each trial is one run of it in OUT/trials/N; "
                                   "hopeless trials are pruned after each epoch (fail fast). Prints the trials, "
                                   "the best settings as a ready command, and writes trials.csv, best.json and "
                                   "plots to --out.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trainer", default=None, choices=list(TRAINERS), help="what to tune (default: mnist)")
    p.add_argument("--strategy", choices=("optuna", "lecture"), default="optuna",
                   help="optuna: the sampler and pruner below; lecture: the lecture's heuristics for mnist (eta that "
                        "learns on 0/1, half the overshooting threshold, lambda 0 -> 1 -> x10 or /10, early stopping "
                        "and halving eta on plateaus), each phase logged and plotted")
    p.add_argument("--space", nargs="+", default=[], metavar="SPEC",
                   help="searched settings NAME=KIND:RANGE, KIND one of log, float, int, logint, choice "
                        "(eta=log:0.01..10, hidden=int:10..300, cost=choice:quadratic,cross-entropy)")
    p.add_argument("--space-file", type=Path, default=None, metavar="FILE",
                   help="a TOML file with a [space] table (and [fixed]); --space and --fixed add to it")
    p.add_argument("--fixed", nargs="+", default=[], metavar="NAME=VALUE",
                   help="settings every trial gets (epochs=30 cost=cross-entropy)")
    p.add_argument("--trials", type=int, default=None, help="finished trials the study should hold (default 30)")
    p.add_argument("--sampler", choices=SAMPLERS, default=None, help="tpe (Bayesian, the default) or random")
    p.add_argument("--pruner", choices=PRUNERS, default=None,
                   help="median (the default: stop a trial worse than the median at the same epoch), hyperband, none")
    p.add_argument("--warmup", type=int, default=None, help="evaluations of each trial (mnist: epochs) before it may be pruned (default 2)")
    p.add_argument("--startup", type=int, default=None,
                   help="trials before the pruner prunes and TPE models (random before them; default 5)")
    p.add_argument("--seed", type=int, default=None, help="seed of the sampler: a sequential search repeats itself")
    p.add_argument("--storage", default=None, metavar="URL",
                   help="where the study lives: memory, sqlite:///FILE or postgresql://USER:PASSWORD@HOST/DB "
                        "(default: sqlite in --out)")
    p.add_argument("--study", default=None, help="the study's name in the storage (default: tiefnet-TRAINER)")
    p.add_argument("--heartbeat", type=int, default=None,
                   help="seconds between a running trial's heartbeats; a trial silent for twice as long is marked "
                        "failed and run again (default 30)")
    p.add_argument("--timeout", type=float, default=None, help="start no trial after this many seconds")
    p.add_argument("--threads", type=int, default=1, help="CPU cores of each trial")
    add_run_options(p, "hpsearch", resume_example="--trials",
                    progress_help="no line per trial (the table at the end is still printed)")
    p.set_defaults(handler=_cmd_hpsearch)


DEFAULTS = {"trainer": "mnist", "trials": 30, "sampler": "tpe", "pruner": "median", "warmup": 2, "startup": 5,
            "heartbeat": 30, "space": [], "fixed": [], "space_file": None, "seed": None, "storage": None,
            "study": None, "timeout": None}


def _settings(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """The search's settings: those given, then (--resume) the saved ones of --out, then the defaults."""
    saved: dict[str, Any] = {}
    if args.resume:
        path = out / SEARCH_FILE
        if not path.is_file():
            raise ConfigError(f"--resume: {out} holds no {SEARCH_FILE} of a search to continue")
        saved = _checked_saved(read_json(path), path)
        if saved.get("storage") is not None and args.storage is None:  # a folder names no database to open
            raise ConfigError(f"--resume: give --storage again (the search in {out} used {saved['storage']}; "
                              f"a storage is not taken from a run folder)")
    given = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k) not in (None, [])}
    if args.resume and ({"space", "fixed", "space_file", "trainer"} & set(given)):
        raise ConfigError("--resume continues the search saved in --out: --trainer, --space, --space-file and "
                          "--fixed cannot change")
    settings = {**DEFAULTS, **{k: v for k, v in saved.items() if k in DEFAULTS}, **given}
    for name, kind in (("trials", int), ("warmup", int), ("startup", int), ("heartbeat", int)):
        if not isinstance(settings[name], kind) or isinstance(settings[name], bool):
            raise ConfigError(f"{out / SEARCH_FILE}: {name}={settings[name]!r} is not a whole number")
    if not (isinstance(settings["space"], list) and all(isinstance(s, str) for s in settings["space"])
            and isinstance(settings["fixed"], list) and all(isinstance(s, str) for s in settings["fixed"])):
        raise ConfigError(f"{out / SEARCH_FILE}: space and fixed are lists of strings")
    return settings


SAVED_KINDS = {"trainer": str, "trials": int, "sampler": str, "pruner": str, "warmup": int, "startup": int,
               "heartbeat": int, "space": list, "fixed": list, "space_file": type(None), "seed": int,
               "storage": str, "study": str, "timeout": (int, float)}
MAX_SAVED_TEXT = 10_000  # characters of a saved text (a study name, one space entry)


def _checked_saved(saved: Any, path: Path) -> dict[str, Any]:
    """The settings of a search.json (someone else's, perhaps), each of its kind or one clear error."""
    if not isinstance(saved, dict):
        raise ConfigError(f"--resume: {path} is not a JSON object")
    for name, kind in SAVED_KINDS.items():
        value = saved.get(name)
        if value is None and name not in ("trainer", "trials", "space", "fixed"):
            continue
        ok = isinstance(value, kind) and not isinstance(value, bool)
        if ok and isinstance(value, list):
            ok = len(value) <= 1000 and all(isinstance(v, str) and len(v) <= MAX_SAVED_TEXT for v in value)
        if ok and isinstance(value, str):
            ok = len(value) <= MAX_SAVED_TEXT
        if not ok:
            raise ConfigError(f"--resume: {path}: {name}={value!r} is not a setting of a search")
    return saved


def _cmd_hpsearch(args: argparse.Namespace) -> int:
    from tiefnet.hpsearch.space import build_space
    from tiefnet.hpsearch.trainers import trainer

    out = args.out or default_out("hpsearch")
    if args.strategy == "lecture":
        return _cmd_lecture(args, out)
    settings = _settings(args, out)
    if not settings["space"] and not settings["space_file"] and settings["storage"] not in (None, "memory"):
        given = {k for k in OPTIONS if getattr(args, k) is not None}
        settings.update(_joined(settings, args.trainer, args.trials, given))  # a joining worker takes its space
    chosen = trainer(settings["trainer"])
    config_class = chosen.config_class()
    study_name = settings["study"] or f"tiefnet-{chosen.name}"
    space_texts, fixed_texts = settings["space"], settings["fixed"]
    space = build_space(config_class, space_texts, fixed_texts, settings["space_file"], not_searched=("threads",))
    search = _search(args, settings, chosen, space, out, study_name)
    return _run(search, settings, args)


def _search(args, settings, chosen, space, out: Path, study_name: str):
    from tiefnet.hpsearch.study import Search

    if args.threads < 1:
        raise ConfigError(f"--threads {args.threads} must be at least 1")
    return Search(chosen, space, out, trials=settings["trials"], sampler=settings["sampler"],
                  pruner=settings["pruner"], seed=settings["seed"], storage=settings["storage"], study=study_name,
                  threads=args.threads, warmup=settings["warmup"], startup=settings["startup"],
                  heartbeat=settings["heartbeat"], timeout=settings["timeout"])


OPTIONS = ("sampler", "pruner", "warmup", "startup", "heartbeat")  # a joining worker takes the study's


def _joined(settings: dict[str, Any], trainer_given: str | None, trials_given: int | None,
            given: set[str] = frozenset()) -> dict[str, Any]:
    """The trainer, space, fixed settings, number of trials, sampler, pruner and heartbeat of the study
    that a worker without --space joins."""
    from tiefnet.hpsearch.study import Search, open_study, shown_url
    from tiefnet.hpsearch.trainers import trainer

    name = settings["study"] or f"tiefnet-{trainer_given or 'mnist'}"
    probe = Search(trainer(trainer_given or "mnist"), None, Path("."), storage=settings["storage"], study=name)
    try:
        study = open_study(probe, create=False)
    except ConfigError:
        study = None
    saved = study.user_attrs.get("search", {}) if study is not None else {}
    if not isinstance(saved, dict):
        saved = {}
    from tiefnet.hpsearch.trainers import TRAINERS

    texts = saved.get("space"), saved.get("fixed", [])
    if saved and not (saved.get("trainer") in TRAINERS
                      and all(isinstance(t, list) and all(isinstance(s, str) for s in t) for t in texts)):
        raise ConfigError(f"--study {name!r} in {shown_url(settings['storage'])} holds no search of tiefnet's")
    if not saved.get("space"):
        raise ConfigError(f"--study {name!r} has not been started in {shown_url(settings['storage'])}: start it "
                          f"with --space (a worker without --space joins a study that has one)")
    if trainer_given not in (None, saved.get("trainer")):
        raise ConfigError(f"--study {name!r} searches the settings of {saved.get('trainer')}, not of {trainer_given}")
    trials = study.user_attrs.get("trials")
    joined = {"trainer": saved.get("trainer", "mnist"), "space": saved["space"], "study": name}
    if not settings["fixed"]:  # given: it must be the study's (checked when the study is opened)
        joined["fixed"] = saved.get("fixed", [])
    if trials_given is None and isinstance(trials, int) and not isinstance(trials, bool):
        joined["trials"] = trials
    options = study.user_attrs.get("options")
    for key in OPTIONS:  # the starter's sampler, pruner and heartbeat, unless given
        value = options.get(key) if isinstance(options, dict) else None
        if settings.get(key) == DEFAULTS[key] and key not in given and value is not None:
            joined[key] = value
    return joined


def _run(search, settings: dict[str, Any], args: argparse.Namespace) -> int:
    from tiefnet.hpsearch.report import write_report
    from tiefnet.hpsearch.study import STUDY_FILE, open_study, run_search, shown_url, storage_url
    from tiefnet.runs import RunInterrupted

    out = search.out
    record = {**{k: settings[k] for k in DEFAULTS}, "space": [p.text() for p in search.space.params],
              "fixed": [f"{k}={v}" for k, v in search.space.fixed.items()], "space_file": None,
              "study": search.study, "trainer": search.trainer.name,
              "storage": None if settings["storage"] is None else shown_url(settings["storage"])}
    if args.overwrite and settings["storage"] is None:  # a new study, not the one of the run in --out
        (out / STUDY_FILE).unlink(missing_ok=True)
    study = open_study(search)  # reached before anything is written
    described = {"trainer": search.trainer.name, "space": record["space"], "fixed": record["fixed"]}
    before = study.user_attrs.get("search")
    options = {k: getattr(search, k) for k in OPTIONS}
    if before is None:
        study.set_user_attr("search", described)
        study.set_user_attr("trials", search.trials)  # what a worker joining without --trials aims for
        study.set_user_attr("options", options)
    elif not isinstance(before, dict) or before != described:
        before = before if isinstance(before, dict) else {}
        raise ConfigError(f"--study {search.study!r} in {shown_url(storage_url(search) or 'memory')} searches "
                          f"{'; '.join(before.get('space', []))} with {', '.join(before.get('fixed', [])) or 'nothing'} "
                          f"fixed: give the same space, or another --study")
    started = study.user_attrs.get("options")
    if isinstance(started, dict) and started.get("heartbeat") not in (None, search.heartbeat):
        # each worker fails the trials silent for twice its own heartbeat: all must send at the same rate
        raise ConfigError(f"--study {search.study!r} was started with --heartbeat {started['heartbeat']}: "
                          f"give the same (or leave it out)")
    if not args.overwrite:
        _check_trial_folders(study, out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / SEARCH_FILE, record)
    log = print if not args.no_progress else (lambda line: None)
    print(f"tiefnet hpsearch: {search.trainer.command}, {len(search.space.params)} settings searched "
          f"({'; '.join(record['space'])}), {search.sampler} sampler, {search.pruner} pruner, study "
          f"{search.study!r} in {shown_url(storage_url(search) or 'memory')}, up to {search.trials} trials -> {out}")
    try:
        study = run_search(search, log, study)
    except KeyboardInterrupt:
        write_report(study, search)
        resumable = storage_url(search) is not None
        raise RunInterrupted(f"the trials so far are in {out}" + (
            f": continue with tiefnet hpsearch --resume --out {out}" if resumable else "")) from None
    write_report(study, search)
    return 0


def _check_trial_folders(study, out: Path) -> None:
    """The trial folders in --out must be of this study (numbered below its trials), or a trial would
    overwrite one of another search."""
    folder = out / "trials"
    numbers = [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
    if numbers and max(numbers) >= len(study.get_trials(deepcopy=False)):
        raise ConfigError(f"{folder} holds the trials of another study than {study.study_name!r}: give another --out "
                          f"(or --overwrite)")


def _cmd_lecture(args: argparse.Namespace, out: Path) -> int:
    from tiefnet.hpsearch.lecture import run_strategy

    if (args.trainer or "mnist") != "mnist":
        raise ConfigError("--strategy lecture tunes tiefnet mnist only (its phases are the lecture's for MNIST)")
    if args.space or args.space_file:
        raise ConfigError("--strategy lecture chooses eta, lambda and the epochs itself: give --fixed, not --space")
    if args.resume:
        raise ConfigError("--strategy lecture cannot be resumed: start it again (its runs are short)")
    ignored = [f"--{k.replace('_', '-')}" for k in DEFAULTS if k not in ("trainer", "space", "space_file", "fixed")
               and getattr(args, k, None) is not None]
    if ignored:
        raise ConfigError(f"--strategy lecture runs its own phases: {', '.join(ignored)} would be ignored")
    run_strategy(args.fixed, out, threads=args.threads, log=print if not args.no_progress else (lambda line: None))
    return 0

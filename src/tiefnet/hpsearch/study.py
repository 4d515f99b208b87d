"""A hyperparameter search as an Optuna study (2.7.3, "Automatisierung": Bayesian optimisation).

Each trial is one ordinary run of a trainer (``tiefnet mnist`` ...) in ``OUT/trials/NNNNN``, with
the settings the sampler proposes: TPE (a Bayesian method: it models which settings gave good and
which bad results) or random sampling. The search follows the run's ``metrics.jsonl``; after each
epoch the pruner compares the trial with the others at the same epoch and stops a hopeless one
(the lecture's "fail fast").

The study lives in a storage: by default ``OUT/study.db`` (SQLite, one machine, nothing to set
up); ``memory`` keeps it in this process only; a PostgreSQL URL lets many machines share it, each
running ``tiefnet hpsearch --storage postgresql://... --study NAME``. Every running trial sends a
heartbeat; a trial whose worker died (killed, power lost) is marked failed by the next worker that
starts a trial, and run again with the same settings.
"""
from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy

from tiefnet import runs
from tiefnet.errors import ConfigError, TiefnetError, TrainingDiverged
from tiefnet.hpsearch.space import Space
from tiefnet.hpsearch.trainers import Trainer

SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "none")
STUDY_FILE = "study.db"  # the default storage, in --out


def optuna():
    """Optuna, imported where a search runs (it takes a second), quiet but for warnings."""
    import optuna as module

    module.logging.set_verbosity(logging.WARNING)
    warnings.filterwarnings("ignore", category=module.exceptions.ExperimentalWarning)
    return module


@dataclass
class Search:
    """What one worker of a search does."""

    trainer: Trainer
    space: Space
    out: Path  # this worker's folder: the trials' run folders, the report
    trials: int = 30  # the study is done when it holds this many finished (complete or pruned) trials
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int | None = None  # of the sampler; with it a sequential search repeats itself
    storage: str | None = None  # None: OUT/study.db; "memory"; or a database URL
    study: str = "tiefnet"
    threads: int = 1
    warmup: int = 2  # epochs (evaluations) of every trial before it may be pruned
    startup: int = 5  # trials that finish before the pruner prunes and TPE models (random before)
    heartbeat: int = 30  # seconds between a running trial's signs of life (database storages)
    timeout: float | None = None  # seconds this worker starts trials for

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"--sampler {self.sampler!r} is not one of {', '.join(SAMPLERS)}")
        if self.pruner not in PRUNERS:
            raise ConfigError(f"--pruner {self.pruner!r} is not one of {', '.join(PRUNERS)}")
        for name, low in (("trials", 0), ("threads", 1), ("warmup", 0), ("startup", 0), ("heartbeat", 1)):
            if getattr(self, name) < low:
                raise ConfigError(f"--{name} {getattr(self, name)} must be at least {low}")
        if self.timeout is not None and not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ConfigError(f"--timeout {self.timeout} must be a positive number of seconds")
        if not self.study or len(self.study) > 200:
            raise ConfigError("--study needs a name of 1 to 200 characters")


def shown_url(url: str) -> str:
    """A storage URL as it may be printed: without its password."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL: shown as given, up to its first '@'
        return url.split("@")[-1]


def storage_url(search: Search) -> str | None:
    """The database URL of the study (None: in memory)."""
    if search.storage == "memory":
        return None
    if search.storage is None:
        return f"sqlite:///{(search.out / STUDY_FILE).resolve()}"
    scheme, colon, rest = search.storage.partition("://")
    if scheme.lower() in ("postgresql", "postgres") and colon:  # the driver tiefnet[postgres] installs
        return "postgresql+psycopg://" + rest
    return search.storage


def open_storage(search: Search):
    """The Optuna storage, reached and checked: one clear line when it cannot be."""
    optuna_ = optuna()
    url = storage_url(search)
    if url is None:
        return optuna_.storages.InMemoryStorage()
    if search.storage is None:
        search.out.mkdir(parents=True, exist_ok=True)
    scheme = url.split(":", 1)[0].split("+")[0].lower()
    if scheme not in ("sqlite", "postgresql", "mysql"):
        raise ConfigError(f"--storage {shown_url(url)!r}: give 'memory', a sqlite:///FILE or a postgresql://... URL")
    engine = {"connect_args": {"timeout": 60}} if scheme == "sqlite" else \
        {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}} if scheme == "postgresql" else {}
    try:
        return optuna_.storages.RDBStorage(
            url, engine_kwargs=engine, heartbeat_interval=search.heartbeat, grace_period=2 * search.heartbeat,
            heartbeat_stale_trial_callback=optuna_.storages.RetryHeartbeatStaleTrialCallback(max_retry=2))
    except ImportError:  # Optuna's own message for sqlalchemy's missing driver
        raise ConfigError(f"--storage {shown_url(url)}: the database driver is not installed; for PostgreSQL: "
                          f"pip install 'tiefnet[postgres]'") from None
    except Exception as error:  # sqlalchemy's OperationalError, ArgumentError, ...: their first line
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"--storage {shown_url(url)}: cannot open the study's database ({first})") from None


class PerTrialSeed:
    """A sampler whose random choices in trial k depend on (seed, k) only: a sequential search repeats
    itself, and workers sharing a study with the same seed still propose different settings (the
    storage numbers the trials). Built on Optuna's public sampler interface."""

    def __init__(self, make: Callable[[int | None], Any], seed: int | None):
        self._make, self._seed = make, seed
        self._inner = make(seed)

    def before_trial(self, study, trial) -> None:
        if self._seed is not None:
            self._inner = self._make(int(numpy.random.SeedSequence([self._seed, trial.number]).generate_state(1)[0]))
        self._inner.before_trial(study, trial)

    def __getattr__(self, name: str):  # infer_relative_search_space, sample_relative, sample_independent, ...
        return getattr(self._inner, name)


def make_sampler(search: Search):
    optuna_ = optuna()
    samplers = optuna_.samplers
    if search.sampler == "random":
        make = lambda seed: samplers.RandomSampler(seed=seed)  # noqa: E731
    else:
        make = lambda seed: samplers.TPESampler(seed=seed, n_startup_trials=search.startup,  # noqa: E731
                                                constant_liar=True)
    return PerTrialSeed(make, search.seed)


def make_pruner(search: Search):
    pruners = optuna().pruners
    if search.pruner == "median":
        return pruners.MedianPruner(n_startup_trials=search.startup, n_warmup_steps=search.warmup)
    if search.pruner == "hyperband":
        return pruners.HyperbandPruner(min_resource=max(1, search.warmup))
    return pruners.NopPruner()


def open_study(search: Search, create: bool = True):
    """The study (created, or loaded when it exists: another worker's or an earlier run's)."""
    optuna_ = optuna()
    storage = open_storage(search)
    kwargs = dict(study_name=search.study, storage=storage, sampler=make_sampler(search), pruner=make_pruner(search))
    try:
        if not create:
            return optuna_.load_study(**kwargs)
        return optuna_.create_study(direction=search.trainer.direction, load_if_exists=True, **kwargs)
    except KeyError:
        raise ConfigError(f"--study {search.study!r}: no such study in {shown_url(storage_url(search) or 'memory')}")
    except ValueError as error:  # an existing study with the other direction
        raise ConfigError(f"--study {search.study!r}: {error}") from None


def finished(study) -> int:
    states = optuna().trial.TrialState
    return len(study.get_trials(deepcopy=False, states=(states.COMPLETE, states.PRUNED)))


def _duplicate(study, trial) -> int | None:
    """The number of another trial (finished or running) with exactly these settings, if there is one."""
    states = optuna().trial.TrialState
    for other in study.get_trials(deepcopy=False, states=(states.COMPLETE, states.PRUNED, states.RUNNING)):
        if other.number != trial.number and other.params == trial.params:
            return other.number
    return None


def objective(search: Search, study, config_class: type, log: Callable[[str], None]):
    """The function of a trial: its settings -> one run in trials/NNNNN -> the trainer's objective."""
    optuna_ = optuna()
    trainer = search.trainer

    def run_trial(trial) -> float:
        settings = search.space.suggest(trial, config_class)
        if "threads" in {f for f in config_class.__dataclass_fields__}:
            settings["threads"] = search.threads
        same = _duplicate(study, trial)
        if same is not None:  # nothing to learn from training it again
            trial.set_user_attr("duplicate_of", same)
            trial.set_user_attr("epochs", 0)
            raise optuna_.TrialPruned(f"the settings of trial {same}")
        folder = search.out / "trials" / f"{trial.number:05d}"
        trial.set_user_attr("folder", str(folder))
        values: list[float] = []

        def watch(entry: dict[str, Any]) -> None:
            value = entry.get(trainer.metric)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                return
            values.append(float(value))
            # the step is the number of evaluations (mnist: epochs), so that --warmup and Hyperband's
            # resources mean the same for every trainer (charrnn counts its steps in hundreds)
            trial.report(float(value), len(values))
            if trial.should_prune():
                raise optuna_.TrialPruned(f"{trainer.label} {trainer.shown(value)} after {len(values)} evaluations")

        config = config_class(**settings)
        try:
            with runs.watching(watch):
                summary = trainer.run(config, folder)
        except KeyboardInterrupt:  # Ctrl-C: the trial fails, and --resume trains its settings again
            trial.set_user_attr("interrupted", True)
            raise
        except TrainingDiverged as error:  # as bad as it gets: pruned, so that TPE learns from it
            trial.set_user_attr("diverged", str(error)[:300])
            raise optuna_.TrialPruned(f"diverged: {error}") from None
        finally:
            trial.set_user_attr("epochs", len(values))
        value = trainer.objective(summary, values)
        for key in ("test_accuracy", "test_accuracy_at_best_validation", "total_seconds", "seconds"):
            if isinstance(summary.get(key), (int, float)):
                trial.set_user_attr(key, summary[key])
        if value is None or not math.isfinite(value):
            raise TiefnetError(f"trial {trial.number}: the run gave no {trainer.label}")
        return float(value)

    return run_trial


def run_search(search: Search, log: Callable[[str], None] = print, study=None):
    """Run trials until the study holds ``search.trials`` finished ones (or the timeout); the study
    (``study``: the one :func:`open_study` opened for ``search``)."""
    optuna_ = optuna()
    config_class = search.trainer.config_class()
    search.out.mkdir(parents=True, exist_ok=True)
    study = open_study(search) if study is None else study
    if storage_url(search) is not None:
        optuna_.storages.fail_stale_trials(study)  # of a worker that died
        requeue_interrupted(study)
    remaining = search.trials - finished(study)
    if remaining <= 0:
        log(f"the study {search.study!r} already holds {finished(study)} finished trials (--trials {search.trials})")
        return study
    states = optuna_.trial.TrialState
    stop = optuna_.study.MaxTrialsCallback(search.trials, states=(states.COMPLETE, states.PRUNED))

    def report(study_, trial) -> None:
        log(trial_line(search.trainer, study_, trial))

    study.optimize(objective(search, study, config_class, log), n_trials=remaining + 2 * _waiting(study),
                   timeout=search.timeout, catch=(TiefnetError,), callbacks=[stop, report], gc_after_trial=False)
    return study


def requeue_interrupted(study) -> list[int]:
    """Trials failed by Ctrl-C are run again with their settings, once each (the numbers requeued)."""
    states = optuna().trial.TrialState
    done = study.user_attrs.get("requeued", [])
    done = [n for n in done if isinstance(n, int)] if isinstance(done, list) else []
    again = [t for t in study.get_trials(deepcopy=False, states=(states.FAIL,))
             if t.user_attrs.get("interrupted") is True and t.number not in done]
    for t in again:
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
    if again:
        study.set_user_attr("requeued", done + [t.number for t in again])
    return [t.number for t in again]


def _waiting(study) -> int:
    return len(study.get_trials(deepcopy=False, states=(optuna().trial.TrialState.WAITING,)))


def trial_line(trainer: Trainer, study, trial) -> str:
    """One line per finished trial: its state, its value, its settings, the best so far."""
    params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
    epochs = trial.user_attrs.get("epochs")
    state = trial.state.name.lower()
    what = trainer.shown(trial.value) if trial.value is not None else state
    if trial.state.name == "PRUNED":
        reason = "duplicate of trial %d" % trial.user_attrs["duplicate_of"] if "duplicate_of" in trial.user_attrs \
            else "diverged" if "diverged" in trial.user_attrs else f"after {epochs} evaluations"
        what = f"pruned ({reason})"
    elif trial.state.name == "FAIL":
        what = "failed"
    try:
        best = study.best_trial
        best_text = f"; best: trial {best.number}, {trainer.shown(best.value)}"
    except ValueError:
        best_text = ""
    return f"trial {trial.number:3d}: {what}  ({params}){best_text}"

"""The run folder every application writes (``tiefnet mnist``, ``charrnn``, ``dqn``, ``qlearn --out``,
``experiment``): the ``--out`` checks, ``config.json``, ``metrics.jsonl``, ``summary.json``, ``plans.json``
(the implementations tiefnet.plans measured fastest, adopted by a resumed run), the progress bar, and the
one line that an interrupted run (Ctrl-C) ends with.

    folder = RunFolder(out, app="mnist", resume_command="tiefnet mnist --resume")  # --out checked
    with folder.start(config, resume=resume, may_change=RESUMABLE_CHANGES):  # mkdir, config.json
        metrics = folder.metrics(entries=history_of_the_checkpoint)  # cut back to what it holds
        ...  metrics.append({"epoch": 1, ...}); folder.save_model(net, info)
        folder.write_json("summary.json", summary)

Nothing is written through a symbolic link (see :mod:`tiefnet.files`): a file is written as a temp
file created exclusively in the folder and then renamed over the old name (``os.replace``), and
metrics.jsonl stays open for appending on that same temp file's descriptor. Leaving the ``with`` block by Ctrl-C raises :class:`RunInterrupted`,
a KeyboardInterrupt whose message names the folder and, for an application that can resume, the
command that continues the run; ``tiefnet``'s ``main`` prints it and exits with 130.
"""
from __future__ import annotations

import contextlib
import json
import os
import shlex
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from tiefnet import checkpoint
from tiefnet.errors import CheckpointError, ConfigError, TiefnetError
from tiefnet.files import open_appending, parse_json, read_text, remove_stale_temp_files, replacing, write_json, \
    write_text
from tiefnet.progress import progress_bar
from tiefnet.settings import check_app, check_resumable


MAX_PLANS_BYTES = 4_000_000  # a plans.json larger than this is not read


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; ``str(error)`` says where the run's files are and how to continue it."""


_watchers: list[Callable[[dict[str, Any]], None]] = []


@contextlib.contextmanager
def watching(callback: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    """While the block runs, every entry that a run of this process writes to its ``metrics.jsonl``
    also goes to ``callback``, just after it is written: how a hyperparameter search follows any
    application's training (tiefnet.hpsearch). An exception that ``callback`` raises stops the run
    there, like an error of the run itself (a pruned trial: "fail fast", 2.7.3)."""
    _watchers.append(callback)
    try:
        yield
    finally:
        _watchers.remove(callback)


class MetricsLog:
    """``metrics.jsonl``: one JSON object a line (an epoch, an evaluation, an episode), appended and
    flushed as the run goes, so that an interrupted run keeps every finished line. ``watched``: its
    entries go to the callbacks of :func:`watching`."""

    def __init__(self, path: Path, lines: Sequence[str], watched: bool = False):
        self.path, self.watched = path, watched
        self._file = open_appending(path, "".join(lines))  # a fresh file, never a symlink's target
        self.lines = len(lines)

    def append(self, entry: dict[str, Any]) -> None:
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()
        self.lines += 1
        for callback in list(_watchers) if self.watched else ():
            callback(entry)

    def entries(self) -> list[dict[str, Any]]:
        """Every line written so far, parsed."""
        return _parse_lines(self.path, read_text(self.path).splitlines())

    def close(self) -> None:
        self._file.close()


def _parse_lines(path: Path, lines: Sequence[str]) -> list[dict[str, Any]]:
    entries = [parse_json(line, f"{path}: line {i}", CheckpointError) for i, line in enumerate(lines, 1)]
    if not all(isinstance(e, dict) for e in entries):
        raise CheckpointError(f"{path}: a line is not a JSON object")
    return entries


def _mtime(path: Path) -> int | None:
    """When ``path`` was last written (ns), None if it does not exist."""
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


class RunFolder:
    """The folder ``out`` of one run of application ``app``.

    ``resume_command`` is how the application continues a run (``"tiefnet mnist --resume"``), or None
    if it cannot. ``progress`` turns the progress bar on or off. Creating a RunFolder only checks
    ``out``; :meth:`start` creates it.
    """

    def __init__(self, out: str | os.PathLike, app: str | None = None, resume_command: str | None = None,
                 progress: bool = True):
        self.path = Path(out)
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"--out {self.path} is a file, not a folder")
        self.app, self.resume_command, self.progress = app, resume_command, progress
        self._logs: list[MetricsLog] = []
        self.resume, self._old_checkpoint = False, None  # set by start()
        self._plans = None  # while started: plans.json follows tiefnet.plans' choices

    def start(self, config: Any = None, resume: bool = False, may_change: set[str] = frozenset()) -> RunFolder:
        """Create the folder and write ``config.json`` from the Config dataclass ``config``; with
        ``resume``, first refuse a folder without a checkpoint or with settings other than ``config``'s
        (apart from ``may_change``), before anything is written."""
        if resume:
            check_app(self.path, self.app)
            check_resumable(self.path, config, may_change)
        self.resume = resume
        self._old_checkpoint = None if resume else _mtime(self.path / "checkpoint.npz")  # another run's
        self.path.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(self.path)  # of an earlier run killed while writing
        if config is not None:
            self.write_json("config.json", asdict(config))
        self._start_plans(resume)
        return self

    def _start_plans(self, resume: bool) -> None:
        """plans.json: the implementations tiefnet.plans chose in this run; a resumed run adopts them.
        A plans.json from anyone: size-limited, parsed with the JSON guards, only known variant names
        ever used (plans.adopt); one that cannot be read or written is left alone (the sites measure)."""
        from tiefnet import plans

        path = self.path / "plans.json"
        if resume and path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_PLANS_BYTES:
            try:
                plans.adopt(parse_json(read_text(path), str(path)))
            except (OSError, ValueError, TiefnetError):
                pass
        if not resume and path.is_file() and not path.is_symlink():
            path.unlink()  # an earlier run's, in a folder this run overwrites
        self._save_plans()
        if self._plans is None:
            self._plans = plans.listening(self._save_plans)
            self._plans.__enter__()

    def _save_plans(self) -> None:
        from tiefnet import plans

        chosen = plans.export()
        if chosen:
            try:
                self.write_json("plans.json", chosen)
            except (OSError, TiefnetError):  # a folder in its way, a full disk: the run goes on without it
                pass

    def write_json(self, name: str, data: Any, ascii: bool = True) -> Path:
        return write_json(self.path / name, data, ascii)

    def write_text(self, name: str, text: str) -> Path:
        return write_text(self.path / name, text)

    def replacing(self, name: str):
        """``with folder.replacing("curves.png") as path: figure(..., path)``: see :func:`replacing`."""
        return replacing(self.path / name)

    def metrics(self, entries: Sequence[dict[str, Any]] | None = None, keep_lines: int = 0,
                name: str = "metrics.jsonl") -> MetricsLog:
        """metrics.jsonl (or another JSON-lines file ``name``), opened for appending. A new run starts
        it empty; a resumed run starts it with the ``entries`` its checkpoint holds, or keeps the first
        ``keep_lines`` lines of the file (those written up to the checkpoint): what came after the
        checkpoint is dropped."""
        path = self.path / name
        if entries is not None:
            lines = [json.dumps(e) + "\n" for e in entries]
        elif keep_lines:
            lines = read_text(path).splitlines(keepends=True)[:keep_lines] if path.exists() else []
        else:
            lines = []
        log = MetricsLog(path, lines, watched=name == "metrics.jsonl")
        self._logs.append(log)
        return log

    def save_model(self, model, info: dict[str, Any] | None = None) -> Path:
        """model.npz + model.json, naming this run's application."""
        return checkpoint.save_model(self.path, model, info, app=self.app)

    def progress_bar(self, total: int, desc: str, unit: str = "step", initial: int = 0):
        return progress_bar(self.progress, total, desc, unit, initial)

    def interrupted(self) -> str:
        """What an interrupted run says: where its files are and, if it can, how to continue."""
        where = shlex.quote(str(self.path))
        if self.resume_command is None:
            return f"what the run wrote so far is in {where}"
        checkpoint_time = _mtime(self.path / "checkpoint.npz")
        if checkpoint_time is None or (not self.resume and checkpoint_time == self._old_checkpoint):
            return f"before the first checkpoint; {where} holds nothing to resume from"
        return f"the last checkpoint is in {where}: continue with {self.resume_command} --out {where}"

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        for log in self._logs:
            log.close()
        self._logs = []
        if self._plans is not None:
            self._plans.__exit__(None, None, None)
            self._plans = None
        if kind is not None and issubclass(kind, KeyboardInterrupt) and not isinstance(error, RunInterrupted):
            raise RunInterrupted(self.interrupted()) from None

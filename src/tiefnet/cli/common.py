"""What every command module of :mod:`tiefnet.cli` shares: the parser class with one-line usage
errors, the exit codes, options built from an application's ``Config`` dataclass, the Config from
the parsed options (with ``--resume``: the run folder's saved settings for the options not given),
the run-folder options and the default folder ``runs/NAME-TIMESTAMP``.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import Field, fields
from pathlib import Path
from typing import Any, Callable

from tiefnet.errors import TiefnetError
from tiefnet.settings import saved_settings

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + error
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        """As argparse's, and ``_prog`` names the innermost (sub-)command that parsed: an unknown
        option is reported by the command it was given to (``tiefnet mnist: error: ...``)."""
        namespace, extras = super().parse_known_args(args, namespace)
        if not hasattr(namespace, "_prog"):  # the innermost parser returns first
            namespace._prog = self.prog
        return namespace, extras


def default_out(name: str) -> Path:
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def option(name: str) -> str:
    """The option of a Config field: batch_size -> --batch-size."""
    return "--" + name.replace("_", "-")


def add_config_options(parser: argparse.ArgumentParser, config_class: type, skip: tuple[str, ...] = (),
                       resumable: bool = False,
                       default_of: Callable[[Field], tuple[Any, str]] | None = None) -> None:
    """One option per field of ``config_class`` (but ``skip``), with the field's help text and its
    default shown; a bool field becomes ``--name/--no-name``.

    ``resumable``: the options get no argparse default, so that an option left out is told apart
    from one given (``--resume`` takes the saved value for it). ``default_of(field)`` gives
    (the default, as shown) where the dataclass default is not the whole story (mnist's per-model
    defaults)."""
    for f in fields(config_class):
        if f.name in skip:
            continue
        default, shown = default_of(f) if default_of else (f.default, repr(f.default))
        help_ = f"{f.metadata.get('help', '')} (default: {shown})"
        argument_default = argparse.SUPPRESS if resumable else default
        if isinstance(default, bool):
            parser.add_argument(option(f.name), action=argparse.BooleanOptionalAction, default=argument_default,
                                help=help_)
        else:
            parser.add_argument(option(f.name), type=type(default), default=argument_default, help=help_,
                                metavar=f.name.upper())


def add_run_options(parser: argparse.ArgumentParser, name: str, resume_example: str | None = None,
                    progress_help: str = "no progress bar", out_help: str | None = None) -> None:
    """--out (the run folder), --resume (if the application can continue a run), --overwrite,
    --no-progress. ``main`` refuses an --out that already holds files unless --resume or --overwrite
    is given (:func:`check_out`), before any work."""
    parser.add_argument("--out", type=Path, default=None,
                        help=out_help or f"run folder (default runs/{name}-TIMESTAMP)")
    if resume_example is not None:
        parser.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint "
                                                                  f"(e.g. with a larger {resume_example})")
    parser.add_argument("--overwrite", action="store_true", help="write into an --out folder that already holds "
                                                                 "files (a run's files are replaced)")
    parser.add_argument("--no-progress", action="store_true", help=progress_help)
    parser.set_defaults(check_out=True)


def check_out(args: argparse.Namespace) -> None:
    """Refuse to write a run into a folder that already holds files (an earlier run, or anything else)
    unless ``--resume`` continues it or ``--overwrite`` says so: nothing is lost by a repeated command."""
    out = getattr(args, "out", None)
    if out is None or getattr(args, "resume", False) or getattr(args, "overwrite", False):
        return
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise TiefnetError(f"--out {out} is {'a symbolic link' if out.is_symlink() else 'a file'}, not a folder")
    if out.is_dir():
        names = sorted(entry.name for entry in out.iterdir())
        if names:
            shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
            resume = " continue it with --resume," if hasattr(args, "resume") else ""
            raise TiefnetError(f"--out {out} already holds files ({shown}):{resume} replace them with --overwrite, "
                               f"or choose another folder")


def config_from(args: argparse.Namespace, config_class: type, **overrides: Any) -> Any:
    """The Config of the parsed options; with ``args.resume``, the settings saved in ``args.out``
    for the options not given; ``overrides`` last (options that are not fields, like --no-verify)."""
    resume = getattr(args, "resume", False)
    if resume and args.out is None:
        raise TiefnetError("--resume needs --out DIR, the run folder to continue")
    settings = saved_settings(args.out, config_class) if resume else {}
    given = {f.name: getattr(args, f.name) for f in fields(config_class) if hasattr(args, f.name)}
    return config_class(**{**settings, **given, **overrides})


def add_actions(parser: argparse.ArgumentParser) -> Any:
    """Sub-commands of ``parser`` (``tiefnet charrnn train|sample``); without one, the help and exit 2."""
    parser.set_defaults(handler=lambda args: parser.print_help() or EXIT_USAGE)
    return parser.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)

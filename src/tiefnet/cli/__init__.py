"""The ``tiefnet`` command line: parses arguments and calls the applications.

    tiefnet mnist [--model dense|cnn] [--hidden 30] [--cost quadratic] [--eta 3.0] ... [--out DIR]
    tiefnet predict --model DIR IMAGE...;  tiefnet ensemble --models DIR DIR DIR...      (cli/mnist.py)
    tiefnet experiment NAME [--out DIR]                                                  (cli/experiment.py)
    tiefnet charrnn train [TEXT] --out DIR;  tiefnet charrnn sample --model DIR          (cli/charrnn.py)
    tiefnet gridworld | qlearn [ENV] | dqn [train] ENV --out DIR | dqn play --model DIR  (cli/rl.py)
    tiefnet alphazero train GAME --out DIR;  tiefnet alphazero arena A B;  tiefnet play GAME --model DIR  (cli/alphazero.py)
    tiefnet hpsearch --space "eta=log:0.01..10" ... [--strategy lecture] [--storage URL --study NAME]  (cli/hpsearch.py)
    tiefnet serve [--models DIR ...] [--runs DIR] [--host 127.0.0.1] [--port 8000]  (cli/serve.py)

Each command module has ``add_commands(sub)``, which adds its sub-parsers with a ``handler``
(parsed arguments -> exit code), and may have ``shorthand(argv) -> argv`` for a short form of its
command line. A new application adds a module and its name to :data:`COMMANDS`.

The error contract: a :class:`~tiefnet.errors.TiefnetError` or an OSError is one line
``tiefnet: error: ...`` on stderr and exit code 1, never a traceback; a usage error exit code 2;
Ctrl-C one line ``tiefnet: interrupted...`` (for a run, where its files are and how to resume it,
see :class:`tiefnet.runs.RunInterrupted`) and exit code 130.
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import Sequence

from tiefnet import __version__
from tiefnet.cli.common import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, Parser, check_out
from tiefnet.errors import TiefnetError

COMMANDS = ["mnist", "experiment", "charrnn", "caption", "style", "rl", "alphazero", "hpsearch", "serve"]  # modules of tiefnet.cli, in the order of `tiefnet --help`


def build_parser(modules: Sequence) -> Parser:
    parser = Parser(prog="tiefnet", description="Deep learning from first principles, after the lecture notes.")
    parser.add_argument("--version", action="version", version=f"tiefnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in modules:
        module.add_commands(sub)
    return parser


def _device_problem() -> str | None:
    """What is wrong with TIEFNET_DEVICE (None if nothing), without importing tiefnet.backend."""
    device = os.environ.get("TIEFNET_DEVICE", "cpu").strip().lower() or "cpu"
    return None if device in ("cpu", "gpu") else f"TIEFNET_DEVICE={device!r} is not one of 'cpu', 'gpu'"


def _import_commands(argv: Sequence[str]) -> list:
    """The command modules (they import tiefnet.backend, which picks NumPy or CuPy). With a bad
    TIEFNET_DEVICE the help is still shown (built with the CPU backend, and a note of the problem);
    any command is refused with that one line."""
    problem = _device_problem()
    wants_help = not argv or any(a in ("-h", "--help", "--version") for a in argv)
    if problem is None or not wants_help or "tiefnet.backend" in sys.modules:
        return [importlib.import_module(f"tiefnet.cli.{name}") for name in COMMANDS]
    print(f"tiefnet: note: {problem}; the help below is shown, any command would be refused", file=sys.stderr)
    saved = os.environ["TIEFNET_DEVICE"]
    os.environ["TIEFNET_DEVICE"] = "cpu"
    try:
        return [importlib.import_module(f"tiefnet.cli.{name}") for name in COMMANDS]
    finally:
        os.environ["TIEFNET_DEVICE"] = saved


def main(argv: Sequence[str] | None = None) -> int:
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        modules = _import_commands(argv)
        for module in modules:
            argv = module.shorthand(argv) if hasattr(module, "shorthand") else argv
        parser = build_parser(modules)
        try:
            args, unknown = parser.parse_known_args(argv)
        except SystemExit as exit_:  # --help, --version, or a usage error already printed
            return int(exit_.code or 0)
        if unknown:  # named by the (sub-)command that was parsing, pointing to its own help
            prog = getattr(args, "_prog", parser.prog)
            print(f"{prog}: error: unrecognized arguments: {' '.join(unknown)} (see {prog} --help)", file=sys.stderr)
            return EXIT_USAGE
        if not getattr(args, "handler", None):
            parser.print_help()
            return EXIT_USAGE
        problem = _device_problem()
        if problem is not None:  # the help was built on the CPU backend; no command runs so
            raise TiefnetError(problem)
        if getattr(args, "check_out", False):
            check_out(args)
        return args.handler(args)
    except TiefnetError as error:
        print(f"tiefnet: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as interrupt:  # a RunInterrupted says where the run's files are
        print("tiefnet: interrupted" + (f"; {interrupt}" if str(interrupt) else ""), file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (tiefnet gridworld | head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except OSError as error:
        print(f"tiefnet: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except MemoryError:  # the last line of defence: sizes are checked against tiefnet.limits before allocating
        print("tiefnet: error: out of memory (a setting or a model too large for this machine)", file=sys.stderr)
        return EXIT_ERROR

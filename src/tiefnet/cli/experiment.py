"""``tiefnet experiment NAME``: one experiment or figure of the lecture (:mod:`tiefnet.experiments`)."""
from __future__ import annotations

import argparse

from tiefnet import experiments
from tiefnet.backend import thread_limit
from tiefnet.cli.common import add_run_options, default_out
from tiefnet.errors import TiefnetError
from tiefnet.settings import check_seed


def add_commands(sub) -> None:
    names = experiments.EXPERIMENTS
    p = sub.add_parser("experiment", help="reproduce an experiment or figure of the lecture",
                       description="Run one lecture experiment; writes a PNG figure and a JSON of its numbers.",
                       epilog="experiments: " + "; ".join(f"{k}: {v.DESCRIPTION}" for k, v in names.items()))
    p.add_argument("name", choices=sorted(names), metavar="NAME", help=", ".join(sorted(names)))
    p.add_argument("--epochs", type=int, default=None, help="override the lecture's number of epochs")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads")
    p.add_argument("--quick", action="store_true", help="a tiny budget: check that it runs, not the result")
    add_run_options(p, "NAME", out_help="output folder (default runs/NAME-TIMESTAMP)")
    p.set_defaults(handler=_cmd_experiment)


def _cmd_experiment(args: argparse.Namespace) -> int:
    out = args.out or default_out(args.name)
    if args.epochs is not None and args.epochs < 1:
        raise TiefnetError(f"--epochs {args.epochs} must be at least 1")
    if args.threads < 1:
        raise TiefnetError(f"--threads {args.threads} must be at least 1")
    check_seed(args.seed, "--seed")
    with thread_limit(args.threads):
        experiments.run(args.name, out, epochs=args.epochs, seed=args.seed, quick=args.quick,
                        progress=not args.no_progress)
    print(f"results in {out}")
    return 0

"""``tiefnet serve``: a local web page over trained models and the lecture's small experiments
(draw a digit for a ``tiefnet mnist`` model; step value and policy iteration on the grid world)."""
from __future__ import annotations

import argparse
from pathlib import Path

from tiefnet.errors import ConfigError

EPILOG = """\
examples:
  tiefnet mnist --out runs/mnist && tiefnet serve --models runs/mnist    # then open http://127.0.0.1:8000
  tiefnet serve --runs runs --port 8080                                   # every tiefnet mnist folder in runs/
The API's schema is at /openapi.json.
"""


def add_commands(sub) -> None:
    p = sub.add_parser("serve", help="a local web page: draw a digit, step the grid world (2.4, 5.1)",
                       description="Serve a local web page over trained models: draw a digit and see what a "
                                   "tiefnet mnist model predicts (its probabilities and hidden layer), step value "
                                   "and policy iteration on the lecture's grid world. Works offline.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=Path, nargs="+", default=[], metavar="DIR",
                   help="tiefnet mnist run folders (model.npz + model.json) to serve")
    p.add_argument("--runs", type=Path, default=None, metavar="DIR",
                   help="also serve every tiefnet mnist run folder directly under DIR")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.set_defaults(handler=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from tiefnet.serve import create_app, find_models

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port} is not a port (1..65535)")
    models = find_models(args.models, args.runs)
    app = create_app(models)
    shown = ", ".join(f"{name} ({p.kind})" for name, p in models.items()) or "no model (the grid world only)"
    print(f"tiefnet serve: {shown}; open http://{args.host}:{args.port}/  (Ctrl-C stops it)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0

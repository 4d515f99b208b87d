"""``tiefnet serve``: a local web page over trained models and the lecture's small experiments: draw a
digit for a ``tiefnet mnist`` model, train a small one and watch it learn, step value and policy
iteration on the grid world, play against an AlphaZero agent, let a char-rnn write, caption a scene
with attention, stylise a picture."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tiefnet.errors import ConfigError

EPILOG = """\
examples:
  tiefnet mnist --out runs/mnist && tiefnet serve --models runs/mnist    # then open http://127.0.0.1:8000
  tiefnet serve --models runs/mnist runs/connect4 runs/charrnn    # a digit model, an agent, a char-rnn
  tiefnet serve --runs runs --port 8080                                   # every model folder in runs/
Model folders of tiefnet mnist, alphazero train, charrnn train, caption train and fast-style train are
shown in their views (Handwriting, Play, Text, Captions and style); Train and Grid world need none.
The API's schema is at /openapi.json.
"""


def add_commands(sub) -> None:
    p = sub.add_parser("serve", help="a local web page: draw, train, play, write, caption, stylise",
                       description="Serve a local web page over trained models: draw a digit and see what a "
                                   "tiefnet mnist model predicts (its probabilities and hidden layer); train a small "
                                   "network and watch its accuracy rise; step value and policy iteration on the "
                                   "lecture's grid world; play against an AlphaZero agent and see its search; let a "
                                   "char-rnn write; caption a scene with per-word attention; stylise a picture. "
                                   "Works offline.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=Path, nargs="+", default=[], metavar="DIR",
                   help="model folders (model.npz + model.json) to serve: of tiefnet mnist, alphazero "
                        "train, charrnn train, caption train or fast-style train")
    p.add_argument("--runs", type=Path, default=None, metavar="DIR",
                   help="also serve every such model folder directly under DIR")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.set_defaults(handler=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from tiefnet.serve import create_app, find_models

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port} is not a port (1..65535)")
    models = find_models(args.models, args.runs, warn=lambda line: print(f"tiefnet serve: {line}", file=sys.stderr))
    app = create_app(models)
    shown = ", ".join(f"{name} ({m.app} {m.kind})" for name, m in models.items()) or \
        "no model (Train and Grid world only)"
    print(f"tiefnet serve: {shown}; open http://{args.host}:{args.port}/  (Ctrl-C stops it)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0

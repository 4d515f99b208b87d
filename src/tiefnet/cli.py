"""The ``tiefnet`` command line: parses arguments and calls the applications.

    tiefnet mnist [--model dense|cnn] [--hidden 30] [--cost quadratic] [--eta 3.0] ... [--out DIR]
    tiefnet predict --model DIR IMAGE...
    tiefnet ensemble --models DIR DIR DIR...
    tiefnet experiment NAME [--out DIR]
    tiefnet charrnn train [TEXT] --out DIR;  tiefnet charrnn sample --model DIR [--prime TEXT]
    tiefnet gridworld | qlearn [ENV] | dqn [train] ENV --out DIR | dqn play --model DIR   (in cli_rl.py)

Errors are one line on stderr and a non-zero exit code, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Sequence

from tiefnet.errors import TiefnetError

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + error
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _default_out(name: str) -> Path:
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def _add_mnist(sub) -> None:
    from tiefnet.vision.mnist import MODEL_DEFAULTS, Config

    p = sub.add_parser("mnist", help="train a feed-forward or convolutional network on MNIST (lecture 2.4-3.3)",
                       description="Train a network on MNIST. The defaults are the lecture's network: 784-30-10, "
                                   "sigmoid, quadratic cost, eta 3.0, mini-batch 10, 30 epochs. --model cnn trains "
                                   "Nielsen's chapter-6 CNN, with the defaults shown as 'cnn: ...'.",
                       epilog="With --resume, options not given are those of the run being continued.")
    for f in fields(Config):
        if f.name == "verify":
            continue
        if f.metadata.get("by_model"):  # the default depends on --model
            default = MODEL_DEFAULTS["dense"][f.name]
            shown = ", ".join(f"{model}: {values[f.name]!r}" for model, values in MODEL_DEFAULTS.items())
        else:
            default, shown = f.default, repr(f.default)
        # no argparse default: an option left out is then told apart from one given (--resume)
        p.add_argument("--" + f.name.replace("_", "-"), type=type(default), default=argparse.SUPPRESS,
                       help=f"{f.metadata.get('help', '')} (default: {shown})", metavar=f.name.upper())
    p.add_argument("--no-verify", action="store_true", help="skip the SHA-256 check of --data files")
    p.add_argument("--out", type=Path, default=None, help="run folder (default runs/mnist-TIMESTAMP)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint (e.g. with a larger --epochs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_mnist)


def _cmd_mnist(args) -> int:
    from tiefnet.settings import saved_settings
    from tiefnet.vision.mnist import Config, run

    if args.resume and args.out is None:
        raise TiefnetError("--resume needs --out DIR, the run folder to continue")
    settings = saved_settings(args.out, Config) if args.resume else {}
    given = {f.name: getattr(args, f.name) for f in fields(Config) if hasattr(args, f.name)}
    if args.no_verify:
        given["verify"] = False
    config = Config(**{**settings, **given})
    out = args.out = args.out or _default_out("mnist")
    summary = run(config, out, progress=not args.no_progress, resume=args.resume)
    acc, best = summary["test_accuracy"], summary["best_test_accuracy"]
    if acc is not None:
        print(f"test accuracy {100 * acc:.2f}% (best epoch {100 * best:.2f}%), "
              f"{summary['seconds_per_epoch']:.2f} s/epoch; results in {out}")
    return 0


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="classify your own digit images with a trained model",
                       description="Print the digit and its probabilities for each image (PNG/JPEG, any size: "
                                   "centred and scaled the MNIST way).")
    p.add_argument("--model", type=Path, required=True, help="a run folder holding model.npz + model.json")
    p.add_argument("images", nargs="+", type=Path, help="image files")
    p.set_defaults(handler=_cmd_predict)


def _cmd_predict(args) -> int:
    from tiefnet.backend import to_numpy, xp
    from tiefnet.checkpoint import load_model
    from tiefnet.data.image import load_digit
    from tiefnet.vision.ensemble import check_digit_model, probabilities

    model, _ = load_model(args.model)
    check_digit_model(model, args.model)
    for path in args.images:
        p = to_numpy(probabilities(model, xp.asarray(load_digit(path)[None, :])))[0]
        ranked = sorted(range(len(p)), key=lambda k: -p[k])
        probs = "  ".join(f"{k}: {p[k]:.3f}" for k in ranked[:3])
        print(f"{path}: {ranked[0]}  ({probs})")
    return 0


def _add_ensemble(sub) -> None:
    p = sub.add_parser("ensemble", help="majority vote of several trained models (Nielsen's chapter 6)",
                       description="Load several trained run folders (e.g. tiefnet mnist --model cnn with different "
                                   "--seed) and report the accuracy of each and of their majority vote; a tie is "
                                   "broken by the summed probabilities.")
    p.add_argument("--models", type=Path, nargs="+", required=True, metavar="DIR",
                   help="run folders holding model.npz + model.json")
    p.add_argument("--split", choices=("test", "validation"), default="test", help="the images to classify")
    p.add_argument("--data", type=str, default="", help="a folder with your own MNIST IDX files")
    p.add_argument("--no-verify", action="store_true", help="skip the SHA-256 check of --data files")
    p.add_argument("--out", type=Path, default=None, help="also write the accuracies to this JSON file")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads")
    p.set_defaults(handler=_cmd_ensemble)


def _cmd_ensemble(args) -> int:
    import json

    from tiefnet.backend import thread_limit
    from tiefnet.data.mnist import load_mnist
    from tiefnet.vision.ensemble import evaluate_ensemble, load_members

    if args.threads < 1:
        raise TiefnetError(f"--threads {args.threads} must be at least 1")
    members = load_members(args.models)
    splits = load_mnist(args.data or None, verify=not args.no_verify)
    with thread_limit(args.threads):
        result = evaluate_ensemble(members, getattr(splits, args.split))
    for folder, accuracy in zip(args.models, result["member_accuracy"]):
        print(f"{folder}: {100 * accuracy:.2f}%")
    print(f"majority vote of {len(members)} models: {100 * result['vote_accuracy']:.2f}% on the "
          f"{result['images']} {args.split} images ({result['ties']} ties broken by the summed probabilities)")
    if args.out is not None:
        result = {"models": [str(m) for m in args.models], "split": args.split, **result}
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _add_experiment(sub) -> None:
    from tiefnet.experiments import EXPERIMENTS

    p = sub.add_parser("experiment", help="reproduce an experiment or figure of the lecture",
                       description="Run one lecture experiment; writes a PNG figure and a JSON of its numbers.",
                       epilog="experiments: " + "; ".join(f"{k}: {v.DESCRIPTION}" for k, v in EXPERIMENTS.items()))
    p.add_argument("name", choices=sorted(EXPERIMENTS), metavar="NAME", help=", ".join(sorted(EXPERIMENTS)))
    p.add_argument("--out", type=Path, default=None, help="output folder (default runs/NAME-TIMESTAMP)")
    p.add_argument("--epochs", type=int, default=None, help="override the lecture's number of epochs")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads")
    p.add_argument("--quick", action="store_true", help="a tiny budget: check that it runs, not the result")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_experiment)


def _cmd_experiment(args) -> int:
    from tiefnet.backend import thread_limit
    from tiefnet.experiments import EXPERIMENTS

    out = args.out or _default_out(args.name)
    if args.epochs is not None and args.epochs < 1:
        raise TiefnetError(f"--epochs {args.epochs} must be at least 1")
    with thread_limit(args.threads):
        EXPERIMENTS[args.name].run(out, epochs=args.epochs, seed=args.seed, quick=args.quick,
                                   progress=not args.no_progress)
    print(f"results in {out}")
    return 0


def _add_charrnn(sub) -> None:
    from tiefnet.text.charrnn import Config

    p = sub.add_parser("charrnn", help="character-level language model: train an LSTM/RNN on a text, sample from it "
                                       "(lecture 4.1-4.4)",
                       description="Train a character-level RNN or LSTM with truncated BPTT, or sample text from one.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    train = actions.add_parser("train", help="train on a text file (default: the shipped tiny-shakespeare)",
                               description="Train a char-rnn; writes config.json, metrics.jsonl (validation_loss in "
                                           "nats per character), model.npz/.json, summary.json, loss.png, samples.txt.")
    train.add_argument("text", nargs="?", default="", help="a UTF-8 text file (default: tiny-shakespeare)")
    for f in fields(Config):
        if f.name == "text":
            continue
        train.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default,
                           help=f"{f.metadata.get('help', '')} (default: {f.default!r})", metavar=f.name.upper())
    train.add_argument("--out", type=Path, default=None, help="run folder (default runs/charrnn-TIMESTAMP)")
    train.add_argument("--no-progress", action="store_true", help="no progress lines")
    train.set_defaults(handler=_cmd_charrnn_train)
    smp = actions.add_parser("sample", help="write text with a trained model",
                             description="Prime a trained char-rnn with --prime, then sample one character at a "
                                         "time from softmax(z / temperature).")
    smp.add_argument("--model", type=Path, required=True, help="a charrnn run folder (model.npz + model.json)")
    smp.add_argument("--prime", default="", help="text to start from (default: a random character)")
    smp.add_argument("--temperature", type=float, default=1.0, help="below 1: safer, above 1: wilder (default 1.0)")
    smp.add_argument("--length", type=int, default=300, help="characters to sample after the prime (default 300)")
    smp.add_argument("--seed", type=int, default=None, help="random seed (default: fresh)")
    smp.set_defaults(handler=_cmd_charrnn_sample)
    p.set_defaults(handler=lambda args: p.print_help() or EXIT_USAGE)


def _cmd_charrnn_train(args) -> int:
    from tiefnet.text.charrnn import Config, run

    config = Config(**{f.name: getattr(args, f.name) for f in fields(Config)})
    out = args.out or _default_out("charrnn")
    summary = run(config, out, progress=not args.no_progress)
    print(f"validation loss {summary['final_validation_loss']:.3f} nats/char "
          f"({summary['final_validation_bpc']:.3f} bits/char), {summary['chars_per_second']:,.0f} chars/s; "
          f"results in {out}")
    return 0


def _cmd_charrnn_sample(args) -> int:
    import numpy

    from tiefnet.text.charrnn import load_sampler, sample

    model, vocab = load_sampler(args.model)
    print(sample(model, vocab, args.prime, args.length, args.temperature, numpy.random.default_rng(args.seed)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from tiefnet import __version__
    from tiefnet.cli_rl import add_rl_commands

    parser = _Parser(prog="tiefnet", description="Deep learning from first principles, after the lecture notes.")
    parser.add_argument("--version", action="version", version=f"tiefnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_mnist(sub)
    _add_predict(sub)
    _add_ensemble(sub)
    _add_experiment(sub)
    _add_charrnn(sub)
    add_rl_commands(sub)  # chapter 5: gridworld, qlearn, dqn (tiefnet/cli_rl.py)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = None
    try:
        import tiefnet.backend  # noqa: F401 - picks NumPy or CuPy; a bad TIEFNET_DEVICE is one line

        from tiefnet.cli_rl import dqn_shorthand

        parser = build_parser()
        try:
            args = parser.parse_args(dqn_shorthand(list(sys.argv[1:] if argv is None else argv)))
        except SystemExit as exit_:  # --help, --version, or a usage error already printed
            return int(exit_.code or 0)
        if not getattr(args, "handler", None):
            parser.print_help()
            return EXIT_USAGE
        return args.handler(args)
    except TiefnetError as error:
        print(f"tiefnet: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        hint = ""
        if getattr(args, "command", None) == "mnist" and getattr(args, "out", None):
            hint = f"; every finished epoch is saved: continue with tiefnet mnist --resume --out {args.out}"
        print(f"tiefnet: interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as error:
        print(f"tiefnet: error: {error}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

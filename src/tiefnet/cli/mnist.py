"""``tiefnet mnist`` (train), ``tiefnet predict`` (classify your own images), ``tiefnet ensemble``
(majority vote of trained models): the MNIST classifiers of lecture 2.4-3.3."""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import Field
from pathlib import Path
from typing import Any

from tiefnet.backend import thread_limit, to_numpy, xp
from tiefnet.cli.common import EXIT_ERROR, add_config_options, add_run_options, config_from, default_out
from tiefnet.data.image import load_digit
from tiefnet.data.mnist import load_mnist
from tiefnet.errors import DataError, TiefnetError
from tiefnet.files import write_json
from tiefnet.vision.ensemble import evaluate_ensemble, load_digit_model, load_members, probabilities
from tiefnet.vision.mnist import MODEL_DEFAULTS, Config, check_run_folder, run


def add_commands(sub) -> None:
    _add_mnist(sub)
    _add_predict(sub)
    _add_ensemble(sub)


def _model_default(f: Field) -> tuple[Any, str]:
    """A setting whose default depends on --model shows them all; its type is that of dense's."""
    if not f.metadata.get("by_model"):
        return f.default, repr(f.default)
    shown = ", ".join(f"{model}: {values[f.name]!r}" for model, values in MODEL_DEFAULTS.items())
    return MODEL_DEFAULTS["dense"][f.name], shown


def _add_mnist(sub) -> None:
    p = sub.add_parser("mnist", help="train a feed-forward or convolutional network on MNIST (lecture 2.4-3.3)",
                       description="Train a network on MNIST. The defaults are the lecture's network: 784-30-10, "
                                   "sigmoid, quadratic cost, eta 3.0, mini-batch 10, 30 epochs. --model cnn trains "
                                   "Nielsen's chapter-6 CNN, with the defaults shown as 'cnn: ...'.",
                       epilog="With --resume, options not given are those of the run being continued.")
    add_config_options(p, Config, skip=("verify",), resumable=True, default_of=_model_default)
    p.add_argument("--no-verify", action="store_true", help="skip the SHA-256 check of --data files")
    add_run_options(p, "mnist", resume_example="--epochs")
    p.set_defaults(handler=_cmd_mnist)


def _cmd_mnist(args: argparse.Namespace) -> int:
    if args.resume and args.out is not None:  # before its config.json is read as mnist settings
        check_run_folder(args.out)
    config = config_from(args, Config, **({"verify": False} if args.no_verify else {}))
    out = args.out or default_out("mnist")
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


def _cmd_predict(args: argparse.Namespace) -> int:
    """Each image that cannot be read is one error line; the others are still classified."""
    model = load_digit_model(args.model)
    failed = 0
    for path in args.images:
        try:
            x = load_digit(path)
        except DataError as error:
            print(f"tiefnet: error: {error}", file=sys.stderr)
            failed += 1
            continue
        p = to_numpy(probabilities(model, xp.asarray(x[None, :])))[0]
        ranked = sorted(range(len(p)), key=lambda k: -p[k])
        probs = "  ".join(f"{k}: {p[k]:.3f}" for k in ranked[:3])
        print(f"{path}: {ranked[0]}  ({probs})")
    return EXIT_ERROR if failed else 0


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


def _check_out_file(out: Path) -> None:
    """--out must be a file that can be written: its folder exists, and it is not a folder or a link."""
    if out.is_symlink() or out.is_dir():
        raise TiefnetError(f"--out {out} is {'a symbolic link' if out.is_symlink() else 'a folder'}, not a file")
    folder = out.parent
    if not folder.is_dir():
        raise TiefnetError(f"--out {out}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise TiefnetError(f"--out {out}: the folder {folder} is not writable")


def _cmd_ensemble(args: argparse.Namespace) -> int:
    if args.threads < 1:
        raise TiefnetError(f"--threads {args.threads} must be at least 1")
    if args.out is not None:  # before any work
        _check_out_file(args.out)
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
        write_json(args.out, result)  # atomic, never through a symlink
    return 0

"""``tiefnet charrnn train|sample``: the character-level language model of lecture 4.1-4.4."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy

from tiefnet.cli.common import add_actions, add_config_options, add_run_options, config_from, default_out
from tiefnet.settings import check_seed
from tiefnet.text.charrnn import MAX_SAMPLE_LENGTH, Config, load_sampler, run, sample

# measured: `/usr/bin/time -v tiefnet charrnn train --out runs/cr` (the defaults, --threads 1) on this
# project's 2-core AMD EPYC machine: 8 min 24 s wall, 500 s CPU, 13,549 chars/s, 234 MB resident
DEFAULT_RUN_TIME = "about 8.5 minutes on one core of a 2-core AMD EPYC machine (13,500 characters/s)"


def add_commands(sub) -> None:
    p = sub.add_parser("charrnn", help="character-level language model: train an LSTM/RNN on a text, sample from it "
                                       "(lecture 4.1-4.4)",
                       description="Train a character-level RNN or LSTM with truncated BPTT, or sample text from one.")
    actions = add_actions(p)
    train = actions.add_parser("train", help="train on a text file (default: the shipped tiny-shakespeare)",
                               description="Train a char-rnn; writes config.json, metrics.jsonl (validation_loss in "
                                           "nats per character), checkpoint.npz, model.npz/.json, summary.json, "
                                           f"loss.png, samples.txt. The default run (2 x LSTM 256, 2000 steps on "
                                           f"tiny-shakespeare) takes {DEFAULT_RUN_TIME}.",
                               epilog="With --resume, options not given are those of the run being continued; a run "
                                      "killed at any moment continues from its last checkpoint as if uninterrupted.")
    train.add_argument("text", nargs="?", default=argparse.SUPPRESS, help="a UTF-8 text file (default: tiny-shakespeare)")
    add_config_options(train, Config, skip=("text",), resumable=True)
    add_run_options(train, "charrnn", resume_example="--steps", progress_help="no progress lines")
    train.set_defaults(handler=_cmd_train)
    smp = actions.add_parser("sample", help="write text with a trained model",
                             description="Warm the model up on the start of its training text, prime it with "
                                         "--prime, then sample one character at a time from softmax(z / temperature).")
    smp.add_argument("--model", type=Path, required=True, help="a charrnn run folder (model.npz + model.json)")
    smp.add_argument("--prime", default="", help="text to start from (default: none, or a random character)")
    smp.add_argument("--temperature", type=float, default=1.0, help="below 1: safer, above 1: wilder (default 1.0)")
    smp.add_argument("--length", type=int, default=300,
                     help=f"characters to sample after the prime, at most {MAX_SAMPLE_LENGTH:,} (default 300)")
    smp.add_argument("--seed", type=int, default=None, help="random seed (default: fresh)")
    smp.set_defaults(handler=_cmd_sample)


def _cmd_train(args: argparse.Namespace) -> int:
    config = config_from(args, Config)
    out = args.out or default_out("charrnn")
    summary = run(config, out, progress=not args.no_progress, resume=args.resume)
    print(f"validation loss {summary['final_validation_loss']:.3f} nats/char "
          f"({summary['final_validation_bpc']:.3f} bits/char), {summary['chars_per_second']:,.0f} chars/s; "
          f"results in {out}")
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    if args.seed is not None:
        check_seed(args.seed)
    model, vocab, warmup = load_sampler(args.model)
    print(sample(model, vocab, args.prime, args.length, args.temperature, numpy.random.default_rng(args.seed),
                 warmup))
    return 0

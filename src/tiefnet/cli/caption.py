"""``tiefnet caption train|describe|evaluate|scenes``: image captioning, lecture 4.4.1-4.4.2."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from tiefnet.cli.common import add_actions, add_config_options, add_run_options, config_from, default_out
from tiefnet.errors import ConfigError
from tiefnet.text.caption_run import Config

# measured on this project's 2-core AMD EPYC machine, --threads 1 (bench/RESULTS.md, "Captioning")
DEFAULT_RUN_TIME = ("14 (attention) to 20 (Show and Tell) minutes on one core of a 2-core AMD EPYC machine "
                    "shared with other runs")


def add_commands(sub) -> None:
    p = sub.add_parser("caption", help="image captioning: a CNN encoder and an LSTM decoder, with or without "
                                       "attention (lecture 4.4.1-4.4.2)",
                       description="Train a captioning model on generated MNIST scenes (or Flickr8k / COCO "
                                   "captions), describe images with it, evaluate it.")
    actions = add_actions(p)
    train = actions.add_parser("train", help="train Show and Tell, or Show, Attend and Tell with --attention",
                               description="Teacher forcing on START w1 ... wn END; writes config.json, metrics.jsonl "
                                           "(train loss and validation BLEU per epoch), checkpoint.npz, model.npz/.json "
                                           "(the epoch of the best validation BLEU-4), summary.json (test scores), "
                                           f"loss.png, samples.png. The default run takes {DEFAULT_RUN_TIME}.",
                               epilog="Data: by default generated scenes of 1-3 MNIST digits with captions like 'a "
                                      "large red 7 in the upper left and a small green 3 below it' (no download). "
                                      "--data DIR takes a Flickr8k folder (Images/ + captions.txt), --data FILE.json "
                                      "a COCO captions file (--images: its image folder). With --resume, options "
                                      "not given are those of the run being continued.")
    add_config_options(train, Config, resumable=True)
    add_run_options(train, "caption", resume_example="--epochs", progress_help="no progress bar")
    train.set_defaults(handler=_cmd_train)

    describe = actions.add_parser("describe", help="print a caption for each image",
                                  description="Caption image files (PNG, JPEG, ...; squashed to the model's size).")
    describe.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    describe.add_argument("--model", type=Path, required=True, help="a caption run folder (model.npz + model.json)")
    describe.add_argument("--beam", type=int, default=1, help="beam width (default 1: greedy)")
    describe.add_argument("--attention-map", type=Path, default=None, metavar="FILE",
                          help="write a PNG with the attention over the image for every word (attention models)")
    describe.set_defaults(handler=_cmd_describe)

    evaluate = actions.add_parser("evaluate", help="BLEU-1..4, CIDEr, METEOR (with Java) on a split",
                                  description="Score the captions of a split of the data the model was trained on "
                                              "(scenes are generated again from the run's seed).")
    evaluate.add_argument("--model", type=Path, required=True, help="a caption run folder")
    evaluate.add_argument("--split", default="test", help="test (default), compositional (scenes only), validation or train")
    evaluate.add_argument("--beam", type=int, default=1, help="beam width (default 1: greedy)")
    evaluate.add_argument("--no-meteor", action="store_true", help="skip METEOR (it starts a Java process)")
    evaluate.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the scores to FILE")
    evaluate.set_defaults(handler=_cmd_evaluate)

    scenes = actions.add_parser("scenes", help="write generated scenes as PNG files with their captions",
                                description="Write COUNT scenes of a split as PNG files and captions.json into --out.")
    scenes.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    scenes.add_argument("--split", default="test", help="train, validation, test (default) or compositional")
    scenes.add_argument("--count", type=int, default=8, help="how many scenes (default 8)")
    scenes.add_argument("--seed", type=int, default=0, help="the seed of the scenes (default 0, as train's)")
    scenes.add_argument("--size", type=int, default=64, help="the canvas, size x size pixels (default 64, as "
                                                             "train's; give a model's --size to describe them with it)")
    scenes.set_defaults(handler=_cmd_scenes)


def _cmd_train(args: argparse.Namespace) -> int:
    from tiefnet.text.caption_run import run

    config = config_from(args, Config)
    out = args.out or default_out("caption")
    summary = run(config, out, progress=not args.no_progress, resume=args.resume)
    print(f"test BLEU-4 {summary['test']['BLEU-4']:.3f}, CIDEr {summary['test']['CIDEr']:.3f} (best epoch "
          f"{summary['best_epoch']}); results in {out}")
    return 0


def _cmd_describe(args: argparse.Namespace) -> int:
    import numpy

    from tiefnet.data.caption_files import read_image
    from tiefnet.text.caption import ShowAttendTell
    from tiefnet.text.caption_run import generate
    from tiefnet.text.caption_use import attention_sheet, load_captioner

    model, vocab, info = load_captioner(args.model)
    if args.attention_map is not None and not isinstance(model, ShowAttendTell):
        raise ConfigError(f"--attention-map: {args.model} is a Show-and-Tell model, it has no attention")
    images = numpy.stack([read_image(path, info["size"]) for path in args.images])
    words, alphas = generate(model, images, vocab, info["max_length"], args.beam)
    for path, caption in zip(args.images, words):
        print(f"{path}: {' '.join(caption)}")
    if args.attention_map is not None:
        attention_sheet(images, words, alphas, args.attention_map)
        print(f"attention maps in {args.attention_map}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from tiefnet.text.caption_use import evaluate, load_captioner, split_of

    model, vocab, info = load_captioner(args.model)
    data = split_of(info, args.split)
    scores = evaluate(model, vocab, data, info["max_length"], args.beam, meteor=not args.no_meteor)
    for key, value in scores.items():
        if key not in ("examples", "log_p"):
            print(f"{key:24s} {value:.4f}" if isinstance(value, float) else f"{key:24s} {value}")
    for example in scores["examples"][:3]:
        print(f"  {example['name']}: {example['generated']}  (reference: {example['reference']})")
    if args.json is not None:
        args.json.write_text(json.dumps({"model": str(args.model), "split": args.split, **scores}, indent=2) + "\n")
    return 0


def _cmd_scenes(args: argparse.Namespace) -> int:
    from PIL import Image

    from tiefnet.data.scenes import make_scenes
    from tiefnet.files import write_json

    scenes = make_scenes(args.split, args.count, args.seed, args.size)
    args.out.mkdir(parents=True, exist_ok=True)
    captions = {}
    for name, image, refs in zip(scenes.names, scenes.images, scenes.captions):
        Image.fromarray(image).save(args.out / f"{name}.png")
        captions[f"{name}.png"] = [" ".join(words) for words in refs]
    write_json(args.out / "captions.json", captions)
    print(f"{len(captions)} scenes of the {args.split} split in {args.out}")
    return 0

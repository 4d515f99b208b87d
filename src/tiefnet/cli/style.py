"""``tiefnet style | style-train | stylize | style-convert``: artistic style transfer, lecture 3.4.

    tiefnet style CONTENT STYLE --out DIR        Gatys et al.: optimise the picture x^ itself
    tiefnet style-train STYLE --out DIR          Johnson et al.: train a transformation network N_FST
    tiefnet stylize --model DIR IMAGE... --out DIR   one forward pass of N_FST per picture
    tiefnet style-convert WEIGHTS --out FILE.npz     torchvision VGG-19 weights (.pth / .safetensors) -> .npz
"""
from __future__ import annotations

import argparse
from pathlib import Path

from tiefnet.cli.common import add_config_options, add_run_options, config_from, default_out
from tiefnet.data.pictures import MAX_PIXELS, PAINTINGS, PHOTOS

NETWORKS = ("The default feature network has random filters (no ImageNet weights can ship with tiefnet): it "
            "carries colours, strokes and texture statistics at five scales, which is enough to paint a photo "
            "in a painting's colours and brushwork, but it knows no objects, so it cannot keep a face a face the "
            "way VGG-19 does or move the style onto object parts. With ImageNet weights of your own, "
            "'tiefnet style-convert vgg19.pth --out vgg19.npz' and --net vgg19.npz give Gatys et al.'s network.")
NAMES = (f"Pictures are image files (PNG, JPEG, ...) or shipped names: the paintings {', '.join(PAINTINGS)}; "
         f"scikit-image's sample photos {', '.join(PHOTOS)}.")


def add_commands(sub) -> None:
    from tiefnet.vision.style import Config

    p = sub.add_parser("style", help="artistic style transfer: paint a photo in a painting's style (lecture 3.4)",
                       description="Gatys et al.: the feature network stays fixed and gradient descent runs on the "
                                   "picture x^ itself, L_total = alpha L_content + beta L_style, by backpropagation "
                                   "down to the pixels. Writes result.png, frames.gif, loss.png, metrics.jsonl, "
                                   "config.json, summary.json. 300 iterations at 256x256 take about 23 s on one core "
                                   "of a 2-core AMD EPYC machine.",
                       epilog=f"{NAMES} {NETWORKS}")
    p.add_argument("content", help="the photo (a file, or a sample photo name such as astronaut)")
    p.add_argument("style", help="the painting (a file, or starry_night, the_scream, shipwreck)")
    add_config_options(p, Config)
    add_run_options(p, "style")
    p.set_defaults(handler=_cmd_style)

    _add_train(sub)

    s = sub.add_parser("stylize", help="paint pictures with a trained fast-style network, one forward pass each",
                       description="Run a network trained by 'tiefnet style-train' on each picture and write "
                                   "<name>.png into --out.", epilog=NAMES)
    s.add_argument("images", nargs="+", metavar="IMAGE", help="pictures to paint")
    s.add_argument("--model", type=Path, required=True, help="a style-train run folder (model.npz + model.json)")
    s.add_argument("--out", type=Path, required=True, help="folder for the painted pictures")
    s.add_argument("--size", type=int, default=0, help="scale each picture's longer side to this many pixels "
                                                       "(default 0: keep its size)")
    s.add_argument("--max-pixels", type=int, default=MAX_PIXELS, help="refuse larger pictures (after --size; "
                                                                      f"default {MAX_PIXELS:,})")
    s.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    s.add_argument("--overwrite", action="store_true", help="replace painted pictures already in --out")
    s.set_defaults(handler=_cmd_stylize)

    c = sub.add_parser("style-convert", help="turn torchvision VGG-19 ImageNet weights into tiefnet's .npz",
                       description="Read torchvision's vgg19 state dict (.pth: its pickle parsed, never unpickled, "
                                   "no PyTorch needed) or a .safetensors file, check every layer, "
                                   "and write the feature layers as a tiefnet .npz for --net.")
    c.add_argument("weights", type=Path, help="vgg19 weights: .pth / .pt or .safetensors")
    c.add_argument("--out", type=Path, required=True, help="the .npz file to write")
    c.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    c.set_defaults(handler=_cmd_convert)


def _add_train(sub) -> None:
    from tiefnet.vision.fast_style_run import Config

    t = sub.add_parser("style-train", help="train a fast-style network for one painting (Johnson et al.)",
                       description="Train a transformation network N_FST (strided convolutions, five residual "
                                   "blocks, nearest upsampling + convolution, instance normalisation, reflection "
                                   "padding) with L_total on random crops of photos, so that 'tiefnet stylize' "
                                   "paints any picture in one forward pass. Writes config.json, metrics.jsonl, "
                                   "checkpoint.npz (--resume), model.npz/.json, loss.png, samples.png, "
                                   "summary.json.",
                       epilog=f"Photos: scikit-image's sample photos, or --images DIR. {NAMES} {NETWORKS}")
    t.add_argument("style", nargs="?", default=argparse.SUPPRESS,
                   help="the painting (a file, or starry_night, the_scream, shipwreck)")
    add_config_options(t, Config, skip=("style",), resumable=True)
    add_run_options(t, "style-train", resume_example="--steps")
    t.set_defaults(handler=_cmd_train)


def _cmd_style(args: argparse.Namespace) -> int:
    from tiefnet.vision.style import Config, run

    config = config_from(args, Config)
    out = args.out or default_out("style")
    summary = run(config, args.content, args.style, out, progress=not args.no_progress)
    reduction = summary["style_reduction"]  # None when the photo's own style cost is 0 (photo = painting)
    lower = "n/a" if reduction is None else f"{100 * reduction:.1f}% lower"
    print(f"L_style {summary['content_image']['style']:.4g} (the photo) -> {summary['result']['style']:.4g} "
          f"({lower}); L_content {summary['result']['content']:.4g} "
          f"(the painting's: {summary['style_image']['content']:.4g}); "
          f"{summary['seconds_per_iteration']:.3f} s per iteration; result in {Path(out) / 'result.png'}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from tiefnet.vision.fast_style_run import Config, run

    overrides = {"style": args.style} if hasattr(args, "style") else {}
    config = config_from(args, Config, **overrides)
    out = args.out or default_out("style-train")
    summary = run(config, out, progress=not args.no_progress, resume=args.resume)
    print(f"trained {summary['steps']} steps in {summary['seconds'] / 60:.1f} min; stylize with "
          f"tiefnet stylize --model {out} IMAGE... --out DIR")
    return 0


def _cmd_stylize(args: argparse.Namespace) -> int:
    from tiefnet.vision.fast_style import stylize_files

    written = stylize_files(args.model, args.images, args.out, size=args.size or None, max_pixels=args.max_pixels,
                            threads=args.threads, overwrite=args.overwrite)
    for path in written:
        print(path)
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from tiefnet.errors import ConfigError
    from tiefnet.vision.vgg import convert_weights

    if args.out.suffix != ".npz":
        raise ConfigError(f"--out {args.out}: name the converted weights FILE.npz (what --net reads)")
    if args.out.exists() and not args.overwrite:
        raise ConfigError(f"--out {args.out} exists; give --overwrite to replace it")
    path = convert_weights(args.weights, args.out)
    print(f"VGG-19 feature layers written to {path}; use them with tiefnet style --net {path}")
    return 0

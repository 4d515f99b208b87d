"""Fast style transfer against Gatys's optimisation of the same pair (issue 13): speed and perceptual loss.

For each photo (scaled so its shorter side is --size, centre-cropped to --size x --size): the
trained N_FST paints it in one forward pass (timed, best of --repeats), and Gatys's L-BFGS-B (--optimizer)
optimises x^ for the same photo and painting with the same feature network and weights for
--iterations passes. Both are scored by the same L_total = alpha L_content + beta L_style + tv L_TV
(the painting's Gram matrices rescaled to the picture's positions, as in training), beside the photo
itself (L_content 0, the full style cost). The JSON file holds the machine (CPU model, BLAS kernel).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/fast_style_compare.py --model runs/fst \
        --json bench/results/fast_style_compare.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

import _harness  # bench/_harness.py: machine, BLAS kernel, load

# the training photos (scikit-image's), and retina.jpg from the same folder, which training never saw
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
HELD_OUT = "retina.jpg"


def square(picture: np.ndarray, side: int) -> np.ndarray:
    """Scale the shorter side to ``side`` and keep the centre side x side."""
    from tiefnet.data.pictures import fit

    _, H, W = picture.shape
    scale = side / min(H, W)
    h, w = max(side, round(H * scale)), max(side, round(W * scale))
    picture = fit(picture, h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return np.ascontiguousarray(picture[:, top:top + side, left:left + side])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a tiefnet style-train run folder")
    parser.add_argument("--size", type=int, default=256, help="picture side (default 256)")
    parser.add_argument("--iterations", type=int, default=300, help="Gatys's passes (default 300)")
    parser.add_argument("--optimizer", default="lbfgs", help="Gatys's optimizer (default lbfgs: L-BFGS-B, as Gatys et al.)")
    parser.add_argument("--repeats", type=int, default=3, help="timed forward passes per photo (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    _harness.add_output_options(parser, markdown=False)
    args = parser.parse_args()
    env = _harness.announce_environment(f"{_harness.UNSET_OPENBLAS} .venv/bin/python bench/fast_style_compare.py "
                                        "--model DIR", torch=False)
    import skimage.data

    from tiefnet import backend
    from tiefnet.data.pictures import read_picture
    from tiefnet.vision import style
    from tiefnet.vision.fast_style import load_stylizer, stylize
    from tiefnet.vision.fast_style_run import Config, perceptual_loss

    net, info = load_stylizer(args.model)
    config = Config(**json.loads((args.model / "config.json").read_text()))
    loss = perceptual_loss(dataclasses.replace(config, crop=args.size))  # G_style at the picture's positions
    specs = [*PHOTOS, str(Path(skimage.data.__file__).parent / HELD_OUT)]
    rows = []
    with backend.picture_threads(args.threads):
        for spec in specs:
            x = square(read_picture(spec), args.size)
            a_content = loss.content_target(backend.asarray(x[None]))
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                x_fast = stylize(net, x)
                times.append(time.perf_counter() - start)
            started = time.perf_counter()
            gatys = style.optimise(loss, x[None].copy(), a_content, style.Config(iterations=args.iterations, optimizer=args.optimizer),
                                   lambda *_: None)
            gatys_seconds = time.perf_counter() - started
            photo, fast, slow = (loss.parts_of(backend.asarray(p), a_content) for p in (x[None], x_fast[None], gatys))
            total = {name: config.alpha * p["content"] + config.beta * p["style"] + config.tv * p["tv"]
                     for name, p in (("photo", photo), ("fast", fast), ("gatys", slow))}
            row = {"photo": Path(spec).stem, "held_out": spec.endswith(HELD_OUT), "forward_seconds": min(times),
                   "images_per_second": 1 / min(times), "gatys_seconds": gatys_seconds, "L_total": total,
                   "parts": {"photo": photo, "fast": fast, "gatys": slow},
                   "fast_over_gatys": total["fast"] / total["gatys"], "fast_over_photo": total["fast"] / total["photo"]}
            rows.append(row)
            print(f"{row['photo']:18s} forward {min(times):.3f} s ({1 / min(times):.1f} images/s); L_total photo "
                  f"{total['photo']:.4g}, N_FST {total['fast']:.4g}, Gatys ({args.iterations} it, {gatys_seconds:.0f} s) "
                  f"{total['gatys']:.4g}: N_FST / Gatys {row['fast_over_gatys']:.2f}", flush=True)
    results = {"model": str(args.model), "info": info, "size": args.size, "iterations": args.iterations,
               "optimizer": args.optimizer,
               "threads": args.threads, "rows": rows, "environment": env}
    _harness.write_json(args.json, results)


if __name__ == "__main__":
    main()

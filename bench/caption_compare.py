"""Show and Tell against Show, Attend and Tell (lecture 4.4.1-4.4.2) on the generated scenes.

    .venv/bin/python bench/caption_compare.py --show-tell runs/cap-st --attention runs/cap-att

For both trained model folders: BLEU-1..4, CIDEr (METEOR with Java) of the greedy captions on the test
and the compositional split, BLEU-4 and the share of digits named wrongly by the number of digits, beam
search (width 3) beside greedy, the attention mass inside the named digit's box beside a uniform map's,
and each run's training time (summary.json). Prints a table and writes the figures as JSON (--json).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import _harness
import numpy

from tiefnet import backend
from tiefnet.text.caption_use import evaluate, load_captioner, split_of


def measure(folder: Path, widths: tuple[int, ...], meteor: bool) -> dict:
    model, vocab, info = load_captioner(folder)
    summary = json.loads((folder / "summary.json").read_text())
    result = {"folder": str(folder), "training_seconds": summary["seconds"], "best_epoch": summary["best_epoch"],
              "epochs": summary["epochs"]}
    for split in ("test", "compositional"):
        data = split_of(info, split)
        for width in widths:
            tick = time.perf_counter()
            scores = evaluate(model, vocab, data, info["max_length"], width, meteor and width == 1)
            scores.pop("examples")
            scores["seconds"] = time.perf_counter() - tick
            result[f"{split}/beam{width}"] = scores
        if 1 in widths:  # how often each wider beam found a caption at least as probable as greedy's
            greedy_log_p = numpy.array(result[f"{split}/beam1"]["log_p"])
            for width in widths:
                wide = numpy.array(result[f"{split}/beam{width}"]["log_p"])
                result[f"{split}/beam{width}"]["share_log_p_at_least_greedy"] = float((wide >= greedy_log_p - 1e-6).mean())
        for width in widths:
            result[f"{split}/beam{width}"].pop("log_p")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-tell", type=Path, required=True, help="a tiefnet caption train folder")
    parser.add_argument("--attention", type=Path, required=True, help="a tiefnet caption train --attention folder")
    parser.add_argument("--widths", default="1,3", help="beam widths to evaluate (default 1,3)")
    parser.add_argument("--no-meteor", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    widths = tuple(int(w) for w in args.widths.split(","))
    with backend.thread_limit(args.threads):
        environment = _harness.environment(torch=False)  # CPU model, BLAS kernel, commit, command, date
        results = {"environment": environment, "cpu": environment["cpu"],
                   "blas": environment["numpy_openblas_kernel"], "date": time.strftime("%Y-%m-%d"),
                   "show_tell": measure(args.show_tell, widths, not args.no_meteor),
                   "attention": measure(args.attention, widths, not args.no_meteor)}
    print(f"CPU {results['cpu']}, BLAS {results['blas']}")
    keys = ["BLEU-1", "BLEU-4", "CIDEr", "METEOR", "mean_log_p", "share_log_p_at_least_greedy", "BLEU-4 (1 digit)", "BLEU-4 (2 digits)", "BLEU-4 (3 digits)",
            "digits_wrong", "digits_wrong (1 digit)", "digits_wrong (2 digits)", "digits_wrong (3 digits)",
            "attention_in_box", "uniform_in_box", *(f"attention_in_box ({kind} words)" for kind in
                                                    ("digit", "size", "colour", "place", "other"))]
    for split in ("test", "compositional"):
        for width in widths:
            print(f"\n{split}, beam width {width}")
            for key in keys:
                row = [results[m][f"{split}/beam{width}"].get(key) for m in ("show_tell", "attention")]
                if any(v is not None for v in row):
                    print(f"  {key:20s} " + "  ".join(f"{v:8.4f}" if isinstance(v, float) else f"{str(v)[:8]:>8s}"
                                                      for v in row))
    for m in ("show_tell", "attention"):
        print(f"{m}: trained {results[m]['training_seconds'] / 60:.1f} min, best epoch {results[m]['best_epoch']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

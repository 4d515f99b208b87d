"""Reference accuracy, in PyTorch, for Nielsen's chapter-3 network: what a faithful implementation gets.

Configuration (Nielsen, ch. 3, "Overfitting and regularization" / "Weight initialization")::

    784-100-10, sigmoid neurons, cross-entropy cost, L2 regularisation lambda = 5.0,
    plain SGD, eta = 0.5, mini-batch 10, 30 epochs, trained on the first 50,000
    MNIST training images; weights N(0, 1/n_in), biases N(0, 1) ("scaled" init).

The update is Nielsen's ``w -> (1 - eta*lambda/n) w - eta * dC_0/dw`` exactly:
``torch.optim.SGD(lr=eta)`` with ``weight_decay = lambda / n`` on the weights only
(not on the biases), the cross-entropy summed over the 10 outputs and averaged over
the mini-batch (``BCEWithLogits`` on the last ``Linear``), float32.

Run (about a minute per 30 epochs on this 2-core machine)::

    .venv/bin/python bench/accuracy_reference.py
    .venv/bin/python bench/accuracy_reference.py --seeds 0,1,2 --json bench/accuracy_reference.json

It prints the validation (last 10,000 training images) and test accuracy after every
epoch, then the final and best values.  Nielsen's book reports ~98% (validation) for
this configuration with the scaled init, and 97.92% with ``--init large``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from tiefnet.data import load_mnist  # noqa: E402

from torch_mlp import TorchMLPTrainer, torch_accuracy  # noqa: E402  (bench/torch_mlp.py)


def run(seed: int, args, data) -> dict:
    n = len(data["x"])
    trainer = TorchMLPTrainer(data["x"], data["y_onehot"], sizes=(784, args.hidden, 10), cost="cross-entropy",
                              batch_size=args.batch_size, eta=args.eta, seed=seed, init=args.init,
                              weight_decay=args.lmbda / n)
    epochs = []
    print(f"seed {seed}: 784-{args.hidden}-10 sigmoid + cross-entropy, eta {args.eta}, lambda {args.lmbda} "
          f"(weight_decay {args.lmbda / n:.1e} on weights), batch {args.batch_size}, init {args.init}, n {n}",
          flush=True)
    for epoch in range(1, args.epochs + 1):
        seconds = trainer.epoch(args.threads)
        val = torch_accuracy(trainer.model, data["x_val"], data["labels_val"])
        test = torch_accuracy(trainer.model, data["x_test"], data["labels_test"])
        epochs.append({"epoch": epoch, "validation_accuracy": val, "test_accuracy": test, "seconds": seconds})
        print(f"  epoch {epoch:2d}: validation {val:.2%}  test {test:.2%}  ({seconds:.2f} s)", flush=True)
    best_val = max(epochs, key=lambda e: e["validation_accuracy"])
    result = {
        "seed": seed,
        "final_validation_accuracy": epochs[-1]["validation_accuracy"],
        "final_test_accuracy": epochs[-1]["test_accuracy"],
        "best_validation_accuracy": best_val["validation_accuracy"],
        "best_validation_epoch": best_val["epoch"],
        "test_accuracy_at_best_validation": best_val["test_accuracy"],
        "best_test_accuracy": max(e["test_accuracy"] for e in epochs),
        "epochs": epochs,
    }
    print(f"  seed {seed} final: validation {result['final_validation_accuracy']:.2%}, "
          f"test {result['final_test_accuracy']:.2%}; best validation {result['best_validation_accuracy']:.2%} "
          f"(epoch {result['best_validation_epoch']}, test there {result['test_accuracy_at_best_validation']:.2%}); "
          f"best test {result['best_test_accuracy']:.2%}", flush=True)
    return result


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--eta", type=float, default=0.5)
    p.add_argument("--lmbda", type=float, default=5.0, help="L2 strength lambda (weight_decay = lambda / n)")
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--init", choices=("scaled", "large"), default="scaled")
    p.add_argument("--seeds", default="0", help="comma-separated seeds, one full run each (default 0)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--json", type=Path, default=None, help="write the per-epoch numbers to this file")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]

    splits = load_mnist()
    labels = np.asarray(splits.train.y)
    y_onehot = np.zeros((len(labels), 10), dtype=np.float32)
    y_onehot[np.arange(len(labels)), labels] = 1.0
    data = {"x": splits.train.x, "y_onehot": y_onehot,
            "x_val": splits.validation.x, "labels_val": np.asarray(splits.validation.y),
            "x_test": splits.test.x, "labels_test": np.asarray(splits.test.y)}

    start = time.perf_counter()
    runs = [run(seed, args, data) for seed in seeds]
    summary = {
        key: {"mean": float(np.mean([r[key] for r in runs])), "min": float(min(r[key] for r in runs)),
              "max": float(max(r[key] for r in runs))}
        for key in ("final_validation_accuracy", "final_test_accuracy", "best_validation_accuracy",
                    "best_test_accuracy")
    }
    print(f"\nPyTorch {torch.__version__} reference over {len(runs)} seed(s), {time.perf_counter() - start:.0f} s:")
    for key, s in summary.items():
        print(f"  {key:<27} mean {s['mean']:.2%}  (min {s['min']:.2%}, max {s['max']:.2%})")
    result = {"config": {k: v for k, v in vars(args).items() if k != "json"}, "torch": torch.__version__,
              "runs": runs, "summary": summary}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"written to {args.json}")
    return result


if __name__ == "__main__":
    main()

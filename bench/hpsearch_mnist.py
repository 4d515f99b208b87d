"""The hyperparameter search of issue 15 on MNIST 784-h-10, against the lecture's default network.

Runs, each the command a user types, in a fresh process:

1. ``tiefnet mnist`` at its defaults (784-30-10, sigmoid, quadratic cost, eta 3, mini-batch 10, 30
   epochs): the test accuracy to beat by >= 2 points.
2. ``tiefnet hpsearch`` over eta (log 0.01..10), lambda (log 1e-3..10) and the hidden size (10..300),
   with cross-entropy and the scaled init fixed (2.7.1, 2.7.3), for each sampler (tpe, random) with
   the median pruner and with none: the epochs trained and the best trial's accuracies. With the
   random sampler both searches train the same settings (the same seed), so their best is comparable
   trial for trial; with TPE the pruned trials change what it proposes next.
3. ``tiefnet hpsearch --strategy lecture``: its best validation accuracy (target >= 97%).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/hpsearch_mnist.py --json bench/results/hpsearch_mnist.json

Targets: best test accuracy >= default + 2 points; epochs with pruning <= 0.6 x without, at equal best
accuracy; the lecture strategy >= 97% validation accuracy. ``--trials 4 --epochs 2`` is a smoke test.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _harness  # bench/_harness.py: machine, BLAS kernel, load

SPACE = ["eta=log:0.01..10", "lmbda=log:1e-3..10", "hidden=int:10..300"]
TIEFNET = [sys.executable, "-m", "tiefnet.cli"]


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, done.stdout


def search(out: Path, sampler: str, pruner: str, args) -> dict:
    command = ["hpsearch", "--space", *SPACE, "--fixed", "cost=cross-entropy", "init=scaled",
               f"epochs={args.epochs}", "--trials", str(args.trials), "--seed", str(args.seed),
               "--sampler", sampler, "--pruner", pruner, "--threads", str(args.threads), "--out", str(out)]
    wall, printed = timed(TIEFNET + command)
    best = json.loads((out / "best.json").read_text())
    trials = [line.split(",") for line in (out / "trials.csv").read_text().splitlines()]
    header, rows = trials[0], trials[1:]
    settings = [tuple(row[header.index(p)] for p in ("eta", "lmbda", "hidden")) for row in rows]
    result = {"command": "tiefnet " + " ".join(f"'{w}'" if "=" in w and ":" in w else w for w in command),
              "sampler": sampler, "pruner": pruner, "wall_s": wall, "trials": best["trials"],
              "complete": best["complete"], "pruned": best["pruned"], "epochs": best["epochs"],
              "best_trial": best["best_trial"], "best_validation_accuracy": best["best_value"],
              "best_test_accuracy": best["test_accuracy"], "best_params": best["best_params"],
              "best_command": best["command"], "settings": settings}
    print(f"{sampler:6s} pruner {pruner:6s}: {best['epochs']:4d} epochs in {best['trials']} trials "
          f"({best['pruned']} pruned), {wall:.0f} s; best trial {best['best_trial']}: validation "
          f"{100 * best['best_value']:.2f}%, test {100 * best['test_accuracy']:.2f}% {best['best_params']}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30, help="trials of each search")
    parser.add_argument("--epochs", type=int, default=15, help="epochs of each trial")
    parser.add_argument("--seed", type=int, default=1, help="the searches' sampler seed")
    parser.add_argument("--threads", type=int, default=2, help="--threads of every run (the same result as 1)")
    parser.add_argument("--samplers", nargs="+", default=["tpe", "random"])
    parser.add_argument("--no-lecture", action="store_true", help="skip --strategy lecture")
    _harness.add_output_options(parser, markdown=False)
    args = parser.parse_args()
    env = _harness.announce_environment(f"{_harness.UNSET_OPENBLAS} .venv/bin/python bench/hpsearch_mnist.py",
                                        torch=False)
    results = {"openblas_kernel": _harness.openblas_kernels(env), "environment": env, "searches": []}
    folder = Path(tempfile.mkdtemp(prefix="hpsearch-mnist-"))
    try:
        with _harness.RunLoad() as run_load:
            wall, _ = timed(TIEFNET + ["mnist", "--no-progress", "--threads", str(args.threads),
                                       "--out", str(folder / "default")])
            default = json.loads((folder / "default" / "summary.json").read_text())
            results["default"] = {"command": f"tiefnet mnist --threads {args.threads}", "wall_s": wall,
                                  "test_accuracy": default["test_accuracy"],
                                  "best_validation_accuracy": default["best_validation_accuracy"]}
            print(f"the lecture's default network: test accuracy {100 * default['test_accuracy']:.2f}% "
                  f"({wall:.0f} s)", flush=True)
            for sampler in args.samplers:
                for pruner in ("median", "none"):
                    results["searches"].append(search(folder / f"{sampler}-{pruner}", sampler, pruner, args))
            if not args.no_lecture:
                wall, printed = timed(TIEFNET + ["hpsearch", "--strategy", "lecture", "--threads", str(args.threads),
                                                 "--out", str(folder / "lecture")])
                record = json.loads((folder / "lecture" / "strategy.json").read_text())
                results["lecture"] = {"command": f"tiefnet hpsearch --strategy lecture --threads {args.threads}",
                                      "wall_s": wall, "printed": printed,
                                      **{k: record[k] for k in ("validation_accuracy", "test_accuracy", "eta",
                                                                "lmbda", "epochs_run", "command")}}
                print(printed)
        results["load"] = run_load.record
        summary = []
        for sampler in args.samplers:
            pruned, full = (next(s for s in results["searches"] if s["sampler"] == sampler and s["pruner"] == p)
                            for p in ("median", "none"))
            saved = 1 - pruned["epochs"] / full["epochs"]
            # with --threads 2 an epoch is measured while the next one trains: a pruned trial has trained
            # (part of) one epoch more than it measured, which the run then undoes
            ahead = pruned["pruned"] if args.threads >= 2 else 0
            saved_trained = 1 - (pruned["epochs"] + ahead) / full["epochs"]
            gain = pruned["best_test_accuracy"] - default["test_accuracy"]
            row = {"sampler": sampler, "epochs_saved": saved, "epochs_saved_counting_trained_ahead": saved_trained, "same_settings": pruned["settings"] == full["settings"],
                   "best_validation_pruned": pruned["best_validation_accuracy"],
                   "best_validation_unpruned": full["best_validation_accuracy"],
                   "test_gain_points": 100 * gain}
            summary.append(row)
            print(f"{sampler}: pruning saved {100 * saved:.0f}% of the epochs ({pruned['epochs']} vs {full['epochs']}; "
                  f"{100 * saved_trained:.0f}% counting the {ahead} trained ahead); "
                  f"best validation {100 * pruned['best_validation_accuracy']:.2f}% vs "
                  f"{100 * full['best_validation_accuracy']:.2f}% without; best test accuracy "
                  f"{100 * pruned['best_test_accuracy']:.2f}% = default + {100 * gain:.2f} points"
                  f"{'; the same settings trained' if row['same_settings'] else ''}")
        results["summary"] = summary
        _harness.write_json(args.json, results)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

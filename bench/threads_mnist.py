"""`tiefnet mnist --model cnn` at its defaults (mini-batch 10) with --threads 1 and --threads 2 (issue 14).

Each run is the command a user types, in a fresh process, timed from start to exit (wall clock), the
two thread counts in alternating turns. With --threads 2 fit measures each epoch on the second core
while the next one trains; the script also checks that both runs wrote the same metrics (apart from
the seconds) and the same model, bit for bit. The JSON holds the machine (CPU model, OpenBLAS
kernel; see bench/_harness.py), every run and the load.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/threads_mnist.py --json bench/results/threads_mnist.json

``--epochs`` defaults to the CLI's 30 (about 7 minutes a run at one thread here); ``--epochs 1
--train-size 2000`` is a smoke test. Target: speed-up (wall at 1 thread / wall at 2) >= 1.4.
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

HERE = Path(__file__).resolve().parent
TARGET = 1.4


def run(threads: int, out: Path, epochs: int, extra: list[str]) -> dict:
    command = [sys.executable, "-m", "tiefnet.cli", "mnist", "--model", "cnn", "--epochs", str(epochs),
               "--threads", str(threads), "--no-progress", "--out", str(out), "--overwrite", *extra]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    summary = json.loads((out / "summary.json").read_text())
    metrics, arrays = _harness.read_run(out)
    return {"threads": threads, "wall_s": wall, "training_s_per_epoch": summary["seconds_per_epoch"],
            "test_accuracy": summary["test_accuracy"], "metrics": metrics, "arrays": arrays}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="epochs per run (the CLI's default: 30)")
    parser.add_argument("--rounds", type=int, default=1, help="runs per thread count, alternating")
    parser.add_argument("--train-size", type=int, default=None, help="training images (default: all 50,000)")
    _harness.add_output_options(parser, markdown=False)
    args = parser.parse_args()
    env = _harness.announce_environment(f"{_harness.UNSET_OPENBLAS} .venv/bin/python bench/threads_mnist.py",
                                        torch=False)
    extra = [] if args.train_size is None else ["--train-size", str(args.train_size)]
    results = {"command": f"tiefnet mnist --model cnn --epochs {args.epochs} --threads T{' ' + ' '.join(extra) if extra else ''}",
               "openblas_kernel": _harness.openblas_kernels(env), "runs": [], "environment": env, "target": TARGET}
    folder = Path(tempfile.mkdtemp(prefix="threads-mnist-"))
    try:
        with _harness.RunLoad() as run_load:
            by_threads: dict[int, list[dict]] = {1: [], 2: []}
            for round_ in range(args.rounds):
                for threads in (1, 2):
                    done = run(threads, folder / f"t{threads}-{round_}", args.epochs, extra)
                    by_threads[threads].append(done)
                    print(f"threads {threads}: {done['wall_s']:.1f} s wall, {done['training_s_per_epoch']:.2f} s "
                          f"training per epoch, test accuracy {100 * done['test_accuracy']:.2f} %", flush=True)
        results["load"] = run_load.record
        one, two = by_threads[1][0], by_threads[2][0]
        same_metrics = one["metrics"] == two["metrics"]
        same_model = _harness.same_run(({}, one["arrays"]), ({}, two["arrays"]))
        best = {t: min(r["wall_s"] for r in runs) for t, runs in by_threads.items()}
        results["runs"] = [{k: v for k, v in r.items() if k not in ("arrays", "metrics")}
                           for runs in by_threads.values() for r in runs]
        results.update(best_wall_s=best, speedup=best[1] / best[2], same_metrics=same_metrics,
                       same_model=same_model)
        print(f"\nspeed-up with --threads 2: {best[1]:.1f} s / {best[2]:.1f} s = {best[1] / best[2]:.2f} "
              f"({_harness.verdict(best[1] / best[2], TARGET, higher_is_better=True)}); "
              f"same metrics: {same_metrics}, same model: {same_model}")
        _harness.write_json(args.json, results)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

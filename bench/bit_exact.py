"""Same seed, same result (issue 14, acceptance 4): each `tiefnet mnist` command twice, compared bit for bit.

For every thread count given, the CNN is trained twice with the self-measurement of tiefnet.plans
switched off (TIEFNET_TUNE=off) and the two runs' metrics.jsonl (apart from the seconds) and model.npz
(every array) are compared; then the runs of different thread counts that promise the same result
(--threads 1 and --threads 2: the second core only measures the epochs) are compared too.

    .venv/bin/python bench/bit_exact.py --json bench/results/bit_exact.json

``--threads 1,2,3`` (default): 3 cuts mini-batches of 64 into two processes, whose rounding differs
from one process but not from run to run.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import _harness  # bench/_harness.py: machine, load

ARGS = ["--model", "cnn", "--epochs", "2", "--train-size", "5000", "--batch-size", "64", "--no-progress"]


def run(threads: int, out: Path) -> tuple[list[dict], dict]:
    env = {**os.environ, "TIEFNET_TUNE": "off"}
    subprocess.run([sys.executable, "-m", "tiefnet.cli", "mnist", *ARGS, "--threads", str(threads), "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL, env=env)
    return _harness.read_run(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=_harness.counts, default=[1, 2, 3], help="thread counts (default 1,2,3)")
    _harness.add_output_options(parser, markdown=False)
    args = parser.parse_args()
    env = _harness.environment(torch=False)
    results = {"command": "TIEFNET_TUNE=off tiefnet mnist " + " ".join(ARGS) + " --threads T", "rows": [],
               "environment": env}
    folder = Path(tempfile.mkdtemp(prefix="bit-exact-"))
    try:
        runs = {}
        for threads in args.threads:
            first, second = run(threads, folder / f"t{threads}a"), run(threads, folder / f"t{threads}b")
            runs[threads] = first
            row = {"threads": threads, "run_to_run_identical": _harness.same_run(first, second),
                   "test_accuracy": first[0][-1].get("test_accuracy")}
            results["rows"].append(row)
            print(f"--threads {threads}: two runs identical: {row['run_to_run_identical']} "
                  f"(test accuracy {row['test_accuracy']})", flush=True)
        if 1 in runs and 2 in runs:
            results["threads_1_equals_threads_2"] = _harness.same_run(runs[1], runs[2])
            print(f"--threads 1 and --threads 2 identical: {results['threads_1_equals_threads_2']}")
        _harness.write_json(args.json, results)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

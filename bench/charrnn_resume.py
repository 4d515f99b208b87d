"""``tiefnet charrnn train`` killed with SIGKILL at random moments and resumed, against one uninterrupted
run with the same seed: are metrics.jsonl (apart from "seconds"), model.npz and samples.txt the same?

    .venv/bin/python bench/charrnn_resume.py --trials 5 --steps 300

Each trial kills the run at a moment drawn uniformly from (1 s, the uninterrupted run's wall time),
resumes it with ``--resume --out DIR`` (killed again at random with probability --rekill), and compares.
Prints one line per trial and a JSON summary.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CONFIG = ["--layers", "2", "--hidden", "128", "--seq-length", "50", "--batch-size", "16", "--eval-every", "100",
          "--checkpoint-every", "25", "--sample-length", "200", "--no-progress"]


def train(*argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tiefnet.cli", "charrnn", "train", *argv],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def killed_after(process: subprocess.Popen, seconds: float) -> bool:
    """SIGKILL after ``seconds`` unless it has ended; True if it was killed."""
    try:
        process.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        return True


def same(a: Path, b: Path) -> dict[str, bool]:
    def metrics(folder):
        return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
                for line in (folder / "metrics.jsonl").read_text().splitlines()]

    with np.load(a / "model.npz") as x, np.load(b / "model.npz") as y:
        arrays = sorted(x.files) == sorted(y.files) and all(np.array_equal(x[k], y[k]) for k in x.files)
    return {"metrics": metrics(a) == metrics(b), "model": arrays,
            "samples": (a / "samples.txt").read_text() == (b / "samples.txt").read_text()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rekill", type=float, default=0.5, help="chance that a resumed run is killed again")
    parser.add_argument("--seed", type=int, default=0, help="of the kill moments")
    args = parser.parse_args()
    random.seed(args.seed)
    root = Path(tempfile.mkdtemp(prefix="charrnn_resume_"))
    settings = [*CONFIG, "--steps", str(args.steps)]
    started = time.monotonic()
    reference = train(*settings, "--out", str(root / "whole"))
    assert reference.wait() == 0, reference.stderr.read()
    whole = time.monotonic() - started
    print(f"uninterrupted run: {whole:.1f} s ({' '.join(settings)})")
    results = []
    for trial in range(args.trials):
        out, kills = root / f"trial{trial}", []
        moment = random.uniform(1.0, whole)
        if killed_after(train(*settings, "--out", str(out)), moment):
            kills.append(round(moment, 2))
        while kills:  # killed before its first checkpoint: started again
            again = ["--resume"] if (out / "checkpoint.npz").exists() else [*settings, "--overwrite"]
            resumed = train(*again, "--out", str(out))
            moment = random.uniform(0.5, whole / 2)
            if random.random() < args.rekill and killed_after(resumed, moment):
                kills.append(round(moment, 2))
                continue
            assert resumed.wait() == 0, resumed.stderr.read()
            break
        result = {"trial": trial, "killed_after_s": kills, **same(root / "whole", out)}
        results.append(result)
        print(json.dumps(result))
    identical = sum(r["metrics"] and r["model"] and r["samples"] for r in results)
    killed = sum(bool(r["killed_after_s"]) for r in results)
    print(json.dumps({"trials": len(results), "killed": killed, "identical": identical,
                      "uninterrupted_seconds": round(whole, 1), "folder": str(root)}))


if __name__ == "__main__":
    main()

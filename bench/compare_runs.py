#!/usr/bin/env python3
"""Compare two output folders of bench/same_outputs.sh file by file and report every difference.

    python bench/compare_runs.py BEFORE AFTER [--quiet]

- .json: parsed, compared entry by entry; timing keys (TIMING below) are ignored at any depth.
- .jsonl: one JSON object a line, each compared as above; a different line count is reported.
- .npz (model.npz, checkpoint.npz, Q.npz): every array compared exactly (names, dtype, shape,
  values); the JSON meta entry (__meta__) compared as JSON, timings ignored.
- text (.txt, .log, .err, ...): compared line by line with timings masked (seconds, s/epoch,
  chars/s, tqdm's rates and clocks).
- anything else (.png): compared byte for byte.

For numbers that differ, the report names the largest absolute and relative difference per file,
so that rounding-order differences (last digits of float32) are told apart from real changes.
Exit code 0 if the folders are the same apart from timings, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

import numpy

TIMING = {"seconds", "train_seconds", "eval_seconds", "total_seconds", "seconds_per_epoch", "steps_per_second",
          "chars_per_second"}
META_KEY = "__meta__"
TEXT_SUFFIXES = {".txt", ".log", ".err", ".out", ".csv", ".md"}
# Timings in the commands' printed lines and in tqdm's bars.
MASKS = [
    (re.compile(r"\[[0-9:]+<[^\]]*\]"), "[<clock>]"),  # tqdm: [00:01<00:00, 426kstep/s]
    (re.compile(r"\d[\d,]*(?:\.\d+)?\s*[kMG]?(?:step|it|img)/s"), "<rate>"),
    (re.compile(r"\d[\d,]*(?:\.\d+)?(?= (?:s/epoch|chars/s|s)\b)"), "<time>"),
]


class Report:
    """The differences of one file, and the largest numeric deviation seen in it."""

    def __init__(self, name: str):
        self.name, self.lines, self.max_abs, self.max_rel, self.numeric = name, [], 0.0, 0.0, 0

    def add(self, where: str, what: str) -> None:
        self.lines.append(f"{where}: {what}")

    def number(self, where: str, a: float, b: float) -> None:
        diff = abs(a - b)
        rel = diff / max(abs(a), abs(b)) if max(abs(a), abs(b)) > 0 else math.inf
        self.max_abs, self.max_rel, self.numeric = max(self.max_abs, diff), max(self.max_rel, rel), self.numeric + 1
        self.add(where, f"{a!r} != {b!r} (abs {diff:.3g}, rel {rel:.3g})")


def compare_values(a, b, where: str, report: Report) -> None:
    """JSON values a (before) and b (after), recursively; timing keys skipped."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key in TIMING:
                continue
            if key not in b:
                report.add(f"{where}.{key}", f"only before ({a[key]!r:.80})")
            elif key not in a:
                report.add(f"{where}.{key}", f"only after ({b[key]!r:.80})")
            else:
                compare_values(a[key], b[key], f"{where}.{key}", report)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            report.add(where, f"{len(a)} entries before, {len(b)} after")
        for i, (x, y) in enumerate(zip(a, b)):
            compare_values(x, y, f"{where}[{i}]", report)
    elif _is_number(a) and _is_number(b):
        if a != b and not (a != a and b != b):  # NaN == NaN here
            report.number(where, float(a), float(b))
    elif a != b:
        report.add(where, f"{a!r:.120} != {b!r:.120}")


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def compare_json(a: Path, b: Path, report: Report) -> None:
    compare_values(json.loads(a.read_text()), json.loads(b.read_text()), "", report)


def compare_jsonl(a: Path, b: Path, report: Report) -> None:
    la, lb = a.read_text().splitlines(), b.read_text().splitlines()
    if len(la) != len(lb):
        report.add("lines", f"{len(la)} before, {len(lb)} after")
    for i, (x, y) in enumerate(zip(la, lb), 1):
        compare_values(json.loads(x), json.loads(y), f"line {i}", report)


def compare_npz(a: Path, b: Path, report: Report) -> None:
    with numpy.load(a, allow_pickle=False) as fa, numpy.load(b, allow_pickle=False) as fb:
        xa, xb = {k: fa[k] for k in fa.files}, {k: fb[k] for k in fb.files}
    for name in sorted(set(xa) - set(xb)):
        report.add(name, "array only before")
    for name in sorted(set(xb) - set(xa)):
        report.add(name, "array only after")
    for name in sorted(set(xa) & set(xb)):
        u, v = xa[name], xb[name]
        if name == META_KEY:
            compare_values(json.loads(str(u)), json.loads(str(v)), META_KEY, report)
        elif u.dtype != v.dtype or u.shape != v.shape:
            report.add(name, f"{u.dtype}{u.shape} before, {v.dtype}{v.shape} after")
        elif not numpy.array_equal(u, v, equal_nan=u.dtype.kind in "fc"):
            if u.dtype.kind in "fiu":
                d = numpy.abs(u.astype(numpy.float64) - v.astype(numpy.float64))
                scale = numpy.maximum(numpy.abs(u), numpy.abs(v)).astype(numpy.float64)
                rel = float((d / numpy.where(scale > 0, scale, 1)).max())
                report.max_abs, report.max_rel = max(report.max_abs, float(d.max())), max(report.max_rel, rel)
                report.numeric += int((d > 0).sum())
                report.add(name, f"{int((d > 0).sum())} of {u.size} values differ (max abs {d.max():.3g}, "
                                 f"max rel {rel:.3g})")
            else:
                report.add(name, "values differ")


def mask(line: str) -> str:
    for pattern, replacement in MASKS:
        line = pattern.sub(replacement, line)
    return line


def screen(path: Path) -> list[str]:
    """The lines as a terminal shows them, timings masked: of tqdm's redraws (joined by \\r, as
    many as the run's speed made) only the last one of each line."""
    with open(path, errors="replace", newline="") as f:  # newline="": keep the \\r
        lines = f.read().split("\n")
    return [mask([part for part in line.split("\r") if part][-1] if line.strip("\r") else "") for line in lines]


def compare_text(a: Path, b: Path, report: Report) -> None:
    la, lb = screen(a), screen(b)
    if la == lb:
        return
    if len(la) != len(lb):
        report.add("lines", f"{len(la)} before, {len(lb)} after")
    for i, (x, y) in enumerate(zip(la, lb), 1):
        if x != y:
            report.add(f"line {i}", f"{x!r:.200} != {y!r:.200}")


def compare_file(a: Path, b: Path, report: Report) -> None:
    suffix = a.suffix.lower()
    try:
        if suffix == ".json":
            compare_json(a, b, report)
        elif suffix == ".jsonl":
            compare_jsonl(a, b, report)
        elif suffix == ".npz":
            compare_npz(a, b, report)
        elif suffix in TEXT_SUFFIXES:
            compare_text(a, b, report)
        elif a.read_bytes() != b.read_bytes():
            report.add("bytes", f"differ ({a.stat().st_size} bytes before, {b.stat().st_size} after)")
    except (ValueError, OSError) as error:  # a file that does not parse is a difference too
        report.add("read", f"cannot compare: {error}")


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--quiet", action="store_true", help="one line per file, not every difference")
    args = parser.parse_args(argv)
    fa, fb = files(args.before), files(args.after)
    different = 0
    for name in sorted(fa - fb):
        print(f"ONLY BEFORE  {name}")
        different += 1
    for name in sorted(fb - fa):
        print(f"ONLY AFTER   {name}")
        different += 1
    for name in sorted(fa & fb):
        report = Report(name)
        compare_file(args.before / name, args.after / name, report)
        if not report.lines:
            print(f"same         {name}")
            continue
        different += 1
        numbers = (f"; {report.numeric} numbers differ, max abs {report.max_abs:.3g}, max rel {report.max_rel:.3g}"
                   if report.numeric else "")
        print(f"DIFFERENT    {name}: {len(report.lines)} differences{numbers}")
        if not args.quiet:
            for line in report.lines[:40]:
                print(f"    {line}")
            if len(report.lines) > 40:
                print(f"    ... {len(report.lines) - 40} more")
    print(f"{len(fa & fb)} files compared, {different} differ" + ("" if different else " (apart from timings)"))
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())

"""Lecture 2.1 "Perzeptrons": output = 1 if w . x + b > 0 else 0, with b = -threshold.

Three truth tables: the festival decision (w = (6, 2, 2), threshold 5 or 3) over all eight
inputs, the NAND gate (w = (-2, -2), b = 3), and — NAND being universal — NOT, OR and a half
adder built from NAND perceptrons only, checked against x1 + x2.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from tiefnet.experiments._common import output_dir, write_json
from tiefnet.nn.perceptron import NAND, festival, half_adder
from tiefnet.files import replacing

DESCRIPTION = "2.1 perceptrons: festival decision, NAND gate, half adder from NAND perceptrons"
THRESHOLDS = {"scenario 1": 5, "scenario 2": 3}  # w = (6, 2, 2) in both scenarios


def festival_table() -> list[dict[str, int]]:
    """x1 weather, x2 friends, x3 transport; the weighted sum w . x and both decisions."""
    rows = []
    for x1, x2, x3 in itertools.product((0, 1), repeat=3):
        row = {"x1": x1, "x2": x2, "x3": x3, "w.x": 6 * x1 + 2 * x2 + 2 * x3}
        row.update({name: festival(x1, x2, x3, threshold) for name, threshold in THRESHOLDS.items()})
        rows.append(row)
    return rows


def gate_tables() -> dict[str, list[dict[str, int]]]:
    """NAND and the gates the lecture builds from it: NOT x = x NAND x, x1 OR x2 = NOT x1 NAND NOT x2."""
    pairs = list(itertools.product((0, 1), repeat=2))
    return {
        "nand": [{"x1": x1, "x2": x2, "out": NAND(x1, x2)} for x1, x2 in pairs],
        "not": [{"x": x, "out": NAND(x, x)} for x in (0, 1)],
        "or": [{"x1": x1, "x2": x2, "out": NAND(NAND(x1, x1), NAND(x2, x2))} for x1, x2 in pairs],
        "half_adder": [dict(zip(("x1", "x2", "sum", "carry"), (x1, x2, *half_adder(x1, x2))))
                       for x1, x2 in pairs],
    }


def run(out: str | Path, epochs: int | None = None, seed: int = 0, quick: bool = False,
        progress: bool = True) -> dict[str, Any]:
    """Write perceptron.png and perceptron.json (no training: epochs, seed, quick do not apply)."""
    out = output_dir(out)
    gates = gate_tables()
    adder_ok = all(r["sum"] + 2 * r["carry"] == r["x1"] + r["x2"] for r in gates["half_adder"])
    nand_ok = all(r["out"] == 1 - (r["x1"] and r["x2"]) for r in gates["nand"])
    result = {
        "settings": {"festival_w": [6, 2, 2], "festival_thresholds": THRESHOLDS, "nand_w": [-2, -2], "nand_b": 3},
        "festival": festival_table(), **gates, "nand_correct": nand_ok, "half_adder_correct": adder_ok,
    }
    write_json(out, "perceptron", result)
    with replacing(out / "perceptron.png") as path:
        _figure(result, path)
    print("festival (x1 weather, x2 friends, x3 transport):")
    for r in result["festival"]:
        print(f"  x={r['x1']}{r['x2']}{r['x3']}  w.x={r['w.x']}  threshold 5 -> {r['scenario 1']}, "
              f"threshold 3 -> {r['scenario 2']}")
    print("NAND:", " ".join(f"{r['x1']}{r['x2']}->{r['out']}" for r in gates["nand"]),
          "| half adder:", " ".join(f"{r['x1']}+{r['x2']}=({r['carry']}{r['sum']})" for r in gates["half_adder"]),
          f"| half adder correct: {adder_ok}")
    return result


def _figure(result: dict[str, Any], path: Path) -> None:
    from tiefnet.plot import plt, save

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), gridspec_kw={"width_ratios": [6, 3, 4]})
    _table(axes[0], result["festival"], ["x1", "x2", "x3", "w.x", "scenario 1", "scenario 2"],
           ["x1", "x2", "x3", "w.x", "thr. 5", "thr. 3"],
           "Festival: x1 weather, x2 friends, x3 transport\nw = (6, 2, 2); scenario 1: threshold 5, scenario 2: 3")
    _table(axes[1], result["nand"], ["x1", "x2", "out"], ["x1", "x2", "NAND"], "NAND perceptron\nw = (-2, -2), b = 3")
    title = "Half adder from NAND perceptrons\n" + ("correct: sum + 2 carry = x1 + x2" if result["half_adder_correct"]
                                                  else "WRONG")
    _table(axes[2], result["half_adder"], ["x1", "x2", "sum", "carry"], ["x1", "x2", "sum", "carry"], title)
    fig.suptitle("Lecture 2.1: perceptrons, output = 1 if w.x + b > 0 else 0 (b = -threshold)")
    save(fig, path)


def _table(ax, rows: list[dict], keys: list[str], labels: list[str], title: str) -> None:
    """A truth table; output columns (after the inputs) shaded green for 1, grey for 0."""
    n_inputs = sum(1 for k in keys if k.startswith("x"))
    cells = [[str(r[k]) for k in keys] for r in rows]
    colours = [["white"] * n_inputs + ["#9be29b" if r[k] else "#e0e0e0" for k in keys[n_inputs:]] for r in rows]
    if "w.x" in keys:  # the weighted sum is not an output
        for row in colours:
            row[keys.index("w.x")] = "white"
    table = ax.table(cellText=cells, colLabels=labels, cellColours=colours, cellLoc="center", loc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(10)
    table.scale(1, 1.4)
    ax.set_title(title, fontsize=10)
    ax.axis("off")

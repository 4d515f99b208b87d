"""The lecture's heuristic strategy for choosing the hyperparameters (2.7.3, "Heuristische Strategien"),
for the MNIST classifier 784-h-10, in four phases:

1. **A signal at all** ("erkennbarer Trainingserfolg", better than chance), on a reduced problem:
   only the digits 0 and 1, a small network (784-10-10), validation after every epoch ("fail fast").
   eta runs over the decades 0.001 ... 100; the smallest eta that learns is where phase 2 starts.
2. **The overshooting threshold** of eta, on all ten digits with the chosen network and a smaller
   training set: eta grows tenfold, then by factors of 2, until the training cost of the first
   epochs stops falling (it oscillates or rises); eta = 1/2 of that threshold.
3. **lambda**: 0 while eta was chosen; then lambda = 1, then x10 or /10 in the direction that
   improves the validation accuracy, as long as it does.
4. **The number of epochs**: the full problem, stopped early after "no improvement in 10" epochs,
   with eta halved after 5 epochs without improvement (eta lowered during training).

Each run is an ordinary ``tiefnet mnist`` run folder under ``OUT/phaseK-...``; ``strategy.json``
holds every phase, ``phases.png`` shows them, and the end is a ready ``tiefnet mnist`` command.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from tiefnet.errors import ConfigError, TrainingDiverged
from tiefnet.files import read_text, write_json

# The phases' settings (fixed settings given by the user win where they name the same setting)
BASE = {"hidden": "100", "cost": "cross-entropy", "init": "scaled"}  # 2.7.1 and 2.7.3's better start
SIGNAL = {"digits": "0,1", "hidden": "10", "train_size": 10_000, "epochs": 2}  # ~2,100 images of 0 and 1
SIGNAL_ETAS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
THRESHOLD = {"train_size": 10_000, "epochs": 4}  # the first epochs, monitored after each
THRESHOLD_MAX = 1000.0
LAMBDA = {"epochs": 10}
LAMBDA_STEPS = 3  # at most this many x10 (or /10) steps
FINAL = {"epochs": 60, "early_stop": 10, "patience": 5}
LEARNS = 0.5  # phase 1: "learns" = at least half-way from chance to a perfect validation accuracy


def _run(config, out: Path) -> dict[str, Any]:
    """One mnist run (no output); its summary and epochs, or diverged."""
    from tiefnet.vision.mnist import run

    try:
        summary = run(config, out, progress=False, log=lambda line: None, warn=lambda line: None)
        diverged = False
    except TrainingDiverged:
        summary, diverged = {}, True
    lines = read_text(out / "metrics.jsonl").splitlines() if (out / "metrics.jsonl").is_file() else []
    epochs = [json.loads(line) for line in lines]
    return {"summary": summary, "epochs": epochs, "diverged": diverged,
            "validation_accuracy": max((e["validation_accuracy"] for e in epochs), default=0.0),
            "train_costs": [e["train_cost"] for e in epochs]}


def falling(costs: Sequence[float]) -> bool:
    """Whether the training cost falls from epoch to epoch (no oscillation, no rise, nothing NaN)."""
    return len(costs) >= 2 and all(math.isfinite(c) for c in costs) and all(b < a for a, b in zip(costs, costs[1:]))


def run_strategy(fixed: Sequence[str], out: str | Path, threads: int = 1,
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    """The four phases for tiefnet mnist with the ``fixed`` settings (NAME=VALUE); returns strategy.json."""
    from tiefnet.hpsearch.space import parse_fixed
    from tiefnet.vision.mnist import Config

    out = Path(out)
    given = dict(parse_fixed(text, Config) for text in fixed)
    for name in ("eta", "lmbda", "digits", "epochs", "early_stop", "patience"):
        if name in given:
            raise ConfigError(f"--strategy lecture chooses {name} itself: do not fix it")
    base = Config(**{**BASE, **given, "threads": threads})
    out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"base": asdict(base), "phases": []}
    log(f"tiefnet hpsearch --strategy lecture: {base.describe()}, {base.activation}, {base.cost}, init {base.init} "
        f"-> {out}")

    # Phase 1: a signal at all, on the digits 0 and 1 with a small network
    log("phase 1: an eta that learns at all, on the reduced problem (digits 0 and 1, 784-10-10, 2 epochs)")
    signal = []
    for eta in SIGNAL_ETAS:
        result = _run(replace(base, **SIGNAL, eta=eta), out / f"phase1-eta-{eta:g}")
        chance = 1 / 2
        learns = not result["diverged"] and result["validation_accuracy"] >= chance + LEARNS * (1 - chance)
        signal.append({"eta": eta, "validation_accuracy": result["validation_accuracy"], "learns": learns})
        log(f"  eta {eta:<7g} validation accuracy {100 * result['validation_accuracy']:6.2f}%"
            f"{'  learns' if learns else ''}")
    learning = [s["eta"] for s in signal if s["learns"]]
    start = learning[0] if learning else 1.0
    record["phases"].append({"phase": 1, "name": "signal", "runs": signal, "eta_start": start})
    log(f"  -> the smallest eta that learns: {start:g}" if learning else "  -> no eta learns; starting from 1")

    # Phase 2: the overshooting threshold, on all digits with the network of the search
    log(f"phase 2: the overshooting threshold of eta ({base.describe()}, {THRESHOLD['train_size']} images, "
        f"training cost after each of {THRESHOLD['epochs']} epochs)")
    tried: dict[float, dict[str, Any]] = {}

    def falls(eta: float) -> bool:
        if eta not in tried:
            result = _run(replace(base, **THRESHOLD, eta=eta), out / f"phase2-eta-{eta:g}")
            tried[eta] = {"eta": eta, "train_costs": result["train_costs"], "falling": not result["diverged"] and falling(result["train_costs"]),
                          "diverged": result["diverged"]}
            costs = " ".join(f"{c:.4f}" for c in result["train_costs"]) or "diverged"
            log(f"  eta {eta:<8g} training cost {costs}  {'falls' if tried[eta]['falling'] else 'oscillates or rises'}")
        return tried[eta]["falling"]

    good, bad = start, None
    eta = start
    while eta <= THRESHOLD_MAX:  # tenfold up to the first that overshoots
        if not falls(eta):
            bad = eta
            break
        good, eta = eta, eta * 10
    if bad is None:
        threshold = THRESHOLD_MAX
    elif bad == start:  # already the first overshoots: go down instead
        eta = start / 2
        while eta > 1e-6 and not falls(eta):
            bad, eta = eta, eta / 2
        good, threshold = eta, bad
    else:
        eta = good * 2
        while eta < bad:  # finer: factors of 2 between the last that falls and the first that does not
            if not falls(eta):
                bad = eta
                break
            good, eta = eta, eta * 2
        threshold = bad
    chosen_eta = threshold / 2
    record["phases"].append({"phase": 2, "name": "threshold", "runs": sorted(tried.values(), key=lambda r: r["eta"]),
                             "threshold": threshold, "eta": chosen_eta})
    log(f"  -> threshold {threshold:g}: eta = threshold / 2 = {chosen_eta:g}")

    # Phase 3: lambda, 0 -> 1 -> x10 or /10
    log(f"phase 3: lambda, from 0 to 1 and then x10 or /10 ({base.describe()}, eta {chosen_eta:g}, all "
        f"{base.train_size} images, {LAMBDA['epochs']} epochs)")
    scores: dict[float, float] = {}

    def score(lmbda: float) -> float:
        if lmbda not in scores:
            result = _run(replace(base, **LAMBDA, eta=chosen_eta, lmbda=lmbda), out / f"phase3-lambda-{lmbda:g}")
            scores[lmbda] = result["validation_accuracy"]
            log(f"  lambda {lmbda:<8g} validation accuracy {100 * scores[lmbda]:6.2f}%")
        return scores[lmbda]

    score(0.0)
    current = 1.0
    factor = 10.0 if score(current * 10) >= score(current / 10) else 0.1  # the direction that improves
    for _ in range(LAMBDA_STEPS):
        if score(current * factor) <= score(current):
            break
        current *= factor
    best = max(scores, key=lambda k: (scores[k], -k))  # the best tried (on a tie, the smaller lambda)
    record["phases"].append({"phase": 3, "name": "lambda",
                             "runs": [{"lmbda": k, "validation_accuracy": v} for k, v in sorted(scores.items())],
                             "lmbda": best})
    log(f"  -> lambda {best:g}")

    # Phase 4: the full problem, early stopping and eta halved on plateaus
    final = replace(base, **FINAL, eta=chosen_eta, lmbda=best)
    log(f"phase 4: the full problem, up to {final.epochs} epochs, stopped after no improvement in "
        f"{final.early_stop}, eta halved after {final.patience} epochs without improvement")
    result = _run(final, out / "phase4-final")
    summary = result["summary"]
    command = _command(final, given)
    record["phases"].append({"phase": 4, "name": "final", "epochs": result["epochs"], "summary": summary})
    record.update({"validation_accuracy": result["validation_accuracy"], "test_accuracy": summary.get("test_accuracy"),
                   "test_accuracy_at_best_validation": summary.get("test_accuracy_at_best_validation"),
                   "eta": chosen_eta, "lmbda": best, "epochs_run": len(result["epochs"]), "command": command,
                   "folder": str(out / "phase4-final")})
    write_json(out / "strategy.json", record)
    from tiefnet.hpsearch.plots import phases_figure

    phases_figure(record, out / "phases.png")
    test = summary.get("test_accuracy")
    log(f"  -> {len(result['epochs'])} epochs, best validation accuracy {100 * result['validation_accuracy']:.2f}%"
        + (f", test accuracy {100 * test:.2f}%" if isinstance(test, float) else "")
        + f"\nthe phases are in {out / 'strategy.json'} and {out / 'phases.png'}; train it again with:\n  {command}")
    return record


def _command(config, given: dict[str, Any]) -> str:
    from tiefnet.hpsearch.trainers import trainer

    names = set(BASE) | set(given) | {"eta", "lmbda"} | set(FINAL)
    return trainer("mnist").command_line({k: v for k, v in asdict(config).items() if k in names})

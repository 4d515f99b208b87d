"""What a search leaves behind: a table of its trials (``trials.csv``, and the best ones printed),
the best settings as a ready command (``best.json``), and figures: ``history.png`` (the objective
of each trial and the best so far), ``importances.png`` (how much each setting decides the result,
PED-ANOVA) and ``params.png`` (the result over two settings, e.g. eta and lambda, on log axes
where the range is)."""
from __future__ import annotations

import csv
import io
from typing import Any, Callable

from tiefnet.files import write_json, write_text
from tiefnet.hpsearch.plots import plots
from tiefnet.hpsearch.study import Search, shown_url, storage_url

SHOWN = 10  # trials in the printed table


def rows(study, search: Search) -> list[dict[str, Any]]:
    """One row per trial: number, state, value, epochs, settings, test accuracy, seconds."""
    names = [p.name for p in search.space.params]
    table = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        row = {"trial": trial.number, "state": trial.state.name.lower(), "value": trial.value,
               "epochs": attrs.get("epochs"), **{name: trial.params.get(name) for name in names},
               "test_accuracy": attrs.get("test_accuracy"),
               "seconds": (trial.duration.total_seconds() if trial.duration is not None else None)}
        if "duplicate_of" in attrs:
            row["state"] = f"duplicate of {attrs['duplicate_of']}"
        table.append(row)
    return table


def best_settings(study, search: Search) -> dict[str, Any] | None:
    """The fixed settings and the best trial's searched ones, typed as the trainer's Config has them."""
    from tiefnet.hpsearch.space import typed

    try:
        best = study.best_trial
    except ValueError:  # no trial completed yet
        return None
    config_class = search.trainer.config_class()
    settings = {**search.space.fixed, **{k: typed(config_class, k, v) for k, v in best.params.items()}}
    if search.threads > 1 and "threads" in config_class.__dataclass_fields__:
        settings["threads"] = search.threads
    return settings


def _csv(table: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if table:
        writer = csv.DictWriter(out, fieldnames=list(table[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
    return out.getvalue()


def _cell(value: Any, percent: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{100 * value:.2f}%" if percent else f"{value:.4g}"
    return str(value)


def table_text(table: list[dict[str, Any]], search: Search, shown: int = SHOWN) -> str:
    """The best ``shown`` trials as an aligned text table (finished trials, best first)."""
    trainer = search.trainer
    done = [r for r in table if r["value"] is not None]
    done.sort(key=lambda r: r["value"], reverse=trainer.direction == "maximize")
    names = [p.name for p in search.space.params]
    header = ["trial", "state", trainer.label, "epochs", *names, "test accuracy" if trainer.name == "mnist" else "", "seconds"]
    lines = [[str(r["trial"]), r["state"], trainer.shown(r["value"]), _cell(r["epochs"]), *(_cell(r[n]) for n in names),
              _cell(r["test_accuracy"], percent=True) if trainer.name == "mnist" else "", _cell(r["seconds"])]
             for r in done[:shown]]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    text = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    text += ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    return "\n".join(text)


def write_report(study, search: Search, log: Callable[[str], None] = print) -> dict[str, Any]:
    """trials.csv, best.json and the figures in ``search.out``; prints the table and the best command."""
    table = rows(study, search)
    out = search.out
    write_text(out / "trials.csv", _csv(table))
    counts = {state: sum(r["state"] == state for r in table) for state in ("complete", "pruned", "fail")}
    epochs = sum(r["epochs"] or 0 for r in table)
    settings = best_settings(study, search)
    result: dict[str, Any] = {"study": search.study, "storage": shown_url(storage_url(search) or "memory"),
                              "trainer": search.trainer.name, "trials": len(table), **counts, "epochs": epochs}
    if settings is None:
        log(f"no trial of the study {search.study!r} has finished yet")
        write_json(out / "best.json", result)
        return result
    best = study.best_trial
    command = search.trainer.command_line(settings)
    result.update({"best_trial": best.number, "best_value": best.value, "metric": search.trainer.label,
                   "best_params": best.params, "settings": settings, "command": command,
                   "test_accuracy": best.user_attrs.get("test_accuracy"), "folder": best.user_attrs.get("folder")})
    write_json(out / "best.json", result)
    log(table_text(table, search))
    log(f"{len(table)} trials ({counts['complete']} complete, {counts['pruned']} pruned, {counts['fail']} failed), "
        f"{epochs} epochs (evaluations) trained")
    test = best.user_attrs.get("test_accuracy")
    log(f"best: trial {best.number}, {search.trainer.label} {search.trainer.shown(best.value)}"
        + (f", test accuracy {100 * test:.2f}%" if isinstance(test, float) else "")
        + f"; train it again with:\n  {command}")
    plots(study, search)
    return result

"""The figures of a search: ``history.png`` (each trial's objective and the best so far),
``importances.png`` (how much each setting decides the result, PED-ANOVA: no scikit-learn needed),
``params.png`` (the result over two settings, e.g. eta and lambda, on log axes where the range is
log) and, for ``--strategy lecture``, ``phases.png`` (one panel per phase)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tiefnet.files import replacing
from tiefnet.hpsearch.study import Search, optuna


def plots(study, search: Search) -> list[Path]:
    """history.png, importances.png (from 3 complete trials and 2 searched settings on) and params.png."""
    from tiefnet import plot  # matplotlib (Agg) where a figure is drawn

    optuna_ = optuna()
    vis = optuna_.visualization.matplotlib
    states = optuna_.trial.TrialState
    written = []
    complete = study.get_trials(deepcopy=False, states=(states.COMPLETE,))
    figures = [("history.png", lambda: vis.plot_optimization_history(study, target_name=search.trainer.label))]
    if len(complete) >= 3 and len(search.space.params) >= 2:
        figures.append(("importances.png", lambda: vis.plot_param_importances(
            study, evaluator=optuna_.importance.PedAnovaImportanceEvaluator(), target_name=search.trainer.label)))
    for name, draw in figures:
        try:
            with plot.plt.rc_context():  # Optuna's figures set a style of their own: not for the figures after
                axes = draw()
        except (ValueError, RuntimeError, ZeroDivisionError):  # too few trials for this figure
            continue
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        figure.set_size_inches(7, 4.5)
        with replacing(search.out / name) as path:
            plot.save(figure, path)
        written.append(search.out / name)
    if complete:
        written.append(params_figure(complete, search))
    return written


def params_figure(trials, search: Search) -> Path:
    """The objective over the two searched numeric settings (eta and lmbda where both are searched),
    one point per complete trial, coloured by its value; over one setting, the value on the y axis."""
    from tiefnet import plot

    numeric = [p for p in search.space.params if p.kind != "choice"]
    named = [p for p in numeric if p.name in ("eta", "lmbda")]
    chosen = (named if len(named) == 2 else numeric)[:2] or search.space.params[:1]
    values = [t.value for t in trials]
    fig, ax = plot.plt.subplots(figsize=(6.5, 4.8))
    x = [t.params.get(chosen[0].name) for t in trials]
    if len(chosen) == 2:
        y = [t.params.get(chosen[1].name) for t in trials]
        dots = ax.scatter(x, y, c=values, cmap="viridis", s=36, edgecolors="k", linewidths=0.4)
        fig.colorbar(dots, ax=ax, label=search.trainer.label)
        ax.set_ylabel(chosen[1].name)
        if chosen[1].kind in ("log", "logint"):
            ax.set_yscale("log")
        best = trials[max(range(len(trials)), key=lambda i: values[i] if search.trainer.direction == "maximize"
                          else -values[i])]
        ax.scatter([best.params.get(chosen[0].name)], [best.params.get(chosen[1].name)], marker="*", s=220,
                   c="red", label=f"best (trial {best.number})")
        ax.legend(loc="best", fontsize=8)
    else:
        ax.scatter(x, values, s=30)
        ax.set_ylabel(search.trainer.label)
    ax.set_xlabel(chosen[0].name)
    if chosen[0].kind in ("log", "logint"):
        ax.set_xscale("log")
    finite = [v for v in values if isinstance(v, float) and math.isfinite(v)]
    if finite:
        best_value = max(finite) if search.trainer.direction == "maximize" else min(finite)
        ax.set_title(f"{len(trials)} complete trials of {search.study!r}, best {search.trainer.shown(best_value)}")
    with replacing(search.out / "params.png") as path:
        plot.save(fig, path)
    return search.out / "params.png"


def phases_figure(record: dict[str, Any], path: Path) -> Path:
    """The lecture strategy's four phases: accuracy over eta on 0/1; the training cost of the first
    epochs for each eta (the threshold marked); validation accuracy over lambda; the final run."""
    from tiefnet import plot

    phases = {p["phase"]: p for p in record["phases"]}
    fig, axes = plot.plt.subplots(2, 2, figsize=(11, 8))
    ax = axes[0, 0]
    runs = phases[1]["runs"]
    ax.semilogx([r["eta"] for r in runs], [100 * r["validation_accuracy"] for r in runs], "o-")
    ax.axhline(50, color="grey", ls=":", label="chance (2 digits)")
    ax.set(xlabel="eta", ylabel="validation accuracy (%)", title="1: a signal at all (digits 0 and 1, 784-10-10)")
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    for r in phases[2]["runs"]:
        costs = r["train_costs"]
        if costs:
            ax.plot(range(1, len(costs) + 1), costs, "o-" if r["falling"] else "x--", ms=4,
                    label=f"eta {r['eta']:g}{'' if r['falling'] else ' (overshoots)'}")
    ax.set_yscale("log")
    ax.set(xlabel="epoch", ylabel="training cost",
           title=f"2: threshold {phases[2]['threshold']:g} -> eta = {phases[2]['eta']:g}")
    plot.epoch_axis(ax)
    ax.legend(fontsize=7, ncol=2)
    ax = axes[1, 0]
    runs = phases[3]["runs"]
    shown = [max(r["lmbda"], 1e-3) for r in runs]  # lambda 0 at the left edge of the log axis
    ax.semilogx(shown, [100 * r["validation_accuracy"] for r in runs], "o")
    for x, r in zip(shown, runs):
        ax.annotate(f"{r['lmbda']:g}", (x, 100 * r["validation_accuracy"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.set(xlabel="lambda (0 shown at 0.001)", ylabel="validation accuracy (%)",
           title=f"3: lambda 0 -> 1 -> x10 or /10: {phases[3]['lmbda']:g}")
    ax = axes[1, 1]
    epochs = phases[4]["epochs"]
    if epochs:
        x = [e["epoch"] for e in epochs]
        for key, label in (("train_accuracy", "training"), ("validation_accuracy", "validation")):
            if key in epochs[0]:
                ax.plot(x, [100 * e[key] for e in epochs], label=label)
        ax.legend(fontsize=8)
        plot.epoch_axis(ax)
    ax.set(xlabel="epoch", ylabel="accuracy (%)",
           title=f"4: early stopping (no improvement in 10), {len(epochs)} epochs")
    fig.suptitle(record.get("command", ""), fontsize=8)
    with replacing(path) as tmp:
        plot.save(fig, tmp)
    return path

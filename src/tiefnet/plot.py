"""Figures for run folders and experiments (matplotlib, no display needed)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import matplotlib

if "IPython" not in sys.modules:  # a command or a script: files only. In a notebook its inline backend
    matplotlib.use("Agg")          # stays (the figures saved here are closed, so they are not shown twice)
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

MARKERS_UP_TO = 20  # a series of at most this many points shows them (one point alone is no line at all)


def points(n: int, marker: str = "o") -> dict[str, object]:
    """Keyword arguments of ``ax.plot`` for a series of ``n`` points: markers when there are few."""
    return {"marker": marker, "markersize": 4} if n <= MARKERS_UP_TO else {}


def epoch_axis(ax) -> None:
    """Ticks at whole epochs only (no "epoch 1.5" under a one- or two-epoch run)."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def training_curves(epochs: Sequence[dict], path: str | Path, title: str = "") -> Path:
    """Cost (left) and accuracy (right) per epoch for every series present in ``epochs``."""
    fig, (ax_cost, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    x = [e["epoch"] for e in epochs]
    for split in ("train", "validation", "test"):
        if epochs and f"{split}_cost" in epochs[0]:
            ax_cost.plot(x, [e[f"{split}_cost"] for e in epochs], label=split, **points(len(x)))
        if epochs and f"{split}_accuracy" in epochs[0]:
            ax_acc.plot(x, [100 * e[f"{split}_accuracy"] for e in epochs], label=split, **points(len(x)))
    ax_cost.set(xlabel="epoch", ylabel="cost", title="cost")
    ax_acc.set(xlabel="epoch", ylabel="accuracy [%]", title="classification accuracy")
    for ax in (ax_cost, ax_acc):
        epoch_axis(ax)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return save(fig, path)


def save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

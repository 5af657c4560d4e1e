"""The training-curve figure of a run: loss terms and validation mAP per epoch, best epoch marked.

Drawn on a ``matplotlib.figure.Figure``, never through ``pyplot`` (as :mod:`audiobench.study.figures`): importing
the trainer switches no backend in a notebook, and no figure stays open in a long-lived worker process.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def plot_training_curve(epochs: Sequence[Mapping], best_epoch: int, path: Path, *, title: str) -> Path:
    """Write a PNG with the per-epoch losses (left) and validation mAP (right); returns ``path``.

    ``epochs`` are the ``metrics.json`` epoch records: ``epoch``, ``loss``, ``terms`` and ``val_map``.
    """
    numbers = [e["epoch"] for e in epochs]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot(numbers, [e["loss"] for e in epochs], marker="o", label="total")
    terms = sorted({name for e in epochs for name in e["terms"]})
    if len(terms) > 1:
        for name in terms:
            left.plot(numbers, [e["terms"][name] for e in epochs], linestyle="--", label=name)
    left.set_xlabel("epoch")
    left.set_ylabel("training loss")
    left.legend(fontsize="small")
    right.plot(numbers, [e["val_map"] for e in epochs], marker="o", color="tab:green")
    right.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch {best_epoch}")
    right.set_xlabel("epoch")
    right.set_ylabel("validation mAP")
    right.legend(fontsize="small")
    for axis in (left, right):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    return path

"""The published numbers a study can be read against: Tables I and II of the paper, as data.

Kim, B. and Ghaffarzadegan, S., "Self-supervised attention model for weakly labeled audio event
classification", EUSIPCO 2019. Table I: test mAP (%) on SL-DCASE-17, mean ± std over 20 trials, one-step
(VGGish → SL-DCASE-17) and two-step (VGGish → balanced AudioSet → SL-DCASE-17) transfer. Table II: test mAP (%)
on balanced AudioSet, mean ± std over 20 trials. Values are copied as printed (percent); rows are keyed by the
variant that trains that row's model (docs/model.md, "The variants").

Which table a study reproduces: ``config.json``'s ``paper_table`` when it names one (``"none"``: no paper
column), else the dataset and the initialisation say so: ``sl-dcase17`` from VGGish weights is Table I's
one-step column, from a run (``init = "run:..."``, model (a)) its two-step column, ``audioset-balanced`` is
Table II. The variants not in the table get no paper value.

>>> paper_values({"dataset": "sl-dcase17", "train": {"init": "vggish:w.pth"}})["att-self"]
(54.4, 0.12)
>>> table_for({"dataset": "audioset-balanced"}), table_for({"dataset": "synth-demo"})
('II', None)
"""
from __future__ import annotations

from typing import Any

from audiobench.core.errors import AudiobenchError

CITATION = ("Kim & Ghaffarzadegan, \"Self-supervised attention model for weakly labeled audio event "
            "classification\", EUSIPCO 2019")

# mean, std of test mAP in percent, as printed
TABLES: dict[str, dict[str, tuple[float, float]]] = {
    "I-one-step": {"noatt-weak": (50.0, 0.33), "noatt-strong": (49.7, 0.42), "noatt-weak-strong": (49.0, 0.44),
                   "att-unsup": (53.8, 0.44), "att-strong": (54.7, 0.4), "att-self": (54.4, 0.12)},
    "I-two-step": {"noatt-weak": (51.4, 0.17), "noatt-strong": (50.8, 0.44), "noatt-weak-strong": (51.1, 0.31),
                   "att-unsup": (53.9, 0.47), "att-strong": (56.3, 0.26), "att-self": (55.9, 0.30)},
    "II": {"noatt-weak": (26.4, 0.01), "att-unsup": (23.1, 0.06), "att-self": (27.4, 0.02)},
}
TITLES = {"I-one-step": "Table I, one-step transfer", "I-two-step": "Table I, two-step transfer",
          "II": "Table II"}
NONE = "none"


def table_for(config: dict[str, Any]) -> str | None:
    """The paper table a study reproduces (a key of :data:`TABLES`), or None."""
    chosen = config.get("paper_table")
    if chosen is not None:
        return check_table(str(chosen))
    dataset = str(config.get("dataset", ""))
    init = str((config.get("train") or {}).get("init") or "")
    if dataset == "sl-dcase17":
        return "I-two-step" if init.startswith("run:") else "I-one-step" if init.startswith("vggish") else None
    if dataset == "audioset-balanced":
        return "II"
    return None


def check_table(name: str) -> str | None:
    """``name`` if it is a table (None for ``none``), else a one-line error listing the tables."""
    if name == NONE:
        return None
    if name not in TABLES:
        raise AudiobenchError(f"unknown paper table {name!r} (choose from {', '.join(TABLES)} or {NONE})")
    return name


def paper_values(config: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """``{variant: (mean %, std %)}`` of the table the study reproduces; empty when none."""
    table = table_for(config)
    return dict(TABLES[table]) if table else {}


def fmt_paper(value: tuple[float, float] | list[float] | None) -> str:
    """``54.4 ± 0.12``: percent, as the paper prints it; ``–`` where the paper has no such row."""
    if not value:
        return "–"
    mean, std = value
    return f"{mean:.1f} ± {std:.2f}"

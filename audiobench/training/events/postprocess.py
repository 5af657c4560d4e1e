"""Post-processing of score tables, chosen on a split other than the test split.

A median filter over segments (``scipy.ndimage.median_filter``; one length for all classes, or one per
class) and one threshold per class. Both are chosen where the run's strong labels allow: on the validation
split when it has strong labels, else on the training split (recorded in ``chosen_on``, and the report says
so). For each filter length of :data:`FILTER_LENGTHS`, sed_scores_eval's ``segment_based.best_fscore``
gives each class's best segment-based F1 on 1 s segments and the threshold reaching it; the length with
the best F1 is kept (per class, or by the macro average for a global one). A class with no event in the
choosing split gets no threshold (``None``: it is never detected). The test split never enters here:
:func:`choose` only ever receives the choosing split's tables and labels.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.ndimage import median_filter
from sed_scores_eval import segment_based

from audiobench.core.errors import AudiobenchError
from audiobench.training.events.exports import Events, writable

FILTER_LENGTHS = (1, 3, 5)  # median filter lengths tried, in segments (1: no filter)
SEGMENT_SECONDS = 1.0  # the segment length F1 is chosen on (the metric's: DCASE 2017 Task 4)
Mode = Literal["class", "global"]


@dataclass(frozen=True)
class PostProcessing:
    """What was chosen for one score source: filter length and threshold per class, and where."""

    source: str
    chosen_on: str  # the split the values were chosen on ("val", or "train" when val has no strong labels)
    mode: str
    median: dict[str, int]
    thresholds: dict[str, float | None]  # None: no event of the class where chosen; never detected
    f1: dict[str, float | None]  # each class's segment F1 at the chosen values, on the choosing split

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "filter_lengths": list(FILTER_LENGTHS), "segment_seconds": SEGMENT_SECONDS}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PostProcessing:
        return cls(data["source"], data["chosen_on"], data["mode"], dict(data["median"]),
                   dict(data["thresholds"]), dict(data["f1"]))

    def cut(self) -> dict[str, float]:
        """The thresholds as a detector applies them (``inf`` for a class never detected)."""
        return {c: math.inf if t is None else float(t) for c, t in self.thresholds.items()}


def median_filtered(tables: Mapping[str, pd.DataFrame], lengths: Mapping[str, int]) -> dict[str, pd.DataFrame]:
    """Each table with class ``c``'s scores median-filtered over ``lengths[c]`` segments (edges: nearest)."""
    if all(n <= 1 for n in lengths.values()):
        return dict(tables)  # no filter: the tables as they are
    out = {}
    for clip, table in tables.items():
        columns = list(table.columns)
        values = table.to_numpy(dtype=np.float64, copy=True)  # one array per table: pandas per column is slow
        for c, n in lengths.items():
            if n > 1 and c in columns:
                k = columns.index(c)
                values[:, k] = median_filter(values[:, k], size=int(n), mode="nearest")
        out[clip] = pd.DataFrame(values, columns=columns)
    return out


def present_classes(events: Events, classes: Sequence[str]) -> list[str]:
    """The classes, in order, with at least one event in ``events`` (the tools score no other)."""
    seen = {label for evs in events.values() for _, _, label in evs}
    return [c for c in classes if c in seen]


def only(tables: Mapping[str, pd.DataFrame], classes: Sequence[str]) -> dict[str, pd.DataFrame]:
    """The tables restricted to ``classes`` (onset and offset kept)."""
    out = {}
    for clip, table in tables.items():
        columns = list(table.columns)
        keep = [0, 1, *(columns.index(c) for c in classes)]
        out[clip] = pd.DataFrame(table.to_numpy()[:, keep], columns=["onset", "offset", *classes])
    return out


def choose(tables: Mapping[str, pd.DataFrame], events: Events, durations: Mapping[str, float],
           classes: Sequence[str], *, source: str, chosen_on: str, mode: Mode = "class") -> PostProcessing:
    """Filter lengths and thresholds that maximise segment F1 on the choosing split's ``events``."""
    if mode not in ("class", "global"):
        raise AudiobenchError(f"post-processing mode must be 'class' or 'global', got {mode!r}")
    present = present_classes(events, classes)
    median = {c: 1 for c in classes}
    thresholds: dict[str, float | None] = {c: None for c in classes}
    f1: dict[str, float | None] = {c: None for c in classes}
    if present:
        tried = []
        for n in FILTER_LENGTHS:
            filtered = median_filtered(only(tables, present), {c: n for c in present})
            f, _, _, thr, _ = segment_based.best_fscore(writable(filtered), events, dict(durations),
                                                        segment_length=SEGMENT_SECONDS)
            tried.append((n, f, thr))
        if mode == "global":
            n, f, thr = max(tried, key=lambda t: float(t[1]["macro_average"]))  # first best: the shortest
            picks = {c: (n, f, thr) for c in present}
        else:
            picks = {c: max(tried, key=lambda t: float(t[1][c])) for c in present}
        for c, (n, f, thr) in picks.items():
            median[c], thresholds[c], f1[c] = n, float(thr[c]), float(f[c])
    return PostProcessing(source, chosen_on, mode, median, thresholds, f1)

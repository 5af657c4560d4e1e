"""Event-level metrics computed by the field's own code from the exported files (thin adapters only).

- segment-based F1 (micro-averaged over classes) and error rate on 1 s segments: ``sed_eval``'s
  ``SegmentBasedMetrics``, fed clip by clip as the DCASE 2017 Task 4 (subtask B) evaluation fed it;
- event-based F1: ``sed_eval``'s ``EventBasedMetrics``, 200 ms onset collar and an offset collar of
  max(200 ms, 20 % of the event's length), as DCASE 2017 Task 4 scored it;
- PSDS1 and PSDS2 (the DCASE 2021+ scenarios) from the score tables: ``sed_scores_eval``'s
  ``intersection_based.psds``, and ``bootstrapped_psds`` for the interval.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import sed_eval  # its dcase_util's pkg_resources warning is silenced in audiobench.training.events
from dcase_util.containers import MetaDataContainer
from sed_scores_eval import intersection_based
from sed_scores_eval.base_modules.bootstrap import confidence_interval

from audiobench.training.events.exports import Events, writable
from audiobench.training.events.postprocess import only, present_classes

SEGMENT_SECONDS = 1.0
COLLAR_SECONDS = 0.2
OFFSET_LENGTH_SHARE = 0.2
# The DCASE 2021+ PSDS scenarios.
PSDS_SCENARIOS: dict[str, dict[str, float]] = {
    "psds1": {"dtc_threshold": 0.7, "gtc_threshold": 0.7, "alpha_ct": 0.0, "alpha_st": 1.0, "max_efpr": 100.0},
    "psds2": {"dtc_threshold": 0.1, "gtc_threshold": 0.1, "cttc_threshold": 0.3, "alpha_ct": 0.5,
              "alpha_st": 1.0, "max_efpr": 100.0},
}
# sed_scores_eval's bootstrap: n_iterations shuffles of the clips, each leaving out one of n_folds folds in
# turn (n_folds × n_iterations resamples). Modest: every run with strong test labels pays for it.
BOOTSTRAP_FOLDS = 5
BOOTSTRAP_ITERATIONS = 3
BOOTSTRAP_CONFIDENCE = 0.9


def _container(events: Sequence[tuple[float, float, str]], filename: str) -> MetaDataContainer:
    return MetaDataContainer([{"filename": filename, "onset": a, "offset": b, "event_label": label}
                              for a, b, label in events])


def _per_clip(metric: Any, reference: Events, detected: Events) -> Any:
    for clip in sorted(reference):
        metric.evaluate(reference_event_list=_container(reference[clip], clip),
                        estimated_event_list=_container(detected.get(clip, []), clip))
    return metric


def segment_based(reference: Events, detected: Events, classes: Sequence[str]) -> dict[str, float]:
    """Micro F1, precision, recall and ER on 1 s segments (sed_eval), over every clip of ``reference``."""
    metric = _per_clip(sed_eval.sound_event.SegmentBasedMetrics(event_label_list=list(classes),
                                                                time_resolution=SEGMENT_SECONDS),
                       reference, detected)
    overall = metric.results_overall_metrics()
    return {"f1": overall["f_measure"]["f_measure"], "precision": overall["f_measure"]["precision"],
            "recall": overall["f_measure"]["recall"], "er": overall["error_rate"]["error_rate"]}


def event_based(reference: Events, detected: Events, classes: Sequence[str]) -> dict[str, float]:
    """Micro F1, precision and recall of events, onset and offset within the collars (sed_eval)."""
    metric = _per_clip(sed_eval.sound_event.EventBasedMetrics(
        event_label_list=list(classes), t_collar=COLLAR_SECONDS, percentage_of_length=OFFSET_LENGTH_SHARE,
        evaluate_onset=True, evaluate_offset=True), reference, detected)
    overall = metric.results_overall_metrics()
    return {"f1": overall["f_measure"]["f_measure"], "precision": overall["f_measure"]["precision"],
            "recall": overall["f_measure"]["recall"], "er": overall["error_rate"]["error_rate"]}


@dataclass(frozen=True)
class PSDS:
    """One scenario's PSDS, its bootstrap interval and PSD-ROC (effective TPR against eFPR per hour)."""

    value: float
    low: float | None
    high: float | None
    tpr: np.ndarray
    efpr: np.ndarray


def psds(tables: dict, reference: Events, durations: dict[str, float], classes: Sequence[str], scenario: str,
         *, bootstrap: bool = True) -> PSDS | None:
    """PSDS of a scenario over the classes with events in ``reference`` (None: no class has any)."""
    present = present_classes(reference, classes)
    if not present:
        return None
    tables = writable(only(tables, present))
    settings = PSDS_SCENARIOS[scenario]
    deltas = intersection_based.intermediate_statistics_deltas(  # once, for the value and every resample
        tables, reference, **{k: v for k, v in settings.items() if k.endswith("_threshold")})
    value, _, (tpr, efpr), _ = intersection_based.psds(None, reference, durations, deltas=deltas, **settings)
    low = high = None
    if bootstrap and len(tables) >= BOOTSTRAP_FOLDS:
        resampled = intersection_based.bootstrapped_psds(None, reference, durations, deltas=deltas,
                                                         n_folds=BOOTSTRAP_FOLDS, n_iterations=BOOTSTRAP_ITERATIONS,
                                                         **settings)
        _, low, high = confidence_interval(resampled[0], confidence=BOOTSTRAP_CONFIDENCE)
    return PSDS(float(value), low, high, np.asarray(tpr), np.asarray(efpr))

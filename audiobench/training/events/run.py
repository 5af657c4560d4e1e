"""A finished run's event outputs on its test split: ``<run>/test-events/``, and the metrics read from it.

``test-events/`` holds ``ground_truth.tsv`` and ``durations.tsv`` (the test clips' strong labels and
lengths), ``postprocessing.json`` (what was chosen, and on which split), and per score source
(``segments``: Xa; ``attention``: A, for attention variants) ``<source>/scores/<clip>.tsv``,
``<source>/detections.tsv`` and ``<source>/psd_roc.json``. :func:`score_folder` computes every event metric
from exactly these files, so anyone can check a number with sed_eval or sed_scores_eval by hand.
"""
from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audiobench.core.layout import json_safe, write_atomic
from audiobench.features.dataset import LogmelDataset
from audiobench.models.net import Net
from audiobench.training.events import exports, metrics
from audiobench.training.events.postprocess import Mode, PostProcessing, choose, median_filtered, present_classes
from audiobench.training.events.segments import SOURCES, SegmentScores, segment_scores

FOLDER = "test-events"
POSTPROCESSING = "postprocessing.json"
METRIC_NAMES = ("psds1", "psds2", "segment_f1", "segment_er", "event_f1")  # compare --metric, per source


def sources_of(scores: SegmentScores) -> tuple[str, ...]:
    return SOURCES if scores.attention is not None else SOURCES[:1]


def choose_postprocessing(net: Net, dataset: LogmelDataset, chosen_on: str, *, device: torch.device,
                          batch_size: int = 32, bf16: bool = False, mode: Mode = "class"
                          ) -> dict[str, PostProcessing]:
    """Post-processing per score source, chosen on ``dataset`` (a true-length val or train split, never test)."""
    scores = segment_scores(net, dataset, device=device, batch_size=batch_size, bf16=bf16)
    events = exports.split_events(dataset.path, scores.clip_ids, scores.durations)
    durations = dict(zip(scores.clip_ids, scores.durations))
    classes = [c.name for c in dataset.classes]
    return {source: choose(exports.score_tables(scores, source, classes), events, durations, classes,
                           source=source, chosen_on=chosen_on, mode=mode) for source in sources_of(scores)}


def write_events(folder: Path, scores: SegmentScores, test_file: Path, classes: Sequence[str],
                 chosen: dict[str, PostProcessing]) -> Path:
    """Write the test split's event files (see the module doc) into a fresh ``folder``."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    events = exports.split_events(test_file, scores.clip_ids, scores.durations)
    exports.write_ground_truth(folder / "ground_truth.tsv", events)
    exports.write_durations(folder / "durations.tsv", scores.clip_ids, scores.durations)
    write_atomic(folder / POSTPROCESSING,
                 json.dumps(json_safe({s: chosen[s].to_json() for s in sources_of(scores)}), indent=2))
    for source in sources_of(scores):
        tables = exports.score_tables(scores, source, classes)
        exports.write_scores(folder / source / "scores", tables)
        pp = chosen[source]
        exports.write_detections(folder / source / "detections.tsv", median_filtered(tables, pp.median), pp.cut())
    return folder


def read_postprocessing(folder: Path) -> dict[str, PostProcessing]:
    return {s: PostProcessing.from_json(v) for s, v in json.loads((folder / POSTPROCESSING).read_text()).items()}


def score_folder(folder: Path, classes: Sequence[str], *, bootstrap: bool = True) -> dict[str, Any]:
    """Every event metric of each source, from the files of ``folder`` alone; PSD-ROCs written beside them."""
    reference = exports.read_ground_truth(folder / "ground_truth.tsv")
    durations = exports.read_durations(folder / "durations.tsv")
    chosen = read_postprocessing(folder)
    out: dict[str, Any] = {}
    for source in chosen:
        detected = exports.read_detections(folder / source / "detections.tsv")
        tables = exports.read_scores(folder / source / "scores")
        segment = metrics.segment_based(reference, detected, classes)
        event = metrics.event_based(reference, detected, classes)
        values: dict[str, Any] = {"segment_f1": segment["f1"], "segment_er": segment["er"],
                                  "segment_precision": segment["precision"], "segment_recall": segment["recall"],
                                  "event_f1": event["f1"], "event_precision": event["precision"],
                                  "event_recall": event["recall"]}
        rocs = {}
        for scenario in metrics.PSDS_SCENARIOS:
            result = metrics.psds(tables, reference, durations, classes, scenario,  # an interval: Xa's only
                                  bootstrap=bootstrap and source == SOURCES[0])
            values[scenario] = None if result is None else result.value
            values[f"{scenario}_low"] = None if result is None else result.low
            values[f"{scenario}_high"] = None if result is None else result.high
            if result is not None:
                rocs[scenario] = {"tpr": result.tpr.tolist(), "efpr": result.efpr.tolist()}
        write_atomic(folder / source / "psd_roc.json", json.dumps(json_safe(rocs)))
        out[source] = values
    return out


def events_record(folder: Path, run_dir: Path, classes: Sequence[str], values: dict[str, Any]) -> dict[str, Any]:
    """metrics.json's ``events`` block and its top-level ``test_*`` keys (of the ``segments`` source)."""
    chosen = read_postprocessing(folder)
    reference = exports.read_ground_truth(folder / "ground_truth.tsv")
    present = set(present_classes(reference, classes))
    block = {
        "folder": folder.relative_to(run_dir).as_posix() if folder.is_relative_to(run_dir) else str(folder),
        "chosen_on": next(iter(chosen.values())).chosen_on,
        "sources": values,
        "psds_skipped": [c for c in classes if c not in present],  # no test event: PSDS is not defined for it
        "settings": {"segment_seconds": metrics.SEGMENT_SECONDS, "collar_seconds": metrics.COLLAR_SECONDS,
                     "offset_length_share": metrics.OFFSET_LENGTH_SHARE, "psds": metrics.PSDS_SCENARIOS,
                     "bootstrap": {"folds": metrics.BOOTSTRAP_FOLDS, "iterations": metrics.BOOTSTRAP_ITERATIONS,
                                   "confidence": metrics.BOOTSTRAP_CONFIDENCE, "over": "test clips"}},
    }
    top = {f"test_{k}": v for k, v in values["segments"].items()}
    return {**top, "events": block}


def run_events(net: Net, splits: Any, run_dir: Path, *, device: torch.device, batch_size: int, bf16: bool,
                rows: np.ndarray | Sequence[int] | None = None) -> dict[str, Any]:
    """``test-events/`` of a run whose test split has strong labels, and what metrics.json gets from it ({}
    when the test split has none). Post-processing is chosen on val, or on train when val has no strong labels.
    """
    started = time.perf_counter()
    if not splits.test.has_strong:
        return {}
    if splits.val.has_strong:
        choosing, chosen_on = splits.val, "val"
    elif splits.train.has_strong:
        choosing, chosen_on = LogmelDataset(splits.files["train"], frames=None), "train"
    else:
        return {}
    chosen = choose_postprocessing(net, choosing, chosen_on, device=device, batch_size=batch_size, bf16=bf16)
    scores = segment_scores(net, splits.test, device=device, batch_size=batch_size, bf16=bf16, rows=rows)
    classes = [c.name for c in splits.classes]
    folder = write_events(run_dir / FOLDER, scores, splits.files["test"], classes, chosen)
    record = events_record(folder, run_dir, classes, score_folder(folder, classes))
    record["events"]["seconds"] = time.perf_counter() - started
    return record

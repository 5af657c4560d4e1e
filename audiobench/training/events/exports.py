"""The files the field's tools read, written from a split's segment scores and strong labels.

- score tables (``sed_scores_eval``): one TSV per clip, ``onset offset <class…>``, one row per segment;
- ground truth and detection lists (DCASE): ``filename onset offset event_label``, ``filename`` being the
  clip id with ``.wav`` (the DCASE lists' names; the tools strip the extension to get the clip id back);
- clip durations: ``filename duration``.

Ground-truth events of one class that overlap or touch are written as one (the tools refuse connected
events; the frame targets are their union anyway), events are clipped to the clip's duration as the frame
rule counts it, and zero-length events ("present, not localised") are left out: they mark no segment.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from sed_scores_eval.base_modules.io import read_sed_scores, write_detection, write_sed_scores

from audiobench.core.errors import AudiobenchError
from audiobench.training.events.segments import SegmentScores

AUDIO_FORMAT = "wav"  # the extension clip ids get in the lists' filename column
Events = dict[str, list[tuple[float, float, str]]]  # clip id -> [(onset, offset, class name)]


class _Writable(pd.DataFrame):
    """A score table whose ``to_numpy`` hands out a writable copy.

    sed_scores_eval 0.0.4 writes into the arrays it reads from score tables; under pandas 3 (copy on write)
    those are read-only views and it fails (fgnt/sed_scores_eval#17, fixed after 0.0.4).
    """

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return _Writable

    def to_numpy(self, dtype=None, copy: bool = False, na_value=pd.api.extensions.no_default) -> np.ndarray:
        return super().to_numpy(dtype=dtype, copy=True, na_value=na_value)


def writable(tables: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """``tables`` as sed_scores_eval 0.0.4 can read them under pandas 3 (see :class:`_Writable`)."""
    return {clip: _Writable(table) for clip, table in tables.items()}


def score_tables(scores: SegmentScores, source: str, classes: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Each clip's score table from its ``segments`` (Xa) or ``attention`` (A) matrix ``[C, T']``."""
    columns = ["onset", "offset", *classes]
    return {clip: pd.DataFrame(np.column_stack([bounds[:-1], bounds[1:], matrix.T.astype(np.float64)]), columns=columns)
            for clip, matrix, bounds in zip(scores.clip_ids, scores.source(source), scores.bounds)}


def write_scores(folder: Path, tables: Mapping[str, pd.DataFrame]) -> Path:
    """``folder/<clip id>.tsv`` per clip (sed_scores_eval's own writer)."""
    for clip in tables:
        if "/" in clip or clip in ("", ".", ".."):
            raise AudiobenchError(f"clip {clip!r}: its id cannot name a score file")
    write_sed_scores(dict(tables), folder)
    return folder


def read_scores(folder: Path) -> dict[str, pd.DataFrame]:
    """The score tables of ``folder``, readable by sed_scores_eval (sed_scores_eval's own reader)."""
    return writable(read_sed_scores(folder))


def split_events(path: Path, clip_ids: Sequence[str], durations: Sequence[float]) -> Events:
    """The strong labels of ``clip_ids`` in a feature split file, as the tools want them (see module doc)."""
    with h5py.File(path, "r") as f:
        if not bool(f.attrs.get("has_strong", False)) or "events" not in f:
            raise AudiobenchError(f"{path}: this split has no strong labels")
        names = [str(n) for n in f.attrs["class_names"]]
        ids = list(f["clip_id"].asstr()[()])
        ev = f["events"]
        rows, cls = ev["clip"][()].astype(np.int64), ev["class"][()].astype(np.int64)
        onset, offset = ev["onset"][()].astype(np.float64), ev["offset"][()].astype(np.float64)
    row_of = {clip: i for i, clip in enumerate(ids)}
    missing = [c for c in clip_ids if c not in row_of]
    if missing:
        raise AudiobenchError(f"{path}: holds no clip {missing[0]!r}")
    wanted = {row_of[c]: (c, d) for c, d in zip(clip_ids, durations)}
    found: dict[str, dict[int, list[tuple[float, float]]]] = {c: {} for c in clip_ids}
    for r, k, a, b in zip(rows, cls, onset, offset):
        if int(r) not in wanted:
            continue
        clip, duration = wanted[int(r)]
        a, b = max(float(a), 0.0), min(float(b), duration)
        if b > a:
            found[clip].setdefault(int(k), []).append((a, b))
    return {clip: sorted((a, b, names[k]) for k, spans in per_class.items() for a, b in _merged(spans))
            for clip, per_class in found.items()}


def _merged(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _filename(clip: str) -> str:
    return f"{clip}.{AUDIO_FORMAT}"


def write_ground_truth(path: Path, events: Events) -> Path:
    """The DCASE ground-truth list; a clip without events gets a row with empty onset, offset and label."""
    rows = [(_filename(c), a, b, label) for c, evs in events.items() for a, b, label in evs]
    rows += [(_filename(c), None, None, None) for c, evs in events.items() if not evs]
    pd.DataFrame(rows, columns=["filename", "onset", "offset", "event_label"]).to_csv(path, sep="\t", index=False)
    return path


def read_ground_truth(path: Path) -> Events:
    """The list :func:`write_ground_truth` wrote, clip ids without the extension."""
    table = pd.read_csv(path, sep="\t", dtype={"filename": str, "event_label": str}, keep_default_na=False,
                        na_values={"onset": [""], "offset": [""]})
    events: Events = {}
    for name, a, b, label in table.itertuples(index=False):
        clip = name.rsplit(".", 1)[0]
        events.setdefault(clip, [])
        if label:
            events[clip].append((float(a), float(b), label))
    return events


def write_durations(path: Path, clip_ids: Sequence[str], durations: Sequence[float]) -> Path:
    pd.DataFrame({"filename": [_filename(c) for c in clip_ids], "duration": list(durations)}
                 ).to_csv(path, sep="\t", index=False)
    return path


def read_durations(path: Path) -> dict[str, float]:
    table = pd.read_csv(path, sep="\t", dtype={"filename": str}, keep_default_na=False)  # a clip named "NA" stays
    return {name.rsplit(".", 1)[0]: float(d) for name, d in zip(table["filename"], table["duration"])}


def write_detections(path: Path, tables: Mapping[str, pd.DataFrame], thresholds: Mapping[str, float]) -> Path:
    """The DCASE detection list of ``tables`` (post-processed) cut at ``thresholds`` (sed_scores_eval's writer)."""
    path.unlink(missing_ok=True)  # the writer appends to an existing file
    write_detection(dict(tables), dict(thresholds), path, audio_format=AUDIO_FORMAT)
    return path


def read_detections(path: Path) -> Events:
    table = pd.read_csv(path, sep="\t", dtype={"filename": str, "event_label": str}, keep_default_na=False)
    events: Events = {}
    for name, a, b, label in table.itertuples(index=False):
        events.setdefault(name.rsplit(".", 1)[0], []).append((float(a), float(b), label))
    return events

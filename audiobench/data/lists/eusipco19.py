"""The SL-DCASE-17 lists of github.com/bongjun/eusipco19 (Kim & Ghaffarzadegan, EUSIPCO 2019).

All three are pandas ``to_csv`` dumps written with ``sep='\\t'`` despite the ``.csv`` name: column 0 is an
unnamed integer index, so the header starts with a tab.

``test_set.csv`` / ``validation_set.csv`` (weak)::

    <TAB># YTID<TAB>start_seconds<TAB>end_seconds<TAB>positive_labels
    0<TAB>-9mHz0OsKKw<TAB>0.0<TAB>10.0<TAB>\"\"\"/m/0k4j\"\"\"

The labels are triple-quoted: after CSV unquoting they still hold literal quotes, stripped here.

``train_strong_labels.csv`` (strong), one row per (recording, label)::

    <TAB>DCASE17-filename<TAB>label_id<TAB>time
    0<TAB>YTFJUFWcRns_30.000_40.000.wav<TAB>/m/0k4j<TAB>[[0.0, 9.82]]

``time`` is a Python literal of [onset, offset] pairs relative to the clip, with float-repr artefacts
(rounded to the millisecond here); ``[[0.0, 0.0]]`` means "present, not localised" and is kept as a
zero-length event, which sets the weak label and no frame label.
"""
from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from audiobench.core.records import DEFAULT_SOURCE, ClassInfo, Clip, Event
from audiobench.data.lists._common import (
    ClassMap, UniqueClips, check_event, csv_fields, format_error, make_clip, numbered_lines, seconds, split_wav_name,
)

_WEAK_HEADER = ["", "# YTID", "start_seconds", "end_seconds", "positive_labels"]
_STRONG_HEADER = ["", "DCASE17-filename", "label_id", "time"]


def _rows(path: Path, header: list[str]) -> Iterator[tuple[int, list[str]]]:
    """(line, fields) of a pandas tab dump after checking its header; the index column is checked and dropped."""
    lines = numbered_lines(path)
    first = next(lines, None)
    if first is None or first[1].split("\t") != header:
        found = repr(first[1]) if first else "an empty file"
        raise format_error(path, first[0] if first else 1,
                           f"expected the header {chr(9).join(header)!r} (tab-separated), found {found}")
    for line, text in lines:
        fields = csv_fields(path, line, text, delimiter="\t", count=len(header))
        if not fields[0].isdigit():
            raise format_error(path, line, f"index column {fields[0]!r} is not a row number")
        yield line, fields[1:]


def parse_eusipco19_weak(path: Path, *, classes: Sequence[ClassInfo], split: str,
                         source: str = DEFAULT_SOURCE) -> list[Clip]:
    """Clips of ``test_set.csv`` or ``validation_set.csv``, weak labels only, in file order."""
    path = Path(path)
    class_map = ClassMap(classes)
    found = UniqueClips(path)
    for line, (ytid, start, end, labels) in _rows(path, _WEAK_HEADER):
        found.add(line, make_clip(
            path, line, split=split, source=source, source_id=ytid,
            start=seconds(path, line, start, what="start"), end=seconds(path, line, end, what="end"),
            weak=class_map.mids(path, line, labels.replace('"', "")),
        ))
    return found.clips


@dataclass
class _Recording:
    line: int
    ytid: str
    start: float
    end: float
    label_lines: dict[int, int] = field(default_factory=dict)  # class index -> line
    events: list[Event] = field(default_factory=list)


def parse_eusipco19_strong(path: Path, *, classes: Sequence[ClassInfo], split: str,
                           source: str = DEFAULT_SOURCE) -> list[Clip]:
    """Clips of ``train_strong_labels.csv``: one per recording, weak = classes present, events sorted by time.

    The file has one row per (recording, label); rows of one recording need not be adjacent. A
    (recording, label) pair listed twice is an error naming both lines.
    """
    path = Path(path)
    class_map = ClassMap(classes)
    recordings: dict[str, _Recording] = {}
    for line, (name, mid, times) in _rows(path, _STRONG_HEADER):
        ytid, start, end = split_wav_name(path, line, name)
        rec = recordings.setdefault(name, _Recording(line, ytid, start, end))
        cls = class_map.by_mid(path, line, mid)
        if cls in rec.label_lines:
            raise format_error(path, line, f"{name} / {mid} already listed on line {rec.label_lines[cls]}")
        rec.label_lines[cls] = line
        for onset, offset in _intervals(path, line, times):
            rec.events.append(Event(cls, *check_event(path, line, onset, offset, duration=end - start,
                                                      row=f"{name} {mid}")))
    return [
        make_clip(path, rec.line, split=split, source=source, source_id=rec.ytid, start=rec.start,
                  end=rec.end, weak=tuple(sorted(rec.label_lines)),
                  events=tuple(sorted(rec.events, key=lambda e: (e.onset, e.offset, e.class_index))))
        for rec in recordings.values()
    ]


def _intervals(path: Path, line: int, text: str) -> list[tuple[float, float]]:
    """``[[on, off], ...]`` as a Python literal (not JSON: that is how pandas wrote it)."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = None
    ok = isinstance(value, list) and value and all(
        isinstance(pair, (list, tuple)) and len(pair) == 2
        and all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in pair)
        for pair in value
    )
    if not ok:
        raise format_error(path, line, f"time {text!r} is not a non-empty list of [onset, offset] pairs")
    return [(float(on), float(off)) for on, off in value]

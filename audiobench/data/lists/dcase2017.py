"""DCASE 2017 task 4 metadata (the organisers' repository): ground truth, segment lists, the class list.

Ground truth (``groundtruth_{strong,weak}_label_*.csv``): no header, tabs, four columns, LF or CRLF::

    -5QrBL6MzLg_60.000_70.000.wav<TAB>0.917<TAB>2.029<TAB>Train horn

Classes are display names (some contain commas, hence the tabs), mapped to MIDs through the class list.
In the strong files onset/offset are seconds from the clip start (``0 0`` = present, not localised); in
the weak files they repeat the segment's absolute start and end, and are checked against the file name.

Segment lists (``testing_set.csv``, ``training_set.csv``): no header, commas, CRLF::

    -5QrBL6MzLg,60.000,70.000,"Train horn,Train","/m/0284vy3,/m/07jdr"

The display-name column is ambiguous (``Air horn, truck horn`` holds a comma), so the MID column is used.

``sound_event_list_17_classes.txt``: a header separated by runs of spaces, then ``MID<TAB>confidence<TAB>name``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from audiobench.core.records import DEFAULT_SOURCE, ClassInfo, Clip, Event
from audiobench.data.lists._common import (
    ClassMap, UniqueClips, check_event, csv_fields, format_error, make_clip, numbered_lines, seconds, split_wav_name,
)


@dataclass
class _File:
    line: int
    ytid: str
    start: float
    end: float
    weak: set[int] = field(default_factory=set)
    events: dict[Event, int] = field(default_factory=dict)  # insertion-ordered set


def _groundtruth(path: Path, classes: Sequence[ClassInfo], *, strong: bool) -> dict[str, _File]:
    class_map = ClassMap(classes)
    files: dict[str, _File] = {}
    for line, text in numbered_lines(path):
        fields = text.split("\t")
        if len(fields) != 4:
            raise format_error(path, line, f"expected 4 tab-separated fields, found {len(fields)}: {text!r}")
        name, onset_text, offset_text, label = fields
        ytid, start, end = split_wav_name(path, line, name)
        onset = seconds(path, line, onset_text, what="onset")
        offset = seconds(path, line, offset_text, what="offset")
        cls = class_map.by_name(path, line, label)
        entry = files.setdefault(name, _File(line, ytid, start, end))
        entry.weak.add(cls)
        if strong:
            # An exactly repeated row (one in the 2018 evaluation file) is one event, not two.
            event = Event(cls, *check_event(path, line, onset, offset, duration=end - start, row=f"{name} {label}"))
            entry.events.setdefault(event, line)
        elif (onset, offset) != (start, end):
            raise format_error(path, line, f"weak-label times {onset:g}-{offset:g} differ from the segment "
                                           f"{start:g}-{end:g} in the file name")
    return files


def parse_dcase2017_strong(path: Path, *, classes: Sequence[ClassInfo], split: str,
                           source: str = DEFAULT_SOURCE) -> list[Clip]:
    """Clips of a strong ground-truth file, one per wav file, events sorted by time.

    >>> parse_dcase2017_strong(Path("groundtruth_strong_label_testing_set.csv"),
    ...                        classes=classes, split="test")[0].events   # doctest: +SKIP
    (Event(class_index=0, onset=0.917, offset=2.029),)
    """
    path = Path(path)
    return [
        make_clip(path, f.line, split=split, source=source, source_id=f.ytid, start=f.start, end=f.end,
                  weak=tuple(sorted(f.weak)),
                  events=tuple(sorted(f.events, key=lambda e: (e.onset, e.offset, e.class_index))))
        for f in _groundtruth(path, classes, strong=True).values()
    ]


def parse_dcase2017_weak(path: Path, *, classes: Sequence[ClassInfo], split: str,
                         source: str = DEFAULT_SOURCE) -> list[Clip]:
    """Clips of a weak ground-truth file (one row per file and label), one clip per wav file."""
    path = Path(path)
    return [
        make_clip(path, f.line, split=split, source=source, source_id=f.ytid, start=f.start, end=f.end,
                  weak=tuple(sorted(f.weak)))
        for f in _groundtruth(path, classes, strong=False).values()
    ]


def parse_dcase2017_segments(path: Path, *, classes: Sequence[ClassInfo], split: str,
                             source: str = DEFAULT_SOURCE) -> list[Clip]:
    """Clips of ``testing_set.csv`` / ``training_set.csv``, labels from the MID column, in file order."""
    path = Path(path)
    class_map = ClassMap(classes)
    found = UniqueClips(path)
    for line, text in numbered_lines(path):
        ytid, start, end, _names, mids = csv_fields(path, line, text, count=5)
        found.add(line, make_clip(
            path, line, split=split, source=source, source_id=ytid,
            start=seconds(path, line, start, what="start"), end=seconds(path, line, end, what="end"),
            weak=class_map.mids(path, line, mids),
        ))
    return found.clips


def parse_sound_event_list(path: Path) -> list[ClassInfo]:
    """The classes of ``sound_event_list_17_classes.txt``, in file order (the task's class order)."""
    path = Path(path)
    lines = numbered_lines(path)
    first = next(lines, None)
    if first is None or first[1].split()[:1] != ["Class_ID"]:
        raise format_error(path, first[0] if first else 1, "expected a header line starting with 'Class_ID'")
    classes: list[ClassInfo] = []
    seen: dict[str, int] = {}
    for line, text in lines:
        fields = text.split("\t")
        if len(fields) != 3 or not fields[1].strip().isdigit():
            raise format_error(path, line, f"expected MID<TAB>confidence<TAB>name, found {text!r}")
        mid, name = fields[0].strip(), fields[2].strip()
        if mid in seen:
            raise format_error(path, line, f"MID {mid} already listed on line {seen[mid]}")
        seen[mid] = line
        classes.append(ClassInfo(mid, name))
    return classes

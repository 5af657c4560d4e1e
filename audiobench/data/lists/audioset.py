"""Google AudioSet v1 lists: the segment CSVs and ``class_labels_indices.csv``.

Segment CSVs (``balanced_train_segments.csv``, ``eval_segments.csv``, ``unbalanced_train_segments.csv``)::

    # Segments csv created Sun Mar  5 10:54:31 2017
    # num_ytids=22160, num_segs=22160, num_unique_labels=527, num_positive_labels=52882
    # YTID, start_seconds, end_seconds, positive_labels
    --PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"

Comma + space separators, labels always quoted. The header's counts are checked against the rows, so a
truncated or edited copy (several public copies drop rows or mangle IDs) is an error, not a smaller dataset.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from audiobench.core.records import DEFAULT_SOURCE, ClassInfo, Clip
from audiobench.core.errors import InputFormatError
from audiobench.data.lists._common import ClassMap, UniqueClips, csv_fields, format_error, make_clip, numbered_lines, seconds

_HEADER_COUNT = re.compile(r"\b(num_\w+)=(\d+)")
_CLASS_HEADER = ["index", "mid", "display_name"]


def read_audioset_header(path: Path) -> dict[str, int]:
    """The counts an AudioSet segment CSV declares in its comment lines, e.g. ``{"num_segs": 22160, ...}``."""
    counts: dict[str, int] = {}
    for _, text in numbered_lines(path):
        if not text.startswith("#"):
            break
        counts.update((k, int(v)) for k, v in _HEADER_COUNT.findall(text))
    return counts


def parse_audioset_segments(path: Path, *, classes: Sequence[ClassInfo], split: str,
                            source: str = DEFAULT_SOURCE) -> list[Clip]:
    """Clips of an AudioSet segment CSV, weak labels only, in file order.

    >>> parse_audioset_segments(Path("eval_segments.csv"), classes=classes, split="test")[0]  # doctest: +SKIP
    Clip(clip_id='--4gqARaEJE_0_10000', split='test', source_id='--4gqARaEJE', start=0.0, end=10.0, weak=(...), ...)
    """
    path = Path(path)
    class_map = ClassMap(classes)
    found = UniqueClips(path)
    in_header = True
    for line, text in numbered_lines(path):
        if text.startswith("#"):
            if not in_header:
                raise format_error(path, line, f"comment line after the data rows: {text!r}")
            continue
        in_header = False
        ytid, start, end, labels = csv_fields(path, line, text, skipinitialspace=True, count=4)
        found.add(line, make_clip(
            path, line, split=split, source=source, source_id=ytid.strip(),
            start=seconds(path, line, start, what="start"), end=seconds(path, line, end, what="end"),
            weak=class_map.mids(path, line, labels),
        ))
    _check_header_counts(path, found.clips)
    return found.clips


def _check_header_counts(path: Path, clips: list[Clip]) -> None:
    """Compare what the header declares with what was parsed (a cheap guard against truncated copies)."""
    declared = read_audioset_header(path)
    actual = {
        "num_segs": len(clips),
        "num_ytids": len({c.source_id for c in clips}),
        "num_positive_labels": sum(len(c.weak) for c in clips),
        "num_unique_labels": len({w for c in clips for w in c.weak}),
    }
    for key, value in actual.items():
        if key in declared and declared[key] != value:
            raise InputFormatError(f"{path}: the header says {key}={declared[key]} but the rows give {value} "
                                   "(a truncated or edited copy?)")


def parse_class_labels_indices(path: Path) -> list[ClassInfo]:
    """The classes of ``class_labels_indices.csv`` (``index,mid,display_name``), in index order."""
    path = Path(path)
    lines = numbered_lines(path)
    first = next(lines, None)
    if first is None or csv_fields(path, first[0], first[1]) != _CLASS_HEADER:
        found = repr(first[1]) if first else "an empty file"
        raise format_error(path, first[0] if first else 1,
                           f"expected the header {','.join(_CLASS_HEADER)!r}, found {found}")
    classes: list[ClassInfo] = []
    seen: dict[str, int] = {}
    for line, text in lines:
        index, mid, name = csv_fields(path, line, text, count=3)
        if index != str(len(classes)):
            raise format_error(path, line, f"index {index!r} out of order (expected {len(classes)})")
        if not mid or not name:
            raise format_error(path, line, "empty MID or display name")
        if mid in seen:
            raise format_error(path, line, f"MID {mid} already listed on line {seen[mid]}")
        seen[mid] = line
        classes.append(ClassInfo(mid, name))
    return classes

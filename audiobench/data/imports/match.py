"""Resolve an entry's name to one listed clip, against the target dataset's lists.

YouTube IDs may begin with ``Y``, ``-`` or ``_`` and contain ``_``, so a name is never cut at a fixed
length: every prefix that ends at a ``_`` (or the whole name), with and without a leading ``Y``, is looked
up among the listed IDs, and what follows it must read as a segment:

- ``<start>_<end>`` with decimals: seconds (DCASE, ``30.000_40.000``); integers: milliseconds (audiosetdl);
- ``<start>-<end>``: seconds (audioset-download, ``30.0-40.0``);
- ``<start_ms>``: milliseconds (strong-label sets);
- nothing: no segment (PANNs ``Y<ytid>``, parquet, HDF5, WebDataset).

A named segment must start where a listed one starts (within 10 ms) and end no later than it ends (a
video that ended early gives a shorter cut). Without a segment, the ID must be listed once: an ID listed
with several segments is ambiguous. A segment that differs from the lists is reported, not adopted.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from audiobench.core.records import ClipStatus

START_TOLERANCE = 0.01  # seconds
END_TOLERANCE = 0.1  # seconds a named end may pass the listed one
_NUMBER = r"(\d+(?:\.\d+)?)"
_PAIR = re.compile(rf"^{_NUMBER}_{_NUMBER}$")
_DASH = re.compile(rf"^{_NUMBER}-{_NUMBER}$")
_START_MS = re.compile(r"^(\d+)$")


@dataclass(frozen=True)
class Segment:
    start: float
    end: float | None  # None: the name gives the start only


@dataclass(frozen=True)
class Match:
    """``clip`` when the name resolves to one listed clip; else ``kind`` and ``reason`` say why not.

    ``kind``: ``matched``, ``not-listed``, ``ambiguous`` or ``segment-mismatch``; a mismatch of an ID listed
    once carries that ``clip`` too, so its reason can be recorded as the clip's last error.
    """

    kind: str
    clip: ClipStatus | None = None
    reason: str = ""


def parse_segment(text: str) -> Segment | None:
    """The segment a name's tail gives, or None when the tail is not a segment."""
    pair = _PAIR.match(text)
    if pair:
        a, b = pair.groups()
        scale = 1.0 if "." in a or "." in b else 0.001
        return Segment(float(a) * scale, float(b) * scale)
    dash = _DASH.match(text)
    if dash:
        return Segment(float(dash[1]), float(dash[2]))
    start = _START_MS.match(text)
    return Segment(int(start[1]) / 1000, None) if start else None


class Catalog:
    """The dataset's listed clips by recording ID, to resolve names against."""

    def __init__(self, rows: Iterable[ClipStatus]) -> None:
        self.by_id: dict[str, list[ClipStatus]] = defaultdict(list)
        self.by_clip: dict[str, ClipStatus] = {}
        for row in rows:
            self.by_id[row.source_id].append(row)
            self.by_clip[row.clip_id] = row

    def interpretations(self, name: str) -> list[tuple[str, Segment | None]]:
        """Every (listed ID, segment) the name can be read as."""
        found: list[tuple[str, Segment | None]] = []
        for text in ([name, name[1:]] if name.startswith("Y") else [name]):
            for cut in [i for i, ch in enumerate(text) if ch == "_"] + [len(text)]:
                ytid = text[:cut]
                if ytid not in self.by_id:
                    continue
                if cut == len(text):
                    found.append((ytid, None))
                else:
                    segment = parse_segment(text[cut + 1:])
                    if segment is not None:
                        found.append((ytid, segment))
        return list(dict.fromkeys(found))

    def resolve(self, name: str) -> Match:
        """The one listed clip ``name`` names, or why there is none."""
        readings = self.interpretations(name)
        if not readings:
            return Match("not-listed", reason=f"{name!r} names no listed recording")
        hits: dict[str, ClipStatus] = {}
        mismatches: list[str] = []
        for ytid, segment in readings:
            listed = self.by_id[ytid]
            if segment is None:
                if len(listed) > 1:
                    segs = ", ".join(_span(r.start, r.end) for r in listed)
                    return Match("ambiguous", reason=f"{ytid} is listed with {len(listed)} segments ({segs}) "
                                                     "and the copy names none")
                hits[listed[0].clip_id] = listed[0]
                continue
            agree = [r for r in listed if abs(r.start - segment.start) <= START_TOLERANCE
                     and (segment.end is None or segment.start < segment.end <= r.end + END_TOLERANCE)]
            hits.update((r.clip_id, r) for r in agree)
            if not agree:
                listed_spans = ", ".join(_span(r.start, r.end) for r in listed)
                mismatches.append(f"segment {_span(segment.start, segment.end)} of {ytid} differs from the "
                                  f"lists ({listed_spans})")
        if len(hits) == 1:
            return Match("matched", next(iter(hits.values())))
        if len(hits) > 1:
            return Match("ambiguous", reason=f"{name!r} can name {len(hits)} listed clips: {', '.join(sorted(hits))}")
        only = [self.by_id[y][0] for y, _ in readings if len(self.by_id[y]) == 1]
        return Match("segment-mismatch", only[0] if len(only) == 1 else None, "; ".join(mismatches))


def _span(start: float, end: float | None) -> str:
    return f"{start:.3f}-{end:.3f} s" if end is not None else f"from {start:.3f} s"

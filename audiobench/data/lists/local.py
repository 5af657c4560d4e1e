"""The list ``audiobench import NAME DIR`` writes for a folder of your own (format ``local-clips``).

One row per recording, after a header line::

    id,start,end,labels,events
    dogs--bark_01,0.000,4.000,dog;bark,"[[0.5, 1.25, ""dog""]]"

``id`` is the ``local`` source's recording ID, ``start``/``end`` the whole file in seconds, ``labels`` the class
MIDs separated by ``;`` and ``events`` a JSON list of ``[onset, offset, mid]`` (``[]`` where none was given;
a split declared weak drops them).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from audiobench.core.records import DEFAULT_SOURCE, ClassInfo, Clip, Event
from audiobench.data.lists._common import (ClassMap, UniqueClips, check_event, csv_fields, format_error, make_clip,
                                           numbered_lines, seconds)

HEADER = ["id", "start", "end", "labels", "events"]


def parse_local_clips(path: Path, *, classes: Sequence[ClassInfo], split: str,
                      source: str = DEFAULT_SOURCE) -> list[Clip]:
    """Clips of a ``local-clips`` list, with their weak labels and events, in file order."""
    path = Path(path)
    class_map = ClassMap(classes)
    found = UniqueClips(path)
    for line, text in numbered_lines(path):
        fields = csv_fields(path, line, text, count=len(HEADER))
        if line == 1 or fields == HEADER:
            if fields != HEADER:
                raise format_error(path, line, f"expected the header {','.join(HEADER)}")
            continue
        source_id, start_text, end_text, labels, events_text = fields
        start = seconds(path, line, start_text, what="start")
        end = seconds(path, line, end_text, what="end")
        weak = class_map.mids(path, line, labels.replace(";", ","))
        try:
            raw_events = json.loads(events_text)
            assert isinstance(raw_events, list) and all(isinstance(e, list) and len(e) == 3 for e in raw_events)
        except (ValueError, AssertionError):
            raise format_error(path, line,
                               f"events {events_text!r} are not a JSON list of [onset, offset, mid]") from None
        events = []
        for onset, offset, mid in raw_events:
            if not isinstance(onset, (int, float)) or not isinstance(offset, (int, float)) or not isinstance(mid, str):
                raise format_error(path, line, f"event {[onset, offset, mid]!r} is not [onset, offset, mid]")
            on, off = check_event(path, line, float(onset), float(offset), duration=end - start, row=source_id)
            events.append(Event(class_map.by_mid(path, line, mid), on, off))
        found.add(line, make_clip(path, line, split=split, source_id=source_id, start=start, end=end, weak=weak,
                                  events=tuple(sorted(events, key=lambda e: (e.onset, e.offset, e.class_index))),
                                  source=source))
    return found.clips

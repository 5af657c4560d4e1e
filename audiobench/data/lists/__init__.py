"""Parsers for the published list formats, by the name a manifest gives them.

Each clip parser takes ``(path, *, classes, split, source)`` and returns ``audiobench.core.records.Clip``
records whose recording IDs ``source`` (``audiobench.data.sources``, default ``youtube``) has checked; each
class parser takes ``(path)`` and returns ``ClassInfo`` records. A line that does not parse is an
``InputFormatError`` naming the file and line; no row is ever dropped silently.

| format name | files |
| --- | --- |
| ``audioset-segments`` | AudioSet ``balanced_train_segments.csv``, ``eval_segments.csv``, ``unbalanced_...`` |
| ``eusipco19-weak`` | eusipco19 ``test_set.csv``, ``validation_set.csv`` |
| ``eusipco19-strong`` | eusipco19 ``train_strong_labels.csv`` |
| ``dcase2017-strong`` | DCASE 2017 task 4 ``groundtruth_strong_label_*.csv`` |
| ``dcase2017-weak`` | DCASE 2017 task 4 ``groundtruth_weak_label_*.csv`` |
| ``dcase2017-segments`` | DCASE 2017 task 4 ``testing_set.csv``, ``training_set.csv`` |
| ``local-clips`` | the list ``audiobench import NAME DIR`` writes for a folder of your own |
| ``audioset-class-index`` (classes) | AudioSet ``class_labels_indices.csv`` |
| ``dcase2017-class-list`` (classes) | DCASE 2017 task 4 ``sound_event_list_17_classes.txt`` |
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from audiobench.core.records import DEFAULT_SOURCE, ClassInfo, Clip
from audiobench.core.errors import AudiobenchError
from audiobench.data.lists.audioset import parse_audioset_segments, parse_class_labels_indices, read_audioset_header
from audiobench.data.lists.dcase2017 import (
    parse_dcase2017_segments, parse_dcase2017_strong, parse_dcase2017_weak, parse_sound_event_list,
)
from audiobench.data.lists.eusipco19 import parse_eusipco19_strong, parse_eusipco19_weak
from audiobench.data.lists.local import parse_local_clips

ClipParser = Callable[..., list[Clip]]
ClassParser = Callable[[Path], list[ClassInfo]]


@dataclass(frozen=True)
class ClipFormat:
    """A list format: its parser, and whether it carries strong (onset/offset) labels."""

    name: str
    parse: ClipParser
    strong: bool


CLIP_FORMATS: dict[str, ClipFormat] = {f.name: f for f in (
    ClipFormat("audioset-segments", parse_audioset_segments, strong=False),
    ClipFormat("eusipco19-weak", parse_eusipco19_weak, strong=False),
    ClipFormat("eusipco19-strong", parse_eusipco19_strong, strong=True),
    ClipFormat("dcase2017-strong", parse_dcase2017_strong, strong=True),
    ClipFormat("dcase2017-weak", parse_dcase2017_weak, strong=False),
    ClipFormat("dcase2017-segments", parse_dcase2017_segments, strong=False),
    ClipFormat("local-clips", parse_local_clips, strong=True),
)}

CLASS_FORMATS: dict[str, ClassParser] = {
    "audioset-class-index": parse_class_labels_indices,
    "dcase2017-class-list": parse_sound_event_list,
}


def clip_format(name: str) -> ClipFormat:
    try:
        return CLIP_FORMATS[name]
    except KeyError:
        raise AudiobenchError(f"unknown list format {name!r} (known: {', '.join(CLIP_FORMATS)})") from None


def class_format(name: str) -> ClassParser:
    try:
        return CLASS_FORMATS[name]
    except KeyError:
        raise AudiobenchError(f"unknown class-list format {name!r} (known: {', '.join(CLASS_FORMATS)})") from None


def parse_clips(path: Path, format_name: str, *, classes: Sequence[ClassInfo], split: str,
                source: str = DEFAULT_SOURCE) -> list[Clip]:
    """Parse ``path`` with the named format: one ``Clip`` per listed segment, its recording in ``source``."""
    return clip_format(format_name).parse(Path(path), classes=classes, split=split, source=source)


def parse_classes(path: Path, format_name: str) -> list[ClassInfo]:
    """Parse a class list with the named format."""
    return class_format(format_name)(Path(path))


__all__ = [
    "CLASS_FORMATS", "CLIP_FORMATS", "ClipFormat", "class_format", "clip_format", "parse_audioset_segments",
    "parse_class_labels_indices", "parse_classes", "parse_clips", "parse_dcase2017_segments",
    "parse_dcase2017_strong", "parse_dcase2017_weak", "parse_eusipco19_strong", "parse_eusipco19_weak",
    "parse_local_clips",
    "parse_sound_event_list", "read_audioset_header",
]

"""What every list parser shares: numbered lines, errors naming file and line, class maps, clip records.

The published lists are small (at most a few MB), so each is read whole and split on any line ending
(LF, CRLF, or both mixed in one file, as in the DCASE 2017 ground truth). Each line is then parsed on
its own, so every error can name the file and the 1-based line number a user sees in an editor.
"""
from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

from audiobench.core.records import DEFAULT_SOURCE, ClassInfo, Clip, Event
from audiobench.core.errors import AudiobenchError, InputFormatError
from audiobench.core.layout import clip_id_for
from audiobench.data.sources import validate_source_id

# Strong-label times are compared with DCASE's to the millisecond; eusipco19 writes float-repr
# artefacts such as 6.428999999999999, so every onset and offset is rounded to this many decimals.
TIME_DECIMALS = 3


def where(path: Path, line: int) -> str:
    return f"{path} line {line}"


def format_error(path: Path, line: int, message: str) -> InputFormatError:
    return InputFormatError(f"{where(path, line)}: {message}")


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) for every non-blank line, whatever the line endings; a BOM is ignored."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise format_error(path, line, f"not UTF-8 text ({exc.reason})") from None
    for number, line_text in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        if line_text.strip():
            yield number, line_text


def csv_fields(path: Path, line: int, text: str, *, delimiter: str = ",", skipinitialspace: bool = False,
               count: int | None = None) -> list[str]:
    """One line split as CSV (quotes honoured); ``count`` fields exactly, else an error naming the line."""
    try:
        fields = next(csv.reader([text], delimiter=delimiter, skipinitialspace=skipinitialspace, strict=True))
    except csv.Error as exc:
        raise format_error(path, line, f"malformed CSV ({exc})") from None
    if count is not None and len(fields) != count:
        sep = "tab" if delimiter == "\t" else repr(delimiter)
        raise format_error(path, line, f"expected {count} {sep}-separated fields, found {len(fields)}: {text!r}")
    return fields


def seconds(path: Path, line: int, text: str, *, what: str) -> float:
    """A time in seconds: finite and not negative."""
    try:
        value = float(text)
    except ValueError:
        raise format_error(path, line, f"{what} {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise format_error(path, line, f"{what} {text!r} is not a time in seconds")
    return value


def split_wav_name(path: Path, line: int, name: str) -> tuple[str, float, float]:
    """``<YTID>_<start>_<end>.wav`` (the DCASE 2017 file name) -> (ytid, start, end).

    Split from the right: a YouTube ID may itself contain ``_`` and start with ``-``.
    """
    if not name.endswith(".wav") or name.count("_") < 2:
        raise format_error(path, line, f"{name!r} is not a <YTID>_<start>_<end>.wav file name")
    ytid, start, end = name[: -len(".wav")].rsplit("_", 2)
    return ytid, seconds(path, line, start, what="start"), seconds(path, line, end, what="end")


def check_event(path: Path, line: int, onset: float, offset: float, *, duration: float,
                row: str) -> tuple[float, float]:
    """Round an (onset, offset) pair to the millisecond and check it lies in the clip, in order.

    ``row`` names the event in the message (file name and class), next to the file and line.
    """
    onset, offset = round(onset, TIME_DECIMALS), round(offset, TIME_DECIMALS)
    if onset < 0 or not math.isfinite(offset):
        raise format_error(path, line, f"{row}: event {onset:g}-{offset:g} is not a time span in seconds")
    if onset > offset:
        raise format_error(path, line, f"{row}: onset {onset:g} after offset {offset:g}")
    if offset > round(duration, TIME_DECIMALS):
        raise format_error(path, line, f"{row}: offset {offset:g} beyond the {duration:g} s segment")
    return onset, offset


class ClassMap:
    """Class MIDs and display names -> class index, with errors that name the line."""

    def __init__(self, classes: Sequence[ClassInfo]) -> None:
        self.classes = list(classes)
        self._by_mid = {c.mid: i for i, c in enumerate(self.classes)}
        self._by_name = {c.name: i for i, c in enumerate(self.classes)}

    def by_mid(self, path: Path, line: int, mid: str) -> int:
        try:
            return self._by_mid[mid]
        except KeyError:
            raise format_error(path, line, f"unknown class MID {mid!r} "
                                           f"(not among the {len(self.classes)} classes of the dataset)") from None

    def by_name(self, path: Path, line: int, name: str) -> int:
        try:
            return self._by_name[name]
        except KeyError:
            raise format_error(path, line, f"unknown class name {name!r} "
                                           f"(not among the {len(self.classes)} classes of the dataset)") from None

    def mids(self, path: Path, line: int, text: str) -> tuple[int, ...]:
        """A comma-separated MID list -> sorted class indices; empty lists and repeats are errors."""
        mids = [m.strip() for m in text.split(",")]
        if not text.strip() or any(not m for m in mids):
            raise format_error(path, line, f"empty label in {text!r}")
        indices = [self.by_mid(path, line, m) for m in mids]
        if len(set(indices)) != len(indices):
            raise format_error(path, line, f"repeated label in {text!r}")
        return tuple(sorted(indices))


def make_clip(path: Path, line: int, *, split: str, source_id: str, start: float, end: float,
              weak: tuple[int, ...], events: tuple[Event, ...] | None = None,
              source: str = DEFAULT_SOURCE) -> Clip:
    """A ``Clip`` whose recording ID (checked by its source) and segment were checked before the ID becomes
    part of any name."""
    try:
        validate_source_id(source, source_id, where=where(path, line))
    except AudiobenchError as exc:
        raise InputFormatError(str(exc)) from None
    if not start < end:
        raise format_error(path, line, f"segment start {start:g} is not before its end {end:g}")
    return Clip(clip_id_for(source_id, start, end), split, source_id, start, end, weak, events, source)


class UniqueClips:
    """Collects clips of a weakly labelled list; a clip listed twice is an error naming both lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.clips: list[Clip] = []
        self._lines: dict[str, int] = {}

    def add(self, line: int, clip: Clip) -> None:
        first = self._lines.setdefault(clip.clip_id, line)
        if first != line:
            raise format_error(self.path, line, f"segment {clip.clip_id} already listed on line {first}")
        self.clips.append(clip)

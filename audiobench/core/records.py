"""The typed records every stage passes around: classes, strong events, clips."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClassInfo:
    """One label class: its AudioSet MID (or a synthetic one) and display name."""

    mid: str
    name: str


@dataclass(frozen=True)
class Event:
    """A strongly labelled event, seconds relative to the clip start.

    ``onset == offset`` means "present, not localised" (DCASE's zero-length events): it sets the weak
    label and gives no frame or segment label.
    """

    class_index: int
    onset: float
    offset: float


@dataclass(frozen=True)
class Clip:
    """One segment of one recording, with its labels.

    ``events`` is ``None`` where the split has weak labels only; an empty tuple means "strongly labelled,
    no event".
    """

    clip_id: str
    split: str
    ytid: str
    start: float
    end: float
    weak: tuple[int, ...] = ()
    events: tuple[Event, ...] | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class ClipStatus:
    """A clip's ledger row: what fetch (or synth) knows about its download."""

    clip_id: str
    split: str
    ytid: str
    start: float
    end: float
    status: str
    attempts: int = 0
    last_error: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    duration: float | None = None
    path: str | None = None
    updated: str | None = None


@dataclass(frozen=True)
class AudioRecord:
    """A clip's 16 kHz mono file under ``audio/``, written by resample (or synth)."""

    clip_id: str
    path: str  # relative to the dataset folder
    samples: int
    duration: float  # seconds, the true length of the decoded audio
    short: bool  # shorter than its listed segment (kept, never padded on disk)
    source_mtime_ns: int | None = None
    source_bytes: int | None = None  # size and sha256 of the raw file it was made from: what "same raw file" means
    source_sha256: str | None = None

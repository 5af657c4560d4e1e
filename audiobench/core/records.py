"""The typed records every stage passes around: classes, strong events, clips, failed clips."""
from __future__ import annotations

from dataclasses import dataclass

# The source of a clip that names none: every clip of a ledger written before sources existed came from
# YouTube (``audiobench.data.sources`` holds the sources and their ID rules).
DEFAULT_SOURCE = "youtube"


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

    The recording is ``source_id`` in ``source`` (a YouTube ID for ``"youtube"``), checked by that source
    before the clip is registered; ``start`` and ``end`` are seconds into it. ``events`` is ``None`` where
    the split has weak labels only; an empty tuple means "strongly labelled, no event".
    """

    clip_id: str
    split: str
    source_id: str
    start: float
    end: float
    weak: tuple[int, ...] = ()
    events: tuple[Event, ...] | None = None
    source: str = DEFAULT_SOURCE

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class ClipStatus:
    """A clip's ledger row: what fetch (or synth) knows about its download."""

    clip_id: str
    split: str
    source_id: str
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
    source: str = DEFAULT_SOURCE


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
    # the raw file's inode and ctime when it was hashed: while both (and size and mtime) are unchanged, the file
    # is the one hashed (no write, rename or copy leaves them so; ctime cannot be set back), so no re-hash is needed
    source_inode: int | None = None
    source_ctime_ns: int | None = None


@dataclass(frozen=True)
class ClipFailure:
    """A clip a stage could not process, and why in one line; the stage's other clips go on.

    ``status`` is what the ledger holds for the clip after the stage: fetch tells ``unavailable`` (gone for
    good) from ``failed`` (worth a retry) and ``pending`` (refused: slow down); resample and featurize
    record only ``failed``.
    """

    clip_id: str
    reason: str
    split: str | None = None
    status: str = "failed"

"""What every copy reader yields: one light entry per file, row or tar member, its bytes read on demand."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# File extensions taken for audio; anything else in a copy's folder (CSV, JSON, logs) is not an entry.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".webm", ".oga")


@dataclass(frozen=True)
class Pcm:
    """Samples stored raw in the copy (an HDF5 row): integers ``[channels, n]`` at ``rate``."""

    samples: np.ndarray
    rate: int


@dataclass(frozen=True)
class Entry:
    """One candidate clip of a copy.

    ``name`` is what names the recording (a file stem, an ``audio_name`` stem, a ``video_id``, a JSON ``id``)
    and is resolved against the lists by :mod:`audiobench.data.imports.match`; ``member`` is where it sits in
    the copy (relative path, ``file.h5#row``, ``shard.tar:member``), recorded as the clip's origin.
    ``read()`` returns the encoded bytes (or :class:`Pcm`); ``path`` is the file itself where there is one.
    ``labels`` are class MIDs or names the copy gives (``complete``: all the clip's labels, not just one).
    """

    format: str
    copy: Path
    member: str
    name: str
    suffix: str
    read: Callable[[], bytes | Pcm]
    path: Path | None = None
    labels: tuple[str, ...] | None = None
    labels_complete: bool = True
    clip_id: str | None = None  # already known (a --source-template path): no name to resolve
    skip: str | None = None  # a reason the entry is refused before reading (a partial download)
    skip_category: str = "partial"  # the count ``skip`` goes to ("damaged": a container cut or damaged there)


def audio_files(folder: Path) -> Iterator[Path]:
    """Every audio file under ``folder``, in sorted relative-path order (the order duplicates are decided in)."""
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()):
        yield path


def file_entry(fmt: str, copy: Path, path: Path, *, labels: tuple[str, ...] | None = None,
               labels_complete: bool = True, skip: str | None = None) -> Entry:
    """An entry for one audio file of a folder copy."""
    member = path.relative_to(copy).as_posix() if path != copy else path.name
    return Entry(fmt, copy, member, path.stem, path.suffix.lower(), path.read_bytes, path=path, labels=labels,
                 labels_complete=labels_complete, skip=skip)

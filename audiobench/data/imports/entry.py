"""What every copy reader yields: one light entry per file, row or tar member, its bytes read on demand."""
from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from audiobench.data.imports.validate import Rejected

# File extensions taken for audio; anything else in a copy's folder (CSV, JSON, logs) is not an entry.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".webm", ".oga")


# Full scale of each sample type a copy may store raw: int16 / 32768, int32 / 2^31; floats are in [-1, 1].
PCM_SCALES = {np.dtype(np.int16): 2.0 ** 15, np.dtype(np.int32): 2.0 ** 31, np.dtype(np.float32): 1.0,
              np.dtype(np.float64): 1.0}
# Floats past this are not [-1, 1] audio (integers stored as float?); up to it they are clipped, as PANNs'
# float32_to_int16 does (it asserts |x| <= 1.2, then clips).
FLOAT_LIMIT = 1.2


@dataclass(frozen=True)
class Pcm:
    """Samples stored raw in the copy (an HDF5 row, a decoded parquet array): ``[channels, n]`` at ``rate``,
    in one of :data:`PCM_SCALES`' types, as stored."""

    samples: np.ndarray
    rate: int

    def audio(self) -> np.ndarray:
        """float32 ``[channels, n]`` in [-1, 1], scaled by the stored type; :class:`Rejected` for floats that
        are not audio (non-finite, or far outside [-1, 1])."""
        x = self.samples
        if x.dtype.kind == "f":
            if not np.isfinite(x).all():
                raise Rejected("non-finite", "float samples include NaN or infinity")
            peak = float(np.abs(x).max()) if x.size else 0.0
            if peak > FLOAT_LIMIT:
                raise Rejected("out-of-range", f"float samples reach {peak:.4g}, outside [-1, 1] "
                                               "(integer samples stored as float?)")
            return np.clip(x, -1.0, 1.0).astype(np.float32, copy=False)
        return x.astype(np.float32) / np.float32(PCM_SCALES[x.dtype])

    def flac(self, n: int) -> bytes:
        """FLAC bytes of the first ``n`` samples (the padding trimmed) at the copy's rate: 16-bit for int16
        (lossless), 24-bit for the wider types."""
        x = self.samples[:, :n]
        if x.dtype.kind == "f":
            x = np.clip(x, -1.0, 1.0)
        buf = io.BytesIO()
        sf.write(buf, x.T, self.rate, format="FLAC", subtype="PCM_16" if x.dtype == np.int16 else "PCM_24")
        return buf.getvalue()


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
    notice: str | None = None  # not a clip: a file the reader passed over, and why (said in the summary)
    skip_category: str = "partial"  # the count ``skip`` goes to ("damaged": a container cut or damaged there)


def audio_files(folder: Path) -> Iterator[Path]:
    """Every audio file under ``folder``, in sorted relative-path order (the order duplicates are decided in)."""
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()):
        yield path


def file_entry(fmt: str, copy: Path, path: Path, *, labels: tuple[str, ...] | None = None,
               labels_complete: bool = True, skip: str | None = None) -> Entry:
    """An entry for one audio file of a folder copy."""
    member = path.relative_to(copy).as_posix() if path != copy else path.name
    return Entry(fmt, copy, member, name_of(path), path.suffix.lower(), path.read_bytes, path=path, labels=labels,
                 labels_complete=labels_complete, skip=skip)


def name_of(path: Path) -> str:
    """The file's name without its audio suffixes, all of them: yt-dlp's ``-x`` appends its own to an output
    name that has one (audioset-download's vorbis files are ``<ytid>_<start>-<end>.ogg.ogg``)."""
    name = path.name
    while Path(name).suffix.lower() in AUDIO_SUFFIXES and Path(name).stem:
        name = Path(name).stem
    return name


def notice(fmt: str, copy: Path, member: str, text: str) -> Entry:
    """A file of the copy that holds no clip, passed over with ``text`` said in the summary."""
    return Entry(fmt, copy, member, "", "", bytes, notice=text)

"""Whether an entry's audio counts as its clip: it decodes, is not silent, and has the segment's length.

Trailing exact zeros are trimmed first (PANNs' HDF5 rows are zero-padded to 10 s; a real clip that ends in
digital silence is shortened too), and the trimmed length is the clip's recorded duration. It must be at
least half the listed segment and at most the segment plus 0.1 s: longer is likely the whole video.
"""
from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from audiobench.data.decode import DecodeError, read_audio

MAX_EXCESS = 0.1  # seconds
MIN_FRACTION = 0.5


class Rejected(Exception):
    """An entry that does not count: ``category`` (a short key for the counts) and a one-line ``reason``."""

    def __init__(self, category: str, reason: str) -> None:
        super().__init__(reason)
        self.category = category
        self.reason = reason


def decode_limit(segment: float) -> float:
    """Seconds past which a file is not decoded for a ``segment``-second clip: well past any cut of it (a clip
    zero-padded to 10 s included, whose padding :func:`check_length` trims)."""
    return 2 * segment + 10.0


def decode(data: bytes, *, path: Path | None, suffix: str, segment: float | None = None) -> tuple[np.ndarray, int]:
    """Samples of encoded bytes (``path``: the file they came from, for ffmpeg's fallback and messages).

    With ``segment``, a file whose header says it lasts over :func:`decode_limit` is :class:`Rejected` as
    ``too-long`` unread."""
    if not data:
        raise Rejected("empty", "empty file (0 bytes)")
    header = _libsndfile_header(data)
    if header is not None and segment is not None and header > decode_limit(segment):
        raise Rejected("too-long", f"{header:.2f} s of audio by its header for a {segment:.2f} s segment "
                                   "(likely the whole video, not the cut; not decoded)")
    try:
        if path is not None:
            return read_audio(path, data=data)
        if header is not None:  # decoded from memory
            return read_audio(Path(f"entry{suffix}"), data=data)
        with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:  # ffmpeg, where libsndfile cannot, reads a file
            tmp.write(data)
            tmp.flush()
            return read_audio(Path(tmp.name), data=data)
    except DecodeError as exc:
        text = str(exc)
        reason = text.split(": ", 1)[1] if text.startswith(("/", str(path))) and ": " in text else text
        raise Rejected("undecodable", reason) from None


def _libsndfile_header(data: bytes) -> float | None:
    """The duration in seconds the header gives, where libsndfile opens the bytes (None: let ffmpeg try)."""
    try:
        info = sf.info(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - libsndfile's errors vary by version; any means "let ffmpeg try"
        return None
    return info.frames / info.samplerate if info.samplerate > 0 else 0.0


def trimmed_length(samples: np.ndarray) -> int:
    """Samples left after removing the trailing frames that are exactly zero in every channel."""
    if samples.shape[1] and np.any(samples[:, -1]):  # the common case: nothing to trim, no scan
        return int(samples.shape[1])
    nonzero = np.flatnonzero(np.any(samples != 0, axis=0))
    return int(nonzero[-1]) + 1 if nonzero.size else 0


def check_length(samples: np.ndarray, rate: int, segment: float) -> tuple[int, float]:
    """(trimmed samples, duration s) if the audio counts for a ``segment``-second clip; else :class:`Rejected`."""
    n = trimmed_length(samples)
    if n == 0:
        raise Rejected("silent", "all samples are zero")
    duration = n / rate
    if duration < MIN_FRACTION * segment:
        raise Rejected("too-short", f"{duration:.2f} s of audio for a {segment:.2f} s segment (under half)")
    if duration > segment + MAX_EXCESS:
        raise Rejected("too-long", f"{duration:.2f} s of audio for a {segment:.2f} s segment "
                                   "(likely the whole video, not the cut)")
    return n, duration

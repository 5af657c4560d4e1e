"""Read any audio file into float32 samples: libsndfile first, ffmpeg for what it cannot read.

ffmpeg is the system one if ``AUDIOBENCH_FFMPEG`` names it, else the binary that the ``imageio-ffmpeg``
wheel carries, so no system install is needed.
"""
from __future__ import annotations

import os
import re
import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

from audiobench.errors import AudiobenchError

FFMPEG_ENV = "AUDIOBENCH_FFMPEG"


class DecodeError(AudiobenchError):
    """A file that is empty, truncated, or not audio; the message names the file."""


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary to use."""
    override = os.environ.get(FFMPEG_ENV)
    if override:
        return override
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Decode ``path`` to ``(samples [channels, n] float32 in [-1, 1], sample_rate)``.

    Raises :class:`DecodeError` naming the file for an empty, truncated or non-audio file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DecodeError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if size == 0:
        raise DecodeError(f"{path}: empty file (0 bytes)")
    try:
        with sf.SoundFile(path) as f:
            integer = f.subtype.startswith(_INTEGER_SUBTYPES)
            data = f.read(dtype="float32", always_2d=True)
            rate = f.samplerate
        audio = np.ascontiguousarray(data.T)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        audio, rate = _read_with_ffmpeg(path, _libsndfile_reason(exc))
        integer = False
    if audio.shape[1] == 0:
        raise DecodeError(f"{path}: decodes to no samples")
    if not integer and not np.isfinite(audio).all():
        raise DecodeError(f"{path}: decodes to non-finite samples")
    return audio, rate


# libsndfile subtypes whose samples are integers (FLAC reports PCM_16/PCM_24): scaled to float32 they are
# always finite, so the check for inf/nan (5% of decoding a 10 s FLAC) is skipped.
_INTEGER_SUBTYPES = ("PCM_", "ALAC_")


def _libsndfile_reason(exc: Exception) -> str:
    text = str(getattr(exc, "error_string", None) or exc).strip().rstrip(".")
    return re.sub(r"^Error( opening '.*?')?\s*:\s*", "", text) or type(exc).__name__


# ffmpeg's stderr ends with consequences ("Conversion failed!", "Terminating thread ..."); the cause is
# usually an earlier line. These prefixes mark the lines that say nothing about the file.
_FFMPEG_NOISE = ("Conversion failed", "Terminating thread", "Task finished", "Nothing was written",
                 "Could not open encoder", "Output file is empty", "Stream mapping", "Stream #", "Input #",
                 "Output #", "Duration:", "Metadata:", "encoder", "Consider increasing", "size=", "video:",
                 "Press [q]", "Error while filtering", "Error opening output", "Error processing packet")


def _ffmpeg_reason(stderr: str) -> str:
    """The line of ffmpeg's stderr that names the cause, without its ``[demuxer @ 0x...]`` prefixes."""
    lines = [re.sub(r"^(\[[^\]]*\]\s*)+", "", line).strip() for line in stderr.splitlines()]
    lines = [line for line in lines if line]
    useful = [line for line in lines if not line.startswith(_FFMPEG_NOISE)]
    errors = [line for line in useful if re.search(r"error", line, re.I)]
    failures = [line for line in useful if re.search(r"invalid|could not|cannot|not found|failed|unsupported",
                                                     line, re.I)]
    reason = (errors or failures or useful or lines or ["no error text"])[0]
    return reason if len(reason) <= 200 else reason[:197] + "..."


def _undecodable(path: Path, libsndfile: str, ffmpeg: str) -> DecodeError:
    return DecodeError(f"{path}: not audio, or corrupt or truncated (libsndfile: {libsndfile}; ffmpeg: {ffmpeg})")


def _probe(path: Path, libsndfile: str) -> tuple[int, int]:
    """(channels, sample rate) of the first audio stream, read by ffmpeg itself (no ffprobe in the wheel)."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:a:0", "-t", "0",
           "-f", "null", "-"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in proc.stderr.splitlines():
        if "Audio:" in line and "Stream #" in line:
            parts = [p.strip() for p in line.split("Audio:", 1)[1].split(",")]
            rate = next((int(p.split()[0]) for p in parts if p.endswith("Hz")), 0)
            layout = parts[2] if len(parts) > 2 else ""
            channels = _channels_from_layout(layout)
            if rate and channels:
                return channels, rate
    raise _undecodable(path, libsndfile, _ffmpeg_reason(proc.stderr) if proc.stderr.strip() else "no audio stream")


def _channels_from_layout(layout: str) -> int:
    named = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "4.0": 4, "5.0": 5, "5.0(side)": 5, "5.1": 6,
             "5.1(side)": 6, "6.1": 7, "7.1": 8}
    if layout in named:
        return named[layout]
    head = layout.split()[0] if layout else ""
    if head.endswith("channels") or head.isdigit():
        return int("".join(ch for ch in head if ch.isdigit()) or 0)
    return 0


def _read_with_ffmpeg(path: Path, libsndfile: str) -> tuple[np.ndarray, int]:
    channels, rate = _probe(path, libsndfile)
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-xerror", "-i", str(path), "-map", "0:a:0",
           "-f", "f32le", "-acodec", "pcm_f32le", "-"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace")
        raise _undecodable(path, libsndfile, _ffmpeg_reason(stderr) if stderr.strip() else f"exit {proc.returncode}")
    samples = np.frombuffer(proc.stdout, dtype="<f4")
    usable = samples.size - samples.size % channels
    return np.ascontiguousarray(samples[:usable].reshape(-1, channels).T), rate


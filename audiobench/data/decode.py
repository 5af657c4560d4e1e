"""Read any audio file into float32 samples: libsndfile first, ffmpeg for what it cannot read.

ffmpeg is the system one if ``AUDIOBENCH_FFMPEG`` names it, else the binary that the ``imageio-ffmpeg``
wheel carries, so no system install is needed (:mod:`audiobench.data.ffmpeg`).
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from audiobench.core.errors import AudiobenchError
from audiobench.data.ffmpeg import ffmpeg_exe


class DecodeError(AudiobenchError):
    """A file that is empty, truncated, or not audio; the message names the file."""


def read_bytes(path: Path) -> bytes:
    """The file's content, or a :class:`DecodeError` naming it."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DecodeError(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_audio(path: Path, *, data: bytes | None = None) -> tuple[np.ndarray, int]:
    """Decode ``path`` to ``(samples [channels, n] float32 in [-1, 1], sample_rate)``.

    ``data``, when given, is the file's content already read (decoded from memory, so a caller that hashed
    those bytes knows exactly what was decoded). libsndfile reads what it can open; only a file it cannot
    open at all goes to ffmpeg. A file it opens but fails on mid-stream is corrupt, and so is a FLAC whose
    decoded samples do not match its own MD5 signature: both raise :class:`DecodeError` naming the file (a
    fallback decoder would hide the damage). Raises :class:`DecodeError` too for an empty, truncated or
    non-audio file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size if data is None else len(data)
    except OSError as exc:
        raise DecodeError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if size == 0:
        raise DecodeError(f"{path}: empty file (0 bytes)")
    try:
        handle = sf.SoundFile(path if data is None else io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        audio, rate = _read_with_ffmpeg(path, _libsndfile_reason(exc))
        integer = False
    else:
        with handle:
            audio, rate, integer = _read_opened(handle, path, data)
    if audio.shape[1] == 0:
        raise DecodeError(f"{path}: decodes to no samples")
    if not integer and not np.isfinite(audio).all():
        raise DecodeError(f"{path}: decodes to non-finite samples")
    return audio, rate


def codec_of(data: bytes, suffix: str) -> str:
    """The codec of a file's bytes as libsndfile names it (``flac``, ``vorbis``, ``opus``, ``pcm_16``, ...), or
    its suffix where libsndfile cannot open it (``m4a``, ...): what ``status --per-source`` shows of a copy."""
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return suffix.lstrip(".").lower() or "?"
    return (info.format if info.format in ("FLAC", "MP3") else info.subtype).lower()


def _read_opened(f: sf.SoundFile, path: Path, data: bytes | None) -> tuple[np.ndarray, int, bool]:
    """Samples of a file libsndfile opened: a failure now means a damaged file, never a reason to fall back."""
    kind = f.format
    try:
        if kind == "FLAC":
            return _read_flac(f, path, data), f.samplerate, True
        integer = f.subtype.startswith(_INTEGER_SUBTYPES)
        return np.ascontiguousarray(f.read(dtype="float32", always_2d=True).T), f.samplerate, integer
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise DecodeError(f"{path}: corrupt {kind}: {_libsndfile_reason(exc)} "
                          "(opens, then fails mid-stream: damaged or truncated)") from None


def _read_flac(f: sf.SoundFile, path: Path, data: bytes | None) -> np.ndarray:
    """A FLAC's samples, checked against the MD5 of the decoded audio that its STREAMINFO carries.

    libFLAC's MD5 is over the samples interleaved, little-endian, each in the fewest whole bytes its bit depth
    needs. Decoding to integers and scaling by a power of two gives exactly libsndfile's float samples.
    """
    head = data[:42] if data is not None else _head(path, 42)
    width = _flac_width(f)
    ints = f.read(dtype=f"int{width}", always_2d=True)
    if len(ints) != f.frames:
        raise DecodeError(f"{path}: corrupt FLAC: {len(ints)} of its {f.frames} samples decode")
    signature = _flac_md5(head)
    if signature is not None:
        bits, expected = signature
        if hashlib.md5(_flac_pcm(ints, bits, width)).digest() != expected:
            raise DecodeError(f"{path}: corrupt FLAC: the decoded samples do not match its MD5 signature")
    return ints.T.astype(np.float32, order="C") * np.float32(2.0 ** (1 - width))


def _flac_width(f: sf.SoundFile) -> int:
    """The integer width a FLAC's samples are decoded to (16 or 32 bits)."""
    return 16 if f.subtype in ("PCM_S8", "PCM_16") else 32


def _flac_pcm(ints: np.ndarray, bits: int, width: int) -> np.ndarray:
    """``[n, channels]`` samples decoded to ``int{width}`` as libFLAC's MD5 sees them: interleaved,
    little-endian, each in the fewest whole bytes ``bits`` needs (a contiguous array, hashed without a copy)."""
    shift, nbytes = width - bits, (bits + 7) // 8
    if nbytes == width // 8:
        pcm = ints >> shift if shift else ints  # whole words: hashed as they are, no copy
        return np.ascontiguousarray(pcm.astype(pcm.dtype.newbyteorder("<"), copy=False))
    # ``nbytes`` of each little-endian int32, byte column by byte column (5x a strided copy)
    # libsndfile left-justifies: for 24 bits in 32 the sample's bytes are 1-3 of each word, unshifted
    justified = shift == 8 * (width // 8 - nbytes)
    raw = np.ascontiguousarray(ints if justified else ints >> shift).astype("<i4", copy=False).reshape(-1).view(np.uint8)
    first = width // 8 - nbytes if justified else 0
    packed = np.empty((raw.size // 4, nbytes), np.uint8)
    for b in range(nbytes):
        packed[:, b] = raw[first + b::4]
    return packed


def _head(path: Path, n: int) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(n)


def _flac_md5(head: bytes) -> tuple[int, bytes] | None:
    """(bits per sample, MD5 of the samples) from a FLAC's STREAMINFO; ``None`` when it records none."""
    if len(head) < 42 or head[:4] != b"fLaC" or head[4] & 0x7F != 0:  # STREAMINFO is always the first block
        return None
    info = head[8:42]
    bits = (((info[12] & 0x01) << 4) | (info[13] >> 4)) + 1
    md5 = bytes(info[18:34])
    return (bits, md5) if any(md5) else None


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


def _ffmpeg_decode(path: Path) -> list[str]:
    """The ffmpeg command writing the first audio stream of ``path`` to stdout, interleaved float32."""
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-xerror", "-i", str(path), "-map", "0:a:0",
            "-f", "f32le", "-acodec", "pcm_f32le", "-"]


def _read_with_ffmpeg(path: Path, libsndfile: str) -> tuple[np.ndarray, int]:
    channels, rate = _probe(path, libsndfile)
    proc = subprocess.run(_ffmpeg_decode(path), capture_output=True, check=False)
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace")
        raise _undecodable(path, libsndfile, _ffmpeg_reason(stderr) if stderr.strip() else f"exit {proc.returncode}")
    samples = np.frombuffer(proc.stdout, dtype="<f4")
    usable = samples.size - samples.size % channels
    return np.ascontiguousarray(samples[:usable].reshape(-1, channels).T), rate



class AudioBlocks:
    """A file decoded block by block, for files too long to hold in memory (``audiobench predict``).

    Opening reads the header (``rate``, ``channels``); iterating yields ``[channels, n]`` float32 blocks of
    at most ``block`` samples, which put end to end are exactly ``read_audio(path)[0]``, with its checks:
    the same decoder (libsndfile, else ffmpeg, streamed), and the same :class:`DecodeError` for an empty,
    truncated, corrupt or non-finite file. The checks that need the whole file (a FLAC's sample count and
    MD5 signature, at least one sample) raise after the last block. Memory is one block, whatever the length.
    Use it as a context manager: closing stops an ffmpeg decoder that is still running.
    """

    def __init__(self, path: str | os.PathLike[str], *, block: int = 1 << 16) -> None:
        self.path, self.block = Path(path), int(block)
        self._file: sf.SoundFile | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        try:
            size = self.path.stat().st_size
        except OSError as exc:
            raise DecodeError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        if size == 0:
            raise DecodeError(f"{self.path}: empty file (0 bytes)")
        try:
            self._file = sf.SoundFile(self.path)
        except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
            self._reason = _libsndfile_reason(exc)
            self.channels, self.rate = _probe(self.path, self._reason)
        else:
            self.channels, self.rate = self._file.channels, self._file.samplerate

    def __enter__(self) -> AudioBlocks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def __iter__(self) -> Iterator[np.ndarray]:
        integer = self._file is not None and (self._file.format == "FLAC"
                                              or self._file.subtype.startswith(_INTEGER_SUBTYPES))
        samples = 0
        for block in (self._libsndfile() if self._file is not None else self._ffmpeg()):
            if not integer and not np.isfinite(block).all():
                raise DecodeError(f"{self.path}: decodes to non-finite samples")
            samples += block.shape[1]
            yield block
        if samples == 0:
            raise DecodeError(f"{self.path}: decodes to no samples")

    def _libsndfile(self) -> Iterator[np.ndarray]:
        """:func:`_read_opened` block by block: a FLAC as integers, its MD5 updated block by block."""
        f, path = self._file, self.path
        assert f is not None
        flac = f.format == "FLAC"
        width = _flac_width(f)
        signature = _flac_md5(_head(path, 42)) if flac else None
        md5, scale, read = hashlib.md5(), np.float32(2.0 ** (1 - width)), 0
        try:
            while True:
                if flac:
                    ints = f.read(self.block, dtype=f"int{width}", always_2d=True)
                    if signature is not None:
                        md5.update(_flac_pcm(ints, signature[0], width))
                    block = ints.T.astype(np.float32, order="C") * scale
                else:
                    block = np.ascontiguousarray(f.read(self.block, dtype="float32", always_2d=True).T)
                if block.shape[1] == 0:
                    break
                read += block.shape[1]
                yield block
        except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
            raise DecodeError(f"{path}: corrupt {f.format}: {_libsndfile_reason(exc)} "
                              "(opens, then fails mid-stream: damaged or truncated)") from None
        if flac and read != f.frames:
            raise DecodeError(f"{path}: corrupt FLAC: {read} of its {f.frames} samples decode")
        if signature is not None and md5.digest() != signature[1]:
            raise DecodeError(f"{path}: corrupt FLAC: the decoded samples do not match its MD5 signature")

    def _ffmpeg(self) -> Iterator[np.ndarray]:
        """:func:`_read_with_ffmpeg`, its output read from the pipe block by block (stderr to a file: no
        pipe to fill up while stdout is read)."""
        frame = 4 * self.channels
        with tempfile.TemporaryFile() as errors:
            self._proc = proc = subprocess.Popen(_ffmpeg_decode(self.path), stdin=subprocess.DEVNULL,
                                                 stdout=subprocess.PIPE, stderr=errors)
            assert proc.stdout is not None
            pending = b""
            with proc.stdout:
                while chunk := proc.stdout.read(self.block * frame):
                    data = pending + chunk if pending else chunk
                    usable = len(data) - len(data) % frame
                    pending = data[usable:]
                    if usable:
                        samples = np.frombuffer(data, dtype="<f4", count=usable // 4)
                        yield np.ascontiguousarray(samples.reshape(-1, self.channels).T)
            if proc.wait() != 0:
                errors.seek(0)
                stderr = errors.read().decode(errors="replace")
                raise _undecodable(self.path, self._reason,
                                   _ffmpeg_reason(stderr) if stderr.strip() else f"exit {proc.returncode}")

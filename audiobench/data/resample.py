"""Stage 2 (docs/datasets.md): every fetched clip as 16 kHz mono FLAC under ``audio/<split>/``.

For each ledger clip with status ``ok`` and a raw file (``path``, relative to the dataset folder, under
``raw/``): decode it (libsndfile, else ffmpeg), mix to mono (mean of the channels), resample with soxr
(high quality), clip to [-1, 1], write PCM_16 FLAC atomically, and record the true duration in the ledger.
A clip whose decoded length falls short of its segment by more than 0.1 s is kept and marked ``short``; it
is never padded on disk. A clip longer than its segment by more than 1 s is cut to the segment when the file
can be taken for the whole recording (it reaches the segment's end), with a notice, and refused otherwise.

A clip that fails (empty, truncated, not audio) keeps its fetch status: the raw file is what it is, and a
new fetch is the remedy. It is returned (and printed by the CLI) with its reason, and the other clips
complete. It runs as the dataset's one writer (:meth:`DatasetPaths.writing`), which also removes what a
killed run left. Reruns skip clips whose audio record names the same raw file (same size and sha256: content, not
modification time; the hash is taken again unless the file's inode, ctime, mtime and size are all those it had
when it was hashed, which no write, rename or copy leaves as they were) and whose file exists; clips that synth wrote (no raw file, audio already there) count as
done. A full disk stops the run with one line; every clip recorded before it stays done.
"""
from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import soxr

from audiobench.core.records import AudioRecord, ClipFailure, ClipStatus
from audiobench.data.decode import read_audio, read_bytes
from audiobench.data.ffmpeg import ffmpeg_exe
from audiobench.core.errors import AudiobenchError
from audiobench.data.index import sha256_file
from audiobench.core.layout import (AUDIO_RATE, DatasetPaths, disk_full_error, ensure_writable_dir, is_disk_full,
                                    resolve_root, validate_name, write_atomic)
from audiobench.data.ledger import Ledger
from audiobench.core.parallel import Backend, map_unordered

SHORT_TOLERANCE = 0.1  # seconds a decoded clip may fall short of its segment before it is marked short
LONG_TOLERANCE = 1.0  # seconds a decoded clip may exceed its segment before it is cut (or refused)
CHUNK = 16  # clips per parallel task: enough to amortise a task's overhead, small enough to balance

Outcome = Literal["converted", "done", "failed"]


# -- the audio/ format, shared with synth --------------------------------------------------------------------
def encode_flac(samples: np.ndarray) -> bytes:
    """16 kHz mono PCM_16 FLAC bytes of ``samples`` (float in [-1, 1]); deterministic for equal input."""
    buf = io.BytesIO()
    sf.write(buf, np.asarray(samples, dtype=np.float32), AUDIO_RATE, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def audio_relpath(split: str, clip_id: str) -> str:
    """Where a clip's 16 kHz file lives, relative to the dataset folder."""
    return f"audio/{split}/{clip_id}.flac"


# -- results -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResampleRow:
    """What happened to one clip."""

    clip_id: str
    split: str
    outcome: Outcome
    duration: float | None = None  # seconds of 16 kHz audio on disk
    short: bool = False
    reason: str | None = None  # why it failed
    note: str | None = None  # what was done to a clip that converted, worth a line (cut to its segment)


@dataclass(frozen=True)
class ResampleResult:
    """Per-clip rows and their counts; ``failed`` lists the clips to look at, with reasons."""

    dataset: str
    rows: tuple[ResampleRow, ...]
    elapsed: float  # seconds
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        counts = {"converted": 0, "done": 0, "failed": 0, "short": 0}
        for row in self.rows:
            counts[row.outcome] += 1
            counts["short"] += int(row.short and row.outcome != "failed")
        object.__setattr__(self, "counts", counts)

    @property
    def failed(self) -> tuple[ClipFailure, ...]:
        return tuple(ClipFailure(r.clip_id, r.reason or "", r.split) for r in self.rows if r.outcome == "failed")

    @property
    def empty(self) -> bool:
        """Every clip failed: nothing for featurize (the command line then exits non-zero)."""
        return self.counts["converted"] + self.counts["done"] == 0

    def summary(self) -> str:
        """What a person reads at the end: the counts, then each failed clip with its reason."""
        c = self.counts
        lines = [f"resample {self.dataset}: converted {c['converted']}, already done {c['done']}, "
                 f"short {c['short']}, failed {c['failed']} ({self.elapsed:.1f} s)"]
        noted = [r for r in self.rows if r.note]
        if noted:
            width = max(len(r.clip_id) for r in noted)
            lines += [f"note {row.clip_id:<{width}}  {row.note}" for row in noted]
        if self.failed:
            lines.append("failed clips (fetch status kept; fix or re-fetch them, then rerun):")
            width = max(len(r.clip_id) for r in self.failed)
            lines += [f"  {row.clip_id:<{width}}  {row.reason}" for row in self.failed]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Task:
    clip_id: str
    split: str
    source: str  # absolute path of the raw file
    source_rel: str  # the same, relative to the dataset folder (as the ledger has it)
    target: str  # absolute path of the 16 kHz file
    start: float  # the listed segment, seconds into the recording
    end: float
    mtime_ns: int
    inode: int | None = None
    ctime_ns: int | None = None

    @property
    def segment(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class _Converted:
    clip_id: str
    split: str
    samples: int
    mtime_ns: int
    segment: float
    error: str | None = None
    note: str | None = None
    source_bytes: int | None = None
    source_sha256: str | None = None
    inode: int | None = None
    ctime_ns: int | None = None
    disk_full: bool = False  # the write failed for want of space: the run stops after recording what finished


# -- the stage -----------------------------------------------------------------------------------------------
def resample(dataset: str, *, root: str | os.PathLike[str] | None = None, jobs: int = 1,
             backend: Backend = "loky", scheduler: str | None = None, quiet: bool = False,
             wait: bool = False) -> ResampleResult:
    """Decode, mix to mono and resample every fetched clip of ``dataset`` to 16 kHz FLAC under ``audio/``.

    Returns one row per clip with status ``ok`` (converted, already done, or failed with a reason); per-clip
    failures never stop the others. Raises :class:`AudiobenchError` when the dataset or its ``audio/``
    folder cannot be used, or when no clip is fetched yet (an empty stage stops a pipeline there). The run is
    the dataset's one writer: another (fetch, import, synth, resample) or a featurize of it running makes it
    fail at once naming that process, or with ``wait`` wait for it.

    >>> result = resample("sl-dcase17", root="audiobench-data", jobs=4)   # doctest: +SKIP
    >>> result.counts                                                      # doctest: +SKIP
    {'converted': 3712, 'done': 0, 'failed': 3, 'short': 41}
    """
    started = time.perf_counter()
    paths = DatasetPaths(resolve_root(root), dataset)
    paths.require_ledger()
    with paths.writing(wait=wait), Ledger(paths.ledger) as ledger:
        for split in ledger.splits():  # a ledger written before split names were checked could hold any name
            validate_name(split, what="split name", where=str(ledger.path))
        fetched = ledger.statuses(status="ok")
        if not fetched:
            raise AudiobenchError(f"no clips fetched for {dataset}: run `audiobench fetch {dataset}` first "
                                  f"(`audiobench status {dataset}` shows what was tried)")
        rows, tasks = _plan(paths, fetched, ledger.audio(), jobs=jobs)
        if tasks:
            ffmpeg_exe()  # a wrong AUDIOBENCH_FFMPEG stops the run here, not clip by clip
        for split in sorted({t.split for t in tasks}):
            ensure_writable_dir(paths.audio / split)
        chunks = [tasks[i:i + CHUNK] for i in range(0, len(tasks), CHUNK)]
        left = {t.clip_id: t.segment for t in tasks}
        try:
            for converted in map_unordered(_convert_chunk, chunks, jobs=jobs, backend=backend, scheduler=scheduler,
                                           desc=f"resample {dataset}", quiet=quiet, unit="chunk"):
                for c in converted:
                    if c.disk_full:  # at most 2 bytes a sample (FLAC is smaller): what the clips left could take
                        raise disk_full_error(paths.audio, needed=sum(left.values()) * AUDIO_RATE * 2)
                    rows.append(_record(ledger, c))  # a full ledger says so itself, naming its folder
                    left.pop(c.clip_id, None)
        except OSError as exc:
            if is_disk_full(exc):
                raise disk_full_error(paths.audio, needed=sum(left.values()) * AUDIO_RATE * 2) from None
            raise
    order = {"failed": 0, "converted": 1, "done": 2}
    rows.sort(key=lambda r: (order[r.outcome], r.split, r.clip_id))
    return ResampleResult(dataset, tuple(rows), time.perf_counter() - started)


def _plan(paths: DatasetPaths, clips: list[ClipStatus], audio: dict[str, AudioRecord], *,
          jobs: int = 1) -> tuple[list[ResampleRow], list[_Task]]:
    """Split the ok clips into done, impossible (no raw file) and to do.

    A clip is done when its audio file exists and its record names a raw file of the same size and sha256 as
    the one there now (hashed only when the size matches; a record without a hash, from an older version, is
    converted again, which writes the same bytes).
    """
    rows: list[ResampleRow] = []
    tasks: list[_Task] = []
    candidates: list[tuple[ClipStatus, Path, os.stat_result]] = []
    maybe_same: dict[str, Path] = {}  # clip id -> raw file of the recorded size: its content decides
    unchanged: set[str] = set()  # clip ids whose raw file is the very file hashed (see unchanged_since)
    for clip in clips:
        record = audio.get(clip.clip_id)
        have_audio = record is not None and (paths.dir / record.path).is_file()
        if not clip.path:
            if have_audio:  # written directly (synth): nothing to resample
                rows.append(ResampleRow(clip.clip_id, clip.split, "done", record.duration, record.short))
            else:
                rows.append(ResampleRow(clip.clip_id, clip.split, "failed",
                                        reason="status ok but no raw file recorded; run fetch again"))
            continue
        source = paths.dir / clip.path
        try:
            stat = source.stat()
        except OSError as exc:
            rows.append(ResampleRow(clip.clip_id, clip.split, "failed",
                                    reason=f"raw file {clip.path} unreadable ({exc.strerror or exc}); run fetch again"))
            continue
        candidates.append((clip, source, stat))
        if have_audio and record.source_sha256 and record.source_bytes == stat.st_size:
            if unchanged_since(record, stat):
                unchanged.add(clip.clip_id)
            else:
                maybe_same[clip.clip_id] = source
    same = {cid for cid, sha in _hash_files(maybe_same, jobs=jobs).items() if sha == audio[cid].source_sha256}
    same |= unchanged
    for clip, source, stat in candidates:
        if clip.clip_id in same:
            record = audio[clip.clip_id]
            rows.append(ResampleRow(clip.clip_id, clip.split, "done", record.duration, record.short))
        else:
            target = paths.dir / audio_relpath(clip.split, clip.clip_id)
            tasks.append(_Task(clip.clip_id, clip.split, str(source), clip.path, str(target), clip.start, clip.end,
                               stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns))
    return rows, tasks


def unchanged_since(record: AudioRecord, stat: os.stat_result) -> bool:
    """Whether the raw file ``stat`` describes is the very file whose sha256 ``record`` holds.

    Replacing a file (an atomic rename, a copy, another root) gives it another inode; writing it in place
    moves its ctime, which no user call sets back. So equal inode, ctime, mtime and size mean the bytes hashed
    are still there, and hashing them again would only cost time (1 to 2 ms per 10 s clip).
    """
    return (record.source_inode is not None and record.source_ctime_ns is not None
            and (record.source_inode, record.source_ctime_ns, record.source_mtime_ns, record.source_bytes)
            == (stat.st_ino, stat.st_ctime_ns, stat.st_mtime_ns, stat.st_size))


def _hash_files(files: dict[str, Path], *, jobs: int) -> dict[str, str]:
    """key -> sha256 of its file, for the files that can be read (threads: hashing frees the GIL)."""
    def one(item: tuple[str, Path]) -> tuple[str, str | None]:
        try:
            return item[0], sha256_file(item[1])
        except OSError:
            return item[0], None

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, os.cpu_count() or 1, 8))) as pool:
        return {key: sha for key, sha in pool.map(one, files.items()) if sha is not None}


def _record(ledger: Ledger, c: _Converted) -> ResampleRow:
    if c.error is not None:
        return ResampleRow(c.clip_id, c.split, "failed", reason=c.error)
    duration = c.samples / AUDIO_RATE
    short = duration < c.segment - SHORT_TOLERANCE
    ledger.record_audio(AudioRecord(c.clip_id, audio_relpath(c.split, c.clip_id), c.samples, duration, short,
                                    c.mtime_ns, c.source_bytes, c.source_sha256, c.inode, c.ctime_ns))
    return ResampleRow(c.clip_id, c.split, "converted", duration, short, note=c.note)


def _convert_chunk(tasks: list[_Task]) -> list[_Converted]:
    """Worker: convert each clip of a chunk; a failure becomes a row, never an exception. A full disk ends the
    chunk: the clips before it are returned to be recorded, the rest left for a rerun."""
    out: list[_Converted] = []
    for task in tasks:
        out.append(_convert(task))
        if out[-1].disk_full:
            break
    return out


def _convert(task: _Task) -> _Converted:
    def failed(reason: str) -> _Converted:
        return _Converted(task.clip_id, task.split, 0, task.mtime_ns, task.segment, reason)

    try:
        data = read_bytes(Path(task.source))  # read once: the hash recorded is of exactly the bytes decoded
        audio, rate = read_audio(Path(task.source), data=data)
        audio, note = _fit_to_segment(audio, rate, task)
        mono = to_mono_16k(audio, rate)
        write_atomic(Path(task.target), encode_flac(mono))
    except AudiobenchError as exc:
        return failed(_reason(exc, task))
    except (OSError, sf.LibsndfileError) as exc:
        if is_disk_full(exc):
            return _Converted(task.clip_id, task.split, 0, task.mtime_ns, task.segment, str(exc), disk_full=True)
        return failed(f"cannot write {task.target}: {getattr(exc, 'strerror', None) or exc}")
    return _Converted(task.clip_id, task.split, int(mono.size), task.mtime_ns, task.segment, note=note,
                      source_bytes=len(data), source_sha256=hashlib.sha256(data).hexdigest(),
                      inode=task.inode, ctime_ns=task.ctime_ns)


def _fit_to_segment(audio: np.ndarray, rate: int, task: _Task) -> tuple[np.ndarray, str | None]:
    """The clip's samples, cut to its listed segment when the file is much longer than the segment.

    fetch keeps only the segment, so a file longer than it by more than a second is most likely the whole
    recording: when it reaches the segment's end, [start, end) of it is the clip. A file longer than the
    segment but ending before ``end`` is neither, and is refused rather than guessed at.
    """
    seconds = audio.shape[1] / rate
    if seconds <= task.segment + LONG_TOLERANCE:
        return audio, None
    if seconds < task.end - SHORT_TOLERANCE:
        raise AudiobenchError(f"{task.source}: {seconds:.2f} s long for a {task.segment:.2f} s segment "
                              f"({task.start:g}-{task.end:g} s): neither the segment nor the whole recording; "
                              "re-fetch it")
    first, stop = round(task.start * rate), min(round(task.end * rate), audio.shape[1])
    note = (f"cut to {task.start:g}-{task.end:g} s of a {seconds:.2f} s file (taken as the whole recording; "
            f"the listed segment is {task.segment:g} s)")
    return audio[:, first:stop], note


def _reason(exc: Exception, task: _Task) -> str:
    """The decode error naming the raw file as the ledger does (relative to the dataset folder)."""
    text = str(exc)
    if text.startswith(task.source + ": "):
        text = text[len(task.source) + 2:]
    return f"{task.source_rel}: {text}"


def to_mono_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    """``[channels, n]`` float samples at ``rate`` -> mono float32 at 16 kHz in [-1, 1] (soxr, high quality)."""
    mono = _mono(audio)
    if rate != AUDIO_RATE:
        mono = soxr.resample(mono, rate, AUDIO_RATE, quality="HQ")
    return np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False)


def to_mono_16k_blocks(blocks: Iterable[np.ndarray], rate: int) -> Iterator[np.ndarray]:
    """:func:`to_mono_16k` of a recording given as consecutive ``[channels, n]`` blocks, block by block.

    soxr's streaming resampler carries its filter state from block to block, so the blocks put end to end
    are exactly (bit for bit) ``to_mono_16k`` of the whole recording; the last one flushes the filter.
    """
    stream = None if rate == AUDIO_RATE else soxr.ResampleStream(rate, AUDIO_RATE, 1, dtype="float32",
                                                                    quality="HQ")
    for block in blocks:
        mono = _mono(block)
        if stream is not None:
            mono = stream.resample_chunk(mono)
        yield np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False)
    if stream is not None:
        yield np.clip(stream.resample_chunk(np.zeros(0, np.float32), last=True), -1.0, 1.0).astype(np.float32,
                                                                                                   copy=False)


def _mono(audio: np.ndarray) -> np.ndarray:
    """float32 mean of the channels of ``[channels, n]`` samples (column by column: blocks mix alike)."""
    return audio.mean(axis=0, dtype=np.float32) if audio.shape[0] > 1 else audio[0].astype(np.float32)

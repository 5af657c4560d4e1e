"""Stage 2 (docs/datasets.md): every fetched clip as 16 kHz mono FLAC under ``audio/<split>/``.

For each ledger clip with status ``ok`` and a raw file (``path``, relative to the dataset folder, under
``raw/``): decode it (libsndfile, else ffmpeg), mix to mono (mean of the channels), resample with soxr
(high quality), clip to [-1, 1], write PCM_16 FLAC atomically, and record the true duration in the ledger.
A clip whose decoded length falls short of its segment by more than 0.1 s is kept and marked ``short``; it
is never padded on disk.

A clip that fails (empty, truncated, not audio) keeps its fetch status: the raw file is what it is, and a
new fetch is the remedy. It is returned (and printed by the CLI) with its reason, and the other clips
complete. Reruns skip clips whose audio record names the same raw file modification time and whose file
exists; clips that synth wrote (no raw file, audio already there) count as done.
"""
from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import soxr

from audiobench.clips import AudioRecord, ClipStatus
from audiobench.decode import read_audio
from audiobench.errors import AudiobenchError
from audiobench.layout import DatasetPaths, ensure_writable_dir, resolve_root, write_atomic
from audiobench.ledger import Ledger
from audiobench.parallel import Backend, map_unordered

AUDIO_RATE = 16000  # Hz: the VGGish front end's input rate (docs/features.md)
SHORT_TOLERANCE = 0.1  # seconds a decoded clip may fall short of its segment before it is marked short
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


def remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files a killed run left behind (they never count as done)."""
    if folder.is_dir():
        for tmp in folder.glob(".*.flac.*.tmp"):
            tmp.unlink(missing_ok=True)


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
    def failed(self) -> tuple[ResampleRow, ...]:
        return tuple(r for r in self.rows if r.outcome == "failed")

    @property
    def empty(self) -> bool:
        """Every clip failed: nothing for featurize (the command line then exits non-zero)."""
        return self.counts["converted"] + self.counts["done"] == 0

    def summary(self) -> str:
        """What a person reads at the end: the counts, then each failed clip with its reason."""
        c = self.counts
        lines = [f"resample {self.dataset}: converted {c['converted']}, already done {c['done']}, "
                 f"short {c['short']}, failed {c['failed']} ({self.elapsed:.1f} s)"]
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
    segment: float  # seconds listed for the clip
    mtime_ns: int


@dataclass(frozen=True)
class _Converted:
    clip_id: str
    split: str
    samples: int
    mtime_ns: int
    segment: float
    error: str | None = None


# -- the stage -----------------------------------------------------------------------------------------------
def resample(dataset: str, *, root: str | os.PathLike[str] | None = None, jobs: int = 1,
             backend: Backend = "loky", scheduler: str | None = None, quiet: bool = False) -> ResampleResult:
    """Decode, mix to mono and resample every fetched clip of ``dataset`` to 16 kHz FLAC under ``audio/``.

    Returns one row per clip with status ``ok`` (converted, already done, or failed with a reason); per-clip
    failures never stop the others. Raises :class:`AudiobenchError` when the dataset or its ``audio/``
    folder cannot be used, or when no clip is fetched yet (an empty stage stops a pipeline there).

    >>> result = resample("sl-dcase17", root="audiobench-data", jobs=4)   # doctest: +SKIP
    >>> result.counts                                                      # doctest: +SKIP
    {'converted': 3712, 'done': 0, 'failed': 3, 'short': 41}
    """
    started = time.perf_counter()
    paths = DatasetPaths(resolve_root(root), dataset)
    with Ledger(paths.require_ledger()) as ledger:
        fetched = ledger.statuses(status="ok")
        if not fetched:
            raise AudiobenchError(f"no clips fetched for {dataset}: run `audiobench fetch {dataset}` first "
                                  f"(`audiobench status {dataset}` shows what was tried)")
        rows, tasks = _plan(paths, fetched, ledger.audio())
        for split in sorted({t.split for t in tasks}):
            ensure_writable_dir(paths.audio / split)
            remove_stale_temporaries(paths.audio / split)
        chunks = [tasks[i:i + CHUNK] for i in range(0, len(tasks), CHUNK)]
        for converted in map_unordered(_convert_chunk, chunks, jobs=jobs, backend=backend, scheduler=scheduler,
                                       desc=f"resample {dataset}", quiet=quiet, unit="chunk"):
            rows.extend(_record(ledger, c) for c in converted)
    order = {"failed": 0, "converted": 1, "done": 2}
    rows.sort(key=lambda r: (order[r.outcome], r.split, r.clip_id))
    return ResampleResult(dataset, tuple(rows), time.perf_counter() - started)


def _plan(paths: DatasetPaths, clips: list[ClipStatus],
          audio: dict[str, AudioRecord]) -> tuple[list[ResampleRow], list[_Task]]:
    """Split the ok clips into done, impossible (no raw file) and to do."""
    rows: list[ResampleRow] = []
    tasks: list[_Task] = []
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
            mtime = source.stat().st_mtime_ns
        except OSError as exc:
            rows.append(ResampleRow(clip.clip_id, clip.split, "failed",
                                    reason=f"raw file {clip.path} unreadable ({exc.strerror or exc}); run fetch again"))
            continue
        if have_audio and record.source_mtime_ns == mtime:
            rows.append(ResampleRow(clip.clip_id, clip.split, "done", record.duration, record.short))
            continue
        target = paths.dir / audio_relpath(clip.split, clip.clip_id)
        tasks.append(_Task(clip.clip_id, clip.split, str(source), clip.path, str(target), clip.end - clip.start,
                           mtime))
    return rows, tasks


def _record(ledger: Ledger, c: _Converted) -> ResampleRow:
    if c.error is not None:
        return ResampleRow(c.clip_id, c.split, "failed", reason=c.error)
    duration = c.samples / AUDIO_RATE
    short = duration < c.segment - SHORT_TOLERANCE
    ledger.record_audio(AudioRecord(c.clip_id, audio_relpath(c.split, c.clip_id), c.samples, duration, short,
                                    c.mtime_ns))
    return ResampleRow(c.clip_id, c.split, "converted", duration, short)


def _convert_chunk(tasks: list[_Task]) -> list[_Converted]:
    """Worker: convert each clip of a chunk; a failure becomes a row, never an exception."""
    return [_convert(t) for t in tasks]


def _convert(task: _Task) -> _Converted:
    try:
        audio, rate = read_audio(Path(task.source))
        mono = to_mono_16k(audio, rate)
        write_atomic(Path(task.target), encode_flac(mono))
    except AudiobenchError as exc:
        return _Converted(task.clip_id, task.split, 0, task.mtime_ns, task.segment, _reason(exc, task))
    except (OSError, sf.LibsndfileError) as exc:
        return _Converted(task.clip_id, task.split, 0, task.mtime_ns, task.segment,
                          f"cannot write {task.target}: {getattr(exc, 'strerror', None) or exc}")
    return _Converted(task.clip_id, task.split, int(mono.size), task.mtime_ns, task.segment)


def _reason(exc: Exception, task: _Task) -> str:
    """The decode error naming the raw file as the ledger does (relative to the dataset folder)."""
    text = str(exc)
    if text.startswith(task.source + ": "):
        text = text[len(task.source) + 2:]
    return f"{task.source_rel}: {text}"


def to_mono_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    """``[channels, n]`` float samples at ``rate`` -> mono float32 at 16 kHz in [-1, 1] (soxr, high quality)."""
    mono = audio.mean(axis=0, dtype=np.float32) if audio.shape[0] > 1 else audio[0].astype(np.float32)
    if rate != AUDIO_RATE:
        mono = soxr.resample(mono, rate, AUDIO_RATE, quality="HQ")
    return np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False)

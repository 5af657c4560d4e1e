"""Adopt the clips that copies hold: match, validate, write under ``raw/``, mark ``ok`` with its origin.

The engine beneath both ways in: ``audiobench import`` of copies (:mod:`audiobench.data.imports.copies`) and a
fetch from local files (:mod:`audiobench.data.fetch.files`); it takes a stream of entries and an open ledger.

Entries stream from the readers in sorted relative-path order and are examined (read, decoded, checked,
hashed, and resampled to the 16 kHz mono file ``resample`` would make of it: the samples are decoded
already) by ``jobs`` threads while the stream reads on, at most a few entries in flight, so memory stays
flat; results are applied in entry order, so the first good copy of a clip wins whatever the threads'
timing. Each adopted file is written atomically under ``raw/<split>/<clip_id><suffix>`` (and its 16 kHz
file under ``audio/``) *before* its ledger row becomes ``ok`` (with its origin, in one transaction): a kill at any moment leaves nothing half-adopted, and a rerun redoes only what is not ``ok``.
Clips ``ok`` before the run are not read again; a rejected entry leaves its clip's status as it was and
records the reason as its last error (unless it already says so: a rerun changes no row).
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from audiobench.core.layout import AUDIO_RATE, DatasetPaths, ensure_writable_dir, write_atomic
from audiobench.core.progress import progress
from audiobench.core.records import AudioRecord, ClipStatus
from audiobench.data.decode import codec_of
from audiobench.data.imports.entry import Entry, Pcm
from audiobench.data.imports.match import Catalog
from audiobench.data.imports.result import ImportResult
from audiobench.data.imports.validate import Rejected, check_length, decode
from audiobench.data.ledger import Ledger
from audiobench.data.resample import SHORT_TOLERANCE, audio_relpath, encode_flac, to_mono_16k

AUDIOSET_CLASSES = 527  # an HDF5 ``target`` row is in AudioSet's class order


@dataclass(frozen=True)
class Examined:
    data: bytes = b""
    sha256: str = ""
    duration: float = 0.0
    suffix: str = ""
    rejected: Rejected | None = None
    audio: bytes = b""  # the clip's 16 kHz mono FLAC, made from the samples already decoded
    samples: int = 0
    stream: dict[str, object] | None = None  # codec, sample rate and channels of the copy's audio


def adopt_entries(ledger: Ledger, paths: DatasetPaths, entries: Iterable[Entry], result: ImportResult, *,
                  split: str | None = None, jobs: int = 1, quiet: bool = False, total: int | None = None) -> None:
    """Match, examine and adopt ``entries`` into ``ledger``, adding to ``result``'s counts."""
    catalog = Catalog(ledger.statuses())
    ok_before = {cid for cid, row in catalog.by_clip.items() if row.status == "ok"}
    labels = _LabelCheck(ledger)
    adopted: dict[str, str] = {}  # clip id -> sha256 of the copy adopted in this run
    rejections: dict[str, str] = {}  # clip id -> the first reason one of its entries was refused
    had: set[str] = set()
    size = 2 * jobs + 2  # entries in flight: memory holds this many clips' bytes
    ensure_writable_dir(paths.raw)
    ensure_writable_dir(paths.audio)

    def refuse(entry: Entry, clip: ClipStatus | None, category: str, reason: str, *, record: bool = True) -> None:
        result.reject(str(entry.copy), entry.member, category, reason, clip.clip_id if clip else None)
        if record and clip is not None and clip.clip_id not in rejections:
            rejections[clip.clip_id] = f"import: {entry.member}: {reason}"

    def apply(entry: Entry, clip: ClipStatus, out: Examined) -> None:
        if out.rejected is not None:
            refuse(entry, clip, out.rejected.category, out.rejected.reason, record=clip.clip_id not in adopted)
        elif clip.clip_id in adopted:
            if out.sha256 == adopted[clip.clip_id]:
                result.identical += 1
            else:
                result.duplicates += 1
        else:
            keep(ledger, paths, entry, clip, out)
            adopted[clip.clip_id] = out.sha256
            result.adopted += 1
            result.label_disagreements += labels.disagrees(entry, clip.clip_id)

    def drain(limit: int) -> None:
        """Apply finished work in entry order until at most ``limit`` entries are in flight."""
        while len(flight) > limit:
            entry, clip, future = flight.popleft()
            apply(entry, clip, future.result())

    flight: deque[tuple[Entry, ClipStatus, Future[Examined]]] = deque()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for entry in progress(entries, total=total, desc="import", quiet=quiet, unit="clip"):
            if entry.notice:
                result.notices.append(f"{entry.member}: {entry.notice}")
                continue
            if entry.skip:
                result.reject(str(entry.copy), entry.member, entry.skip_category, entry.skip)
                continue
            if entry.clip_id is not None:
                clip = catalog.by_clip[entry.clip_id]
            else:
                match = catalog.resolve(entry.name)
                if match.kind == "not-listed":
                    result.not_listed += 1
                    continue
                if match.clip is None or match.kind != "matched":
                    refuse(entry, match.clip, match.kind, match.reason)
                    continue
                clip = match.clip
            if split is not None and clip.split != split:
                result.other_split += 1
            elif clip.clip_id in ok_before:
                had.add(clip.clip_id)
            else:
                flight.append((entry, clip, pool.submit(examine, entry, clip)))  # reading goes on meanwhile
                drain(size)
        drain(0)
    result.already_had += len(had)
    for clip_id, reason in rejections.items():
        row = catalog.by_clip[clip_id]
        if clip_id not in adopted and clip_id not in ok_before and row.last_error != reason:
            ledger.mark(clip_id, row.status, error=reason, attempts=0)


def examine(entry: Entry, clip: ClipStatus) -> Examined:
    """Read, decode and check one entry for ``clip``; the bytes to adopt and their sha256, or why not."""
    try:
        payload = entry.read()
        segment = clip.end - clip.start
        if isinstance(payload, Pcm):
            audio, rate = payload.audio(), payload.rate  # scaled by the stored type
            n, duration = check_length(audio, rate, segment)
            data, suffix = payload.flac(n), ".flac"
            audio = audio[:, :n]
            codec = f"pcm_{payload.samples.dtype}"  # as the copy stored it, before the FLAC made here
        else:
            audio, rate = decode(payload, path=entry.path, suffix=entry.suffix, segment=segment)
            _, duration = check_length(audio, rate, segment)
            data, suffix = payload, entry.suffix
            codec = codec_of(data, suffix)
        mono = to_mono_16k(audio, rate)  # what resample would make of the adopted file
        stream = {"codec": codec, "sample_rate": rate, "channels": int(audio.shape[0])}
        del audio
    except Rejected as exc:
        return Examined(rejected=exc)
    except OSError as exc:
        return Examined(rejected=Rejected("unreadable", f"cannot read ({exc.strerror or exc})"))
    return Examined(data, hashlib.sha256(data).hexdigest(), duration, suffix, audio=encode_flac(mono),
                    samples=int(mono.size), stream=stream)


def keep(ledger: Ledger, paths: DatasetPaths, entry: Entry, clip: ClipStatus, out: Examined) -> None:
    """Write the adopted bytes under ``raw/`` and the 16 kHz file under ``audio/`` (each atomically), then
    mark the clip ``ok`` with its origin, then record its audio (as resample would, which then finds it done;
    a kill before that record only leaves resample the work it would have had anyway)."""
    relative = Path("raw") / clip.split / f"{clip.clip_id}{out.suffix}"
    target = paths.dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, out.data)
    audio = audio_relpath(clip.split, clip.clip_id)
    (paths.dir / audio).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(paths.dir / audio, out.audio)
    origin = {"via": "import", "format": entry.format, "copy": str(entry.copy.resolve()), "member": entry.member,
              "sha256": out.sha256, **(out.stream or {})}
    ledger.mark(clip.clip_id, "ok", attempts=0, path=str(relative), bytes=len(out.data), sha256=out.sha256,
                duration=out.duration, origin=origin)
    duration = out.samples / AUDIO_RATE
    written = target.stat()  # of the file just written from out.data: its sha256 is out.sha256
    ledger.record_audio(AudioRecord(clip.clip_id, audio, out.samples, duration,
                                    duration < clip.end - clip.start - SHORT_TOLERANCE, written.st_mtime_ns,
                                    len(out.data), out.sha256, written.st_ino, written.st_ctime_ns))


class _LabelCheck:
    """Compares the labels a copy gives with the lists' (MIDs or names; ``#i``: AudioSet class index i)."""

    def __init__(self, ledger: Ledger) -> None:
        classes = ledger.classes()
        self.lookup: dict[str, int] = {}
        for i, c in enumerate(classes):
            self.lookup[c.mid] = self.lookup[c.name] = i
            if len(classes) == AUDIOSET_CLASSES:
                self.lookup[f"#{i}"] = i
        self.weak = {c.clip_id: set(c.weak) for c in ledger.clips()}

    def disagrees(self, entry: Entry, clip_id: str) -> bool:
        if not entry.labels:
            return False
        given = {self.lookup[label] for label in entry.labels if label in self.lookup}
        if not given:
            return False  # labels of another class set (or a folder that names none): nothing to compare
        if not entry.labels_complete:
            return bool(given - self.weak[clip_id])
        return given != self.weak[clip_id]


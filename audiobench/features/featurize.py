"""The featurize stage: 16 kHz audio -> features (VGGish log-mel by default) -> one HDF5 file per split
(docs/features.md).

Work is cut into shards of clips. A worker (a local process, a thread, or a Dask worker) decodes and
featurizes its shard's clips and writes them to one shard file, atomically: that is where their features
stay. The main process takes finished shards in clip-id order and maps their rows into ``<split>.h5.tmp``
(labels, and an HDF5 virtual dataset over the shards: no feature is read or copied), after the rows of the
existing ``<split>.h5`` if there is one; once every shard of the split is in, the file gets its completion
marker and is renamed onto ``<split>.h5``, and only then are the shards no row maps any more deleted (kept
while a reader has the features open: :mod:`audiobench.features.readers`). So:

* a rerun adds only clips not yet in the file (existing rows first, then the new clips sorted by clip id),
  and recomputes a clip whose ``audio/`` file is no longer the one its row was computed from (each row keeps
  the sha256 of its audio file; a changed clip leaves its old place and joins the new ones);
* after a kill at any moment, a rerun reuses the finished shards and gives the same file as a run that was
  never interrupted (same datasets, same attributes except ``created``);
* a shard of the existing file that is missing or fails a reader's checks (damaged, cut short, zeroed, another
  shard's file: :mod:`audiobench.features.integrity`) has its clips computed again;
* a clip that cannot be read, is not 16 kHz mono, or is shorter than one frame is reported by id and reason
  and left out; the others are written.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from audiobench.features.store import (ExistingSplit, ShardIndex, ShardRow, SplitHeader, SplitWriter, feature_file,
                                       read_existing, read_shard_index, shard_dir, shard_name, split_path, write_shard)
from audiobench.core.records import AudioRecord, Clip, ClipFailure
from audiobench.data.decode import read_audio, read_bytes
from audiobench.core.errors import AudiobenchError
from audiobench.features.base import DEFAULT_EXTRACTOR, Extractor, FeatureDtype, check_dtype, get_extractor
from audiobench.data.index import sha256_file
from audiobench.core.layout import (BUSY_HINT, DatasetPaths, disk_full_error, ensure_writable_dir, is_disk_full,
                                    require_inside, resolve_root, validate_name)
from audiobench.data.ledger import Ledger
from audiobench.core.locking import exclusive
from audiobench.core.parallel import Backend, map_unordered
from audiobench.features.readers import unread

__all__ = ["ClipFailure", "FeaturizeResult", "SplitResult", "feature_file", "featurize", "featurize_clip"]

log = logging.getLogger(__name__)
MAX_SHARD_CLIPS = 32  # clips per task at most: little is lost to a kill, and workers stay balanced
MIN_SHARD_CLIPS = 2  # the last tasks: one file per clip would cost more than it balances


@dataclass(frozen=True)
class SplitResult:
    """One split after the run: rows in its file, how many this run added, how many were there already."""

    split: str
    path: Path | None  # None when no clip of the split has features yet
    clips: int
    added: int
    present: int
    failures: tuple[ClipFailure, ...] = ()
    no_audio: int = 0  # clips the ledger lists but that have no 16 kHz audio yet (not fetched / resampled)
    updated: int = 0  # rows recomputed because their audio file changed (not counted in added or present)

    @property
    def failed(self) -> int:
        return len(self.failures)


@dataclass(frozen=True)
class FeaturizeResult:
    dataset: str
    feature_id: str
    directory: Path
    splits: tuple[SplitResult, ...]

    @property
    def failures(self) -> list[ClipFailure]:
        return [f for s in self.splits for f in s.failures]

    @property
    def empty(self) -> bool:
        """No split holds a featurized clip (every clip failed): nothing for train (the CLI exits non-zero)."""
        return not any(s.clips for s in self.splits)

    def summary(self) -> str:
        """What a person reads at the end: one row per split (clips in the file, added now, recomputed for
        changed audio, already present, failed, without audio), the folder, then each failed clip with its
        reason."""
        import pandas as pd

        if not self.splits:
            return f"{self.dataset}: no splits"
        rows = [{"split": s.split, "clips": s.clips, "added": s.added, "updated": s.updated, "present": s.present,
                 "failed": s.failed, "no_audio": s.no_audio} for s in self.splits]
        lines = [pd.DataFrame(rows).to_string(index=False), f"features: {self.directory}"]
        lines += [f"failed {f.clip_id}: {f.reason}" for f in self.failures]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["directory"] = str(self.directory)
        for s in out["splits"]:
            s["path"] = str(s["path"]) if s["path"] else None
        return out


@dataclass(frozen=True)
class ShardTask:
    """One worker task: featurize these clips into one shard file. Small and picklable (Dask-friendly)."""

    split: str
    dataset_dir: Path
    shard: Path
    clips: tuple[tuple[str, str, int], ...]  # (clip id, audio path relative to dataset_dir, samples per ledger)
    feature_id: str
    dtype: str
    extractor: Extractor = field(default_factory=get_extractor)


@dataclass(frozen=True)
class ShardOutcome:
    split: str
    shard: Path | None  # None when no clip of the task could be featurized
    failures: tuple[ClipFailure, ...]
    index: ShardIndex | None = None  # what the shard holds, as written (the main process need not open it)


def featurize_clip(path: Path, *, samples: int | None = None, extractor: Extractor | None = None,
                   data: bytes | None = None) -> np.ndarray:
    """Decode one mono file at the extractor's rate (``data``: its bytes, already read) and return its
    ``[frames, dims]`` features (default extractor: VGGish log-mel); an :class:`AudiobenchError` says why not."""
    extractor = extractor or get_extractor()
    audio, rate = read_audio(path, data=data)
    if rate != extractor.sample_rate:
        raise AudiobenchError(f"sample rate {rate} Hz, expected {extractor.sample_rate} Hz "
                              "(rerun `audiobench resample`)")
    if audio.shape[0] != 1:
        raise AudiobenchError(f"{audio.shape[0]} channels, expected mono (rerun `audiobench resample`)")
    if samples is not None and audio.shape[1] != samples:
        raise AudiobenchError(f"{audio.shape[1]} samples, the ledger records {samples} "
                              "(file changed since resample? rerun `audiobench resample`)")
    features = extractor.extract(extractor.check_waveform(audio[0], rate))
    expected = (extractor.num_frames(audio.shape[1]), extractor.dims)
    if features.shape != expected:  # a bug of the extractor, not of the clip: stop the run with a traceback
        raise ValueError(f"feature extractor {extractor.name} returned shape {features.shape} for "
                         f"{audio.shape[1]} samples; its num_frames and dims say {expected}")
    return features


def compute_shard(task: ShardTask) -> ShardOutcome:
    """Worker side: featurize the task's clips and write the ones that worked as one shard file."""
    ids: list[str] = []
    mels: list[np.ndarray] = []
    hashes: list[str] = []
    failures: list[ClipFailure] = []
    for clip_id, rel, samples in task.clips:
        path = task.dataset_dir / rel
        try:
            data = read_bytes(path)  # read once: the hash recorded is of exactly the bytes decoded
            mels.append(featurize_clip(path, samples=samples, extractor=task.extractor, data=data))
            hashes.append(hashlib.sha256(data).hexdigest())
            ids.append(clip_id)
        except AudiobenchError as exc:
            failures.append(ClipFailure(clip_id, str(exc)))
    if not ids:
        return ShardOutcome(task.split, None, tuple(failures))
    index = write_shard(task.shard, ids, mels, feature_id=task.feature_id, dtype=task.dtype, audio_sha256=hashes,
                        padding=task.extractor.padding_value)
    return ShardOutcome(task.split, task.shard, tuple(failures), index)


def featurize(dataset: str, *, root: Path | None = None, jobs: int = 1, backend: Backend = "loky",
              scheduler: str | None = None, dtype: FeatureDtype = "float32", splits: Sequence[str] | None = None,
              quiet: bool = False, shard_size: int | None = None, features: str = DEFAULT_EXTRACTOR,
              wait: bool = False) -> FeaturizeResult:
    """Compute the features of every clip with audio into ``features/<feature-id>/<split>.h5``.

    ``features`` names a registered extractor (:func:`audiobench.features.base.extractors`): ``vggish-logmel``
    (the default), ``kaldi-fbank-128``, or one registered by the caller; the feature id is its name and a hash
    of its parameters and ``dtype``.

    ``jobs`` workers run on ``backend`` (``dask`` with ``scheduler``, a ``tcp://`` address, uses a cluster
    sharing the storage root). ``dtype`` is the storage type (``float16`` halves the files). ``splits``
    defaults to every split of the dataset. ``shard_size`` fixes the clips per task (default: sizes shrinking
    from 32 to 2 as the work left shrinks). Returns per split the rows in the file, rows added, rows already
    present, and the clips that failed (by id and reason); a failing clip never stops the others. When no
    clip of those splits has 16 kHz audio, an :class:`AudiobenchError` names the stage to run first.

    While another process writes the dataset (fetch, import, resample, synth) or featurizes the same recipe,
    the run fails at once naming that process, or with ``wait`` waits for it. Featurize runs of other
    recipes (another extractor or dtype) share the dataset and run side by side.

    >>> result = featurize("synth", jobs=2)            # doctest: +SKIP
    >>> [(s.split, s.clips, s.failed) for s in result.splits]
    [('train', 600, 0), ('val', 200, 0), ('test', 200, 0)]
    """
    check_dtype(dtype)
    extractor = get_extractor(features)
    if shard_size is not None and shard_size < 1:
        raise AudiobenchError(f"shard_size must be at least 1, got {shard_size}")
    paths = DatasetPaths(resolve_root(root), dataset)
    ledger_path = paths.require_ledger()
    with Ledger(ledger_path) as ledger:
        _require_audio(ledger, list(_choose_splits(ledger, splits, dataset)), dataset)
    fid = extractor.feature_id(dtype)
    feature_dir = ensure_writable_dir(paths.feature_dir(fid))
    # The dataset shared (its ledger and audio/ stay as planned: no fetch, import or resample meanwhile; other
    # recipes may featurize beside), the feature folder alone (one writer of these files).
    busy = f"another `audiobench featurize {dataset}` is writing {feature_dir}"
    with paths.reading(wait=wait), exclusive(feature_dir, busy=busy, wait=wait, hint=BUSY_HINT):
        with Ledger(ledger_path) as ledger:
            classes = tuple(ledger.classes())
            plans = [_plan_split(ledger, feature_dir, split,
                                 SplitHeader(dataset, split, classes, strong, fid, dtype, extractor), paths.dir,
                                 jobs=jobs)
                     for split, strong in _choose_splits(ledger, splits, dataset).items()]
        _assign_tasks(plans, paths.dir, jobs=jobs, shard_size=shard_size)
        assemblers = {p.split: _Assembler(p) for p in plans}
        try:
            for assembler in assemblers.values():
                assembler.drain()  # rows from shards a killed run left
            tasks = [t for p in plans for t in p.tasks]
            for outcome in map_unordered(compute_shard, tasks, jobs=jobs, backend=backend, scheduler=scheduler,
                                         desc=f"featurize {dataset}", quiet=quiet, unit="shard"):
                assemblers[outcome.split].receive(outcome)
            results = tuple(a.finish() for a in assemblers.values())
        except Exception as exc:
            if is_disk_full(exc):  # finished shards stay: a rerun with more space starts from them
                raise disk_full_error(feature_dir, needed=sum(p.bytes_needed() for p in plans)) from None
            raise
        finally:
            for assembler in assemblers.values():
                assembler.abort()
    return FeaturizeResult(dataset, fid, feature_dir, results)


def _require_audio(ledger: Ledger, splits: Sequence[str], dataset: str) -> None:
    """An empty stage says so, naming the stage before it, instead of writing a table of zeros."""
    if any(ledger.audio(split=split) for split in splits):
        return
    where = f"{dataset} (split {', '.join(splits)})" if set(splits) != set(ledger.splits()) else dataset
    if not any(ledger.statuses(split=split, status="ok") for split in splits):
        raise AudiobenchError(f"no clips fetched for {where}: run `audiobench fetch {dataset}` first")
    raise AudiobenchError(f"no clips converted for {where}: run `audiobench resample {dataset}` first")


def _choose_splits(ledger: Ledger, splits: Sequence[str] | None, dataset: str) -> dict[str, bool]:
    known = ledger.splits()
    for name in known:  # a ledger written before split names were checked could hold any name
        validate_name(name, what="split name", where=str(ledger.path))
    if not splits:
        return known
    unknown = [s for s in splits if s not in known]
    if unknown:
        raise AudiobenchError(f"dataset {dataset!r} has no split {', '.join(map(repr, unknown))} "
                              f"(it has {', '.join(known) or 'none'})")
    return {s: known[s] for s in dict.fromkeys(splits)}


@dataclass
class _SplitPlan:
    """What one split needs: the clips to add (sorted), which shard holds or will hold each, the tasks."""

    header: SplitHeader
    path: Path
    existing: ExistingSplit | None
    clips: dict[str, Clip]
    audio: dict[str, AudioRecord]
    pending: list[str]  # clip ids to add, sorted: new clips and clips whose audio changed
    t_max: int  # frames of the longest clip the file may hold after this run (planned from the ledger)
    stale: frozenset[str] = frozenset()  # rows of the existing file to recompute (their audio changed)
    audio_sha256: dict[str, str] = field(default_factory=dict)  # clip id -> sha256 of its audio file now
    shard_of: dict[str, Path] = field(default_factory=dict)  # pending clip id -> shard (finished or to compute)
    reused: list[ShardIndex] = field(default_factory=list)
    tasks: list[ShardTask] = field(default_factory=list)

    @property
    def split(self) -> str:
        return self.header.split

    @property
    def shards(self) -> Path:
        return shard_dir(self.path.parent, self.split)

    @property
    def keep(self) -> np.ndarray | None:
        """Which rows of the existing file are copied (``None``: all of them)."""
        if self.existing is None or not self.stale:
            return None
        return np.array([cid not in self.stale for cid in self.existing.clip_ids], dtype=bool)

    def kept(self) -> int:
        return len(self.existing.clip_ids) - len(self.stale) if self.existing else 0

    def bytes_needed(self) -> int:
        """About what this run writes for the split: the new split file (frame targets) and shards."""
        frame = self.header.extractor.dims * np.dtype(self.header.dtype).itemsize
        split_file = (self.kept() + len(self.pending)) * self.t_max * (
            len(self.header.classes) if self.header.has_strong else 0)
        shards = sum(frame * self.header.extractor.num_frames(self.audio[cid].samples) for cid in self.pending)
        if self.existing and not self.existing.shapes:  # a file storing its own features: kept rows move out once
            shards += self.kept() * self.existing.t_max * frame
        return split_file + shards


def _plan_split(ledger: Ledger, feature_dir: Path, split: str, header: SplitHeader, dataset_dir: Path, *,
                jobs: int = 1) -> _SplitPlan:
    clips = {c.clip_id: c for c in ledger.clips(split=split)}
    audio = ledger.audio(split=split)
    path = split_path(feature_dir, split)
    _delete(path.with_name(path.name + ".tmp"), feature_dir)  # a killed run's unfinished file
    existing = read_existing(path, header)
    # Hashes tell changed audio from the rows of a split file, and reusable shards from stale ones: a split with
    # neither (its first run) needs none before its workers hash what they decode.
    needs_hashes = existing is not None or any(shard_dir(feature_dir, split).glob("shard-*.h5"))
    hashes = _hash_audio(dataset_dir, audio, jobs=jobs) if needs_hashes else {}
    recorded = dict(zip(existing.clip_ids, existing.audio_sha256)) if existing else {}
    # A row is recomputed when its audio file is there and is not the one it was computed from (rows of a file
    # written before hashes were recorded have none, so they are recomputed once). A row whose audio file is
    # gone keeps its features: there is nothing to compute them from.
    stale = frozenset(cid for cid, sha in recorded.items() if cid in hashes and hashes[cid] != sha)
    stale |= existing.lost if existing else frozenset()  # rows whose shard file is gone: computed again
    pending = sorted(cid for cid in audio if cid not in recorded or cid in stale)
    frames = {cid: header.extractor.num_frames(audio[cid].samples) for cid in pending}
    if existing and stale:  # the file shrinks back when a changed clip was the longest
        t_kept = max([n for cid, n in zip(existing.clip_ids, existing.lengths) if cid not in stale], default=0)
    else:
        t_kept = existing.t_max if existing else 0
    t_max = max([t_kept, *frames.values()])
    plan = _SplitPlan(header, path, existing, clips, audio, pending, t_max, stale, hashes)
    if plan.shards.is_dir():
        for tmp in plan.shards.glob("*.tmp"):
            _delete(tmp, plan.shards.parent)
        live = existing.shards if existing else frozenset()
        broken = {path.parent / name for name in existing.broken} if existing else set()
        for shard in sorted(plan.shards.glob("shard-*.h5")):
            if shard in live or shard in broken:  # holds rows of the split file, or failed its checks
                continue
            index = read_shard_index(shard, feature_id=header.feature_id, dtype=header.dtype)
            if index is None or not index.intact():
                continue
            useful = [cid for cid, n, sha in zip(index.clip_ids, index.lengths.tolist(), index.audio_sha256)
                      if cid in frames and cid not in plan.shard_of and n == frames[cid] and sha == hashes.get(cid)]
            if useful:
                plan.reused.append(index)
                plan.shard_of.update(dict.fromkeys(useful, shard))
    return plan


def _hash_audio(dataset_dir: Path, audio: dict[str, AudioRecord], *, jobs: int) -> dict[str, str]:
    """clip id -> sha256 of its audio file, for the files that can be read (threads: hashing frees the GIL)."""
    def one(record: AudioRecord) -> tuple[str, str | None]:
        try:
            return record.clip_id, sha256_file(dataset_dir / record.path)
        except OSError:
            return record.clip_id, None

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, os.cpu_count() or 1, 8))) as pool:
        return {cid: sha for cid, sha in pool.map(one, audio.values()) if sha is not None}


def _delete(path: Path, folder: Path) -> None:
    """Delete ``path``, which must lie inside ``folder`` (see :func:`audiobench.core.layout.require_inside`)."""
    require_inside(path, folder).unlink(missing_ok=True)


def _assign_tasks(plans: Sequence[_SplitPlan], dataset_dir: Path, *, jobs: int, shard_size: int | None) -> None:
    """Cut each split's clips without a shard into tasks.

    By default the sizes shrink as the work left shrinks (guided scheduling: about a quarter of each worker's
    share, from 32 clips down to 2), so large tasks keep overhead low and small last ones keep every worker
    busy to the end.
    """
    left = sum(len(p.pending) - len(p.shard_of) for p in plans)
    for plan in plans:
        todo = [cid for cid in plan.pending if cid not in plan.shard_of]
        if todo:
            plan.shards.mkdir(parents=True, exist_ok=True)
        a = 0
        while a < len(todo):
            size = shard_size or min(MAX_SHARD_CLIPS, max(MIN_SHARD_CLIPS, math.ceil(left / (4 * max(jobs, 1)))))
            ids = todo[a:a + size]
            shard = plan.shards / shard_name(ids, [plan.audio_sha256.get(cid, "") for cid in ids])
            clips = tuple((cid, plan.audio[cid].path, plan.audio[cid].samples) for cid in ids)
            plan.tasks.append(ShardTask(plan.split, dataset_dir, shard, clips, plan.header.feature_id,
                                        plan.header.dtype, plan.header.extractor))
            plan.shard_of.update(dict.fromkeys(ids, shard))
            a += len(ids)
            left -= len(ids)


class _Assembler:
    """Main-process side of one split: maps the rows of finished shards into the split file in clip-id order."""

    def __init__(self, plan: _SplitPlan) -> None:
        self.plan = plan
        self.ready: dict[Path, ShardIndex] = {index.path: index for index in plan.reused}
        self.failures: dict[str, ClipFailure] = {}
        self.outstanding = len(plan.tasks)
        self.position = 0  # next entry of plan.pending to write
        self.writer: SplitWriter | None = None
        self.added = 0
        self.updated = 0

    def receive(self, outcome: ShardOutcome) -> None:
        self.outstanding -= 1
        self.failures.update((f.clip_id, f) for f in outcome.failures)
        if outcome.shard is not None:
            if outcome.index is None or not outcome.shard.is_file():
                raise AudiobenchError(f"{outcome.shard}: a worker reported it written but it is not there "
                                      "(is the storage root shared with every Dask worker?)")
            self.ready[outcome.shard] = outcome.index
        self.drain()

    def drain(self) -> None:
        """Write every pending clip, in order, up to the first whose shard is not finished yet."""
        pending = self.plan.pending
        clips: list[Clip] = []
        rows: list[ShardRow] = []
        while self.position < len(pending):
            cid = pending[self.position]
            if cid not in self.failures:
                index = self.ready.get(self.plan.shard_of[cid])
                if index is None:
                    break
                clips.append(self.plan.clips[cid])
                rows.append(index.row(cid))
            self.position += 1
        self._write(clips, rows)

    def _write(self, clips: list[Clip], rows: list[ShardRow]) -> None:
        if not clips:
            return
        writer = self._open()
        writer.link(clips, rows)
        updated = sum(1 for c in clips if c.clip_id in self.plan.stale)
        self.updated += updated
        self.added += len(clips) - updated

    def _open(self) -> SplitWriter:
        """The split file being written, made on first use with the existing rows that are kept."""
        if self.writer is None:
            plan = self.plan
            self.writer = SplitWriter(plan.path, plan.header, capacity=plan.kept() + len(plan.pending),
                                      t_max=plan.t_max)
            if plan.existing:
                self.writer.copy_existing(plan.existing, keep=plan.keep)
        return self.writer

    def finish(self) -> SplitResult:
        """Commit the split file, then delete the shards it does not map; the split's result."""
        plan = self.plan
        if self.outstanding or self.position != len(plan.pending):
            raise RuntimeError(f"split {plan.split}: {self.outstanding} tasks outstanding, "
                               f"{len(plan.pending) - self.position} clips unwritten")
        path = plan.path if plan.existing else None
        used = plan.existing.shards if plan.existing else frozenset()
        if plan.stale:
            self._open()  # even when no recomputed row arrived: the changed clips' old rows must go
        if self.writer is not None:
            path = self.writer.commit()
            used = self.writer.shard_files
            self.writer = None
        self._sweep(used)
        present = plan.kept()
        failures = tuple(self.failures[cid] for cid in sorted(self.failures))
        no_audio = sum(1 for cid in plan.clips if cid not in plan.audio)
        return SplitResult(plan.split, path, present + self.added + self.updated, self.added, present, failures,
                           no_audio, self.updated)

    def _sweep(self, used: frozenset[Path]) -> None:
        """Delete the shards no row maps any more (superseded, unused, or a killed run's), unless a reader has
        the features open: it may read them through the split file it opened (:mod:`.readers`)."""
        plan = self.plan
        feature_dir = plan.path.parent
        with unread(feature_dir) as free:
            if not free:
                left = [s for s in plan.shards.iterdir() if s not in used] if plan.shards.is_dir() else []
                if left:
                    log.info("%s: %d shard files no row maps any more are kept while a reader has the features "
                             "open; the next featurize deletes them", plan.shards, len(left))
                return
            if plan.shards.is_dir():
                for shard in plan.shards.iterdir():
                    if shard not in used:
                        _delete(shard, feature_dir / "shards")
                if not any(plan.shards.iterdir()):
                    require_inside(plan.shards, feature_dir).rmdir()
            if plan.shards.parent.is_dir() and not any(plan.shards.parent.iterdir()):
                require_inside(plan.shards.parent, feature_dir).rmdir()

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None

"""The featurize stage: 16 kHz audio -> VGGish log-mel -> one HDF5 file per split (DESIGN §4).

Work is cut into shards of clips. A worker (a local process, a thread, or a Dask worker) decodes and
featurizes its shard's clips and writes them to one small shard file, atomically. The main process reads
finished shards in clip-id order and streams their rows into ``<split>.h5.tmp``, after the rows of the
existing ``<split>.h5`` if there is one; once every shard of the split is in, the file gets its completion
marker and is renamed onto ``<split>.h5``, and only then are the shards deleted. So:

* a rerun adds only clips not yet in the file (existing rows first, then the new clips sorted by clip id);
* after a kill at any moment, a rerun reuses the finished shards and gives the same file as a run that was
  never interrupted (same datasets, same attributes except ``created``);
* a clip that cannot be read, is not 16 kHz mono, or is shorter than one frame is reported by id and reason
  and left out; the others are written.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from audiobench.cache import (ExistingSplit, ShardIndex, SplitHeader, SplitWriter, feature_file, read_existing,
                              read_shard_index, shard_dir, shard_name, split_path, write_shard)
from audiobench.clips import AudioRecord, Clip
from audiobench.decode import read_audio
from audiobench.errors import AudiobenchError
from audiobench.features import DEFAULT_PARAMS, FeatureDtype, FeatureParams, check_dtype, feature_id, logmel
from audiobench.layout import DatasetPaths, ensure_writable_dir, resolve_root
from audiobench.ledger import Ledger
from audiobench.locking import exclusive
from audiobench.parallel import Backend, map_unordered

__all__ = ["ClipFailure", "FeaturizeResult", "SplitResult", "feature_file", "featurize", "featurize_clip"]

MAX_SHARD_CLIPS = 32  # clips per task at most: little is lost to a kill, and workers stay balanced
MIN_SHARD_CLIPS = 2  # the last tasks: one file per clip would cost more than it balances
_ROWS_PER_WRITE = 32  # rows the main process gathers before one write into the split file


@dataclass(frozen=True)
class ClipFailure:
    clip_id: str
    reason: str


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

    def summary(self) -> str:
        """What a person reads at the end: one row per split (clips in the file, added now, already
        present, failed, without audio), the folder, then each failed clip with its reason."""
        import pandas as pd

        if not self.splits:
            return f"{self.dataset}: no splits"
        rows = [{"split": s.split, "clips": s.clips, "added": s.added, "present": s.present, "failed": s.failed,
                 "no_audio": s.no_audio} for s in self.splits]
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
    params: FeatureParams = DEFAULT_PARAMS


@dataclass(frozen=True)
class ShardOutcome:
    split: str
    shard: Path | None  # None when no clip of the task could be featurized
    failures: tuple[ClipFailure, ...]


def featurize_clip(path: Path, *, samples: int | None = None, params: FeatureParams = DEFAULT_PARAMS) -> np.ndarray:
    """Decode one 16 kHz mono file and return its log-mel; an :class:`AudiobenchError` says why not."""
    audio, rate = read_audio(path)
    if rate != params.sample_rate:
        raise AudiobenchError(f"sample rate {rate} Hz, expected {params.sample_rate} Hz (rerun `audiobench resample`)")
    if audio.shape[0] != 1:
        raise AudiobenchError(f"{audio.shape[0]} channels, expected mono (rerun `audiobench resample`)")
    if samples is not None and audio.shape[1] != samples:
        raise AudiobenchError(f"{audio.shape[1]} samples, the ledger records {samples} "
                              "(file changed since resample? rerun `audiobench resample`)")
    return logmel(audio[0], rate, params=params)


def compute_shard(task: ShardTask) -> ShardOutcome:
    """Worker side: featurize the task's clips and write the ones that worked as one shard file."""
    ids: list[str] = []
    mels: list[np.ndarray] = []
    failures: list[ClipFailure] = []
    for clip_id, rel, samples in task.clips:
        try:
            mels.append(featurize_clip(task.dataset_dir / rel, samples=samples, params=task.params))
            ids.append(clip_id)
        except AudiobenchError as exc:
            failures.append(ClipFailure(clip_id, str(exc)))
    if not ids:
        return ShardOutcome(task.split, None, tuple(failures))
    write_shard(task.shard, ids, mels, feature_id=task.feature_id, dtype=task.dtype)
    return ShardOutcome(task.split, task.shard, tuple(failures))


def featurize(dataset: str, *, root: Path | None = None, jobs: int = 1, backend: Backend = "loky",
              scheduler: str | None = None, dtype: FeatureDtype = "float32", splits: Sequence[str] | None = None,
              quiet: bool = False, shard_size: int | None = None) -> FeaturizeResult:
    """Compute the VGGish log-mel of every clip with audio into ``features/<feature-id>/<split>.h5``.

    ``jobs`` workers run on ``backend`` (``dask`` with ``scheduler``, a ``tcp://`` address, uses a cluster
    sharing the storage root). ``dtype`` is the storage type (``float16`` halves the files). ``splits``
    defaults to every split of the dataset. ``shard_size`` fixes the clips per task (default: sizes shrinking
    from 32 to 2 as the work left shrinks). Returns per split the rows in the file, rows added, rows already
    present, and the clips that failed (by id and reason); a failing clip never stops the others.

    >>> result = featurize("synth", jobs=2)            # doctest: +SKIP
    >>> [(s.split, s.clips, s.failed) for s in result.splits]
    [('train', 600, 0), ('val', 200, 0), ('test', 200, 0)]
    """
    check_dtype(dtype)
    if shard_size is not None and shard_size < 1:
        raise AudiobenchError(f"shard_size must be at least 1, got {shard_size}")
    paths = DatasetPaths(resolve_root(root), dataset)
    ledger_path = paths.require_ledger()
    fid = feature_id(DEFAULT_PARAMS, dtype)
    feature_dir = ensure_writable_dir(paths.feature_dir(fid))
    with exclusive(feature_dir, busy=f"another `audiobench featurize {dataset}` is writing {feature_dir}"):
        with Ledger(ledger_path) as ledger:
            classes = tuple(ledger.classes())
            plans = [_plan_split(ledger, feature_dir, split, SplitHeader(dataset, split, classes, strong, fid, dtype))
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
        finally:
            for assembler in assemblers.values():
                assembler.abort()
    return FeaturizeResult(dataset, fid, feature_dir, results)


def _choose_splits(ledger: Ledger, splits: Sequence[str] | None, dataset: str) -> dict[str, bool]:
    known = ledger.splits()
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
    pending: list[str]  # clip ids to add, sorted
    t_max: int  # frames of the longest clip the file may hold after this run (planned from the ledger)
    shard_of: dict[str, Path] = field(default_factory=dict)  # pending clip id -> shard (finished or to compute)
    reused: list[ShardIndex] = field(default_factory=list)
    tasks: list[ShardTask] = field(default_factory=list)

    @property
    def split(self) -> str:
        return self.header.split

    @property
    def shards(self) -> Path:
        return shard_dir(self.path.parent, self.split)


def _plan_split(ledger: Ledger, feature_dir: Path, split: str, header: SplitHeader) -> _SplitPlan:
    clips = {c.clip_id: c for c in ledger.clips(split=split)}
    audio = ledger.audio(split=split)
    path = split_path(feature_dir, split)
    path.with_name(path.name + ".tmp").unlink(missing_ok=True)  # a killed run's unfinished file
    existing = read_existing(path, header)
    present = set(existing.clip_ids) if existing else set()
    pending = sorted(cid for cid in audio if cid not in present)
    frames = {cid: header.params.num_frames(audio[cid].samples) for cid in pending}
    t_max = max([existing.t_max if existing else 0, *frames.values()])
    plan = _SplitPlan(header, path, existing, clips, audio, pending, t_max)
    if plan.shards.is_dir():
        for tmp in plan.shards.glob("*.tmp"):
            tmp.unlink(missing_ok=True)
        for shard in sorted(plan.shards.glob("shard-*.h5")):
            index = read_shard_index(shard, feature_id=header.feature_id, dtype=header.dtype)
            if index is None or not index.intact():
                continue
            useful = [cid for cid, n in zip(index.clip_ids, index.lengths.tolist())
                      if cid in frames and cid not in plan.shard_of and n == frames[cid]]
            if useful:
                plan.reused.append(index)
                plan.shard_of.update(dict.fromkeys(useful, shard))
    return plan


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
            shard = plan.shards / shard_name(ids)
            clips = tuple((cid, plan.audio[cid].path, plan.audio[cid].samples) for cid in ids)
            plan.tasks.append(ShardTask(plan.split, dataset_dir, shard, clips, plan.header.feature_id,
                                        plan.header.dtype, plan.header.params))
            plan.shard_of.update(dict.fromkeys(ids, shard))
            a += len(ids)
            left -= len(ids)


class _Assembler:
    """Main-process side of one split: streams finished shards into the split file in clip-id order."""

    def __init__(self, plan: _SplitPlan) -> None:
        self.plan = plan
        self.ready: dict[Path, ShardIndex] = {index.path: index for index in plan.reused}
        self.failures: dict[str, ClipFailure] = {}
        self.outstanding = len(plan.tasks)
        self.position = 0  # next entry of plan.pending to write
        self.writer: SplitWriter | None = None
        self.added = 0
        self._loaded: Path | None = None  # the shard whose features are in _buffer
        self._buffer: np.ndarray | None = None
        self._where: dict[str, tuple[int, int]] = {}

    def receive(self, outcome: ShardOutcome) -> None:
        self.outstanding -= 1
        self.failures.update((f.clip_id, f) for f in outcome.failures)
        if outcome.shard is not None:
            index = read_shard_index(outcome.shard, feature_id=self.plan.header.feature_id,
                                     dtype=self.plan.header.dtype)
            if index is None:
                raise AudiobenchError(f"{outcome.shard}: a worker reported it written but it cannot be read "
                                      "(is the storage root shared with every Dask worker?)")
            self.ready[outcome.shard] = index
        self.drain()

    def drain(self) -> None:
        """Write every pending clip, in order, up to the first whose shard is not finished yet."""
        pending = self.plan.pending
        clips: list[Clip] = []
        mels: list[np.ndarray] = []
        while self.position < len(pending):
            cid = pending[self.position]
            if cid not in self.failures:
                index = self.ready.get(self.plan.shard_of[cid])
                if index is None:
                    break
                if index.path != self._loaded or len(clips) == _ROWS_PER_WRITE:
                    self._write(clips, mels)  # before the shard buffer is refilled: mels are views into it
                    clips, mels = [], []
                clips.append(self.plan.clips[cid])
                mels.append(self._frames(index, cid))
            self.position += 1
        self._write(clips, mels)

    def _frames(self, index: ShardIndex, clip_id: str) -> np.ndarray:
        """A clip's rows, a view into one reused buffer holding its shard (no fresh 8 MB array per shard)."""
        if self._loaded != index.path:
            total = int(index.lengths.sum())
            if self._buffer is None or self._buffer.shape[0] < total:
                n_mels = self.plan.header.params.num_mel_bins
                self._buffer = np.empty((max(total, MAX_SHARD_CLIPS * self.plan.t_max), n_mels),
                                        dtype=self.plan.header.dtype)
            index.read_logmel(out=self._buffer[:total])
            self._where = {cid: (int(o), int(n)) for cid, o, n in zip(index.clip_ids, index.offsets, index.lengths)}
            self._loaded = index.path
        offset, n = self._where[clip_id]
        return self._buffer[offset:offset + n]

    def _write(self, clips: list[Clip], mels: list[np.ndarray]) -> None:
        if not clips:
            return
        if self.writer is None:
            existing = self.plan.existing
            capacity = (len(existing.clip_ids) if existing else 0) + len(self.plan.pending)
            self.writer = SplitWriter(self.plan.path, self.plan.header, capacity=capacity, t_max=self.plan.t_max)
            if existing:
                self.writer.copy_existing(existing)
        self.writer.append(clips, mels)
        self.added += len(clips)

    def finish(self) -> SplitResult:
        """Commit the split file, then delete its shards; the split's result."""
        plan = self.plan
        if self.outstanding or self.position != len(plan.pending):
            raise RuntimeError(f"split {plan.split}: {self.outstanding} tasks outstanding, "
                               f"{len(plan.pending) - self.position} clips unwritten")
        path = plan.path if plan.existing else None
        if self.writer is not None:
            path = self.writer.commit()
            self.writer = None
        self._loaded = self._buffer = None
        if plan.shards.is_dir():  # every usable row is now in the split file: the shards are spent
            for shard in plan.shards.iterdir():
                shard.unlink(missing_ok=True)
            plan.shards.rmdir()
        if plan.shards.parent.is_dir() and not any(plan.shards.parent.iterdir()):
            plan.shards.parent.rmdir()
        present = len(plan.existing.clip_ids) if plan.existing else 0
        failures = tuple(self.failures[cid] for cid in sorted(self.failures))
        no_audio = sum(1 for cid in plan.clips if cid not in plan.audio)
        return SplitResult(plan.split, path, present + self.added, self.added, present, failures, no_audio)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None

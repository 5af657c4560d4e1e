"""The HDF5 feature cache: one small file per split, over shard files written once (docs/features.md).

``features/<feature-id>/<split>.h5`` holds ``N`` clips, padded to ``T_max`` frames:

* ``logmel`` ``[N, T_max, dims]`` float32 (or float16), padded with the extractor's padding value (VGGish:
  64 dims, ``log(0.01)``): an HDF5 virtual dataset whose rows lie in the shard files
  ``shards/<split>/shard-<hash>.h5`` next to it (named relative to the split file, so the feature folder can
  be moved or copied whole); ``length`` int32 ``[N]``, the true frame counts;
* ``clip_id``, ``ytid`` (UTF-8 strings: the recording's ID in its source, a YouTube ID for YouTube clips),
  ``start``, ``end`` float64 ``[N]``; ``weak`` uint8 ``[N, C]``;
* ``shards`` (group: ``name``, ``shard_id``, ``crc32``, one entry per shard the ``logmel`` map names): what must
  be found under each name, checked before a row is read (:mod:`audiobench.features.integrity`); absent in
  files written before it was recorded, which are checked against each shard's own CRC-32 and clip ids;
* ``audio_sha256`` (hex strings ``[N]``): the sha256 of the ``audio/`` file each row was computed from, so a
  rerun recomputes a clip whose audio changed (empty in files written before it was recorded);
* splits with strong labels: ``strong`` uint8 ``[N, T_max, C]`` frame targets (see
  :meth:`audiobench.features.base.Extractor.event_frames`) and the group ``events`` with ``clip`` (row), ``class``,
  ``onset``, ``offset``;
* attributes: dataset, split, classes, the extractor's name (``extractor``), ``dims`` and every parameter,
  feature id, dtype, version, created, and ``complete`` (set last). A file without ``extractor`` was written
  before extractors were named: VGGish log-mel, 64 dims.

A worker writes each computed clip once, into a shard (``clip_id``, ``length``, ``logmel`` ``[n, width, 64]``,
each row padded to the shard's longest clip; attributes ``crc32`` and ``shard_id``, its file name), under a
temporary name renamed when whole. A split file is only ever written as
``<split>.h5.tmp`` (labels and the map of its rows onto shards, a few kB a clip), fsynced after the shards
it maps, then renamed with ``os.replace``: a ``<split>.h5`` is always whole and every shard it names was on
disk before it. A killed run leaves at worst a ``.tmp`` that the next run deletes, and finished shards that
it reuses. Shards are fsynced by the main process (in a thread, while the workers go on) only once a split
file is about to name them; a shard left by a killed run carries a CRC-32 of its features, checked before it
is reused, so even a shard that a power cut left half on disk is recomputed, never trusted. Files written
before the shards became the storage (``logmel`` stored in the split file itself) read the same.
"""
from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py
import numpy as np

from audiobench import __version__
from audiobench.core.records import ClassInfo, Clip
from audiobench.core.errors import AudiobenchError
from audiobench.features.base import Extractor, extractor_of, get_extractor
from audiobench.features.integrity import (COMPLETE, STRING, DamagedShard, ShardRef, read_row_map, repair_hint,
                                           sound_shards, write_shard_table)
from audiobench.core.layout import (DatasetPaths, disk_full_error, fsync_path, is_disk_full, replace_durably,
                                    validate_name)
from audiobench.data.ledger import now

STRONG_RULE = ("frame t covers samples [hop*t, hop*t + window) and is 1 for a class when it overlaps an event "
               "[onset, offset) of that class; zero-length events label no frame; padding frames are 0")
_COPY_BLOCK = 64  # rows per read/write when copying an existing split file


def split_path(feature_dir: Path, split: str) -> Path:
    return feature_dir / f"{validate_name(split, what='split name')}.h5"


def shard_dir(feature_dir: Path, split: str) -> Path:
    return feature_dir / "shards" / validate_name(split, what="split name")


def shard_name(clip_ids: Sequence[str], audio_sha256: Sequence[str]) -> str:
    """A shard's file name, from the clips it holds and their audio: the same clips from the same audio
    always give the same name (and the same features), and a clip recomputed because its audio changed goes
    to a new shard, never over the one the split file still maps."""
    text = "\n".join(f"{cid} {sha}" for cid, sha in zip(clip_ids, audio_sha256, strict=True))
    return f"shard-{hashlib.sha256(text.encode()).hexdigest()[:16]}.h5"


def feature_file(paths: DatasetPaths, split: str, feature_id: str | None = None) -> Path:
    """The finished feature file of ``split``, or an error saying which command makes it.

    ``feature_id`` defaults to the dataset's only feature set (:func:`~audiobench.features.choice.choose_feature_set`:
    with several, one must be named).
    """
    from audiobench.features.choice import choose_feature_set

    fid = choose_feature_set(paths, feature_id)
    path = split_path(paths.feature_dir(fid), split)
    if not path.is_file():
        raise AudiobenchError(f"no features for split {split!r} of dataset {paths.name!r} (no {path}); "
                              f"run `audiobench featurize {paths.name}`")
    check_complete(path)
    return path


def check_complete(path: Path) -> None:
    """Raise unless ``path`` is a readable feature file with its completion marker and every shard file that
    holds its features (HDF5 would read the rows of a missing one as padding, without a word)."""
    names = _check_marker(path)
    missing = [path.parent / name for name in names if not (path.parent / name).is_file()]
    if missing:
        with h5py.File(path, "r") as f:
            hint = repair_hint(path, f.attrs)
        raise DamagedShard(f"{path}: the features of some clips lie in {missing[0]}, which is missing "
                           f"({len(missing)} of {len(names)} shard files are); {hint} (or copy the feature "
                           "folder whole)")


def _check_marker(path: Path) -> list[str]:
    """Raise unless ``path`` is a readable feature file with its completion marker; the shard files its
    ``logmel`` maps (relative to its folder; none for a file that stores its own features)."""
    try:
        with h5py.File(path, "r") as f:
            done = bool(f.attrs.get(COMPLETE, False))
            logmel = f.get("logmel")
            names = sorted({m.file_name for m in logmel.virtual_sources()}) if done and logmel.is_virtual else []
    except OSError as exc:
        raise AudiobenchError(f"{path}: not a readable HDF5 feature file ({exc}); delete it and rerun "
                              "`audiobench featurize`") from None
    if not done:
        raise AudiobenchError(f"{path}: has no completion marker (not written by audiobench featurize?); "
                              "delete it and rerun `audiobench featurize`")
    return names


def shard_files(path: Path) -> frozenset[Path]:
    """The shard files holding the features of the finished split file ``path`` (none for a file that stores
    its own)."""
    return frozenset(path.parent / name for name in _check_marker(path))


# -- shards: one task's computed clips, and the storage of their features ----------------------------------

@dataclass(frozen=True)
class ShardRow:
    """Where one clip's features lie: row ``row`` of the shard ``path``, whose ``logmel`` has ``shape``."""

    path: Path
    row: int
    length: int
    audio_sha256: str
    shape: tuple[int, int, int]
    crc32: int | None = None  # of the shard's logmel, as written
    shard_id: str = ""  # the shard's own id ("" for a shard written before shards carried one)


@dataclass(frozen=True)
class ShardIndex:
    """What a finished shard holds: clip ids, their frame counts, and its ``logmel`` shape ``[n, width, 64]``."""

    path: Path
    clip_ids: tuple[str, ...]
    lengths: np.ndarray  # int64 [n]
    shape: tuple[int, int, int]
    crc32: int  # of the logmel bytes, as the worker wrote them
    audio_sha256: tuple[str, ...] = ()  # of each clip's audio file, as the worker decoded it
    shard_id: str = ""  # the file name it was written under ("" for a shard written before ids)

    def read_logmel(self) -> np.ndarray:
        """The shard's ``[n, width, 64]`` features (each row padded past its clip's length)."""
        with h5py.File(self.path, "r") as f:
            return f["logmel"][()]

    def intact(self) -> bool:
        """Whether the features on disk are the ones the worker wrote (their CRC-32 matches)."""
        try:
            return zlib.crc32(self.read_logmel()) == self.crc32
        except (OSError, KeyError):
            return False

    def row(self, clip_id: str) -> ShardRow:
        i = self.clip_ids.index(clip_id)
        return ShardRow(self.path, i, int(self.lengths[i]), self.audio_sha256[i], self.shape, self.crc32,
                        self.shard_id)


def write_shard(path: Path, clip_ids: Sequence[str], logmels: Sequence[np.ndarray], *, feature_id: str,
                dtype: str, audio_sha256: Sequence[str], padding: float) -> ShardIndex:
    """Write computed clips as one shard: ``clip_id``, ``length``, ``audio_sha256``, ``logmel``
    ``[n, width, 64]`` (rows padded with ``padding`` to the longest clip, ``width``) and its CRC-32; its index.

    Written as ``*.tmp`` and renamed, so a shard under its final name was written to the end. A full disk is
    one :class:`~audiobench.core.layout.DiskFullError` (the unfinished file removed), not an HDF5 traceback.
    """
    lengths = np.array([m.shape[0] for m in logmels], dtype=np.int32)
    data = np.empty((len(logmels), int(lengths.max()), logmels[0].shape[1]), dtype=dtype)
    for out, m, n in zip(data, logmels, lengths):
        out[:n] = m
        out[n:] = padding
    with _shard_file(path, needed=data.nbytes) as f:
        f.create_dataset("clip_id", data=list(clip_ids), dtype=STRING)
        f.create_dataset("length", data=lengths)
        f.create_dataset("audio_sha256", data=list(audio_sha256), dtype=STRING)
        f.create_dataset("logmel", data=data)
        f.attrs["feature_id"] = feature_id
        f.attrs["dtype"] = dtype
        f.attrs["crc32"] = crc = zlib.crc32(data)
        f.attrs["shard_id"] = path.name
        f.attrs[COMPLETE] = True
    return ShardIndex(path, tuple(clip_ids), lengths.astype(np.int64), data.shape, crc, tuple(audio_sha256),
                      path.name)


@contextmanager
def _shard_file(path: Path, *, needed: int) -> Iterator[h5py.File]:
    """``path`` opened for writing as ``*.tmp``, renamed onto ``path`` when the block ends without error."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with h5py.File(tmp, "w") as f:
            yield f
        os.replace(tmp, path)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise disk_full_error(path.parent, needed=needed) from None
        raise


def read_shard_index(path: Path, *, feature_id: str, dtype: str) -> ShardIndex | None:
    """The shard's index, or ``None`` when it is unreadable, unfinished, from another recipe, another shard's
    file under this one's name, or in the layout of an earlier version (clips concatenated, not one per row)."""
    try:
        with h5py.File(path, "r") as f:
            if not (f.attrs.get(COMPLETE, False) and f.attrs.get("feature_id") == feature_id
                    and f.attrs.get("dtype") == dtype and f.attrs.get("shard_id", path.name) == path.name):
                return None
            shard_id = str(f.attrs.get("shard_id", ""))
            clip_ids = tuple(f["clip_id"].asstr()[()])
            lengths = f["length"][()].astype(np.int64)
            hashes = tuple(f["audio_sha256"].asstr()[()])
            crc = int(f.attrs["crc32"])
            shape = tuple(int(n) for n in f["logmel"].shape)
            if (len(shape) != 3 or shape[0] != len(clip_ids) or len(lengths) != len(clip_ids)
                    or len(hashes) != len(clip_ids) or int(lengths.max(initial=0)) > shape[1]):
                return None
    except (OSError, KeyError, ValueError):
        return None
    return ShardIndex(path, clip_ids, lengths, shape, crc, hashes, shard_id)


# -- split files -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SplitHeader:
    """What a split file says about itself (its attributes, less ``created`` and ``complete``)."""

    dataset: str
    split: str
    classes: tuple[ClassInfo, ...]
    has_strong: bool
    feature_id: str
    dtype: str
    extractor: Extractor = field(default_factory=get_extractor)

    def attrs(self) -> dict[str, object]:
        out: dict[str, object] = {
            "dataset": self.dataset,
            "split": self.split,
            "class_mids": np.array([c.mid for c in self.classes], dtype=STRING),
            "class_names": np.array([c.name for c in self.classes], dtype=STRING),
            "has_strong": np.bool_(self.has_strong),
            "feature_id": self.feature_id,
            "dtype": self.dtype,
            "audiobench_version": __version__,
        }
        out.update(self.extractor.attrs())  # extractor, dims, padding_value and every parameter
        if self.has_strong:
            out["strong_frame_rule"] = STRONG_RULE
        return out


@dataclass(frozen=True)
class SplitSummary:
    """A split file at a glance, read without its features or labels (for ``status`` and ``--frames``)."""

    path: Path
    split: str
    clips: int
    dtype: str
    longest: int  # frames of the longest clip; 0 for an empty file
    dataset: str = ""  # the dataset the file was made from
    feature_id: str = ""


def summarize_split(path: Path, *, require_shards: bool = True) -> SplitSummary:
    """The clip count, storage dtype and longest clip of a finished split file (an error if unfinished, or,
    with ``require_shards``, if a shard file is missing)."""
    if require_shards:
        check_complete(path)
    else:
        _check_marker(path)
    with h5py.File(path, "r") as f:
        lengths = f["length"][()]
        return SplitSummary(path, str(f.attrs.get("split", path.stem)), int(len(lengths)), str(f.attrs["dtype"]),
                            int(lengths.max(initial=0)), str(f.attrs.get("dataset", "")),
                            str(f.attrs.get("feature_id", "")))


def feature_set(path: Path) -> dict[str, Any]:
    """The feature set a split file holds: ``{"id", "extractor", "dtype", "params"}``, from its attributes.

    What a run records of its features beside the clip-set fingerprint (which leaves them out), so that two
    studies of the same clips with other features are told apart by this, not by their fingerprints.
    """
    with h5py.File(path, "r") as f:
        attrs = dict(f.attrs)
    extractor = extractor_of(attrs, where=str(path))
    return {"id": str(attrs.get("feature_id", "")), "extractor": extractor.name, "dtype": str(attrs.get("dtype", "")),
            "params": asdict(extractor.params)}


@dataclass(frozen=True)
class ShardCheck:
    """The shards of a split file a reader would refuse, and the command that computes their rows again."""

    damaged: tuple[str, ...]  # shard names, relative to the split file
    hint: str


def check_shards(path: Path, *, read: bool = False) -> ShardCheck:
    """Which shards of a finished split file a reader would refuse: missing ones (a ``stat`` each), or with
    ``read`` every check a reader makes (shard id, clip ids, lengths, CRC-32: every feature is read once)."""
    _check_marker(path)
    with h5py.File(path, "r") as f:
        rows = read_row_map(f)
        hint = repair_hint(path, f.attrs)
        clip_ids = tuple(f["clip_id"].asstr()[()])
        lengths = f["length"][()]
    if rows is None:
        return ShardCheck((), hint)
    if not read:
        return ShardCheck(tuple(r.name for r in rows.refs if not (path.parent / r.name).is_file()), hint)
    sound = sound_shards(path, rows, clip_ids, np.asarray(lengths), hint=hint)
    return ShardCheck(tuple(r.name for r in rows.refs if r.name not in sound), hint)


@dataclass(frozen=True)
class ExistingSplit:
    """The rows already in a split file: their clip ids, frame counts, audio hashes, and the padded length.

    ``audio_sha256`` is ``""`` for every row of a file written before the hashes were recorded. ``sources``
    gives, per row, the shard file (relative to the split file's folder) and its row there, and ``shapes``
    each shard's ``logmel`` shape; both are empty for a file that stores its own features. ``lost`` names the
    rows whose shard file is missing or fails a check (:func:`audiobench.features.integrity.verify_shard`),
    ``broken`` those shards; ``refs`` what the others proved to be (shard id, CRC-32).
    """

    path: Path
    clip_ids: tuple[str, ...]
    t_max: int
    lengths: tuple[int, ...] = ()
    audio_sha256: tuple[str, ...] = ()
    sources: tuple[tuple[str, int], ...] = ()
    shapes: tuple[tuple[str, tuple[int, int, int]], ...] = ()
    lost: frozenset[str] = frozenset()
    refs: tuple[ShardRef, ...] = ()
    broken: frozenset[str] = frozenset()

    @property
    def shards(self) -> frozenset[Path]:
        """The sound shard files the split file maps."""
        return frozenset(self.path.parent / name for name, _ in self.shapes if name not in self.broken)


def read_existing(path: Path, header: SplitHeader) -> ExistingSplit | None:
    """The split file's rows, or ``None`` if there is none; an error when it was made differently.

    Every shard it maps is checked as a reader checks it (reading all its features once), so that featurize
    computes again the rows of a shard that is missing, damaged, or not the one the file names.
    """
    if not path.exists():
        return None
    _check_marker(path)
    with h5py.File(path, "r") as f:
        for key in ("feature_id", "dtype", "dataset", "has_strong"):
            if f.attrs.get(key) != header.attrs()[key]:
                raise AudiobenchError(f"{path}: {key} is {f.attrs.get(key)!r}, this run has "
                                      f"{header.attrs()[key]!r}; move the file away to rebuild it")
        mids = [str(m) for m in f.attrs["class_mids"]]
        if mids != [c.mid for c in header.classes]:
            raise AudiobenchError(f"{path}: written for another class list; move the file away to rebuild it")
        clip_ids = tuple(f["clip_id"].asstr()[()])
        hashes = tuple(f["audio_sha256"].asstr()[()]) if "audio_sha256" in f else ("",) * len(clip_ids)
        lengths = tuple(f["length"][()].tolist())
        t_max = int(f["logmel"].shape[1])
        rows = read_row_map(f)
        hint = repair_hint(path, f.attrs)
    if rows is None:
        return ExistingSplit(path, clip_ids, t_max, lengths, hashes)
    sources = tuple((rows.refs[k].name if k >= 0 else "", int(r)) for k, r in zip(rows.shard, rows.row))
    sound = sound_shards(path, rows, clip_ids, np.array(lengths), hint=hint)
    lost = frozenset(cid for cid, source in zip(clip_ids, sources) if source[0] not in sound)
    broken = frozenset(ref.name for ref in rows.refs if ref.name not in sound)
    return ExistingSplit(path, clip_ids, t_max, lengths, hashes, sources,
                         tuple((ref.name, ref.shape) for ref in rows.refs), lost, tuple(sound.values()), broken)


def strong_block(rows: Sequence[tuple[Clip, int]], t_max: int, n_classes: int,
                 extractor: Extractor | None = None) -> np.ndarray:
    """``[len(rows), t_max, C]`` uint8 frame targets of (clip, true frame count) pairs."""
    out = np.zeros((len(rows), t_max, n_classes), dtype=np.uint8)
    extractor = extractor or get_extractor()
    for i, (clip, length) in enumerate(rows):
        events = clip.events or ()
        if not events:
            continue
        first, stop = extractor.event_frames([e.onset for e in events], [e.offset for e in events], length)
        for event, a, b in zip(events, first, stop):
            out[i, a:b, event.class_index] = 1
    return out


class SplitWriter:
    """Builds ``<split>.h5.tmp`` row by row, then renames it onto ``<split>.h5`` in :meth:`commit`.

    Each row's features stay where they were written, in a shard: the file maps them (:meth:`link`);
    :meth:`append` first writes features given in memory as a shard of their own. ``capacity`` is the most rows
    the file may get; failed clips simply never arrive, and the datasets are shrunk to the rows written. Rows
    are written in the order they are given.
    """

    def __init__(self, path: Path, header: SplitHeader, *, capacity: int, t_max: int) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")
        self.header = header
        self.t_max = t_max
        self.n_classes = len(header.classes)
        self.padding = header.extractor.padding_value
        self.shards = shard_dir(path.parent, header.split)
        self.rows = 0
        self._clip_ids: list[str] = []
        self._ytids: list[str] = []
        self._start: list[float] = []
        self._end: list[float] = []
        self._length: list[int] = []
        self._sha256: list[str] = []
        self._weak: list[np.ndarray] = []
        self._events: list[np.ndarray] = []  # per block: [k, 4] float64 (row, class, onset, offset)
        self._sources: list[tuple[str, int]] = []  # per row: shard file (relative to the split file), row there
        self._shapes: dict[str, tuple[int, int, int]] = {}
        self._refs: dict[str, ShardRef] = {}  # what each shard proved or was written to be: id, CRC-32
        self._durable: set[str] = set()  # shards that a committed split file maps already: on disk for good
        self._syncs: dict[str, Future[None]] = {}
        self._names: dict[Path, str] = {}
        self._pool: ThreadPoolExecutor | None = None
        self.tmp.unlink(missing_ok=True)
        self._file = h5py.File(self.tmp, "w")
        self._strong = None
        if header.has_strong:
            self._strong = self._file.create_dataset(
                "strong", shape=(capacity, t_max, self.n_classes), maxshape=(None, t_max, self.n_classes),
                chunks=(1, t_max, self.n_classes), dtype=np.uint8, fillvalue=0)

    @property
    def shard_files(self) -> frozenset[Path]:
        """The shard files the file maps so far."""
        return frozenset(self.path.parent / name for name in {name for name, _ in self._sources})

    def copy_existing(self, existing: ExistingSplit, *, keep: np.ndarray | None = None) -> None:
        """Take the rows of the existing file first (those where ``keep`` is true, default all), in order: their
        labels are copied, their features stay in their shards (a file that stores its own features has its
        kept rows moved into one shard, once). ``t_max`` may differ from the old file's: frames past a row's
        shard read as padding, and a cut only ever removes padding (``t_max`` covers every kept row)."""
        with h5py.File(existing.path, "r") as src:
            n = src["length"].shape[0]
            keep = np.ones(n, dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
            rows = np.flatnonzero(keep)
            self._clip_ids += [existing.clip_ids[i] for i in rows]
            ytids = src["ytid"].asstr()[()]
            self._ytids += [ytids[i] for i in rows]
            self._start += src["start"][()][rows].tolist()
            self._end += src["end"][()][rows].tolist()
            self._length += src["length"][()][rows].tolist()
            self._sha256 += [existing.audio_sha256[i] for i in rows]
            self._weak.append(src["weak"][()][rows])
            if existing.shapes:
                self._sources += [existing.sources[i] for i in rows]
                self._shapes.update(existing.shapes)
                self._refs.update((ref.name, ref) for ref in existing.refs)
                self._durable.update(name for name, _ in existing.shapes)
            else:
                self._move_into_shard(src["logmel"], keep, existing)
            if self.header.has_strong:
                ev = src["events"]
                clip = ev["clip"][()].astype(np.int64)
                renumber = np.cumsum(keep) - 1  # old row -> new row, for the rows kept
                kept = keep[clip]
                self._events.append(np.stack([renumber[clip[kept]], ev["class"][()][kept], ev["onset"][()][kept],
                                              ev["offset"][()][kept]], axis=1).astype(np.float64).reshape(-1, 4))
                self._copy_rows(src["strong"], keep, self._strong, 0)
        self.rows = len(rows)

    def _copy_rows(self, source: h5py.Dataset, keep: np.ndarray, target: h5py.Dataset, fill: float) -> int:
        """Copy the rows of ``source`` where ``keep`` is true to the start of ``target``, re-padded or cut to its
        width, in blocks; the CRC-32 of what was written."""
        crc, row, t_old, width = 0, 0, source.shape[1], target.shape[1]
        for a in range(0, len(keep), _COPY_BLOCK):
            sel = keep[a:a + _COPY_BLOCK]
            if not sel.any():
                continue
            block = source[a:a + len(sel), :min(t_old, width)]
            block = block if sel.all() else block[sel]
            if t_old < width:
                padded = np.full((block.shape[0], width, block.shape[2]), fill, dtype=block.dtype)
                padded[:, :t_old] = block
                block = padded
            target[row:row + block.shape[0]] = block
            crc = zlib.crc32(np.ascontiguousarray(block), crc)
            row += block.shape[0]
        return crc

    def _move_into_shard(self, logmel: h5py.Dataset, keep: np.ndarray, existing: ExistingSplit) -> None:
        """The kept rows of a file that stores its own features, written once more, as a shard the new file
        maps (the upgrade to shard storage: later runs add clips without touching them)."""
        rows = np.flatnonzero(keep)
        if not len(rows):
            return
        ids = [existing.clip_ids[i] for i in rows]
        hashes = [existing.audio_sha256[i] for i in rows]
        shape = (len(rows), max(existing.lengths[i] for i in rows), logmel.shape[2])
        path = self.shards / shard_name(ids, hashes)
        self.shards.mkdir(parents=True, exist_ok=True)
        with _shard_file(path, needed=int(np.prod(shape)) * logmel.dtype.itemsize) as f:
            f.create_dataset("clip_id", data=ids, dtype=STRING)
            f.create_dataset("length", data=np.array([existing.lengths[i] for i in rows], dtype=np.int32))
            f.create_dataset("audio_sha256", data=hashes, dtype=STRING)
            out = f.create_dataset("logmel", shape=shape, dtype=logmel.dtype)
            f.attrs["feature_id"] = self.header.feature_id
            f.attrs["dtype"] = self.header.dtype
            f.attrs["crc32"] = crc = self._copy_rows(logmel, keep, out, self.padding)
            f.attrs["shard_id"] = path.name
            f.attrs[COMPLETE] = True
        name = self._name(path)
        self._shapes[name] = shape
        self._refs[name] = ShardRef(name, shape, path.name, crc)
        self._sources += [(name, k) for k in range(len(rows))]
        self._sync(name)

    def append(self, clips: Sequence[Clip], logmels: Sequence[np.ndarray],
               audio_sha256: Sequence[str] | None = None) -> None:
        """Add clips (with their labels from the ledger), their ``[frames, dims]`` features and the sha256 of the
        audio each was computed from (``""`` when unknown), in order: the features are written as one shard."""
        if not clips:
            return
        self._check_lengths([m.shape[0] for m in logmels])
        hashes = list(audio_sha256) if audio_sha256 is not None else [""] * len(clips)
        ids = [c.clip_id for c in clips]
        path = self.shards / shard_name(ids, hashes)
        self.shards.mkdir(parents=True, exist_ok=True)
        index = write_shard(path, ids, logmels, feature_id=self.header.feature_id, dtype=self.header.dtype,
                            audio_sha256=hashes, padding=self.padding)
        self.link(clips, [index.row(cid) for cid in ids])

    def link(self, clips: Sequence[Clip], rows: Sequence[ShardRow]) -> None:
        """Add clips (with their labels from the ledger) whose features lie in finished shards, in order.

        Nothing of the features is read or written here: the file will map each row onto its shard. Each shard
        is fsynced in a thread from its first row on, so that it is on disk before the split file names it.
        """
        if not clips:
            return
        lengths = [r.length for r in rows]
        self._check_lengths(lengths)
        for r in rows:
            name = self._name(r.path)
            self._shapes[name] = r.shape
            self._refs[name] = ShardRef(name, r.shape, r.shard_id, r.crc32)
            self._sources.append((name, r.row))
            self._sync(name)
        if self._strong is not None:
            targets = strong_block(list(zip(clips, lengths)), self.t_max, self.n_classes, self.header.extractor)
            for i in range(len(clips)):
                self._strong.id.write_direct_chunk((self.rows + i, 0, 0), targets[i])
            ev = [(self.rows + i, e.class_index, e.onset, e.offset)
                  for i, c in enumerate(clips) for e in c.events or ()]
            self._events.append(np.array(ev, dtype=np.float64).reshape(-1, 4))
        weak = np.zeros((len(clips), self.n_classes), dtype=np.uint8)
        for i, c in enumerate(clips):
            weak[i, list(c.weak)] = 1
        self._weak.append(weak)
        self._clip_ids += [c.clip_id for c in clips]
        self._ytids += [c.source_id for c in clips]
        self._start += [c.start for c in clips]
        self._end += [c.end for c in clips]
        self._length += lengths
        self._sha256 += [r.audio_sha256 for r in rows]
        self.rows += len(clips)

    def _check_lengths(self, lengths: Sequence[int]) -> None:
        if max(lengths) > self.t_max:
            raise AudiobenchError(f"{self.path}: a clip has {max(lengths)} frames, more than the {self.t_max} "
                                  "planned from the ledger (audio changed since resample?); rerun resample")

    def _name(self, shard: Path) -> str:
        """A shard's name as the file records it: relative to the file's folder, so the folder can move."""
        name = self._names.get(shard)
        if name is None:
            name = self._names[shard] = Path(os.path.relpath(shard, self.path.parent)).as_posix()
            if name.startswith("../"):
                raise AudiobenchError(f"{shard}: a shard outside {self.path.parent} cannot hold rows of {self.path}")
        return name

    def _sync(self, name: str) -> None:
        if name not in self._durable and name not in self._syncs:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fsync-shards")
            self._syncs[name] = self._pool.submit(fsync_path, self.path.parent / name)

    def commit(self) -> Path:
        """Write the map of the rows onto their shards, the small arrays and attributes, mark complete, and
        rename onto the split file; every shard it maps is on disk first."""
        f, n = self._file, self.rows
        if self._strong is not None:
            self._strong.resize(n, axis=0)
        for future in self._syncs.values():
            future.result()
        if self._syncs:  # the shards' names too (the folders may be new)
            fsync_path(self.shards, directory=True)
            fsync_path(self.shards.parent, directory=True)
        self._map_logmel()
        write_shard_table(f, [self._refs.get(name, ShardRef(name, self._shapes[name]))
                              for name in {name for name, _ in self._sources}])
        f.create_dataset("clip_id", data=self._clip_ids, dtype=STRING)
        f.create_dataset("ytid", data=self._ytids, dtype=STRING)
        f.create_dataset("start", data=np.array(self._start, dtype=np.float64))
        f.create_dataset("end", data=np.array(self._end, dtype=np.float64))
        f.create_dataset("length", data=np.array(self._length, dtype=np.int32))
        f.create_dataset("audio_sha256", data=self._sha256, dtype=STRING)
        f.create_dataset("weak", data=_concat(self._weak, (0, self.n_classes), np.uint8))
        if self.header.has_strong:
            ev = _concat(self._events, (0, 4), np.float64)
            group = f.create_group("events")
            group.create_dataset("clip", data=ev[:, 0].astype(np.int32))
            group.create_dataset("class", data=ev[:, 1].astype(np.int32))
            group.create_dataset("onset", data=ev[:, 2])
            group.create_dataset("offset", data=ev[:, 3])
        for key, value in self.header.attrs().items():
            f.attrs[key] = value
        f.attrs["created"] = now()
        f.attrs[COMPLETE] = True
        f.close()
        replace_durably(self.tmp, self.path)
        self._stop_syncs()
        return self.path

    def _map_logmel(self) -> None:
        """``logmel`` as a virtual dataset: one mapping per run of rows that lie one after another in one
        shard (a shard's worth of rows each, as featurize writes them), the frames past a shard's width (and
        of rows mapped nowhere) reading as the fill value, the padding."""
        n_mels = self.header.extractor.dims
        layout = h5py.VirtualLayout((self.rows, self.t_max, n_mels), dtype=self.header.dtype)
        sources = {name: h5py.VirtualSource(name, "logmel", shape=shape) for name, shape in self._shapes.items()}
        for first, count, name, row in _runs(self._sources):
            width = min(self._shapes[name][1], self.t_max)
            layout[first:first + count, :width] = sources[name][row:row + count, :width]
        self._file.create_virtual_dataset("logmel", layout,
                                          fillvalue=np.dtype(self.header.dtype).type(self.padding))

    def _stop_syncs(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def abort(self) -> None:
        """Drop the unfinished file (the existing split file, if any, is untouched; shards written stay for
        the next run to reuse or delete).

        The file is being thrown away, so an error closing it (HDF5 cannot flush onto a full disk) is not
        raised over the error that stopped the run.
        """
        try:
            self._file.close()
        except Exception:  # noqa: BLE001 - the file is deleted next
            pass
        finally:
            self.tmp.unlink(missing_ok=True)
            self._stop_syncs()


def _runs(sources: Sequence[tuple[str, int]]) -> list[tuple[int, int, str, int]]:
    """(first row, rows, shard, its first row) of each run of rows that follow one another in one shard."""
    runs: list[list] = []
    for i, (name, row) in enumerate(sources):
        last = runs[-1] if runs else None
        if last is not None and last[2] == name and last[3] + last[1] == row:
            last[1] += 1
        else:
            runs.append([i, 1, name, row])
    return [tuple(r) for r in runs]


def _concat(parts: Iterable[np.ndarray], empty: tuple[int, int], dtype: type) -> np.ndarray:
    parts = [p for p in parts if p.size]
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(empty, dtype=dtype)

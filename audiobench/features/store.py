"""The HDF5 feature cache: one file per split, built whole and renamed into place (docs/features.md).

``features/<feature-id>/<split>.h5`` holds ``N`` clips, padded to ``T_max`` frames:

* ``logmel`` ``[N, T_max, dims]`` float32 (or float16), one clip per chunk, padded with the extractor's
  padding value (VGGish: 64 dims, ``log(0.01)``);
  ``length`` int32 ``[N]``, the true frame counts;
* ``clip_id``, ``ytid`` (UTF-8 strings: the recording's ID in its source, a YouTube ID for YouTube clips),
  ``start``, ``end`` float64 ``[N]``; ``weak`` uint8 ``[N, C]``;
* ``audio_sha256`` (hex strings ``[N]``): the sha256 of the ``audio/`` file each row was computed from, so a
  rerun recomputes a clip whose audio changed (empty in files written before it was recorded);
* splits with strong labels: ``strong`` uint8 ``[N, T_max, C]`` frame targets (see
  :meth:`audiobench.features.base.Extractor.event_frames`) and the group ``events`` with ``clip`` (row), ``class``,
  ``onset``, ``offset``;
* attributes: dataset, split, classes, the extractor's name (``extractor``), ``dims`` and every parameter,
  feature id, dtype, version, created, and ``complete`` (set last). A file without ``extractor`` was written
  before extractors were named: VGGish log-mel, 64 dims.

A split file is only ever written as ``<split>.h5.tmp``, fsynced and then renamed with ``os.replace``, so a
``<split>.h5`` is always whole: a killed run leaves at worst a ``.tmp`` that the next run deletes.
Computed clips wait in small shard files (``shards/<split>/shard-<hash>.h5``, also written under a
temporary name and renamed) until their split file has been renamed into place; a rerun after a kill reuses
them. Shards are not fsynced (that cost a worker as long as featurizing a clip); they carry a CRC-32 of their
features instead, checked before a shard left by an earlier run is reused, so even a shard that a power cut
left half on disk is recomputed, never trusted.
"""
from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from audiobench import __version__
from audiobench.core.records import ClassInfo, Clip
from audiobench.core.errors import AudiobenchError
from audiobench.features.base import Extractor, get_extractor
from audiobench.features.vggish import feature_id as default_feature_id
from audiobench.core.layout import DatasetPaths, disk_full_error, is_disk_full, replace_durably, validate_name
from audiobench.data.ledger import now

STRING = h5py.string_dtype("utf-8")
COMPLETE = "complete"  # attribute set to True as the very last write of a split or shard file
STRONG_RULE = ("frame t covers samples [hop*t, hop*t + window) and is 1 for a class when it overlaps an event "
               "[onset, offset) of that class; zero-length events label no frame; padding frames are 0")
_COPY_BLOCK = 64  # rows per read/write when copying an existing split file


def split_path(feature_dir: Path, split: str) -> Path:
    return feature_dir / f"{validate_name(split, what='split name')}.h5"


def shard_dir(feature_dir: Path, split: str) -> Path:
    return feature_dir / "shards" / validate_name(split, what="split name")


def shard_name(clip_ids: Sequence[str]) -> str:
    """A shard's file name, from the clips it holds (the same clips always give the same name)."""
    return f"shard-{hashlib.sha256(chr(10).join(clip_ids).encode()).hexdigest()[:16]}.h5"


def feature_file(paths: DatasetPaths, split: str, feature_id: str | None = None) -> Path:
    """The finished feature file of ``split``, or an error saying which command makes it.

    ``feature_id`` defaults to the VGGish recipe stored as float32.

    >>> feature_file(DatasetPaths(Path("audiobench-data"), "synth"), "train")   # doctest: +SKIP
    PosixPath('audiobench-data/synth/features/vggish-logmel-.../train.h5')
    """
    fid = feature_id or default_feature_id()
    path = split_path(paths.feature_dir(fid), split)
    if not path.is_file():
        raise AudiobenchError(f"no features for split {split!r} of dataset {paths.name!r} (no {path}); "
                              f"run `audiobench featurize {paths.name}`")
    check_complete(path)
    return path


def check_complete(path: Path) -> None:
    """Raise unless ``path`` is a readable feature file with its completion marker."""
    try:
        with h5py.File(path, "r") as f:
            done = bool(f.attrs.get(COMPLETE, False))
    except OSError as exc:
        raise AudiobenchError(f"{path}: not a readable HDF5 feature file ({exc}); delete it and rerun "
                              "`audiobench featurize`") from None
    if not done:
        raise AudiobenchError(f"{path}: has no completion marker (not written by audiobench featurize?); "
                              "delete it and rerun `audiobench featurize`")


# -- shards: one task's computed clips -------------------------------------------------------------------

@dataclass(frozen=True)
class ShardIndex:
    """What a finished shard holds: clip ids, their frame counts, and where each starts in its ``logmel``."""

    path: Path
    clip_ids: tuple[str, ...]
    lengths: np.ndarray  # int64 [n]
    offsets: np.ndarray  # int64 [n], row of each clip's first frame in the shard's [sum(lengths), 64] array
    crc32: int  # of the logmel bytes, as the worker wrote them
    audio_sha256: tuple[str, ...] = ()  # of each clip's audio file, as the worker decoded it

    def read_logmel(self, out: np.ndarray | None = None) -> np.ndarray:
        """The shard's ``[sum(lengths), 64]`` features, into ``out`` when given (of the stored dtype)."""
        with h5py.File(self.path, "r") as f:
            if out is None:
                return f["logmel"][()]
            f["logmel"].read_direct(out)
            return out

    def intact(self) -> bool:
        """Whether the features on disk are the ones the worker wrote (their CRC-32 matches)."""
        try:
            return zlib.crc32(self.read_logmel()) == self.crc32
        except (OSError, KeyError):
            return False


def write_shard(path: Path, clip_ids: Sequence[str], logmels: Sequence[np.ndarray], *, feature_id: str,
                dtype: str, audio_sha256: Sequence[str]) -> None:
    """Write computed clips as one shard: ``clip_id``, ``length``, ``audio_sha256``, ``logmel`` [frames, 64] and
    its CRC-32.

    Written as ``*.tmp`` and renamed, so a shard under its final name was written to the end. A full disk is
    one :class:`~audiobench.core.layout.DiskFullError` (the unfinished file removed), not an HDF5 traceback.
    """
    tmp = path.with_name(path.name + ".tmp")
    lengths = np.array([m.shape[0] for m in logmels], dtype=np.int32)
    data = np.concatenate(logmels).astype(dtype, copy=False)
    try:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("clip_id", data=list(clip_ids), dtype=STRING)
            f.create_dataset("length", data=lengths)
            f.create_dataset("audio_sha256", data=list(audio_sha256), dtype=STRING)
            f.create_dataset("logmel", data=data)
            f.attrs["feature_id"] = feature_id
            f.attrs["dtype"] = dtype
            f.attrs["crc32"] = zlib.crc32(data)
            f.attrs[COMPLETE] = True
        os.replace(tmp, path)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise disk_full_error(path.parent, needed=data.nbytes) from None
        raise


def read_shard_index(path: Path, *, feature_id: str, dtype: str) -> ShardIndex | None:
    """The shard's index, or ``None`` when it is unreadable, unfinished, or from another recipe."""
    try:
        with h5py.File(path, "r") as f:
            if not (f.attrs.get(COMPLETE, False) and f.attrs.get("feature_id") == feature_id
                    and f.attrs.get("dtype") == dtype):
                return None
            clip_ids = tuple(f["clip_id"].asstr()[()])
            lengths = f["length"][()].astype(np.int64)
            hashes = tuple(f["audio_sha256"].asstr()[()])
            crc = int(f.attrs["crc32"])
            if (f["logmel"].shape[0] != int(lengths.sum()) or len(clip_ids) != len(lengths)
                    or len(hashes) != len(clip_ids)):
                return None
    except (OSError, KeyError, ValueError):
        return None
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return ShardIndex(path, clip_ids, lengths, offsets, crc, hashes)


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


def summarize_split(path: Path) -> SplitSummary:
    """The clip count, storage dtype and longest clip of a finished split file (an error if unfinished)."""
    check_complete(path)
    with h5py.File(path, "r") as f:
        lengths = f["length"][()]
        return SplitSummary(path, str(f.attrs.get("split", path.stem)), int(len(lengths)), str(f.attrs["dtype"]),
                            int(lengths.max(initial=0)), str(f.attrs.get("dataset", "")),
                            str(f.attrs.get("feature_id", "")))


@dataclass(frozen=True)
class ExistingSplit:
    """The rows already in a split file: their clip ids, frame counts, audio hashes, and the padded length.

    ``audio_sha256`` is ``""`` for every row of a file written before the hashes were recorded.
    """

    path: Path
    clip_ids: tuple[str, ...]
    t_max: int
    lengths: tuple[int, ...] = ()
    audio_sha256: tuple[str, ...] = ()


def read_existing(path: Path, header: SplitHeader) -> ExistingSplit | None:
    """The split file's rows, or ``None`` if there is none; an error when it was made differently."""
    if not path.exists():
        return None
    check_complete(path)
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
        return ExistingSplit(path, clip_ids, int(f["logmel"].shape[1]), tuple(f["length"][()].tolist()), hashes)


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

    ``capacity`` is the most rows the file may get; failed clips simply never arrive, and the datasets are
    shrunk to the rows written. Rows are written in the order they are given.
    """

    def __init__(self, path: Path, header: SplitHeader, *, capacity: int, t_max: int) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")
        self.header = header
        self.t_max = t_max
        self.n_classes = len(header.classes)
        self.padding = header.extractor.padding_value
        self.rows = 0
        self._clip_ids: list[str] = []
        self._ytids: list[str] = []
        self._start: list[float] = []
        self._end: list[float] = []
        self._length: list[int] = []
        self._sha256: list[str] = []
        self._weak: list[np.ndarray] = []
        self._events: list[np.ndarray] = []  # per block: [k, 4] float64 (row, class, onset, offset)
        self.tmp.unlink(missing_ok=True)
        self._file = h5py.File(self.tmp, "w")
        dims = header.extractor.dims
        self._logmel = self._file.create_dataset(
            "logmel", shape=(capacity, t_max, dims), maxshape=(None, t_max, dims), chunks=(1, t_max, dims),
            dtype=header.dtype, fillvalue=self.padding)
        self._strong = None
        if header.has_strong:
            self._strong = self._file.create_dataset(
                "strong", shape=(capacity, t_max, self.n_classes), maxshape=(None, t_max, self.n_classes),
                chunks=(1, t_max, self.n_classes), dtype=np.uint8, fillvalue=0)

    def copy_existing(self, existing: ExistingSplit, *, keep: np.ndarray | None = None) -> None:
        """Copy the rows of the existing file first (those where ``keep`` is true, default all), in order,
        re-padded or cut to this file's ``t_max`` (a cut only ever removes padding: ``t_max`` covers every
        kept row)."""
        with h5py.File(existing.path, "r") as src:
            n = src["logmel"].shape[0]
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
            if self.header.has_strong:
                ev = src["events"]
                clip = ev["clip"][()].astype(np.int64)
                renumber = np.cumsum(keep) - 1  # old row -> new row, for the rows kept
                kept = keep[clip]
                self._events.append(np.stack([renumber[clip[kept]], ev["class"][()][kept], ev["onset"][()][kept],
                                              ev["offset"][()][kept]], axis=1).astype(np.float64).reshape(-1, 4))
            t_old = src["logmel"].shape[1]
            row = 0
            for a in range(0, n, _COPY_BLOCK):
                b = min(a + _COPY_BLOCK, n)
                sel = keep[a:b]
                if not sel.any():
                    continue
                whole = bool(sel.all())
                block = src["logmel"][a:b]
                self._write_block(self._logmel, row, block if whole else block[sel], t_old, self.padding)
                if self._strong is not None:
                    block = src["strong"][a:b]
                    self._write_block(self._strong, row, block if whole else block[sel], t_old, 0)
                row += int(sel.sum())
        self.rows = row

    def _write_block(self, dset: h5py.Dataset, row: int, block: np.ndarray, t_old: int, fill: float) -> None:
        if t_old < self.t_max:
            padded = np.full((block.shape[0], self.t_max, block.shape[2]), fill, dtype=block.dtype)
            padded[:, :t_old] = block
            block = padded
        elif t_old > self.t_max:
            block = block[:, :self.t_max]
        dset[row:row + block.shape[0]] = block

    def append(self, clips: Sequence[Clip], logmels: Sequence[np.ndarray],
               audio_sha256: Sequence[str] | None = None) -> None:
        """Add clips (with their labels from the ledger), their ``[frames, dims]`` features and the sha256 of the
        audio each was computed from (``""`` when unknown), in order.

        Each clip is one chunk, written as raw bytes (``write_direct_chunk``): no selection, conversion or
        chunk-cache work, which halves the main process's share of a run.
        """
        if not clips:
            return
        lengths = [m.shape[0] for m in logmels]
        if max(lengths) > self.t_max:
            raise AudiobenchError(f"{self.path}: a clip has {max(lengths)} frames, more than the {self.t_max} "
                                  "planned from the ledger (audio changed since resample?); rerun resample")
        row = np.empty(self._logmel.chunks[1:], dtype=self._logmel.dtype)
        for i, (m, n) in enumerate(zip(logmels, lengths)):
            if n < self.t_max or m.dtype != row.dtype or not m.flags.c_contiguous:
                row[:n] = m
                row[n:] = self.padding
                m = row
            self._logmel.id.write_direct_chunk((self.rows + i, 0, 0), m)
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
        self._sha256 += list(audio_sha256) if audio_sha256 is not None else [""] * len(clips)
        self.rows += len(clips)

    def commit(self) -> Path:
        """Write the small arrays and attributes, mark complete, and rename onto the split file."""
        f, n = self._file, self.rows
        self._logmel.resize(n, axis=0)
        if self._strong is not None:
            self._strong.resize(n, axis=0)
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
        return self.path

    def abort(self) -> None:
        """Drop the unfinished file (the existing split file, if any, is untouched).

        The file is being thrown away, so an error closing it (HDF5 cannot flush onto a full disk) is not
        raised over the error that stopped the run.
        """
        try:
            self._file.close()
        except Exception:  # noqa: BLE001 - the file is deleted next
            pass
        finally:
            self.tmp.unlink(missing_ok=True)


def _concat(parts: Iterable[np.ndarray], empty: tuple[int, int], dtype: type) -> np.ndarray:
    parts = [p for p in parts if p.size]
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(empty, dtype=dtype)

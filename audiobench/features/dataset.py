"""A ``torch.utils.data.Dataset`` over one split's feature file (public API; the trainer reads through it).

>>> from audiobench.features.store import feature_file
>>> from audiobench.features.dataset import LogmelDataset
>>> from audiobench.core.layout import DatasetPaths, resolve_root
>>> data = LogmelDataset(feature_file(DatasetPaths(resolve_root(), "synth"), "train"))   # doctest: +SKIP
>>> item = data[0]                                                                          # doctest: +SKIP
>>> item["logmel"].shape, item["weak"].shape, item["strong"].shape                          # doctest: +SKIP
(torch.Size([998, 64]), torch.Size([17]), torch.Size([998, 17]))

The feature dimension, padding value and frame rule come from the file (its extractor): 64 bands and
``ln(0.01)`` for VGGish's log-mel, 128 and ``ln(2**-23)`` for ``kaldi-fbank-128``.
"""
from __future__ import annotations

import operator
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Union

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from audiobench.features import readers
from audiobench.features.integrity import DamagedShard, RowMap, VerifiedShard, read_row_map, repair_hint, verify_shard
from audiobench.features.store import check_complete, feature_file
from audiobench.core.records import ClassInfo
from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths, resolve_root
from audiobench.features.base import extractor_of

Crop = Literal["start", "random"]
TEN_SECONDS = "10s"  # frames= default: a 10 s clip's frames under the file's extractor (VGGish: 998, the paper's)
Frames = Union[int, None, Literal["10s"]]
# Split files up to this size are read into memory when the Dataset is made: a read from memory costs
# a few microseconds against ~150 us from HDF5, which was the largest part of the training loop's overhead at
# the demo's small width. SL-DCASE-17's training split (1,591 clips, ~0.4 GB) fits; balanced AudioSet's does not.
IN_MEMORY_BYTES = 1 << 29  # 512 MiB


class LogmelDataset(Dataset):
    """Items of one split file: ``logmel`` [frames, dims], ``weak`` [C], ``strong`` [frames, C], ``length``, ``index``.

    ``frames`` fixes every item's length (default: the frames of a 10 s clip, 998 for VGGish): shorter clips
    are padded with the file's padding value (its extractor's features of silence), longer ones cropped,
    from the start or, with ``crop="random"``, at an offset drawn from ``(seed, epoch, index)`` (so
    reproducible; call :meth:`set_epoch` to vary it per epoch).
    ``frames=None`` gives each clip's true length (for inference: batch size 1, or :meth:`collate`).
    ``extractor``, ``dims`` and ``frame_seconds`` say what the file holds (read from its attributes).

    ``length`` (int64) counts the true frames inside the returned window; ``strong`` is present only when
    the split has strong labels and equals the file's ``strong`` over the window. Labels, lengths and where
    each row lies (which shard, which row) are read once, at construction; features are read from the shards
    directly, each opened lazily in each process, so ``DataLoader(num_workers=N)`` works and a split file
    that featurize rewrites later changes nothing for this reader. ``in_memory`` reads every log-mel into
    memory at construction too (default: when the file's log-mels take at most :data:`IN_MEMORY_BYTES`);
    otherwise each item is read from its shard. Either way a shard is checked before its first row is
    returned (:mod:`audiobench.features.integrity`): a damaged one is one :class:`DamagedShard` error.
    While the dataset is open, featurize deletes no shard (:mod:`audiobench.features.readers`); :meth:`close`
    lets it.
    """

    def __init__(self, path: Path, *, frames: Frames = TEN_SECONDS, crop: Crop = "start", seed: int = 0,
                 in_memory: bool | None = None) -> None:
        if frames is not None and frames != TEN_SECONDS and frames < 1:
            raise AudiobenchError(f"frames must be at least 1 (or None for true lengths), got {frames}")
        if crop not in ("start", "random"):
            raise AudiobenchError(f"crop must be 'start' or 'random', got {crop!r}")
        self.path = Path(path)
        self._in_memory = in_memory
        self.frames = frames
        self.crop = crop
        self.seed = seed
        self.epoch = 0
        self._file: h5py.File | None = None
        self._pid: int | None = None
        self._shards: dict[int, tuple[VerifiedShard, h5py.h5d.DatasetID, h5py.h5s.SpaceID]] = {}
        self._readers = readers.hold(self.path.parent)  # before the split file is read: see readers
        try:
            self._open_split()
        except BaseException:
            self.close()
            raise

    def _open_split(self) -> None:
        check_complete(self.path)
        self._identity = _identity(self.path)
        with h5py.File(self.path, "r") as f:
            attrs = f.attrs
            self.classes = [ClassInfo(str(m), str(n)) for m, n in zip(attrs["class_mids"], attrs["class_names"])]
            self.has_strong = bool(attrs["has_strong"])
            self.extractor = extractor_of(attrs, where=str(self.path))
            self.dims = int(f["logmel"].shape[2])
            if self.dims != self.extractor.dims:
                raise AudiobenchError(f"{self.path}: logmel holds {self.dims} dims, its extractor "
                                      f"{self.extractor.name} gives {self.extractor.dims}")
            dtype = f["logmel"].dtype
            self._shape = tuple(int(n) for n in f["logmel"].shape)
            nbytes = int(np.prod(self._shape)) * np.dtype(np.float32).itemsize
            self.in_memory = nbytes <= IN_MEMORY_BYTES if self._in_memory is None else bool(self._in_memory)
            self.clip_ids: list[str] = list(f["clip_id"].asstr()[()])
            self.lengths = f["length"][()].astype(np.int64)
            self._map: RowMap | None = read_row_map(f)  # None: a file that stores its own features
            self._hint = repair_hint(self.path, f.attrs)
            self._weak = f["weak"][()].astype(np.float32)
            if self.has_strong:
                events = f["events"]
                ev_clip = events["clip"][()].astype(np.int64)
                ev_class = events["class"][()].astype(np.int64)
                first, stop = self.extractor.event_frames(events["onset"][()], events["offset"][()],
                                                          self.lengths[ev_clip])
        if self.frames == TEN_SECONDS:
            self.frames = self.extractor.num_frames(10 * self.extractor.sample_rate)
        # What the file holds in padded frames (the extractor's padding value rounded to the stored dtype).
        self.padding_value = float(np.float32(dtype.type(self.extractor.padding_value)))
        if self._map is not None and (self._map.shard < 0).any():
            i = int(np.flatnonzero(self._map.shard < 0)[0])
            raise DamagedShard(f"{self.path}: row {i} ({self.clip_ids[i]}) lies in no shard; {self._hint}")
        # Read now, in the constructing process: DataLoader workers forked from it share these pages instead of
        # each reading the file again every epoch.
        self._memory: np.ndarray | None = self._read_all() if self.in_memory else None
        if self.has_strong:  # events grouped by row: row i's events are _ev[_ev_start[i]:_ev_start[i + 1]]
            order = np.argsort(ev_clip, kind="stable")
            self._ev = np.stack([ev_class, first, stop], axis=1)[order]
            self._ev_start = np.searchsorted(ev_clip[order], np.arange(len(self.lengths) + 1))

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def frame_seconds(self) -> float:
        """Seconds from one frame to the next (the extractor's hop)."""
        return self.extractor.frame_seconds

    def collate(self, batch: Sequence[dict[str, object]]) -> dict[str, torch.Tensor]:
        """:func:`pad_collate` with this file's padding value: ``DataLoader(data, collate_fn=data.collate)``."""
        return pad_collate(batch, padding_value=self.padding_value)

    @property
    def weak(self) -> np.ndarray:
        """The weak labels of every row, ``[N, C]`` float32 (read once, at construction)."""
        return self._weak

    def set_epoch(self, epoch: int) -> None:
        """Choose the random crops of ``epoch`` (before creating the epoch's DataLoader iterator)."""
        self.epoch = epoch

    def _read(self, index: int, start: int, out: np.ndarray) -> None:
        """Read frames ``start:start + len(out)`` of row ``index`` into ``out`` (float32, C-contiguous).

        Through h5py's low-level API: the high-level ``read_direct`` spends most of a small read building
        selections in Python.
        """
        if self.in_memory:
            if self._memory is None:  # unpickled in a spawned worker process: read once there
                self._memory = self._read_all()
            out[...] = self._memory[index, start:start + len(out)]
            return
        if self._pid != os.getpid():  # first use in this process (or a forked worker): open its own files
            self._file, self._shards, self._pid = None, {}, os.getpid()
        if self._map is None:
            dset_id, space, row = self._own_logmel(), self._space, index
        else:
            k = int(self._map.shard[index])
            _, dset_id, space = self._shards.get(k) or self._open_shard(k)
            row = int(self._map.row[index])
        space.select_hyperslab((row, start, 0), (1,) + out.shape)
        dset_id.read(h5py.h5s.create_simple(out.shape), space, out)

    def _verify(self, k: int, *, keep_data: bool, into: np.ndarray | None = None) -> VerifiedShard:
        """Shard ``k`` opened and checked against what the split file says of the rows it maps."""
        rows = self._map.rows_of(k)
        return verify_shard(self.path, self._map.refs[k], self._map.row[rows], [self.clip_ids[i] for i in rows],
                            self.lengths[rows], hint=self._hint, keep_data=keep_data, into=into)

    def _open_shard(self, k: int) -> tuple[VerifiedShard, h5py.h5d.DatasetID, h5py.h5s.SpaceID]:
        """Shard ``k`` on its first touch in this process: checked, then kept open for every later read."""
        shard = self._verify(k, keep_data=False)
        dset_id = shard.file["logmel"].id
        self._shards[k] = entry = (shard, dset_id, dset_id.get_space())
        return entry

    def _own_logmel(self) -> h5py.h5d.DatasetID:
        """The ``logmel`` of a file that stores its own features, opened once per process; an error if the file
        was replaced since the dataset was made (its rows could be other clips')."""
        if self._file is None:
            if _identity(self.path) != self._identity:
                raise AudiobenchError(f"{self.path}: replaced (by `audiobench featurize`?) since this dataset was "
                                      "opened; open it again")
            self._file = h5py.File(self.path, "r")
            self._dset_id = self._file["logmel"].id
            self._space = self._dset_id.get_space()
        return self._dset_id

    def _read_all(self) -> np.ndarray:
        """Every row as one float32 array (float16 files widened on the way), each shard checked on the way."""
        if self._map is None:
            with h5py.File(self.path, "r") as f:
                return _read_all(f["logmel"])
        out = np.empty(self._shape, dtype=np.float32)  # every row is written below (each lies in one shard)
        for k in range(len(self._map.refs)):
            rows = self._map.rows_of(k)
            if not len(rows):
                continue
            source = self._map.row[rows]
            whole = rows[-1] - rows[0] == len(rows) - 1 and np.array_equal(source, np.arange(len(rows)))
            shard = self._verify(k, keep_data=True, into=out[rows[0]:rows[-1] + 1] if whole else None)
            width = min(int(shard.file["logmel"].shape[1]), self._shape[1])  # past a row's length: padding
            if shard.data is None:  # read straight into place: the frames past the shard's width are padding
                out[rows[0]:rows[-1] + 1, width:] = self.padding_value
            else:
                cuts = np.flatnonzero((np.diff(rows) != 1) | (np.diff(source) != 1)) + 1  # runs, copied whole:
                for a, b in zip([0, *cuts], [*cuts, len(rows)]):  # fancy indexing costs 20 times as much
                    out[rows[a]:rows[a] + b - a, :width] = shard.data[source[a]:source[a] + b - a, :width]
                    out[rows[a]:rows[a] + b - a, width:] = self.padding_value
            shard.close()
        return out

    def window(self, index: int) -> tuple[int, int, int]:
        """(first frame read, frames read, frames returned) of item ``index``."""
        true = int(self.lengths[index])
        if self.frames is None:
            return 0, true, true
        n = min(true, self.frames)
        start = 0
        if self.crop == "random" and true > self.frames:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            start = int(rng.integers(0, true - self.frames + 1))
        return start, n, self.frames

    def __getitem__(self, index: int | Sequence[int]) -> dict[str, object]:
        """One item, or with a sequence of indices (fixed ``frames`` only) the batch that the default
        collate would stack from those items, built in place: ``DataLoader(data, batch_size=None,
        sampler=BatchSampler(...))`` then skips making and stacking one dict per clip."""
        if isinstance(index, (np.ndarray, torch.Tensor)) and index.ndim == 0:
            index = int(index)
        if not isinstance(index, (Sequence, np.ndarray, torch.Tensor)):
            return self._item(self._check_index(index))
        if self.frames is None:
            raise AudiobenchError("a batch of items needs a fixed frames= (true lengths differ: use .collate)")
        rows = [self._check_index(i) for i in np.asarray(index).tolist()]
        logmel = np.full((len(rows), self.frames, self.dims), self.padding_value, dtype=np.float32)
        strong = np.zeros((len(rows), self.frames, len(self.classes)), dtype=np.float32) if self.has_strong else None
        lengths = []
        for k, index in enumerate(rows):
            start, n, _ = self.window(index)
            if n:
                self._read(index, start, logmel[k, :n])
            if strong is not None:
                self._strong(index, start, n, strong[k])
            lengths.append(n)
        batch: dict[str, object] = {
            "logmel": torch.from_numpy(logmel),
            "weak": torch.from_numpy(self._weak[rows]),
            "length": torch.tensor(lengths, dtype=torch.int64),
            "index": torch.tensor(rows, dtype=torch.int64),
        }
        if strong is not None:
            batch["strong"] = torch.from_numpy(strong)
        return batch

    def _item(self, index: int) -> dict[str, object]:
        start, n, size = self.window(index)
        logmel = np.full((size, self.dims), self.padding_value, dtype=np.float32)
        if n:
            self._read(index, start, logmel[:n])
        item: dict[str, object] = {
            "logmel": torch.from_numpy(logmel),
            "weak": torch.from_numpy(self._weak[index].copy()),
            "length": torch.tensor(n, dtype=torch.int64),
            "index": index,
        }
        if self.has_strong:
            strong = np.zeros((size, len(self.classes)), dtype=np.float32)
            self._strong(index, start, n, strong)
            item["strong"] = torch.from_numpy(strong)
        return item

    def _check_index(self, index: int) -> int:
        index = operator.index(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips")
        return index

    def _strong(self, index: int, start: int, n: int, out: np.ndarray) -> None:
        """Set ``out`` [frames, C] to 1 where row ``index``'s events cover the window's first ``n`` frames."""
        for cls, first, stop in self._ev[self._ev_start[index]:self._ev_start[index + 1]]:
            a, b = max(first - start, 0), min(stop - start, n)
            if b > a:
                out[a:b, cls] = 1.0

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()  # an open HDF5 handle does not pickle: each process opens its own
        state.update(_file=None, _pid=None, _memory=None, _shards={}, _readers=None)
        state.pop("_dset_id", None)
        state.pop("_space", None)
        return state

    def close(self) -> None:
        """Close the files this process opened, and let featurize delete the shards no split file maps."""
        if self._pid == os.getpid():
            if self._file is not None:
                self._file.close()
            for shard, _, _ in self._shards.values():
                shard.close()
        self._file, self._shards, self._memory = None, {}, None
        if self._readers is not None:
            self._readers.close()  # a forked worker closing its copy leaves the parent's lock held
            self._readers = None


def open_split(dataset: str, split: str, *, root: str | os.PathLike[str] | None = None,
               feature_id: str | None = None, frames: int | None = None, crop: Crop = "start", seed: int = 0,
               in_memory: bool | None = None) -> LogmelDataset:
    """The :class:`LogmelDataset` of one split of a featurized dataset, found by name under the storage root.

    Opens ``<root>/<dataset>/features/<feature_id>/<split>.h5`` (``feature_id`` defaults to the dataset's
    only feature set; with several, name one); an :class:`AudiobenchError` names the command
    that makes a missing file. ``frames`` defaults to each clip's true length (``None``), unlike
    ``LogmelDataset`` itself; the other options are :class:`LogmelDataset`'s.

    >>> test = open_split("synth", "test", root="audiobench-data")    # doctest: +SKIP
    >>> len(test), test.classes[0].name                                 # doctest: +SKIP
    (200, 'Train horn')
    """
    path = feature_file(DatasetPaths(resolve_root(root), dataset), split, feature_id)
    return LogmelDataset(path, frames=frames, crop=crop, seed=seed, in_memory=in_memory)


def pad_collate(batch: Sequence[dict[str, object]], *, padding_value: float) -> dict[str, torch.Tensor]:
    """Stack items of different lengths (``frames=None``): ``logmel`` padded with ``padding_value`` (the
    file's features of silence, :attr:`LogmelDataset.padding_value`), ``strong`` with 0; ``length`` tells the
    true frames of each.

    >>> data = LogmelDataset(path, frames=None)                                         # doctest: +SKIP
    >>> loader = DataLoader(data, batch_size=8, collate_fn=data.collate)                # doctest: +SKIP
    """
    pad = padding_value
    longest = max(int(item["logmel"].shape[0]) for item in batch)
    logmel = torch.full((len(batch), longest, batch[0]["logmel"].shape[1]), pad, dtype=torch.float32)
    for i, item in enumerate(batch):
        logmel[i, :item["logmel"].shape[0]] = item["logmel"]
    out: dict[str, torch.Tensor] = {
        "logmel": logmel,
        "weak": torch.stack([item["weak"] for item in batch]),
        "length": torch.stack([torch.as_tensor(item["length"]) for item in batch]),
        "index": torch.tensor([item["index"] for item in batch], dtype=torch.int64),
    }
    if "strong" in batch[0]:
        strong = torch.zeros((len(batch), longest, batch[0]["strong"].shape[1]), dtype=torch.float32)
        for i, item in enumerate(batch):
            strong[i, :item["strong"].shape[0]] = item["strong"]
        out["strong"] = strong
    return out


def _identity(path: Path) -> tuple[int, int, int, int]:
    """What tells a file from one renamed onto its name since: device, inode, size, modification time."""
    st = path.stat()
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _read_all(logmel: h5py.Dataset) -> np.ndarray:
    """Every row of a ``logmel`` dataset as one float32 array (float16 files are widened on the way)."""
    out = np.empty(logmel.shape, dtype=np.float32)
    logmel.read_direct(out)
    return out

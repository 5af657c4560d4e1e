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
    the split has strong labels and equals the file's ``strong`` over the window. The HDF5 file is opened
    lazily in each process, so ``DataLoader(num_workers=N)`` works; labels and lengths are read once, at
    construction. ``in_memory`` reads every log-mel into memory at construction too (default: when the
    file's log-mels take at most :data:`IN_MEMORY_BYTES`); otherwise each item is read from the file.
    """

    def __init__(self, path: Path, *, frames: Frames = TEN_SECONDS, crop: Crop = "start", seed: int = 0,
                 in_memory: bool | None = None) -> None:
        if frames is not None and frames != TEN_SECONDS and frames < 1:
            raise AudiobenchError(f"frames must be at least 1 (or None for true lengths), got {frames}")
        if crop not in ("start", "random"):
            raise AudiobenchError(f"crop must be 'start' or 'random', got {crop!r}")
        self.path = Path(path)
        self.frames = frames
        self.crop = crop
        self.seed = seed
        self.epoch = 0
        check_complete(self.path)
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
            nbytes = int(np.prod(f["logmel"].shape)) * np.dtype(np.float32).itemsize
            self.in_memory = nbytes <= IN_MEMORY_BYTES if in_memory is None else bool(in_memory)
            # Read now, in the constructing process: DataLoader workers forked from it share these pages
            # instead of each reading the file again every epoch.
            self._memory: np.ndarray | None = _read_all(f["logmel"]) if self.in_memory else None
            self.clip_ids: list[str] = list(f["clip_id"].asstr()[()])
            self.lengths = f["length"][()].astype(np.int64)
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
        if self.has_strong:  # events grouped by row: row i's events are _ev[_ev_start[i]:_ev_start[i + 1]]
            order = np.argsort(ev_clip, kind="stable")
            self._ev = np.stack([ev_class, first, stop], axis=1)[order]
            self._ev_start = np.searchsorted(ev_clip[order], np.arange(len(self.lengths) + 1))
        self._file: h5py.File | None = None
        self._pid: int | None = None

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
                with h5py.File(self.path, "r") as f:
                    self._memory = _read_all(f["logmel"])
            out[...] = self._memory[index, start:start + len(out)]
            return
        if self._file is None or self._pid != os.getpid():  # first use in this process (or a forked worker)
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
            self._dset_id = self._file["logmel"].id
            self._space = self._dset_id.get_space()
        self._space.select_hyperslab((index, start, 0), (1,) + out.shape)
        self._dset_id.read(h5py.h5s.create_simple(out.shape), self._space, out)

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
        state.update(_file=None, _pid=None, _memory=None)
        state.pop("_dset_id", None)
        state.pop("_space", None)
        return state

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None
        self._memory = None


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


def _read_all(logmel: h5py.Dataset) -> np.ndarray:
    """Every row of a ``logmel`` dataset as one float32 array (float16 files are widened on the way)."""
    out = np.empty(logmel.shape, dtype=np.float32)
    logmel.read_direct(out)
    return out

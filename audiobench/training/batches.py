"""Training batches gathered straight from a split held in memory, without a DataLoader (``--workers 0``).

At the demo's shape (width 0.0625, 298 frames, batch 8) a training step takes ~10 ms, and the DataLoader's
iterator, the per-clip reads and the per-clip painting of strong labels took ~0.2 ms of it: a few percent of
loop overhead against the bare step. Here a batch is gathered from the split's log-mel array (crop and
pad: one slice copy per clip, or one ``take`` when no clip is cropped or padded) and the strong labels
come from frame targets painted once per run, ~0.05 ms.

The batches are exactly :class:`~audiobench.features.dataset.LogmelDataset`'s, in exactly the order of
``DataLoader(data, batch_size=None, sampler=BatchSampler(RandomSampler(data, generator=g), B, False),
generator=g)``: each epoch draws from ``g`` what the DataLoader draws (its iterator's base seed, the
sampler's permutation, and the one RandomSampler draws for an empty remainder), so a seed trains the
same numbers either way (the pairing of ``compare``; tests/test_batches.py checks it against the DataLoader).
"""
from __future__ import annotations

import weakref
from collections.abc import Iterator

import numpy as np
import torch

from audiobench.features.dataset import LogmelDataset

# Strong frame targets of a whole split are painted once when they take at most this (uint8, one byte per
# frame and class: SL-DCASE-17's 1,591 clips × 998 frames × 17 classes take 27 MB); above, per batch.
LABELS_BYTES = 1 << 28  # 256 MiB
_LABELS: weakref.WeakKeyDictionary[LogmelDataset, np.ndarray | None] = weakref.WeakKeyDictionary()


class TrainBatches:
    """Shuffled fixed-length batches of ``data`` (a split read into memory, ``data.in_memory``), in an order
    fixed by ``seed``; iterate once per epoch (after ``data.set_epoch``), like a DataLoader.

    ``pin``: pin each batch's memory (for copies to a GPU that overlap the step).
    """

    def __init__(self, data: LogmelDataset, *, batch_size: int, seed: int, pin: bool = False) -> None:
        if not usable(data):
            raise ValueError(f"{data.path}: TrainBatches needs a fixed-length split held in memory")
        self.data = data
        self.batch_size = batch_size
        self.pin = pin
        self.generator = torch.Generator().manual_seed(seed)
        if data not in _LABELS:  # once per open split (a loader made again for each timing paints nothing)
            _LABELS[data] = frame_labels(data)
        self._labels = _LABELS[data]

    def __len__(self) -> int:
        return -(-len(self.data) // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        # The DataLoader's iterator draws its base seed from the generator before the sampler's permutation.
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        order = torch.randperm(len(self.data), generator=self.generator).numpy()
        for start in range(0, len(order), self.batch_size):
            yield self.batch(order[start:start + self.batch_size])
        # RandomSampler then draws the permutation of a remainder of the epoch (none here) before it stops.
        torch.randperm(len(self.data), generator=self.generator)

    def batch(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """The batch ``data[rows]`` gives (the same keys, values and dtypes)."""
        data = self.data
        memory = data._memory  # [N, stored frames, dims], float32: the Dataset's own copy, read at construction
        assert memory is not None and isinstance(data.frames, int)
        rows = np.asarray(rows, dtype=np.int64)
        lengths = data.lengths[rows]
        starts = np.zeros(len(rows), dtype=np.int64)
        for k in np.flatnonzero(lengths > data.frames) if data.crop == "random" else ():
            starts[k] = data.window(int(rows[k]))[0]  # the Dataset's own draw from (seed, epoch, row)
        n = np.minimum(lengths, data.frames)
        whole = data.frames == memory.shape[1] and bool((n == data.frames).all())  # no crop, no padding
        logmel = memory.take(rows, axis=0) if whole else self._windows(memory, rows, starts, n, data.padding_value)
        batch = {"logmel": torch.from_numpy(logmel), "weak": torch.from_numpy(data.weak[rows]),
                 "length": torch.from_numpy(n), "index": torch.from_numpy(rows)}
        if data.has_strong:
            if self._labels is None:  # too large to hold: painted per clip, as the Dataset does
                strong = np.zeros((len(rows), data.frames, len(data.classes)), dtype=np.float32)
                for k, row in enumerate(rows.tolist()):
                    data._strong(row, int(starts[k]), int(n[k]), strong[k])
            elif whole:
                strong = self._labels.take(rows, axis=0).astype(np.float32)
            else:
                strong = self._windows(self._labels, rows, starts, n, 0).astype(np.float32)
            batch["strong"] = torch.from_numpy(strong)
        return {k: v.pin_memory() for k, v in batch.items()} if self.pin else batch

    def _windows(self, source: np.ndarray, rows: np.ndarray, starts: np.ndarray, n: np.ndarray,
                 fill: float) -> np.ndarray:
        """``source[row, start:start + n]`` of each row, filled to ``frames`` with ``fill``.

        One slice copy per clip: faster than one fancy index of the whole batch (34 against 48 us for a
        demo batch).
        """
        out = np.full((len(rows), self.data.frames, source.shape[2]), fill, dtype=source.dtype)
        for k, (row, start, size) in enumerate(zip(rows.tolist(), starts.tolist(), n.tolist())):
            out[k, :size] = source[row, start:start + size]
        return out


def frame_labels(data: LogmelDataset) -> np.ndarray | None:
    """Every row's frame targets ``[N, stored frames, C]`` (uint8), painted once from the events as the
    Dataset paints a window; None without strong labels, or above :data:`LABELS_BYTES`."""
    memory = data._memory
    if not data.has_strong or memory is None:
        return None
    shape = (len(data), memory.shape[1], len(data.classes))
    if int(np.prod(shape)) > LABELS_BYTES:
        return None
    events = data._ev  # [events, 3]: class, first frame, stop frame; grouped by row
    row = np.repeat(np.arange(len(data)), np.diff(data._ev_start))
    first = np.maximum(events[:, 1], 0)
    stop = np.minimum(events[:, 2], data.lengths[row])
    edges = np.zeros((shape[0], shape[1] + 1, shape[2]), dtype=np.int32)
    keep = stop > first
    np.add.at(edges, (row[keep], first[keep], events[keep, 0]), 1)  # +1 where an event starts, -1 past its end
    np.add.at(edges, (row[keep], stop[keep], events[keep, 0]), -1)
    return (np.cumsum(edges[:, :-1], axis=1) > 0).astype(np.uint8)


def usable(data: LogmelDataset) -> bool:
    """Whether ``data`` can be batched here: a fixed length and every log-mel in memory."""
    return isinstance(data.frames, int) and data.in_memory and data._memory is not None

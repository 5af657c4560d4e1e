"""Training batches gathered straight from a split held in memory, without a DataLoader (``--workers 0``).

At the demo's shape (width 0.0625, 298 frames, batch 8) a training step takes ~10 ms, and the DataLoader's
iterator, the per-clip reads and the per-clip painting of strong labels took ~0.2 ms of it: a few percent of
loop overhead against the bare step. Here a batch is one fancy-index of the split's log-mel array (crop and
pad for every clip at once) and one scatter of its events, ~0.05 ms.

The batches are exactly :class:`~audiobench.features.dataset.LogmelDataset`'s, in exactly the order of
``DataLoader(data, batch_size=None, sampler=BatchSampler(RandomSampler(data, generator=g), B, False),
generator=g)``: each epoch draws from ``g`` what the DataLoader draws (its iterator's base seed, the
sampler's permutation, and the one RandomSampler draws for an empty remainder), so a seed trains the
same numbers either way (the pairing of ``compare``; tests/test_batches.py checks it against the DataLoader).
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from audiobench.features.dataset import LogmelDataset


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
        """The batch ``data[rows]`` gives (the same keys, values and dtypes), built for all rows at once."""
        data = self.data
        memory = data._memory  # [N, stored frames, dims], float32: the Dataset's own copy, read at construction
        assert memory is not None and isinstance(data.frames, int)
        frames = data.frames
        rows = np.asarray(rows, dtype=np.int64)
        lengths = data.lengths[rows]
        starts = np.zeros(len(rows), dtype=np.int64)
        for k in np.flatnonzero(lengths > frames) if data.crop == "random" else ():
            starts[k] = data.window(int(rows[k]))[0]  # the Dataset's own draw from (seed, epoch, row)
        n = np.minimum(lengths, frames)
        offset = np.arange(frames)
        inside = offset[None, :] < n[:, None]  # [B, frames]: frames of the clip, the rest is padding
        at = np.minimum(starts[:, None] + offset[None, :], memory.shape[1] - 1)
        logmel = memory[rows[:, None], at]
        logmel[~inside] = data.padding_value
        batch = {"logmel": torch.from_numpy(logmel), "weak": torch.from_numpy(data.weak[rows]),
                 "length": torch.from_numpy(n), "index": torch.from_numpy(rows)}
        if data.has_strong:
            batch["strong"] = torch.from_numpy(self._strong(rows, starts, n))
        return {k: v.pin_memory() for k, v in batch.items()} if self.pin else batch

    def _strong(self, rows: np.ndarray, starts: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Frame targets ``[B, frames, C]``: 1 where an event of the row covers a frame of its window."""
        data = self.data
        first, stop = data._ev_start[rows], data._ev_start[rows + 1]  # each row's events, grouped by row
        counts = stop - first
        k = np.repeat(np.arange(len(rows)), counts)  # the batch row of each event
        ev = data._ev[np.repeat(first - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())]
        a = np.maximum(ev[:, 1] - starts[k], 0)
        b = np.minimum(ev[:, 2] - starts[k], n[k])
        keep = b > a
        k, a, b, cls = k[keep], a[keep], b[keep], ev[keep, 0]
        edges = np.zeros((len(rows), data.frames + 1, len(data.classes)), dtype=np.int32)
        np.add.at(edges, (k, a, cls), 1)  # +1 where an event starts, -1 after it ends: covered where the sum > 0
        np.add.at(edges, (k, b, cls), -1)
        return (np.cumsum(edges[:, :-1], axis=1) > 0).astype(np.float32)


def usable(data: LogmelDataset) -> bool:
    """Whether ``data`` can be batched here: a fixed length and every log-mel in memory."""
    return isinstance(data.frames, int) and data.in_memory and data._memory is not None

"""Clip predictions on true lengths, as the paper infers on variable lengths (docs/model.md).

Training batches have a fixed length (padded with silence or cropped); evaluation does not pad: clips are
batched only with clips of the same true length, so each clip's prediction is exactly what a batch of one
would give (no padded segment ever enters the attention or the mean). Clips shorter than one segment
(16 frames) are the one exception: they are padded with the file's silence value to 16 frames.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from audiobench.features.dataset import LogmelDataset
from audiobench.models.net import Net
from audiobench.models.shape import SEGMENT_FRAMES


@dataclass(frozen=True)
class Predictions:
    """Clip probabilities ``scores`` ``[N, C]`` and weak ``targets`` ``[N, C]``, in dataset order."""

    scores: np.ndarray
    targets: np.ndarray

    def rows(self, rows: Sequence[int] | np.ndarray) -> Predictions:
        """The predictions of clips ``rows`` only (an ``--eval-on`` subset)."""
        return Predictions(self.scores[rows], self.targets[rows])

    def save(self, path: Path, clip_ids: Sequence[str]) -> None:
        """``clip_id``, ``scores`` and ``targets`` as a NumPy ``.npz`` (read back with :func:`numpy.load`)."""
        with open(path, "wb") as f:
            np.savez_compressed(f, clip_id=np.array(clip_ids, dtype=str), scores=self.scores, targets=self.targets)


def same_length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped by true length, at most ``batch_size`` per batch, in a fixed order."""
    groups: dict[int, list[int]] = defaultdict(list)
    for index, length in enumerate(lengths):
        groups[max(int(length), SEGMENT_FRAMES)].append(index)
    return [indices[i:i + batch_size] for _, indices in sorted(groups.items())
            for i in range(0, len(indices), batch_size)]


def _collate(items: list[dict], *, padding: float) -> dict[str, torch.Tensor]:
    frames = max(SEGMENT_FRAMES, max(int(item["logmel"].shape[0]) for item in items))
    logmel = torch.full((len(items), frames, items[0]["logmel"].shape[1]), padding)
    for row, item in enumerate(items):
        x = torch.as_tensor(item["logmel"])
        logmel[row, : x.shape[0]] = x
    return {"logmel": logmel,
            "weak": torch.stack([torch.as_tensor(item["weak"]) for item in items])}


def batches(dataset: LogmelDataset, batch_size: int, rows: Sequence[int] | np.ndarray | None = None
            ) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
    """``(positions, batch)`` of same-length batches of a true-length dataset (``frames=None``).

    ``positions`` index ``rows`` (the clips to read, default all): with every clip, they are dataset indices.
    """
    index = np.arange(len(dataset)) if rows is None else np.asarray(rows, dtype=np.int64)
    plan = same_length_batches(dataset.lengths[index].tolist(), batch_size)
    collate = partial(_collate, padding=dataset.padding_value)
    sampler = [[int(index[i]) for i in batch] for batch in plan]
    yield from zip(plan, DataLoader(dataset, batch_sampler=sampler, collate_fn=collate))


@torch.no_grad()
def predict_dataset(net: Net, dataset: LogmelDataset, *, device: torch.device, batch_size: int = 32,
            bf16: bool = False, rows: Sequence[int] | np.ndarray | None = None) -> Predictions:
    """Clip probabilities of every clip of ``dataset`` (true lengths), computed in eval mode.

    ``rows``: only these clips, in this order (``evaluate --eval-on``), instead of every clip.
    """
    was_training = net.training
    net.eval()
    scores: np.ndarray | None = None
    targets: np.ndarray | None = None
    n = len(dataset) if rows is None else len(rows)
    for positions, batch in batches(dataset, batch_size, rows):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            clip = net(batch["logmel"].to(device)).clip
        if scores is None:
            scores = np.zeros((n, clip.shape[1]), dtype=np.float32)
            targets = np.zeros((n, clip.shape[1]), dtype=np.float32)
        scores[positions] = clip.float().cpu().numpy()
        targets[positions] = batch["weak"].numpy()
    net.train(was_training)
    if scores is None or targets is None:
        raise ValueError("predict needs at least one clip")
    return Predictions(scores, targets)

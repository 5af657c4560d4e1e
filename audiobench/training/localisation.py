"""How well the attention matrix A localises events, measured against the strong labels (docs/model.md).

Two numbers per split with strong labels, over every clip of at least two segments:

- **concentration**: for each (clip, present class) pair, the attention mass the class puts on its own event
  segments divided by the uniform share (its event segments / all segments); the mean over pairs. 1 is what
  a flat A gives, above 1 means attention lies on the events. Segment labels follow the receptive-field
  rule the strong targets use (:func:`audiobench.models.losses.segment_labels`). Pairs whose events cover
  every segment are left out: their share is 1 whatever A is.
- **absent-class edge mass**: for each (clip, absent class) pair, the mass on the first and last segment;
  its mean beside the uniform share ``2 / T'`` (``absent_edge_uniform``). A class the clip does not
  contain has nothing to attend to; where its attention goes shows in Fig. 5 as bright edge columns.

>>> localisation(net, splits, device=torch.device("cpu"))["test"]["concentration"]   # doctest: +SKIP
2.06
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from audiobench.features.dataset import LogmelDataset
from audiobench.models.losses import segment_labels
from audiobench.models.net import Net
from audiobench.models.shape import SEGMENT_FRAMES
from audiobench.training.inference import same_length_batches
from audiobench.training.splits import Splits

MIN_SEGMENTS = 2  # a clip of one segment has no edges apart from its only segment, and nothing to localise


class _Sums:
    """Running sums over (clip, class) pairs of one split."""

    def __init__(self) -> None:
        self.clips = self.pairs = self.absent_pairs = 0
        self.ratio = self.own = self.share = self.present_edge = 0.0
        self.absent_edge = self.edge_uniform = 0.0

    def add(self, attention: np.ndarray, segments: np.ndarray, weak: np.ndarray) -> None:
        """One clip: ``attention`` and ``segments`` ``[C, T']``, ``weak`` ``[C]``."""
        steps = attention.shape[1]
        self.clips += 1
        edges = attention[:, 0] + attention[:, -1]
        covered = segments.sum(axis=1)
        present = (covered > 0) & (covered < steps)  # events somewhere, but not everywhere
        own = (attention * segments).sum(axis=1)[present]
        share = covered[present] / steps
        self.pairs += int(present.sum())
        self.ratio += float((own / share).sum())
        self.own += float(own.sum())
        self.share += float(share.sum())
        self.present_edge += float(edges[present].sum())
        absent = (weak == 0) & (covered == 0)
        self.absent_pairs += int(absent.sum())
        self.absent_edge += float(edges[absent].sum())
        self.edge_uniform += 2.0 / steps * int(absent.sum())

    def record(self) -> dict[str, Any]:
        pairs, absent = max(self.pairs, 1), max(self.absent_pairs, 1)
        return {"clips": self.clips, "pairs": self.pairs,
                "concentration": self.ratio / pairs if self.pairs else None,
                "own_mass": self.own / pairs if self.pairs else None,
                "own_uniform": self.share / pairs if self.pairs else None,
                "present_edge_mass": self.present_edge / pairs if self.pairs else None,
                "absent_pairs": self.absent_pairs,
                "absent_edge_mass": self.absent_edge / absent if self.absent_pairs else None,
                "absent_edge_uniform": self.edge_uniform / absent if self.absent_pairs else None}


@torch.no_grad()
def measure(net: Net, dataset: LogmelDataset, *, device: torch.device, batch_size: int = 32,
            bf16: bool = False) -> dict[str, Any] | None:
    """The localisation record of one true-length split (``None``: no attention, or no strong labels).

    Clips are run at their true lengths, batched by length as :mod:`audiobench.training.inference` does,
    so A is the attention the clip's own prediction pooled with.
    """
    if not net.attention or not dataset.has_strong:
        return None
    rows = np.flatnonzero(dataset.lengths >= MIN_SEGMENTS * SEGMENT_FRAMES)
    plan = [[int(rows[i]) for i in batch] for batch in same_length_batches(dataset.lengths[rows].tolist(),
                                                                            batch_size)]
    sums = _Sums()
    was_training = net.training
    net.eval()
    for batch in DataLoader(dataset, batch_sampler=plan, collate_fn=dataset.collate):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            attention = net(batch["logmel"].to(device)).attention
        assert attention is not None  # net.attention
        attention = attention.float().cpu()
        segments = segment_labels(batch["strong"], attention.shape[-1])
        for a, y, w in zip(attention.numpy(), segments.numpy(), batch["weak"].numpy()):
            sums.add(a.astype(np.float64), y, w)
    net.train(was_training)
    return sums.record()


def localisation(net: Net, splits: Splits, *, device: torch.device, batch_size: int = 32,
                 bf16: bool = False) -> dict[str, dict[str, Any] | None] | None:
    """``{"val": ..., "test": ...}`` of :func:`measure` for a run's splits (``None`` without attention)."""
    if not net.attention:
        return None
    return {split: measure(net, splits.eval_set(split), device=device, batch_size=batch_size, bf16=bf16)
            for split in ("val", "test")}

"""Segment times in seconds and per-clip segment matrices, by the rule the strong targets use.

Segment ``t`` is fed by input frames ``[16t, 16t + 16)`` (:data:`audiobench.models.shape.SEGMENT_FRAMES`,
the same rule :func:`audiobench.models.losses.segment_labels` labels segments with), and frame ``f`` covers
samples ``[shift f, shift f + length)``. Score tables need contiguous rows, so segment ``t`` is written as
``[16t · shift, 16(t + 1) · shift) / rate`` and the last one ends where its last frame ends
(``((16T − 1) · shift + length) / rate``): every second a segment's frames cover belongs to one row.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from audiobench.features.base import Extractor
from audiobench.features.dataset import LogmelDataset
from audiobench.models.net import Net
from audiobench.models.shape import SEGMENT_FRAMES, segments_for
from audiobench.training.inference import batches


def clip_seconds(extractor: Extractor, frames: int) -> float:
    """The seconds ``frames`` frames cover (the clip's duration as the frame rule sees it)."""
    if frames <= 0:
        return 0.0
    return ((frames - 1) * extractor.frame_shift + extractor.frame_length) / extractor.sample_rate


def segment_bounds(extractor: Extractor, frames: int) -> np.ndarray:
    """``[T' + 1]`` segment boundaries in seconds for a clip of ``frames`` true frames.

    A clip shorter than one segment is scored padded to one (:mod:`audiobench.training.inference`): its one
    segment spans the clip.
    """
    count = max(segments_for(frames), 1)
    starts = np.arange(count) * SEGMENT_FRAMES * extractor.frame_shift / extractor.sample_rate
    end = clip_seconds(extractor, max(count * SEGMENT_FRAMES, 1) if frames >= SEGMENT_FRAMES else frames)
    return np.append(starts, max(end, starts[-1] + 1e-3))


@dataclass(frozen=True)
class SegmentScores:
    """One split's segment outputs: per clip ``segments`` Xa ``[C, T']`` and ``attention`` A (or None)."""

    clip_ids: tuple[str, ...]
    bounds: tuple[np.ndarray, ...]
    segments: tuple[np.ndarray, ...]
    attention: tuple[np.ndarray, ...] | None
    durations: tuple[float, ...]

    def source(self, name: str) -> tuple[np.ndarray, ...]:
        """The matrices of ``segments`` or ``attention``."""
        if name == "attention":
            if self.attention is None:
                raise ValueError("this run has no attention")
            return self.attention
        return self.segments


SOURCES = ("segments", "attention")  # what score tables are written from


@torch.no_grad()
def segment_scores(net: Net, dataset: LogmelDataset, *, device: torch.device, batch_size: int = 32,
                   bf16: bool = False, rows: Sequence[int] | np.ndarray | None = None) -> SegmentScores:
    """Xa and A of every clip of a true-length ``dataset`` (or of ``rows``), batched as inference batches them."""
    was_training = net.training
    net.eval()
    index = np.arange(len(dataset)) if rows is None else np.asarray(rows, dtype=np.int64)
    xa: list[np.ndarray | None] = [None] * len(index)
    att: list[np.ndarray | None] = [None] * len(index)
    for positions, batch in batches(dataset, batch_size, index):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = net(batch["logmel"].to(device))
        for k, position in enumerate(positions):
            xa[position] = out.xa[k].float().cpu().numpy()
            if out.attention is not None:
                att[position] = out.attention[k].float().cpu().numpy()
    net.train(was_training)
    lengths = [int(dataset.lengths[i]) for i in index]
    extractor = dataset.extractor
    has_attention = all(a is not None for a in att)
    return SegmentScores(tuple(dataset.clip_ids[i] for i in index),
                         tuple(segment_bounds(extractor, n) for n in lengths), tuple(xa),  # type: ignore[arg-type]
                         tuple(att) if has_attention else None,  # type: ignore[arg-type]
                         tuple(clip_seconds(extractor, n) for n in lengths))

"""The three feature splits a training run reads, opened and checked once.

``train`` yields fixed-length items (padded with silence or cropped at random, seeded by the run's seed and
the epoch); ``val`` and ``test`` yield true-length items (their ``lengths`` let inference batch equal
lengths together).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from audiobench.features.store import feature_file, summarize_split
from audiobench.core.records import ClassInfo
from audiobench.features.dataset import LogmelDataset
from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths
from audiobench.models.shape import SEGMENT_FRAMES

SPLITS = ("train", "val", "test")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Splits:
    files: dict[str, Path]
    train: LogmelDataset
    val: LogmelDataset
    test: LogmelDataset

    @property
    def classes(self) -> tuple[ClassInfo, ...]:
        return tuple(self.train.classes)

    def eval_set(self, split: str) -> LogmelDataset:
        """A true-length evaluation split (``val`` or ``test``)."""
        if split not in ("val", "test"):
            raise ValueError(f"no evaluation split {split!r}")
        return self.val if split == "val" else self.test


def open_splits(paths: DatasetPaths, *, feature_id: str | None, frames: int, seed: int) -> Splits:
    """Open train/val/test of a dataset's feature set; refuse splits whose classes differ or that are empty."""
    files = {split: feature_file(paths, split, feature_id) for split in SPLITS}
    train = LogmelDataset(files["train"], frames=frames, crop="random", seed=seed)
    val = LogmelDataset(files["val"], frames=None)
    test = LogmelDataset(files["test"], frames=None)
    for split, dataset in (("train", train), ("val", val), ("test", test)):
        if [c.mid for c in dataset.classes] != [c.mid for c in train.classes]:
            raise AudiobenchError(f"{files[split]}: its classes differ from those of {files['train']}")
        if len(dataset) == 0:
            raise AudiobenchError(f"{files[split]}: split {split!r} holds no clip; run `audiobench featurize "
                                  f"{paths.name}` or check `audiobench status {paths.name}`")
    return Splits(files, train, val, test)


def training_frames(paths: DatasetPaths, *, feature_id: str | None, frames: int | None) -> int:
    """The training input length: ``frames``, or with ``None`` the longest clip of the training split.

    So clips are neither padded past their own length (3 s clips trained as 10 s: twice the time, another
    mAP) nor cropped unless asked. An explicit ``frames`` shorter than the longest clip is kept, with a
    one-line notice that clips are cropped.
    """
    longest = summarize_split(feature_file(paths, "train", feature_id)).longest
    if frames is None:
        return max(longest, SEGMENT_FRAMES)
    if frames < longest:
        log.warning("training clips are cropped to %d frames (--frames); the longest has %d "
                    "(leave --frames out to train on whole clips)", frames, longest)
    return frames

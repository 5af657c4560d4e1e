"""The three feature splits a training run reads, opened and checked once.

They are the splits that play the roles ``train``, ``val`` and ``test`` (``audiobench.data.roles``: as the
dataset's manifest says, else the splits of those names). ``train`` yields fixed-length items (padded with silence or cropped at random, seeded by the run's seed and
the epoch); ``val`` and ``test`` yield true-length items (their ``lengths`` let inference batch equal
lengths together).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from audiobench.features.store import feature_file, summarize_split
from audiobench.core.records import ClassInfo
from audiobench.features.dataset import LogmelDataset
from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths
from audiobench.data.roles import split_for
from audiobench.models.shape import SEGMENT_FRAMES

SPLITS = ("train", "val", "test")  # the roles; ``Splits.files`` maps each to its split's file
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
    names = {role: split_for(paths, role) for role in SPLITS}
    files = {role: feature_file(paths, names[role], feature_id) for role in SPLITS}
    train = LogmelDataset(files["train"], frames=frames, crop="random", seed=seed)
    val = LogmelDataset(files["val"], frames=None)
    test = LogmelDataset(files["test"], frames=None)
    return check_splits(Splits(files, train, val, test), dataset=paths.name)


def splits_of(datasets: Mapping[str, LogmelDataset], *, frames: int | None, seed: int) -> Splits:
    """The splits of open datasets ``{"train": ..., "val": ..., "test": ...}``, for training without a name.

    ``val`` and ``test`` must give true lengths (``frames=None``). A training split opened with
    ``frames=None`` is read again as :func:`open_splits` reads it: at ``frames`` (default: its longest
    clip), cropped at random from ``seed``; one opened with a fixed ``frames`` is used as it is.
    """
    if not isinstance(datasets, Mapping):
        raise AudiobenchError("expected a dataset name or the open datasets {'train': ..., 'val': ..., "
                              f"'test': ...}}, got a {type(datasets).__name__}")
    if sorted(datasets) != sorted(SPLITS):
        raise AudiobenchError(f"expected the datasets of splits {', '.join(SPLITS)}, "
                              f"got {', '.join(map(str, datasets))}")
    for split in SPLITS:
        if not isinstance(datasets[split], LogmelDataset):
            raise AudiobenchError(f"the {split} split is a {type(datasets[split]).__name__}, not a LogmelDataset "
                                  "(open it with audiobench.open_split)")
    for split in ("val", "test"):
        if datasets[split].frames is not None:
            raise AudiobenchError(f"{datasets[split].path}: the {split} split is evaluated on true lengths; "
                                  "open it with frames=None")
    train = datasets["train"]
    if train.frames is None:
        train = LogmelDataset(train.path, frames=resolve_frames(int(train.lengths.max(initial=0)), frames),
                              crop="random", seed=seed, in_memory=train.in_memory)
    elif frames is not None and frames != train.frames:
        raise AudiobenchError(f"frames={frames}, but the training split was opened with frames={train.frames}: "
                              "give the length once")
    files = {split: datasets[split].path for split in SPLITS}
    splits = Splits(files, train, datasets["val"], datasets["test"])
    return check_splits(splits, dataset=summarize_split(files["train"]).dataset)


def check_splits(splits: Splits, *, dataset: str) -> Splits:
    """``splits`` unless their classes differ or one is empty (an error naming the file)."""
    files = splits.files
    for split, data in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
        if [c.mid for c in data.classes] != [c.mid for c in splits.train.classes]:
            raise AudiobenchError(f"{files[split]}: its classes differ from those of {files['train']}")
        if data.extractor != splits.train.extractor:
            raise AudiobenchError(f"{files[split]}: its features ({data.extractor.name}) differ from those of "
                                  f"{files['train']}; run `audiobench featurize {dataset}` again")
        if len(data) == 0:
            raise AudiobenchError(f"{files[split]}: split {split!r} holds no clip; run `audiobench featurize "
                                  f"{dataset}` or check `audiobench status {dataset}`")
    return splits


def training_frames(paths: DatasetPaths, *, feature_id: str | None, frames: int | None) -> int:
    """The training input length of a dataset's training split (see :func:`resolve_frames`)."""
    return resolve_frames(summarize_split(feature_file(paths, split_for(paths, "train"), feature_id)).longest,
                          frames)


def resolve_frames(longest: int, frames: int | None) -> int:
    """The training input length: ``frames``, or with ``None`` the longest clip of the training split.

    So clips are neither padded past their own length (3 s clips trained as 10 s: twice the time, another
    mAP) nor cropped unless asked. An explicit ``frames`` shorter than the longest clip is kept, with a
    one-line notice that clips are cropped.
    """
    if frames is None:
        return max(longest, SEGMENT_FRAMES)
    if frames < longest:
        log.warning("training clips are cropped to %d frames (--frames); the longest has %d "
                    "(leave --frames out to train on whole clips)", frames, longest)
    return frames

"""TrainBatches (``--workers 0``, split in memory): the DataLoader's batches, in its order, without it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler

from audiobench.core.layout import DatasetPaths
from audiobench.features.dataset import LogmelDataset
from audiobench.training import batches
from audiobench.training.batches import TrainBatches
from audiobench.training.splits import open_splits
from toydata import write_features


@pytest.mark.parametrize("frames, labels_bytes", [
    (40, batches.LABELS_BYTES),  # cropped at random (and padded)
    (96, batches.LABELS_BYTES),  # cropped and padded
    (130, batches.LABELS_BYTES),  # padded past the longest clip
    (40, 0),  # strong labels painted per batch (a split too large to paint once)
    (None, batches.LABELS_BYTES),  # every clip as long as the input: no crop, no padding
])
def test_the_batches_and_order_of_the_dataloader_over_epochs(tmp_path: Path, monkeypatch, frames: int | None,
                                                              labels_bytes: int) -> None:
    monkeypatch.setattr(batches, "LABELS_BYTES", labels_bytes)
    random = [int(n) for n in np.random.default_rng(1).integers(20, 120, 30)]
    lengths = {"train": [96] * 30 if frames is None else random, "val": [96] * 4, "test": [96] * 4}
    write_features(tmp_path, sizes=(30, 4, 4), lengths=lengths)
    uniform, frames = frames is None, frames or 96
    splits = open_splits(DatasetPaths(tmp_path, "toy"), feature_id=None, frames=frames, seed=3)
    found = splits.train.lengths
    assert splits.train.in_memory and (found == frames).all() == uniform
    generator = torch.Generator().manual_seed(3)
    plain = DataLoader(splits.train, batch_size=None, generator=generator,
                       sampler=BatchSampler(RandomSampler(splits.train, generator=generator), 8, drop_last=False))
    ours = TrainBatches(splits.train, batch_size=8, seed=3)
    assert len(ours) == len(plain) == 4
    for epoch in (1, 2):
        splits.train.set_epoch(epoch)
        a, b = list(ours), list(plain)
        assert [x["index"].tolist() for x in a] == [y["index"].tolist() for y in b]
        for x, y in zip(a, b):
            assert set(x) == set(y) == {"logmel", "weak", "length", "index", "strong"}
            for key in x:
                assert x[key].dtype == y[key].dtype and torch.equal(x[key], y[key]), key


def test_a_split_not_in_memory_is_refused(tmp_path: Path) -> None:
    paths = write_features(tmp_path, sizes=(8, 4, 4))
    data = LogmelDataset(next((paths.dir / "features").glob("*/train.h5")), frames=64, in_memory=False)
    with pytest.raises(ValueError, match="held in memory"):
        TrainBatches(data, batch_size=4, seed=0)

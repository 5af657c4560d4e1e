"""The HDF5 feature files and the torch Dataset over them, on a real featurized toy dataset."""
from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import shutil

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from audiobench import __version__
from audiobench.data.inventory import feature_sets
from audiobench.features.store import SplitHeader, feature_file, read_existing, summarize_split
from audiobench.features.dataset import LogmelDataset
from audiobench.core.errors import AudiobenchError
from audiobench.features.featurize import featurize
from audiobench.features.vggish import DEFAULT_PARAMS, feature_id
from audiobench.core.layout import DatasetPaths
from audiobench.data.ledger import Ledger
from test_featurize import CLASSES, make_dataset

PAD = np.float32(np.log(0.01))


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> DatasetPaths:
    """6 strongly labelled train clips and 4 weakly labelled val clips, 1.0 to 1.4 s long, featurized."""
    paths = make_dataset(tmp_path_factory.mktemp("cache"))
    featurize("toy", root=paths.root, quiet=True)
    return paths


def _frame_labels(onset: float, offset: float, n_frames: int) -> list[int]:
    """The frames an event labels, straight from the rule: frame t spans [0.01 t, 0.01 t + 0.025) seconds."""
    return [t for t in range(n_frames) if t * 0.01 < offset and t * 0.01 + 0.025 > onset and offset > onset]


def test_split_file_layout_and_attributes(toy):
    path = feature_file(toy, "train")
    assert path == toy.dir / "features" / feature_id() / "train.h5"
    with Ledger(toy.ledger) as ledger:
        clips = ledger.clips(split="train")
        audio = ledger.audio(split="train")
    with h5py.File(path, "r") as f:
        n, t_max = 6, max(DEFAULT_PARAMS.num_frames(a.samples) for a in audio.values())
        assert f["logmel"].shape == (n, t_max, 64) and f["logmel"].dtype == np.float32
        assert f["logmel"].is_virtual and f["logmel"].fillvalue == PAD  # rows in shards, padding as fill
        for source in f["logmel"].virtual_sources():  # named relative to the split file: the folder can move
            assert source.file_name.startswith("shards/train/shard-") and source.dset_name == "logmel"
        assert f["strong"].shape == (n, t_max, 3) and f["strong"].dtype == np.uint8
        assert f["weak"].dtype == np.uint8 and f["length"].dtype == np.int32
        assert list(f["clip_id"].asstr()[()]) == [c.clip_id for c in clips]  # sorted by clip id
        assert list(f["ytid"].asstr()[()]) == [c.source_id for c in clips]
        assert f["start"].dtype == np.float64 and list(f["start"][()]) == [c.start for c in clips]
        assert list(f["end"][()]) == [c.end for c in clips]
        lengths = f["length"][()]
        assert list(lengths) == [1 + (audio[c.clip_id].samples - 400) // 160 for c in clips]
        for i, c in enumerate(clips):
            assert list(np.flatnonzero(f["weak"][i])) == list(c.weak)
            assert np.all(f["logmel"][i, lengths[i]:] == PAD)  # padding: the log-mel of silence
            assert np.all(f["logmel"][i, :lengths[i]] > PAD - 1e-3)
        attrs = dict(f.attrs)
    assert attrs["complete"] and attrs["has_strong"]
    assert (attrs["dataset"], attrs["split"], attrs["dtype"]) == ("toy", "train", "float32")
    assert attrs["feature_id"] == feature_id() and attrs["audiobench_version"] == __version__
    assert list(attrs["class_mids"]) == [c.mid for c in CLASSES]
    assert list(attrs["class_names"]) == [c.name for c in CLASSES]
    assert {k: attrs[k] for k in asdict(DEFAULT_PARAMS)} == asdict(DEFAULT_PARAMS)
    assert datetime.fromisoformat(attrs["created"]).tzinfo is not None
    assert attrs["padding_value"] == pytest.approx(np.log(0.01))


def test_strong_targets_and_events_follow_the_frame_rule(toy):
    with Ledger(toy.ledger) as ledger:
        clips = ledger.clips(split="train")
    with h5py.File(feature_file(toy, "train"), "r") as f:
        strong, lengths = f["strong"][()], f["length"][()]
        ev = {k: f["events"][k][()] for k in ("clip", "class", "onset", "offset")}
    expected_events = [(i, e.class_index, e.onset, e.offset) for i, c in enumerate(clips) for e in c.events]
    assert list(zip(*(ev[k].tolist() for k in ("clip", "class", "onset", "offset")))) == expected_events
    for i, clip in enumerate(clips):
        expected = np.zeros(strong.shape[1:], dtype=np.uint8)
        for e in clip.events:
            expected[_frame_labels(e.onset, e.offset, int(lengths[i])), e.class_index] = 1
        assert np.array_equal(strong[i], expected), clip.clip_id
        zero_length = [e for e in clip.events if e.onset == e.offset][0]
        assert zero_length.class_index in clip.weak  # weak label, yet no frame of its own
    assert strong.any()


def test_weak_only_split_has_no_strong_targets(toy):
    with h5py.File(feature_file(toy, "val"), "r") as f:
        assert "strong" not in f and "events" not in f and not f.attrs["has_strong"]
        assert f["weak"].shape == (4, 3)
    data = LogmelDataset(feature_file(toy, "val"))
    assert not data.has_strong and "strong" not in data[0]


def test_float16_files_round_the_same_features(toy, tmp_path):
    shutil.copytree(toy.dir, tmp_path / "toy")  # a second feature set asks later tests which one: kept apart
    toy = DatasetPaths(tmp_path, "toy")
    featurize("toy", root=toy.root, quiet=True, dtype="float16", splits=["val"])
    half = feature_file(toy, "val", feature_id(dtype="float16"))
    single = feature_file(toy, "val", feature_id())
    assert half.parent.name != single.parent.name
    with h5py.File(half, "r") as f16, h5py.File(single, "r") as f32:
        assert f16["logmel"].dtype == np.float16 and f16.attrs["dtype"] == "float16"
        np.testing.assert_allclose(f16["logmel"][()].astype(np.float32), f32["logmel"][()], atol=5e-3)
    item = LogmelDataset(half)[0]
    assert item["logmel"].dtype == torch.float32
    assert item["logmel"][-1, 0].item() == float(np.float16(np.log(0.01)))  # padding as the file stores it


def test_dataset_pads_crops_and_labels_like_the_file(toy):
    path = feature_file(toy, "train")
    with h5py.File(path, "r") as f:
        logmel, strong, weak, lengths = f["logmel"][()], f["strong"][()], f["weak"][()], f["length"][()]
    data = LogmelDataset(path)  # 998 frames: every toy clip is padded
    assert len(data) == 6 and data.has_strong and data.classes == CLASSES
    assert data.clip_ids == sorted(data.clip_ids)
    item = data[1]
    n = int(lengths[1])
    assert item["logmel"].shape == (998, 64) and item["logmel"].dtype == torch.float32
    assert np.array_equal(item["logmel"][:n].numpy(), logmel[1, :n])
    assert torch.all(item["logmel"][n:] == float(PAD))
    assert item["length"].item() == n and item["length"].dtype == torch.int64 and item["index"] == 1
    assert np.array_equal(item["weak"].numpy(), weak[1].astype(np.float32))
    assert item["strong"].shape == (998, 3) and np.array_equal(item["strong"][:n].numpy(), strong[1, :n])
    assert not item["strong"][n:].any()

    start_crop = LogmelDataset(path, frames=50)
    assert np.array_equal(start_crop[2]["logmel"].numpy(), logmel[2, :50])
    assert start_crop[2]["length"].item() == 50

    random_crop = LogmelDataset(path, frames=50, crop="random", seed=3)
    offsets = set()
    for epoch in range(4):
        random_crop.set_epoch(epoch)
        for i in range(len(random_crop)):
            first, n_read, size = random_crop.window(i)
            item = random_crop[i]
            assert (n_read, size) == (50, 50) and 0 <= first <= lengths[i] - 50
            assert np.array_equal(item["logmel"].numpy(), logmel[i, first:first + 50])
            assert np.array_equal(item["strong"].numpy(), strong[i, first:first + 50])
            offsets.add(first)
    assert len(offsets) > 4  # crops move
    again = LogmelDataset(path, frames=50, crop="random", seed=3)
    again.set_epoch(3)
    assert [again.window(i) for i in range(6)] == [random_crop.window(i) for i in range(6)]  # reproducible

    true_length = LogmelDataset(path, frames=None)
    assert [true_length[i]["logmel"].shape[0] for i in range(6)] == list(lengths)
    assert true_length[-1]["index"] == 5
    with pytest.raises(IndexError):
        true_length[6]


@pytest.mark.parametrize("frames,crop", [(998, "start"), (40, "random"), (None, "start")])
def test_reading_from_memory_gives_the_items_the_file_gives(toy, frames, crop):
    path = feature_file(toy, "train")
    on_disk = LogmelDataset(path, frames=frames, crop=crop, seed=3, in_memory=False)
    in_memory = LogmelDataset(path, frames=frames, crop=crop, seed=3, in_memory=True)
    assert LogmelDataset(path).in_memory  # a small file is read into memory by default
    for data in (on_disk, in_memory):
        data.set_epoch(2)
    for i in range(len(on_disk)):
        a, b = on_disk[i], in_memory[i]
        assert a.keys() == b.keys()
        for key in ("logmel", "weak", "strong", "length"):
            assert torch.equal(a[key], b[key]), (i, key)


@pytest.mark.parametrize("in_memory", [True, False])
def test_a_batch_of_indices_is_the_stack_of_those_items(toy, in_memory):
    data = LogmelDataset(feature_file(toy, "train"), frames=40, crop="random", seed=5, in_memory=in_memory)
    data.set_epoch(1)
    order = [4, 0, 5, 2, -1]
    batch = data[order]
    items = [data[i] for i in order]
    for key in ("logmel", "weak", "strong", "length"):
        expected = torch.stack([item[key] for item in items])
        assert batch[key].dtype == expected.dtype and torch.equal(batch[key], expected), key
    assert batch["index"].tolist() == [4, 0, 5, 2, 5]
    assert torch.equal(data[torch.tensor(4)]["logmel"], items[0]["logmel"])  # a 0-d index is one item
    assert torch.equal(data[np.array([4, 0])]["logmel"], batch["logmel"][:2])
    with pytest.raises(IndexError, match="out of range"):
        data[[0, 6]]
    with pytest.raises(AudiobenchError, match="fixed frames="):
        LogmelDataset(feature_file(toy, "train"), frames=None)[[0, 1]]


def test_pad_collate_batches_true_lengths(toy):
    data = LogmelDataset(feature_file(toy, "train"), frames=None)
    batch = data.collate([data[0], data[3]])  # pad_collate with the file's padding value
    longest = max(data.lengths[0], data.lengths[3])
    assert batch["logmel"].shape == (2, longest, 64) and batch["strong"].shape == (2, longest, 3)
    assert batch["length"].tolist() == [data.lengths[0], data.lengths[3]]
    assert batch["index"].tolist() == [0, 3]
    short = int(np.argmin([data.lengths[0], data.lengths[3]]))
    assert torch.all(batch["logmel"][short, batch["length"][short]:] == float(PAD))


def test_dataloader_with_worker_processes_reads_every_item(toy):
    data = LogmelDataset(feature_file(toy, "train"), frames=120)
    expected = [data[i] for i in range(len(data))]  # opens the file in this process first: workers reopen it
    loader = DataLoader(data, batch_size=4, num_workers=2, shuffle=False)
    batches = list(loader)
    logmel = torch.cat([b["logmel"] for b in batches])
    assert logmel.shape == (6, 120, 64)
    assert torch.equal(logmel, torch.stack([e["logmel"] for e in expected]))
    assert torch.equal(torch.cat([b["strong"] for b in batches]), torch.stack([e["strong"] for e in expected]))
    assert torch.cat([b["index"] for b in batches]).tolist() == list(range(6))


def test_dataset_refuses_bad_arguments(toy):
    from audiobench.core.errors import AudiobenchError

    with pytest.raises(AudiobenchError, match="frames must be at least 1"):
        LogmelDataset(feature_file(toy, "train"), frames=0)
    with pytest.raises(AudiobenchError, match="crop must be"):
        LogmelDataset(feature_file(toy, "train"), crop="middle")
    broken = Path(feature_file(toy, "train")).with_name("broken.h5")
    broken.write_bytes(b"nope")
    with pytest.raises(AudiobenchError, match="not a readable HDF5 feature file"):
        LogmelDataset(broken)


def test_a_feature_folder_moved_whole_reads_the_same_and_a_split_file_alone_is_refused(toy, tmp_path):
    items = [LogmelDataset(feature_file(toy, "train"), in_memory=False)[i]["logmel"] for i in range(6)]
    moved = DatasetPaths(tmp_path / "elsewhere", "toy")
    shutil.copytree(toy.dir, moved.dir)
    data = LogmelDataset(feature_file(moved, "train"), in_memory=False)
    assert all(torch.equal(data[i]["logmel"], items[i]) for i in range(6))
    alone = tmp_path / "alone" / "train.h5"
    alone.parent.mkdir()
    shutil.copyfile(feature_file(toy, "train"), alone)
    with pytest.raises(AudiobenchError, match=r"alone/shards/train/shard-.*\.h5, which is missing"):
        LogmelDataset(alone)


RELEASE_0_1 = Path(__file__).parent / "data" / "release-0.1"


def test_split_files_of_release_0_1_are_read_as_they_are(tmp_path):
    shutil.copytree(RELEASE_0_1 / "synth", tmp_path / "synth")
    paths = DatasetPaths(tmp_path, "synth")
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        path = feature_file(paths, split)
        assert path.parent.name == feature_id()  # the same recipe, the same feature id
        summary = summarize_split(path)
        assert (summary.split, summary.clips, summary.dtype, summary.longest) == (split, n, "float32", 198)
        with h5py.File(path, "r") as f:
            logmel, lengths, attrs = f["logmel"][()], f["length"][()], dict(f.attrs)
            assert not f["logmel"].is_virtual
        header = SplitHeader("synth", split, tuple(LogmelDataset(path).classes), bool(attrs["has_strong"]), feature_id(),
                             "float32")
        existing = read_existing(path, header)
        assert len(existing.clip_ids) == n and existing.audio_sha256 == ("",) * n and not existing.shards
        data = LogmelDataset(path, frames=None)
        for i in range(n):
            assert np.array_equal(data[i]["logmel"].numpy(), logmel[i, :lengths[i]])
    assert [(row.split, row.clips) for row in feature_sets(paths)] == [("train", 4), ("val", 2), ("test", 2)]


def test_featurize_recomputes_release_0_1_files_to_the_same_features(tmp_path):
    shutil.copytree(RELEASE_0_1 / "synth", tmp_path / "synth")
    paths = DatasetPaths(tmp_path, "synth")
    old = {}
    for split in ("train", "val", "test"):
        with h5py.File(feature_file(paths, split), "r") as f:
            old[split] = {name: f[name][()] for name in ("logmel", "clip_id", "length", "weak", "start", "end")}
    result = featurize("synth", root=tmp_path, quiet=True)  # no audio hashes recorded: every row computed again
    assert result.feature_id == feature_id()
    assert [(s.split, s.clips, s.updated, s.present) for s in result.splits] == \
        [("train", 4, 4, 0), ("val", 2, 2, 0), ("test", 2, 2, 0)]
    for split in ("train", "val", "test"):
        with h5py.File(feature_file(paths, split), "r") as f:
            assert f["logmel"].is_virtual
            for name, values in old[split].items():
                assert f[name].dtype == values.dtype, (split, name)
                if name == "logmel":  # float64 FFT rounding differs by instruction set (AVX2 wrote these, ~1e-7)
                    np.testing.assert_allclose(f[name][()], values, rtol=0, atol=1e-5, err_msg=split)
                else:
                    assert np.array_equal(f[name][()], values), (split, name)

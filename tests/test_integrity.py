"""The feature store returns the rows written, or one error naming the shard and the command that repairs it:
shards damaged five ways, through the Python readers and the command line, repaired by featurize; a reader in
another process while featurize replaces a clip's audio and rewrites the split file."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from torch.utils.data import DataLoader

from audiobench.cli import cli
from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths
from audiobench.data.ledger import Ledger
from audiobench.data.synth import synthesize
from audiobench.features.dataset import LogmelDataset, open_split
from audiobench.features.featurize import featurize
from audiobench.features.integrity import DamagedShard
from audiobench.features.store import feature_file, shard_files
from audiobench.features.vggish import feature_id
from test_featurize import make_dataset, toy_clips, write_audio

DAMAGES = ("flipped", "truncated", "zeroed", "swapped", "missing")


def damage(shard: Path, how: str, other: Path) -> None:
    """Damage ``shard`` as disks and people do: a flipped byte in its features, cut short, zeroed, another
    shard's file renamed onto it, or deleted."""
    if how == "flipped":
        with h5py.File(shard, "r") as f:
            offset = f["logmel"].id.get_offset() + 1001
        with open(shard, "r+b") as handle:
            handle.seek(offset)
            byte = handle.read(1)
            handle.seek(offset)
            handle.write(bytes([byte[0] ^ 0x10]))
    elif how == "truncated":
        os.truncate(shard, shard.stat().st_size // 2)
    elif how == "zeroed":
        shard.write_bytes(bytes(shard.stat().st_size))
    elif how == "swapped":
        os.replace(other, shard)
    else:
        shard.unlink()


def by_clip(path: Path) -> dict[str, np.ndarray]:
    """Each clip's features as h5py reads them through the split file (the bytes written), by clip id."""
    with h5py.File(path, "r") as f:
        return dict(zip(f["clip_id"].asstr()[()], f["logmel"][()]))


def read_every_row(data: LogmelDataset) -> dict[str, np.ndarray]:
    return {data.clip_ids[i]: data[i]["logmel"].numpy() for i in range(len(data))}


def assert_one_line_naming(message: str, shard: Path, root: Path) -> None:
    assert "\n" not in message.strip()
    assert str(shard) in message
    assert f"audiobench featurize toy --root {root} --features vggish-logmel" in message


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_shard_is_one_error_in_every_reader_and_featurize_repairs_it(tmp_path, how):
    paths = make_dataset(tmp_path, n_train=6, n_val=0)
    featurize("toy", root=tmp_path, quiet=True, shard_size=2)
    train = feature_file(paths, "train")
    written = by_clip(train)
    shard, other = sorted(shard_files(train))[:2]
    damage(shard, how, other)
    for in_memory in (True, False):
        with pytest.raises(AudiobenchError) as error:
            read_every_row(open_split("toy", "train", root=tmp_path, in_memory=in_memory))
        # a shard renamed onto another is missing from its own place: the error may name either
        assert_one_line_naming(str(error.value), other if how == "swapped" and str(other) in str(error.value)
                               else shard, tmp_path)
    result = featurize("toy", root=tmp_path, quiet=True).splits[0]
    assert result.clips == 6 and result.updated == (4 if how == "swapped" else 2)
    for in_memory in (True, False):
        rows = read_every_row(open_split("toy", "train", root=tmp_path, in_memory=in_memory))
        assert sorted(rows) == sorted(written)
        for cid, values in rows.items():
            assert np.array_equal(values, written[cid][:len(values)])
            assert values.tobytes() == written[cid][:len(values)].tobytes()
    again = featurize("toy", root=tmp_path, quiet=True).splits[0]
    assert (again.added, again.updated, again.present) == (0, 0, 6)


def test_status_counts_damaged_shards_and_names_the_repair(tmp_path):
    """A missing shard shows in every status; a flipped byte only in ``--verify``, which reads as a reader does."""
    paths = make_dataset(tmp_path, n_train=6, n_val=0)
    featurize("toy", root=tmp_path, quiet=True, shard_size=2)
    flipped, missing, _ = sorted(shard_files(feature_file(paths, "train")))
    damage(flipped, "flipped", missing)
    damage(missing, "missing", flipped)

    def damaged(*options: str) -> dict[str, int]:
        out = CliRunner().invoke(cli, ["status", "toy", "--root", str(tmp_path), "--json", *options])
        assert out.exit_code == 0, out.output
        return {row["split"]: row["damaged"] for row in json.loads(out.output)["features"]}

    assert damaged() == {"train": 1}
    assert damaged("--verify") == {"train": 2}
    text = CliRunner().invoke(cli, ["status", "toy", "--root", str(tmp_path), "--verify"]).output
    assert f"train: 2 damaged shard(s); run `audiobench featurize toy --root {tmp_path} --features vggish-logmel`" \
        in text
    featurize("toy", root=tmp_path, quiet=True)
    assert damaged("--verify") == {"train": 0}


def test_a_damaged_shard_read_in_a_dataloader_worker_is_the_same_one_line(tmp_path):
    paths = make_dataset(tmp_path, n_train=4, n_val=0)
    featurize("toy", root=tmp_path, quiet=True, shard_size=2)
    shard = sorted(shard_files(feature_file(paths, "train")))[1]
    damage(shard, "flipped", shard)
    data = open_split("toy", "train", root=tmp_path, in_memory=False)
    with pytest.raises(DamagedShard) as error:
        list(DataLoader(data, batch_size=None, num_workers=1))
    assert_one_line_naming(str(error.value), shard, tmp_path)
    assert str(error.value).startswith("damaged feature shard")


def test_a_split_file_written_before_shard_tables_reads_and_is_checked_all_the_same(tmp_path):
    paths = make_dataset(tmp_path, n_train=4, n_val=0)
    featurize("toy", root=tmp_path, quiet=True, shard_size=2)
    train = feature_file(paths, "train")
    written = by_clip(train)
    shards = sorted(shard_files(train))
    shutil.copyfile(shards[0], tmp_path / "kept.h5")
    shutil.copyfile(shards[1], shards[0])  # another shard's file in its place, both there: its id tells
    with pytest.raises(AudiobenchError, match=f"it is shard {shards[1].name}, not {shards[0].name}"):
        open_split("toy", "train", root=tmp_path)
    os.replace(tmp_path / "kept.h5", shards[0])
    with h5py.File(train, "a") as f:  # as the previous version wrote them: no table in the split file,
        del f["shards"]
    for shard in shards:
        with h5py.File(shard, "a") as f:  # and no id in the shards
            del f.attrs["shard_id"]
    rows = read_every_row(open_split("toy", "train", root=tmp_path))
    assert all(np.array_equal(v, written[cid][:len(v)]) for cid, v in rows.items())
    shutil.copyfile(shards[1], shards[0])  # no ids to compare: the clip ids tell them apart
    with pytest.raises(AudiobenchError, match="its row 0 holds clip"):
        open_split("toy", "train", root=tmp_path)
    assert featurize("toy", root=tmp_path, quiet=True).splits[0].updated == 2
    rows = read_every_row(open_split("toy", "train", root=tmp_path))
    assert sorted(rows) == sorted(written) and all(np.array_equal(v, written[c][:len(v)]) for c, v in rows.items())


# -- through the command line: train and evaluate ----------------------------------------------------------------
TRAIN = ["--variant", "noatt-weak", "--epochs", "1", "--width", "0.0625", "--batch-size", "4", "--quiet"]


def test_train_and_evaluate_name_a_damaged_shard_and_featurize_repairs_it(tmp_path, one_torch_thread):
    synthesize("toy", root=tmp_path, train=4, val=2, test=2, duration=1.0, quiet=True)
    runner = CliRunner()
    assert runner.invoke(cli, ["featurize", "toy", "--root", str(tmp_path), "-q"]).exit_code == 0
    paths = DatasetPaths(tmp_path, "toy")
    run = tmp_path / "run"
    out = runner.invoke(cli, ["train", "toy", "--root", str(tmp_path), *TRAIN, "--out", str(run)])
    assert out.exit_code == 0, out.output
    test_file = feature_file(paths, "test")
    listing = tmp_path / "list.csv"
    pd.DataFrame({"clip_id": LogmelDataset(test_file).clip_ids}).to_csv(listing, index=False)
    before = runner.invoke(cli, ["evaluate", str(run), "--eval-on", str(listing), "--json"])
    assert before.exit_code == 0, before.output
    for split, how in (("test", "flipped"), ("train", "zeroed")):
        shard = sorted(shard_files(feature_file(paths, split)))[0]
        damage(shard, how, shard)
        commands = [["train", "toy", "--root", str(tmp_path), *TRAIN, "--out", str(tmp_path / f"again-{split}")]]
        if split == "test":  # evaluate reads the test split only
            commands.append(["evaluate", str(run), "--eval-on", str(listing)])
        for args in commands:
            result = runner.invoke(cli, args)
            assert result.exit_code == 2, result.output
            assert_one_line_naming(result.output.removeprefix("error: "), shard, tmp_path)
        repaired = runner.invoke(cli, ["featurize", "toy", "--root", str(tmp_path), "-q"])
        assert repaired.exit_code == 0, repaired.output
        after = runner.invoke(cli, ["evaluate", str(run), "--eval-on", str(listing), "--json"])
        assert after.exit_code == 0, after.output
        assert json.loads(after.output)["test_map"] == json.loads(before.output)["test_map"]
        out = runner.invoke(cli, ["train", "toy", "--root", str(tmp_path), *TRAIN, "--out", str(tmp_path / split)])
        assert out.exit_code == 0, out.output


# -- a reader while featurize rewrites -----------------------------------------------------------------------------
READER = """
import sys, time
from pathlib import Path
import numpy as np
from audiobench.features.dataset import open_split

data = open_split("toy", "train", root=sys.argv[1], in_memory=False)
Path(sys.argv[2]).write_text("open")
while not Path(sys.argv[3]).exists():
    time.sleep(0.05)
try:
    rows = {data.clip_ids[i]: data[i]["logmel"].numpy() for i in range(len(data))}
except Exception as exc:
    print(type(exc).__name__, exc)
    sys.exit(1)
np.savez(sys.argv[4], **rows)
"""


def test_a_reader_reads_the_features_it_opened_while_featurize_replaces_a_clip(tmp_path):
    paths = make_dataset(tmp_path, n_train=4, n_val=0)
    featurize("toy", root=tmp_path, quiet=True, shard_size=1)  # one shard per clip: a changed clip's goes
    train = feature_file(paths, "train")
    written = by_clip(train)
    opened, go, saved = tmp_path / "opened", tmp_path / "go", tmp_path / "rows.npz"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(tmp_path), str(opened), str(go), str(saved)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not opened.exists() and reader.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert opened.exists(), reader.communicate()[0]
        clip = toy_clips(4, 0)[0]
        with Ledger(paths.ledger) as ledger:
            write_audio(paths, ledger, clip, ledger.audio()[clip.clip_id].samples, seed=11)  # resample's new file
        old = shard_files(train)
        rerun = subprocess.run([sys.executable, "-m", "audiobench.cli", "featurize", "toy", "--root", str(tmp_path),
                                "-q"], capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        assert by_clip(train)[clip.clip_id].tobytes() != written[clip.clip_id].tobytes()  # the file changed
        superseded = old - shard_files(train)
        assert len(superseded) == 1 and all(p.is_file() for p in superseded)  # kept: the reader may need it
        go.write_text("read")
        output = reader.communicate(timeout=120)[0]
    finally:
        if reader.poll() is None:
            reader.kill()
    assert reader.returncode == 0, output
    with np.load(saved) as rows:
        assert sorted(rows.files) == sorted(written)
        for cid in rows.files:  # the original features, none replaced by padding or by another clip's
            assert rows[cid].tobytes() == written[cid][:len(rows[cid])].tobytes()
    featurize("toy", root=tmp_path, quiet=True)  # no reader left: the superseded shard goes
    assert not any(p.exists() for p in superseded)


def test_a_reader_of_a_file_storing_its_own_features_refuses_it_once_replaced(tmp_path):
    shutil.copytree(Path(__file__).parent / "data" / "release-0.1" / "synth", tmp_path / "synth")
    path = feature_file(DatasetPaths(tmp_path, "synth"), "train")
    data = LogmelDataset(path, frames=None, in_memory=False)
    shutil.copyfile(path, tmp_path / "copy.h5")
    os.replace(tmp_path / "copy.h5", path)  # as featurize replaces it: another file under the name
    with pytest.raises(AudiobenchError, match="replaced .* since this dataset was opened; open it again"):
        data[0]
    assert LogmelDataset(path, frames=None, in_memory=False)[0]["logmel"].shape[1] == 64


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_rows_read_from_checked_shards_are_the_bytes_hdf5_reads_through_the_split_file(tmp_path, dtype):
    paths = make_dataset(tmp_path, n_train=5, n_val=0)
    featurize("toy", root=tmp_path, quiet=True, shard_size=2, dtype=dtype)
    clip = toy_clips(5, 0)[0]
    with Ledger(paths.ledger) as ledger:  # its shard keeps the other clip's row, unread past it
        write_audio(paths, ledger, clip, ledger.audio()[clip.clip_id].samples, seed=5)
    featurize("toy", root=tmp_path, quiet=True, shard_size=2, dtype=dtype)
    path = feature_file(paths, "train", feature_id(dtype=dtype))
    with h5py.File(path, "r") as f:
        expected = f["logmel"][()].astype(np.float32)
    for in_memory in (True, False):
        data = LogmelDataset(path, frames=expected.shape[1], in_memory=in_memory)
        assert np.stack([data[i]["logmel"].numpy() for i in range(len(data))]).tobytes() == expected.tobytes()

"""The featurize stage on real files: FLAC audio, a SQLite ledger, HDF5 output, real processes, a real Dask cluster."""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from audiobench.features.store import feature_file, shard_files
from audiobench.cli import cli
from audiobench.core.records import AudioRecord, ClassInfo, Clip, Event
from audiobench.core.errors import AudiobenchError
from audiobench.features.featurize import featurize
from audiobench.features.vggish import feature_id, logmel
from audiobench.core.layout import DatasetPaths, clip_id_for
from audiobench.data.ledger import Ledger

CLASSES = [ClassInfo("/m/0k4j", "Car"), ClassInfo("/m/07jdr", "Train"), ClassInfo("/m/012n7d", "Ambulance (siren)")]
RATE = 16_000


def toy_clips(n_train: int, n_val: int) -> list[Clip]:
    """Clips of a strongly labelled ``train`` and a weakly labelled ``val`` split, with varied events."""
    clips = []
    for i in range(n_train):
        ytid = f"tr{i:09d}"
        events = (Event(i % 3, 0.1 * (i % 5), 0.1 * (i % 5) + 0.35), Event((i + 1) % 3, 0.5, 0.5),  # zero-length
                  Event((i + 2) % 3, 0.9, 60.0))  # runs past the clip's end
        weak = tuple(sorted({e.class_index for e in events}))
        clips.append(Clip(clip_id_for(ytid, 30.0, 40.0), "train", ytid, 30.0, 40.0, weak, events))
    for i in range(n_val):
        ytid = f"va{i:09d}"
        clips.append(Clip(clip_id_for(ytid, 0.0, 10.0), "val", ytid, 0.0, 10.0, (i % 3,), None))
    return clips


def write_audio(paths: DatasetPaths, ledger: Ledger, clip: Clip, samples: int, *, rate: int = RATE,
                channels: int = 1, seed: int = 0, record_samples: int | None = None) -> Path:
    """A real FLAC for ``clip`` (noise plus a tone), recorded in the ledger as resample would."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / rate
    x = 0.05 * rng.standard_normal(samples) + 0.3 * np.sin(2 * np.pi * (300 + 50 * seed) * t)
    data = np.repeat(x[:, None], channels, axis=1).astype(np.float32)
    rel = f"audio/{clip.split}/{clip.clip_id}.flac"
    (paths.dir / rel).parent.mkdir(parents=True, exist_ok=True)
    sf.write(paths.dir / rel, data, rate)
    ledger.mark(clip.clip_id, "ok")
    n = samples if record_samples is None else record_samples
    ledger.record_audio(AudioRecord(clip.clip_id, rel, n, n / RATE, False))
    return paths.dir / rel


def make_dataset(root: Path, *, n_train: int = 6, n_val: int = 4, seconds: float = 1.0, with_audio: int | None = None,
                 name: str = "toy") -> DatasetPaths:
    """A dataset as synth/resample leave it: ledger + 16 kHz mono FLACs (lengths vary around ``seconds``)."""
    paths = DatasetPaths(root, name)
    paths.dir.mkdir(parents=True, exist_ok=True)
    clips = toy_clips(n_train, n_val)
    with Ledger(paths.ledger) as ledger:
        ledger.set_classes(CLASSES)
        ledger.add_clips(clips)
        for i, clip in enumerate(clips[:with_audio]):
            write_audio(paths, ledger, clip, int(RATE * seconds) + 37 * (i % 4) * 160 + i, seed=i)
    return paths


def h5_contents(path: Path) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """Every dataset (by name) and every attribute except ``created``, to compare files; not the shard table,
    which names the files the rows lie in (a rerun after a kill may group them otherwise)."""
    data: dict[str, np.ndarray] = {}

    def keep(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset) and not name.startswith("shards/"):
            data[name] = obj[()]

    with h5py.File(path, "r") as f:
        f.visititems(keep)
        attrs = {k: (list(v) if isinstance(v, np.ndarray) else v) for k, v in f.attrs.items() if k != "created"}
    return data, attrs


def assert_same_files(a: Path, b: Path) -> None:
    data_a, attrs_a = h5_contents(a)
    data_b, attrs_b = h5_contents(b)
    assert sorted(data_a) == sorted(data_b)
    for name in data_a:
        assert data_a[name].dtype == data_b[name].dtype, name
        assert np.array_equal(data_a[name], data_b[name]), name
    assert attrs_a == attrs_b


def assert_only_mapped_shards(folder: Path) -> None:
    """The shard folder holds exactly the shards that the finished split files map: nothing superseded or left."""
    on_disk = {p for p in (folder / "shards").rglob("*") if p.is_file()}
    assert on_disk == set().union(*(shard_files(p) for p in folder.glob("*.h5")))
    assert not list(folder.rglob("*.tmp"))


def rows(path: Path) -> list[str]:
    with h5py.File(path, "r") as f:
        return list(f["clip_id"].asstr()[()])


def test_featurize_writes_every_split_and_a_rerun_adds_nothing(tmp_path):
    paths = make_dataset(tmp_path)
    first = featurize("toy", root=tmp_path, quiet=True)
    assert [(s.split, s.clips, s.added, s.present, s.failed) for s in first.splits] == \
        [("train", 6, 6, 0, 0), ("val", 4, 4, 0, 0)]
    assert first.feature_id == feature_id()
    train = feature_file(paths, "train")
    assert rows(train) == sorted(c.clip_id for c in toy_clips(6, 0))
    before = h5_contents(train)
    again = featurize("toy", root=tmp_path, quiet=True)
    assert [(s.clips, s.added, s.present) for s in again.splits] == [(6, 0, 6), (4, 0, 4)]
    after = h5_contents(train)
    assert before[1] == after[1] and all(np.array_equal(before[0][k], after[0][k]) for k in before[0])
    assert_only_mapped_shards(train.parent)


def test_rerun_adds_only_new_clips_after_the_existing_rows(tmp_path):
    paths = make_dataset(tmp_path, with_audio=3, n_val=0)  # tr0..tr2 have audio, tr3..tr5 not yet
    first = featurize("toy", root=tmp_path, quiet=True)
    assert (first.splits[0].clips, first.splits[0].no_audio) == (3, 3)
    train = feature_file(paths, "train")
    old = h5_contents(train)[0]
    late = [c for c in toy_clips(6, 0)][3:]
    extra = Clip(clip_id_for("-AAAAAAAAAA", 1.0, 11.0), "train", "-AAAAAAAAAA", 1.0, 11.0, (0,), ())  # sorts first
    with Ledger(paths.ledger) as ledger:
        ledger.add_clips([extra])
        for i, clip in enumerate([*late, extra]):
            write_audio(paths, ledger, clip, RATE * 2 + 160 * i, seed=10 + i)  # longer: the file is re-padded
    second = featurize("toy", root=tmp_path, quiet=True)
    assert (second.splits[0].clips, second.splits[0].added, second.splits[0].present) == (7, 4, 3)
    new = h5_contents(train)[0]
    assert rows(train) == [c.clip_id for c in toy_clips(3, 0)] + sorted(c.clip_id for c in [*late, extra])
    t_old = old["logmel"].shape[1]
    assert new["logmel"].shape[1] > t_old
    assert np.array_equal(new["logmel"][:3, :t_old], old["logmel"])
    assert np.all(new["logmel"][:3, t_old:] == np.float32(np.log(0.01)))
    assert np.array_equal(new["strong"][:3, :t_old], old["strong"]) and not new["strong"][:3, t_old:].any()
    for name in ("length", "weak", "start", "end", "clip_id", "ytid"):
        assert np.array_equal(new[name][:3], old[name]), name
    n_old_events = len(old["events/clip"])
    assert np.array_equal(new["events/clip"][:n_old_events], old["events/clip"])
    assert set(new["events/clip"][n_old_events:]) == {4, 5, 6}  # row 3, the extra clip, has no events


def test_bad_clips_are_reported_by_id_and_the_rest_is_written(tmp_path):
    paths = make_dataset(tmp_path, n_train=6, n_val=0, with_audio=2)
    clips = toy_clips(6, 0)
    with Ledger(paths.ledger) as ledger:
        write_audio(paths, ledger, clips[2], 300)  # shorter than one 400-sample frame
        corrupt = write_audio(paths, ledger, clips[3], RATE)
        corrupt.write_bytes(corrupt.read_bytes()[:200] + os.urandom(5000))  # a FLAC header, then garbage
        write_audio(paths, ledger, clips[4], 44_100, rate=44_100)
        write_audio(paths, ledger, clips[5], RATE, channels=2)
    result = featurize("toy", root=tmp_path, quiet=True)
    split = result.splits[0]
    reasons = {f.clip_id: f.reason for f in split.failures}
    assert sorted(reasons) == sorted(c.clip_id for c in clips[2:])
    assert "300 samples" in reasons[clips[2].clip_id]
    assert "corrupt" in reasons[clips[3].clip_id] or "decode" in reasons[clips[3].clip_id]
    assert "44100 Hz" in reasons[clips[4].clip_id]
    assert "2 channels" in reasons[clips[5].clip_id]
    assert (split.clips, split.added) == (2, 2)
    assert rows(feature_file(paths, "train")) == [clips[0].clip_id, clips[1].clip_id]
    again = featurize("toy", root=tmp_path, quiet=True).splits[0]  # still reported, still not fatal
    assert (again.clips, again.added, sorted(f.clip_id for f in again.failures)) == (2, 0, sorted(reasons))


def test_audio_that_changed_since_resample_is_refused(tmp_path):
    paths = make_dataset(tmp_path, n_train=1, n_val=0, with_audio=0)
    clip = toy_clips(1, 0)[0]
    with Ledger(paths.ledger) as ledger:
        write_audio(paths, ledger, clip, RATE, record_samples=RATE - 5)
    failure = featurize("toy", root=tmp_path, quiet=True).splits[0].failures[0]
    assert failure.clip_id == clip.clip_id and "the ledger records 15995" in failure.reason


def test_rows_are_the_logmel_of_each_file(tmp_path):
    paths = make_dataset(tmp_path, n_train=2, n_val=0)
    featurize("toy", root=tmp_path, quiet=True, backend="threading", jobs=2)
    with Ledger(paths.ledger) as ledger:
        audio = ledger.audio(split="train")
    with h5py.File(feature_file(paths, "train"), "r") as f:
        for i, cid in enumerate(f["clip_id"].asstr()[()]):
            x, rate = sf.read(paths.dir / audio[cid].path, dtype="float32")
            expected = logmel(x, rate)
            assert f["length"][i] == len(expected)
            assert np.array_equal(f["logmel"][i, :len(expected)], expected)


def test_a_second_concurrent_run_is_refused(tmp_path):
    make_dataset(tmp_path, n_train=1, n_val=0)
    folder = tmp_path / "toy" / "features" / feature_id()
    folder.mkdir(parents=True)
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with pytest.raises(AudiobenchError, match="another `audiobench featurize toy`"):
            featurize("toy", root=tmp_path, quiet=True)


def test_unusable_shards_are_ignored_and_removed(tmp_path):
    paths = make_dataset(tmp_path, n_train=2, n_val=0)
    shards = paths.feature_dir(feature_id()) / "shards" / "train"
    shards.mkdir(parents=True)
    (shards / "shard-0000000000000000.h5").write_bytes(b"not hdf5")
    (shards / "shard-1111111111111111.h5.tmp").write_bytes(b"half written")
    with h5py.File(shards / "shard-2222222222222222.h5", "w") as f:  # another recipe's shard
        f.attrs["feature_id"] = "vggish-logmel-00000000"
        f.attrs["complete"] = True
    result = featurize("toy", root=tmp_path, quiet=True)
    assert result.splits[0].added == 2
    assert_only_mapped_shards(shards.parent.parent)
    assert sorted(p.name for p in shards.iterdir()) == sorted(p.name for p in shard_files(feature_file(paths, "train")))


def test_errors_name_the_problem(tmp_path):
    make_dataset(tmp_path, n_train=1, n_val=0)
    with pytest.raises(AudiobenchError, match="no split 'test'"):
        featurize("toy", root=tmp_path, splits=["test"])
    with pytest.raises(AudiobenchError, match="float64"):
        featurize("toy", root=tmp_path, dtype="float64")
    with pytest.raises(AudiobenchError, match="make it with `audiobench synth --name nope`"):
        featurize("nope", root=tmp_path)
    with pytest.raises(AudiobenchError, match=r"dataset 'toy' has no features yet.*featurize toy"):
        feature_file(DatasetPaths(tmp_path, "toy"), "val")


def test_cli_prints_a_summary_failures_and_json(tmp_path):
    paths = make_dataset(tmp_path, n_train=3, n_val=2)
    with Ledger(paths.ledger) as ledger:
        write_audio(paths, ledger, toy_clips(3, 0)[2], 100)
    result = CliRunner().invoke(cli, ["featurize", "toy", "--root", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["split", "clips", "added", "updated", "present", "failed", "no_audio"]
    assert lines[1].split() == ["train", "2", "2", "0", "0", "1", "0"]
    assert lines[2].split() == ["val", "2", "2", "0", "0", "0", "0"]
    assert f"failed {toy_clips(3, 0)[2].clip_id}: too short: 100 samples" in result.output
    result = CliRunner().invoke(cli, ["featurize", "toy", "--root", str(tmp_path), "--json", "--split", "val",
                                      "--dtype", "float16"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["feature_id"] == feature_id(dtype="float16")
    assert [(s["split"], s["clips"], s["added"]) for s in summary["splits"]] == [("val", 2, 2)]
    result = CliRunner().invoke(cli, ["featurize", "toy", "--root", str(tmp_path), "--split", "nope"])
    assert result.exit_code == 2 and "no split 'nope'" in result.output


def test_console_script_runs_featurize_as_a_user_does(tmp_path):
    make_dataset(tmp_path, n_train=2, n_val=1)
    script = Path(sys.executable).with_name("audiobench")
    proc = subprocess.run([str(script), "featurize", "toy", "--json"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "AUDIOBENCH_ROOT": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert [(s["split"], s["clips"]) for s in json.loads(proc.stdout)["splits"]] == [("train", 2), ("val", 1)]


def _run_and_kill(root: Path, trigger: Path | str, glob: str | None = None) -> None:
    """Start featurize in a real subprocess and SIGKILL it the moment ``trigger`` (a path or glob) appears."""
    code = ("from audiobench.features.featurize import featurize\n"
            f"featurize('toy', root={str(root)!r}, jobs=1, quiet=True, shard_size=2)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            hit = list(Path(trigger).glob(glob)) if glob else Path(trigger).exists()
            if hit:
                break
            assert proc.poll() is None, f"featurize ended before the kill point: {proc.stderr.read().decode()}"
            time.sleep(0.002)
        else:
            raise AssertionError("the kill point never came")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["first-shard", "train-file-being-written", "train-committed"])
def test_kill_9_then_rerun_equals_an_uninterrupted_run(tmp_path, moment):
    killed = make_dataset(tmp_path / "killed", n_train=40, n_val=20, seconds=4.0)
    clean_root = tmp_path / "clean"
    shutil.copytree(killed.dir, clean_root / "toy")
    folder = killed.feature_dir(feature_id())
    if moment == "first-shard":
        _run_and_kill(killed.root, folder / "shards" / "train", "shard-*.h5")
        assert not (folder / "train.h5").exists()  # really killed mid-way, with work to reuse
        assert list((folder / "shards" / "train").glob("shard-*.h5"))
    elif moment == "train-file-being-written":
        _run_and_kill(killed.root, folder / "train.h5.tmp")
        assert not (folder / "train.h5").exists()
    else:
        _run_and_kill(killed.root, folder / "train.h5")
        assert not (folder / "val.h5").exists()
    with pytest.raises(AudiobenchError):  # nothing half-written reads as a finished split
        feature_file(killed, "val")
    resumed = featurize("toy", root=killed.root, quiet=True)
    clean = featurize("toy", root=clean_root, quiet=True)
    assert [(s.split, s.clips) for s in resumed.splits] == [(s.split, s.clips) for s in clean.splits] == \
        [("train", 40), ("val", 20)]
    for split in ("train", "val"):
        assert_same_files(feature_file(killed, split), feature_file(DatasetPaths(clean_root, "toy"), split))
    assert sorted(p.name for p in folder.iterdir()) == [".lock", ".readers", "shards", "train.h5", "val.h5"]
    assert_only_mapped_shards(folder)


@pytest.mark.slow
def test_dask_cluster_gives_the_same_files_as_local_processes(tmp_path):
    from distributed import LocalCluster

    local = make_dataset(tmp_path / "local", n_train=8, n_val=4, seconds=2.0)
    shutil.copytree(local.dir, tmp_path / "dask" / "toy")
    featurize("toy", root=local.root, jobs=2, backend="loky", quiet=True)
    with LocalCluster(host="127.0.0.1", n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        result = featurize("toy", root=tmp_path / "dask", jobs=2, backend="dask", scheduler=cluster.scheduler_address,
                           quiet=True, shard_size=2)
    assert [(s.split, s.clips, s.added) for s in result.splits] == [("train", 8, 8), ("val", 4, 4)]
    for split in ("train", "val"):
        assert_same_files(feature_file(local, split), feature_file(DatasetPaths(tmp_path / "dask", "toy"), split))


def test_featurize_with_no_audio_names_the_stage_to_run_first_and_exits_2(tmp_path):
    paths = make_dataset(tmp_path, with_audio=0)  # every clip listed, none fetched
    runner = CliRunner()
    out = runner.invoke(cli, ["featurize", "toy", "--root", str(tmp_path), "-q"])
    assert out.exit_code == 2
    assert out.output == "error: no clips fetched for toy: run `audiobench fetch toy` first\n"
    clips = toy_clips(6, 4)
    with Ledger(paths.ledger) as ledger:
        for clip in clips:
            ledger.mark(clip.clip_id, "ok", path=f"raw/{clip.split}/{clip.clip_id}.flac")  # fetched, not resampled
    out = runner.invoke(cli, ["featurize", "toy", "--root", str(tmp_path), "-q"])
    assert out.exit_code == 2
    assert out.output == "error: no clips converted for toy: run `audiobench resample toy` first\n"
    assert not paths.features.exists()
    with Ledger(paths.ledger) as ledger:
        write_audio(paths, ledger, clips[0], RATE)  # train has audio now, val still not
    out = runner.invoke(cli, ["featurize", "toy", "--root", str(tmp_path), "-q", "--split", "val"])
    assert out.exit_code == 2 and "no clips converted for toy (split val)" in out.output
    assert runner.invoke(cli, ["featurize", "toy", "--root", str(tmp_path), "-q"]).exit_code == 0


def test_featurize_where_every_clip_fails_prints_them_then_exits_2(tmp_path):
    paths = make_dataset(tmp_path, n_train=2, n_val=0, with_audio=0)
    with Ledger(paths.ledger) as ledger:
        for clip in toy_clips(2, 0):
            write_audio(paths, ledger, clip, RATE, record_samples=RATE - 5)  # changed since resample
    out = CliRunner().invoke(cli, ["featurize", "toy", "--root", str(tmp_path), "-q"])
    assert out.exit_code == 2
    assert "the ledger records 15995" in out.output
    assert out.output.splitlines()[-1] == ("error: no clip of toy could be featurized (all 2 failed); rerun "
                                           "`audiobench resample` for them, then this")


def test_a_pipeline_stops_at_its_first_empty_stage_and_a_finished_one_reruns_cleanly(tmp_path):
    make_dataset(tmp_path, with_audio=0, name="listed")
    empty = tmp_path / "empty.toml"
    empty.write_text('dataset = "listed"\n[featurize]\njobs = 1\n[[train]]\nvariant = "att-self"\nepochs = 1\n')
    out = CliRunner().invoke(cli, ["run", str(empty), "--root", str(tmp_path), "-q"])
    assert out.exit_code == 2
    assert out.output.splitlines()[-1] == "error: no clips fetched for listed: run `audiobench fetch listed` first"
    assert "== train" not in out.output
    done = tmp_path / "done.toml"
    done.write_text('dataset = "tiny"\n[synth]\ntrain = 3\nval = 2\ntest = 2\nduration = 1.0\n[resample]\n'
                    '[featurize]\n')
    for _ in range(2):  # the rerun: every stage finds its work done, which is not an empty stage
        out = CliRunner().invoke(cli, ["run", str(done), "--root", str(tmp_path), "-q"])
        assert out.exit_code == 0, out.output
    assert "already done 7" in out.output


# -- faults: changed audio, corrupt audio, names that leave their folder, a full disk ----------------------------
def test_a_changed_audio_file_is_featurized_again(tmp_path):
    paths = make_dataset(tmp_path, n_train=3, n_val=0)
    featurize("toy", root=tmp_path, quiet=True)
    train = feature_file(paths, "train")
    clip = toy_clips(3, 0)[1]
    with Ledger(paths.ledger) as ledger:
        samples = ledger.audio()[clip.clip_id].samples
        changed = write_audio(paths, ledger, clip, samples, seed=7)  # same length, other sound (as resample would)
    result = featurize("toy", root=tmp_path, quiet=True).splits[0]
    assert (result.clips, result.added, result.updated, result.present) == (3, 0, 1, 2)
    x, rate = sf.read(changed, dtype="float32")
    with h5py.File(train, "r") as f:
        ids = list(f["clip_id"].asstr()[()])
        assert ids[-1] == clip.clip_id and sorted(ids) == sorted(c.clip_id for c in toy_clips(3, 0))
        assert np.array_equal(f["logmel"][2, :f["length"][2]], logmel(x, rate))
        assert f["audio_sha256"].asstr()[2] == hashlib.sha256(changed.read_bytes()).hexdigest()
    again = featurize("toy", root=tmp_path, quiet=True).splits[0]
    assert (again.added, again.updated, again.present) == (0, 0, 3)


def test_a_rerun_leaves_written_features_alone_and_deletes_superseded_shards(tmp_path):
    paths = make_dataset(tmp_path, n_train=4, n_val=0, with_audio=3)
    featurize("toy", root=tmp_path, quiet=True, shard_size=1)  # one shard per clip
    train = feature_file(paths, "train")
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in shard_files(train)}
    clips = toy_clips(4, 0)
    with Ledger(paths.ledger) as ledger:
        write_audio(paths, ledger, clips[3], RATE + 160)  # a new clip
        write_audio(paths, ledger, clips[1], ledger.audio()[clips[1].clip_id].samples, seed=9)  # a changed one
    result = featurize("toy", root=tmp_path, quiet=True, shard_size=1).splits[0]
    assert (result.clips, result.added, result.updated, result.present) == (4, 1, 1, 2)
    after = shard_files(train)
    kept = [p for p in before if p in after]
    assert len(kept) == 2 and all((p.stat().st_ino, p.stat().st_mtime_ns) == before[p] for p in kept)
    assert len(after) == 4 and len(set(before) - after) == 1  # the changed clip's old shard is gone
    assert_only_mapped_shards(train.parent)
    with Ledger(paths.ledger) as ledger:
        audio = ledger.audio(split="train")
    with h5py.File(train, "r") as f:
        assert list(f["clip_id"].asstr()[()]) == [clips[0].clip_id, clips[2].clip_id,
                                                  *sorted([clips[1].clip_id, clips[3].clip_id])]
        for i, cid in enumerate(f["clip_id"].asstr()[()]):
            x, rate = sf.read(paths.dir / audio[cid].path, dtype="float32")
            n = int(f["length"][i])
            assert np.array_equal(f["logmel"][i, :n], logmel(x, rate))
            assert np.all(f["logmel"][i, n:] == np.float32(np.log(0.01)))


def test_a_lost_shard_is_named_by_readers_and_recomputed_by_featurize(tmp_path):
    paths = make_dataset(tmp_path, n_train=4, n_val=0)
    featurize("toy", root=tmp_path, quiet=True, shard_size=2)
    train = feature_file(paths, "train")
    expected = h5_contents(train)[0]
    lost = sorted(shard_files(train))[0]
    lost.unlink()
    with pytest.raises(AudiobenchError, match=re.escape(f"lie in {lost}, which is missing")):
        feature_file(paths, "train")
    result = featurize("toy", root=tmp_path, quiet=True).splits[0]
    assert (result.clips, result.updated, result.present) == (4, 2, 2)
    again = h5_contents(train)[0]
    order = np.argsort(again["clip_id"])  # the recomputed rows moved after the kept ones
    assert np.array_equal(again["clip_id"][order], expected["clip_id"])
    assert np.array_equal(again["logmel"][order], expected["logmel"])
    assert_only_mapped_shards(train.parent)


def test_a_file_that_stores_its_own_features_moves_them_into_a_shard_once(tmp_path):
    paths = make_dataset(tmp_path, n_train=3, n_val=0, with_audio=3)
    featurize("toy", root=tmp_path, quiet=True)
    train = feature_file(paths, "train")
    with h5py.File(train, "a") as f:  # as the previous version wrote it: logmel inside the split file
        data = f["logmel"][()]
        del f["logmel"]
        f.create_dataset("logmel", data=data, chunks=(1,) + data.shape[1:], fillvalue=np.float32(np.log(0.01)))
    shutil.rmtree(train.parent / "shards")
    assert featurize("toy", root=tmp_path, quiet=True).splits[0].present == 3  # nothing to add: left as it is
    with h5py.File(train, "r") as f:
        assert not f["logmel"].is_virtual
    extra = toy_clips(4, 0)[3]
    with Ledger(paths.ledger) as ledger:
        ledger.add_clips([extra])
        write_audio(paths, ledger, extra, 2 * RATE)  # longer than the others: T_max grows
    result = featurize("toy", root=tmp_path, quiet=True).splits[0]
    assert (result.clips, result.added, result.present) == (4, 1, 3)
    with h5py.File(train, "r") as f:
        assert f["logmel"].is_virtual and f["logmel"].shape[1] > data.shape[1]
        assert np.array_equal(f["logmel"][:3, :data.shape[1]], data)
        assert np.all(f["logmel"][:3, data.shape[1]:] == np.float32(np.log(0.01)))
    assert len(shard_files(train)) == 2  # the three moved rows, and the new clip's
    assert_only_mapped_shards(train.parent)


def test_a_file_written_without_audio_hashes_is_recomputed_once(tmp_path):
    paths = make_dataset(tmp_path / "old", n_train=3, n_val=2)
    shutil.copytree(paths.dir, tmp_path / "fresh" / "toy")
    featurize("toy", root=paths.root, quiet=True)
    for split in ("train", "val"):
        with h5py.File(feature_file(paths, split), "a") as f:
            del f["audio_sha256"]  # as the previous version wrote it
    upgraded = featurize("toy", root=paths.root, quiet=True)
    assert [(s.clips, s.added, s.updated, s.present) for s in upgraded.splits] == [(3, 0, 3, 0), (2, 0, 2, 0)]
    featurize("toy", root=tmp_path / "fresh", quiet=True)
    for split in ("train", "val"):
        assert_same_files(feature_file(paths, split), feature_file(DatasetPaths(tmp_path / "fresh", "toy"), split))


def test_a_flipped_byte_in_a_flac_is_reported_and_nothing_is_cached_for_it(tmp_path):
    paths = make_dataset(tmp_path, n_train=4, n_val=0, with_audio=4)
    bad = toy_clips(4, 0)[2]
    audio = paths.dir / f"audio/train/{bad.clip_id}.flac"
    data = bytearray(audio.read_bytes())
    data[len(data) // 2] ^= 0x01
    audio.write_bytes(bytes(data))
    out = CliRunner().invoke(cli, ["featurize", "toy", "--root", str(tmp_path), "--quiet"])
    assert out.exit_code == 0, out.output
    assert f"failed {bad.clip_id}: {audio}: corrupt FLAC: " in out.output
    assert rows(feature_file(paths, "train")) == [c.clip_id for c in toy_clips(4, 0) if c != bad]


def test_a_split_name_that_leaves_the_folder_deletes_nothing_outside(tmp_path):
    """A ledger written before split names were checked: its shards would land in, and be swept from, the decoy."""
    root = tmp_path / "root"
    paths = make_dataset(root, n_train=2, n_val=0)
    decoy = tmp_path / "victim"
    decoy.mkdir()
    (decoy / "precious.txt").write_text("keep me")
    evil = "../../../../../victim"
    with Ledger(paths.ledger) as ledger:
        clip = Clip(clip_id_for("ev000000000", 0.0, 1.0), evil, "ev000000000", 0.0, 1.0, (0,), None)
        ledger.add_clips([clip])
        write_audio(paths, ledger, Clip(clip.clip_id, "x", clip.source_id, 0.0, 1.0), RATE)
    out = CliRunner().invoke(cli, ["featurize", "toy", "--root", str(root), "--quiet"])
    assert out.exit_code == 2 and out.output.count("\n") == 1
    assert out.output.startswith(f"error: {paths.ledger}: invalid split name '{evil}'")
    assert sorted(p.name for p in decoy.iterdir()) == ["precious.txt"]


def test_a_shard_folder_linked_elsewhere_is_never_swept(tmp_path):
    paths = make_dataset(tmp_path / "root", n_train=2, n_val=0)
    decoy = tmp_path / "elsewhere"
    decoy.mkdir()
    (decoy / "left.tmp").write_text("not ours")
    shards = paths.feature_dir(feature_id()) / "shards"
    shards.mkdir(parents=True)
    (shards / "train").symlink_to(decoy)
    with pytest.raises(AudiobenchError, match=r"refusing to delete .*left.tmp: it is not inside"):
        featurize("toy", root=paths.root, quiet=True)
    assert sorted(p.name for p in decoy.iterdir()) == ["left.tmp"]


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["shard", "split-file"])
def test_a_full_disk_is_one_line_and_a_rerun_finishes(tmp_path, monkeypatch, where):
    paths = make_dataset(tmp_path / "full", n_train=4, n_val=2)
    shutil.copytree(paths.dir, tmp_path / "clean" / "toy")
    if where == "shard":  # the HDF5 write inside a shard fails; h5py then cannot flush the file either
        real = h5py.Group.create_dataset
        monkeypatch.setattr(h5py.Group, "create_dataset",
                            lambda self, name, *a, **k: _no_space() if name == "logmel" else real(self, name, *a, **k))
    else:  # every shard is written, the split file is not
        monkeypatch.setattr("audiobench.features.store.SplitWriter.link", _no_space)
    out = CliRunner().invoke(cli, ["featurize", "toy", "--root", str(paths.root), "--quiet"])
    assert out.exit_code == 2, out.output
    assert out.output.count("\n") == 1 and "Traceback" not in out.output
    assert out.output.startswith(f"error: no space left on the disk of {paths.feature_dir(feature_id())} (")
    assert " free, about " in out.output and " more needed); free some space and rerun" in out.output
    folder = paths.feature_dir(feature_id())
    assert not list(folder.glob("*.h5")) and not list(folder.rglob("*.tmp"))
    if where == "split-file":
        assert len(list((folder / "shards" / "train").glob("shard-*.h5"))) == 1  # finished work kept
    monkeypatch.undo()
    featurize("toy", root=paths.root, quiet=True)
    featurize("toy", root=tmp_path / "clean", quiet=True)
    for split in ("train", "val"):
        assert_same_files(feature_file(paths, split), feature_file(DatasetPaths(tmp_path / "clean", "toy"), split))


@pytest.mark.parametrize("bad", ["../../outside", "/etc", "a/b", ".hidden"])
def test_a_feature_id_that_could_leave_features_is_refused_before_any_path_is_used(bad, tmp_path):
    """``--feature-id`` of train and compare ends up here."""
    with pytest.raises(AudiobenchError, match="invalid feature id"):
        feature_file(DatasetPaths(tmp_path, "toy"), "train", bad)

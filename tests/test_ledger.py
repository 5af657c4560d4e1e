from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from audiobench.cli import cli
from audiobench.core.records import AudioRecord, ClassInfo, Clip, Event
from audiobench.data.coverage import coverage
from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths, clip_id_for
from audiobench.data.ledger import Ledger
from audiobench.data.sources.youtube import validate_youtube_id

RELEASE_0_1 = Path(__file__).parent / "data" / "release-0.1" / "synth"

CLASSES = [ClassInfo("/m/0k4j", "Car"), ClassInfo("/m/07jdr", "Train")]


def _clip(ytid: str, split: str, weak: tuple[int, ...], events=None) -> Clip:
    return Clip(clip_id_for(ytid, 30.0, 40.0), split, ytid, 30.0, 40.0, weak, events)


def _ledger(tmp_path) -> Ledger:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.set_classes(CLASSES)
    ledger.add_clips([
        _clip("-9mHz0OsKKw", "train", (0,), (Event(0, 1.0, 2.5), Event(0, 0.0, 0.0))),
        _clip("-ANxUxvGASw", "train", (0, 1), (Event(1, 0.0, 10.0),)),
        _clip("---1_cCGK4M", "test", (1,)),
    ])
    return ledger


def test_clips_round_trip_with_labels_and_strong_flag(tmp_path):
    ledger = _ledger(tmp_path)
    train = ledger.clips(split="train")
    assert [c.clip_id for c in train] == ["-9mHz0OsKKw_30000_40000", "-ANxUxvGASw_30000_40000"]
    assert train[0].events == (Event(0, 0.0, 0.0), Event(0, 1.0, 2.5))
    assert train[1].weak == (0, 1)
    assert ledger.clips(split="test")[0].events is None  # weak-only split
    assert ledger.splits() == {"train": True, "test": False}


def test_status_survives_reopen_and_adding_again_keeps_it(tmp_path):
    ledger = _ledger(tmp_path)
    ledger.mark("-9mHz0OsKKw_30000_40000", "ok", bytes=123, sha256="ab", duration=10.0, path="raw/x.flac")
    ledger.mark("-ANxUxvGASw_30000_40000", "failed", error="HTTP 500")
    ledger.close()
    again = Ledger(tmp_path / "ledger.sqlite")
    assert again.add_clips([_clip("-9mHz0OsKKw", "train", (0,), ())]) == 0
    rows = {r.clip_id: r for r in again.statuses()}
    assert rows["-9mHz0OsKKw_30000_40000"].status == "ok"
    assert rows["-9mHz0OsKKw_30000_40000"].bytes == 123
    assert rows["-ANxUxvGASw_30000_40000"].last_error == "HTTP 500"
    assert rows["-ANxUxvGASw_30000_40000"].attempts == 1
    assert again.counts() == {"train": {"pending": 0, "ok": 1, "unavailable": 0, "failed": 1},
                              "test": {"pending": 1, "ok": 0, "unavailable": 0, "failed": 0}}
    # The file is plain SQLite that any tool can read.
    with sqlite3.connect(tmp_path / "ledger.sqlite") as db:
        assert db.execute("SELECT count(*) FROM clips WHERE status = 'ok'").fetchone() == (1,)


def test_an_ok_clip_keeps_where_its_audio_came_from(tmp_path):
    ledger = _ledger(tmp_path)
    first, second = "-9mHz0OsKKw_30000_40000", "-ANxUxvGASw_30000_40000"
    ledger.mark(first, "ok", path="raw/a.flac", origin={"via": "yt-dlp", "codec": "opus", "sample_rate": 48000})
    ledger.mark(second, "failed", error="HTTP 500")
    assert ledger.origins() == {first: {"codec": "opus", "sample_rate": 48000, "via": "yt-dlp"}}
    ledger.mark(first, "ok", attempts=0, origin={"via": "import", "format": "panns-hdf5"})  # replaced, not merged
    ledger.mark(first, "ok", attempts=0)  # a mark without an origin keeps the recorded one
    ledger.close()
    with Ledger(tmp_path / "ledger.sqlite") as again:
        assert again.origins(split="train") == {first: {"via": "import", "format": "panns-hdf5"}}
        assert again.origins(split="test") == {}


def test_coverage_counts_per_split_and_class(tmp_path):
    ledger = _ledger(tmp_path)
    ledger.mark("-9mHz0OsKKw_30000_40000", "ok")
    rows = {(r.split, r.label): r for r in coverage(ledger)}
    assert rows[("train", "(all)")].listed == 2 and rows[("train", "(all)")].ok == 1
    assert rows[("train", "Car")].listed == 2 and rows[("train", "Car")].ok == 1
    assert rows[("train", "Train")].pending == 1
    assert rows[("test", "Train")].listed == 1


def test_status_command_prints_table_and_json(tmp_path):
    paths = DatasetPaths(tmp_path, "toy")
    paths.dir.mkdir()
    _ledger(paths.dir).close()
    result = CliRunner().invoke(cli, ["status", "toy", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Car" in result.output and "listed" in result.output
    result = CliRunner().invoke(cli, ["status", "toy", "--root", str(tmp_path), "--json"])
    assert '"split": "train"' in result.output


def test_status_of_missing_dataset_is_one_line_error(tmp_path):
    result = CliRunner().invoke(cli, ["status", "nothing", "--root", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "audiobench synth" in result.output


@pytest.mark.parametrize("bad", ["../../etc/pa", "abc", "abcdefghij/", "a b c d e f ", "abcdefghijkl", ".abcdefghij"])
def test_invalid_ytids_are_refused_before_any_path_is_built(bad, tmp_path):
    with pytest.raises(AudiobenchError, match="invalid YouTube ID"):
        validate_youtube_id(bad)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    with pytest.raises(AudiobenchError, match=f"clip x: invalid YouTube ID {bad!r}"):
        ledger.add_clips([_clip("-9mHz0OsKKw", "train", (0,)), Clip("x", "train", bad, 0.0, 10.0, (0,))])
    assert ledger.statuses() == []  # the valid clip before it was not registered either


@pytest.mark.parametrize("bad", ["../../etc/pa", "abcdefghij/", "a b c d e f ", ".abcdefghij", "", "a" * 129])
def test_a_recording_id_that_cannot_be_a_file_name_gets_no_clip_id(bad):
    with pytest.raises(AudiobenchError, match="cannot be part of a file name"):
        clip_id_for(bad, 0, 10)


def test_a_clip_of_an_unknown_source_is_refused(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    with pytest.raises(AudiobenchError, match="unknown source 'vimeo' \\(known: youtube, local, synth\\)"):
        ledger.add_clips([Clip("-9mHz0OsKKw_0_10000", "train", "-9mHz0OsKKw", 0.0, 10.0, (0,), source="vimeo")])


def test_clips_keep_their_source(tmp_path):
    ledger = _ledger(tmp_path)
    assert {(c.source, c.source_id) for c in ledger.clips(split="test")} == {("youtube", "---1_cCGK4M")}
    assert {r.source for r in ledger.statuses()} == {"youtube"}


# -- a ledger written by release 0.1 ---------------------------------------------------------------------------
def _copy_release_0_1(tmp_path: Path) -> DatasetPaths:
    """The committed synthetic dataset of release 0.1, copied: the tests may change the copy, never the fixture."""
    paths = DatasetPaths(tmp_path, "synth")
    shutil.copytree(RELEASE_0_1, paths.dir)
    return paths


def _raw_rows(ledger: Path) -> dict[str, object]:
    """What the release 0.1 file holds, read with plain SQLite (its own column names)."""
    with sqlite3.connect(ledger) as db:
        return {
            "clips": db.execute('SELECT clip_id, split, ytid, start, "end", status, attempts, last_error, bytes, '
                                "sha256, duration, path, updated FROM clips ORDER BY split, clip_id").fetchall(),
            "weak": db.execute("SELECT clip_id, class_idx FROM weak ORDER BY clip_id, class_idx").fetchall(),
            "events": db.execute("SELECT clip_id, class_idx, onset, offset FROM events "
                                 "ORDER BY clip_id, onset, offset, class_idx").fetchall(),
            "audio": db.execute("SELECT clip_id, path, samples, duration, short, source_mtime_ns FROM audio "
                                "ORDER BY clip_id").fetchall(),
            "meta": dict(db.execute("SELECT key, value FROM meta").fetchall()),
            "classes": db.execute("SELECT mid, name FROM classes ORDER BY idx").fetchall(),
            "splits": db.execute("SELECT name, strong FROM splits ORDER BY rowid").fetchall(),
        }


def test_a_release_0_1_ledger_opens_and_reads_the_same(tmp_path):
    fixture = hashlib.sha256((RELEASE_0_1 / "ledger.sqlite").read_bytes()).hexdigest()
    paths = _copy_release_0_1(tmp_path)
    old = _raw_rows(paths.ledger)
    assert len(old["clips"]) == 8 and old["events"]  # the fixture is what it claims to be

    for _ in range(2):  # the upgrade happens once; opening an upgraded file again changes nothing
        with Ledger(paths.ledger) as ledger:
            rows = ledger.statuses()
            clips = ledger.clips()
            assert [(r.clip_id, r.split, r.source_id, r.start, r.end, r.status, r.attempts, r.last_error, r.bytes,
                     r.sha256, r.duration, r.path, r.updated) for r in rows] == old["clips"]
            assert {r.source for r in rows} == {c.source for c in clips} == {"youtube"}
            assert [(c.clip_id, c.split, c.source_id, c.start, c.end) for c in clips] == [r[:5] for r in old["clips"]]
            assert sorted((c.clip_id, w) for c in clips for w in c.weak) == sorted(old["weak"])
            strong = dict(old["splits"])
            assert all((c.events is not None) == bool(strong[c.split]) for c in clips)
            events = sorted((c.clip_id, e.class_index, e.onset, e.offset) for c in clips for e in c.events or ())
            assert events == sorted(old["events"])
            assert ledger.audio() == {cid: AudioRecord(cid, path, n, d, bool(short), mtime)
                                      for cid, path, n, d, short, mtime in old["audio"]}
            assert ledger.meta() == {k: json.loads(v) for k, v in old["meta"].items()}
            assert [(c.mid, c.name) for c in ledger.classes()] == old["classes"]
            assert ledger.counts() == {"train": {"pending": 0, "ok": 4, "unavailable": 0, "failed": 0},
                                       "val": {"pending": 0, "ok": 2, "unavailable": 0, "failed": 0},
                                       "test": {"pending": 0, "ok": 2, "unavailable": 0, "failed": 0}}
    with sqlite3.connect(paths.ledger) as db:  # upgraded in place: the recording is source + source_id now
        columns = [row[1] for row in db.execute("PRAGMA table_info(clips)")]
        assert "ytid" not in columns and {"source", "source_id"} <= set(columns)
        assert db.execute("SELECT DISTINCT source FROM clips").fetchall() == [("youtube",)]
    assert hashlib.sha256((RELEASE_0_1 / "ledger.sqlite").read_bytes()).hexdigest() == fixture


def test_a_release_0_1_ledger_opened_by_several_at_once_is_upgraded_once(tmp_path):
    paths = _copy_release_0_1(tmp_path)
    barrier = threading.Barrier(4)

    def open_it(_: int) -> list[str]:
        barrier.wait()
        with Ledger(paths.ledger) as ledger:
            return [c.source_id for c in ledger.clips()]

    with ThreadPoolExecutor(4) as pool:
        seen = list(pool.map(open_it, range(4)))
    assert len(seen) == 4 and all(ids == seen[0] for ids in seen) and len(seen[0]) == 8


def test_a_release_0_1_dataset_featurizes_and_trains_one_epoch(tmp_path):
    import torch

    from audiobench.features.featurize import featurize
    from audiobench.training.train import train

    paths = _copy_release_0_1(tmp_path)
    shutil.rmtree(paths.features)  # featurized afresh from the release's audio and ledger
    result = featurize("synth", root=tmp_path, quiet=True)
    assert [(s.split, s.clips, s.failed) for s in result.splits] == [("train", 4, 0), ("val", 2, 0), ("test", 2, 0)]
    assert result.feature_id == "vggish-logmel-038f9341"  # the feature set release 0.1 made from the same audio
    for split in ("train", "val", "test"):
        with h5py.File(result.directory / f"{split}.h5") as new, \
                h5py.File(RELEASE_0_1 / "features" / result.feature_id / f"{split}.h5") as old:
            assert list(new["clip_id"].asstr()) == list(old["clip_id"].asstr())
            # float64 FFT rounding differs by instruction set (release 0.1 was written on AVX2): ~1e-7
            np.testing.assert_allclose(new["logmel"][()], old["logmel"][()], rtol=0, atol=1e-5)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = train("synth", root=tmp_path, variant="att-strong", epochs=1, width=0.0625, batch_size=4, quiet=True,
                    out=tmp_path / "run")
    finally:
        torch.set_num_threads(threads)
    metrics = json.loads((run.run_dir / "metrics.json").read_text())
    assert metrics["clips"] == {"train": 4, "val": 2, "test": 2} and len(metrics["epochs"]) == 1


def test_different_class_list_is_refused(tmp_path):
    ledger = _ledger(tmp_path)
    with pytest.raises(AudiobenchError, match="different class list"):
        ledger.set_classes([ClassInfo("/m/x", "X")])

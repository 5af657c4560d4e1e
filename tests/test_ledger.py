from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

from audiobench.cli import cli
from audiobench.core.records import ClassInfo, Clip, Event
from audiobench.data.coverage import coverage
from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths, clip_id_for, validate_ytid
from audiobench.data.ledger import Ledger

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


@pytest.mark.parametrize("bad", ["../../etc/pa", "abc", "abcdefghij/", "a b c d e f ", "abcdefghijkl"])
def test_invalid_ytids_are_refused_before_any_path_is_built(bad):
    with pytest.raises(AudiobenchError, match="invalid YouTube ID"):
        validate_ytid(bad)
    with pytest.raises(AudiobenchError):
        clip_id_for(bad, 0, 10)


def test_different_class_list_is_refused(tmp_path):
    ledger = _ledger(tmp_path)
    with pytest.raises(AudiobenchError, match="different class list"):
        ledger.set_classes([ClassInfo("/m/x", "X")])

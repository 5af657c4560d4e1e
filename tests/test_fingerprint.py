"""Split fingerprints: the same clips give the same 16 hex characters in any root; other audio, another one."""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from audiobench.cli import cli
from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths
from audiobench.data.cliplist import read_clip_list, select
from audiobench.data.fingerprint import split_fingerprint
from audiobench.data.ledger import Ledger
from audiobench.data.synth import synthesize
from audiobench.features.featurize import featurize
from audiobench.features.store import feature_file, feature_set
from toydata import write_features

SPLITS = ("train", "val", "test")


def _build(root: Path) -> DatasetPaths:
    synthesize("tiny", root=root, train=3, val=2, test=2, duration=1.0, quiet=True)
    featurize("tiny", root=root, quiet=True)
    return DatasetPaths(root, "tiny")


def _fingerprints(paths: DatasetPaths) -> dict[str, str]:
    return {split: split_fingerprint(feature_file(paths, split)) for split in SPLITS}


@pytest.fixture(scope="module")
def two_roots(tmp_path_factory) -> tuple[DatasetPaths, DatasetPaths]:
    return _build(tmp_path_factory.mktemp("a")), _build(tmp_path_factory.mktemp("b"))


def test_the_same_dataset_built_in_two_roots_has_the_same_fingerprints(two_roots):
    a, b = two_roots
    first, second = _fingerprints(a), _fingerprints(b)
    assert first == second
    assert all(len(fp) == 16 and int(fp, 16) >= 0 for fp in first.values())
    assert len(set(first.values())) == 3  # each split its own


def test_one_clip_with_other_audio_changes_its_split_fingerprint_only(tmp_path):
    paths = _build(tmp_path)
    before = _fingerprints(paths)
    with Ledger(paths.ledger) as ledger:
        clip = ledger.statuses(split="test", status="ok")[0]
        audio = paths.dir / "audio" / "test" / f"{clip.clip_id}.flac"
        samples, rate = sf.read(audio, dtype="float32")
        sf.write(audio, np.roll(samples, 800), rate)  # the clip adopted again, with other audio
        ledger.mark(clip.clip_id, "ok", sha256=hashlib.sha256(audio.read_bytes()).hexdigest())
    featurize("tiny", root=tmp_path, quiet=True)
    after = _fingerprints(paths)
    assert after["test"] != before["test"]
    assert {s: after[s] for s in ("train", "val")} == {s: before[s] for s in ("train", "val")}


def test_a_subset_has_its_own_fingerprint_and_the_whole_split_is_its_rows(two_roots):
    path = feature_file(two_roots[0], "test")
    assert split_fingerprint(path, [0, 1]) == split_fingerprint(path)
    assert split_fingerprint(path, [1, 0]) == split_fingerprint(path)  # order does not matter
    assert split_fingerprint(path, [0]) != split_fingerprint(path, [1])


def test_without_a_ledger_the_feature_files_hashes_fingerprint(tmp_path):
    one = write_features(tmp_path / "one", sizes=(4, 4, 4))
    two = write_features(tmp_path / "two", sizes=(4, 4, 4))
    other = write_features(tmp_path / "three", sizes=(4, 4, 4), seed=1)
    assert _fingerprints(one) == _fingerprints(two)
    assert _fingerprints(one)["test"] == _fingerprints(other)["test"]  # same ids, segments, no hashes recorded


def test_status_export_lists_every_clip_and_reads_back_as_a_clip_list(two_roots, tmp_path):
    paths = two_roots[0]
    out = tmp_path / "clips.csv"
    result = CliRunner().invoke(cli, ["status", "tiny", "--root", str(paths.root), "--export", str(out),
                                      "--no-per-class"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 7 and list(rows[0])[:9] == ["clip_id", "split", "status", "source", "source_id", "start",
                                                      "end", "duration", "audio_sha256"]
    with Ledger(paths.ledger) as ledger:
        expected = {s.clip_id: s for s in ledger.statuses()}
    for row in rows:
        s = expected[row["clip_id"]]
        assert (row["split"], row["status"], row["audio_sha256"], float(row["end"])) == (s.split, "ok", s.sha256,
                                                                                         s.end)
    held = select(read_clip_list(out), feature_file(paths, "test"))
    assert held.held == 2 and held.fingerprint == split_fingerprint(feature_file(paths, "test"))


def test_export_flattens_the_recorded_origins(tmp_path):
    paths = write_features(tmp_path, sizes=(2, 1, 1), ledger=True)
    with Ledger(paths.ledger) as ledger:
        first = ledger.statuses()[0].clip_id
        ledger.mark(first, "ok", sha256="ab" * 32, origin={"via": "import", "format": "wav", "member": "a.wav"})
    out = tmp_path / "clips.csv"
    assert CliRunner().invoke(cli, ["status", "toy", "--root", str(tmp_path), "--export", str(out)]).exit_code == 0
    rows = {r["clip_id"]: r for r in csv.DictReader(out.open())}
    assert {k: rows[first][k] for k in ("origin_via", "origin_format", "origin_member")} == {
        "origin_via": "import", "origin_format": "wav", "origin_member": "a.wav"}
    assert all(r["origin_via"] == "" for cid, r in rows.items() if cid != first)


@pytest.mark.parametrize("text, column", [
    ("clip_id,split\nA_0_1000,test\n", "clip_id"),
    ("YTID,start\nabc,0\n", "ytid"),
    ("# Segments csv\n# YTID, start_seconds, end_seconds, positive_labels\nabc, 0.000, 10.000, \"/m/a,/m/b\"\n",
     "ytid"),
    ("name,youtube_id\nx,abc\n", "youtube_id"),
])
def test_clip_lists_are_read_from_any_id_column(tmp_path, text, column):
    path = tmp_path / "list.csv"
    path.write_text(text)
    found = read_clip_list(path)
    assert found.column == column and found.listed == 1


def test_a_csv_without_an_id_column_is_a_one_line_error_naming_it(tmp_path):
    path = tmp_path / "names.csv"
    path.write_text("name,label\nx,y\n")
    with pytest.raises(AudiobenchError, match=r"names\.csv: no clip_id, ytid, youtube_id or source_id column"):
        read_clip_list(path)


def test_other_features_of_the_same_clips_keep_the_fingerprint_and_are_recorded_apart(tmp_path):
    paths = _build(tmp_path)
    vggish_id = feature_file(paths, "test").parent.name  # the only feature set so far
    kaldi = featurize("tiny", root=tmp_path, quiet=True, features="kaldi-fbank-128")
    assert kaldi.feature_id != vggish_id
    for split in SPLITS:
        assert split_fingerprint(feature_file(paths, split, kaldi.feature_id)) == split_fingerprint(
            feature_file(paths, split, vggish_id))
    found = feature_set(feature_file(paths, "test", kaldi.feature_id))
    assert (found["id"], found["extractor"], found["params"]["num_mel_bins"]) == (kaldi.feature_id,
                                                                                  "kaldi-fbank-128", 128)
    assert feature_set(feature_file(paths, "test", vggish_id))["extractor"] == "vggish-logmel"


def test_report_columns_compares_vggish_and_kaldi_studies_of_the_same_clips(tmp_path):
    synthesize("tiny", root=tmp_path, train=3, val=2, test=2, duration=1.0, quiet=True)
    vggish = featurize("tiny", root=tmp_path, quiet=True).feature_id
    kaldi = featurize("tiny", root=tmp_path, quiet=True, features="kaldi-fbank-128").feature_id
    paths = DatasetPaths(tmp_path, "tiny")
    runner = CliRunner()
    studies = []
    for name, features in (("vggish", vggish), ("kaldi", kaldi)):
        args = ["compare", "tiny", "--root", str(tmp_path), "--variants", "noatt-weak,att-self", "--trials", "1",
                "--epochs", "1", "--width", "0.0625", "--batch-size", "2", "--out", str(tmp_path / name),
                "--quiet", "--feature-id", features]
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        studies.append(tmp_path / name)
        config = json.loads((tmp_path / name / "config.json").read_text())
        run = json.loads(next((tmp_path / name / "trials").glob("*/config.json")).read_text())
        assert config["features"] == run["features"] and config["features"]["id"] != ""
    report = (studies[1] / "report.md").read_text()
    assert f"- features: `{kaldi}` (kaldi-fbank-128, float32; " in report and "num_mel_bins 128" in report
    result = runner.invoke(cli, ["report", *map(str, studies), "--columns", "vggish,kaldi", "--out",
                                 str(tmp_path / "table")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "table" / "columns-vggish-kaldi.md").read_text()
    assert "test splits differ" not in text
    test_print = split_fingerprint(feature_file(paths, "test", kaldi))
    assert f"the same test clips (fingerprint {test_print}) with different features: vggish `{vggish}`" in text
    assert f"kaldi `{kaldi}`" in text and f"features `{kaldi}`" in text


def test_a_study_from_before_feature_records_still_reports_and_its_fingerprint_is_not_compared(tmp_path):
    from test_report import write_metrics, write_run

    old = write_run(tmp_path / "old", attention=False)  # an earlier audiobench: no `features` anywhere
    write_metrics(old, fingerprints={"test": "0f1e2d3c4b5a6978"})
    new = write_run(tmp_path / "new", attention=False, features={
        "id": "vggish-logmel-038f9341", "extractor": "vggish-logmel", "dtype": "float32", "params": {}})
    write_metrics(new, fingerprints={"test": "d91f4d506b22f7b9"})
    result = CliRunner().invoke(cli, ["report", str(old), str(new), "--columns", "old,new", "--out",
                                      str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "t" / "columns-old-new.md").read_text()
    assert "old: written by an earlier audiobench, whose fingerprints included the feature id" in text
    assert "test splits differ" not in text
    from audiobench.study.report import render_report

    assert "- features:" not in render_report(old).read_text()  # nothing recorded: nothing said, no error
    assert "- features: `vggish-logmel-038f9341` (vggish-logmel, float32)" in render_report(new).read_text()

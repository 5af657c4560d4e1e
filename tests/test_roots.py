"""A storage root is self-contained: a copied or moved root's runs are scored on its own files."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from audiobench.cli import cli
from audiobench.core.layout import DatasetPaths
from audiobench.data.fingerprint import split_fingerprint
from audiobench.features.store import feature_file
from toydata import write_features

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = ["--width", "0.0625", "--frames", "96", "--batch-size", "16", "--epochs", "1"]


def _cli(*args: str) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def _train(root: Path, *, study: bool = True) -> Path:
    """A root with a run (and a two-trial study) in its runs/, and beside it a list of three test clips."""
    write_features(root, sizes=(16, 8, 8))
    _cli("train", "toy", "--root", root, "--variant", "att-self", "--out", root / "runs" / "one", "-q", *TINY)
    if study:
        _cli("compare", "toy", "--root", root, "--variants", "noatt-weak,att-self", "--trials", "2",
             "--out", root / "runs" / "study", "-q", *TINY)
    with h5py.File(feature_file(DatasetPaths(root, "toy"), "test"), "r") as f:
        ids = list(f["clip_id"].asstr()[()])
    (root.parent / "three.csv").write_text("clip_id\n" + "\n".join(ids[:3]) + "\n")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("roots") / "root")


@pytest.fixture
def fresh(tmp_path) -> Path:
    """A root of this test's own, trained where it lies (records name where they were written)."""
    return _train(tmp_path / "trained" / "root")


def _copy(trained: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    return copy


def _fingerprint(root: Path, rows: range) -> str:
    return split_fingerprint(feature_file(DatasetPaths(root, "toy"), "test"), rows)


def test_records_name_the_root_relative_to_the_run_and_features_relative_to_the_root(trained):
    for metrics in [trained / "runs" / "one" / "metrics.json", *sorted(trained.glob("runs/study/trials/*/metrics.json"))]:
        text = metrics.read_text()
        assert str(trained) not in text and str(trained.resolve()) not in text
        record = json.loads(text)
        assert (metrics.parent / record["root"]).resolve() == trained.resolve()
        assert record["feature_files"]["test"] == f"toy/features/{record['config']['feature_id'] or _fid(trained)}/test.h5"


def _fid(root: Path) -> str:
    return feature_file(DatasetPaths(root, "toy"), "test").parent.name


def test_a_copied_root_is_scored_on_the_copys_features_not_the_originals(fresh, tmp_path):
    copy = _copy(fresh, tmp_path)
    listed = fresh.parent / "three.csv"
    # the original's test split now holds other clips: only two of the three listed
    shutil.rmtree(fresh / "toy" / "features")
    write_features(fresh, sizes=(16, 8, 2))

    run = json.loads(_cli("evaluate", copy / "runs" / "one", "--eval-on", listed, "--json"))
    study = json.loads(_cli("evaluate", copy / "runs" / "study", "--eval-on", listed, "--json"))

    for record in (run["eval_on"], study["eval_on"]):
        assert (record["held"], record["clips"]) == (3, 3)
        assert record["fingerprint"] == _fingerprint(copy, range(3))
    assert run["run_dir"] == "runs/one" and study["study"] == "runs/study"
    shutil.rmtree(fresh)  # the original gone: the copy still evaluates and reports
    assert json.loads(_cli("evaluate", "one", "--root", copy, "--eval-on", listed, "--json"))["eval_on"]["clips"] == 3
    assert "wrote" in _cli("report", "study", "--root", copy)


def test_a_moved_root_evaluates_reports_and_predicts(fresh, tmp_path):
    moved = tmp_path / "moved"
    shutil.move(fresh, moved)
    listed = fresh.parent / "three.csv"
    wav = tmp_path / "noise.wav"
    sf.write(wav, np.random.default_rng(0).normal(0, 0.1, 32000).astype(np.float32), 16000)

    record = json.loads(_cli("evaluate", "study", "--root", moved, "--eval-on", listed, "--json"))
    assert record["eval_on"]["fingerprint"] == _fingerprint(moved, range(3))
    assert (moved / "runs" / "study" / "trials" / "t00-att-self" / "evaluation-three.json").is_file()
    _cli("report", moved / "runs" / "study", "-q")
    assert json.loads((moved / "runs" / "study" / "results.json").read_text())["variants"]
    out = json.loads(_cli("predict", "one", wav, "--root", moved, "--json"))
    assert len(out[0]["probabilities"]) == 4


def test_a_root_without_its_features_fails_in_one_line_naming_it_and_never_uses_another(trained, tmp_path):
    copy = _copy(trained, tmp_path)
    shutil.rmtree(copy / "toy" / "features")

    result = CliRunner().invoke(cli, ["evaluate", str(copy / "runs" / "one"), "--eval-on",
                                      str(trained.parent / "three.csv"), "--root", str(trained)])

    assert result.exit_code == 2
    assert f"not in the storage root {copy}" in result.output and "featurize" in result.output
    assert "Traceback" not in result.output


def test_records_of_earlier_versions_are_read_by_their_layout_tail_under_the_current_root(fresh, tmp_path):
    copy = _copy(fresh, tmp_path)
    metrics_path = copy / "runs" / "one" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics.pop("root", None)  # as earlier versions wrote it: the path of the file in the root trained in
    metrics["feature_files"] = {s: str(fresh.resolve() / p) for s, p in metrics["feature_files"].items()}
    metrics_path.write_text(json.dumps(metrics))
    shutil.rmtree(fresh / "toy" / "features")
    write_features(fresh, sizes=(16, 8, 2))  # the old root's test split holds other clips now
    listed = fresh.parent / "three.csv"

    record = json.loads(_cli("evaluate", copy / "runs" / "one", "--eval-on", listed, "--json"))
    assert record["eval_on"]["clips"] == 3 and record["eval_on"]["fingerprint"] == _fingerprint(copy, range(3))

    metrics["feature_files"]["test"] = "/elsewhere/test.h5"
    metrics_path.write_text(json.dumps(metrics))
    result = CliRunner().invoke(cli, ["evaluate", str(copy / "runs" / "one"), "--eval-on", str(listed)])
    assert result.exit_code == 2 and "does not lie under a storage root's toy/features/" in result.output


def test_a_run_kept_outside_its_root_finds_it_and_after_a_move_asks_for_root(trained, tmp_path):
    root = _copy(trained, tmp_path / "r")
    out = tmp_path / "elsewhere" / "run"
    _cli("train", "toy", "--root", root, "--variant", "noatt-weak", "--out", out, "-q", *TINY)
    listed = trained.parent / "three.csv"
    assert json.loads(_cli("evaluate", out, "--eval-on", listed, "--json"))["eval_on"]["clips"] == 3

    moved = tmp_path / "moved-root"
    shutil.move(root, moved)
    result = CliRunner().invoke(cli, ["evaluate", str(out), "--eval-on", str(listed)], env={"AUDIOBENCH_ROOT": ""})
    assert result.exit_code == 2 and "give --root" in result.output

    record = json.loads(_cli("evaluate", out, "--eval-on", listed, "--root", moved, "--json"))
    assert record["eval_on"]["fingerprint"] == _fingerprint(moved, range(3))

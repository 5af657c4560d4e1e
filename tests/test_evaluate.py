"""--eval-on and evaluate: metrics on the clips of a list, equal to scikit-learn's on the saved predictions."""
from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score

from audiobench.cli import cli
from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths
from audiobench.data.fingerprint import split_fingerprint
from audiobench.features.store import feature_file
from audiobench.study import stats
from audiobench.study.compare import CompareConfig, compare
from audiobench.training.options import TrainOptions
from audiobench.training.train import train
from toydata import write_features

TINY = dict(width=0.0625, frames=96, batch_size=16, lr=3e-3, epochs=2)


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("root")
    write_features(root, sizes=(32, 16, 16))
    return root


def _paths(root: Path) -> DatasetPaths:
    return DatasetPaths(root, "toy")


def _test_ids(root: Path) -> tuple[list[str], list[str]]:
    with h5py.File(feature_file(_paths(root), "test"), "r") as f:
        return list(f["clip_id"].asstr()[()]), list(f["ytid"].asstr()[()])


def _expected(predictions: Path, ids: set[str]) -> dict[str, float]:
    """mAP, macro AUC and d′ from scikit-learn and scipy on the saved predictions of clips ``ids``."""
    saved = np.load(predictions)
    rows = [i for i, cid in enumerate(saved["clip_id"]) if cid in ids]
    scores, targets = saved["scores"][rows], saved["targets"][rows] > 0
    aps = [average_precision_score(targets[:, c], scores[:, c]) for c in range(scores.shape[1]) if targets[:, c].any()]
    both = [c for c in range(scores.shape[1]) if 0 < targets[:, c].sum() < len(rows)]
    auc = roc_auc_score(targets[:, both], scores[:, both], average="macro")
    return {"test_map": float(np.mean(aps)), "test_auc": float(auc), "test_dprime": math.sqrt(2) * norm.ppf(auc)}


@pytest.fixture(scope="module")
def study(toy, tmp_path_factory) -> tuple[Path, Path, list[str]]:
    """A two-trial study scored on the first half of the test clips (a clip_id list)."""
    ids, _ = _test_ids(toy)
    half = tmp_path_factory.mktemp("lists") / "half.csv"
    pd.DataFrame({"clip_id": ids[:8], "note": "listed"}).to_csv(half, index=False)
    config = CompareConfig("toy", ("noatt-weak", "att-self"), trials=2, train=TrainOptions(**TINY, eval_on=str(half)))
    result = compare(config, root=toy, out=tmp_path_factory.mktemp("s") / "study", quiet=True)
    assert result.failures == []
    return result.run_dir, half, ids


def test_eval_on_scores_the_listed_half_as_sklearn_does_on_the_saved_predictions(study, toy):
    run_dir, half, ids = study
    for folder in sorted((run_dir / "trials").iterdir()):
        metrics = json.loads((folder / "metrics.json").read_text())
        expected = _expected(folder / "test-predictions.npz", set(ids[:8]))
        for key, value in expected.items():
            assert metrics[key] == pytest.approx(value, abs=1e-9), key
        assert metrics["eval_on"] == {"file": str(half.resolve()), "listed": 8, "held": 8, "clips": 8,
                                      "fingerprint": split_fingerprint(feature_file(_paths(toy), "test"), range(8))}
        assert metrics["clips"]["test"] == 8 and metrics["fingerprints"]["test"] == metrics["eval_on"]["fingerprint"]
        assert np.load(folder / "test-predictions.npz")["scores"].shape[0] == 16  # every test clip predicted
        assert {"ap", "ap_low", "ap_high", "auc"} <= set(metrics["test_per_class"][0])
    results = json.loads((run_dir / "results.json").read_text())
    assert results["eval_on"]["held"] == 8 and results["metric"] == "map"
    assert set(results["fingerprints"]) == {"train", "val", "test"}
    per_class = pd.read_csv(run_dir / "per_class.csv")
    assert (per_class.ap_low <= per_class.ap_high).all() and per_class.auc.dropna().between(0, 1).all()
    trials = pd.read_csv(run_dir / "trials.csv")
    for v in results["variants"]:
        mine = trials[trials.variant == v["variant"]]
        assert v["test_auc"]["mean"] == pytest.approx(mine.test_auc.mean())
        assert v["test_dprime"]["mean"] == pytest.approx(mine.test_dprime.mean())


def test_evaluate_rescores_a_study_on_another_list_without_training(study, toy, tmp_path):
    run_dir, _, ids = study
    _, ytids = _test_ids(toy)
    other = tmp_path / "theirs.csv"  # another lab's list: YouTube ids, some this dataset lacks
    pd.DataFrame({"YTID": ytids[8:] + ["notheld0001", "notheld0002"]}).to_csv(other, index=False)
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}
    result = CliRunner().invoke(cli, ["evaluate", str(run_dir), "--eval-on", str(other), "--metric", "auc"])
    assert result.exit_code == 0, result.output
    assert "On 8 of the 10 clips listed" in result.output and "att-self" in result.output
    after = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}
    new = sorted(p.relative_to(run_dir).as_posix() for p in set(after) - set(before))
    assert new == ["evaluation-theirs.json"] + [f"trials/{f.name}/evaluation-theirs.json"
                                                 for f in sorted((run_dir / "trials").iterdir())]
    assert all(after[p] == t for p, t in before.items())  # no model, metrics or table rewritten: nothing trained
    summary = json.loads((run_dir / "evaluation-theirs.json").read_text())
    assert summary["eval_on"]["listed"] == 10 and summary["eval_on"]["held"] == 8 and summary["metric"] == "auc"
    table = pd.DataFrame(summary["trials"])
    for row in summary["trials"]:
        folder = run_dir / "trials" / f"t{row['trial']:02d}-{row['variant']}"
        for key, value in _expected(folder / "test-predictions.npz", set(ids[8:])).items():
            assert row[key] == pytest.approx(value, abs=1e-6), key
    expected = stats.compare_variants(table, baseline="noatt-weak", variants=["noatt-weak", "att-self"],
                                      column="test_auc")
    assert summary["tests"][0]["p"] == expected[0].p and summary["tests"][0]["mean_diff"] == pytest.approx(
        expected[0].mean_diff)


def test_evaluate_scores_one_run_on_a_list(toy, tmp_path):
    run = train("toy", variant="noatt-weak", root=toy, out=tmp_path / "run", quiet=True, **TINY)
    listing = tmp_path / "list.csv"
    ids, _ = _test_ids(toy)
    pd.DataFrame({"clip_id": ids[::2]}).to_csv(listing, index=False)
    result = CliRunner().invoke(cli, ["evaluate", str(run.run_dir), "--eval-on", str(listing), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["eval_on"]["clips"] == 8 and record["trained_on"]["test"] == split_fingerprint(
        feature_file(_paths(toy), "test"))
    for key, value in _expected(run.run_dir / "test-predictions.npz", set(ids[::2])).items():
        assert record[key] == pytest.approx(value, abs=1e-6)


def test_compare_metric_dprime_tests_the_dprime_column(toy, tmp_path):
    result = CliRunner().invoke(cli, ["compare", "toy", "--root", str(toy), "--variants", "noatt-weak,att-self",
                                      "--trials", "2", "--metric", "dprime", "--width", "0.0625", "--frames", "96",
                                      "--batch-size", "16", "--lr", "3e-3", "--epochs", "1", "--out",
                                      str(tmp_path / "s"), "--quiet"])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "s" / "results.json").read_text())
    trials = pd.read_csv(tmp_path / "s" / "trials.csv")
    expected = stats.compare_variants(trials, baseline="noatt-weak", variants=["noatt-weak", "att-self"],
                                      column="test_dprime")
    assert results["metric"] == "dprime" and results["tests"][0]["mean_diff"] == pytest.approx(expected[0].mean_diff)
    assert "d′" in results["statistics"]["test"]


def test_a_list_without_an_id_column_or_without_held_clips_is_refused_before_training(toy, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name\nx\n")
    result = CliRunner().invoke(cli, ["train", "toy", "--root", str(toy), "--variant", "noatt-weak",
                                      "--eval-on", str(bad), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "bad.csv: no clip_id" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()
    none = tmp_path / "none.csv"
    none.write_text("clip_id\nnot-a-clip\n")
    with pytest.raises(AudiobenchError, match=r"none\.csv: none of its 1 clip_ids is in"):
        compare(CompareConfig("toy", ("noatt-weak",), trials=1, train=TrainOptions(**TINY, eval_on=str(none))),
                root=toy, out=tmp_path / "s", quiet=True)
    assert not (tmp_path / "s" / "trials").exists()

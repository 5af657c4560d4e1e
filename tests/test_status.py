"""`audiobench status DATASET`: coverage, then the feature sets and the runs and studies made from the dataset."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from audiobench.cli import cli
from audiobench.study.compare import CompareConfig, compare
from audiobench.features.vggish import feature_id
from audiobench.training.options import TrainOptions
from audiobench.training.train import train
from toydata import write_features

TINY = dict(width=0.0625, batch_size=16, lr=3e-3, epochs=1)


def _kill_mid_training(root: Path, out: Path) -> int:
    """Start `audiobench train` for far too many epochs and stop it with Ctrl-C (SIGINT) once it trains."""
    proc = subprocess.Popen([sys.executable, "-m", "audiobench.cli", "train", "toy", "--root", str(root),
                             "--variant", "noatt-weak", "--epochs", "100000", "--width", "0.0625", "--out", str(out),
                             "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "config.json").exists():
        time.sleep(0.05)
    time.sleep(0.3)  # into the epochs
    os.kill(proc.pid, signal.SIGINT)
    return proc.wait(timeout=60)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A dataset `toy` with a ledger and features; a finished run, a run stopped by Ctrl-C, a study with one
    trial missing; and a run on another dataset."""
    root = tmp_path_factory.mktemp("root")
    write_features(root, sizes=(32, 16, 16), ledger=True)
    write_features(root, "other", sizes=(8, 4, 4), ledger=True)
    runs = root / "runs"
    train("toy", root=root, variant="att-self", out=runs / "done", quiet=True, **TINY)
    train("other", root=root, variant="noatt-weak", out=runs / "elsewhere", quiet=True, **TINY)
    assert _kill_mid_training(root, runs / "killed") != 0
    config = CompareConfig("toy", ("noatt-weak", "att-self"), trials=2, train=TrainOptions(**TINY))
    study = compare(config, root=root, out=runs / "study", quiet=True).run_dir
    (study / "trials" / "t01-att-self" / "metrics.json").unlink()  # what a kill during that trial leaves
    (runs / "garbage").mkdir()
    (runs / "garbage" / "config.json").write_text("{not json")
    return root


def test_status_lists_feature_sets_and_runs_with_the_unfinished_ones(root):
    result = CliRunner().invoke(cli, ["status", "toy", "--root", str(root), "--no-per-class", "--quiet"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    fid = feature_id()
    assert [line.split() for line in lines if line.strip().startswith(fid)] == [
        [fid, "train", "32", "96", "float32", "0"], [fid, "val", "16", "96", "float32", "0"],
        [fid, "test", "16", "96", "float32", "0"]]
    rows = {line.split()[0]: line.split()[1:] for line in lines[lines.index(next(x for x in lines
                                                                                 if x.startswith("runs ("))) + 2:]}
    assert rows == {"done": ["run", "att-self", "1/1", "finished"],
                    "killed": ["run", "noatt-weak", "0/1", "unfinished"],
                    "study": ["study", "noatt-weak,att-self", "3/4", "unfinished"]}


def test_status_json_holds_coverage_features_and_runs(root):
    result = CliRunner().invoke(cli, ["status", "toy", "--root", str(root), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"split": "train", "label": "(all)", "listed": 32, "ok": 32, "unavailable": 0, "failed": 0,
            "pending": 0} in data["coverage"]
    assert data["features"][0] == {"feature_id": feature_id(), "split": "train", "clips": 32, "frames": 96,
                                   "dtype": "float32", "damaged": 0, "repair": ""}
    runs = {r["id"]: r for r in data["runs"]}
    assert set(runs) == {"done", "killed", "study"}
    assert runs["killed"]["finished"] is False and runs["done"]["finished"] is True
    assert runs["study"] == {"id": "study", "kind": "study", "variants": ["noatt-weak", "att-self"], "done": 3,
                             "planned": 4, "finished": False}


def test_a_study_resumed_to_the_end_is_finished(root, tmp_path):
    copy = shutil.copytree(root, tmp_path / "root")
    compare(CompareConfig("toy", ("noatt-weak", "att-self"), trials=2, train=TrainOptions(**TINY)),
            root=copy, out=copy / "runs" / "study", quiet=True)  # trains the missing trial, rewrites the report
    result = CliRunner().invoke(cli, ["status", "toy", "--root", str(copy), "--json"])
    assert {r["id"]: (r["done"], r["finished"]) for r in json.loads(result.output)["runs"]}["study"] == (4, True)


def test_unknown_dataset_lists_the_known_ones(root, tmp_path):
    result = CliRunner().invoke(cli, ["status", "tyo", "--root", str(root)])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: no dataset 'tyo' under {root}; did you mean 'toy'? (others: other)"
    result = CliRunner().invoke(cli, ["status", "toy", "--root", str(tmp_path)])  # an empty root
    assert result.exit_code == 2 and result.output.strip().count("\n") == 0
    assert "(there are none)" in result.output and "audiobench synth --name toy" in result.output

"""Bad input is one line on stderr, exit 2: damaged records, a missing export folder, an unknown device; and
`status --export` writes the cells a spreadsheet would run as formulas neutralised."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from audiobench.cli import cli
from audiobench.core.records import Clip
from audiobench.data.cliplist import read_clip_list
from audiobench.data.ledger import Ledger
from toydata import write_features

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = ["--width", "0.0625", "--frames", "96", "--batch-size", "16", "--epochs", "1"]


def _invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _one_line(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: "), result.output
    for needle in needles:
        assert needle in result.output, result.output


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A dataset (features, ledger), a finished run, a one-trial study and a clip list of its test clips."""
    root = tmp_path_factory.mktemp("bad") / "root"
    write_features(root, sizes=(16, 8, 8), ledger=True)
    assert _invoke("train", "toy", "--root", root, "--variant", "att-self", "--out", root / "runs" / "run",
                   "-q", *TINY).exit_code == 0
    assert _invoke("compare", "toy", "--root", root, "--variants", "noatt-weak,att-self", "--trials", "1",
                   "--out", root / "runs" / "study", "-q", *TINY).exit_code == 0
    assert _invoke("status", "toy", "--root", root, "--export", root.parent / "clips.csv").exit_code == 0
    sf.write(root.parent / "noise.wav", np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32), 16000)
    return root


@pytest.fixture
def run(root, tmp_path) -> Path:
    folder = tmp_path / "runs" / "run"  # a copy of the run to damage, inside a copy of the root
    shutil.copytree(root, tmp_path, dirs_exist_ok=True)
    return folder


@pytest.mark.parametrize("text, problem", [('{"classes": 4,', "line 1: not valid JSON"),
                                           ("[4, 0.0625]", "expected a JSON object, got list"),
                                           ('{"width": 0.0625}', "lacks classes, attention"),
                                           ('{"classes": "four", "width": 1, "attention": true}', "not a number")])
def test_a_malformed_model_json_is_one_line_in_predict_and_evaluate(root, run, text, problem):
    (run / "model.json").write_text(text)
    _one_line(_invoke("predict", run, root.parent / "noise.wav"), "model.json", problem)
    _one_line(_invoke("evaluate", run, "--eval-on", root.parent / "clips.csv"), "model.json", problem)


def test_metrics_json_without_its_config_is_one_line_and_a_study_retrains_the_trial(root, run, tmp_path):
    metrics = json.loads((run / "metrics.json").read_text())
    del metrics["config"]
    (run / "metrics.json").write_text(json.dumps(metrics))
    _one_line(_invoke("evaluate", run, "--eval-on", root.parent / "clips.csv"), "metrics.json: lacks config")

    trial = tmp_path / "runs" / "study" / "trials" / "t00-att-self" / "metrics.json"
    metrics = json.loads(trial.read_text())
    del metrics["config"]
    trial.write_text(json.dumps(metrics))
    result = _invoke("compare", "toy", "--root", tmp_path, "--variants", "noatt-weak,att-self", "--trials", "1",
                     "--out", tmp_path / "runs" / "study", "-q", *TINY)
    assert result.exit_code == 0, result.output
    assert "1 trained now, 1 resumed" in result.output
    assert "config" in json.loads(trial.read_text())


def test_a_study_whose_results_json_is_cut_off_is_reported_again(root, run, tmp_path):
    results = tmp_path / "runs" / "study" / "results.json"
    results.write_text(results.read_text()[:200])
    result = _invoke("report", tmp_path / "runs" / "study", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(results.read_text())["variants"]


def test_status_export_into_a_missing_folder_is_one_line(root, tmp_path):
    _one_line(_invoke("status", "toy", "--root", root, "--export", tmp_path / "nowhere" / "clips.csv"),
              f"no folder {tmp_path / 'nowhere'}")
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_an_unknown_device_is_one_line(root, command):
    extra = [root.parent / "noise.wav"] if command == "predict" else ["--eval-on", root.parent / "clips.csv"]
    _one_line(_invoke(command, root / "runs" / "run", *extra, "--device", "tpu"),
              "--device must be auto, cpu, cuda or cuda:N, got 'tpu'")


def test_export_neutralises_formula_cells_and_reads_back_as_the_same_clips(root, tmp_path):
    copy = tmp_path / "root"
    shutil.copytree(root, copy)
    hostile = {"via": "import", "format": "folder", "member": '=HYPERLINK("http://x","y")', "note": "@SUM(A1)",
               "tab": "\tx", "cr": "\rx", "plus": "+1"}
    dash = Clip("-dashfirst1_0_1000", "test", "-dashfirst1", 0.0, 1.0, (0,), None)
    with Ledger(copy / "toy" / "ledger.sqlite") as ledger:
        ledger.add_clips([dash])
        ledger.mark(dash.clip_id, "ok", origin=hostile)
        ids = {s.clip_id for s in ledger.statuses()}
    out = tmp_path / "clips.csv"

    assert _invoke("status", "toy", "--root", copy, "--export", out).exit_code == 0

    rows = {row["clip_id"]: row for row in csv.DictReader(out.open(newline=""))}
    row = rows["'-dashfirst1_0_1000"]
    assert row["source_id"] == "'-dashfirst1"
    assert row["origin_member"] == '\'=HYPERLINK("http://x","y")' and row["origin_note"] == "'@SUM(A1)"
    assert (row["origin_tab"], row["origin_cr"], row["origin_plus"]) == ("'\tx", "'\rx", "'+1")
    for value in (v for r in rows.values() for v in r.values()):
        assert not value or value[0] not in "=+-@\t\r"
    assert read_clip_list(out).ids == ids  # read back without the ' it put there
    # a list of someone else's holding a -dash ID (no ') reads it as it is
    theirs = tmp_path / "theirs.csv"
    theirs.write_text("clip_id\n-dashfirst1_0_1000\n=cmd()\n")
    assert read_clip_list(theirs).ids == {"-dashfirst1_0_1000", "=cmd()"}
    record = json.loads(_invoke("evaluate", copy / "runs" / "run", "--eval-on", out, "--json").output)
    assert record["eval_on"]["clips"] == 8  # every test clip of the features matched through the export

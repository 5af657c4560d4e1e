"""DCASE 2017 task 4 as a dataset: registered from the organisers' pinned lists, fetched against a loopback
server with real yt-dlp and ffmpeg, imported from organiser-style cuts, featurized with its strong labels,
and scored by a model trained on an SL-DCASE-17-shaped dataset (same 17 classes, same order)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from sklearn.metrics import average_precision_score

from audiobench.cli import cli
from audiobench.core.layout import DatasetPaths
from audiobench.core.records import ClassInfo, Event
from audiobench.data.ledger import Ledger
from audiobench.data.manifests import load_manifest
from audiobench.data.register import register_dataset
from audiobench.features.store import feature_file
from audiobench.pipeline import load_pipeline
from audiobench.testing.media_server import MediaServer, encode_source
import copies
from toydata import write_features

DATASET = "dcase2017-task4"
ORGANISERS = ("https://raw.githubusercontent.com/ankitshah009/Task-4-Large-scale-weakly-supervised-sound-event-"
              "detection-for-smart-cars/96dc262e3869580c0ff4c4de622995a8e3573ad9/")


def _classes() -> tuple[ClassInfo, ...]:
    return load_manifest("sl-dcase17").classes.inline


def test_registers_from_the_pinned_files_with_the_organisers_counts(reference_dir, tmp_path):
    manifest = load_manifest(DATASET)
    for f in manifest.index:
        assert f.url.startswith(ORGANISERS) and f.url.endswith("/" + f.name)
        assert hashlib.sha256((reference_dir / f.mirror_dir / f.name).read_bytes()).hexdigest() == f.sha256
    assert manifest.roles == {"train": "train", "val": "testing", "test": "evaluation"}
    result = register_dataset(DATASET, root=tmp_path, mirror=reference_dir)
    assert result.listed == {"train": 51172, "testing": 488, "evaluation": 1103}
    with Ledger(result.ledger) as ledger:
        assert ledger.splits() == {"train": False, "testing": True, "evaluation": True}
        assert [(c.mid, c.name) for c in ledger.classes()] == [(c.mid, c.name) for c in _classes()]
        first = {c.clip_id: c for c in ledger.clips(split="testing")}["-5QrBL6MzLg_60000_70000"]
        assert Event(0, 0.917, 2.029) in first.events  # the organisers' first row: Train horn


@pytest.fixture(scope="module")
def fetched(tmp_path_factory, reference_dir):
    """20 clips (10 of testing, 10 of evaluation) fetched from the loopback server, resampled, featurized."""
    tmp = tmp_path_factory.mktemp("dcase")
    source = {"m4a": encode_source("m4a", 480, tmp / "src", rate=48000)}
    runner, root = CliRunner(), tmp / "root"
    with MediaServer(source) as server:
        for split in ("testing", "evaluation"):
            result = runner.invoke(cli, [
                "fetch", DATASET, "--root", str(root), "--index-mirror", str(reference_dir), "--source-template",
                server.template("m4a"), "--split", split, "--limit", "10", "--jobs", "4", "--quiet"])
            assert result.exit_code == 0, result.output
            assert "tried 10: 10 ok" in result.output
    for command in (["resample", DATASET], ["featurize", DATASET, "--split", "testing", "--split", "evaluation"]):
        result = runner.invoke(cli, [*command, "--root", str(root), "--quiet"])
        assert result.exit_code == 0, result.output
    return root


@pytest.mark.slow
def test_fetched_clips_are_featurized_with_their_strong_labels(fetched):
    paths = DatasetPaths(fetched, DATASET)
    with Ledger(paths.ledger) as ledger:
        for split in ("testing", "evaluation"):
            ok = {c.clip_id: c for c in ledger.clips(split=split, status="ok")}
            assert len(ok) == 10
            with h5py.File(feature_file(paths, split), "r") as f:
                assert sorted(f["clip_id"].asstr()[()]) == sorted(ok)
                assert f["strong"].shape[0] == 10 and f["strong"][()].any()
                assert list(f.attrs["class_mids"]) == [c.mid for c in _classes()]


def test_organiser_cuts_are_imported(tmp_path, reference_dir):
    root = tmp_path / "root"
    register_dataset(DATASET, root=root, mirror=reference_dir)
    with Ledger(DatasetPaths(root, DATASET).ledger) as ledger:
        wanted = ledger.statuses(split="evaluation")[:3]
    cuts = tmp_path / "DCASE_2017_evaluation_set_audio_files"
    for code, clip in enumerate(wanted, 1):
        copies.dcase_cut(cuts, clip.source_id, clip.start, clip.end, code)
    result = CliRunner().invoke(cli, ["import", DATASET, str(cuts), "--root", str(root),
                                      "--index-mirror", str(reference_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    with Ledger(DatasetPaths(root, DATASET).ledger) as ledger:
        ok = {c.clip_id for c in ledger.clips(split="evaluation", status="ok")}
    assert ok == {c.clip_id for c in wanted}


@pytest.mark.slow
def test_a_model_trained_on_sl_dcase17_is_scored_on_the_strong_evaluation_set(fetched, tmp_path, one_torch_thread):
    write_features(fetched, "sl-dcase17", sizes=(24, 12, 12), classes=_classes())
    runner = CliRunner()
    result = runner.invoke(cli, ["train", "sl-dcase17", "--root", str(fetched), "--variant", "att-strong",
                                 "--width", "0.0625", "--epochs", "1", "--batch-size", "8",
                                 "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["evaluate", str(tmp_path / "run"), "--on", f"{DATASET}:evaluation", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["eval_on"]["file"] == f"{DATASET}:evaluation" and record["eval_on"]["clips"] == 10
    written = json.loads((tmp_path / "run" / f"evaluation-{DATASET}-evaluation.json").read_text())
    assert written["test_map"] == pytest.approx(record["test_map"])
    # event-level numbers for an SL-DCASE-17 model, post-processing chosen on the organisers' testing set
    assert record["events"]["chosen_on"] == f"{DATASET}:testing"
    assert 0 <= record["test_segment_f1"] <= 1 and record["test_segment_er"] >= 0
    events = tmp_path / "run" / f"evaluation-{DATASET}-evaluation-events"
    # the ground truth written is the organisers' events of exactly the 10 clips scored (0 0 rows: no event)
    truth = [line.split("\t") for line in (events / "ground_truth.tsv").read_text().splitlines()[1:]]
    got: dict[str, set[str]] = {}
    for filename, *_, label in truth:
        got.setdefault(filename.rsplit(".", 1)[0], set()).update({label} if label else set())
    names = [c.name for c in _classes()]
    with Ledger(DatasetPaths(fetched, DATASET).ledger) as ledger:
        listed = {c.clip_id: {names[e.class_index] for e in c.events if e.offset > e.onset}
                  for c in ledger.clips(split="evaluation", status="ok")}
    assert got == listed
    # the mAP is scikit-learn's over the classes present among the 10 clips, on the run's own predictions
    from audiobench.features.dataset import LogmelDataset
    from audiobench.models.checkpoint import load_model
    from audiobench.training.inference import predict_dataset

    net, _ = load_model(tmp_path / "run")
    predictions = predict_dataset(net, LogmelDataset(feature_file(DatasetPaths(fetched, DATASET), "evaluation"),
                                                     frames=None), device=torch.device("cpu"), batch_size=8)
    targets = predictions.targets > 0
    aps = [average_precision_score(targets[:, c], predictions.scores[:, c])
           for c in range(targets.shape[1]) if targets[:, c].any()]
    assert record["test_map"] == pytest.approx(float(np.mean(aps)), abs=1e-6)


@pytest.mark.slow
def test_scoring_on_classes_in_another_order_is_refused(fetched, tmp_path, one_torch_thread):
    shuffled = _classes()[1::-1] + _classes()[2:]
    write_features(fetched, "reordered", sizes=(16, 8, 8), classes=shuffled)
    runner = CliRunner()
    result = runner.invoke(cli, ["train", "reordered", "--root", str(fetched), "--variant", "noatt-weak", "--width",
                                 "0.0625", "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["evaluate", str(tmp_path / "run"), "--on", DATASET])
    assert result.exit_code != 0
    assert "another order" in result.output and "'Air horn, truck horn'" in result.output
    assert not (tmp_path / "run" / f"evaluation-{DATASET}-test.json").exists()
    result = runner.invoke(cli, ["evaluate", str(tmp_path / "run"), "--on", DATASET, "--eval-on", "x.csv"])
    assert result.exit_code != 0 and "one of the two" in result.output


def test_the_events_pipeline_trains_on_sl_dcase17_and_scores_on_both_strong_sets():
    pipeline = load_pipeline(Path(__file__).parents[1] / "pipelines" / "sl-dcase17-events.toml")
    assert pipeline.dataset == "sl-dcase17"
    steps = [(s.stage, s.options.get("dataset"), s.options.get("split") or s.options.get("on")) for s in pipeline.steps]
    assert ("fetch", DATASET, "testing") in steps and ("fetch", DATASET, "evaluation") in steps
    assert ("featurize", DATASET, None) in steps
    (study,) = [s.options for s in pipeline.steps if s.stage == "compare"]
    assert study["trials"] == 20 and "att-self" in study["variants"]
    assert [s.options["on"] for s in pipeline.steps if s.stage == "evaluate"] == [f"{DATASET}:testing",
                                                                                 f"{DATASET}:evaluation"]
    assert {s.options["study"] for s in pipeline.steps if s.stage == "evaluate"} == {study["name"]}

"""train --log csv|tensorboard: per-step loss and per-epoch metrics, as the run's own numbers say."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from audiobench.cli import cli
from toydata import write_features

ARGS = ["--variant", "att-self", "--width", "0.0625", "--frames", "96", "--batch-size", "16", "--lr", "3e-3",
        "--epochs", "3", "--quiet"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("root")
    write_features(root, sizes=(40, 16, 16))
    return root


def _train(toy: Path, out: Path, log: str) -> dict:
    result = CliRunner().invoke(cli, ["train", "toy", "--root", str(toy), "--out", str(out), "--log", log, *ARGS])
    assert result.exit_code == 0, result.output
    return json.loads((out / "metrics.json").read_text())


def test_csv_log_has_every_step_and_the_epochs_of_metrics_json(toy, tmp_path):
    metrics = _train(toy, tmp_path / "run", "csv")
    steps = pd.read_csv(tmp_path / "run" / "logs" / "steps.csv")
    assert len(steps) == 3 * 3 and list(steps.step) == list(range(1, 10))  # 40 clips in batches of 16: 3 steps
    assert list(steps.epoch) == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    epochs = pd.read_csv(tmp_path / "run" / "logs" / "epochs.csv")
    assert list(epochs.epoch) == [1, 2, 3] and {"loss", "val_map", "val_auc"} <= set(epochs.columns)
    assert epochs.val_map.tolist() == pytest.approx([e["val_map"] for e in metrics["epochs"]])
    assert epochs.loss.tolist() == pytest.approx([e["loss"] for e in metrics["epochs"]], rel=1e-6)


def test_tensorboard_log_reads_back_with_tensorboards_own_reader(toy, tmp_path):
    metrics = _train(toy, tmp_path / "run", "tensorboard")
    events = EventAccumulator(str(tmp_path / "run" / "logs"))
    events.Reload()
    assert {"train/loss", "epoch/loss", "epoch/val_map", "epoch/val_auc"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("train/loss")] == list(range(1, 10))
    val = events.Scalars("epoch/val_map")
    assert [e.step for e in val] == [1, 2, 3]
    assert [e.value for e in val] == pytest.approx([e["val_map"] for e in metrics["epochs"]], rel=1e-6)


def test_an_unknown_log_format_is_refused(toy, tmp_path):
    result = CliRunner().invoke(cli, ["train", "toy", "--root", str(toy), "--log", "wandb", *ARGS])
    assert result.exit_code == 2 and "wandb" in result.output

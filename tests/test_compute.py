"""The compute record: where a run trained and what it cost, in metrics.json, results.json and report.md."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from audiobench.models.checkpoint import load_model
from audiobench.study.report import render_report
from audiobench.training.compute import flops_per_clip
from audiobench.training.train import train
from test_report import write_run
from toydata import FRAMES, write_features

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class ConvLinear(nn.Module):
    """A clip [T, F] through one 3×3 conv (1 → 4 channels, same padding) and one linear layer to 5 outputs."""

    def __init__(self, frames: int, bands: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * frames * bands, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x.unsqueeze(1))).flatten(1))


def test_flops_per_clip_match_a_hand_count_of_a_small_conv_net() -> None:
    frames, bands = 8, 6
    conv_macs = (4 * frames * bands) * (1 * 3 * 3)  # each output value: a 3×3 window of one input channel
    linear_macs = (4 * frames * bands) * 5
    assert flops_per_clip(ConvLinear(frames, bands), frames=frames, bands=bands) == 2 * (conv_macs + linear_macs)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("root")
    write_features(root, sizes=(16, 8, 8))
    out = root / "run"
    train("toy", root=root, variant="att-self", epochs=1, width=0.0625, frames=FRAMES, batch_size=8, out=out,
          quiet=True)
    return out


def test_a_run_records_its_machine_and_cost_in_metrics_json(trained: Path) -> None:
    metrics = json.loads((trained / "metrics.json").read_text())
    compute = metrics["compute"]
    net, _ = load_model(trained)
    assert compute["cpu"] and compute["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert compute["onednn_isa"] and compute["gpu"] is None and compute["device"] == "cpu"
    assert compute["torch"] == torch.__version__ and compute["numpy"] == np.__version__
    assert compute["threads"] == 1
    assert compute["deterministic"]["algorithms"] is True  # the run trains under deterministic algorithms
    assert compute["parameters"] == sum(p.numel() for p in net.parameters())
    assert compute["flops_per_clip"] == flops_per_clip(net, frames=FRAMES, bands=64) > compute["parameters"]
    assert compute["input"] == [FRAMES, 64]
    assert compute["wall_s"] == metrics["timing"]["total_s"] > 0
    assert compute["train_clips_per_s"] == pytest.approx(metrics["timing"]["train_clips_per_s"])
    assert compute["peak_memory_bytes"] > 10 * 2**20 and compute["energy"] is None


def _study(tmp_path: Path, trained: Path) -> Path:
    """A study folder whose trials/*/metrics.json are the real run's, one per (trial, variant)."""
    variants = ["noatt-weak", "att-self"]
    run = write_run(tmp_path / "study", np.array([[0.60, 0.64], [0.61, 0.65], [0.59, 0.63]]), variants,
                    attention=False)
    metrics = json.loads((trained / "metrics.json").read_text())
    for k in range(3):
        for v in variants:
            folder = run / "trials" / f"t{k:02d}-{v}"
            folder.mkdir(parents=True)
            (folder / "metrics.json").write_text(json.dumps({**metrics, "config": {**metrics["config"],
                                                                                   "variant": v}}))
    return run


def test_the_report_sums_each_variants_compute(tmp_path: Path, trained: Path) -> None:
    run = _study(tmp_path, trained)
    text = render_report(run).read_text()
    one = json.loads((trained / "metrics.json").read_text())["compute"]
    results = json.loads((run / "results.json").read_text())["compute"]
    assert [v["variant"] for v in results["variants"]] == ["noatt-weak", "att-self"]
    row = results["variants"][1]
    assert row["runs"] == 3 and row["wall_s"] == pytest.approx(3 * one["wall_s"])
    assert row["flops_per_clip"] == one["flops_per_clip"] and row["parameters"] == one["parameters"]
    assert results["warning"] is None and len(results["machines"]) == 1
    section = text.split("## Compute", 1)[1].split("\n## ", 1)[0]
    assert "| att-self | 3 |" in section and f"{one['parameters']:,}" in section
    assert "not interchangeable" not in text


def test_trials_on_different_cpu_capabilities_are_warned_about(tmp_path: Path, trained: Path) -> None:
    run = _study(tmp_path, trained)
    path = run / "trials" / "t01-att-self" / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["compute"]["cpu_capability"] = "DEFAULT" if metrics["compute"]["cpu_capability"] != "DEFAULT" else "AVX2"
    path.write_text(json.dumps(metrics))
    shutil.rmtree(run / "trials" / "t02-noatt-weak")  # and an older run without a record, counted apart
    old = {k: v for k, v in json.loads((run / "trials" / "t00-noatt-weak" / "metrics.json").read_text()).items()
           if k != "compute"}
    (run / "trials" / "t02-noatt-weak").mkdir()
    (run / "trials" / "t02-noatt-weak" / "metrics.json").write_text(json.dumps(old))
    text = render_report(run).read_text()
    results = json.loads((run / "results.json").read_text())["compute"]
    assert len(results["machines"]) == 2 and results["unrecorded"] == 1
    assert "not interchangeable" in results["warning"]
    warnings = text.split("## Warnings", 1)[1].split("\n## ", 1)[0]
    assert "different machines or CPU capabilities" in warnings
    assert "**Warning:**" in text.split("## Compute", 1)[1] and "1 run(s) recorded no compute" in text

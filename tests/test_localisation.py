"""Attention localisation (audiobench.training.localisation) on synthetic clips, whose strong labels are exact."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import audiobench
from audiobench.data.synth import synthesize
from audiobench.features.featurize import featurize
from audiobench.models.checkpoint import load_model
from audiobench.models.net import build_net
from audiobench.training.localisation import _Sums, measure

# The demo's shape and training budget (pipelines/synth-demo.toml): six classes, 3 s clips, width 1/16,
# 10 epochs of 200 clips, batch 8, lr 1e-3. Fewer validation and test clips than the demo's (60, 120) keep
# the test fast; the concentration is a mean over (clip, present class) pairs, so it only gets noisier.
DEMO_CLASSES = ["Reversing beeps", "Screaming", "Air horn, truck horn", "Train horn", "Police car (siren)", "Car"]
DEMO = dict(width=0.0625, frames=298, epochs=10, lr=1e-3, batch_size=8, quiet=True)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_record_of_one_clip_is_the_shares_counted_by_hand():
    attention = np.array([[0.1, 0.6, 0.2, 0.1],     # present: events on segments 1 and 2
                          [0.4, 0.1, 0.1, 0.4],     # absent: 0.8 on its edges
                          [0.25, 0.25, 0.25, 0.25]])  # present on every segment: nothing to localise
    segments = np.array([[0, 1, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=np.float32)
    sums = _Sums()
    sums.add(attention, segments, np.array([1, 0, 1]))
    record = sums.record()
    assert record["pairs"] == 1 and record["absent_pairs"] == 1
    assert record["concentration"] == pytest.approx(0.8 / 0.5)
    assert record["absent_edge_mass"] == pytest.approx(0.8) and record["absent_edge_uniform"] == pytest.approx(0.5)


def test_att_strong_at_the_demo_shape_puts_its_attention_on_the_events(tmp_path):
    synthesize("demo", root=tmp_path, train=200, val=20, test=60, duration=3.0, classes=DEMO_CLASSES, quiet=True)
    featurize("demo", root=tmp_path, quiet=True)
    test = audiobench.open_split("demo", "test", root=tmp_path)
    untrained = measure(build_net(len(DEMO_CLASSES), width=0.0625, seed=0), test, device=torch.device("cpu"))

    result = audiobench.train("demo", root=tmp_path, variant="att-strong", out=tmp_path / "run", **DEMO)

    record = json.loads(result.metrics.read_text())["localisation"]
    assert set(record) == {"val", "test"} and record["test"]["clips"] == 60
    net, _ = load_model(result.run_dir)
    assert record["test"] == pytest.approx(measure(net, test, device=torch.device("cpu")))
    # Measured (docs/model.md, "Where attention lies"): on the demo's 120 test clips att-strong gives 1.61 to
    # 2.50 over seeds 0-4, an untrained net 0.89 to 1.00, the weakly supervised variants 1.28 and 1.31 on
    # average; on these 60 clips att-strong 1.80, 2.47, 1.78 for seeds 0-2 (this test: seed 0), untrained
    # 0.86 to 0.99. 1.3 lies well below att-strong's worst seed and above every untrained net and the weak
    # variants' mean: attention not trained by the strong targets fails it.
    assert untrained["concentration"] < 1.1
    assert record["test"]["concentration"] > 1.3, record["test"]


def test_a_net_without_attention_has_no_localisation(tmp_path):
    synthesize("tiny", root=tmp_path, train=4, val=2, test=2, duration=1.0, classes=DEMO_CLASSES[:2], quiet=True)
    featurize("tiny", root=tmp_path, quiet=True)
    result = audiobench.train("tiny", root=tmp_path, variant="noatt-weak", out=tmp_path / "run",
                              **{**DEMO, "epochs": 1, "frames": None})
    assert json.loads(result.metrics.read_text())["localisation"] is None

"""Training runs end to end on small real feature files written with the cache's own writer."""
from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from click.testing import CliRunner

from audiobench.models.checkpoint import load_model
from audiobench.cli import cli
from audiobench.features.dataset import LogmelDataset
from audiobench.core.errors import AudiobenchError
from audiobench.features.store import split_path
from audiobench.features.vggish import feature_id
from audiobench.training.inference import predict_dataset
from audiobench.core.layout import DatasetPaths
from audiobench.data.ledger import Ledger
from audiobench.models.net import build_net
from audiobench.training.train import TrainConfig, read_result, train, train_epoch, train_loader
from audiobench.training.splits import open_splits
from audiobench.models.variants import variant_spec
from toydata import CLASSES, FRAMES, write_features

TINY = dict(width=0.0625, frames=FRAMES, batch_size=16, lr=3e-3, quiet=True)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("root")
    write_features(root)
    return root


def test_loss_falls_over_a_few_steps(toy_root):
    config = TrainConfig("toy", "att-strong", width=0.0625, frames=FRAMES, batch_size=16)
    splits = open_splits(DatasetPaths(toy_root, "toy"), feature_id=None, frames=FRAMES, seed=0)
    batches = list(islice(iter(train_loader(splits, config, torch.device("cpu"))), 2))
    net = build_net(4, width=0.0625, attention=True, seed=0)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    spec = variant_spec("att-strong")
    losses = [train_epoch(net, batches, spec, optimizer, device=torch.device("cpu"), alpha=1.0, beta=1.0)
              for _ in range(12)]
    assert set(losses[0]) == {"loss", "pred", "att_strong"}
    assert losses[-1]["loss"] < 0.95 * losses[0]["loss"]
    assert losses[-1]["pred"] < losses[0]["pred"] and losses[-1]["att_strong"] < losses[0]["att_strong"]


def test_a_run_writes_metrics_checkpoint_and_curve(toy_root, tmp_path):
    result = train("toy", root=toy_root, variant="att-strong", epochs=2, out=tmp_path / "run", **TINY)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["config"]["variant"] == "att-strong" and metrics["config"]["width"] == 0.0625
    assert metrics["version"] and metrics["clips"] == {"train": 48, "val": 24, "test": 24}
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    assert set(metrics["epochs"][0]["terms"]) == {"pred", "att_strong"}
    assert metrics["best_epoch"] == result.best_epoch in (1, 2)
    assert metrics["val_map"] == max(e["val_map"] for e in metrics["epochs"]) == result.val_map
    assert metrics["test_map"] == result.test_map
    assert 0 < metrics["chance_test_map"] < 1
    assert [c["name"] for c in metrics["test_per_class"]] == [c.name for c in CLASSES]
    assert metrics["timing"]["train_clips_per_s"] > 0
    assert (tmp_path / "run" / "training-curve.png").read_bytes()[:4] == b"\x89PNG"
    assert read_result(result.run_dir) == result
    net, meta = load_model(result.run_dir)
    assert meta["config"]["variant"] == "att-strong" and net.attention
    with pytest.raises(AudiobenchError, match="already holds a finished run"):
        train("toy", root=toy_root, variant="att-strong", epochs=1, out=tmp_path / "run", **TINY)


def test_same_seed_gives_the_same_numbers(toy_root, tmp_path):
    runs = [train("toy", root=toy_root, variant="att-self", epochs=2, seed=s, out=tmp_path / f"r{i}", **TINY)
            for i, s in enumerate((3, 3, 4))]
    assert runs[0].epochs == tuple({**e, "train_s": e["train_s"], "val_s": e["val_s"]} for e in runs[0].epochs)
    strip = [[(e["loss"], e["terms"], e["val_map"]) for e in r.epochs] for r in runs]
    assert strip[0] == strip[1] and runs[0].test_map == runs[1].test_map
    assert torch.equal(torch.load(runs[0].checkpoint)["l8b.weight"], torch.load(runs[1].checkpoint)["l8b.weight"])
    assert strip[2] != strip[0]


def test_variants_with_the_same_seed_see_the_same_batches(toy_root):
    paths = DatasetPaths(toy_root, "toy")

    def first_epochs(variant: str, width: float) -> list[torch.Tensor]:
        config = TrainConfig("toy", variant, seed=5, width=width, frames=64, batch_size=16)
        splits = open_splits(paths, feature_id=None, frames=64, seed=5)
        loader = train_loader(splits, config, torch.device("cpu"))  # as train() does: one loader, many epochs
        seen = []
        for epoch in (1, 2):
            splits.train.set_epoch(epoch)
            seen += [(b["index"], b["logmel"]) for b in loader]
        return seen

    a, b = first_epochs("noatt-weak", 0.0625), first_epochs("att-strong-self", 0.125)
    assert all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b))
    assert not torch.equal(a[0][0], a[3][0])  # reshuffled each epoch


def test_strong_variant_refuses_a_weak_training_split(tmp_path):
    write_features(tmp_path, "weakonly", sizes=(8, 8, 8), strong_train=False)
    with pytest.raises(AudiobenchError, match="split 'train' has weak labels only"):
        train("weakonly", root=tmp_path, variant="noatt-strong", epochs=1, **TINY)
    result = CliRunner().invoke(cli, ["train", "weakonly", "--root", str(tmp_path), "--variant", "att-strong"])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "att-strong needs strong labels" in result.output


def test_cli_trains_and_prints_json(toy_root, tmp_path):
    result = CliRunner().invoke(cli, ["train", "toy", "--root", str(toy_root), "--variant", "noatt-weak",
                                      "--epochs", "1", "--width", "0.0625",
                                      "--lr", "3e-3", "--out", str(tmp_path / "cli"), "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["variant"] == "noatt-weak" and summary["best_epoch"] == 1
    assert summary["run_dir"] == str(tmp_path / "cli")
    # No --frames: the clips' own length (the toy clips are ~1 s), not 10 s of padding.
    assert json.loads((tmp_path / "cli" / "metrics.json").read_text())["config"]["frames"] == FRAMES


def test_frames_default_to_the_longest_training_clip_and_shorter_frames_say_they_crop(tmp_path, caplog):
    lengths = {"train": [40] * 7 + [64], "val": [64] * 4, "test": [64] * 4}
    write_features(tmp_path, "short", sizes=(8, 4, 4), lengths=lengths)
    options = {k: v for k, v in TINY.items() if k != "frames"}
    with caplog.at_level("WARNING"):
        whole = train("short", root=tmp_path, variant="noatt-weak", epochs=1, out=tmp_path / "whole", **options)
    assert whole.config.frames == 64 and not caplog.records
    for name in ("config.json", "metrics.json"):  # the run says what it used, from its start
        assert json.loads((whole.run_dir / name).read_text())["config"]["frames"] == 64
    with caplog.at_level("WARNING"):
        cropped = train("short", root=tmp_path, variant="noatt-weak", epochs=1, frames=48, out=tmp_path / "crop",
                        **options)
    assert cropped.config.frames == 48
    assert [r.getMessage() for r in caplog.records] == [
        "training clips are cropped to 48 frames (--frames); the longest has 64 "
        "(leave --frames out to train on whole clips)"]


def test_splits_of_other_names_train_in_the_roles_the_dataset_gives_them(tmp_path):
    paths = write_features(tmp_path, splits=("fold1", "fold2", "fold3"), sizes=(16, 8, 8), ledger=True)
    with pytest.raises(AudiobenchError, match="train.h5"):  # no roles recorded: the split named "train" is looked for
        train("toy", root=tmp_path, variant="att-strong", epochs=1, out=tmp_path / "none", **TINY)
    with Ledger(paths.ledger) as ledger:  # what registering a manifest with `role = ...` per split records
        ledger.set_meta(roles={"train": "fold1", "val": "fold2", "test": "fold3"})
    result = train("toy", root=tmp_path, variant="att-strong", epochs=1, out=tmp_path / "run", **TINY)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["clips"] == {"train": 16, "val": 8, "test": 8} and len(metrics["epochs"]) == 1
    with Ledger(paths.ledger) as ledger:
        ledger.set_meta(roles={"train": "fold1", "val": "fold2"})
    with pytest.raises(AudiobenchError, match='has no test split: give one \\[splits.\\*\\] table of its manifest `role = "test"`'):
        train("toy", root=tmp_path, variant="att-strong", epochs=1, out=tmp_path / "again", **TINY)


def test_missing_features_and_bad_options_are_one_line_errors(toy_root, tmp_path):
    with pytest.raises(AudiobenchError, match="no dataset 'nothing'.*`audiobench synth --name nothing`"):
        train("nothing", root=tmp_path, variant="noatt-weak", epochs=1)
    with pytest.raises(AudiobenchError, match="no variant 'att-magic'"):
        train("toy", root=toy_root, variant="att-magic", epochs=1)
    with pytest.raises(AudiobenchError, match="no CUDA GPU") if not torch.cuda.is_available() else \
            pytest.raises(AudiobenchError, match="--device"):
        train("toy", root=toy_root, variant="noatt-weak", epochs=1, device="cuda" if not torch.cuda.is_available()
              else "tpu", out=tmp_path / "x", **TINY)


def test_patience_stops_when_validation_does_not_improve(toy_root, tmp_path):
    result = train("toy", root=toy_root, variant="noatt-weak", epochs=6, patience=1, out=tmp_path / "p",
                   **{**TINY, "lr": 1e-12})  # weights barely move: the validation mAP stays put
    assert len(result.epochs) == 2 and result.best_epoch == 1
    assert json.loads(result.metrics.read_text())["stopped_early"] is True


def test_inference_on_true_lengths_equals_one_clip_at_a_time(tmp_path):
    lengths = {"train": [FRAMES] * 4, "val": [80, 96, 12, 80, 96, 50], "test": [96] * 4}
    paths = write_features(tmp_path, "ragged", sizes=(4, 6, 4), lengths=lengths)
    val = open_splits(paths, feature_id=None, frames=FRAMES, seed=0).val
    net = build_net(4, width=0.0625, attention=True, seed=1).eval()
    scores = predict_dataset(net, val, device=torch.device("cpu"), batch_size=4).scores
    for i in range(len(val)):
        x = val[i]["logmel"]
        if x.shape[0] < 16:  # shorter than one segment: padded with silence to 16 frames
            x = torch.cat([x, torch.full((16 - x.shape[0], 64), val.padding_value)])
        with torch.no_grad():
            alone = net(x[None]).clip[0].numpy()
        np.testing.assert_allclose(scores[i], alone, rtol=1e-5, atol=1e-6)


def test_two_step_transfer_and_freeze_through_train(toy_root, tmp_path):
    first = train("toy", root=toy_root, variant="noatt-weak", epochs=1, out=tmp_path / "a", **TINY)
    second = train("toy", root=toy_root, variant="att-self", epochs=1, init=f"run:{first.run_dir}", freeze=7,
                   out=tmp_path / "b", **TINY)
    a, b = torch.load(first.checkpoint), torch.load(second.checkpoint)
    for key in a:
        if key.startswith(("convs.", "l7.")):
            assert torch.equal(a[key], b[key]), key  # loaded, then kept fixed by --freeze 7
    assert json.loads(second.metrics.read_text())["config"]["init"] == f"run:{first.run_dir}"


def test_class_without_test_positives_is_listed_not_averaged(tmp_path):
    paths = write_features(tmp_path, "sparse", sizes=(16, 8, 8), seed=3)
    test_file = split_path(paths.feature_dir(feature_id()), "test")
    import h5py
    with h5py.File(test_file, "r+") as f:  # drop every class-3 label from the test split
        weak = f["weak"][()]
        weak[:, 3] = 0
        f["weak"][...] = weak
    assert LogmelDataset(test_file, frames=None)[0]["weak"][3] == 0
    result = train("sparse", root=tmp_path, variant="noatt-weak", epochs=1, out=tmp_path / "s", **TINY)
    metrics = json.loads(result.metrics.read_text())
    assert metrics["test_skipped"] == ["toy 3"]
    assert result.test_per_class["toy 3"] is None
    evaluated = [c["ap"] for c in metrics["test_per_class"] if c["ap"] is not None]
    assert result.test_map == pytest.approx(np.mean(evaluated))


@pytest.mark.slow
def test_noatt_weak_and_att_self_learn_far_above_chance(tmp_path):
    write_features(tmp_path, "learn", sizes=(96, 48, 48))
    for variant in ("noatt-weak", "att-self"):
        result = train("learn", root=tmp_path, variant=variant, epochs=12, out=tmp_path / variant,
                       **{**TINY, "width": 0.125, "lr": 1e-3})
        chance = json.loads(result.metrics.read_text())["chance_test_map"]
        assert result.test_map > chance + 0.25, (variant, result.test_map, chance)


def test_cli_one_step_transfer_from_vggish_with_frozen_convs(tmp_path):
    write_features(tmp_path, "tiny", sizes=(4, 4, 4), lengths={s: [32] * 4 for s in ("train", "val", "test")})
    g = torch.Generator().manual_seed(0)
    shapes = {0: (64, 1), 3: (128, 64), 6: (256, 128), 8: (256, 256), 11: (512, 256), 13: (512, 512)}
    vggish = {}
    for index, (cout, cin) in shapes.items():
        vggish[f"features.{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * 0.05
        vggish[f"features.{index}.bias"] = torch.randn(cout, generator=g) * 0.05
    torch.save(vggish, tmp_path / "vggish-10086976.pth")
    result = CliRunner().invoke(cli, ["train", "tiny", "--root", str(tmp_path), "--variant", "att-self",
                                      "--init", f"vggish:{tmp_path / 'vggish-10086976.pth'}", "--freeze", "6",
                                      "--epochs", "1", "--frames", "32", "--batch-size", "4",
                                      "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "att-self" in result.output and "test mAP" in result.output
    state = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    for layer, index in enumerate(shapes):
        assert torch.equal(state[f"convs.{layer}.weight"], vggish[f"features.{index}.weight"])
        assert torch.equal(state[f"convs.{layer}.bias"], vggish[f"features.{index}.bias"])


def test_the_training_loader_gives_the_batches_of_a_shuffled_dataloader(toy_root):
    """Batches built at once by the Dataset: the same clips, crops and order as DataLoader(shuffle=True)."""
    splits = open_splits(DatasetPaths(toy_root, "toy"), feature_id=None, frames=40, seed=2)
    splits.train.set_epoch(3)
    config = TrainConfig("toy", "att-strong", batch_size=4, frames=40, seed=2)
    ours = list(train_loader(splits, config, torch.device("cpu")))
    plain = list(DataLoader(splits.train, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(2)))
    assert [b["index"].tolist() for b in ours] == [b["index"].tolist() for b in plain]
    for a, b in zip(ours, plain):
        assert all(torch.equal(a[key], b[key]) for key in ("logmel", "weak", "strong", "length"))

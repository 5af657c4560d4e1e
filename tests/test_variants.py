"""Variants are data in one place: a variant registered from here trains, compares and reports end to end."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from audiobench.core.errors import AudiobenchError
from audiobench.models.checkpoint import load_model
from audiobench.models.losses import TERM_FUNCTIONS
from audiobench.models.variants import (SPECS, TERMS, VariantSpec, fig4_pair, register_variant, unregister_variant,
                                        variants_table)
from audiobench.study.compare import CompareConfig, compare
from audiobench.training.options import TrainOptions
from toydata import FRAMES, write_features

REPO = Path(__file__).resolve().parents[1]
# A toy variant: existing terms, another weight on self-supervision, and a name without the usual prefix, so
# that nothing can recognise attention (Fig. 4, Fig. 5, the network's head) by a variant's name.
TOY = VariantSpec("tenth-self", "attention", (("pred", 1.0), ("att_self", 0.1)), labels="weak (self-supervised, 0.1)",
                  fig4_over="att-unsup")
TINY = dict(width=0.0625, frames=FRAMES, batch_size=16, lr=3e-3, epochs=1)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def toy_variant():
    register_variant(TOY)
    yield TOY
    unregister_variant(TOY.name)


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("root")
    write_features(root, sizes=(32, 16, 16))
    return root


def test_a_variant_registered_in_one_place_trains_compares_and_reports(toy_variant, toy_root, tmp_path):
    study = compare(CompareConfig("toy", ("att-unsup", "tenth-self"), trials=1, train=TrainOptions(**TINY)),
                    root=toy_root, out=tmp_path / "study", quiet=True)
    assert study.failures == [] and study.finished == 2
    run = study.run_dir / "trials" / "t00-tenth-self"  # trained one epoch, end to end, like any variant
    epoch = json.loads((run / "metrics.json").read_text())["epochs"][0]
    assert set(epoch["terms"]) == {"pred", "att_self"}
    assert epoch["loss"] == pytest.approx(epoch["terms"]["pred"] + 0.1 * epoch["terms"]["att_self"], rel=1e-5)
    net, meta = load_model(run)
    assert net.attention and meta["config"]["variant"] == "tenth-self"
    config = json.loads((study.run_dir / "config.json").read_text())
    assert config["labels_used"]["tenth-self"] == "weak (self-supervised, 0.1)"
    assert config["fig4"] == {"variant": "tenth-self", "over": "att-unsup"}
    assert set(pd.read_csv(study.run_dir / "trials.csv").variant) == {"att-unsup", "tenth-self"}
    assert any(p.stem.endswith("-tenth-self") for p in (study.run_dir / "attention").glob("*.npz"))  # Fig. 5
    report = study.report.read_text()
    assert "| tenth-self | weak (self-supervised, 0.1) |" in report
    assert "AP gain of tenth-self over att-unsup" in report


@pytest.mark.parametrize("spec, problem", [
    (VariantSpec("a/b", "mean", (("pred", 1.0),)), "invalid variant name 'a/b'"),
    (VariantSpec("x", "max", (("pred", 1.0),)), "pooling 'max' (choose from mean, attention)"),
    (VariantSpec("x", "mean", ()), "no loss term"),
    (VariantSpec("x", "mean", (("pred", 1.0), ("frame", 1.0))), "unknown loss term 'frame'"),
    (VariantSpec("x", "mean", (("pred", 1.0), ("pred", 0.5))), "loss term 'pred' twice"),
    (VariantSpec("x", "mean", (("pred", 1.0), ("att_self", "alpha"))), "loss term 'att_self' reads the attention"),
    (VariantSpec("x", "attention", (("pred", "gamma"),)), "weight 'gamma' of 'pred'"),
    (VariantSpec("x", "attention", (("pred", 1.0),), fig4_over="att-nothing"), "fig4_over 'att-nothing'"),
    (VariantSpec("att-self", "attention", (("pred", 1.0),)), "registered already"),
])
def test_a_wrong_variant_is_refused_when_registered_naming_the_fault(spec, problem):
    with pytest.raises(AudiobenchError, match="variant ") as info:
        register_variant(spec)
    assert problem in str(info.value) and "\n" not in str(info.value)
    assert SPECS["att-self"].terms == (("pred", 1.0), ("att_self", "alpha"))  # nothing replaced


def test_every_loss_term_has_a_function_and_the_docs_table_is_the_registry():
    assert list(TERM_FUNCTIONS) == list(TERMS)
    assert variants_table() in (REPO / "docs" / "model.md").read_text()


def test_fig4_pairs_come_from_the_variants_not_their_names():
    # The paper's Fig. 4: self-supervised over unsupervised attention (Table I rows 6 and 4), when both ran.
    assert fig4_pair(["noatt-weak", "att-unsup", "att-strong", "att-self"], "noatt-weak") == ("att-self", "att-unsup")
    # The variant Fig. 4 names is not in the study: over the baseline.
    assert fig4_pair(["noatt-weak", "att-strong", "att-self"], "noatt-weak") == ("att-self", "noatt-weak")
    assert fig4_pair(["noatt-weak", "noatt-strong"], "noatt-weak") is None
    assert fig4_pair(["noatt-weak", "someone-elses"], "noatt-weak") is None  # unknown names are passed over

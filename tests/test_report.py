"""The report: a real run folder in tmp_path (CSV, JSON, npz) rendered to report.md, PNGs and results.json."""
from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from audiobench.cli import cli
from audiobench.core.errors import AudiobenchError, InputFormatError
from audiobench.study.report import render_report

CLASSES = [("/m/0284vy3", "Train horn"), ("/m/02mfyn", "Car alarm"), ("/m/012n7d", "Ambulance (siren)"),
           ("/m/0k4j", "Car"), ("/m/07jdr", "Train")]
NEVER_POSITIVE = 4  # "Train" has no positive clip in the test split
DURATIONS = [0.4, 1.5, 3.0, 8.5, 9.0]
VARIANTS = ["noatt-weak", "att-unsup", "att-self"]
LABELS = {"noatt-weak": "weak", "att-unsup": "weak", "att-self": "weak (self)"}
# test mAP per trial (rows) and variant (columns): att-self wins every trial, att-unsup is mixed
MAPS = np.array([[0.600, 0.605, 0.640], [0.610, 0.602, 0.652], [0.595, 0.607, 0.633], [0.620, 0.618, 0.661],
                 [0.605, 0.611, 0.649], [0.598, 0.596, 0.637], [0.612, 0.619, 0.655], [0.603, 0.600, 0.650]])


def write_run(run: Path, maps: np.ndarray = MAPS, variants: list[str] = VARIANTS, *, durations: bool = True,
              attention: bool = True, per_class: bool = True, epochs: bool = True, **config: object) -> Path:
    """A run folder shaped like the trial runner's output (docs/compare.md), with made-up numbers."""
    run.mkdir(parents=True, exist_ok=True)
    rows, ap_rows = [], []
    for k, trial_maps in enumerate(maps):
        for v, m in zip(variants, trial_maps):
            rows.append({"trial": k, "variant": v, "seed": k, "val_map": round(m - 0.01, 4), "test_map": m,
                         "best_epoch": 3 + k % 2, "seconds": 12.5})
            for c, (mid, name) in enumerate(CLASSES):
                if c != NEVER_POSITIVE:  # short classes gain most from attention, as in the paper's Fig. 4
                    gain = 0.1 * (1 - DURATIONS[c] / 10) if v.startswith("att") else 0.0
                    ap_rows.append({"trial": k, "variant": v, "class_index": c, "mid": mid, "name": name,
                                    "ap": 0.5 + 0.02 * c + gain + 0.001 * k})
    pd.DataFrame(rows).to_csv(run / "trials.csv", index=False)
    if epochs:  # five epochs per run, validation mAP rising to the run's final value
        pd.DataFrame([{"trial": r["trial"], "variant": r["variant"], "epoch": e, "loss": 0.5 / e,
                       "val_map": r["val_map"] - 0.02 * (5 - e)} for r in rows for e in range(1, 6)]
                     ).to_csv(run / "epochs.csv", index=False)
    if per_class:
        pd.DataFrame(ap_rows).to_csv(run / "per_class.csv", index=False)
    cfg = {"dataset": "synth", "variants": variants, "baseline": variants[0], "trials": len(maps),
           "train": {"epochs": 5, "lr": 1e-3, "width": 0.25}, "labels_used": LABELS,
           "classes": [{"mid": mid, "name": name} for mid, name in CLASSES], **config}
    (run / "config.json").write_text(json.dumps(cfg))
    if durations:
        pd.DataFrame([{"class_index": c, "mid": mid, "name": name, "mean_duration": DURATIONS[c], "n_events": 30}
                      for c, (mid, name) in enumerate(CLASSES)]).to_csv(run / "class_durations.csv", index=False)
    if attention:
        (run / "attention").mkdir(exist_ok=True)
        rng = np.random.default_rng(0)
        frames, segments = 998, 62
        strong = np.zeros((frames, len(CLASSES)), np.uint8)
        strong[100:180, 1] = 1
        strong[400:900, 3] = 1
        att = rng.random((len(CLASSES), segments)).astype(np.float32)
        np.savez(run / "attention" / "clipA_att-self.npz", logmel=rng.normal(-4, 1, (frames, 64)).astype(np.float32),
                 attention=att / att.sum(axis=1, keepdims=True), segment_probs=rng.random((len(CLASSES), segments)),
                 strong=strong, clip_id="abcdefghijk_30000_40000", variant="att-self",
                 class_names=np.array([n for _, n in CLASSES]))
    return run


def test_report_writes_table_tests_figures_and_results(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")
    path = render_report(run)
    assert path == run / "report.md"
    text = path.read_text()
    base = MAPS[:, 0]
    # the paper-shaped row of the baseline: mean ± std (ddof=1), median, trials, val mAP
    assert (f"| noatt-weak | weak | {base.mean():.3f} ± {base.std(ddof=1):.3f} | {np.median(base):.3f} | 8 | "
            f"{base.mean() - 0.01:.3f} | baseline |") in text
    # att-self beat the baseline in all 8 trials: exact p = 2/2^8, Holm over 3 pairs -> 3 * 2/256
    self_maps = MAPS[:, 2]
    assert (f"| att-self | weak (self) | {self_maps.mean():.3f} ± {self_maps.std(ddof=1):.3f} | "
            f"{np.median(self_maps):.3f} | 8 | {self_maps.mean() - 0.01:.3f} | 0.0234 * |") in text
    row = re.search(r"\| noatt-weak \| att-self \| 8 \| ([+-][0-9.]+) \[([+-][0-9.]+), ([+-][0-9.]+)\] \|", text)
    assert row and float(row[1]) == pytest.approx((self_maps - base).mean(), abs=5.01e-5)
    assert float(row[2]) < float(row[1]) < float(row[3])
    assert "| 0.0 | 0.0078 | exact | 0.0234 * | +1.00 |" in text
    assert "classes never positive in the test split (no AP, not averaged in): Train" in text
    for png in ("map_per_variant.png", "validation_curves.png", "ap_gain_per_class.png",
                "attention_abcdefghijk_30000_40000.png"):
        assert f"]({png})" in text
        image = mpimg.imread(run / png)
        assert image.ndim == 3 and image.shape[0] >= 300 and image.shape[1] >= 500
        assert image[..., :3].std() > 0.05  # not a blank canvas

    results = json.loads((run / "results.json").read_text())
    assert results["baseline"] == "noatt-weak" and results["trials"] == 8
    summary = {v["variant"]: v for v in results["variants"]}
    assert summary["att-self"]["test_map"] == pytest.approx(
        {"mean": self_maps.mean(), "std": self_maps.std(ddof=1), "median": np.median(self_maps), "n": 8})
    assert summary["att-self"]["val_map_mean"] == pytest.approx(self_maps.mean() - 0.01)
    assert [(t["a"], t["b"]) for t in results["tests"]] == [("noatt-weak", "att-unsup"), ("noatt-weak", "att-self"),
                                                            ("att-unsup", "att-self")]
    t = results["tests"][1]
    assert t["p"] == pytest.approx(2 / 256) and t["p_holm"] == pytest.approx(6 / 256) and t["mark"] == "*"
    assert t["rank_biserial"] == 1.0 and t["ci_low"] <= t["mean_diff"] <= t["ci_high"]
    assert results["never_positive"] == [{"class_index": 4, "mid": "/m/07jdr", "name": "Train"}]
    car = next(c for c in results["per_class"] if c["name"] == "Car")
    assert car["mean_ap"]["noatt-weak"] == pytest.approx(0.5 + 0.06 + 0.0035)
    assert car["mean_ap"]["att-self"] == pytest.approx(0.5 + 0.06 + 0.1 * (1 - 0.85) + 0.0035)
    assert set(results["versions"]) >= {"numpy", "scipy", "scikit-learn", "torch", "audiobench"}
    assert results["versions"]["numpy"] == np.__version__
    assert results["machine"]["cpu_count"] >= 1
    assert results["config"]["train"] == {"epochs": 5, "lr": 1e-3, "width": 0.25}
    assert [f["file"] for f in results["figures"]] == ["map_per_variant.png", "validation_curves.png",
                                                       "ap_gain_per_class.png", "attention_abcdefghijk_30000_40000.png"]


def test_one_trial_still_writes_the_table_and_says_why_there_is_no_test(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", MAPS[:1], durations=False, attention=False)
    text = render_report(run).read_text()
    assert f"| noatt-weak | weak | {MAPS[0, 0]:.3f} ± – | {MAPS[0, 0]:.3f} | 1 |" in text
    assert "| att-self | weak (self) | 0.640 ± – | 0.640 | 1 | 0.630 | n/a |" in text
    assert "1 paired trial: the test needs at least 2 trials" in text
    assert "no attention/ folder" in text
    # Fig. 4 needs no durations (balanced AudioSet has none): classes ordered by gain, no interval from 1 trial
    assert (run / "ap_gain_per_class.png").exists()
    results = json.loads((run / "results.json").read_text())
    assert all(t["p"] is None and t["p_holm"] is None for t in results["tests"])
    assert results["variants"][0]["test_map"]["std"] is None  # NaN is written as null


def test_identical_variants_give_p_one_and_say_so(tmp_path: Path) -> None:
    same = np.repeat(MAPS[:, :1], 2, axis=1)
    run = write_run(tmp_path / "run", same, ["noatt-weak", "att-unsup"], per_class=False, attention=False)
    text = render_report(run).read_text()
    assert "| noatt-weak | att-unsup | 8 | +0.0000 | 18.0 | 1.0000 | all-equal | 1.0000 | +0.00 |" in text
    assert "all 8 trials gave identical mAPs" in text
    assert "no per_class.csv" in text


def test_rerender_removes_figures_whose_inputs_are_gone(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")
    render_report(run)
    (run / "class_durations.csv").unlink()
    (run / "epochs.csv").unlink()
    for npz in (run / "attention").iterdir():
        npz.unlink()
    render_report(run)
    assert sorted(p.name for p in run.glob("*.png")) == ["ap_gain_per_class.png", "map_per_variant.png"]


def test_fig4_pair_comes_from_config(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", attention=False, fig4={"variant": "att-unsup", "over": "noatt-weak"})
    results_text = render_report(run).read_text()
    assert "![class-wise AP gain of att-unsup over noatt-weak" in results_text


def test_baseline_pairs_only(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", attention=False, pairs="baseline")
    render_report(run)
    results = json.loads((run / "results.json").read_text())
    assert [(t["a"], t["b"]) for t in results["tests"]] == [("noatt-weak", "att-unsup"), ("noatt-weak", "att-self")]
    assert results["tests"][1]["p_holm"] == pytest.approx(2 * 2 / 256)


def test_missing_and_broken_inputs_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(AudiobenchError, match="no run folder"):
        render_report(tmp_path / "nope")
    run = write_run(tmp_path / "run", attention=False)
    (run / "config.json").write_text("{\n  'dataset': 1}")
    with pytest.raises(InputFormatError, match=r"config.json line 2: not valid JSON"):
        render_report(run)
    run = write_run(tmp_path / "run2", attention=False)
    pd.read_csv(run / "trials.csv").drop(columns="test_map").to_csv(run / "trials.csv", index=False)
    with pytest.raises(InputFormatError, match=re.escape("trials.csv: missing column(s) test_map")):
        render_report(run)
    run = write_run(tmp_path / "run3", attention=False)
    trials = pd.read_csv(run / "trials.csv")
    pd.concat([trials, trials.iloc[:1]]).to_csv(run / "trials.csv", index=False)
    with pytest.raises(InputFormatError, match="trial 0 of noatt-weak appears 2 times"):
        render_report(run)


def test_a_broken_attention_file_is_skipped_with_a_note(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")
    np.savez(run / "attention" / "bad.npz", logmel=np.zeros((10, 64)))
    text = render_report(run).read_text()
    assert "attention bad (Fig. 5): skipped: bad.npz lacks attention, strong, class_names" in text
    assert (run / "attention_abcdefghijk_30000_40000.png").exists()


def test_cli_report_rerenders_and_prints_the_table(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", attention=False)
    result = CliRunner().invoke(cli, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert "| att-self | weak (self) |" in result.output and str(run / "report.md") in result.output
    result = CliRunner().invoke(cli, ["report", str(run), "--json"])
    assert json.loads(result.output)["baseline"] == "noatt-weak"
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "error: no run folder" in result.output


def test_cli_report_finds_a_study_by_name_under_root_and_quiet_prints_only_the_path(tmp_path: Path) -> None:
    root = tmp_path / "data"
    run = write_run(root / "runs" / "my-study", attention=False)
    result = CliRunner().invoke(cli, ["report", "my-study", "--root", str(root), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"wrote {run / 'report.md'} (figures and results.json beside it)"
    assert (run / "results.json").exists()
    result = CliRunner().invoke(cli, ["report", "other-study", "--root", str(root)])
    assert result.exit_code == 2 and f"error: no run folder {root / 'runs' / 'other-study'}" in result.output


def test_never_positive_classes_without_a_class_list(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", attention=False, classes=None)
    render_report(run)
    results = json.loads((run / "results.json").read_text())
    assert results["never_positive"] is None
    assert "config.json lists no classes" in " ".join(results["notes"])
    per_class = pd.read_csv(run / "per_class.csv")  # the runner may instead write the class with an empty AP
    empty = {"trial": 0, "variant": "noatt-weak", "class_index": 4, "mid": "/m/07jdr", "name": "Train", "ap": None}
    pd.concat([per_class, pd.DataFrame([empty])]).to_csv(run / "per_class.csv", index=False)
    render_report(run)
    results = json.loads((run / "results.json").read_text())
    assert results["never_positive"] == [{"class_index": 4, "mid": "/m/07jdr", "name": "Train"}]
    assert len(results["per_class"]) == 4

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
    assert "- att-self beat noatt-weak in 8 of 8 trials (" in result.output and "): robust." in result.output
    result = CliRunner().invoke(cli, ["report", str(run), "--json"])
    assert json.loads(result.output)["baseline"] == "noatt-weak"
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "error: no run or study folder" in result.output


def test_cli_report_finds_a_study_by_name_under_root_and_quiet_prints_only_the_path(tmp_path: Path) -> None:
    root = tmp_path / "data"
    run = write_run(root / "runs" / "my-study", attention=False)
    result = CliRunner().invoke(cli, ["report", "my-study", "--root", str(root), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"wrote {run / 'report.md'} (figures and results.json beside it)"
    assert (run / "results.json").exists()
    result = CliRunner().invoke(cli, ["report", "other-study", "--root", str(root)])
    assert result.exit_code == 2 and f"error: no run or study 'other-study' under {root / 'runs'}; did you mean 'my-study'?" in result.output


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


def write_metrics(run: Path, variants: list[str] = VARIANTS, trials: int = 2, **extra: object) -> None:
    """``trials/t<k>-<variant>/metrics.json`` with the facts the report's header reads."""
    for k in range(trials):
        for v in variants:
            folder = run / "trials" / f"t{k:02d}-{v}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "metrics.json").write_text(json.dumps({
                "version": "0.1.0", "config": {"variant": v, "seed": k}, "clips": {"train": 40, "val": 10, "test": 20},
                "chance_test_map": 0.2125, "epochs_run": 5, **extra}))


def test_report_header_summary_and_few_trials_warning(tmp_path: Path) -> None:
    from audiobench import __version__

    run = write_run(tmp_path / "run", attention=False)
    write_metrics(run, fingerprints={"train": "a1b2c3d4e5f6", "test": "0f1e2d3c4b5a"})
    text = render_report(run).read_text()
    header = text.split("## Study", 1)[1].split("## Summary", 1)[0]
    assert "- dataset: `synth`, 5 classes" in header
    assert "- clips per split: train 40, val 10, test 20" in header
    assert "- chance level (test mAP of a constant predictor, the mean class prior): 0.212" in header  # 0.2125
    assert "- fingerprint of test: `0f1e2d3c4b5a`" in header and "- fingerprint of train: `a1b2c3d4e5f6`" in header
    assert "- training: epochs 5, lr 0.001, width 0.25" in header
    assert f"- audiobench {__version__}" in header
    diff = (MAPS[:, 2] - MAPS[:, 0]).mean()
    found = re.search(r"- att-self beat noatt-weak in 8 of 8 trials \(\+([0-9.]+) mAP, 95% CI \+([0-9.]+) to "
                      r"\+([0-9.]+), Holm p = 0\.023\): robust\.", text)
    assert found and float(found[1]) == pytest.approx(diff, abs=5e-4) and float(found[2]) < diff < float(found[3])
    # att-unsup against the baseline: 4 wins, 4 losses, not significant, said so in words
    assert re.search(r"- att-unsup and noatt-weak did not differ significantly: att-unsup scored higher in 4 of 8 "
                     r"trials \(\+0\.00[0-9] mAP, 95% CI -[0-9.]+ to \+[0-9.]+, Holm p = [0-9.]+\): no detectable difference "
                     r"\(MDE 0\.0[0-9]+\), [0-9]+ trials would detect a difference this size\.", text)
    warnings = text.split("## Warnings", 1)[1].split("##", 1)[0]
    assert "only 8 trials" in warnings and "2/2^8 = 0.00781" in warnings
    assert "under-trained" not in warnings  # best epochs 3 and 4 of 5
    assert "- none" not in text  # the old "Notes: none" is gone


def test_under_training_disagreement_and_missing_trials_are_warned(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", MAPS[:5], attention=False)
    trials = pd.read_csv(run / "trials.csv")
    trials["best_epoch"] = np.where(trials["trial"] < 4, 5, 2)  # 12 of 15 runs peaked at their last epoch
    trials = trials[~((trials["trial"] == 2) & (trials["variant"] == "att-unsup"))]
    trials.to_csv(run / "trials.csv", index=False)
    text = render_report(run).read_text()
    warnings = text.split("## Warnings", 1)[1].split("## Test mAP", 1)[0]
    assert "the best validation epoch was the last epoch in 11 of 14 runs" in warnings
    assert "train with more epochs (more than 5, e.g. --epochs 10)" in warnings
    # att-self won all 5 trials: the interval excludes zero, but 5 trials cannot give p below 2/32
    assert re.search(r"[1-9] pairs? ha(s|ve) a 95% bootstrap interval that excludes zero, but with 5 trials no p can "
                     r"fall below 0\.05", warnings)
    assert "att-unsup finished 4 of 5 trials" in warnings
    assert "only 5 trials" in warnings and "2/2^5 = 0.0625" in warnings


def test_an_interval_that_excludes_zero_beside_p_above_005_is_warned(tmp_path: Path) -> None:
    maps = MAPS[:6, [0, 2]].copy()
    maps[5, 1] = maps[5, 0] - 0.001  # att-self wins 5 of 6 trials, loses the sixth by a hair: exact p = 4/64
    text = render_report(write_run(tmp_path / "run", maps, ["noatt-weak", "att-self"], attention=False)).read_text()
    assert re.search(r"- noatt-weak vs att-self: the 95% bootstrap interval \(\+[0-9.]+ to \+[0-9.]+\) excludes zero "
                     r"but p = 0\.062 \(Holm 0\.062\): the two disagree", text)
    assert "att-self and noatt-weak did not differ significantly: att-self scored higher in 5 of 6 trials" in text


def test_no_warning_applies_and_the_report_says_what_was_checked(tmp_path: Path) -> None:
    maps = np.vstack([MAPS, MAPS[:4] + 0.002])
    text = render_report(write_run(tmp_path / "run", maps[:, [0, 2]], ["noatt-weak", "att-self"],
                                   attention=False)).read_text()
    assert ("## Warnings\n\n- none: the best epoch came before the last in most runs, there were at least 10 "
            "trials") in text


def test_latex_and_csv_exports_have_one_row_per_variant_and_escaped_names(tmp_path: Path) -> None:
    variants = ["noatt_weak", "att#2", "50%&more"]
    run = write_run(tmp_path / "run", variants=variants, attention=False, per_class=False,
                    labels_used={"noatt_weak": "weak_only", "att#2": "weak", "50%&more": "weak"})
    text = render_report(run).read_text()
    assert "[table.tex](table.tex)" in text and "[table.csv](table.csv)" in text
    tex = (run / "table.tex").read_text()
    assert tex.count("\\begin{tabular}") == 1 and tex.count("\\end{tabular}") == 1
    assert [tex.count(rule) for rule in ("\\toprule", "\\midrule", "\\bottomrule")] == [1, 1, 1]
    assert tex.index("\\toprule") < tex.index("\\midrule") < tex.index("\\bottomrule")
    body = tex.split("\\midrule\n", 1)[1].split("\\bottomrule", 1)[0].strip().splitlines()
    assert [line.split(" & ")[0] for line in body] == [r"noatt\_weak", r"att\#2", r"50\%\&more"]
    assert all(line.endswith(r" \\") and line.count(" & ") == 6 for line in body)
    assert "weak\\_only" in body[0] and "$\\pm$" in body[0]
    table = pd.read_csv(run / "table.csv")
    assert list(table["variant"]) == variants
    assert table["test_map_mean"].to_numpy() == pytest.approx(MAPS.mean(axis=0), abs=1e-6)
    pairwise = pd.read_csv(run / "pairwise.csv")
    assert len(pairwise) == 3 and (run / "pairwise.tex").read_text().count("\\begin{tabular}") == 1


def test_a_table_i_study_prints_the_papers_values_beside_its_own(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", attention=False, dataset="sl-dcase17",
                    train={"epochs": 5, "lr": 1e-4, "init": "vggish:weights/vggish.pth"})
    text = render_report(run).read_text()
    assert "| p vs noatt-weak (Holm) | paper mAP (%) |" in text
    assert re.search(r"\| noatt-weak \| weak \| .* \| baseline \| 50\.0 ± 0\.33 \|", text)
    assert re.search(r"\| att-self \| weak \(self\) \| .* \| 54\.4 ± 0\.12 \|", text)
    assert "Table I, one-step transfer of Kim & Ghaffarzadegan" in text
    result = CliRunner().invoke(cli, ["report", str(run), "--paper", "none"])
    assert result.exit_code == 0, result.output
    assert "paper mAP" not in (run / "report.md").read_text()


def test_columns_put_two_studies_in_one_table_and_test_the_gain_per_variant(tmp_path: Path) -> None:
    one = write_run(tmp_path / "one", attention=False, dataset="sl-dcase17", train={"init": "vggish:w.pth"})
    later = MAPS.copy()
    later[:, 2] += 0.012 + 0.0012 * np.arange(8)  # att-self gains in every trial, the others not at all
    two = write_run(tmp_path / "two", later, attention=False, dataset="sl-dcase17", train={"init": "run:model-a"})
    trials = pd.read_csv(two / "trials.csv")  # the trials in another order, and seed 7 of att-unsup missing
    trials = trials[~((trials["seed"] == 7) & (trials["variant"] == "att-unsup"))].iloc[::-1]
    trials.to_csv(two / "trials.csv", index=False)
    out = tmp_path / "table"
    result = CliRunner().invoke(cli, ["report", str(one), str(two), "--columns", "one-step,two-step", "--out",
                                      str(out)])
    assert result.exit_code == 0, result.output
    text = (out / "columns-one-step-two-step.md").read_text()
    assert ("| variant | one-step mAP | paper one-step (%) | two-step mAP | paper two-step (%) | "
            "two-step − one-step [95% CI] | n | Holm p |") in text
    gain = (later[:, 2] - MAPS[:, 2]).mean()
    # 8 of 8 seeds better: exact p = 2/256; Holm over 3 variants (the others all-equal, p = 1): 3 * 2/256
    assert re.search(rf"\| att-self \| {MAPS[:, 2].mean():.3f} ± [0-9.]+ \| 54\.4 ± 0\.12 \| "
                     rf"{later[:, 2].mean():.3f} ± [0-9.]+ \| 55\.9 ± 0\.30 \| "
                     rf"\+{gain:.3f} \[\+[0-9.]+, \+[0-9.]+\] \| "
                     r"8 \| 0\.0234 \* \|", text)
    assert re.search(r"\| att-unsup \| .* \| \+0\.000 \| 7 \| 1\.0000 \|", text)
    assert "att-self (two-step) beat att-self (one-step) in 8 of 8 trials" in text
    assert "att-unsup: 1 trial(s) ran in only one of one-step and two-step" in text
    results = json.loads((out / "columns-one-step-two-step.json").read_text())
    test = next(t for t in results["gains"][0]["tests"] if t["variant"] == "att-self")
    assert test["p"] == pytest.approx(2 / 256) and test["n"] == 8
    tex = (out / "columns-one-step-two-step.tex").read_text()
    assert tex.count("\\begin{tabular}") == 1 and len(tex.split("\\midrule\n")[1].split("\\bottomrule")[0]
                                                       .strip().splitlines()) == 3
    assert (out / "columns-one-step-two-step.csv").exists()
    result = CliRunner().invoke(cli, ["report", str(one), str(two)])
    assert result.exit_code == 2 and "name their columns with --columns" in result.output
    result = CliRunner().invoke(cli, ["report", str(one), str(two), "--columns", "a"])
    assert result.exit_code == 2 and "1 column(s) for 2 studies" in result.output


def _class_aps(n_classes: int, trials: int = 3) -> pd.DataFrame:
    """per_class.csv rows of att-unsup and att-self: att-self's gain rises with the class index, plus noise."""
    rng = np.random.default_rng(1)
    rows = []
    for k in range(trials):
        for c in range(n_classes):
            base = 0.3 + 0.4 * rng.random()
            for v, ap in (("att-unsup", base), ("att-self", base + (c - n_classes / 2) / (4 * n_classes)
                                                 + 0.01 * rng.normal())):
                rows.append({"trial": k, "variant": v, "class_index": c, "mid": f"/m/{c}", "name": f"class {c}",
                             "ap": ap})
    return pd.DataFrame(rows)


def _overlapping(labels: list) -> int:
    boxes = [t.get_window_extent() for t in labels]
    return sum(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_fig4_at_527_classes_shows_the_top_and_bottom_15_with_intervals(tmp_path: Path) -> None:
    from audiobench.study.figures import plot_class_gain
    from audiobench.study.stats import class_gains

    gain = class_gains(_class_aps(527), "att-self", "att-unsup")
    drawn = plot_class_gain(gain, variant="att-self", over="att-unsup", path=tmp_path / "fig4.png")
    assert (tmp_path / "fig4.png").stat().st_size > 10_000
    ranked = gain.sort_values("gain", ascending=False)
    assert sorted(drawn.data["labels"]) == sorted(list(ranked["name"][:15]) + list(ranked["name"][-15:]))
    assert "15 largest and 15 smallest of 527 classes" in drawn.data["title"]
    low, high, values = drawn.data["low"], drawn.data["high"], drawn.data["gain"]
    assert np.all(low <= values) and np.all(values <= high) and np.all(high - low > 0)  # 3 trials: an interval each
    drawn.figure.draw_without_rendering()
    assert _overlapping(drawn.figure.axes[0].get_yticklabels()) == 0


def test_fig4_at_17_classes_names_every_class_by_duration_without_overlap(tmp_path: Path) -> None:
    from audiobench.study.figures import plot_class_gain
    from audiobench.study.stats import class_gains

    gain = class_gains(_class_aps(17), "att-self", "att-unsup")
    gain["mean_duration"] = 0.2 + 0.5 * gain["class_index"]
    drawn = plot_class_gain(gain, variant="att-self", over="att-unsup", path=tmp_path / "fig4.png")
    labels = drawn.data["labels"]
    assert len(labels) == 17 and labels[-1] == "class 0 (0.2 s)"  # the shortest on top
    drawn.figure.draw_without_rendering()
    assert _overlapping(drawn.figure.axes[0].get_yticklabels()) == 0


def test_fig4_interval_with_one_trial_comes_from_the_clip_bootstrap_of_each_ap() -> None:
    from audiobench.study.stats import class_gains

    aps = _class_aps(4, trials=1)
    aps["ap_low"], aps["ap_high"] = aps["ap"] - 0.05, aps["ap"] + 0.02
    gain = class_gains(aps, "att-self", "att-unsup")
    assert list(gain["interval"]) == ["clips"] * 4
    assert (gain["high"] - gain["low"]).to_numpy() == pytest.approx([0.14] * 4)  # (0.02 + 0.05) on each side
    assert class_gains(_class_aps(4, trials=1), "att-self", "att-unsup")["low"].isna().all()


def test_fig5_draws_the_variants_of_a_clip_on_one_colour_scale_and_one_time_axis(tmp_path: Path) -> None:
    from audiobench.study.figures import Attention, plot_clip_variants

    rng = np.random.default_rng(0)
    strong = np.zeros((200, 5), np.uint8)
    strong[20:60, 1] = strong[100:180, 3] = 1
    names = tuple(n for _, n in CLASSES[:4]) + ("Emergency vehicle (siren), a long class name",)
    views = [Attention("clip-1", v, rng.normal(size=(200, 64)).astype(np.float32),
                       (rng.random((5, 12)) * scale).astype(np.float32), None, strong, names, trial=2,
                       features="vggish-logmel")
             for v, scale in (("att-unsup", 0.2), ("att-self", 0.9))]
    drawn = plot_clip_variants(views, tmp_path / "fig5.png", trial=2)
    assert (tmp_path / "fig5.png").exists()
    vmax = max(float(v.attention.max()) for v in views)
    assert drawn.data["clims"] == [(0.0, pytest.approx(vmax))] * 2  # one scale, set by the brighter variant
    assert drawn.data["variants"] == ["att-unsup", "att-self"]
    assert drawn.data["greyed"] == ["Train horn", "Ambulance (siren)", names[4]]
    assert "clip-1, trial 2: labels Car alarm, Car; VGGish log-mel, 64 bands" in drawn.data["title"]
    # features, strong labels and both attention panels: one time axis, in seconds (200 frames of 10 ms)
    assert drawn.data["xlims"] == [(0.0, pytest.approx(2.0))] * 4
    assert drawn.data["events"] == [("Car alarm", pytest.approx(0.2), pytest.approx(0.6)),
                                     ("Car", pytest.approx(1.0), pytest.approx(1.8))]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = drawn.figure
    renderer = FigureCanvasAgg(fig).get_renderer()
    labels = [t for ax in fig.axes[1:4] for t in ax.get_yticklabels()]
    assert {t.get_text() for t in labels} == set(names)
    assert min(t.get_window_extent(renderer).x0 for t in labels) >= 0  # no class name cut off at the left


def test_fig5_names_the_feature_set_a_run_was_trained_on(tmp_path: Path) -> None:
    from audiobench.study.figures import Attention, plot_clip_variants

    strong = np.zeros((100, 2), np.uint8)
    view = Attention("clip-2", "att-self", np.zeros((100, 128), np.float32), np.full((2, 6), 1 / 6, np.float32),
                     None, strong, ("a", "b"), features="kaldi-fbank-128")
    title = plot_clip_variants([view], tmp_path / "kaldi.png").data["title"]
    assert "Kaldi fbank, 128 bands" in title and "log-mel" not in title and "no strong labels" in title
    unnamed = plot_clip_variants([Attention(**{**view.__dict__, "features": ""})], tmp_path / "old.png")
    assert "log-mel" not in unnamed.data["title"] and "extractor not recorded" in unnamed.data["title"]


def test_map_figure_shows_chance_and_brackets_the_significant_pairs(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", attention=False)
    write_metrics(run)
    render_report(run)
    results = json.loads((run / "results.json").read_text())
    significant = [(t["a"], t["b"], t["mark"]) for t in results["tests"] if t["mark"]]
    assert significant == [("noatt-weak", "att-self", "*"), ("att-unsup", "att-self", "*")]
    from audiobench.study.figures import plot_map_per_variant

    drawn = plot_map_per_variant(pd.read_csv(run / "trials.csv"), VARIANTS, tmp_path / "map.png", chance=0.2125,
                                 brackets=significant)
    assert drawn.data["chance"] == pytest.approx(0.2125)
    assert sorted(drawn.data["brackets"]) == sorted(significant)
    texts = [t.get_text() for t in drawn.figure.axes[0].texts]
    assert texts.count("*") == 2

"""Event outputs and event-level metrics: the files match what sed_eval and sed_scores_eval compute by hand."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.ndimage import median_filter

import audiobench
from audiobench.data.synth import synthesize
from audiobench.features.base import get_extractor
from audiobench.features.featurize import featurize
from audiobench.models.losses import segment_labels
from audiobench.training.events import exports, metrics  # first: it silences dcase_util's pkg_resources warning
from audiobench.training.events.postprocess import choose, median_filtered
from audiobench.training.events.segments import SegmentScores, segment_bounds
from toydata import FRAMES, write_features

import sed_eval  # noqa: E402  (the libraries checked against, run by hand)
from sed_scores_eval import intersection_based  # noqa: E402
from sed_scores_eval.base_modules.io import read_sed_scores  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TOY = dict(width=0.0625, frames=FRAMES, batch_size=16, lr=3e-3, epochs=2, quiet=True)
SIZES = (32, 16, 16)
SYNTH = ["Car", "Ambulance (siren)", "Train horn"]


@pytest.fixture(scope="module")
def synth_run(tmp_path_factory) -> Path:
    """One att-strong run on synthetic clips, whose strong labels are exact."""
    root = tmp_path_factory.mktemp("root")
    synthesize("tiny", root=root, train=8, val=4, test=6, duration=1.5, classes=SYNTH, quiet=True)
    featurize("tiny", root=root, quiet=True)
    return audiobench.train("tiny", root=root, variant="att-strong", out=root / "runs" / "a", epochs=2,
                            width=0.0625, lr=3e-3, batch_size=4, quiet=True).run_dir


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_segment_times_follow_the_strong_targets_rule():
    vggish = get_extractor()  # 25 ms frames every 10 ms
    bounds = segment_bounds(vggish, 100)  # 6 whole segments, 4 frames past them dropped
    assert np.allclose(bounds, [0, 0.16, 0.32, 0.48, 0.64, 0.80, (95 * 160 + 400) / 16000])
    # an event inside segment 2's frames only labels segment 2, as the table row [0.32, 0.48) says
    strong = torch.zeros(1, 100, 1)
    first, stop = vggish.event_frames(0.345, 0.455, 100)
    strong[0, int(first):int(stop)] = 1
    assert segment_labels(strong)[0, 0].tolist() == [0, 0, 1, 0, 0, 0]
    assert np.allclose(segment_bounds(vggish, 10), [0, (9 * 160 + 400) / 16000])  # padded to one segment


def _scores(clips: dict[str, np.ndarray], frames: int = 100) -> SegmentScores:
    bounds = segment_bounds(get_extractor(), frames)
    return SegmentScores(tuple(clips), tuple(bounds for _ in clips), tuple(clips.values()), None,
                         tuple(float(bounds[-1]) for _ in clips))


def test_score_tables_are_what_sed_scores_eval_reads(tmp_path):
    matrix = np.random.default_rng(0).random((2, 6)).astype(np.float32)
    exports.write_scores(tmp_path, exports.score_tables(_scores({"clip.a_0_1": matrix}), "segments", ["a", "b"]))
    table = read_sed_scores(tmp_path)["clip.a_0_1"]  # the library's own reader
    assert list(table.columns) == ["onset", "offset", "a", "b"]
    assert np.allclose(table[["a", "b"]].to_numpy().T, matrix, atol=1e-7)
    assert np.allclose(table["onset"], segment_bounds(get_extractor(), 100)[:-1])


def test_segment_and_event_adapters_match_sed_eval_on_known_events():
    reference = {"x": [(1.0, 3.0, "a")], "y": []}
    detected = {"x": [(1.2, 3.3, "a")], "y": [(0.0, 0.5, "b")]}
    segment = metrics.segment_based(reference, detected, ["a", "b"])
    # 1 s segments: x's a is in segments 1-2, detected in 1-3; y's b is a false alarm in segment 0
    assert segment["precision"] == 0.5 and segment["recall"] == 1.0
    assert segment["f1"] == pytest.approx(2 / 3) and segment["er"] == pytest.approx(1.0)  # 2 insertions / 2
    event = metrics.event_based(reference, detected, ["a", "b"])
    assert event["f1"] == pytest.approx(2 / 3)  # offset 0.3 s late is within max(0.2, 20 % of 2 s)
    late = metrics.event_based(reference, {"x": [(1.2, 3.5, "a")]}, ["a", "b"])
    assert late["f1"] == 0.0
    by_hand = sed_eval.sound_event.SegmentBasedMetrics(["a", "b"], time_resolution=1.0)
    for clip in ("x", "y"):
        by_hand.evaluate([{"filename": clip, "onset": a, "offset": b, "event_label": c} for a, b, c in reference[clip]],
                         [{"filename": clip, "onset": a, "offset": b, "event_label": c} for a, b, c in detected[clip]])
    assert by_hand.results_overall_metrics()["f_measure"]["f_measure"] == segment["f1"]


def test_psds_of_a_perfect_detector_is_one_and_the_library_needs_writable_tables(tmp_path):
    clips = {f"c{i}": np.zeros((1, 6), dtype=np.float32) for i in range(6)}
    for i, matrix in enumerate(clips.values()):
        matrix[0, 1 + i % 4] = 1.0  # the event lies exactly on one segment
    scores = _scores(clips)
    exports.write_scores(tmp_path / "scores", exports.score_tables(scores, "segments", ["a"]))
    bounds = scores.bounds[0]
    events = {f"c{i}": [(float(bounds[1 + i % 4]), float(bounds[2 + i % 4]), "a")] for i in range(6)}
    durations = dict(zip(scores.clip_ids, scores.durations))
    tables = exports.read_scores(tmp_path / "scores")
    result = metrics.psds(tables, events, durations, ["a"], "psds1")
    assert result is not None and result.value == pytest.approx(1.0) and result.low == pytest.approx(1.0)
    by_hand = intersection_based.psds(exports.writable(read_sed_scores(tmp_path / "scores")), events, durations,
                                      dtc_threshold=0.7, gtc_threshold=0.7, alpha_st=1, max_efpr=100)[0]
    assert by_hand == result.value
    with pytest.raises(ValueError, match="read-only"):  # fgnt/sed_scores_eval#17 under pandas 3: why the copies
        intersection_based.psds(read_sed_scores(tmp_path / "scores"), events, durations,
                                dtc_threshold=0.7, gtc_threshold=0.7, alpha_st=1, max_efpr=100)


def test_a_synth_run_s_metrics_are_sed_eval_and_sed_scores_eval_on_its_files(synth_run):
    m, folder = _metrics(synth_run), synth_run / "test-events"
    assert m["events"]["chosen_on"] == "val" and set(m["events"]["sources"]) == {"segments", "attention"}
    assert json.loads((folder / "postprocessing.json").read_text())["segments"]["chosen_on"] == "val"
    reference = exports.read_ground_truth(folder / "ground_truth.tsv")
    durations = exports.read_durations(folder / "durations.tsv")
    assert len(reference) == m["clips"]["test"] == 6 and any(reference.values())
    classes = [c["name"] for c in m["test_per_class"]]
    for source in ("segments", "attention"):
        values = m["events"]["sources"][source]
        detected = exports.read_detections(folder / source / "detections.tsv")
        segment = sed_eval.sound_event.SegmentBasedMetrics(classes, time_resolution=1.0)
        event = sed_eval.sound_event.EventBasedMetrics(classes, t_collar=0.2, percentage_of_length=0.2)
        for clip in reference:
            ref = [{"filename": clip, "onset": a, "offset": b, "event_label": c} for a, b, c in reference[clip]]
            est = [{"filename": clip, "onset": a, "offset": b, "event_label": c} for a, b, c in detected.get(clip, [])]
            segment.evaluate(ref, est)
            event.evaluate(ref, est)
        assert values["segment_f1"] == segment.results_overall_metrics()["f_measure"]["f_measure"]
        assert values["segment_er"] == segment.results_overall_metrics()["error_rate"]["error_rate"]
        assert values["event_f1"] == event.results_overall_metrics()["f_measure"]["f_measure"]
        present = sorted({c for evs in reference.values() for _, _, c in evs})
        tables = {k: t[["onset", "offset", *present]] for k, t in read_sed_scores(folder / source / "scores").items()}
        for scenario, settings in metrics.PSDS_SCENARIOS.items():
            by_hand = intersection_based.psds(exports.writable(tables), reference, durations, **settings)[0]
            assert values[scenario] == pytest.approx(by_hand)
            if source == "segments":  # the interval: of Xa's PSDS only
                assert values[f"{scenario}_low"] <= values[f"{scenario}_high"]
            else:
                assert values[f"{scenario}_low"] is None
    assert m["test_segment_f1"] == m["events"]["sources"]["segments"]["segment_f1"]
    assert m["test_psds1"] == m["events"]["sources"]["segments"]["psds1"]


def test_the_detection_file_gives_dcase2017_subtask_b_the_same_segment_f1(synth_run):
    """As the DCASE 2017 Task 4 subtask B evaluation scored systems: sed_eval on the lists, file by file."""
    folder, m = synth_run / "test-events", _metrics(synth_run)
    reference = sed_eval.io.load_event_list(str(folder / "ground_truth.tsv"))
    estimated = sed_eval.io.load_event_list(str(folder / "segments" / "detections.tsv"))
    classes = [c["name"] for c in m["test_per_class"]]
    segment = sed_eval.sound_event.SegmentBasedMetrics(classes, time_resolution=1.0)
    for file in reference.unique_files:
        segment.evaluate([e for e in reference.filter(filename=file) if e.event_label],
                         estimated.filter(filename=file))
    overall = segment.results_overall_metrics()
    assert overall["f_measure"]["f_measure"] == m["test_segment_f1"]
    assert overall["error_rate"]["error_rate"] == m["test_segment_er"]


def test_post_processing_never_depends_on_the_test_split(tmp_path):
    one, other = tmp_path / "one", tmp_path / "other"
    write_features(one, sizes=SIZES, strong=("val", "test"))
    write_features(other, sizes=SIZES, strong=("val", "test"), lengths={"test": [80] * 16})  # same train and val
    runs = [audiobench.train("toy", root=root, variant="att-strong", out=root / "run", **TOY) for root in (one, other)]
    labels = [(r.run_dir / "test-events" / "ground_truth.tsv").read_text() for r in runs]
    assert labels[0] != labels[1]
    chosen = [json.loads((r.run_dir / "test-events" / "postprocessing.json").read_text()) for r in runs]
    assert chosen[0] == chosen[1]
    assert chosen[0]["segments"]["chosen_on"] == "val"
    assert any(t is not None for t in chosen[0]["segments"]["thresholds"].values())


def test_without_strong_validation_labels_the_training_split_chooses_and_it_is_recorded(tmp_path):
    write_features(tmp_path, sizes=SIZES, strong=("test",))
    run = audiobench.train("toy", root=tmp_path, variant="att-strong", out=tmp_path / "run", **TOY)
    m = _metrics(run.run_dir)
    assert m["events"]["chosen_on"] == "train"
    assert json.loads((run.run_dir / "test-events" / "postprocessing.json").read_text())["attention"]["chosen_on"] \
        == "train"


def test_a_run_without_strong_test_labels_writes_no_event_files(tmp_path):
    write_features(tmp_path, sizes=SIZES)  # only the training split is strongly labelled
    run = audiobench.train("toy", root=tmp_path, variant="att-strong", out=tmp_path / "run", **{**TOY, "epochs": 1})
    assert not (run.run_dir / "test-events").exists()
    assert "events" not in _metrics(run.run_dir) and "test_psds1" not in _metrics(run.run_dir)


def test_median_filter_and_thresholds_per_class_or_global():
    rng = np.random.default_rng(1)
    clips = {f"c{i}": rng.random((3, 6)).astype(np.float32) for i in range(4)}
    scores = _scores(clips)
    tables = exports.score_tables(scores, "segments", ["a", "b", "c"])
    filtered = median_filtered(tables, {"a": 3, "b": 1, "c": 5})
    for clip, matrix in clips.items():
        assert np.allclose(filtered[clip]["a"], median_filter(matrix[0].astype(np.float64), size=3, mode="nearest"))
        assert np.allclose(filtered[clip]["b"], matrix[1]) and not np.allclose(filtered[clip]["c"], matrix[2])
    bounds = scores.bounds[0]
    events = {"c0": [(bounds[0], bounds[3], "a")], "c1": [(bounds[2], bounds[6], "b")], "c2": [], "c3": []}
    durations = dict(zip(scores.clip_ids, scores.durations))
    per_class = choose(tables, events, durations, ["a", "b", "c"], source="segments", chosen_on="val")
    assert per_class.thresholds["c"] is None and per_class.cut()["c"] == np.inf  # no event of c: never detected
    assert all(per_class.thresholds[c] is not None for c in "ab")
    shared = choose(tables, events, durations, ["a", "b", "c"], source="segments", chosen_on="val", mode="global")
    assert shared.median["a"] == shared.median["b"]
    assert shared.f1["a"] <= per_class.f1["a"] and shared.f1["b"] <= per_class.f1["b"]


def test_compare_tests_an_event_metric_lower_is_better_and_the_report_shows_the_event_table(tmp_path):
    from audiobench.study.compare import CompareConfig, compare
    from audiobench.study.stats import compare_variants
    from audiobench.training.options import TrainOptions

    write_features(tmp_path, sizes=SIZES, strong=("val", "test"))
    options = TrainOptions(**{k: v for k, v in TOY.items() if k != "quiet"})
    config = CompareConfig("toy", ("noatt-weak", "att-strong"), trials=2, metric="segment_er", train=options)
    result = compare(config, root=tmp_path, out=tmp_path / "study", quiet=True)
    trials = pd.read_csv(result.run_dir / "trials.csv")
    assert trials["test_segment_er"].notna().all() and set(trials["events_chosen_on"]) == {"val"}
    results = json.loads((result.run_dir / "results.json").read_text())
    (test,) = results["tests"]
    by_hand = compare_variants(trials, baseline="noatt-weak", variants=["noatt-weak", "att-strong"],
                               column="test_segment_er")[0]
    assert test["p"] == by_hand.p and test["mean_diff"] == pytest.approx(by_hand.mean_diff)
    wide = trials.pivot(index="trial", columns="variant", values="test_segment_er")
    assert test["b_wins"] == int((wide["att-strong"] < wide["noatt-weak"]).sum())  # lower ER wins
    report = (result.run_dir / "report.md").read_text()
    assert "## Event-level metrics per variant" in report and "segment ER ↓" in report
    assert "chosen on the val split" in report
    assert (result.run_dir / "psd_roc.png").read_bytes()[:4] == b"\x89PNG"
    assert any(f["file"] == "psd_roc.png" for f in results["figures"])


def test_an_event_metric_without_strong_test_labels_is_refused_before_training(tmp_path):
    from audiobench.core.errors import AudiobenchError
    from audiobench.study.compare import CompareConfig, compare

    write_features(tmp_path, sizes=SIZES)
    with pytest.raises(AudiobenchError, match="--metric psds1 needs strong labels in the test split"):
        compare(CompareConfig("toy", ("noatt-weak", "att-self"), trials=1, metric="psds1"), root=tmp_path,
                out=tmp_path / "study", quiet=True)
    assert not (tmp_path / "study" / "trials").exists()


def test_evaluate_writes_the_event_files_of_the_listed_clips_with_the_run_s_post_processing(synth_run, tmp_path):
    from audiobench.study.evaluate import evaluate

    detected = exports.read_detections(synth_run / "test-events" / "segments" / "detections.tsv")
    labels = exports.read_ground_truth(synth_run / "test-events" / "ground_truth.tsv")
    listed = sorted({*list(detected)[:2], *[c for c in labels if labels[c]][:1]})  # detections and events
    (tmp_path / "three.csv").write_text("clip_id\n" + "\n".join(listed) + "\n")
    record = evaluate(synth_run, tmp_path / "three.csv")
    folder = synth_run / "evaluation-three-events"
    assert sorted(exports.read_durations(folder / "durations.tsv")) == listed and len(listed) < len(labels)
    assert (folder / "postprocessing.json").read_text() == (synth_run / "test-events" / "postprocessing.json").read_text()
    reference = exports.read_ground_truth(folder / "ground_truth.tsv")
    detected = exports.read_detections(folder / "segments" / "detections.tsv")
    classes = [c["name"] for c in _metrics(synth_run)["test_per_class"]]
    by_hand = metrics.segment_based(reference, detected, classes)
    np.testing.assert_equal([record["test_segment_f1"], record["test_segment_er"]], [by_hand["f1"], by_hand["er"]])
    for clip in listed:  # the same net's scores as at training (batched otherwise: float rounding only)
        again = read_sed_scores(folder / "segments" / "scores" / f"{clip}.tsv")
        trained = read_sed_scores(synth_run / "test-events" / "segments" / "scores" / f"{clip}.tsv")
        assert np.allclose(again.to_numpy(), trained.to_numpy(), atol=1e-5)
    assert json.loads((synth_run / "evaluation-three.json").read_text())["events"]["sources"]["segments"][
        "segment_er"] == record["test_segment_er"]

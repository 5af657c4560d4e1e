"""compare: paired trials on small real feature files, resumable, parallel, with the report at the end."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from audiobench.cli import cli
from audiobench.study.compare import CompareConfig, compare
from audiobench.core.errors import AudiobenchError
from audiobench.training.options import TrainOptions
from procs import alive, descendants, wait_until_gone
from toydata import write_features

TINY = dict(width=0.0625, frames=96, batch_size=16, lr=3e-3, epochs=2)


def _config(variants=("noatt-weak", "att-self"), trials=2, dataset="toy", **overrides) -> CompareConfig:
    options = {**TINY, **overrides}
    return CompareConfig(dataset, tuple(variants), trials=trials, train=TrainOptions(**options))


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("root")
    write_features(root, sizes=(32, 16, 16))
    return root


def _table(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "trials.csv").sort_values(["trial", "variant"]).reset_index(drop=True)


def test_study_writes_paired_trials_tables_and_report(toy_root, tmp_path):
    result = compare(_config(trials=3), root=toy_root, out=tmp_path / "study", quiet=True)
    assert result.failures == [] and result.finished == 6
    trials = _table(result.run_dir)
    assert list(trials.columns) == ["trial", "variant", "seed", "val_map", "test_map", "best_epoch", "seconds",
                                    "test_auc", "test_dprime", "test_psds1", "test_psds2", "test_segment_f1",
                                    "test_segment_er", "test_event_f1", "events_chosen_on"]
    assert trials["test_psds1"].isna().all()  # no strong test labels: no event metric
    assert sorted(zip(trials.trial, trials.variant)) == [(t, v) for t in range(3) for v in ("att-self", "noatt-weak")]
    assert (trials.seed == trials.trial).all()  # trial k trains every variant with seed k
    per_class = pd.read_csv(result.run_dir / "per_class.csv")
    assert set(per_class.variant) == {"noatt-weak", "att-self"} and per_class.ap.between(0, 1).all()
    report = (result.run_dir / "report.md").read_text()
    assert "noatt-weak" in report and "att-self" in report and "±" in report
    results = json.loads((result.run_dir / "results.json").read_text())
    assert results["config"]["baseline"] == "noatt-weak"
    # The stability columns resample the runs' own saved test predictions (trials, then clips in each)
    stable = results["tests"][0]["stability"]
    assert stable["interval"] == "trials and test clips" and "## Stability of each verdict" in report
    assert stable["diff_low"] < stable["diff_high"] and stable["n"] == 3
    # The header reads the runs' own metrics.json: their clip counts and the test split's chance level
    run_metrics = json.loads(next((result.run_dir / "trials").glob("*/metrics.json")).read_text())
    clips = ", ".join(f"{split} {n}" for split, n in run_metrics["clips"].items())
    assert f"- clips per split: {clips}" in report
    assert f"chance level (test mAP of a constant predictor, the mean class prior): " \
           f"{run_metrics['chance_test_map']:.3f}" in report
    assert "only 3 trials" in report and "## Summary" in report
    for figure in ("map_per_variant.png", "validation_curves.png", "ap_gain_per_class.png"):
        assert (result.run_dir / figure).stat().st_size > 10_000
    epochs = pd.read_csv(result.run_dir / "epochs.csv")
    assert list(epochs.columns) == ["trial", "variant", "epoch", "loss", "val_map"]
    assert len(epochs) == 6 * TINY["epochs"] and epochs.val_map.between(0, 1).all()
    # One figure of every trial's curves instead of a PNG per run; the numbers stay in metrics.json.
    assert not list((result.run_dir / "trials").glob("*/training-curve.png"))
    assert list((result.run_dir / "attention").glob("*-att-self.npz"))
    assert (result.run_dir / "class_durations.csv").exists()


def test_rerun_trains_nothing_and_more_trials_extend_the_study(toy_root, tmp_path):
    first = compare(_config(trials=1), root=toy_root, out=tmp_path / "s", quiet=True)
    again = compare(_config(trials=1), root=toy_root, out=tmp_path / "s", quiet=True)
    assert again.trained == 0 and again.resumed == 2
    pd.testing.assert_frame_equal(_table(first.run_dir), _table(again.run_dir))
    more = compare(_config(trials=2), root=toy_root, out=tmp_path / "s", quiet=True)
    assert more.trained == 2 and more.resumed == 2 and more.finished == 4


def test_a_folder_holding_another_study_is_refused_not_mixed_in(toy_root, tmp_path):
    compare(_config(trials=1), root=toy_root, out=tmp_path / "s", quiet=True)
    before = _table(tmp_path / "s")
    with pytest.raises(AudiobenchError, match=r"holds another study .*--out"):
        compare(_config(trials=2, epochs=3), root=toy_root, out=tmp_path / "s", quiet=True)
    with pytest.raises(AudiobenchError, match="holds another study"):
        compare(_config(("noatt-weak", "att-unsup"), trials=1), root=toy_root, out=tmp_path / "s", quiet=True)
    pd.testing.assert_frame_equal(before, _table(tmp_path / "s"))  # nothing trained, nothing lost


def test_one_trial_still_writes_the_table_and_says_no_test_is_possible(toy_root, tmp_path):
    result = compare(_config(trials=1), root=toy_root, out=tmp_path / "one", quiet=True)
    report = (result.run_dir / "report.md").read_text()
    assert "noatt-weak" in report and "at least 2 trials" in report


def test_identical_variants_are_ties_and_the_report_says_so(toy_root, tmp_path):
    # att-strong with alpha = 0 trains exactly what att-unsup trains: every paired difference is zero.
    result = compare(_config(("att-unsup", "att-strong"), trials=3, alpha=0.0), root=toy_root,
                     out=tmp_path / "ties", quiet=True)
    trials = _table(result.run_dir)
    assert trials.groupby("trial").test_map.nunique().eq(1).all()
    results = json.loads((result.run_dir / "results.json").read_text())
    assert "all-equal" in json.dumps(results) or "identical" in json.dumps(results).lower()


@pytest.mark.parametrize("variants, match", [
    (("noatt-weak", "att-selfish"), "att-selfish"),
    (("noatt-weak", "noatt-weak"), "twice"),
])
def test_bad_variant_lists_are_refused_before_training(toy_root, tmp_path, variants, match):
    with pytest.raises(AudiobenchError, match=match):
        compare(_config(variants), root=toy_root, out=tmp_path / "bad", quiet=True)
    assert not (tmp_path / "bad" / "trials").exists()


def test_dataset_without_features_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["compare", "nothing", "--root", str(tmp_path), "--variants",
                                      "noatt-weak,att-self", "--trials", "2"])
    assert result.exit_code == 2
    assert "no dataset 'nothing'" in result.output and "Traceback" not in result.output


def test_strong_variant_on_weak_only_training_split_is_refused(tmp_path):
    write_features(tmp_path, "weakonly", sizes=(8, 4, 4), strong_train=False)
    result = CliRunner().invoke(cli, ["compare", "weakonly", "--root", str(tmp_path), "--variants",
                                      "noatt-weak,att-strong", "--trials", "2"])
    assert result.exit_code == 2
    assert "train" in result.output and "strong" in result.output


def test_cli_prints_the_table_and_the_report_path(toy_root, tmp_path):
    result = CliRunner().invoke(cli, ["compare", "toy", "--root", str(toy_root), "--variants",
                                      "noatt-weak,att-self", "--trials", "2", "--width", "0.0625", "--frames",
                                      "96", "--epochs", "1", "--batch-size", "16", "--out", str(tmp_path / "c"),
                                      "--quiet"])
    assert result.exit_code == 0, result.output
    assert "att-self" in result.output and "report.md" in result.output
    assert "- att-self and noatt-weak" in result.output or "- noatt-weak and att-self" in result.output


@pytest.mark.slow
def test_kill_9_mid_study_then_rerun_gives_the_uninterrupted_numbers(toy_root, tmp_path):
    args = [sys.executable, "-m", "audiobench.cli", "compare", "toy", "--root", str(toy_root), "--variants",
            "noatt-weak,att-self", "--trials", "3", "--width", "0.0625", "--frames", "96", "--epochs", "2",
            "--batch-size", "16", "--lr", "3e-3", "--quiet"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*args, "--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(killed.glob("trials/*/metrics.json"))) < 2:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 2 <= len(list(killed.glob("trials/*/metrics.json"))) < 6, "the kill should land mid-study"
    subprocess.run([*args, "--out", str(killed)], check=True, capture_output=True, timeout=300)
    subprocess.run([*args, "--out", str(tmp_path / "whole")], check=True, capture_output=True, timeout=300)
    pd.testing.assert_frame_equal(_table(killed).drop(columns="seconds"),
                                  _table(tmp_path / "whole").drop(columns="seconds"))


@pytest.mark.slow
def test_trials_on_a_local_dask_cluster_match_local_processes(toy_root, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                                  processes=True) as cluster:
        on_dask = compare(_config(trials=2), root=toy_root, out=tmp_path / "dask", jobs=2, backend="dask",
                          scheduler=cluster.scheduler_address, quiet=True)
    local = compare(_config(trials=2), root=toy_root, out=tmp_path / "local", jobs=1, quiet=True)
    assert on_dask.failures == [] and on_dask.finished == 4
    pd.testing.assert_frame_equal(_table(on_dask.run_dir).drop(columns="seconds"),
                                  _table(local.run_dir).drop(columns="seconds"))


def test_default_frames_resolve_to_the_clip_length_and_keep_the_study_id(tmp_path):
    write_features(tmp_path, sizes=(16, 8, 8))
    result = compare(_config(trials=1, frames=None, epochs=1), root=tmp_path, quiet=True)
    assert json.loads((result.run_dir / "config.json").read_text())["train"]["frames"] == 96
    # The same effective options spelt out name the same study (so it would resume, not start again).
    assert result.run_dir == tmp_path / "runs" / _config(trials=1, frames=96, epochs=1).study_id()
    assert all(json.loads(p.read_text())["config"]["frames"] == 96
               for p in result.run_dir.glob("trials/*/metrics.json"))


def test_study_ids_of_explicit_frames_are_those_of_earlier_versions():
    """The demo sets frames; and 998, the old default, is what 10 s clips resolve to: their studies resume."""
    demo = tomllib.loads((Path(__file__).parents[1] / "pipelines" / "synth-demo.toml").read_text())["compare"][0]
    shared = {k: v for k, v in demo.items() if k not in ("name", "trials", "variants", "baseline", "jobs")}
    assert shared["frames"] == 298
    shared["epochs"] = 10  # the demo of those versions (it trains 15 epochs now: another study)
    config = CompareConfig("synth-demo", tuple(demo["variants"]), train=TrainOptions(**shared))
    assert config.study_id() == "compare-synth-demo-70e458a8"
    ten_seconds = CompareConfig("synth", ("noatt-weak", "att-self"), train=TrainOptions(frames=998))
    assert ten_seconds.study_id() == "compare-synth-32efc609"


# -- damaged trial records, one run per study folder, thread counts, workers after a signal ------------------
def test_a_truncated_metrics_or_model_json_is_retrained_and_the_report_still_written(toy_root, tmp_path, caplog):
    out = tmp_path / "s"
    compare(_config(trials=1), root=toy_root, out=out, quiet=True)
    before = _table(out)
    for name, trial in (("metrics.json", "t00-att-self"), ("model.json", "t00-noatt-weak")):
        path = out / "trials" / trial / name
        path.write_text(path.read_text()[:40])  # a copy or a full disk cut it short
    caplog.set_level("WARNING", logger="audiobench.study.compare")
    result = CliRunner().invoke(cli, ["compare", "toy", "--root", str(toy_root), "--variants", "noatt-weak,att-self",
                                      "--trials", "1", "--width", "0.0625", "--frames", "96", "--epochs", "2",
                                      "--batch-size", "16", "--lr", "3e-3", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "report.md" in result.output
    assert "2 trained now, 0 resumed" in result.output
    assert "trial 0 variant att-self: metrics.json unreadable, retraining" in caplog.text
    assert "trial 0 variant noatt-weak: model.json unreadable, retraining" in caplog.text
    # The study folder's lock file, left by the first run, blocks nothing; the retrained runs match.
    pd.testing.assert_frame_equal(before.drop(columns="seconds"), _table(out).drop(columns="seconds"))


def test_trials_train_on_one_thread_whatever_jobs_and_a_mixed_study_is_flagged(toy_root, tmp_path, caplog):
    import torch

    torch.set_num_threads(2)  # what --jobs 1 used to leave a trial on a 2-core machine
    try:
        result = compare(_config(trials=1), root=toy_root, out=tmp_path / "s", jobs=1, quiet=True)
        assert torch.get_num_threads() == 2  # the trial ran in this process; its setting is put back
    finally:
        torch.set_num_threads(os.cpu_count() or 1)
    metrics = sorted(result.run_dir.glob("trials/*/metrics.json"))
    assert [json.loads(p.read_text())["threads"] for p in metrics] == [1, 1]
    # A trial trained with another thread count (an older audiobench resumed here): the study says so.
    record = json.loads(metrics[0].read_text())
    metrics[0].write_text(json.dumps({**record, "threads": 2}))
    caplog.set_level("WARNING", logger="audiobench.study.compare")
    again = compare(_config(trials=1), root=toy_root, out=tmp_path / "s", quiet=True)
    assert again.trained == 0
    assert "different torch thread counts (1 runs with 1 thread(s), 1 runs with 2 thread(s))" in caplog.text


def test_an_unknown_backend_is_refused_even_with_one_job(toy_root, tmp_path):
    with pytest.raises(AudiobenchError, match="unknown backend 'locky'"):
        compare(_config(trials=1), root=toy_root, out=tmp_path / "s", jobs=1, backend="locky", quiet=True)
    assert not (tmp_path / "s" / "trials").exists()


def _long_study(toy_root: Path, out: Path, *, jobs: int) -> subprocess.Popen:
    """A compare that would train for minutes, in its own process."""
    return subprocess.Popen([sys.executable, "-m", "audiobench.cli", "compare", "toy", "--root", str(toy_root),
                             "--variants", "noatt-weak,att-self", "--trials", "20", "--width", "0.0625", "--frames",
                             "96", "--epochs", "50", "--batch-size", "16", "--jobs", str(jobs), "--quiet",
                             "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for_training(proc: subprocess.Popen, out: Path, *, workers: int) -> dict[int, str]:
    """Once ``workers`` loky workers exist and a trial has started: every process under ``proc``."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = descendants(proc.pid)
        if sum("loky" in cmd and "--process-name" in cmd for cmd in found.values()) >= workers \
                and list(out.glob("trials/t*")):
            return found
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.1)
    raise AssertionError("the study did not start training")


@pytest.mark.slow
def test_sigterm_stops_the_workers_before_compare_exits(toy_root, tmp_path):
    proc = _long_study(toy_root, tmp_path / "s", jobs=2)
    try:
        children = _wait_for_training(proc, tmp_path / "s", workers=2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 143
        assert wait_until_gone(children, 5) == [], {p: children[p] for p in alive(children)}
        assert "interrupted (SIGTERM)" in proc.stderr.read().decode()  # (its children share the pipe)
    finally:
        proc.kill()


@pytest.mark.slow
def test_workers_of_a_killed_compare_exit_on_their_own(toy_root, tmp_path):
    proc = _long_study(toy_root, tmp_path / "s", jobs=2)
    try:
        children = _wait_for_training(proc, tmp_path / "s", workers=2)
        proc.kill()  # kill -9: no handler runs; the workers notice their parent is gone
        proc.wait(timeout=30)
        assert wait_until_gone(children, 5) == [], {p: children[p] for p in alive(children)}
    finally:
        proc.kill()


@pytest.mark.slow
def test_a_second_compare_on_the_same_study_folder_is_refused_naming_the_holder(toy_root, tmp_path):
    out = tmp_path / "s"
    proc = _long_study(toy_root, out, jobs=1)
    try:
        _wait_for_training(proc, out, workers=0)
        in_progress = sorted(out.glob("trials/t*"))
        second = subprocess.run(proc.args, capture_output=True, text=True, timeout=60)  # the same command again
        assert second.returncode == 2, second.stderr
        assert "another `audiobench compare` is training the study in" in second.stderr
        assert f"PID {proc.pid} on " in second.stderr and "wait for it to finish" in second.stderr
        assert all(folder.is_dir() for folder in in_progress)  # the first run's trial in progress is untouched
    finally:
        proc.kill()
        proc.wait()

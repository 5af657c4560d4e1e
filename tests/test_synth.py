"""The synthetic dataset: exact labels, class duration distributions, determinism, layout, resumability."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from click.testing import CliRunner

from audiobench.cli import cli
from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths
from audiobench.data.sources.youtube import validate_youtube_id
from audiobench.data.ledger import Ledger
from audiobench.data.resample import encode_flac, resample
from audiobench.data.synth import (
    DISTRACTORS, TARGETS, plan_clip, render_clip, render_event, sample_duration, synthesize,
)
from audiobench.data.synth.check import loudness_check

SR = 16000
# The SL-DCASE-17 classes, in order.
SL_DCASE17_MIDS = ["/m/0284vy3", "/m/05x_td", "/m/02mfyn", "/m/02rhddq", "/m/0199g", "/m/06_fw", "/m/012n7d",
                   "/m/012ndj", "/m/0dgbq", "/m/04qvtq", "/m/03qc9zr", "/m/0k4j", "/t/dd00134", "/m/01bjv",
                   "/m/07r04", "/m/04_sv", "/m/07jdr"]
SMALL = {"train": 3, "val": 1, "test": 1, "duration": 2.0, "quiet": True}


def _audio_bytes(root: Path, name: str = "synth") -> dict[str, bytes]:
    folder = root / name / "audio"
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.flac"))}


# -- sounds and labels ---------------------------------------------------------------------------------------
def test_classes_are_sl_dcase17_with_audioset_mids():
    assert [c.mid for c in TARGETS] == SL_DCASE17_MIDS
    assert len(DISTRACTORS) >= 4 and all(d.mid == "" for d in DISTRACTORS)
    kinds = [c.kind for c in TARGETS]
    assert kinds.count("short") >= 3 and kinds.count("long") >= 5


@pytest.mark.parametrize("sound", TARGETS + DISTRACTORS, ids=lambda s: s.name)
def test_every_event_fills_exactly_its_labelled_span(sound):
    """Energy is inside [onset, offset] by construction, and present right at both ends (tight labels)."""
    for seed, seconds in ((0, sound.min_duration), (1, sound.max_duration), (2, 0.5 * (sound.min_duration + 1.0))):
        n = round(seconds * SR)
        event = render_event(sound, n, np.random.default_rng(seed))
        assert event.shape == (n,) and np.isfinite(event).all()
        assert np.sqrt(np.mean(event**2)) == pytest.approx(1.0)
        edge = max(n // 10, 160)
        if sound.mid:  # labelled classes: the sound starts at the onset and lasts to the offset
            assert np.mean(event[:edge] ** 2) > 0.02, "silent start: onset label would be loose"
            assert np.mean(event[-edge:] ** 2) > 0.02, "silent end: offset label would be loose"


def test_clip_audio_outside_its_labels_is_silent_without_background():
    for index in range(40):
        plan = plan_clip(7, "train", index, 10.0)
        x = render_clip(plan, with_background=False, with_distractors=False)
        inside = np.zeros(x.size, dtype=bool)
        for e in plan.events:
            on, off = round(e.onset * SR), round(e.offset * SR)
            inside[on:off] = True
            assert np.abs(x[on:off]).max() > 0
        assert not np.any(x[~inside]), f"clip {index}: sound outside the labelled events"


def test_event_durations_follow_each_class_distribution():
    rng = np.random.default_rng(0)
    for sound in TARGETS:
        durations = np.array([sample_duration(sound, rng) for _ in range(2000)])
        assert durations.min() >= sound.min_duration and durations.max() <= sound.max_duration
        if sound.kind == "short":
            assert durations.mean() < 1.0, sound.name
        if sound.kind == "long":
            assert durations.mean() > 4.0, sound.name


def test_clip_plans_hold_one_to_three_targets_distractors_and_exact_labels():
    plans = [plan_clip(0, split, i, 10.0) for split in ("train", "test") for i in range(300)]
    counts = {len(p.events) for p in plans}
    assert counts == {1, 2, 3}
    assert any(len(p.weak) < len(p.events) for p in plans), "no clip repeats a class"
    assert any(not s.target for p in plans for s in p.sounds), "no distractors"
    for p in plans:
        validate_youtube_id(p.ytid)
        assert p.weak == tuple(sorted({e.class_index for e in p.events}))
        for e in p.events:
            assert 0.0 <= e.onset < e.offset <= p.duration
    assert len({p.ytid for p in plans}) == len(plans)
    # A clip depends only on (seed, split, index): planning again gives the same labels.
    assert plan_clip(0, "train", 5, 10.0) == plans[5]


# -- the dataset on disk -------------------------------------------------------------------------------------
def test_dataset_layout_ledger_and_labels(tmp_path):
    result = synthesize(root=tmp_path, **SMALL)
    assert result.splits == {"train": 3, "val": 1, "test": 1} and result.generated == 5
    with Ledger(DatasetPaths(tmp_path, "synth").ledger) as ledger:
        assert [c.mid for c in ledger.classes()] == SL_DCASE17_MIDS
        assert ledger.splits() == {"train": True, "val": True, "test": True}
        assert {s: c["ok"] for s, c in ledger.counts().items()} == {"train": 3, "val": 1, "test": 1}
        assert ledger.meta()["kind"] == "synthetic" and ledger.meta()["seed"] == 0
        audio = ledger.audio()
        clips = ledger.clips()
        assert sum(len(c.events) for c in clips) == result.events
        for clip in clips:
            assert len(clip.events) in (1, 2, 3)
            assert clip.weak == tuple(sorted({e.class_index for e in clip.events}))
            record = audio[clip.clip_id]
            assert record.path == f"audio/{clip.split}/{clip.clip_id}.flac"
            info = sf.info(tmp_path / "synth" / record.path)
            assert (info.samplerate, info.channels, info.subtype, info.frames) == (SR, 1, "PCM_16", 2 * SR)
            assert record.samples == 2 * SR and record.duration == 2.0 and not record.short
    labels = (tmp_path / "synth" / "index" / "train_strong_labels.tsv").read_text().splitlines()
    assert labels[0].startswith("clip_id\tytid") and len(labels) - 1 == sum(
        len(c.events) for c in clips if c.split == "train")
    # Nothing for resample to do: the audio is already 16 kHz mono.
    assert resample("synth", root=tmp_path, quiet=True).counts == {"converted": 0, "done": 5, "failed": 0,
                                                                    "short": 0}


def test_classes_option_keeps_only_those_targets_in_the_order_given(tmp_path):
    chosen = ["Reversing beeps", "/m/05x_td", "car"]  # a name, a MID (its name holds a comma), any case
    synthesize("three", root=tmp_path, classes=chosen, **{**SMALL, "train": 12})
    with Ledger(DatasetPaths(tmp_path, "three").ledger) as ledger:
        assert [c.name for c in ledger.classes()] == ["Reversing beeps", "Air horn, truck horn", "Car"]
        assert ledger.meta()["classes"] == ["/m/02rhddq", "/m/05x_td", "/m/0k4j"]
        clips = ledger.clips()
    assert all(1 <= len(c.events) <= 3 and {e.class_index for e in c.events} <= {0, 1, 2} for c in clips)
    assert {e.class_index for c in clips for e in c.events} == {0, 1, 2}
    rows = (tmp_path / "three" / "index" / "train_strong_labels.tsv").read_text().splitlines()[1:]
    assert {r.split("\t")[6] for r in rows} == {"/m/02rhddq", "/m/05x_td", "/m/0k4j"}
    with pytest.raises(AudiobenchError, match="classes="):  # other classes into the same dataset: refused
        synthesize("three", root=tmp_path, **{**SMALL, "train": 12})
    # No other target class sounds in the clips, not even unlabelled.
    subset = (TARGETS.index(next(t for t in TARGETS if t.name == "Reversing beeps")), 1, 11)
    plans = [plan_clip(0, "train", i, 2.0, subset) for i in range(12)]
    assert all(s.sound in subset for p in plans for s in p.sounds if s.target)


def test_a_dataset_made_before_classes_were_recorded_counts_as_all_of_them(tmp_path):
    import sqlite3

    synthesize(root=tmp_path, **SMALL)
    ledger_path = DatasetPaths(tmp_path, "synth").ledger
    with sqlite3.connect(ledger_path) as db:
        db.execute("DELETE FROM meta WHERE key = 'classes'")
    with pytest.raises(AudiobenchError, match="classes="):
        synthesize(root=tmp_path, classes=["Car"], **SMALL)
    assert synthesize(root=tmp_path, **SMALL).generated == 0  # still the same dataset, nothing to redo
    with Ledger(ledger_path) as ledger:
        assert [c.mid for c in ledger.classes()] == SL_DCASE17_MIDS


@pytest.mark.parametrize("classes,says", [(["Reversing beeps", "Barking"], "synth has no class 'Barking'"),
                                          (["Car", "/m/0k4j"], "asked for twice"), ([], "names no class")])
def test_bad_classes_option_is_one_clear_error(tmp_path, classes, says):
    with pytest.raises(AudiobenchError, match=says):
        synthesize(root=tmp_path, classes=classes, **SMALL)
    assert not (tmp_path / "synth" / "audio").exists()


def test_same_seed_same_bytes_whatever_the_jobs_and_other_seed_differs(tmp_path):
    synthesize(root=tmp_path / "a", seed=3, **SMALL)
    synthesize(root=tmp_path / "b", seed=3, jobs=2, **SMALL)
    synthesize(root=tmp_path / "c", seed=4, **SMALL)
    a, b, c = (_audio_bytes(tmp_path / x) for x in "abc")
    assert a == b and len(a) == 5
    assert set(a).isdisjoint(c)  # other ytids
    assert sorted(a.values()) != sorted(c.values())


def test_rerun_skips_done_clips_and_redoes_a_missing_file(tmp_path):
    synthesize(root=tmp_path, **SMALL)
    before = _audio_bytes(tmp_path)
    again = synthesize(root=tmp_path, **SMALL)
    assert (again.generated, again.already_done) == (0, 5)
    victim = tmp_path / "synth" / "audio" / next(iter(before))
    victim.unlink()
    (victim.parent / f".{victim.name}.999.tmp").write_bytes(b"half a file")  # what a kill leaves behind
    third = synthesize(root=tmp_path, **SMALL)
    assert (third.generated, third.already_done) == (1, 4)
    assert _audio_bytes(tmp_path) == before
    assert not list(victim.parent.glob(".*.tmp"))


def test_other_options_into_an_existing_dataset_are_refused(tmp_path):
    synthesize(root=tmp_path, **SMALL)
    with pytest.raises(AudiobenchError, match=r"seed=0 \(asked 1\).*another --name"):
        synthesize(root=tmp_path, **{**SMALL, "seed": 1})


def test_unwritable_root_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(AudiobenchError, match="cannot create"):
        synthesize(root=blocker / "x", **SMALL)
    out = CliRunner().invoke(cli, ["synth", "--root", str(blocker / "x"), "--train", "1", "--val", "0",
                                   "--test", "0", "--duration", "1", "-q"])
    assert out.exit_code == 2
    assert out.output.strip().count("\n") == 0 and out.output.startswith("error: cannot create")


@pytest.mark.slow
def test_killed_run_resumes_and_gives_the_same_bytes(tmp_path):
    code = ("from audiobench.data.synth import synthesize; "
            f"synthesize(root={str(tmp_path / 'k')!r}, train=40, val=0, test=0, duration=10.0, quiet=True)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    ledger_path = tmp_path / "k" / "synth" / "ledger.sqlite"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if ledger_path.exists():
            with Ledger(ledger_path) as ledger:
                if len(ledger.audio()) >= 3:
                    break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with Ledger(ledger_path) as ledger:
        recorded = ledger.audio()
    assert 3 <= len(recorded) < 40, "the run finished before it could be killed"
    for record in recorded.values():  # every recorded file is complete
        assert sf.info(tmp_path / "k" / "synth" / record.path).frames == 10 * SR
    resumed = synthesize(root=tmp_path / "k", train=40, val=0, test=0, duration=10.0, quiet=True)
    assert resumed.already_done == len(recorded) and resumed.generated == 40 - len(recorded)
    for index in (0, 39):  # written before the kill, and after: the bytes a clean run writes
        plan = plan_clip(0, "train", index, 10.0)
        path = tmp_path / "k" / "synth" / "audio" / "train" / f"{plan.clip_id}.flac"
        assert path.read_bytes() == encode_flac(render_clip(plan))


@pytest.mark.slow
def test_loudness_alone_does_not_give_the_labels_but_the_spectrum_does(tmp_path):
    synthesize(root=tmp_path, train=200, val=0, test=100, duration=10.0, jobs=2, quiet=True)
    check = loudness_check("synth", root=tmp_path)
    assert check.classes == 17
    assert check.loudness_map < check.prior + 0.1, check
    assert check.spectral_map > check.loudness_map + 0.2, check


# -- command line ----------------------------------------------------------------------------------------------
def test_cli_json_summary(tmp_path):
    out = CliRunner().invoke(cli, ["synth", "--root", str(tmp_path), "--name", "tiny", "--train", "2", "--val",
                                   "1", "--test", "1", "--duration", "1.5", "--seed", "5", "-q", "--json"])
    assert out.exit_code == 0, out.output
    summary = json.loads(out.output)
    assert summary["splits"] == {"train": 2, "val": 1, "test": 1} and summary["generated"] == 4
    assert summary["seed"] == 5 and Path(summary["path"]) == tmp_path / "tiny"


def test_status_and_the_export_say_the_clips_were_generated(tmp_path):
    synthesize(root=tmp_path, **SMALL)
    base = ["status", "synth", "--root", str(tmp_path), "--no-per-class"]
    out = CliRunner().invoke(cli, [*base, "--per-source", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["streams"] == [{"via": "synth", "codec": "flac", "sample_rate": "16000", "clips": 5}]
    export = tmp_path / "clips.csv"
    assert CliRunner().invoke(cli, [*base, "--export", str(export)]).exit_code == 0
    assert set(pd.read_csv(export)["source"]) == {"synth"}


def test_console_script_synth_then_status(tmp_path):
    exe = Path(sys.executable).parent / "audiobench"
    root = str(tmp_path / "data")
    synth = subprocess.run([str(exe), "synth", "--root", root, "--train", "6", "--val", "3", "--test", "3",
                            "--duration", "4", "--quiet"], capture_output=True, text=True, timeout=120)
    assert synth.returncode == 0, synth.stderr
    assert "generated 12, already done 0" in synth.stdout
    status = subprocess.run([str(exe), "status", "synth", "--root", root, "--no-per-class"], capture_output=True,
                            text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    coverage = status.stdout.split("\n\n")[0]  # the download coverage comes first, then features and runs
    rows = {line.split()[0]: line.split() for line in coverage.splitlines()[1:]}
    assert rows["train"][2:4] == ["6", "6"] and rows["val"][2:4] == ["3", "3"] and rows["test"][2:4] == ["3", "3"]


def test_help_shows_an_example():
    out = CliRunner().invoke(cli, ["synth", "--help"])
    assert out.exit_code == 0 and "Example:" in out.output and "audiobench synth --root" in out.output

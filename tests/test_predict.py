"""`predict` and `audiobench predict` on runs trained one epoch on a tiny synthetic dataset (real FLACs)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
from click.testing import CliRunner

import audiobench
from audiobench.cli import cli
from audiobench.core.errors import AudiobenchError
from audiobench.data.synth import synthesize
from audiobench.features.featurize import featurize
from audiobench.models.checkpoint import load_model
from audiobench.training.inference import predict_dataset

CLASSES = ["Car", "Ambulance (siren)", "Train horn"]
TINY = dict(epochs=1, width=0.125, lr=1e-3, batch_size=4, quiet=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """A dataset of 1.5 s clips, featurized, and two runs on it: with attention and without."""
    root = tmp_path_factory.mktemp("root")
    synthesize("tiny", root=root, train=8, val=4, test=4, duration=1.5, classes=CLASSES, quiet=True)
    featurize("tiny", root=root, quiet=True)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        att = audiobench.train("tiny", root=root, variant="att-self", out=root / "runs" / "att", **TINY)
        noatt = audiobench.train("tiny", root=root, variant="noatt-weak", out=root / "runs" / "noatt", **TINY)
    finally:
        torch.set_num_threads(before)
    return {"root": root, "att": att.run_dir, "noatt": noatt.run_dir, "audio": root / "tiny" / "audio" / "test"}


def test_probabilities_are_those_of_trainings_own_evaluation_for_the_same_audio(trained):
    test = audiobench.open_split("tiny", "test", root=trained["root"])
    net, _ = load_model(trained["att"])
    expected = predict_dataset(net, test, device=torch.device("cpu")).scores
    files = [trained["audio"] / f"{clip_id}.flac" for clip_id in test.clip_ids]

    got = audiobench.predict(trained["att"], files)

    assert [p.file for p in got] == files
    assert np.abs(np.stack([p.clip for p in got]) - expected).max() <= 1e-6
    first = got[0]
    assert first.classes == tuple(CLASSES)
    segments = int(test.lengths[0]) // 16
    assert first.segments.shape == first.attention.shape == (3, segments)
    assert np.allclose(first.attention.sum(axis=1), 1.0, atol=1e-5)
    # the clip probability is the attention-weighted mean of the segment probabilities (docs/model.md)
    assert np.allclose((first.attention * first.segments).sum(axis=1), first.clip, atol=1e-6)
    assert first.seconds == pytest.approx(1.5) and first.segment_seconds == pytest.approx(0.16)
    assert [name for name, _ in first.top(3)] == [CLASSES[i] for i in np.argsort(-first.clip, kind="stable")]


def test_any_rate_and_channel_count_is_resampled_to_16k_mono(trained, tmp_path):
    source = sorted(trained["audio"].glob("*.flac"))[0]
    mono, rate = sf.read(source, dtype="float32")
    assert rate == 16000
    stereo = np.stack([soxr.resample(mono, 16000, 44100)] * 2, axis=1) * 0.9  # 44.1 kHz, two channels
    wav = tmp_path / "stereo-44k.wav"
    sf.write(wav, stereo, 44100, subtype="FLOAT")

    original, converted = audiobench.predict(trained["att"], [source, wav])

    assert sf.info(wav).channels == 2 and sf.info(wav).samplerate == 44100
    assert converted.seconds == pytest.approx(1.5, abs=1e-3)
    assert converted.segments.shape == original.segments.shape
    # the same sound, 0.9 as loud and resampled twice: the net's answer barely moves
    assert np.abs(converted.clip - original.clip).max() < 0.03


def test_a_run_without_attention_has_no_attention_matrix(trained):
    source = sorted(trained["audio"].glob("*.flac"))[0]
    (prediction,) = audiobench.predict(trained["noatt"], [source])
    assert prediction.attention is None
    assert np.allclose(prediction.segments.mean(axis=1), prediction.clip, atol=1e-6)  # mean pooling
    assert prediction.to_dict()["attention_shape"] is None


def test_an_unreadable_file_is_an_error_naming_it(trained, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio at all\n")
    with pytest.raises(AudiobenchError, match="notes.wav"):
        audiobench.predict(trained["att"], [bad])
    with pytest.raises(AudiobenchError, match="model.json"):
        audiobench.predict(tmp_path, [bad])


def test_cli_prints_top_classes_per_file_and_goes_on_past_a_bad_one(trained, tmp_path):
    files = sorted(trained["audio"].glob("*.flac"))[:2]
    bad = tmp_path / "empty.flac"
    bad.write_bytes(b"")
    missing = tmp_path / "missing.wav"
    result = CliRunner().invoke(cli, ["predict", str(trained["att"]), str(files[0]), str(bad), str(files[1]),
                                      str(missing), "--top", "2", "--quiet"])
    assert result.exit_code == 2
    errors = result.stderr.strip().splitlines()
    assert errors[0] == f"error: {bad}: empty file (0 bytes)"
    assert errors[1].startswith(f"error: {missing}: cannot read") and len(errors) == 2
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines if not line.startswith(" ")] == [str(f) for f in files]
    expected = audiobench.predict(trained["att"], files)
    for k, prediction in enumerate(expected):
        shown = lines[3 * k + 1:3 * k + 3]
        assert [line.split(None, 1)[1] for line in shown] == [name for name, _ in prediction.top(2)]
        assert [float(line.split()[0]) for line in shown] == pytest.approx([p for _, p in prediction.top(2)],
                                                                          abs=1e-4)


def test_cli_json_gives_every_probability_and_the_matrices_on_request(trained):
    source = sorted(trained["audio"].glob("*.flac"))[0]
    run_name = trained["att"].name  # a run name is looked up under ROOT/runs/
    result = CliRunner().invoke(cli, ["predict", run_name, str(source), "--json", "--root", str(trained["root"])])
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)
    assert entry["file"] == str(source) and list(entry["probabilities"]) == CLASSES
    frames = entry["segments_shape"][1]
    assert entry["segments_shape"] == entry["attention_shape"] == [3, frames] and "segments" not in entry

    result = CliRunner().invoke(cli, ["predict", str(trained["att"]), str(source), "--json", "--matrices"])
    (entry,) = json.loads(result.stdout)
    assert np.array(entry["attention"]).shape == (3, frames)
    assert np.allclose(np.array(entry["attention"]).sum(axis=1), 1.0, atol=1e-5)
    (prediction,) = audiobench.predict(trained["att"], [source])
    assert np.allclose(entry["segments"], prediction.segments)

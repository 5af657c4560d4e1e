"""`predict` and `audiobench predict` on runs trained one epoch on a tiny synthetic dataset (real FLACs)."""
from __future__ import annotations

import json
from dataclasses import asdict
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
from audiobench.data.decode import read_audio
from audiobench.data.resample import AUDIO_RATE, to_mono_16k
from audiobench.data.synth import synthesize
from audiobench.features.base import get_extractor
from audiobench.features.featurize import featurize
from audiobench.models.checkpoint import load_model, save_checkpoint
from audiobench.models.net import build_net, segment_context
from audiobench.training.blockwise import BLOCK_FRAMES
from audiobench.training.inference import predict_dataset
from audiobench.training.predict import Predictor

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


def test_matrices_without_json_is_refused_in_one_line_instead_of_ignored(trained):
    source = sorted(trained["audio"].glob("*.flac"))[0]
    result = CliRunner().invoke(cli, ["predict", str(trained["att"]), str(source), "--matrices"])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "--json" in result.output and "Traceback" not in result.output


# -- long files, block by block -------------------------------------------------------------------------------
def whole_file(predictor: Predictor, path: Path):
    """The net's output on the whole file at once: decoded, resampled and featurized in one piece."""
    audio, rate = read_audio(path)
    mono = to_mono_16k(audio, rate)
    x = predictor.extractor(mono, AUDIO_RATE)
    batch = torch.full((1, max(len(x), 16), x.shape[1]), predictor.padding)
    batch[0, :len(x)] = torch.from_numpy(x)
    with torch.no_grad():
        return predictor.net(batch), mono.size / AUDIO_RATE


def scene(seconds: float, rate: int, channels: int, seed: int = 0) -> np.ndarray:
    """``[n, channels]``: noise, with a gliding tone that comes and goes, different in each channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    out = np.empty((t.size, channels), np.float32)
    for c in range(channels):
        tone = np.sin(2 * np.pi * (300 + 200 * c) * t * (1 + t / 60)) * (np.sin(0.7 * t + c) > 0.3)
        out[:, c] = 0.05 * rng.standard_normal(t.size) + 0.3 * tone
    return out


def assert_same_prediction(got, expected, seconds: float) -> None:
    """Equal to the whole file's within float rounding (1e-5: measured under 1e-6, docs/api.md)."""
    assert got.seconds == seconds
    assert got.segments.shape == tuple(expected.xa[0].shape)
    assert np.abs(got.segments - expected.xa[0].numpy()).max() <= 1e-5
    assert np.abs(got.clip - expected.clip[0].numpy()).max() <= 1e-5
    if expected.attention is None:
        assert got.attention is None
    else:
        assert np.abs(got.attention - expected.attention[0].numpy()).max() <= 1e-5


@pytest.mark.parametrize(("rate", "channels", "seconds"), [(16000, 1, 180.0), (44100, 2, 95.3)])
def test_a_long_file_in_small_blocks_gets_the_whole_files_prediction(trained, tmp_path, rate, channels, seconds):
    path = tmp_path / f"long-{rate}-{channels}.wav"
    sf.write(path, scene(seconds, rate, channels), rate, subtype="PCM_16")
    for run in ("att", "noatt"):
        expected, length = whole_file(Predictor(trained[run]), path)
        for block_frames in (64, 1024, BLOCK_FRAMES):  # 64: hundreds of blocks, the context on both sides
            got = Predictor(trained[run], block_frames=block_frames)(path)
            assert_same_prediction(got, expected, length)
    assert got.seconds == pytest.approx(seconds, abs=1e-3) and got.note is None


@pytest.mark.parametrize("frames", [1, 15, 16, 17, 47, 48, 49, 63, 64, 65, 111, 112, 113, 150])
def test_every_length_at_the_block_edges_gets_the_whole_files_prediction(trained, tmp_path, frames):
    path = tmp_path / f"{frames}.flac"
    sf.write(path, scene(0.01 * (frames - 1) + 0.025, 16000, 1), 16000, subtype="PCM_16")
    expected, length = whole_file(Predictor(trained["att"]), path)
    assert expected.xa.shape[-1] == max(frames // 16, 1)
    for block_frames in (16, 32, 48):
        assert_same_prediction(Predictor(trained["att"], block_frames=block_frames)(path), expected, length)


def test_a_run_on_features_of_the_whole_waveform_is_scored_on_the_whole_waveform(tmp_path):
    """The Kaldi fbank subtracts the recording's mean from every sample: no block can be featurized alone."""
    extractor = get_extractor("kaldi-fbank-128")
    assert not extractor.frame_local
    run = tmp_path / "kaldi-run"
    run.mkdir()
    save_checkpoint(run, build_net(3, width=0.0625, bands=128, seed=3),
                    {"class_names": CLASSES, "features": {"dtype": "float32"},
                     "extractor": {"name": extractor.name, "params": asdict(extractor.params)}})
    path = tmp_path / "offset.wav"
    sf.write(path, scene(20.0, 22050, 1) + 0.2, 22050, subtype="FLOAT")  # a DC offset: the mean matters
    expected, length = whole_file(Predictor(run), path)
    assert_same_prediction(Predictor(run, block_frames=32)(path), expected, length)


def test_segment_context_is_how_far_the_nets_segments_see(trained):
    """Each frame nudged in turn: the segments whose output moves are those within 43 frames of it."""
    net, _ = load_model(trained["att"])
    x = torch.randn(1, 320, 64, generator=torch.Generator().manual_seed(0))
    reach = set()
    with torch.no_grad():
        base = net(x).xa
        for k in range(320):
            nudged = x.clone()
            nudged[0, k] += 5.0
            moved = (net(nudged).xa - base).abs().amax(dim=(0, 1)) > 0
            reach.update(k - 16 * int(t) for t in torch.nonzero(moved).flatten())
    assert segment_context() == 43
    assert (min(reach), max(reach)) == (-segment_context(), 15 + segment_context())


def test_block_frames_must_be_whole_segments(trained):
    for bad in (0, 8, 100):
        with pytest.raises(AudiobenchError, match="block_frames must be a positive multiple of 16"):
            Predictor(trained["att"], block_frames=bad)


def test_a_clip_shorter_than_what_a_segment_sees_gets_one_note_and_its_prediction(trained, tmp_path):
    files = {}
    for name, samples in (("tiny", 800), ("half", 8000), ("long", 48000), ("crumb", 100)):
        files[name] = tmp_path / f"{name}.wav"
        sf.write(files[name], scene(samples / 16000, 16000, 1), 16000)
    result = CliRunner().invoke(cli, ["predict", str(trained["att"]), *map(str, files.values()), "--top", "1",
                                      "--quiet"])
    assert result.exit_code == 2  # the crumb: not even one 25 ms frame
    assert result.stderr.splitlines() == [
        f"note: {files['tiny']}: 0.050 s, shorter than the 1.03 s one segment's output depends on, padded with "
        "silence to one segment: read its probabilities with care",
        f"note: {files['half']}: 0.500 s, shorter than the 1.03 s one segment's output depends on: read its "
        "probabilities with care",
        f"error: {files['crumb']}: too short: 100 samples, at least 400 needed (one 25 ms frame)",
    ]
    printed = [line.split()[0] for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert printed == [str(files["tiny"]), str(files["half"]), str(files["long"])]

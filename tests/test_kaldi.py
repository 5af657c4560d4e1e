"""kaldi-fbank-128 against lhotse's independent Kaldi fbank, and end to end: featurize, then compare on it.

lhotse (a test-only dependency) is configured to the settings AST and EAT pass to torchaudio: Hann window
(lhotse's default is Povey), snip edges (its default reflects the edges), high frequency 0 = Nyquist (its
default is -400 Hz below it), 128 filters (default 80), no dither, no energy. Its input is what AST feeds
torchaudio: the waveform minus its mean (lhotse does not subtract it itself).
"""
from __future__ import annotations

import copy
import json
import math
import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from audiobench.cli import cli
from audiobench.core.errors import AudiobenchError
from audiobench.features.base import get_extractor
from audiobench.features.dataset import LogmelDataset
from audiobench.features.kaldi import KaldiFbank, KaldiFbankParams, fbank, mel_banks
from audiobench.study.compare import CompareConfig, compare
from audiobench.study.figures import load_attention, plot_clip_variants
from audiobench.training.options import TrainOptions

lhotse_layers = pytest.importorskip("lhotse.features.kaldi.layers", reason="lhotse is in the test extra")

SR = 16_000
FLOOR = math.log(2.0 ** -23)  # log(float32 eps): bands without energy
RELEASE = Path(__file__).parent / "data" / "release-0.1" / "synth"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _signal(kind: str) -> np.ndarray:
    rng = np.random.default_rng(3)
    t = np.arange(int(1.5 * SR)) / SR
    signals = {
        "noise": 0.1 * rng.standard_normal(t.size),
        "loud-clipped-noise": np.clip(rng.standard_normal(t.size), -1, 1),
        "sine-100-hz": 0.99 * np.sin(2 * np.pi * 100 * t),
        "sine-1-khz": np.sin(2 * np.pi * 1000 * t),
        "sine-7-khz-plus-dc": 0.5 * np.sin(2 * np.pi * 7000 * t) + 0.2,
        "sweep-50-hz-to-7.8-khz": 0.8 * np.sin(2 * np.pi * (50 + 2600 * t) * t),
    }
    return signals[kind].astype(np.float32)


KINDS = ["noise", "loud-clipped-noise", "sine-100-hz", "sine-1-khz", "sine-7-khz-plus-dc", "sweep-50-hz-to-7.8-khz"]


def _lhotse(*, window_type: str = "hanning") -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "snip_edges=True is generally incompatible with Lhotse": wanted here
        return lhotse_layers.Wav2LogFilterBank(
            sampling_rate=SR, frame_length=0.025, frame_shift=0.01, round_to_power_of_two=True,
            remove_dc_offset=True, preemph_coeff=0.97, window_type=window_type, dither=0.0, snip_edges=True,
            use_energy=False, use_fft_mag=False, low_freq=20.0, high_freq=0.0, num_filters=128)


def _run(module: torch.nn.Module, x: np.ndarray, dtype: torch.dtype = torch.float32) -> np.ndarray:
    wave = torch.from_numpy(x)[None]
    wave = (wave - wave.mean()).to(dtype)  # AST: waveform - waveform.mean(), then fbank
    with torch.no_grad():
        return module.to(dtype)(wave)[0].double().numpy()


def _reference_bank() -> np.ndarray:
    """The Kaldi mel bank from its definition, in float64 with plain loops (no code shared with audiobench)."""
    def mel(f):
        return 1127.0 * math.log(1.0 + f / 700.0)

    low, high = mel(20.0), mel(8000.0)
    delta = (high - low) / 129
    out = np.zeros((257, 128))
    for b in range(128):
        left, center, right = low + b * delta, low + (b + 1) * delta, low + (b + 2) * delta
        for k in range(256):  # the Nyquist bin (k = 256) weighs nothing
            m = mel(k * SR / 512)
            out[k, b] = max(0.0, min((m - left) / (center - left), (right - m) / (right - center)))
    return out


def test_mel_bank_is_kaldis_up_to_float32_rounding_and_keeps_empty_bands():
    ours, exact, theirs = mel_banks(), _reference_bank(), _lhotse().to(torch.float64)._fb.numpy()
    assert ours.dtype == np.float32 and ours.shape == (257, 128)
    # torchaudio computes the bins' mels in float32 (about 2800 mel at the top: a float32 step of 2.4e-4, that is
    # 1.1e-5 of a band's 21.8 mel), so its weights, which these are, sit within a few 1e-5 of the exact ones;
    # lhotse's, made with numpy's float32 log instead of torch's, too.
    np.testing.assert_allclose(ours, exact, rtol=0, atol=3e-5)
    np.testing.assert_allclose(theirs, exact, rtol=0, atol=3e-5)
    # Band 3 (63 to 93 Hz) lies strictly between the FFT bins at 62.5 and 93.75 Hz: Kaldi refuses such a bank,
    # torchaudio keeps the band with no weight, so it holds the log floor whatever the signal.
    assert list(np.flatnonzero(~exact.any(axis=0))) == list(np.flatnonzero(~ours.any(axis=0))) == [3]
    assert np.all(fbank(_signal("loud-clipped-noise"))[:, 3] == np.float32(FLOOR))


@pytest.mark.parametrize("kind", KINDS)
def test_fbank_matches_lhotse_within_1e_4(kind):
    """Everything but the bank is lhotse's own code (framing, DC offset, pre-emphasis, window, FFT, power, floor,
    log); its bank is set to torchaudio's arithmetic (ours), compared to the definition just above.

    Where a band lies some 100 dB below its frame's loudest (a low band while a high tone plays), float32
    rounding, not the recipe, sets its value: there lhotse's own float32 and float64 runs differ by up to 0.04.
    Within 1e-4 is asserted where float32 determines the value (lhotse's float32 and float64 agree within 1e-5:
    most entries); elsewhere the difference must be no larger than lhotse's own float32 error.
    """
    x = _signal(kind)
    ours = fbank(x, SR)
    module = _lhotse()
    module._fb.data = torch.from_numpy(np.array(mel_banks()))
    theirs, exact = _run(module, x), _run(copy.deepcopy(module), x, torch.float64)
    assert ours.shape == theirs.shape == (1 + (x.size - 400) // 160, 128) and ours.dtype == np.float32
    determined = np.abs(theirs - exact) <= 1e-5
    assert determined.mean() > 0.6
    np.testing.assert_allclose(ours[determined], theirs[determined], rtol=0, atol=1e-4)
    assert np.all(np.abs(ours - theirs)[~determined] <= np.abs(theirs - exact)[~determined] + 1e-4)


@pytest.mark.parametrize("kind", ["noise", "loud-clipped-noise", "sine-100-hz", "sine-1-khz", "sine-7-khz-plus-dc"])
def test_fbank_matches_lhotse_with_its_own_bank_within_1e_4(kind):
    """Nothing shared at all: lhotse's bank as lhotse makes it. (A sweep, whose tone crosses the far tail of
    every triangle where the two banks' float32 weights differ most in relative terms, moves a few values by up
    to 2e-4 this way: the bank test above bounds the weights instead.)"""
    x = _signal(kind)
    np.testing.assert_allclose(fbank(x), _run(_lhotse(), x), rtol=0, atol=1e-4)


def test_beats_settings_match_lhotse_too():
    """BEATs feeds Kaldi's defaults (Povey window) the waveform times 2**15, without subtracting its mean."""
    params = KaldiFbankParams(window_type="povey", waveform_scale=2.0 ** 15, subtract_waveform_mean=False)
    x = _signal("noise")
    module = _lhotse(window_type="povey")
    with torch.no_grad():
        theirs = module(torch.from_numpy(x)[None] * 2.0 ** 15)[0].numpy()
    np.testing.assert_allclose(fbank(x, params=params), theirs, rtol=0, atol=1e-4)
    assert KaldiFbank(params).feature_id() != KaldiFbank().feature_id()


def test_silence_is_the_floor_and_the_padding_value():
    extractor = get_extractor("kaldi-fbank-128")
    assert extractor.padding_value == FLOOR
    assert np.all(fbank(np.zeros(160_000, np.float32)) == np.float32(FLOOR))
    assert fbank(np.zeros(160_000, np.float32)).shape == (998, 128)  # 10 s: the frames of VGGish's rule
    assert (extractor.dims, extractor.frame_length, extractor.frame_shift, extractor.num_frames(399)) == (128, 400,
                                                                                                          160, 0)


def test_feature_id_names_the_recipe():
    assert get_extractor("kaldi-fbank-128").feature_id() == "kaldi-fbank-128-44212f8f"
    assert get_extractor("kaldi-fbank-128").feature_id("float16") != "kaldi-fbank-128-44212f8f"


@pytest.mark.parametrize("waveform, rate, message", [
    (np.zeros(16_000, np.float32), 44_100, "sample rate 44100 Hz, expected 16000 Hz"),
    (np.zeros(399, np.float32), 16_000, "too short: 399 samples"),
    (np.array([0.0] * 500 + [np.nan], np.float32), 16_000, "non-finite sample nan at index 500"),
])
def test_bad_input_is_refused(waveform, rate, message):
    with pytest.raises(AudiobenchError, match=message):
        fbank(waveform, rate)


@pytest.mark.parametrize("params, message", [
    (KaldiFbankParams(window_type="blackman"), "window_type 'blackman'"),
    (KaldiFbankParams(high_freq=9000.0), "do not fit below Nyquist"),
])
def test_parameters_that_torchaudio_would_refuse_are_refused(params, message):
    with pytest.raises(AudiobenchError, match=message):
        KaldiFbank(params)


@pytest.mark.slow
def test_featurize_kaldi_fbank_then_compare_on_it(tmp_path):
    shutil.copytree(RELEASE, tmp_path / "synth", ignore=shutil.ignore_patterns("features"))
    runner = CliRunner()
    out = runner.invoke(cli, ["featurize", "synth", "--root", str(tmp_path), "--features", "kaldi-fbank-128",
                              "--json"])
    assert out.exit_code == 0, out.output
    summary = json.loads(out.output)
    assert summary["feature_id"] == "kaldi-fbank-128-44212f8f" and [s["clips"] for s in summary["splits"]] == [4, 2, 2]
    train_file = tmp_path / "synth" / "features" / summary["feature_id"] / "train.h5"
    with h5py.File(train_file) as f:
        assert (f.attrs["extractor"], f.attrs["dims"], f["logmel"].shape[2]) == ("kaldi-fbank-128", 128, 128)
        assert f.attrs["padding_value"] == FLOOR and f.attrs["window_type"] == "hanning"
    assert LogmelDataset(train_file).padding_value == np.float32(FLOOR)

    # compare through its function (the command is this plus option parsing): one attention example keeps the
    # report's Fig. 5 (128 bands, the features' own hop) in the run and the test short.
    config = CompareConfig("synth", ("noatt-weak", "att-self"), trials=1, examples=1,
                           train=TrainOptions(epochs=1, width=0.0625, batch_size=4, device="cpu",
                                              feature_id=summary["feature_id"]))
    result = compare(config, root=tmp_path, out=tmp_path / "study", quiet=True)
    study = result.run_dir
    assert result.failures == [] and result.finished == 2 and (study / "report.md").is_file()
    [example] = (study / "attention").glob("*.npz")
    with np.load(example) as saved:
        assert saved["logmel"].shape[1] == 128 and float(saved["frame_seconds"]) == 0.01
        assert str(saved["features"]) == "kaldi-fbank-128"
    title = plot_clip_variants([load_attention(example)], tmp_path / "fig5.png").data["title"]
    assert "Kaldi fbank, 128 bands" in title and "log-mel" not in title  # Fig. 5 names the run's features
    with h5py.File(tmp_path / "synth" / "features" / summary["feature_id"] / "test.h5") as f:
        first = int(np.flatnonzero(f["strong"][()].any(axis=(1, 2)))[0])  # chosen by its labels, not a model
        assert example.name.startswith(f["clip_id"].asstr()[first] + "-")
    model = json.loads(next(study.rglob("model.json")).read_text())
    assert model["bands"] == 128 and model["extractor"]["name"] == "kaldi-fbank-128"

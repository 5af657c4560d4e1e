"""The VGGish log-mel recipe against an independent float64 implementation written from docs/features.md."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audiobench.core.errors import AudiobenchError
from audiobench.features.vggish import DEFAULT_PARAMS, FeatureParams, event_frames, feature_id, logmel, mel_matrix

SR = 16_000


def reference_logmel(x: np.ndarray) -> np.ndarray:
    """The recipe, step by step, in float64 with plain loops (deliberately not sharing code with audiobench)."""
    x = np.asarray(x, dtype=np.float64)
    n_frames = 1 + (len(x) - 400) // 160
    window = np.array([0.5 - 0.5 * math.cos(2 * math.pi * n / 400) for n in range(400)])  # periodic Hann
    frames = np.zeros((n_frames, 512))
    for t in range(n_frames):
        frames[t, :400] = x[160 * t:160 * t + 400] * window
    magnitude = np.abs(np.fft.rfft(frames, axis=1))  # 257 bins, magnitude not power

    def mel(f):
        return 1127.0 * math.log(1.0 + f / 700.0)

    bin_mel = [mel(k * 8000.0 / 256) for k in range(257)]
    lo, hi = mel(125.0), mel(7500.0)
    edges = [lo + (hi - lo) * i / 65 for i in range(66)]
    weights = np.zeros((257, 64))
    for band in range(64):
        left, center, right = edges[band], edges[band + 1], edges[band + 2]
        for k in range(1, 257):  # the DC bin (k = 0) keeps weight 0
            if left < bin_mel[k] <= center:
                weights[k, band] = (bin_mel[k] - left) / (center - left)
            elif center < bin_mel[k] < right:
                weights[k, band] = (right - bin_mel[k]) / (right - center)
    return np.log(magnitude @ weights + 0.01)


def _signal(kind: str) -> np.ndarray:
    rng = np.random.default_rng(7)
    t = np.arange(SR) / SR
    signals = {
        "noise": 0.1 * rng.standard_normal(SR),
        "sine-1k-full-scale": np.sin(2 * np.pi * 1000 * t),
        "sine-100-hz": 0.99 * np.sin(2 * np.pi * 100 * t),
        "sine-7k-near-top-band": np.sin(2 * np.pi * 7000 * t),
        "square-440-full-scale": np.sign(np.sin(2 * np.pi * 440 * t)),
        "loud-clipped-noise": np.clip(rng.standard_normal(SR), -1, 1),
        "near-silence": 1e-5 * rng.standard_normal(SR),
        "silence": np.zeros(SR),
        "dc": np.full(SR, 0.9),
        "odd-length-12345": rng.uniform(-1, 1, 12_345),
        "one-frame": rng.uniform(-1, 1, 400),
        "one-frame-and-159": rng.uniform(-1, 1, 559),
        # 25 s: several of logmel's blocks of frames, so a frame on either side of a block edge is checked
        "sweep-25-s": 0.8 * np.sin(2 * np.pi * (100 + 150 * np.arange(25 * SR) / SR) * np.arange(25 * SR) / SR),
    }
    return signals[kind].astype(np.float32)


@pytest.mark.parametrize("kind", ["noise", "sine-1k-full-scale", "sine-100-hz", "sine-7k-near-top-band",
                                  "square-440-full-scale", "loud-clipped-noise", "near-silence", "silence", "dc",
                                  "odd-length-12345", "one-frame", "one-frame-and-159", "sweep-25-s"])
def test_logmel_matches_an_independent_float64_implementation(kind):
    x = _signal(kind)
    ours = logmel(x, SR)
    assert ours.dtype == np.float32 and ours.shape == (1 + (len(x) - 400) // 160, 64)
    np.testing.assert_allclose(ours, reference_logmel(x), rtol=0, atol=1e-4)


def test_silence_is_log_of_the_offset():
    assert np.all(logmel(np.zeros(SR, dtype=np.float32)) == np.float32(np.log(0.01)))
    assert DEFAULT_PARAMS.padding_value == math.log(0.01)


@pytest.mark.parametrize("n", [400, 401, 559, 560, 719, 720, 16_000, 159_999, 160_000, 160_001])
def test_frame_count_has_no_centring_or_padding(n):
    expected = 1 + (n - 400) // 160
    assert logmel(np.zeros(n, dtype=np.float32)).shape == (expected, 64)
    assert DEFAULT_PARAMS.num_frames(n) == expected
    assert DEFAULT_PARAMS.num_frames(160_000) == 998  # a 10 s clip
    assert DEFAULT_PARAMS.num_frames(399) == 0


def test_accepts_a_one_channel_matrix_and_float64():
    x = _signal("noise")
    assert np.array_equal(logmel(x[None, :]), logmel(x))
    np.testing.assert_allclose(logmel(x.astype(np.float64)), logmel(x), atol=1e-5)


@pytest.mark.parametrize("waveform, rate, message", [
    (np.zeros(16_000, np.float32), 44_100, "44100 Hz"),
    (np.zeros((2, 16_000), np.float32), 16_000, "shape (2, 16000)"),
    (np.zeros(399, np.float32), 16_000, "399 samples"),
    (np.array([0.0] * 500 + [np.nan] * 10, np.float32), 16_000, "nan at index 500"),
    (np.array([0.0] * 500 + [np.inf], np.float32), 16_000, "inf at index 500"),
    (np.zeros(16_000, np.int16), 16_000, "int16"),
])
def test_bad_input_is_refused_with_the_value(waveform, rate, message):
    with pytest.raises(AudiobenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        logmel(waveform, rate)


def test_mel_filters_are_triangles_linear_in_mel_not_librosas():
    import librosa

    ours = mel_matrix()
    assert ours.shape == (257, 64) and np.all(ours[0] == 0)  # DC bin weight zero
    assert ours.max() <= 1.0 and np.all(ours >= 0)
    # Linear in mel: on a band's rising edge, weight / (bin mel - left edge) is constant.
    bin_mel = 1127 * np.log1p(np.linspace(0, 8000, 257) / 700)
    edges = np.linspace(1127 * np.log1p(125 / 700), 1127 * np.log1p(7500 / 700), 66)
    band = 40
    rising = (bin_mel > edges[band]) & (bin_mel <= edges[band + 1])
    slopes = ours[rising, band] / (bin_mel[rising] - edges[band])
    np.testing.assert_allclose(slopes, 1 / (edges[band + 1] - edges[band]), rtol=1e-12)
    # librosa's HTK filters put the same edges in Hz and draw the triangles linear in Hz: not the recipe.
    theirs = librosa.filters.mel(sr=SR, n_fft=512, n_mels=64, fmin=125, fmax=7500, htk=True, norm=None).T
    assert theirs.shape == ours.shape
    assert np.abs(theirs - ours).max() > 1e-3
    # Small weights, visible features: with librosa's filters the log-mel of noise misses the 1e-4 bar.
    frames = np.abs(np.fft.rfft(_signal("noise")[:4000].reshape(10, 400) * np.hanning(402)[1:-1], 512))
    assert np.abs(np.log(frames @ theirs + 0.01) - np.log(frames @ ours + 0.01)).max() > 1e-3


def test_feature_id_is_stable_and_names_the_recipe_and_dtype():
    fid = feature_id()
    assert fid.startswith("vggish-logmel-") and len(fid) == len("vggish-logmel-") + 8
    assert feature_id(FeatureParams()) == fid  # a hash of values, not of an object
    assert feature_id(dtype="float16") != fid
    assert feature_id(FeatureParams(mel_max_hz=8000.0)) != fid
    with pytest.raises(AudiobenchError, match="float64"):
        feature_id(dtype="float64")


def test_event_frames_follow_the_overlap_rule():
    # Frame t spans samples [160 t, 160 t + 400): onset 1.0 s (sample 16000) first overlaps frame 98.
    first, stop = event_frames([1.0, 0.0, 0.5, 9.99, 2.0], [2.5, 0.001, 0.5, 30.0, 1.0], 998)
    assert list(zip(first, stop)) == [(98, 250), (0, 1), (0, 0), (997, 998), (0, 0)]
    assert event_frames(0.0, 10.0, 500) == (0, 500)


def test_logmel_leaves_torch_threads_as_it_found_them():
    before = torch.get_num_threads()
    logmel(_signal("noise"))
    assert torch.get_num_threads() == before

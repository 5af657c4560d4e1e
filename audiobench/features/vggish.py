"""The VGGish log-mel front end, exactly (the recipe in docs/features.md).

Pretrained VGGish weights were trained on this input, so every constant below is VGGish's own, named once
with its source: ``vggish_params.py`` and ``mel_features.py`` of tensorflow/models, research/audioset/vggish.

>>> import numpy as np
>>> from audiobench.features.vggish import logmel
>>> logmel(np.zeros(160_000, dtype=np.float32)).shape   # 10 s at 16 kHz -> 998 frames of 64 bands
(998, 64)
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from audiobench.core.errors import AudiobenchError
from audiobench.features.base import (DTYPES, Extractor, FeatureDtype, check_dtype, check_waveform as _check_waveform,
                                      register_extractor, single_threaded_torch)

__all__ = ["DEFAULT_PARAMS", "DTYPES", "FeatureDtype", "FeatureParams", "VggishLogmel", "check_dtype",
           "check_waveform", "event_frames", "feature_id", "logmel", "mel_matrix"]


@dataclass(frozen=True)
class FeatureParams:
    """The VGGish log-mel recipe. Changing any field changes the feature id, hence the cache folder."""

    sample_rate: int = 16_000  # vggish_params.SAMPLE_RATE
    window_length: int = 400  # STFT_WINDOW_LENGTH_SECONDS 0.025 * 16 kHz (mel_features.log_mel_spectrogram rounds)
    hop_length: int = 160  # STFT_HOP_LENGTH_SECONDS 0.010 * 16 kHz
    fft_length: int = 512  # mel_features: 2 ** ceil(log2(window_length))
    num_mel_bins: int = 64  # vggish_params.NUM_MEL_BINS
    mel_min_hz: float = 125.0  # vggish_params.MEL_MIN_HZ
    mel_max_hz: float = 7500.0  # vggish_params.MEL_MAX_HZ
    log_offset: float = 0.01  # vggish_params.LOG_OFFSET: log(mel + 0.01), natural log
    window: str = "periodic_hann"  # mel_features.periodic_hann: 0.5 - 0.5 cos(2 pi n / N), n < N
    spectrum: str = "magnitude"  # mel_features.stft_magnitude: |rfft|, not power
    mel_scale: str = "htk"  # mel_features.hertz_to_mel: 1127 ln(1 + f / 700)

    @property
    def padding_value(self) -> float:
        """What a padded frame holds: ``log(0 + log_offset)``, the log-mel of digital silence."""
        return math.log(self.log_offset)

    def num_frames(self, samples: int) -> int:
        """Frames of a clip of ``samples`` samples: no centring, no padding (10 s -> 998); 0 when too short."""
        return VggishLogmel(self).num_frames(samples)


DEFAULT_PARAMS = FeatureParams()

# mel_features.hertz_to_mel: _MEL_HIGH_FREQUENCY_Q * ln(1 + f / _MEL_BREAK_FREQUENCY_HERTZ).
_MEL_HIGH_FREQUENCY_Q = 1127.0
_MEL_BREAK_FREQUENCY_HERTZ = 700.0
# Frames transformed per batch in `logmel`: a 10 s clip in one (fastest), bounded memory (12 MB of float64
# buffers) on long recordings.
_BLOCK_FRAMES = 1024


@register_extractor
class VggishLogmel(Extractor):
    """The default extractor: VGGish's log-mel, ``[frames, 64]``, padding ``ln(0.01)`` (see :func:`logmel`)."""

    name = "vggish-logmel"
    Params = FeatureParams

    @property
    def dims(self) -> int:
        return int(self.params.num_mel_bins)

    @property
    def padding_value(self) -> float:
        return self.params.padding_value

    @property
    def frame_length(self) -> int:
        return int(self.params.window_length)

    @property
    def frame_shift(self) -> int:
        return int(self.params.hop_length)

    def extract(self, waveform: np.ndarray) -> np.ndarray:
        return _logmel(waveform, self.params)


def feature_id(params: FeatureParams = DEFAULT_PARAMS, dtype: FeatureDtype = "float32") -> str:
    """Short stable name of a recipe and storage dtype, e.g. ``vggish-logmel-1a2b3c4d``: the cache folder."""
    return VggishLogmel(params).feature_id(dtype)


def hertz_to_mel(hertz: np.ndarray | float) -> np.ndarray:
    """HTK mel: ``1127 ln(1 + f / 700)``."""
    return _MEL_HIGH_FREQUENCY_Q * np.log1p(np.asarray(hertz, dtype=np.float64) / _MEL_BREAK_FREQUENCY_HERTZ)


@lru_cache(maxsize=8)
def mel_matrix(params: FeatureParams = DEFAULT_PARAMS) -> np.ndarray:
    """``[fft_length // 2 + 1, num_mel_bins]`` float64 weights, as VGGish's ``spectrogram_to_mel_matrix``.

    The triangles are linear **in mel**: each weight is a slope computed on the bins' mel values, between
    band edges spaced evenly in mel. librosa (even with ``htk=True``) builds triangles linear in Hz between
    the same edges, which gives different weights. The DC bin gets weight zero; no area normalisation.
    """
    n_bins = params.fft_length // 2 + 1
    nyquist = params.sample_rate / 2.0
    bins_mel = hertz_to_mel(np.linspace(0.0, nyquist, n_bins))
    edges = np.linspace(hertz_to_mel(params.mel_min_hz), hertz_to_mel(params.mel_max_hz), params.num_mel_bins + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel[:, None] - lower) / (center - lower)
    falling = (upper - bins_mel[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0  # VGGish zeroes the DC bin: it never contributes to any band
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=8)
def _kernel(params: FeatureParams) -> tuple[object, object, int, int]:
    """(periodic Hann window, float64 tensor; float32 mel weights of the bins that have any, tensor; first
    such bin; stop bin)."""
    import torch

    recipe = (params.window, params.spectrum, params.mel_scale)
    if recipe != ("periodic_hann", "magnitude", "htk"):
        raise AudiobenchError(f"unsupported recipe {recipe}: only VGGish's periodic_hann, magnitude, htk")
    n = np.arange(params.window_length, dtype=np.float64)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / params.window_length)
    weights = mel_matrix(params)
    used = np.flatnonzero(weights.any(axis=1))  # bins outside 125-7500 Hz weigh nothing: skip them
    lo, hi = int(used[0]), int(used[-1]) + 1
    return torch.from_numpy(window), torch.from_numpy(np.ascontiguousarray(weights[lo:hi], dtype=np.float32)), lo, hi


_buffers = threading.local()


def _padded_buffer(frames: int, fft_length: int) -> object:
    """A zeroed ``[frames, fft_length]`` float64 tensor, reused per thread (only its head is ever written)."""
    import torch

    buf = getattr(_buffers, "padded", None)
    if buf is None or buf.shape[0] < frames or buf.shape[1] != fft_length:
        buf = _buffers.padded = torch.zeros((frames, fft_length), dtype=torch.float64)
    return buf[:frames]


def check_waveform(waveform: np.ndarray, sample_rate: int, params: FeatureParams = DEFAULT_PARAMS) -> np.ndarray:
    """The 1-D samples of a mono float waveform, or an :class:`AudiobenchError` saying what is wrong."""
    return _check_waveform(waveform, sample_rate, expected_rate=params.sample_rate, frame_length=params.window_length)


def logmel(waveform: np.ndarray, sample_rate: int = 16_000, *, params: FeatureParams = DEFAULT_PARAMS) -> np.ndarray:
    """VGGish log-mel of a mono waveform: ``[1 + (n - 400) // 160, 64]`` float32, natural log.

    ``waveform`` holds floats in [-1, 1], shape ``[n]`` or ``[1, n]``, at 16 kHz. Raises
    :class:`AudiobenchError` for another sample rate, more than one channel, non-finite samples, or fewer
    than 400 samples.

    Windowing and the FFT run in float64: in float32 the FFT's rounding noise (about 1e-7 of the frame's
    norm, in every bin) becomes an error of several 1e-4 after ``log(mel + 0.01)`` in the quiet bands of a
    loud tone. Each magnitude is then exact enough in float32, so the mel product and the log are float32.
    Frames are transformed in blocks of 1024, which bounds memory on long recordings.
    """
    return _logmel(check_waveform(waveform, sample_rate, params), params)


def _logmel(x: np.ndarray, params: FeatureParams) -> np.ndarray:
    """:func:`logmel` of a checked 1-D waveform."""
    win, hop = params.window_length, params.hop_length
    n_frames = params.num_frames(x.size)
    out = np.empty((n_frames, params.num_mel_bins), dtype=np.float32)
    with single_threaded_torch() as torch:
        window, weights, lo, hi = _kernel(params)
        samples = torch.from_numpy(np.ascontiguousarray(x))
        mel = torch.from_numpy(out)
        for start in range(0, n_frames, _BLOCK_FRAMES):
            stop = min(start + _BLOCK_FRAMES, n_frames)
            # The block's samples in float64, then [frames, win] as a strided view of them: converting first
            # is 3 times faster than letting the window product promote a strided float32 view.
            block = samples[start * hop:(stop - 1) * hop + win].to(torch.float64).unfold(0, win, hop)
            padded = _padded_buffer(stop - start, params.fft_length)  # columns win: stay 0 = rfft's zero padding
            torch.mul(block, window, out=padded[:, :win])
            spectrum = torch.fft.rfft(padded, dim=1).numpy()[:, lo:hi]
            magnitude = np.abs(spectrum.astype(np.complex64))  # numpy's complex abs is 10 times torch's here
            torch.mm(torch.from_numpy(magnitude), weights, out=mel[start:stop])
    out += np.float32(params.log_offset)
    np.log(out, out=out)
    return out


def event_frames(onset: np.ndarray | float, offset: np.ndarray | float, n_frames: np.ndarray | int,
                 params: FeatureParams = DEFAULT_PARAMS) -> tuple[np.ndarray, np.ndarray]:
    """First and stop frame (half-open) labelled by events ``[onset, offset)`` seconds, per event.

    Frame ``t`` covers samples ``[160 t, 160 t + 400)``; it is labelled when that span overlaps
    ``[onset, offset)``, i.e. ``160 t < offset * sr`` and ``160 t + 400 > onset * sr``. A zero-length event
    (``onset == offset``, "present, not localised") labels no frame; frames past ``n_frames`` are padding and
    are never labelled. (:meth:`audiobench.features.base.Extractor.event_frames`, for VGGish's frames.)
    """
    return VggishLogmel(params).event_frames(onset, offset, n_frames)

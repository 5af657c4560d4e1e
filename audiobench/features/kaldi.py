"""The 128-band Kaldi log-mel filter bank that AST and EAT are trained on (docs/features.md, "Kaldi fbank").

Those models compute their input with ``torchaudio.compliance.kaldi.fbank`` (AST's ``src/dataloader.py``, EAT's
``feature_extract``): the waveform in [-1, 1] minus its mean, then ``fbank(waveform, htk_compat=True,
sample_frequency=16000, use_energy=False, window_type='hanning', num_mel_bins=128, dither=0.0,
frame_shift=10)`` with torchaudio's other defaults (25 ms frames, pre-emphasis 0.97, DC offset removed per
frame, 512-point FFT, power spectrum, bands from 20 Hz to Nyquist, snip edges, ``log(max(x, eps))``).
torchaudio has no build for every torch, so this is the same computation in torch, field by field in
:class:`KaldiFbankParams`; ``tests/test_kaldi.py`` checks it against lhotse's implementation.

With 128 bands at 16 kHz and a 512-point FFT the lowest triangles are narrower than one FFT bin: Kaldi's own
code refuses such a bank, torchaudio keeps those bands and they hold the log floor, ``ln(2**-23) = -15.94``
(as every band of digital silence does). This module does as torchaudio does.

>>> import numpy as np
>>> fbank(np.zeros(160_000, dtype=np.float32)).shape   # 10 s at 16 kHz -> 998 frames of 128 bands
(998, 128)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from audiobench.core.errors import AudiobenchError
from audiobench.features.base import Extractor, register_extractor, single_threaded_torch

WINDOWS = ("hanning", "povey", "hamming")
_BLOCK_FRAMES = 1024  # frames per FFT batch: a 10 s clip in one, bounded memory on long recordings


@dataclass(frozen=True)
class KaldiFbankParams:
    """The recipe, with torchaudio.compliance.kaldi.fbank's name for each field in the comment."""

    sample_rate: int = 16_000  # sample_frequency
    frame_length: int = 400  # frame_length = 25 ms
    frame_shift: int = 160  # frame_shift = 10 ms
    fft_length: int = 512  # round_to_power_of_two = True: 400 -> 512
    num_mel_bins: int = 128  # num_mel_bins (AST, EAT, BEATs)
    low_freq: float = 20.0  # low_freq
    high_freq: float = 0.0  # high_freq; <= 0 counts down from Nyquist (0: up to 8 kHz)
    preemphasis: float = 0.97  # preemphasis_coefficient
    remove_dc_offset: bool = True  # remove_dc_offset: each frame minus its mean, before pre-emphasis
    window_type: str = "hanning"  # window_type: AST and EAT pass 'hanning' (symmetric Hann); Kaldi's default is povey
    waveform_scale: float = 1.0  # AST and EAT feed [-1, 1]; BEATs multiplies by 2 ** 15 (and uses povey)
    subtract_waveform_mean: bool = True  # AST and EAT subtract the clip's mean first
    log_floor: float = 1.1920928955078125e-07  # log(max(mel, eps)), eps = torch.finfo(float32).eps = 2 ** -23


DEFAULT_PARAMS = KaldiFbankParams()


@register_extractor
class KaldiFbank(Extractor):
    """``kaldi-fbank-128``: AST's and EAT's log-mel filter bank, ``[frames, 128]``, padding ``ln(2 ** -23)``."""

    name = "kaldi-fbank-128"
    Params = KaldiFbankParams

    def __init__(self, params: KaldiFbankParams | None = None) -> None:
        super().__init__(params)
        p = self.params
        if p.window_type not in WINDOWS:
            raise AudiobenchError(f"{self.name}: window_type {p.window_type!r} (choose from {', '.join(WINDOWS)})")
        if p.fft_length < p.frame_length or p.fft_length % 2:
            raise AudiobenchError(f"{self.name}: fft_length {p.fft_length} must be even and at least "
                                  f"frame_length {p.frame_length}")
        nyquist = p.sample_rate / 2
        high = p.high_freq if p.high_freq > 0 else nyquist + p.high_freq
        if not (0 <= p.low_freq < nyquist and 0 < high <= nyquist and p.low_freq < high) or p.num_mel_bins < 4:
            raise AudiobenchError(f"{self.name}: bands {p.low_freq:g}-{high:g} Hz (num_mel_bins {p.num_mel_bins}) "
                                  f"do not fit below Nyquist {nyquist:g} Hz")
        if not p.log_floor > 0:
            raise AudiobenchError(f"{self.name}: log_floor must be positive, got {p.log_floor}")

    @property
    def dims(self) -> int:
        return int(self.params.num_mel_bins)

    @property
    def padding_value(self) -> float:
        """Digital silence: every frame is 0, so every band holds the floor."""
        return math.log(self.params.log_floor)

    @property
    def frame_local(self) -> bool:
        """Not with the waveform's mean subtracted first: every frame depends on the whole recording."""
        return not self.params.subtract_waveform_mean

    def extract(self, waveform: np.ndarray) -> np.ndarray:
        return _fbank(waveform, self.params)


def fbank(waveform: np.ndarray, sample_rate: int = 16_000, *, params: KaldiFbankParams = DEFAULT_PARAMS) -> np.ndarray:
    """The log-mel filter bank of a mono waveform in [-1, 1]: ``[1 + (n - 400) // 160, 128]`` float32.

    Raises :class:`AudiobenchError` for another sample rate, more than one channel, non-finite samples, or
    fewer than 400 samples.
    """
    extractor = KaldiFbank(params)
    return extractor.extract(extractor.check_waveform(waveform, sample_rate))


@lru_cache(maxsize=8)
def mel_banks(params: KaldiFbankParams = DEFAULT_PARAMS) -> np.ndarray:
    """``[fft_length // 2 + 1, num_mel_bins]`` float32 weights, exactly as torchaudio's ``get_mel_banks``.

    ``num_mel_bins + 2`` edges evenly spaced in mel (``1127 ln(1 + f / 700)``) from ``low_freq`` to
    ``high_freq``; band b rises from edge b to b + 1 and falls to b + 2, linearly in mel, peak 1, no
    normalisation. The Nyquist bin weighs nothing (torchaudio pads the bank with a zero column for it). Bands
    narrower than one FFT bin hold no weight at all and so stay at the log floor. The arithmetic is
    torchaudio's own (float32 tensors, in its order), so the weights are the ones AST and EAT saw.
    """
    import torch

    p = params
    nyquist = 0.5 * p.sample_rate
    high = p.high_freq if p.high_freq > 0 else p.high_freq + nyquist
    bin_width = p.sample_rate / p.fft_length
    low_mel, high_mel = 1127.0 * math.log(1.0 + p.low_freq / 700.0), 1127.0 * math.log(1.0 + high / 700.0)
    delta = (high_mel - low_mel) / (p.num_mel_bins + 1)
    band = torch.arange(p.num_mel_bins).unsqueeze(1)
    left = low_mel + band * delta
    center = low_mel + (band + 1.0) * delta
    right = low_mel + (band + 2.0) * delta
    bins_mel = (1127.0 * (1.0 + (bin_width * torch.arange(p.fft_length / 2)) / 700.0).log()).unsqueeze(0)
    up = (bins_mel - left) / (center - left)
    down = (right - bins_mel) / (right - center)
    bank = torch.nn.functional.pad(torch.max(torch.zeros(1), torch.min(up, down)), (0, 1))  # [bins, fft // 2 + 1]
    weights = bank.T.numpy()
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=8)
def window(params: KaldiFbankParams = DEFAULT_PARAMS) -> np.ndarray:
    """The analysis window, float32 ``[frame_length]``, as torchaudio's ``_feature_window_function`` makes it."""
    import torch

    n = params.frame_length
    if params.window_type == "hamming":
        w = torch.hamming_window(n, periodic=False, alpha=0.54, beta=0.46)
    else:
        w = torch.hann_window(n, periodic=False)  # symmetric Hann: 0.5 - 0.5 cos(2 pi i / (n - 1))
        if params.window_type == "povey":
            w = w.pow(0.85)
    out = w.numpy()
    out.setflags(write=False)
    return out


def _fbank(x: np.ndarray, params: KaldiFbankParams) -> np.ndarray:
    """:func:`fbank` of a checked 1-D waveform, step by step as torchaudio computes it, in float32.

    float32, in torchaudio's order of operations, on purpose: in a band some 100 dB below its frame's
    loudest (a low band while a high tone plays), float32 rounding of the window and the FFT decides the
    value, and torchaudio's float32 is what AST and EAT were trained on. A float64 computation differs from
    it there by up to 0.04 (on a sweep); where float32 determines the value, by 1e-5 or less.
    """
    p = params
    win, hop = p.frame_length, p.frame_shift
    n_frames = 1 + (x.size - win) // hop
    out = np.empty((n_frames, p.num_mel_bins), dtype=np.float32)
    with single_threaded_torch() as torch:
        window_t = torch.from_numpy(np.array(window(p)))
        bank = torch.from_numpy(np.array(mel_banks(p))).T  # [bins, fft // 2 + 1]: torchaudio multiplies by bank.T
        floor = torch.tensor(p.log_floor, dtype=torch.float32)
        samples = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        if p.waveform_scale != 1.0:
            samples = samples * p.waveform_scale
        if p.subtract_waveform_mean:
            samples = samples - samples.mean()
        c = p.preemphasis
        for start in range(0, n_frames, _BLOCK_FRAMES):
            stop = min(start + _BLOCK_FRAMES, n_frames)
            frames = samples[start * hop:(stop - 1) * hop + win].unfold(0, win, hop)  # [f, win] view
            if p.remove_dc_offset:
                frames = frames - torch.mean(frames, dim=1).unsqueeze(1)
            padded = torch.zeros((stop - start, p.fft_length), dtype=torch.float32)  # columns win: stay 0
            # pre-emphasis y[j] = x[j] - c x[j - 1], with the first sample replicated: y[0] = x[0] - c x[0]
            # (the same float operations as torchaudio's replicate-padded form, without building the copy)
            torch.sub(frames[:, 1:], c * frames[:, :-1], out=padded[:, 1:win])
            torch.sub(frames[:, 0], c * frames[:, 0], out=padded[:, 0])
            padded[:, :win] *= window_t
            spectrum = torch.fft.rfft(padded).numpy()
            power = np.square(np.abs(spectrum))  # |X| then squared, as torchaudio; numpy's complex abs is faster
            out[start:stop] = torch.max(torch.mm(torch.from_numpy(power), bank.T), floor).log().numpy()
    return out

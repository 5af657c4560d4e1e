"""Small vectorised building blocks for the synthetic sounds: oscillators, filters, envelopes, noise.

Everything works on float64 numpy arrays at the dataset's sample rate (16 kHz) and takes an explicit
``numpy.random.Generator``, so a sound is a pure function of its seed. No per-sample Python loops: a
10-second clip must render in a few milliseconds (the target: ≥ 100× real time per core).
"""
from __future__ import annotations

import numpy as np
from scipy import signal

from audiobench.core.layout import AUDIO_RATE as SR  # Hz; the rate of every file under audio/
NYQUIST = SR / 2
TWO_PI = 2.0 * np.pi


def phase(freq: float | np.ndarray, n: int) -> np.ndarray:
    """Instantaneous phase (radians) of an oscillator whose frequency (Hz) is a constant or a per-sample array."""
    if np.isscalar(freq):
        return TWO_PI * float(freq) * np.arange(n) / SR
    return TWO_PI * np.cumsum(freq[:n]) / SR


def square(ph: np.ndarray, duty: float = 0.5) -> np.ndarray:
    return np.where(np.mod(ph / TWO_PI, 1.0) < duty, 1.0, -1.0)


def saw(ph: np.ndarray) -> np.ndarray:
    return 2.0 * np.mod(ph / TWO_PI, 1.0) - 1.0


def triangle(ph: np.ndarray) -> np.ndarray:
    """Triangle in [-1, 1] with its minimum at phase 0."""
    return 2.0 * np.abs(saw(ph)) - 1.0


def harmonic(ph: np.ndarray, amps: tuple[float, ...] | list[float], f0_max: float = 0.0) -> np.ndarray:
    """Sum of sines ``amps[k] * sin((k+1) ph)``, dropping partials that would pass 7.8 kHz when ``f0_max`` is given."""
    out = np.zeros_like(ph)
    for k, a in enumerate(amps, start=1):
        if f0_max and k * f0_max > 0.975 * NYQUIST:
            break
        if a:
            out += a * np.sin(k * ph)
    return out


def bl_square(ph: np.ndarray, f0_max: float, partials: int = 9) -> np.ndarray:
    """A square wave built from its odd harmonics up to 7.8 kHz (no aliasing when the pitch sweeps)."""
    return harmonic(ph, [1.0 / k if k % 2 else 0.0 for k in range(1, partials + 1)], f0_max)


def bl_saw(ph: np.ndarray, f0_max: float, partials: int = 12) -> np.ndarray:
    """A sawtooth built from its harmonics up to 7.8 kHz."""
    return harmonic(ph, [1.0 / k for k in range(1, partials + 1)], f0_max)


def pulse_train(ph: np.ndarray, sharpness: float) -> np.ndarray:
    """Smooth periodic pulses (one per cycle, zero mean); higher ``sharpness`` gives narrower, brighter pulses."""
    p = np.maximum(np.cos(ph), 0.0) ** sharpness
    return p - p.mean()


def smooth_random(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """A slowly varying random curve (unit-variance knots ``rate`` times a second, linearly joined)."""
    knots = max(2, int(np.ceil(n / SR * rate)) + 2)
    return np.interp(np.arange(n), np.linspace(0, n, knots), rng.standard_normal(knots))


def _clamp_band(lo: float | None, hi: float | None) -> tuple[float | None, float | None]:
    if lo is not None:
        lo = min(max(lo, 10.0), 0.95 * NYQUIST)
    if hi is not None:
        hi = min(max(hi, 20.0), 0.95 * NYQUIST)
    return lo, hi


def bandpass(x: np.ndarray, lo: float, hi: float, order: int = 2) -> np.ndarray:
    lo, hi = _clamp_band(lo, hi)
    if lo >= hi:
        lo = 0.5 * hi
    return signal.sosfilt(signal.butter(order, [lo, hi], btype="bandpass", fs=SR, output="sos"), x)


def lowpass(x: np.ndarray, hz: float, order: int = 2) -> np.ndarray:
    _, hz = _clamp_band(None, hz)
    return signal.sosfilt(signal.butter(order, hz, btype="lowpass", fs=SR, output="sos"), x)


def highpass(x: np.ndarray, hz: float, order: int = 2) -> np.ndarray:
    hz, _ = _clamp_band(hz, None)
    return signal.sosfilt(signal.butter(order, hz, btype="highpass", fs=SR, output="sos"), x)


def resonator(x: np.ndarray, freq: float, decay: float) -> np.ndarray:
    """Two-pole resonance at ``freq`` Hz whose impulse response decays by 1/e in ``decay`` seconds."""
    r = np.exp(-1.0 / (decay * SR))
    w = TWO_PI * min(freq, 0.95 * NYQUIST) / SR
    return signal.lfilter([1.0 - r], [1.0, -2.0 * r * np.cos(w), r * r], x)


def formants(x: np.ndarray, centres: tuple[float, ...], width: float) -> np.ndarray:
    """Parallel resonances (bandwidth ``width`` × centre) summed with falling weights: a crude vocal tract."""
    out = np.zeros_like(x)
    for k, fc in enumerate(centres):
        out += resonator(x, fc, 1.0 / (np.pi * width * fc)) / (1 + k)
    return out


def impulses(n: int, times: np.ndarray, amps: np.ndarray | float = 1.0) -> np.ndarray:
    """Unit impulses at ``times`` (seconds) inside ``n`` samples."""
    out = np.zeros(n)
    idx = np.round(np.asarray(times) * SR).astype(int)
    keep = (idx >= 0) & (idx < n)
    np.add.at(out, idx[keep], np.broadcast_to(amps, idx.shape)[keep])
    return out


def gate(n: int, on: float, off: float, ramp: float = 0.004, offset: float = 0.0) -> np.ndarray:
    """On/off envelope: ``on`` seconds of 1, ``off`` seconds of 0, repeated, starting on; edges ramped."""
    pos = np.mod(np.arange(n) / SR + offset, on + off)
    return np.clip(np.minimum(pos, on - pos) / ramp, 0.0, 1.0)


def fade(x: np.ndarray, seconds: float = 0.005) -> np.ndarray:
    """Raised-cosine fade-in and fade-out (in place), so an event starts and stops without a click."""
    k = min(int(seconds * SR), len(x) // 2)
    if k > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(k) / k)
        x[:k] *= ramp
        x[len(x) - k:] *= ramp[::-1]
    return x


def attack_release(n: int, attack: float, release: float) -> np.ndarray:
    """Linear rise over ``attack`` seconds, flat, linear fall over ``release`` seconds."""
    t = np.arange(n) / SR
    dur = n / SR
    return np.clip(np.minimum(t / max(attack, 1e-4), (dur - t) / max(release, 1e-4)), 0.0, 1.0)


# Pink-noise filter (Paul Kellet's "economy" design): about -3 dB per octave across the audio band.
_PINK_B = (0.049922035, -0.095993537, 0.050612699, -0.004408786)
_PINK_A = (1.0, -2.494956002, 2.017265875, -0.522189400)


def coloured_noise(rng: np.random.Generator, n: int, slope: float) -> np.ndarray:
    """Noise whose power falls roughly as ``1 / f**slope`` (0 white, 1 pink, 2 brown), unit RMS.

    White noise through IIR filters (a pink filter, a leaky integrator for brown) blended by ``slope``:
    a few milliseconds for any length, where an FFT of an awkward (prime) length takes tens.
    """
    white = rng.standard_normal(n)
    pink = unit_rms(signal.lfilter(_PINK_B, _PINK_A, white))
    if slope <= 1.0:
        x = (1.0 - slope) * unit_rms(white) + slope * pink
    else:
        leak = np.exp(-TWO_PI * 20.0 / SR)  # 1/f^2 above 20 Hz
        brown = unit_rms(signal.lfilter([1.0], [1.0, -leak], white))
        x = (2.0 - min(slope, 2.0)) * pink + (min(slope, 2.0) - 1.0) * brown
    return unit_rms(x)


def unit_rms(x: np.ndarray) -> np.ndarray:
    rms = np.sqrt(np.mean(x * x))
    return x / rms if rms > 0 else x

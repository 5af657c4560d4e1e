"""Unlabelled sounds and the background bed of the synthetic dataset.

Distractors are drawn from classes outside the label set and placed like target events, at the same SNRs
and with short and long durations alike, so that "something loud happens here" or "the clip is loud all
along" says nothing about which labelled class is present. Some are tonal (music) and some impulsive
(knocks), so tonality or impulsiveness alone does not give a target away either.
"""
from __future__ import annotations

import numpy as np

from audiobench.data.synth.dsp import (
    SR, TWO_PI, bandpass, coloured_noise, formants, harmonic, highpass, impulses, lowpass, phase, pulse_train,
    resonator, saw, smooth_random, unit_rms,
)
from audiobench.data.synth.sound import SoundClass

Rng = np.random.Generator

# Vowel formants (Hz), roughly /a/, /e/, /i/, /o/, /u/ of an adult voice.
_VOWELS = ((730.0, 1090.0, 2440.0), (530.0, 1840.0, 2480.0), (300.0, 2200.0, 3000.0),
           (570.0, 840.0, 2410.0), (320.0, 950.0, 2200.0))


def _onsets(rng: Rng, n: int, unit: tuple[float, float], gap: tuple[float, float]) -> list[tuple[int, int]]:
    """(start, length) in samples of units laid end to end with gaps, the first at 0, all inside ``n``."""
    out, at = [], 0
    while at < n:
        length = min(int(rng.uniform(*unit) * SR), n - at)
        out.append((at, length))
        at += length + int(rng.uniform(*gap) * SR)
    return out


def dog_bark(rng: Rng, n: int) -> np.ndarray:
    """Barks of 0.08-0.2 s: a falling pitch (350-650 Hz) through formants, with noise; one to a few in a row."""
    x = np.zeros(n)
    f_base = rng.uniform(350.0, 650.0)
    centres = (rng.uniform(500.0, 800.0), rng.uniform(1100.0, 1600.0), rng.uniform(2200.0, 3000.0))
    for at, length in _onsets(rng, n, (0.08, 0.2), (0.15, 0.4)):
        fall = f_base * np.linspace(1.2, 0.8, length)
        src = saw(phase(fall, length)) + 0.5 * rng.standard_normal(length)
        x[at:at + length] = formants(src, centres, 0.4) * np.hanning(length)
    return x


def babble(rng: Rng, n: int) -> np.ndarray:
    """Speech-like babble: one to three talkers, syllables at about 4 a second, vowels gliding into each other."""
    x = np.zeros(n)
    for _ in range(rng.integers(1, 4)):
        f0 = rng.uniform(95.0, 240.0) * (1.0 + 0.12 * smooth_random(rng, n, 3.0))
        src = pulse_train(phase(f0, n), 10.0)
        a, b = (_VOWELS[i] for i in rng.choice(len(_VOWELS), size=2, replace=False))
        mix = 0.5 + 0.5 * np.tanh(2.0 * smooth_random(rng, n, 5.0))
        voiced = mix * formants(src, a, 0.25) + (1.0 - mix) * formants(src, b, 0.25)
        syllables = np.maximum(smooth_random(rng, n, 8.0), 0.0) ** 0.7
        fricative = 0.15 * highpass(rng.standard_normal(n), 3500.0) * np.maximum(-smooth_random(rng, n, 6.0) - 0.8, 0)
        x += unit_rms(voiced * syllables) + fricative
    return x


def knocks(rng: Rng, n: int) -> np.ndarray:
    """Knocks on a door or table: 3-7 per second, a wooden resonance (150-400 Hz) and a click."""
    rate = rng.uniform(3.0, 7.0)
    times = np.arange(0.005, n / SR, 1.0 / rate)
    hits = impulses(n, times + rng.uniform(0.0, 0.02, size=times.size), rng.uniform(0.6, 1.0, size=times.size))
    return resonator(hits, rng.uniform(150.0, 400.0), 0.03) + 0.05 * highpass(hits, 3000.0)


def birdsong(rng: Rng, n: int) -> np.ndarray:
    """Phrases of fast chirps (30-120 ms sweeps between 2 and 7 kHz), several a second."""
    x = np.zeros(n)
    top, bottom = rng.uniform(4000.0, 7000.0), rng.uniform(2000.0, 3500.0)
    up = rng.random() < 0.3
    for at, length in _onsets(rng, n, (0.03, 0.12), (0.04, 0.2)):
        sweep = np.linspace(bottom, top, length) if up else np.linspace(top, bottom, length)
        x[at:at + length] = np.sin(phase(sweep, length)) * np.hanning(length)
    return x


def wind(rng: Rng, n: int) -> np.ndarray:
    """Gusts: low-passed noise (cut-off 300-1200 Hz) swelling and fading every second or two."""
    gusts = np.exp(0.8 * smooth_random(rng, n, rng.uniform(0.3, 1.0)))
    return lowpass(coloured_noise(rng, n, 1.0), rng.uniform(300.0, 1200.0)) * gusts


def music(rng: Rng, n: int) -> np.ndarray:
    """A plucked or sustained melody: notes of 0.12-0.5 s on a pentatonic scale between 200 and 1000 Hz."""
    x = np.zeros(n)
    root = rng.uniform(200.0, 400.0)
    scale = root * 2.0 ** (np.array([0, 2, 4, 7, 9, 12, 14, 16, 19, 21]) / 12.0)
    pluck = rng.random() < 0.5
    amps = (1.0, 0.5, 0.3, 0.15)
    for at, length in _onsets(rng, n, (0.12, 0.5), (0.0, 0.1)):
        f = float(rng.choice(scale))
        env = np.exp(-np.arange(length) / (0.12 * SR)) if pluck else np.hanning(length)
        x[at:at + length] = harmonic(phase(f, length) + rng.uniform(0, TWO_PI), amps, f) * env
    return x


def fan(rng: Rng, n: int) -> np.ndarray:
    """A fan or air conditioner: steady broadband whoosh with a blade-rate hum (40-120 Hz) and its harmonics."""
    blade = rng.uniform(40.0, 120.0)
    hum = harmonic(phase(blade, n), (1.0, 0.6, 0.4, 0.3, 0.2, 0.1))
    return unit_rms(lowpass(coloured_noise(rng, n, 0.8), rng.uniform(1500.0, 4000.0))) + 0.5 * unit_rms(hum)


def door_slam(rng: Rng, n: int) -> np.ndarray:
    """A slam or thud: a loud broadband hit decaying through a low body resonance, sometimes a rattle after."""
    hit = impulses(n, np.array([0.002]), 1.0)
    body = resonator(hit, rng.uniform(60.0, 200.0), rng.uniform(0.05, 0.15))
    crack = highpass(hit, 1500.0) * 0.3 + 0.3 * lowpass(rng.standard_normal(n), 3000.0) * np.exp(
        -np.arange(n) / (0.03 * SR))
    rattle = 0.1 * bandpass(rng.standard_normal(n), 2000.0, 5000.0) * np.exp(-np.arange(n) / (0.2 * SR))
    return unit_rms(body) + crack + rattle


DISTRACTORS: tuple[SoundClass, ...] = tuple(
    SoundClass("", name, "short" if hi <= 1.25 else "long" if lo >= 4.0 else "medium", lo, hi, fn,
               (fn.__doc__ or "").strip())
    for name, lo, hi, fn in (
        ("dog bark", 0.2, 2.0, dog_bark),
        ("speech babble", 1.5, 10.0, babble),
        ("knocks", 0.25, 1.5, knocks),
        ("birdsong", 0.3, 4.0, birdsong),
        ("wind", 4.0, 10.0, wind),
        ("music", 1.0, 10.0, music),
        ("fan", 5.0, 10.0, fan),
        ("door slam", 0.2, 0.8, door_slam),
    )
)


def background(rng: Rng, n: int) -> np.ndarray:
    """The bed under every clip, unit RMS: coloured noise (white to brown), often mains hum, a slow level wobble."""
    x = coloured_noise(rng, n, rng.uniform(0.3, 2.0))
    if rng.random() < 0.3:
        mains = 50.0 if rng.random() < 0.5 else 60.0
        x += 10.0 ** (rng.uniform(-20.0, -8.0) / 20.0) * unit_rms(harmonic(phase(mains, n), (1.0, 0.5, 0.3, 0.2)))
    wobble = 10.0 ** (rng.uniform(1.0, 3.0) * smooth_random(rng, n, rng.uniform(0.2, 1.0)) / 20.0)
    return unit_rms(x * wobble)

"""The 17 labelled classes of the synthetic dataset, modelled on SL-DCASE-17's warning and vehicle sounds.

MIDs and names are AudioSet's, in SL-DCASE-17's order, so a model trained on ``synth`` has the
same output layout as one trained on SL-DCASE-17. Each renderer draws its own parameters (pitch, sweep
rate, pulse rate, ...) from the generator, so two events of a class differ the way two recordings do,
while the class keeps its signature (a sweep rate and range, a pulse pattern, a firing rate).
Duration bounds are in seconds; see docs/datasets.md for the table.
"""
from __future__ import annotations

import numpy as np

from audiobench.data.synth.dsp import (
    SR, TWO_PI, attack_release, bandpass, bl_saw, bl_square, coloured_noise, formants, gate, harmonic, highpass,
    impulses, lowpass, phase, pulse_train, resonator, saw, smooth_random, square, triangle, unit_rms,
)
from audiobench.data.synth.sound import SoundClass

Rng = np.random.Generator


def _t(n: int) -> np.ndarray:
    return np.arange(n) / SR


# -- horns, alarms, beeps ----------------------------------------------------------------------------------
def train_horn(rng: Rng, n: int) -> np.ndarray:
    """A sustained three-note chord (a triad, as multi-chime horns play), bright sawtooth timbre."""
    base = rng.uniform(210.0, 320.0)
    chord = [(1.0, 1.26, 1.5), (1.0, 1.19, 1.5), (1.0, 1.33, 1.68), (1.0, 1.26, 1.68)][rng.integers(4)]
    wobble = 1.0 + 0.003 * smooth_random(rng, n, 3.0)
    x = sum(saw(phase(base * r * wobble * rng.uniform(0.996, 1.004), n) + rng.uniform(0, TWO_PI)) for r in chord)
    return lowpass(x, rng.uniform(2500.0, 4000.0)) * attack_release(n, 0.06, 0.1)


def air_horn(rng: Rng, n: int) -> np.ndarray:
    """A short two-note blast: reedy pulse waves a major third apart, with an air hiss."""
    base = rng.uniform(300.0, 430.0)
    ratio = rng.uniform(1.24, 1.34)
    duty = rng.uniform(0.25, 0.45)
    x = square(phase(base, n), duty) + square(phase(base * ratio, n) + 1.0, duty)
    x = bandpass(x, 200.0, rng.uniform(4000.0, 6000.0)) + 0.15 * highpass(rng.standard_normal(n), 2500.0)
    return x * attack_release(n, 0.015, 0.04)


def car_alarm(rng: Rng, n: int) -> np.ndarray:
    """Electronic alarm cycling through a pattern: two alternating tones, or a fast rising warble."""
    if rng.random() < 0.5:
        f1 = rng.uniform(850.0, 1300.0)
        f2 = f1 * rng.uniform(1.3, 1.6)
        step = rng.uniform(0.1, 0.25)
        freq = np.where(gate(n, step, step, ramp=1e-6) > 0.5, f1, f2)
    else:
        lo, hi = rng.uniform(700.0, 1000.0), rng.uniform(1900.0, 2600.0)
        rate = rng.uniform(6.0, 11.0)
        freq = lo + (hi - lo) * (0.5 + 0.5 * saw(phase(rate, n)))
    return bl_square(phase(freq, n), float(freq.max()))


def reversing_beeps(rng: Rng, n: int) -> np.ndarray:
    """A burst of short, nearly pure beeps around 1 kHz with gaps, starting and ending on a beep."""
    f = rng.uniform(900.0, 1300.0)
    on, off = rng.uniform(0.07, 0.15), rng.uniform(0.07, 0.15)
    beeps = max(1, round((n / SR + off) / (on + off)))
    stretch = n / SR / (beeps * on + (beeps - 1) * off)  # so that the last beep ends the event
    return harmonic(phase(f, n), (1.0, 0.0, 0.2)) * gate(n, on * stretch, off * stretch)


# -- sirens (FM sweeps) ------------------------------------------------------------------------------------
def _sweep(rng: Rng, n: int, lo: float, hi: float, rate: float, shape: str) -> np.ndarray:
    """Per-sample siren frequency between ``lo`` and ``hi`` Hz, cycling ``rate`` times a second."""
    ph = phase(rate, n) + rng.uniform(0, TWO_PI)
    if shape == "sine":  # wail
        pos = 0.5 - 0.5 * np.cos(ph)
    elif shape == "up":  # yelp: fast rise, snap back
        pos = 0.5 + 0.5 * saw(ph)
    elif shape == "rotor":  # mechanical: lingers near top speed, dips briefly
        pos = (0.5 + 0.5 * triangle(ph)) ** 0.6
    else:
        raise ValueError(shape)
    return lo + (hi - lo) * pos


def ambulance(rng: Rng, n: int) -> np.ndarray:
    """Hi-lo two-tone (about half a second per tone), or a yelp of 2.5-4 upward sweeps a second."""
    if rng.random() < 0.5:
        f1 = rng.uniform(420.0, 600.0)
        hold = rng.uniform(0.4, 0.65)
        freq = np.where(gate(n, hold, hold, ramp=1e-6) > 0.5, f1 * rng.uniform(1.25, 1.35), f1)
    else:
        freq = _sweep(rng, n, rng.uniform(550.0, 700.0), rng.uniform(1300.0, 1600.0), rng.uniform(2.5, 4.0), "up")
    return lowpass(bl_square(phase(freq, n), float(freq.max())), 3500.0) * attack_release(n, 0.05, 0.05)


def police_car(rng: Rng, n: int) -> np.ndarray:
    """Wail: a slow sine sweep (0.25-0.45 Hz) over 700-1600 Hz, sometimes switching to a fast yelp (6-9 Hz)."""
    lo, hi = rng.uniform(650.0, 800.0), rng.uniform(1400.0, 1700.0)
    freq = _sweep(rng, n, lo, hi, rng.uniform(0.25, 0.45), "sine")
    if rng.random() < 0.4:
        cut = int(n * rng.uniform(0.3, 0.7))
        freq[cut:] = _sweep(rng, n - cut, lo, hi, rng.uniform(6.0, 9.0), "sine")
    return lowpass(bl_square(phase(freq, n), hi), 3500.0) * attack_release(n, 0.05, 0.05)


def fire_engine(rng: Rng, n: int) -> np.ndarray:
    """Mechanical rotor siren: low (300-1000 Hz), slow rise and coast (0.12-0.25 Hz), rich and breathy."""
    hi = rng.uniform(800.0, 1000.0)
    freq = _sweep(rng, n, rng.uniform(280.0, 400.0), hi, rng.uniform(0.12, 0.25), "rotor")
    ph = phase(freq, n)
    x = bl_saw(ph, hi) + 0.4 * bandpass(rng.standard_normal(n), 600.0, 3000.0) * (1.0 + np.cos(ph))
    return lowpass(x, 4000.0) * attack_release(n, 0.3, 0.2)


def civil_defense_siren(rng: Rng, n: int) -> np.ndarray:
    """Air-raid siren: two tones a third apart around 400 Hz, a very slow rise and fall (0.05-0.1 Hz), hollow."""
    freq = _sweep(rng, n, rng.uniform(300.0, 380.0), rng.uniform(430.0, 520.0), rng.uniform(0.05, 0.1), "sine")
    ratio = rng.uniform(1.19, 1.26)
    amps = (1.0, 0.25, 0.5, 0.1, 0.2)
    x = harmonic(phase(freq, n), amps, 520.0) + 0.8 * harmonic(phase(freq * ratio, n), amps, 660.0)
    return lowpass(x, 2500.0) * attack_release(n, 0.5, 0.4)


# -- voices --------------------------------------------------------------------------------------------------
def screaming(rng: Rng, n: int) -> np.ndarray:
    """A shriek: high, rising-then-falling pitch (450-1000 Hz) with vibrato through bright formants, breathy."""
    t = _t(n)
    arc = np.sin(np.pi * t / max(t[-1], 1e-3)) if n > 1 else np.ones(n)
    f0 = rng.uniform(450.0, 1000.0) * (1.0 + rng.uniform(0.1, 0.3) * arc) \
        * (1.0 + rng.uniform(0.01, 0.04) * np.sin(phase(rng.uniform(5.0, 8.0), n)))
    src = saw(phase(f0, n))
    if rng.random() < 0.5:  # rough voice
        src *= 1.0 + 0.4 * np.sin(phase(rng.uniform(40.0, 80.0), n))
    x = formants(src, (rng.uniform(750.0, 1100.0), rng.uniform(1400.0, 2000.0), rng.uniform(2600.0, 3300.0)), 0.35)
    return unit_rms(x) + 0.2 * bandpass(rng.standard_normal(n), 1000.0, 5000.0)


# -- engines and wheels --------------------------------------------------------------------------------------
def _engine(rng: Rng, n: int, f0: np.ndarray | float, *, sharpness: float, noise: float, cutoff: float,
            jitter: float) -> np.ndarray:
    """Harmonic noise at a firing rate ``f0``: sharp pulses plus noise gated by them, low-passed."""
    f = np.asarray(f0, dtype=np.float64) * (1.0 + jitter * smooth_random(rng, n, 25.0))
    ph = phase(np.broadcast_to(f, (n,)), n)
    gatep = np.maximum(np.cos(ph), 0.0)
    x = pulse_train(ph, sharpness) + noise * rng.standard_normal(n) * (0.3 + gatep)
    return lowpass(x, cutoff)


def car(rng: Rng, n: int) -> np.ndarray:
    """Petrol engine (firing rate 25-50 Hz, drifting) plus tyre noise."""
    f0 = rng.uniform(25.0, 50.0) * (1.0 + 0.08 * smooth_random(rng, n, 0.5))
    x = unit_rms(_engine(rng, n, f0, sharpness=8.0, noise=0.5, cutoff=rng.uniform(700.0, 1200.0), jitter=0.01))
    return x + 0.3 * unit_rms(bandpass(rng.standard_normal(n), 200.0, 1500.0))


def car_passing_by(rng: Rng, n: int) -> np.ndarray:
    """A car approaching and receding: tyre roar and engine swell to a peak, the pitch drops (Doppler)."""
    t = _t(n)
    dur = max(t[-1], 1e-3)
    tc = dur * rng.uniform(0.35, 0.65)
    width = dur * rng.uniform(0.15, 0.3)
    doppler = 1.0 - rng.uniform(0.05, 0.1) * np.tanh((t - tc) / (0.5 * width))
    engine = unit_rms(_engine(rng, n, rng.uniform(35.0, 65.0) * doppler, sharpness=8.0, noise=0.4,
                              cutoff=1500.0, jitter=0.01))
    tyres = unit_rms(bandpass(rng.standard_normal(n), 400.0, rng.uniform(2000.0, 3500.0)))
    return (0.6 * engine + tyres) * (0.25 + 0.75 * np.exp(-(((t - tc) / width) ** 2)))


def bus(rng: Rng, n: int) -> np.ndarray:
    """Big diesel (firing rate 16-26 Hz, knocking) with hisses of air brakes."""
    f0 = rng.uniform(16.0, 26.0) * (1.0 + 0.05 * smooth_random(rng, n, 0.3))
    x = unit_rms(_engine(rng, n, f0, sharpness=16.0, noise=0.3, cutoff=rng.uniform(500.0, 800.0), jitter=0.02))
    for _ in range(rng.integers(1, 3)):
        length = int(rng.uniform(0.2, 0.7) * SR)
        if length < n:
            at = rng.integers(0, n - length)
            x[at:at + length] += 1.5 * highpass(rng.standard_normal(length), 3000.0) * np.hanning(length)
    return x


def truck(rng: Rng, n: int) -> np.ndarray:
    """Heavy engine (20-32 Hz, rough) with a rising gearbox whine."""
    f0 = rng.uniform(20.0, 32.0) * (1.0 + 0.1 * smooth_random(rng, n, 0.4))
    x = unit_rms(_engine(rng, n, f0, sharpness=12.0, noise=0.6, cutoff=rng.uniform(900.0, 1500.0), jitter=0.05))
    whine = rng.uniform(350.0, 700.0) * (1.0 + 0.3 * np.linspace(0.0, 1.0, n))
    return x + 0.25 * np.sin(phase(whine, n))


def motorcycle(rng: Rng, n: int) -> np.ndarray:
    """Small engine at a high firing rate (45-110 Hz) that revs up and down, brassy and rough."""
    revs = np.maximum(smooth_random(rng, n, rng.uniform(0.5, 1.5)), 0.0)
    f0 = rng.uniform(45.0, 110.0) * (1.0 + 0.5 * revs)
    return _engine(rng, n, f0, sharpness=25.0, noise=0.3, cutoff=rng.uniform(2000.0, 3500.0), jitter=0.03)


def bicycle(rng: Rng, n: int) -> np.ndarray:
    """Freewheel ticking (12-25 clicks a second), chain whir, and often a bell ding at the start."""
    rate = rng.uniform(12.0, 25.0)
    times = np.arange(0.0, n / SR, 1.0 / rate)
    times = times + rng.uniform(0.0, 0.003, size=times.size)
    ticks = resonator(impulses(n, times, 30.0), rng.uniform(3000.0, 5000.0), 0.003)
    x = unit_rms(ticks) + 0.2 * unit_rms(bandpass(rng.standard_normal(n), 1000.0, 3000.0))
    if rng.random() < 0.5:
        bell_f = rng.uniform(2200.0, 3200.0)
        strikes = impulses(n, np.array([0.01, 0.01 + rng.uniform(0.12, 0.2)]), 60.0)
        x += sum(resonator(strikes, bell_f * r, 0.25) / (1 + k) for k, r in enumerate((1.0, 1.48, 2.02)))
    return x


def skateboard(rng: Rng, n: int) -> np.ndarray:
    """Wheels rolling on concrete (band noise with a slow swell) and a clack-clack at every joint."""
    rolling = bandpass(rng.standard_normal(n), 150.0, rng.uniform(900.0, 1500.0)) \
        * (1.0 + 0.3 * smooth_random(rng, n, 1.0))
    period, gap = rng.uniform(0.35, 0.7), rng.uniform(0.05, 0.1)
    starts = np.arange(rng.uniform(0.0, period), n / SR, period)
    clacks = impulses(n, np.concatenate([starts, starts + gap]), 40.0)
    x = unit_rms(rolling) + resonator(clacks, rng.uniform(600.0, 1000.0), 0.02) + 0.3 * highpass(clacks, 2000.0)
    return x


def train(rng: Rng, n: int) -> np.ndarray:
    """Rumble, wheel clack pairs at rail joints (every 0.5-1 s), sometimes a high flange squeal."""
    rumble = unit_rms(lowpass(coloured_noise(rng, n, 2.0), rng.uniform(250.0, 450.0)))
    period = rng.uniform(0.5, 1.0)
    starts = np.arange(rng.uniform(0.0, period), n / SR, period)
    clacks = impulses(n, np.concatenate([starts, starts + rng.uniform(0.12, 0.2)]), 80.0)
    x = rumble + resonator(clacks, rng.uniform(150.0, 300.0), 0.04) + 0.2 * resonator(clacks, 2000.0, 0.003)
    if rng.random() < 0.35:
        squeal = rng.uniform(2500.0, 4500.0) * (1.0 + 0.01 * smooth_random(rng, n, 4.0))
        x += 0.4 * np.sin(phase(squeal, n)) * np.maximum(smooth_random(rng, n, 0.7), 0.0)
    return x


def _c(mid: str, name: str, lo: float, hi: float, fn) -> SoundClass:
    kind = "short" if hi <= 1.25 else "long" if lo >= 4.0 else "medium"
    return SoundClass(mid, name, kind, lo, hi, fn, (fn.__doc__ or "").strip())


# AudioSet MIDs and names of SL-DCASE-17 (its manifest; ontology at research.google.com/audioset), in order.
TARGETS: tuple[SoundClass, ...] = (
    _c("/m/0284vy3", "Train horn", 1.0, 3.0, train_horn),
    _c("/m/05x_td", "Air horn, truck horn", 0.2, 1.0, air_horn),
    _c("/m/02mfyn", "Car alarm", 4.0, 10.0, car_alarm),
    _c("/m/02rhddq", "Reversing beeps", 0.25, 1.0, reversing_beeps),
    _c("/m/0199g", "Bicycle", 1.0, 4.0, bicycle),
    _c("/m/06_fw", "Skateboard", 1.5, 5.0, skateboard),
    _c("/m/012n7d", "Ambulance (siren)", 5.0, 10.0, ambulance),
    _c("/m/012ndj", "Fire engine, fire truck (siren)", 5.0, 10.0, fire_engine),
    _c("/m/0dgbq", "Civil defense siren", 6.0, 10.0, civil_defense_siren),
    _c("/m/04qvtq", "Police car (siren)", 4.0, 10.0, police_car),
    _c("/m/03qc9zr", "Screaming", 0.3, 1.2, screaming),
    _c("/m/0k4j", "Car", 5.0, 10.0, car),
    _c("/t/dd00134", "Car passing by", 2.0, 5.0, car_passing_by),
    _c("/m/01bjv", "Bus", 5.0, 10.0, bus),
    _c("/m/07r04", "Truck", 5.0, 10.0, truck),
    _c("/m/04_sv", "Motorcycle", 2.5, 8.0, motorcycle),
    _c("/m/07jdr", "Train", 6.0, 10.0, train),
)

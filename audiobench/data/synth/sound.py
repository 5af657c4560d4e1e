"""A sound class of the synthetic dataset: its label, its duration distribution and its renderer.

Rendering an event is a pure function of ``(class, length, seed)``: the renderer draws every random choice
from the generator it is given, and :func:`render_event` scales the result to unit RMS over the event and
fades its ends. The samples outside the event are zero by construction, so the strong label
``[onset, onset + length)`` is exact.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from audiobench.data.synth.dsp import fade, unit_rms

Renderer = Callable[[np.random.Generator, int], np.ndarray]
DurationKind = Literal["short", "medium", "long"]


@dataclass(frozen=True)
class SoundClass:
    """One kind of sound: an AudioSet class (targets) or an unlabelled distractor (``mid`` empty)."""

    mid: str
    name: str
    kind: DurationKind
    min_duration: float  # seconds
    max_duration: float  # seconds
    render: Renderer
    description: str


def sample_duration(sound: SoundClass, rng: np.random.Generator) -> float:
    """An event length in seconds, log-uniform between the class's bounds (short events are as common as long)."""
    lo, hi = np.log(sound.min_duration), np.log(sound.max_duration)
    return float(np.exp(rng.uniform(lo, hi)))


def render_event(sound: SoundClass, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of ``sound`` at unit RMS with 5 ms fades: energy exactly inside the labelled span."""
    if n <= 0:
        return np.zeros(0)
    x = np.array(sound.render(rng, n), dtype=np.float64)
    if x.shape != (n,):
        raise RuntimeError(f"renderer of {sound.name!r} returned shape {x.shape}, expected ({n},)")
    return unit_rms(fade(x, 0.005))

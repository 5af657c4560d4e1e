"""One synthetic clip: a plan (what sounds where, how loud) drawn from the seed, then the audio rendered from it.

Planning and rendering are split so that the main process knows every clip's labels before any audio
exists (it registers them in the ledger), while workers render audio from plans alone. Each clip's
generator is seeded by ``(seed, split, index)``, so a clip does not depend on how many clips, jobs or
chunks there are, nor on the order they run in.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import numpy as np

from audiobench.core.records import Clip, Event
from audiobench.core.layout import clip_id_for
from audiobench.data.sources import SYNTH
from audiobench.data.synth.distractors import DISTRACTORS, background
from audiobench.data.synth.dsp import SR
from audiobench.data.synth.sound import SoundClass, render_event, sample_duration
from audiobench.data.synth.targets import TARGETS

SPLITS = ("train", "val", "test")
# The numbers that set how hard the task is (docs/datasets.md explains them).
TARGETS_PER_CLIP = ((1, 2, 3), (0.45, 0.35, 0.2))  # values, probabilities
DISTRACTORS_PER_CLIP = ((0, 1, 2, 3), (0.15, 0.35, 0.3, 0.2))
SNR_DB = (-6.0, 12.0)  # per event (targets and distractors alike), power over the event vs the background
LEVEL_DBFS = (-35.0, -20.0)  # RMS of the finished clip
PEAK = 0.99


@dataclass(frozen=True)
class PlacedSound:
    """One sound in a clip: which, where (samples), how loud, and the seed of its renderer."""

    sound: int  # index into TARGETS (target) or DISTRACTORS
    target: bool
    onset: int  # samples from the clip start
    length: int  # samples
    snr_db: float
    seed: int

    @property
    def sound_class(self) -> SoundClass:
        return (TARGETS if self.target else DISTRACTORS)[self.sound]

    def event(self, classes: tuple[int, ...] | None = None) -> Event:
        """The strong label: class index (position in ``classes``, the dataset's TARGETS indices; default all)
        and exact onset/offset in seconds."""
        index = self.sound if classes is None else classes.index(self.sound)
        return Event(index, self.onset / SR, (self.onset + self.length) / SR)


@dataclass(frozen=True)
class ClipPlan:
    """Everything needed to render one clip and to label it."""

    split: str
    index: int
    ytid: str
    duration: float  # seconds (the segment 0..duration)
    sounds: tuple[PlacedSound, ...]
    background_seed: int
    level_db: float  # dBFS RMS of the finished clip
    classes: tuple[int, ...] | None = None  # the dataset's classes as TARGETS indices (None: all of them)

    @property
    def samples(self) -> int:
        return round(self.duration * SR)

    @property
    def clip_id(self) -> str:
        return clip_id_for(self.ytid, 0.0, self.duration)

    @property
    def events(self) -> tuple[Event, ...]:
        """Strong labels of the target sounds, by onset (distractors are not labelled)."""
        return tuple(sorted((s.event(self.classes) for s in self.sounds if s.target),
                            key=lambda e: (e.onset, e.class_index)))

    @property
    def weak(self) -> tuple[int, ...]:
        return tuple(sorted({e.class_index for e in self.events}))

    def to_clip(self) -> Clip:
        # Synthetic IDs have the shape of YouTube IDs; their source says they were generated, not downloaded.
        return Clip(self.clip_id, self.split, self.ytid, 0.0, self.duration, self.weak, self.events, SYNTH)


def synthetic_ytid(seed: int, split: str, index: int) -> str:
    """An 11-character ID of the YouTube alphabet, a hash of (seed, split, index): stable and unique per clip."""
    digest = hashlib.sha256(f"audiobench-synth/{seed}/{split}/{index}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:11]


def _place(rng: np.random.Generator, index: int, table: tuple[SoundClass, ...], target: bool,
           n: int) -> PlacedSound:
    length = min(round(sample_duration(table[index], rng) * SR), n)
    onset = int(rng.integers(0, n - length + 1))
    seed = int(rng.integers(0, 2**63 - 1))
    return PlacedSound(index, target, onset, length, float(rng.uniform(*SNR_DB)), seed)


def plan_clip(seed: int, split: str, index: int, duration: float,
              classes: tuple[int, ...] | None = None) -> ClipPlan:
    """Draw clip ``index`` of ``split``: 1-3 target events (a class may repeat), 0-3 distractors, levels.

    ``classes`` restricts the targets to these TARGETS indices (the others never sound, not even as
    distractors); ``None`` uses all of them.
    """
    pool = tuple(range(len(TARGETS))) if classes is None else classes
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    n = round(duration * SR)
    n_targets = int(rng.choice(TARGETS_PER_CLIP[0], p=TARGETS_PER_CLIP[1]))
    n_distractors = int(rng.choice(DISTRACTORS_PER_CLIP[0], p=DISTRACTORS_PER_CLIP[1]))
    sounds = [_place(rng, pool[int(rng.integers(len(pool)))], TARGETS, True, n) for _ in range(n_targets)]
    sounds += [_place(rng, int(rng.integers(len(DISTRACTORS))), DISTRACTORS, False, n) for _ in range(n_distractors)]
    return ClipPlan(split, index, synthetic_ytid(seed, split, index), duration, tuple(sounds),
                    int(rng.integers(0, 2**63 - 1)), float(rng.uniform(*LEVEL_DBFS)), classes)


def render_clip(plan: ClipPlan, *, with_background: bool = True, with_distractors: bool = True) -> np.ndarray:
    """The clip's samples, float32 in [-1, 1] at 16 kHz; leave layers out to inspect the labelled sounds alone."""
    n = plan.samples
    mix = background(np.random.default_rng(plan.background_seed), n) if with_background else np.zeros(n)
    for s in plan.sounds:
        if s.target or with_distractors:
            event = render_event(s.sound_class, s.length, np.random.default_rng(s.seed))
            mix[s.onset:s.onset + s.length] += 10.0 ** (s.snr_db / 20.0) * event
    rms = float(np.sqrt(np.mean(mix * mix)))
    if rms == 0.0:
        return mix.astype(np.float32)
    scale = 10.0 ** (plan.level_db / 20.0) / rms
    peak = float(np.max(np.abs(mix))) * scale
    if peak > PEAK:  # keep the loud clips unclipped: PCM_16 cannot hold more than full scale
        scale *= PEAK / peak
    return (mix * scale).astype(np.float32)

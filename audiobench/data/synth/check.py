"""Can a model read the labels off loudness alone? A check that the synthetic task needs the spectrum.

For each class, a logistic regression is fitted on the train split and scored (average precision) on the
test split, once with loudness features only (overall RMS, RMS in 10 time bins, and the same bins sorted,
all in dB) and once with a simple spectral feature (the mean log power in 32 log-spaced bands). On a task
worth learning, loudness gives about the class prior and the spectrum does much better. docs/datasets.md
reports the figures for the default dataset; tests/test_synth.py checks a small one.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from audiobench.core.layout import AUDIO_RATE, DatasetPaths, resolve_root
from audiobench.data.ledger import Ledger

TIME_BINS = 10
BANDS = 32
FRAME = 512
_WINDOW = np.hanning(FRAME).astype(np.float32)


@dataclass(frozen=True)
class LoudnessCheck:
    """Mean over classes (those with a positive in both splits) of test AP, and of the test positive rate."""

    classes: int
    prior: float  # the mean positive rate: the AP of a random ranking on a large test set
    chance: float  # the mean AP of random rankings of this test set (above the prior on small sets)
    loudness_map: float
    spectral_map: float


def loudness_features(x: np.ndarray) -> np.ndarray:
    """dB RMS of the clip, of 10 equal time bins, and of the same bins sorted (order statistics)."""
    square = x.astype(np.float64) ** 2
    per_bin = 10.0 * np.log10(np.array([b.mean() for b in np.array_split(square, TIME_BINS)]) + 1e-10)
    overall = 10.0 * np.log10(square.mean() + 1e-10)
    return np.concatenate([[overall], per_bin, np.sort(per_bin)])


def spectral_features(x: np.ndarray, rate: int = AUDIO_RATE) -> np.ndarray:
    """Mean over frames of the log power in 32 log-spaced bands from 60 Hz to Nyquist."""
    usable = x.size - x.size % FRAME
    frames = x[:usable].astype(np.float32).reshape(-1, FRAME) * _WINDOW  # back-to-back frames: cheap, enough
    spectrum = np.fft.rfft(frames, axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    freqs = np.fft.rfftfreq(FRAME, 1.0 / rate)
    starts = np.searchsorted(freqs, np.geomspace(60.0, rate / 2, BANDS + 1)[:-1])
    starts = np.maximum.accumulate(np.minimum(starts, freqs.size - 1))  # every band gets at least its start bin
    return np.log(np.add.reduceat(power, starts, axis=1) + 1e-10).mean(axis=0)


def expected_random_ap(n: int, positives: int) -> float:
    """Mean average precision of a uniformly random ranking of ``n`` items with ``positives`` positives.

    Averaging precision at each positive's rank over all orders gives ``(H_n + (R-1)/(n-1) (n - H_n)) / n``
    with ``H_n`` the n-th harmonic number: 1/n-ish for one positive, the prior R/n for many items.
    """
    h = float(np.sum(1.0 / np.arange(1, n + 1)))
    return (h + (positives - 1) / (n - 1) * (n - h)) / n if n > 1 else 1.0


def loudness_check(dataset: str = "synth", *, root: str | os.PathLike[str] | None = None,
                   train_split: str = "train", test_split: str = "test") -> LoudnessCheck:
    """Fit per-class logistic regressions on loudness and on spectral features; compare their test mAP.

    >>> loudness_check("synth", root="audiobench-data")   # doctest: +SKIP
    LoudnessCheck(classes=17, prior=0.103, chance=0.125, loudness_map=0.157, spectral_map=0.477)
    """
    from sklearn.linear_model import LogisticRegression  # deferred: scikit-learn is heavy; only the check needs it
    from sklearn.metrics import average_precision_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    paths = DatasetPaths(resolve_root(root), dataset)
    with Ledger(paths.require_ledger()) as ledger:
        n_classes = len(ledger.classes())
        data = {split: _load(ledger, paths, split, n_classes) for split in (train_split, test_split)}
    (xtr_l, xtr_s, ytr), (xte_l, xte_s, yte) = data[train_split], data[test_split]
    usable = [c for c in range(n_classes) if 0 < ytr[:, c].sum() < len(ytr) and yte[:, c].sum() > 0]
    scores: dict[str, list[float]] = {"loudness": [], "spectral": []}
    for c in usable:
        for kind, xtr, xte in (("loudness", xtr_l, xte_l), ("spectral", xtr_s, xte_s)):
            model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
            model.fit(xtr, ytr[:, c])
            scores[kind].append(float(average_precision_score(yte[:, c], model.predict_proba(xte)[:, 1])))
    chance = [expected_random_ap(len(yte), int(yte[:, c].sum())) for c in usable]
    prior = [yte[:, c].mean() for c in usable]
    return LoudnessCheck(len(usable), float(np.mean(prior)), float(np.mean(chance)),
                         float(np.mean(scores["loudness"])), float(np.mean(scores["spectral"])))


def _load(ledger: Ledger, paths: DatasetPaths, split: str,
          n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    audio = ledger.audio(split=split)
    clips = [c for c in ledger.clips(split=split) if c.clip_id in audio]
    loud, spec, labels = [], [], np.zeros((len(clips), n_classes), dtype=np.int8)
    for i, clip in enumerate(clips):
        x, rate = sf.read(paths.dir / audio[clip.clip_id].path, dtype="float32")
        loud.append(loudness_features(x))
        spec.append(spectral_features(x, rate))
        labels[i, list(clip.weak)] = 1
    return np.array(loud), np.array(spec), labels

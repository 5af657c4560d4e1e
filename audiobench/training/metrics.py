"""mAP (the paper's metric): the mean over classes of scikit-learn's ``average_precision_score``, over the
classes with at least one positive clip in the evaluated split. Classes without a positive have no AP (it
is undefined, not 0): they are listed in ``skipped``, never averaged in.

>>> r = mean_average_precision(np.array([[0.9, 0.1], [0.2, 0.3]]), np.array([[1, 0], [0, 0]]))
>>> r.map, r.skipped
(1.0, (1,))
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import average_precision_score

from audiobench.core.errors import AudiobenchError


@dataclass(frozen=True)
class APResult:
    """mAP over the evaluated classes; ``per_class[c]`` is None for a class with no positive."""

    map: float
    per_class: tuple[float | None, ...]
    skipped: tuple[int, ...]  # class indices with no positive in the split

    @property
    def evaluated(self) -> int:
        return len(self.per_class) - len(self.skipped)


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> APResult:
    """mAP of clip scores ``[N, C]`` against binary targets ``[N, C]``.

    Raises when no class has a positive (nothing to evaluate), since a mAP of 0 or NaN would mislead.
    """
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets) > 0
    if scores.shape != targets.shape or scores.ndim != 2:
        raise ValueError(f"scores {scores.shape} and targets {targets.shape} must both be [clips, classes]")
    per_class: list[float | None] = []
    for c in range(scores.shape[1]):
        per_class.append(float(average_precision_score(targets[:, c], scores[:, c]))
                         if targets[:, c].any() else None)
    values = [ap for ap in per_class if ap is not None]
    if not values:
        raise AudiobenchError(f"no class has a positive among {scores.shape[0]} clips: mAP is undefined")
    skipped = tuple(c for c, ap in enumerate(per_class) if ap is None)
    return APResult(float(np.mean(values)), tuple(per_class), skipped)


def chance_map(targets: np.ndarray) -> float:
    """The mAP of a random scorer: the mean class prior over the evaluated classes."""
    targets = np.asarray(targets) > 0
    prior = targets.mean(axis=0)
    return float(prior[targets.any(axis=0)].mean())

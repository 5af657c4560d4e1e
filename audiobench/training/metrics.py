"""mAP (the paper's metric): the mean over classes of scikit-learn's ``average_precision_score``, over the
classes with at least one positive clip in the evaluated split. Classes without a positive have no AP (it
is undefined, not 0): they are listed in ``skipped``, never averaged in. Beside it (docs/compare.md): macro
ROC AUC, d′ = √2 · Φ⁻¹(AUC), and a bootstrap interval of each class's AP over the evaluated clips.

>>> r = mean_average_precision(np.array([[0.9, 0.1], [0.2, 0.3]]), np.array([[1, 0], [0, 0]]))
>>> r.map, r.skipped
(1.0, (1,))
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score

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


# -- AUC, d′ and bootstrap intervals of per-class AP -------------------------------------------------------

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_CONFIDENCE = 0.95
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class AUCResult:
    """Macro ROC AUC over the classes with both a positive and a negative; ``per_class[c]`` None otherwise."""

    auc: float
    per_class: tuple[float | None, ...]

    @property
    def dprime(self) -> float:
        return dprime(self.auc)


def roc_auc(scores: np.ndarray, targets: np.ndarray) -> AUCResult:
    """Macro ROC AUC (scikit-learn's ``roc_auc_score`` per class), over classes with both outcomes.

    >>> roc_auc(np.array([[0.9, 0.1], [0.2, 0.3]]), np.array([[1, 0], [0, 0]])).per_class
    (1.0, None)
    """
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets) > 0
    per_class: list[float | None] = []
    for c in range(scores.shape[1]):
        both = targets[:, c].any() and not targets[:, c].all()
        per_class.append(float(roc_auc_score(targets[:, c], scores[:, c])) if both else None)
    values = [a for a in per_class if a is not None]
    if not values:
        raise AudiobenchError(f"no class has both a positive and a negative among {scores.shape[0]} clips: "
                              "AUC is undefined")
    return AUCResult(float(np.mean(values)), tuple(per_class))


def dprime(auc: float) -> float:
    """d′ = √2 · Φ⁻¹(AUC), the separation of two unit-variance normals with that AUC (AudioSet papers).

    >>> round(dprime(0.5), 6), round(dprime(0.9), 4)
    (0.0, 1.8124)
    """
    return float(np.sqrt(2.0) * norm.ppf(auc))


def _ap_of_weights(y: np.ndarray, order: np.ndarray, ends: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Average precision of one class under each row of clip ``weights`` ``[R, N]`` (resample counts).

    As scikit-learn computes it with ``sample_weight``: precision summed over the distinct score
    thresholds (``ends``: the last index of each run of equal scores in descending ``order``), weighted by
    the recall gained there. NaN where a resample holds no positive.
    """
    w = weights[:, order]
    tp = np.cumsum(w * y[order], axis=1)[:, ends]
    seen = np.cumsum(w, axis=1)[:, ends]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(seen > 0, tp / seen, 0.0)
        gained = np.diff(tp, axis=1, prepend=0.0)
        return (gained * precision).sum(axis=1) / tp[:, -1]


def bootstrap_ap(scores: np.ndarray, targets: np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES,
                 confidence: float = BOOTSTRAP_CONFIDENCE, seed: int = BOOTSTRAP_SEED
                 ) -> tuple[tuple[float | None, ...], tuple[float | None, ...]]:
    """Percentile bootstrap interval of each class's AP over clips: ``(low, high)`` per class.

    The clips are resampled with replacement ``resamples`` times (the same resamples for every class, from
    a generator seeded by ``seed``); a resample without a positive of a class is left out of that class's
    interval. None for a class with no positive, and for every class with ``resamples=0``. All resamples
    of a class are scored at once.
    """
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets) > 0
    n = scores.shape[0]
    if resamples < 1:
        return (None,) * scores.shape[1], (None,) * scores.shape[1]
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)  # [R, N] counts
    tail = (1.0 - confidence) / 2 * 100
    low: list[float | None] = []
    high: list[float | None] = []
    for c in range(scores.shape[1]):
        if not targets[:, c].any():
            low.append(None)
            high.append(None)
            continue
        order = np.argsort(-scores[:, c], kind="mergesort")
        ranked = scores[order, c]
        ends = np.r_[np.flatnonzero(np.diff(ranked)), n - 1]
        aps = _ap_of_weights(targets[:, c].astype(np.float64), order, ends, weights)
        aps = aps[np.isfinite(aps)]
        low.append(float(np.percentile(aps, tail)) if aps.size else None)
        high.append(float(np.percentile(aps, 100 - tail)) if aps.size else None)
    return tuple(low), tuple(high)


def map_of_weights(scores: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """mAP of clip ``scores`` ``[N, C]`` under each row of clip ``weights`` ``[R, N]`` (resample counts): ``[R]``.

    Each class's AP as :func:`bootstrap_ap` scores it (scikit-learn's ``sample_weight`` arithmetic), averaged
    over the classes with a positive in that row, as :func:`mean_average_precision` does on the whole split:
    what a resample of the test clips would have measured. NaN for a row with no positive at all.
    """
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets) > 0
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    n = scores.shape[0]
    aps = np.full((weights.shape[0], scores.shape[1]), np.nan)
    for c in np.flatnonzero(targets.any(axis=0)):
        order = np.argsort(-scores[:, c], kind="mergesort")
        ends = np.r_[np.flatnonzero(np.diff(scores[order, c])), n - 1]
        aps[:, c] = _ap_of_weights(targets[:, c].astype(np.float64), order, ends, weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row without any positive: NaN, said above
        return np.nanmean(aps, axis=1)


@dataclass(frozen=True)
class Scores:
    """Every metric of one split's predictions (what ``metrics.json`` records of a split)."""

    ap: APResult
    auc: AUCResult | None  # None when no class has both a positive and a negative
    ap_low: tuple[float | None, ...]
    ap_high: tuple[float | None, ...]
    chance: float

    @property
    def dprime(self) -> float | None:
        return None if self.auc is None else self.auc.dprime

    def summary(self, prefix: str) -> dict[str, float | None]:
        """``{prefix}_map``, ``{prefix}_auc``, ``{prefix}_dprime``."""
        return {f"{prefix}_map": self.ap.map, f"{prefix}_auc": None if self.auc is None else self.auc.auc,
                f"{prefix}_dprime": self.dprime}

    def per_class(self) -> list[dict[str, float | None]]:
        """Per class: ``ap``, ``ap_low``, ``ap_high``, ``auc`` (None where undefined)."""
        aucs = self.auc.per_class if self.auc is not None else (None,) * len(self.ap.per_class)
        return [{"ap": ap, "ap_low": lo, "ap_high": hi, "auc": auc}
                for ap, lo, hi, auc in zip(self.ap.per_class, self.ap_low, self.ap_high, aucs)]


def score(scores: np.ndarray, targets: np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES,
          seed: int = BOOTSTRAP_SEED) -> Scores:
    """mAP, macro AUC, d′, bootstrap intervals of per-class AP and the chance mAP of one split."""
    ap = mean_average_precision(scores, targets)
    try:
        auc: AUCResult | None = roc_auc(scores, targets)
    except AudiobenchError:
        auc = None
    low, high = bootstrap_ap(scores, targets, resamples=resamples, seed=seed)
    return Scores(ap, auc, low, high, chance_map(targets))

"""How far a pairwise verdict can be trusted (docs/compare.md, "Stability of a verdict").

A Wilcoxon p says whether ``b - a`` differs from zero over the trials run; it does not say whether the verdict
would survive one trial less, other test clips, or how large a difference these trials could have seen. Per
pair this module adds:

- the mean paired difference with a **hierarchical bootstrap** interval: trials are resampled with
  replacement and, within each resampled trial, its test clips, each trial's mAP recomputed from the run's
  saved ``test-predictions.npz`` (both sources of variance, as the trials and the test set are samples);
- **P(b > a)**, the fraction of paired trials ``b`` won, with its Wilson interval (``scipy.stats.binomtest``);
- the **minimum detectable effect** (MDE) at 80% power and the α used, for these trials and the spread of
  their differences, and how many trials would detect the observed difference (power of a paired t-test,
  from scipy's noncentral t);
- a **mark**: ``fragile`` when leaving out any one trial flips the verdict at α (Holm across the pairs
  rerun), or when the Holm p and the hierarchical interval disagree; else ``robust`` for a difference, and
  ``no detectable difference (MDE 0.030)`` for none.

>>> s = pair_stability([0.60, 0.61, 0.59, 0.62, 0.60, 0.61, 0.60, 0.62, 0.61, 0.60],
...                    [0.64, 0.66, 0.63, 0.65, 0.64, 0.67, 0.65, 0.66, 0.64, 0.66])
>>> s.label, s.p_better, s.flips
('robust', 1.0, ())
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as sps

from audiobench.study import stats
from audiobench.training.metrics import map_of_weights

ALPHA = 0.05
POWER = 0.80
RESAMPLES = 1000          # hierarchical resamples per pair: a few seconds at the demo's size (docs/compare.md)
CONFIDENCE = 0.95
MAX_TRIALS = 100_000      # "trials needed" beyond this is reported as None (the difference is practically zero)
CHUNK = 2 ** 22           # clip weights held at once (resamples x trials x clips): bounds the memory
MATCH = 1e-6              # a run's saved predictions must give its recorded mAP within this to be used
PREDICTIONS = "test-predictions.npz"  # as audiobench.training.train writes it (not imported: no torch here)
TRIALS_DIR = "trials"

ROBUST, FRAGILE, NONE, UNTESTED = "robust", "fragile", "no detectable difference", "not tested"

Clips = tuple[np.ndarray, np.ndarray]  # one trial's test scores [N, C] and targets [N, C]


@dataclass(frozen=True)
class Stability:
    """The stability columns of one pair (differences ``b - a``); None where undefined.

    ``interval`` says what the bootstrap resampled: ``"trials and test clips"`` (hierarchical) or ``"trials"``
    (the runs' predictions were missing or do not give the tested metric). ``flips``: the trials whose
    omission flips the verdict. ``label``: the mark as the report prints it; ``why``: what made it fragile.
    """

    n: int
    diff: float
    diff_low: float | None
    diff_high: float | None
    interval: str
    p_better: float | None
    p_better_low: float | None
    p_better_high: float | None
    sd: float | None
    mde: float | None
    trials_needed: int | None
    flips: tuple[int, ...]
    mark: str
    label: str
    why: str


# -- the statistics, each a pure function -------------------------------------------------------------------

def hierarchical_interval(a: Sequence[Clips], b: Sequence[Clips], *, resamples: int = RESAMPLES,
                          seed: int = stats.SEED, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of the mean paired mAP difference ``b - a``, resampling trials then clips.

    ``a[k]``, ``b[k]``: trial k's test predictions of each variant, on the same clips. Each resample draws
    the trials with replacement and, for each drawn trial, its clips with replacement; both variants are
    scored on the same draws (:func:`resampled_maps` with one seed), so the pairing of trials and of the
    clips within a trial is kept.
    """
    return percentile_interval(resampled_maps(b, resamples=resamples, seed=seed)
                               - resampled_maps(a, resamples=resamples, seed=seed), confidence=confidence)


def percentile_interval(diffs: np.ndarray, *, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The percentile interval of the resamples' mean difference, from per-draw differences ``[R, K]``."""
    means = np.nanmean(diffs, axis=1)
    tail = (1 - confidence) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def resampled_maps(trials: Sequence[Clips], *, resamples: int = RESAMPLES, seed: int = stats.SEED) -> np.ndarray:
    """``[R, K]``: in each of ``resamples`` resamples, the mAP of each of the K trials drawn (with
    replacement), on its test clips drawn with replacement, from :func:`audiobench.training.metrics.map_of_weights`.

    The draws depend only on ``seed``, the number of trials and their clip counts, never on the scores: two
    variants' results on the same trials and clips are paired draw by draw (and one variant's can be reused
    for every pair it is in).
    """
    k = len(trials)
    rng = np.random.default_rng(seed)
    out = np.full((resamples, k), np.nan)
    clips = max(int(t.shape[0]) for _, t in trials)
    step = max(1, CHUNK // max(1, k * clips))
    for start in range(0, resamples, step):
        r = min(step, resamples - start)
        draws = rng.integers(0, k, size=(r, k))
        block = np.full((r, k), np.nan)
        for trial in range(k):
            where = draws == trial
            m = int(where.sum())
            if not m:
                continue
            scores, targets = trials[trial]
            n = scores.shape[0]
            picks = rng.integers(0, n, size=(m, n)) + n * np.arange(m)[:, None]  # n clips drawn per row
            w = np.bincount(picks.ravel(), minlength=m * n).reshape(m, n).astype(np.float64)  # their counts
            block[where] = map_of_weights(scores, targets, w)
        out[start:start + r] = block
    return out


def trial_interval(d: Sequence[float], *, resamples: int = RESAMPLES, seed: int = stats.SEED,
                   confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(d)`` over trials only (``scipy.stats.bootstrap``)."""
    x = np.asarray(d, dtype=np.float64)
    if np.ptp(x) == 0:
        return float(x[0]), float(x[0])
    res = sps.bootstrap((x,), np.mean, vectorized=True, n_resamples=resamples, confidence_level=confidence,
                        method="percentile", **{stats._RNG_KW: np.random.default_rng(seed)})
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def probability_of_improvement(a: Sequence[float], b: Sequence[float], *, confidence: float = CONFIDENCE
                               ) -> tuple[float, float, float]:
    """``(P, low, high)``: the fraction of paired trials where ``b`` scored higher (ties count as not), with
    its Wilson score interval."""
    d = np.round(np.asarray(b, np.float64) - np.asarray(a, np.float64), stats.ROUND_DECIMALS)
    wins, n = int((d > 0).sum()), int(d.size)
    ci = sps.binomtest(wins, n).proportion_ci(confidence_level=confidence, method="wilson")
    return wins / n, float(ci.low), float(ci.high)


def power(effect: float, sd: float, n: int, *, alpha: float = ALPHA) -> float:
    """Power of the two-sided paired t-test at α to detect a mean difference ``effect`` (noncentral t)."""
    df, nc = n - 1, abs(effect) * math.sqrt(n) / sd
    crit = sps.t.ppf(1 - alpha / 2, df)
    return float(sps.nct.sf(crit, df, nc) + sps.nct.cdf(-crit, df, nc))


def minimum_detectable_effect(sd: float | None, n: int, *, alpha: float = ALPHA, power_: float = POWER
                              ) -> float | None:
    """The smallest mean difference ``n`` paired trials with this SD detect at α with ``power_``.

    None when nothing is detectable: fewer trials than the exact Wilcoxon test needs to reach p < α at all
    (``2 / 2**n ≥ α``), or no spread to scale by.
    """
    if sd is None or not sd > 0 or n < 2 or stats.min_exact_p(n) >= alpha:
        return None
    high = sd
    while power(high, sd, n, alpha=alpha) < power_:
        high *= 2
    return float(optimize.brentq(lambda e: power(e, sd, n, alpha=alpha) - power_, 0.0, high, xtol=1e-12))


def trials_needed(effect: float, sd: float | None, *, alpha: float = ALPHA, power_: float = POWER) -> int | None:
    """The fewest paired trials that detect ``effect`` at α with ``power_`` (None: zero effect or no spread)."""
    if sd is None or not sd > 0 or effect == 0:
        return None
    low = 2
    while stats.min_exact_p(low) >= alpha:  # the exact test's floor: below this no p reaches α
        low += 1
    if power(effect, sd, low, alpha=alpha) >= power_:
        return low
    high = low * 2
    while power(effect, sd, high, alpha=alpha) < power_:
        if high > MAX_TRIALS:
            return None
        low, high = high, high * 2
    while high - low > 1:  # power grows with n: bisect to the first n that reaches it
        mid = (low + high) // 2
        low, high = (low, mid) if power(effect, sd, mid, alpha=alpha) >= power_ else (mid, high)
    return high


def leave_one_out(trials: pd.DataFrame, pairs: Sequence[tuple[str, str]], *, column: str = "test_map",
                  alpha: float = ALPHA) -> list[tuple[int, ...]]:
    """Per pair, the trials whose omission flips its verdict (Holm p < α or not), Holm rerun across ``pairs``."""
    def verdicts(table: pd.DataFrame) -> list[bool]:
        wide = table.pivot_table(index="trial", columns="variant", values=column, aggfunc="first")
        ps = []
        for a, b in pairs:
            both = wide[[a, b]].dropna() if a in wide and b in wide else pd.DataFrame(columns=[a, b], dtype=float)
            ps.append(stats.paired_test(both[a].to_numpy(), both[b].to_numpy(), interval=False).p)
        return [p is not None and p < alpha for p in stats.holm(ps)]

    full = verdicts(trials)
    flips: list[list[int]] = [[] for _ in pairs]
    for k in sorted(set(trials["trial"])):
        for i, (before, after) in enumerate(zip(full, verdicts(trials[trials["trial"] != k]))):
            if before != after:
                flips[i].append(int(k))
    return [tuple(f) for f in flips]


def mark(p_holm: float | None, low: float | None, high: float | None, flips: Sequence[int], mde: float | None,
         *, alpha: float = ALPHA) -> tuple[str, str, str]:
    """``(mark, label, why)``: fragile when one trial less flips the verdict or the interval disagrees with p."""
    if p_holm is None:
        return UNTESTED, UNTESTED, ""
    significant = p_holm < alpha
    why = []
    if flips:
        names = ", ".join(str(k) for k in flips)
        why.append(f"leaving out trial {names} {'loses' if significant else 'gives'} significance")
    if low is not None and high is not None and (low > 0 or high < 0) != significant:
        why.append(f"the interval {'includes' if significant else 'excludes'} zero but Holm p "
                   f"{'<' if significant else '≥'} {alpha:g}")
    if why:
        return FRAGILE, FRAGILE, "; ".join(why)
    if significant:
        return ROBUST, ROBUST, ""
    return NONE, f"{NONE} (MDE {'n/a' if mde is None else format(mde, '.3f')})", ""


# -- one pair, and a study ----------------------------------------------------------------------------------

def pair_stability(a: Sequence[float], b: Sequence[float], *, p_holm: float | None = None,
                   flips: Sequence[int] | None = None, clips: tuple[Sequence[Clips], Sequence[Clips]] | None = None,
                   drawn: tuple[np.ndarray, np.ndarray] | None = None, alpha: float = ALPHA,
                   resamples: int = RESAMPLES, seed: int = stats.SEED) -> Stability:
    """The stability of one pair's verdict from its paired per-trial values ``a`` and ``b``.

    ``p_holm`` and ``flips`` come from the study's family of tests; alone (None), the pair is its own family:
    its Wilcoxon p, and its own leave-one-out. ``clips``: each trial's predictions of ``a`` and ``b`` for the
    hierarchical interval (or ``drawn``: their :func:`resampled_maps`, already computed); without them the
    interval resamples trials only.
    """
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = np.round(y - x, stats.ROUND_DECIMALS)
    n = int(d.size)
    if p_holm is None:
        p_holm = stats.paired_test(x, y, interval=False).p
    if flips is None:
        table = pd.DataFrame({"trial": np.r_[np.arange(n), np.arange(n)], "variant": ["a"] * n + ["b"] * n,
                              "test_map": np.r_[x, y]})
        flips = leave_one_out(table, [("a", "b")])[0] if n else ()
    low = high = None
    interval = "trials and test clips" if clips is not None or drawn is not None else "trials"
    if n >= 2:
        if drawn is not None:
            low, high = percentile_interval(drawn[1] - drawn[0])
        elif clips is not None:
            low, high = hierarchical_interval(*clips, resamples=resamples, seed=seed)
        else:
            low, high = trial_interval(d, resamples=resamples, seed=seed)
    p_better = p_low = p_high = None
    if n:
        p_better, p_low, p_high = probability_of_improvement(x, y)
    sd = float(np.std(d, ddof=1)) if n >= 2 else None
    mde = minimum_detectable_effect(sd, n, alpha=alpha)
    needed = trials_needed(float(d.mean()), sd, alpha=alpha) if n else None
    what, label, why = mark(p_holm, low, high, flips, mde, alpha=alpha)
    return Stability(n, float(d.mean()) if n else math.nan, low, high, interval, p_better, p_low, p_high, sd, mde,
                     needed, tuple(int(k) for k in flips), what, label, why)


def study_stability(run_dir: Path, trials: pd.DataFrame, rows: Sequence[stats.PairRow], *,
                    column: str = "test_map", alpha: float = ALPHA, resamples: int = RESAMPLES,
                    seed: int = stats.SEED) -> list[Stability]:
    """The stability of every tested pair of a study (``rows`` from :func:`stats.compare_variants`).

    The hierarchical interval needs each run's ``test-predictions.npz`` to give the mAP ``trials.csv``
    records; a study of another metric, an ``--eval-on`` subset or runs without their predictions fall back
    to resampling trials only (the ``interval`` column says which).
    """
    pairs = [(r.a, r.b) for r in rows]
    flips = leave_one_out(trials, pairs, column=column, alpha=alpha)
    wide = trials.pivot_table(index="trial", columns="variant", values=column, aggfunc="first")
    found = []
    drawn: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}  # a variant's resamples, reused by its pairs
    loaded: dict[tuple[int, str], _Saved | None] = {}  # a run's predictions, read once for all its pairs
    for row, flipped in zip(rows, flips):
        both = wide[[row.a, row.b]].dropna() if row.a in wide and row.b in wide else \
            pd.DataFrame(columns=[row.a, row.b], dtype=float)
        pair = None
        clips = (_predictions(Path(run_dir), both, row.a, row.b, loaded=loaded)
                 if column == "test_map" and len(both) >= 2 else None)
        if clips is not None:
            key = tuple(int(k) for k in both.index)
            for variant, trials_clips in zip((row.a, row.b), clips):
                if (variant, key) not in drawn:
                    drawn[variant, key] = resampled_maps(trials_clips, resamples=resamples, seed=seed)
            pair = (drawn[row.a, key], drawn[row.b, key])
        found.append(pair_stability(both[row.a].to_numpy(), both[row.b].to_numpy(), p_holm=row.p_holm,
                                    flips=flipped, drawn=pair, alpha=alpha, resamples=resamples, seed=seed))
    return found


_Saved = tuple[np.ndarray, np.ndarray, np.ndarray, float]  # clip ids, scores, targets, mAP of all clips


def _saved(run_dir: Path, trial: int, variant: str) -> _Saved | None:
    """One run's saved test predictions and the mAP they give; None when they cannot be read."""
    path = run_dir / TRIALS_DIR / f"t{trial:02d}-{variant}" / PREDICTIONS
    try:
        with np.load(path, allow_pickle=False) as z:
            clip_ids, scores, targets = z["clip_id"], z["scores"], z["targets"]
    except (OSError, KeyError, ValueError):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = map_of_weights(scores, targets, np.ones(scores.shape[0]))[0]
    return clip_ids, np.asarray(scores, np.float64), np.asarray(targets) > 0, float(whole)


def _predictions(run_dir: Path, both: pd.DataFrame, a: str, b: str, *,
                 loaded: dict[tuple[int, str], _Saved | None]) -> tuple[list[Clips], list[Clips]] | None:
    """Each trial's saved test predictions of ``a`` and ``b``; None unless every one is there, on the same
    clips for both variants, and gives the mAP ``trials.csv`` recorded. ``loaded``: runs already read."""
    out: tuple[list[Clips], list[Clips]] = ([], [])
    for trial, maps in both.iterrows():
        ids = None
        for side, variant in enumerate((a, b)):
            key = (int(trial), variant)
            if key not in loaded:
                loaded[key] = _saved(run_dir, *key)
            saved = loaded[key]
            if saved is None:
                return None
            clip_ids, scores, targets, whole = saved
            if ids is not None and not np.array_equal(ids, clip_ids):
                return None
            ids = clip_ids
            if not abs(whole - float(maps[variant])) <= MATCH:
                return None
            out[side].append((scores, targets))
    return out


def describe_method(resamples: int = RESAMPLES, alpha: float = ALPHA) -> dict[str, Any]:
    """What ``results.json``'s ``statistics.stability`` records of how the columns were computed."""
    return {"interval": "hierarchical percentile bootstrap of the mean difference: trials, then test clips "
                        "within each (trials only where the runs' predictions do not give the metric)",
            "resamples": resamples, "confidence": CONFIDENCE, "p_better": "fraction of paired trials b won, "
            "Wilson interval", "mde": f"paired t-test power {POWER:g} at α {alpha:g} (noncentral t)",
            "fragile": "leaving out one trial flips the Holm verdict, or the interval disagrees with it"}

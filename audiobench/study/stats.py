"""The statistics of ``audiobench compare`` (docs/compare.md): pure functions over paired per-trial mAPs.

Trial k trains every variant with seed k, so the mAPs of two variants are *paired* by trial. For each pair we
report the two-sided Wilcoxon signed-rank test (scipy), Holm-corrected across the pairs reported, the
matched-pairs rank-biserial correlation as the effect size, and a paired bootstrap 95% interval of the mean
difference. Differences are always ``b - a``: positive means ``b`` scored higher. ``docs/compare.md`` says why
each choice was made.

>>> t = paired_test([0.50, 0.52, 0.55, 0.49, 0.51, 0.53], [0.53, 0.53, 0.53, 0.54, 0.55, 0.59])
>>> t.w, round(t.p, 5), t.method, round(t.rank_biserial, 4)
(2.0, 0.09375, 'exact', 0.8095)
"""
from __future__ import annotations

import inspect
import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd
import scipy
from scipy import stats

from audiobench.core.errors import AudiobenchError

Method = Literal["exact", "approx", "all-equal"]
Pairs = Literal["all", "baseline"]
PAIRS: tuple[str, ...] = ("all", "baseline")

EXACT_MAX_N = 50          # scipy's own limit for the exact null distribution
ROUND_DECIMALS = 12       # differences are rounded so that roundoff in b - a cannot break a true tie
ZERO_METHOD = "zsplit"    # zero differences keep their rank, split half to W+ and half to W- (docs/compare.md)
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_METHOD = "BCa"  # bias-corrected and accelerated: better coverage than percentile for skewed data
SEED = 0

# scipy 1.15 renamed wilcoxon's method "approx" to "asymptotic" and bootstrap's random_state to rng.
_ASYMPTOTIC = "asymptotic" if tuple(int(x) for x in scipy.__version__.split(".")[:2]) >= (1, 15) else "approx"
_RNG_KW = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"


@dataclass(frozen=True)
class Summary:
    """Test mAP of one variant over trials; ``std`` uses ddof=1 (NaN with fewer than 2 trials)."""

    mean: float
    std: float
    median: float
    n: int


@dataclass(frozen=True)
class PairedTest:
    """Wilcoxon signed-rank test of ``b - a`` over paired trials, with effect size and bootstrap interval.

    ``w`` is scipy's two-sided statistic ``min(W+, W-)``; ``w_plus`` sums the ranks of trials where ``b`` won.
    ``p`` is None when no test is possible (fewer than 2 pairs); ``ci_low``/``ci_high`` are None when the
    bootstrap cannot give an interval. ``note`` says why, and which method was used when it is not exact.
    """

    n: int
    mean_diff: float
    ci_low: float | None
    ci_high: float | None
    w: float | None
    w_plus: float | None
    w_minus: float | None
    p: float | None
    method: Method | None
    rank_biserial: float | None
    note: str


@dataclass(frozen=True)
class PairRow:
    """One row of the pairwise table: the paired test of ``b`` against ``a`` plus the Holm-adjusted p."""

    a: str
    b: str
    n: int
    mean_diff: float
    ci_low: float | None
    ci_high: float | None
    w: float | None
    w_plus: float | None
    w_minus: float | None
    p: float | None
    method: Method | None
    p_holm: float | None
    mark: str
    rank_biserial: float | None
    note: str


def describe(maps: Sequence[float]) -> Summary:
    """Mean, standard deviation (ddof=1), median and count of a variant's per-trial mAPs (NaNs dropped)."""
    x = np.asarray(maps, dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return Summary(math.nan, math.nan, math.nan, 0)
    with np.errstate(invalid="ignore"):  # an infinite d′ (AUC 1) makes the spread undefined, not an error
        std = float(np.std(x, ddof=1)) if x.size > 1 else math.nan
    return Summary(float(np.mean(x)), std, float(np.median(x)), int(x.size))


def min_exact_p(n: int) -> float:
    """The smallest two-sided p the exact test can give with ``n`` pairs: all signs alike, ``2 / 2**n``."""
    return min(1.0, 2.0 / 2.0 ** n)


def signed_rank_sums(d: np.ndarray) -> tuple[float, float]:
    """``(W+, W-)``: the sums of the average ranks of ``|d|`` over positive and negative differences.

    Zero differences keep their rank and give half of it to each sum (``zsplit``), as in the test.
    """
    ranks = stats.rankdata(np.abs(d))
    zero_half = ranks[d == 0].sum() / 2
    return float(ranks[d > 0].sum() + zero_half), float(ranks[d < 0].sum() + zero_half)


def paired_test(a: Sequence[float], b: Sequence[float], *, seed: int = SEED,
                n_resamples: int = BOOTSTRAP_RESAMPLES, interval: bool = True) -> PairedTest:
    """Two-sided Wilcoxon signed-rank test of paired mAPs ``b`` against ``a`` (same trial order).

    The exact null distribution is used for n ≤ 50 pairs without ties or zero differences; otherwise the
    normal approximation with tie-corrected variance and continuity correction ("approx"). Identical
    results in every trial give p = 1 ("all-equal"). Fewer than 2 pairs give no test (p None).
    ``interval=False`` skips the bootstrap (``ci_low``/``ci_high`` None): the p-value alone, for reruns.
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise AudiobenchError(f"paired test needs two equally long 1-D sequences, got {x.shape} and {y.shape}")
    if np.isnan(x).any() or np.isnan(y).any():
        raise AudiobenchError("paired test got NaN mAPs: drop the unfinished trials first")
    d = np.round(y - x, ROUND_DECIMALS)
    n = int(d.size)
    mean_diff = float(d.mean()) if n else math.nan
    if n < 2:
        return PairedTest(n, mean_diff, None, None, None, None, None, None, None, None,
                          f"{n} paired trial{'s' if n != 1 else ''}: the test needs at least 2 trials")
    ci_low, ci_high, ci_note = bootstrap_ci(x, y, seed=seed, n_resamples=n_resamples) if interval else \
        (None, None, "")
    notes = [ci_note] if ci_note else []
    if np.all(d == 0):
        notes.insert(0, f"all {n} trials gave identical mAPs (every difference is zero): p = 1, no evidence "
                        f"of a difference")
        half = n * (n + 1) / 4
        return PairedTest(n, mean_diff, ci_low, ci_high, half, half, half, 1.0, "all-equal", 0.0,
                          "; ".join(notes))
    w_plus, w_minus = signed_rank_sums(d)
    zeros = int(np.count_nonzero(d == 0))
    _, counts = np.unique(np.abs(d[d != 0]), return_counts=True)
    tied = int(counts[counts > 1].sum())  # nonzero differences sharing their absolute value with another
    if zeros == 0 and tied == 0 and n <= EXACT_MAX_N:
        method: Method = "exact"
        res = stats.wilcoxon(d, zero_method=ZERO_METHOD, alternative="two-sided", method="exact")
    else:
        method = "approx"
        why = []
        if zeros:
            why.append(f"{zeros} of {n} trials gave identical mAPs (zero differences, ranks split)")
        if tied:
            why.append(f"{tied} of {n} differences tied in absolute value (tie-corrected variance)")
        if n > EXACT_MAX_N:
            why.append(f"n = {n} > {EXACT_MAX_N}")
        notes.insert(0, "normal approximation with continuity correction: " + ", ".join(why))
        res = stats.wilcoxon(d, zero_method=ZERO_METHOD, correction=True, alternative="two-sided",
                             method=_ASYMPTOTIC)
    if min_exact_p(n) >= 0.05:
        notes.insert(0, f"with {n} trials the exact test's smallest possible p is {min_exact_p(n):.4g}: "
                        f"no difference can reach p < 0.05 (use at least 6 trials)")
    r = (w_plus - w_minus) / (w_plus + w_minus)
    return PairedTest(n, mean_diff, ci_low, ci_high, float(res.statistic), w_plus, w_minus,
                      float(res.pvalue), method, r, "; ".join(notes))


def bootstrap_ci(a: np.ndarray, b: np.ndarray, *, seed: int = SEED,
                 n_resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float | None, float | None, str]:
    """Paired BCa bootstrap 95% interval of ``mean(b - a)``: ``(low, high, note)``, None where undefined.

    Trials are resampled as pairs (``paired=True``), so the interval keeps the pairing the test uses.
    A seeded generator makes it reproducible. BCa is undefined when every difference is the same value
    (the bootstrap distribution is a point): the interval is None and the note says why.
    """
    if a.size < 2:
        return None, None, "bootstrap interval needs at least 2 trials"
    if np.ptp(np.round(b - a, ROUND_DECIMALS)) == 0:
        return None, None, "no bootstrap interval: every trial gave the same difference"

    def mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(y - x, axis=axis)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate data: scipy warns and returns NaN, handled below
        res = stats.bootstrap((a, b), mean_diff, paired=True, vectorized=True, n_resamples=n_resamples,
                              confidence_level=CONFIDENCE, method=BOOTSTRAP_METHOD,
                              **{_RNG_KW: np.random.default_rng(seed)})
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return None, None, "no bootstrap interval: the BCa interval is undefined for these differences"
    return low, high, ""


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment (family-wise error) of the p-values; None entries pass through.

    >>> holm([0.01, 0.04, 0.03, 0.005])
    [0.03, 0.06, 0.06, 0.02]
    """
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    p = np.array([pvalues[i] for i in idx], dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    # The k-th smallest p (k = 0..m-1) is multiplied by m - k; a running maximum keeps the order monotone.
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    out: list[float | None] = [None] * len(pvalues)
    for i, value in zip(idx, adjusted):
        out[i] = round(float(value), 15)
    return out


def significance_mark(p: float | None) -> str:
    """``***`` p < 0.001, ``**`` p < 0.01, ``*`` p < 0.05, else empty (applied to Holm-adjusted p)."""
    if p is None:
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def variant_pairs(variants: Sequence[str], *, baseline: str, pairs: Pairs) -> list[tuple[str, str]]:
    """The ``(a, b)`` pairs reported: every pair in the given order, or the baseline against each other."""
    if pairs not in PAIRS:
        raise AudiobenchError(f"unknown pairs {pairs!r} (choose from {', '.join(PAIRS)})")
    if baseline not in variants:
        raise AudiobenchError(f"baseline {baseline!r} is not among the variants ({', '.join(variants)})")
    if pairs == "baseline":
        return [(baseline, v) for v in variants if v != baseline]
    return list(itertools.combinations(variants, 2))


def compare_variants(trials: pd.DataFrame, *, baseline: str, pairs: Pairs = "all",
                     variants: Sequence[str] | None = None, seed: int = SEED,
                     n_resamples: int = BOOTSTRAP_RESAMPLES, column: str = "test_map") -> list[PairRow]:
    """The pairwise table over ``trials`` (columns ``trial, variant`` and ``column``), Holm-corrected across it.

    Each pair uses the trials both variants finished. ``variants`` fixes the order (default: order of first
    appearance). Marks come from the Holm-adjusted p. ``column``: the per-trial metric tested (``test_map``;
    ``test_auc`` or ``test_dprime`` for ``compare --metric``).
    """
    missing = {"trial", "variant", column} - set(trials.columns)
    if missing:
        raise AudiobenchError(f"trials table lacks column(s) {', '.join(sorted(missing))}")
    order = list(variants) if variants is not None else list(dict.fromkeys(trials["variant"]))
    wide = trials.pivot_table(index="trial", columns="variant", values=column, aggfunc="first")
    tests: list[tuple[str, str, PairedTest]] = []
    for a, b in variant_pairs(order, baseline=baseline, pairs=pairs):
        if a not in wide or b not in wide:
            both = pd.DataFrame(columns=[a, b], dtype=float)
        else:
            both = wide[[a, b]].dropna()
        t = paired_test(both[a].to_numpy(), both[b].to_numpy(), seed=seed, n_resamples=n_resamples)
        lost = int(wide.shape[0] - both.shape[0])
        if lost:
            t = _with_note(t, f"{lost} trial{'s' if lost > 1 else ''} without both results left out")
        tests.append((a, b, t))
    adjusted = holm([t.p for _, _, t in tests])
    return [PairRow(a, b, t.n, t.mean_diff, t.ci_low, t.ci_high, t.w, t.w_plus, t.w_minus, t.p, t.method,
                    p_holm, significance_mark(p_holm), t.rank_biserial, t.note)
            for (a, b, t), p_holm in zip(tests, adjusted)]


def _with_note(t: PairedTest, note: str) -> PairedTest:
    return replace(t, note="; ".join(x for x in (t.note, note) if x))


CLASS_RESAMPLES = 2000  # per class: 527 classes x 9999 resamples would dominate a report's time


def class_gains(per_class: pd.DataFrame, variant: str, over: str, *, seed: int = SEED) -> pd.DataFrame:
    """Per class, the mean AP gain of ``variant`` over ``over`` across trials, with a 95% interval.

    ``per_class`` has one row per (trial, variant, class) with ``ap`` (``per_class.csv``). With 2 or more
    trials where both variants have the class's AP, the interval is a paired percentile bootstrap over those
    trials (``interval == "trials"``). With one trial, when the rows carry ``ap_low``/``ap_high`` (a
    bootstrap over test clips of each AP), it is the conservative ``[low(v) - high(o), high(v) - low(o)]``
    (``"clips"``); else there is none (NaN).
    """
    cols = ["class_index", "name", "gain", "low", "high", "interval"]
    rows = per_class[per_class["variant"].isin([variant, over])].dropna(subset=["ap"])
    if rows.empty:
        return pd.DataFrame(columns=cols)
    wide = rows.pivot_table(index=["class_index", "trial"], columns="variant", values="ap", aggfunc="first")
    if variant not in wide or over not in wide:
        return pd.DataFrame(columns=cols)
    names = rows.drop_duplicates("class_index").set_index("class_index")["name"]
    has_clip_ci = {"ap_low", "ap_high"} <= set(rows.columns)
    out = []
    for c, both in wide[[variant, over]].dropna().groupby(level="class_index"):
        d = (both[variant] - both[over]).to_numpy(dtype=np.float64)
        low = high = math.nan
        how = ""
        if d.size >= 2 and np.ptp(d) > 0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = stats.bootstrap((d,), np.mean, vectorized=True, n_resamples=CLASS_RESAMPLES,
                                      confidence_level=CONFIDENCE, method="percentile",
                                      **{_RNG_KW: np.random.default_rng(seed)})
            low, high, how = float(res.confidence_interval.low), float(res.confidence_interval.high), "trials"
        elif d.size >= 2:
            low = high = float(d[0])
            how = "trials"
        elif has_clip_ci:
            mine = rows[rows["class_index"] == c].set_index("variant")
            if mine[["ap_low", "ap_high"]].notna().all().all():
                low = float(mine.loc[variant, "ap_low"] - mine.loc[over, "ap_high"])
                high = float(mine.loc[variant, "ap_high"] - mine.loc[over, "ap_low"])
                how = "clips"
        out.append({"class_index": int(c), "name": str(names.get(c, c)), "gain": float(d.mean()), "low": low,
                    "high": high, "interval": how})
    return pd.DataFrame(out, columns=cols)

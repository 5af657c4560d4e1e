"""The stability of a verdict: each statistic against scipy, numpy or scikit-learn on known inputs, and the
marks on constructed cases (one trial decides: fragile; a clear difference: robust; none: its MDE)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import average_precision_score

from audiobench.study.report import render_report
from audiobench.study.stability import (hierarchical_interval, minimum_detectable_effect, pair_stability, power,
                                        probability_of_improvement, trial_interval, trials_needed)
from audiobench.study.stats import paired_test
from audiobench.training.metrics import map_of_weights
from test_report import write_run

A = np.array([0.60, 0.61, 0.59, 0.62, 0.60, 0.61, 0.60, 0.62, 0.61, 0.60])
# Ranks of |d| 1..10; trial 8's loss (rank 9) alone keeps W- = 9 above the exact test's critical 8 at n = 10.
ONE_TRIAL_DECIDES = np.array([0.005, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040, -0.045, 0.050])
CLEAR = np.array([0.041, 0.052, 0.038, 0.047, 0.060, 0.044, 0.055, 0.039, 0.049, 0.058, 0.043, 0.051])
NONE = np.array([0.021, -0.012, 0.034, -0.028, 0.015, -0.019, 0.008, -0.030, 0.004, -0.006])


def _predictions(rng: np.random.Generator, clips: int, classes: int, skill: float) -> tuple[np.ndarray, np.ndarray]:
    targets = rng.random((clips, classes)) < 0.3
    targets[0] = True  # every class has a positive
    return targets + rng.normal(0, 1 / skill, targets.shape), targets


def test_map_of_weights_is_sklearns_weighted_map_and_the_plain_map_with_unit_weights():
    rng = np.random.default_rng(0)
    scores, targets = _predictions(rng, 40, 3, 1.5)
    weights = rng.multinomial(40, np.full(40, 1 / 40), size=5).astype(float)
    expected = [np.mean([average_precision_score(targets[:, c], scores[:, c], sample_weight=w) for c in range(3)])
                for w in weights]
    np.testing.assert_allclose(map_of_weights(scores, targets, weights), expected, rtol=1e-12)
    plain = np.mean([average_precision_score(targets[:, c], scores[:, c]) for c in range(3)])
    assert map_of_weights(scores, targets, np.ones(40))[0] == pytest.approx(plain, rel=1e-12)


def test_with_one_trial_the_hierarchical_interval_is_scipys_paired_bootstrap_over_clips():
    rng = np.random.default_rng(1)
    a, targets = _predictions(rng, 60, 3, 1.0)
    b = targets + rng.normal(0, 0.7, targets.shape)

    def diff(rows):  # the mAP difference on one resample of the clips (their rows), by scikit-learn
        rows = rows.astype(int)
        t = targets[rows]
        keep = [c for c in range(t.shape[1]) if t[:, c].any()]
        return (np.mean([average_precision_score(t[:, c], b[rows, c]) for c in keep])
                - np.mean([average_precision_score(t[:, c], a[rows, c]) for c in keep]))

    ref = sps.bootstrap((np.arange(60),), diff, vectorized=False, n_resamples=400, method="percentile",
                        rng=np.random.default_rng(2)).confidence_interval
    low, high = hierarchical_interval([(a, targets)], [(b, targets)], resamples=400, seed=3)
    width = ref.high - ref.low
    assert abs(low - ref.low) < 0.2 * width and abs(high - ref.high) < 0.2 * width


def test_over_trials_the_hierarchical_interval_adds_the_clips_variance_to_scipys_trial_bootstrap():
    rng = np.random.default_rng(4)
    a = [_predictions(rng, 30, 2, 1.0) for _ in range(6)]
    b = [(t + rng.normal(0, 0.8, t.shape), t) for _, t in a]
    d = [map_of_weights(sb, t, np.ones(30))[0] - map_of_weights(sa, t, np.ones(30))[0]
         for (sa, t), (sb, _) in zip(a, b)]
    trials_only = trial_interval(d, resamples=1000, seed=0)
    ref = sps.bootstrap((np.array(d),), np.mean, n_resamples=1000, method="percentile",
                        rng=np.random.default_rng(0)).confidence_interval
    assert trials_only == pytest.approx((ref.low, ref.high), abs=1e-12)
    low, high = hierarchical_interval(a, b, resamples=500, seed=0)
    assert low < np.mean(d) < high and high - low > ref.high - ref.low


def test_probability_of_improvement_is_the_win_fraction_with_scipys_wilson_interval():
    p, low, high = probability_of_improvement(A, A + ONE_TRIAL_DECIDES)
    ci = sps.binomtest(9, 10).proportion_ci(method="wilson")
    assert (p, low, high) == (0.9, ci.low, ci.high)
    # the Wilson score interval's formula, for 9 of 10 at z = 1.96
    z, n, ph = sps.norm.ppf(0.975), 10, 0.9
    centre, half = (ph + z * z / (2 * n)) / (1 + z * z / n), z / (1 + z * z / n) * math.sqrt(ph * (1 - ph) / n
                                                                                         + z * z / (4 * n * n))
    assert (low, high) == pytest.approx((centre - half, centre + half), abs=1e-9)


def test_the_mde_is_detected_80_percent_of_the_time_by_scipys_t_test_and_about_that_by_its_wilcoxon():
    sd, n = 0.02, 20
    mde = minimum_detectable_effect(sd, n)
    x = np.random.default_rng(0).normal(mde, sd, (4000, n))
    assert (sps.ttest_1samp(x, 0, axis=1).pvalue < 0.05).mean() == pytest.approx(0.80, abs=0.025)
    # the Wilcoxon signed-rank test is 3/π as efficient under normal differences: a little less power
    assert 0.72 < (sps.wilcoxon(x[:2000], axis=1).pvalue < 0.05).mean() < 0.82
    assert minimum_detectable_effect(sd, 5) is None  # 5 trials: the exact test cannot reach p < 0.05
    assert minimum_detectable_effect(0.0, n) is None


def test_trials_needed_is_the_first_count_with_80_percent_power():
    n = trials_needed(0.01, 0.02)
    assert power(0.01, 0.02, n) >= 0.8 > power(0.01, 0.02, n - 1)
    x = np.random.default_rng(1).normal(0.01, 0.02, (4000, n))
    assert (sps.ttest_1samp(x, 0, axis=1).pvalue < 0.05).mean() == pytest.approx(0.80, abs=0.025)
    assert trials_needed(0.5, 0.02) == 6 and trials_needed(0.0, 0.02) is None  # 6: the exact test's floor


def test_a_verdict_one_trial_decides_is_fragile():
    s = pair_stability(A, A + ONE_TRIAL_DECIDES)
    assert paired_test(A, A + ONE_TRIAL_DECIDES).p > 0.05
    keep = np.arange(10) != 8
    assert paired_test(A[keep], (A + ONE_TRIAL_DECIDES)[keep]).p < 0.05  # without trial 8: significant
    assert s.mark == "fragile" and s.flips == (8,) and "leaving out trial 8 gives significance" in s.why


def test_a_clear_difference_is_robust_and_no_difference_gives_its_mde():
    a = np.r_[A, 0.61, 0.60]
    s = pair_stability(a, a + CLEAR)
    assert (s.mark, s.label, s.flips) == ("robust", "robust", ()) and s.diff_low > 0
    none = pair_stability(A, A + NONE)
    assert none.mark == "no detectable difference" and none.diff_low < 0 < none.diff_high
    assert none.label == f"no detectable difference (MDE {none.mde:.3f})"
    assert none.mde == pytest.approx(minimum_detectable_effect(float(np.std(NONE, ddof=1)), 10))


def test_the_report_says_fragile_robust_and_no_detectable_difference(tmp_path: Path):
    maps = np.c_[A, A + ONE_TRIAL_DECIDES, A + NONE]
    run = write_run(tmp_path / "run", maps, ["noatt-weak", "att-unsup", "att-self"], attention=False,
                    pairs="baseline")
    text = render_report(run).read_text()
    summary = text.split("## Summary", 1)[1].split("## Warnings", 1)[0]
    assert "scored higher in 9 of 10 trials" in summary and ": fragile, leaving out trial 8 gives significance" \
        in summary
    assert "did not differ significantly" in summary and ": no detectable difference (MDE 0.0" in summary
    tests = json.loads((run / "results.json").read_text())["tests"]
    assert [t["stability"]["mark"] for t in tests] == ["fragile", "no detectable difference"]
    assert tests[0]["stability"]["interval"] == "trials"  # no saved predictions: trials resampled only
    assert "| noatt-weak | att-unsup | +0.018" in text.split("## Stability of each verdict", 1)[1]

"""Every statistic of `compare` checked against values computed independently on fixed inputs.

Exact p-values come from brute-force enumeration of the 2^n sign patterns, normal approximations from the
textbook formula with math.erfc, effect sizes and Holm from hand-worked numbers, the BCa interval from an
independent numpy implementation.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from audiobench.core.errors import AudiobenchError
from audiobench.study.stats import (bootstrap_ci, compare_variants, describe, holm, min_exact_p, paired_test,
                              significance_mark, variant_pairs)

A6 = np.array([0.50, 0.52, 0.55, 0.49, 0.51, 0.53])
D6 = np.array([0.03, 0.01, -0.02, 0.05, 0.04, 0.06])  # ranks of |d|: 3 1 2 5 4 6, one negative (rank 2)


def exact_two_sided_p(ranks: np.ndarray, w_plus: float) -> float:
    """P(W+ as extreme as observed) under H0, every sign pattern equally likely: 2 * min(tail), at most 1."""
    sums = np.array([sum(r for r, s in zip(ranks, signs) if s) for signs in
                     itertools.product((0, 1), repeat=len(ranks))])
    return min(1.0, 2 * min(np.mean(sums <= w_plus), np.mean(sums >= w_plus)))


def normal_approx_p(w_plus: float, n: int, tie_sizes: list[int]) -> float:
    """Two-sided p of the normal approximation with tie-corrected variance and continuity correction."""
    mean = n * (n + 1) / 4
    var = n * (n + 1) * (2 * n + 1) / 24 - sum(t ** 3 - t for t in tie_sizes) / 48
    z = (abs(w_plus - mean) - 0.5) / math.sqrt(var)
    return math.erfc(z / math.sqrt(2))


def test_describe_mean_std_ddof1_median() -> None:
    s = describe([0.60, 0.62, 0.61, 0.65])
    assert s.n == 4 and s.mean == pytest.approx(0.62) and s.median == pytest.approx(0.615)
    # deviations -0.02 0 -0.01 0.03: squares sum to 0.0014, / (n - 1)
    assert s.std == pytest.approx(math.sqrt(0.0014 / 3))
    one = describe([0.7])
    assert one.n == 1 and one.mean == 0.7 and math.isnan(one.std)
    assert describe([]).n == 0


def test_exact_test_matches_hand_computation_and_enumeration() -> None:
    t = paired_test(A6, A6 + D6)
    # W+ = 3+1+5+4+6 = 19, W- = 2; W = min = 2. Patterns with W+ <= 2: {}, {1}, {2}: p = 2 * 3/64
    assert (t.w_plus, t.w_minus, t.w) == (19.0, 2.0, 2.0)
    assert t.method == "exact" and t.n == 6
    assert t.p == pytest.approx(6 / 64) == exact_two_sided_p(np.arange(1, 7), 2.0)
    assert t.rank_biserial == pytest.approx(17 / 21)  # (W+ - W-) / (W+ + W-)
    assert t.mean_diff == pytest.approx(D6.mean())
    assert "smallest possible p" not in t.note  # n = 6 can reach 2/64 < 0.05


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_exact_p_of_ten_random_trials_matches_enumeration(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 0.7, 10)
    d = rng.permutation(np.arange(1, 11)) * 0.001 * rng.choice([-1, 1], 10, p=[0.3, 0.7])
    t = paired_test(a, a + d)
    ranks = np.argsort(np.argsort(np.abs(d))) + 1.0
    w_plus = ranks[d > 0].sum()
    assert t.method == "exact" and t.w_plus == w_plus and t.w == min(w_plus, 55 - w_plus)
    assert t.p == pytest.approx(exact_two_sided_p(ranks, w_plus), rel=1e-12)
    assert t.rank_biserial == pytest.approx((w_plus - (55 - w_plus)) / 55)


def test_swapping_the_pair_flips_the_sign_not_the_p() -> None:
    ab, ba = paired_test(A6, A6 + D6), paired_test(A6 + D6, A6)
    assert ba.p == ab.p and ba.w == ab.w and ba.rank_biserial == pytest.approx(-ab.rank_biserial)
    assert ba.mean_diff == pytest.approx(-ab.mean_diff)


def test_ties_use_the_normal_approximation_and_say_so() -> None:
    a = np.array([0.50, 0.51, 0.52, 0.53, 0.54, 0.55, 0.56])
    d = np.array([0.01, 0.01, -0.02, 0.03, 0.03, 0.03, 0.04])
    t = paired_test(a, a + d)  # a + d - a is not exactly d in floating point: ties must survive roundoff
    # |d| ranks: 1.5 1.5 3 5 5 5 7; W+ = 25, W- = 3; ties of 2 and 3 values
    assert (t.w_plus, t.w_minus, t.w) == (25.0, 3.0, 3.0)
    assert t.method == "approx"
    assert t.p == pytest.approx(normal_approx_p(25.0, 7, [2, 3]), rel=1e-9)
    assert t.p == pytest.approx(0.0733, abs=1e-4)
    assert "normal approximation" in t.note and "5 of 7 differences tied" in t.note
    assert t.rank_biserial == pytest.approx(22 / 28)


def test_zero_differences_are_split_and_use_the_approximation() -> None:
    a = np.full(5, 0.5)
    d = np.array([0.0, 0.01, 0.02, -0.03, 0.04])
    t = paired_test(a, a + d)
    # zsplit: |d| ranks 1..5, the zero's rank 1 gives 0.5 to each side: W+ = 2+3+5+0.5, W- = 4+0.5
    assert (t.w_plus, t.w_minus) == (10.5, 4.5)
    assert t.method == "approx" and "1 of 5 trials gave identical mAPs" in t.note
    assert t.p == pytest.approx(normal_approx_p(10.5, 5, []), rel=1e-9)
    assert t.rank_biserial == pytest.approx(6 / 15)
    assert "smallest possible p is 0.0625" in t.note


def test_identical_variants_give_p_one_with_a_note() -> None:
    t = paired_test(A6, A6.copy())
    assert t.p == 1.0 and t.method == "all-equal" and t.rank_biserial == 0.0 and t.mean_diff == 0.0
    assert "identical mAPs" in t.note and t.ci_low is None and "same difference" in t.note


def test_one_trial_gives_no_test_with_a_note() -> None:
    t = paired_test([0.6], [0.7])
    assert t.p is None and t.method is None and t.w is None and t.rank_biserial is None
    assert "needs at least 2 trials" in t.note and t.mean_diff == pytest.approx(0.1)


@pytest.mark.parametrize("n, smallest", [(2, 0.5), (3, 0.25), (4, 0.125), (5, 0.0625), (6, 0.03125)])
def test_smallest_exact_p_and_the_note_for_few_trials(n: int, smallest: float) -> None:
    assert min_exact_p(n) == smallest
    a = np.linspace(0.5, 0.6, n)
    t = paired_test(a, a + 0.001 * np.arange(1, n + 1))  # b wins every trial: the most extreme outcome
    assert t.method == "exact" and t.p == pytest.approx(smallest)
    assert ("smallest possible p" in t.note) == (n <= 5)


def test_bootstrap_interval_holds_the_mean_difference_and_is_reproducible() -> None:
    rng = np.random.default_rng(7)
    a = rng.uniform(0.55, 0.65, 20)
    b = a + rng.normal(0.01, 0.01, 20)
    low, high, note = bootstrap_ci(a, b, seed=0)
    assert note == "" and low < (b - a).mean() < high
    assert bootstrap_ci(a, b, seed=0) == (low, high, "")
    assert bootstrap_ci(a, b, seed=1) != (low, high, "")
    ref_low, ref_high = bca_reference(b - a, n_resamples=20000, seed=123)
    width = high - low
    assert low == pytest.approx(ref_low, abs=0.1 * width) and high == pytest.approx(ref_high, abs=0.1 * width)


def bca_reference(d: np.ndarray, *, n_resamples: int, seed: int) -> tuple[float, float]:
    """BCa 95% interval of mean(d), written from Efron & Tibshirani (1993) ch. 14 with numpy only."""
    from statistics import NormalDist
    norm = NormalDist()
    rng = np.random.default_rng(seed)
    theta = d.mean()
    boot = d[rng.integers(0, d.size, (n_resamples, d.size))].mean(axis=1)
    z0 = norm.inv_cdf(np.mean(boot < theta))
    jack = np.array([np.delete(d, i).mean() for i in range(d.size)])
    u = jack.mean() - jack
    acc = (u ** 3).sum() / (6 * (u ** 2).sum() ** 1.5)
    alphas = []
    for q in (0.025, 0.975):
        z = z0 + norm.inv_cdf(q)
        alphas.append(norm.cdf(z0 + z / (1 - acc * z)))
    return float(np.quantile(boot, alphas[0])), float(np.quantile(boot, alphas[1]))


def test_bootstrap_degenerate_or_too_small_gives_none_with_a_note() -> None:
    assert bootstrap_ci(np.array([0.5]), np.array([0.6]))[:2] == (None, None)
    low, high, note = bootstrap_ci(np.full(5, 0.5), np.full(5, 0.51))
    assert (low, high) == (None, None) and "same difference" in note


def test_holm_worked_example_and_none_passthrough() -> None:
    # sorted 0.005 0.01 0.03 0.04 times 4 3 2 1 = 0.02 0.03 0.06 0.04 -> running max 0.02 0.03 0.06 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.01, None, 0.04]) == [pytest.approx(0.02), None, pytest.approx(0.04)]
    assert holm([0.6, 0.7]) == [1.0, 1.0]  # capped at 1
    assert holm([]) == [] and holm([None]) == [None]


def test_marks() -> None:
    assert [significance_mark(p) for p in (0.0009, 0.001, 0.0099, 0.01, 0.049, 0.05, None)] == \
        ["***", "**", "**", "*", "*", "", ""]


def trials_table(maps: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"trial": k, "variant": v, "test_map": m}
                         for v, values in maps.items() for k, m in enumerate(values) if not math.isnan(m)])


def test_compare_variants_all_pairs_holm_and_marks() -> None:
    base = list(A6)
    maps = {"noatt-weak": base, "att-unsup": list(A6 + D6), "att-self": list(A6 + np.arange(1, 7) * 0.01)}
    rows = compare_variants(trials_table(maps), baseline="noatt-weak", pairs="all")
    assert [(r.a, r.b) for r in rows] == [("noatt-weak", "att-unsup"), ("noatt-weak", "att-self"),
                                          ("att-unsup", "att-self")]
    ps = [paired_test(maps[r.a], maps[r.b]).p for r in rows]
    assert [r.p for r in rows] == ps
    assert [r.p_holm for r in rows] == pytest.approx(holm(ps))
    self_row = rows[1]  # b wins all 6: p = 2/64, Holm: smallest of 3 -> 3 * 2/64 = 0.09375, no mark
    assert self_row.p == pytest.approx(2 / 64) and self_row.p_holm == pytest.approx(6 / 64)
    assert self_row.mark == "" and self_row.rank_biserial == 1.0
    assert self_row.ci_low <= self_row.mean_diff <= self_row.ci_high


def test_compare_variants_baseline_pairs_and_unfinished_trials() -> None:
    maps = {"noatt-weak": list(A6), "att-self": list(A6 + D6[::-1]), "att-strong": [*A6[:5] + 0.01, math.nan]}
    rows = compare_variants(trials_table(maps), baseline="noatt-weak", pairs="baseline")
    assert [(r.a, r.b, r.n) for r in rows] == [("noatt-weak", "att-self", 6), ("noatt-weak", "att-strong", 5)]
    assert "1 trial without both results left out" in rows[1].note


def test_variant_pairs_refuses_unknown_baseline_or_pairs() -> None:
    assert variant_pairs(["a", "b", "c"], baseline="b", pairs="baseline") == [("b", "a"), ("b", "c")]
    with pytest.raises(AudiobenchError, match="baseline 'x' is not among the variants"):
        variant_pairs(["a", "b"], baseline="x", pairs="all")
    with pytest.raises(AudiobenchError, match="unknown pairs 'some'"):
        variant_pairs(["a", "b"], baseline="a", pairs="some")  # type: ignore[arg-type]

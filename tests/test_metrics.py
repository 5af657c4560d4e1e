"""The metrics beside mAP: macro ROC AUC and d′ against scikit-learn and scipy, per-class AP intervals."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score

from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import json_safe
from audiobench.training.metrics import _ap_of_weights, bootstrap_ap, dprime, roc_auc, score


def _data(n=120, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    targets = rng.random((n, classes)) < 0.25
    scores = np.clip(rng.normal(0.3 + 0.3 * targets, 0.2), 0, 1).round(2)  # rounded: tied scores too
    targets[:, 3] = False  # a class without a positive
    targets[:, 4] = True   # a class without a negative
    return scores, targets


def test_macro_auc_is_sklearns_over_the_classes_with_both_outcomes():
    scores, targets = _data()
    result = roc_auc(scores, targets)
    assert result.per_class[3] is None and result.per_class[4] is None
    for c in range(3):
        assert result.per_class[c] == pytest.approx(roc_auc_score(targets[:, c], scores[:, c]), abs=1e-12)
    assert result.auc == pytest.approx(roc_auc_score(targets[:, :3], scores[:, :3], average="macro"), abs=1e-12)


def test_dprime_is_root_two_times_the_normal_quantile_of_auc():
    assert dprime(0.5) == 0.0
    assert dprime(norm.cdf(1 / math.sqrt(2))) == pytest.approx(1.0, abs=1e-12)  # d′ = 1 by construction
    assert dprime(0.9) == pytest.approx(math.sqrt(2) * norm.ppf(0.9), abs=1e-12)
    assert dprime(0.3) < 0  # worse than chance: negative
    scores, targets = _data()
    assert roc_auc(scores, targets).dprime == pytest.approx(math.sqrt(2) * norm.ppf(roc_auc(scores, targets).auc))


def test_auc_without_any_class_having_both_outcomes_is_an_error():
    with pytest.raises(AudiobenchError, match="AUC is undefined"):
        roc_auc(np.array([[0.1], [0.9]]), np.array([[1], [1]]))


def test_ap_of_a_resample_is_sklearns_with_the_resample_counts_as_weights():
    scores, targets = _data()
    rng = np.random.default_rng(5)
    n = len(scores)
    weights = rng.multinomial(n, np.full(n, 1 / n), size=30).astype(float)
    for c in range(3):
        order = np.argsort(-scores[:, c], kind="mergesort")
        ends = np.r_[np.flatnonzero(np.diff(scores[order, c])), n - 1]
        mine = _ap_of_weights(targets[:, c].astype(float), order, ends, weights)
        ref = [average_precision_score(targets[:, c], scores[:, c], sample_weight=w) for w in weights]
        np.testing.assert_allclose(mine, ref, atol=1e-12)


def test_bootstrap_interval_is_seeded_brackets_the_ap_and_is_fast():
    scores, targets = _data(n=400, classes=5)
    started = time.perf_counter()
    low, high = bootstrap_ap(scores, targets, resamples=1000, seed=1)
    assert time.perf_counter() - started < 2.0  # all resamples of a class at once
    assert (low, high) == bootstrap_ap(scores, targets, resamples=1000, seed=1)
    assert low != bootstrap_ap(scores, targets, resamples=1000, seed=2)[0]
    assert low[3] is None and high[3] is None  # no positive: no AP, no interval
    for c in (0, 1, 2):
        assert low[c] < average_precision_score(targets[:, c], scores[:, c]) < high[c]
    assert low[4] == high[4] == 1.0  # every clip positive: AP is 1 in every resample


def test_score_gathers_every_metric_and_keeps_the_map_unchanged():
    scores, targets = _data()
    result = score(scores, targets, resamples=50)
    aps = [average_precision_score(targets[:, c], scores[:, c]) for c in (0, 1, 2, 4)]
    assert result.ap.map == pytest.approx(np.mean(aps), abs=1e-15)
    summary = result.summary("test")
    assert set(summary) == {"test_map", "test_auc", "test_dprime"}
    assert summary["test_dprime"] == pytest.approx(math.sqrt(2) * norm.ppf(summary["test_auc"]))
    rows = result.per_class()
    assert [set(r) for r in rows] == [{"ap", "ap_low", "ap_high", "auc"}] * 5
    assert rows[3] == {"ap": None, "ap_low": None, "ap_high": None, "auc": None}
    assert score(scores, targets, resamples=0).per_class()[0]["ap_low"] is None


def test_a_perfect_auc_has_an_infinite_dprime_that_results_files_store_as_null():
    assert dprime(1.0) == math.inf
    assert json.loads(json.dumps(json_safe({"test_dprime": dprime(1.0), "runs": [np.float32(0.5)]}),
                                 allow_nan=False)) == {"test_dprime": None, "runs": [0.5]}

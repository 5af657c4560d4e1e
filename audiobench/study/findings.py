"""The report in words: one plain sentence per tested pair, and the warnings a reviewer would raise.

Everything here reads what ``results.json`` holds (the tests of :mod:`audiobench.study.stats`, the per-variant
summaries, the counts :func:`training_check` and :func:`win_counts` add), so ``report.md`` says nothing that
``results.json`` does not.

>>> test = {"a": "noatt-weak", "b": "att-self", "n": 20, "mean_diff": 0.018, "ci_low": 0.006, "ci_high": 0.037,
...         "p": 0.004, "p_holm": 0.019, "b_wins": 17, "a_wins": 3}
>>> sentence(test)
'att-self beat noatt-weak in 17 of 20 trials (+0.018 mAP, 95% CI +0.006 to +0.037, Holm p = 0.019).'
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from audiobench.study.stats import min_exact_p
from audiobench.training.options import LOWER_IS_BETTER, METRIC_COLUMNS

ALPHA = 0.05
MIN_TRIALS = 10  # below this, BCa intervals from the trials under-cover and the exact test is coarse
METRIC_NAMES = {"map": "mAP", "auc": "AUC", "dprime": "d′", "psds1": "PSDS1", "psds2": "PSDS2",
                "segment_f1": "segment F1", "segment_er": "segment ER", "event_f1": "event F1"}


def metric_column(metric: str | None) -> str:
    """The ``trials.csv`` column a metric's tests read (``test_map`` unless the study chose another)."""
    return METRIC_COLUMNS.get(metric or "map", "test_map")


def win_counts(trials: pd.DataFrame, a: str, b: str, column: str = "test_map", *,
               lower_is_better: bool = False) -> dict[str, int]:
    """In how many of the trials both finished ``b`` scored better than ``a`` (higher, or lower for an error
    rate), worse, and the same."""
    if column not in trials:
        return {"b_wins": 0, "a_wins": 0, "ties": 0}
    wide = trials.pivot_table(index="trial", columns="variant", values=column, aggfunc="first")
    if a not in wide or b not in wide:
        return {"b_wins": 0, "a_wins": 0, "ties": 0}
    both = wide[[a, b]].dropna()
    d = (both[b] - both[a]).round(12) * (-1 if lower_is_better else 1)
    return {"b_wins": int((d > 0).sum()), "a_wins": int((d < 0).sum()), "ties": int((d == 0).sum())}


def training_check(trials: pd.DataFrame, epochs: pd.DataFrame | None, planned_epochs: int | None) -> dict[str, Any]:
    """How many runs had their best validation epoch at their last epoch (``runs``, ``best_at_last``).

    A run's last epoch is the last row ``epochs.csv`` has for it (early stopping ends runs sooner), else the
    study's ``--epochs``. Runs whose last epoch is unknown are not counted.
    """
    if "best_epoch" not in trials:
        return {"runs": 0, "best_at_last": 0, "epochs": planned_epochs}
    last = epochs.groupby(["trial", "variant"])["epoch"].max() if epochs is not None and not epochs.empty else None
    runs = at_last = 0
    for row in trials.itertuples(index=False):
        end = last.get((row.trial, row.variant)) if last is not None else None
        end = planned_epochs if end is None or pd.isna(end) else end
        if end is None or pd.isna(row.best_epoch):
            continue
        runs += 1
        at_last += int(int(row.best_epoch) >= int(end))
    return {"runs": runs, "best_at_last": at_last, "epochs": planned_epochs}


def sentence(test: dict[str, Any], metric: str | None = "map") -> str:
    """One tested pair in words: who won in how many trials, by how much, the interval and the Holm p."""
    unit = METRIC_NAMES.get(metric or "map", metric or "mAP")
    a, b, n = test["a"], test["b"], test["n"]
    if test.get("p") is None:
        return f"{a} and {b} were not tested ({n} paired trial{'s' if n != 1 else ''})."
    diff = test["mean_diff"]
    lower = metric in LOWER_IS_BETTER  # an error rate: the better variant scored lower
    flip = diff > 0 if lower else diff < 0  # name the better variant first
    win, lose = (a, b) if flip else (b, a)
    wins = test.get("a_wins" if flip else "b_wins")
    low, high = test.get("ci_low"), test.get("ci_high")
    if flip and low is not None and high is not None:
        low, high = -high, -low
    ci = "" if low is None or high is None else f", 95% CI {low:+.3f} to {high:+.3f}"
    facts = f"({-diff if flip else diff:+.3f} {unit}{ci}, Holm p = {_p(test['p_holm'])})"
    record = f"in {wins} of {n} trials " if wins is not None else ""
    verdict = stability_words(test.get("stability"))
    if test["p_holm"] is not None and test["p_holm"] < ALPHA:
        return f"{win} beat {lose} {record}{facts}{verdict}."
    if diff == 0:
        return f"{a} and {b} did not differ ({facts[1:-1]}){verdict}."
    return (f"{win} and {lose} did not differ significantly: {win} scored {'lower' if lower else 'higher'} "
            f"{record}{facts}{verdict}.")


def stability_words(stability: dict[str, Any] | None) -> str:
    """``: robust``, ``: fragile, leaving out trial 3 loses significance`` or ``: no detectable difference
    (MDE 0.030), 40 trials would detect it`` (:mod:`audiobench.study.stability`); empty without the record."""
    if not stability or stability.get("mark") in (None, "not tested"):
        return ""
    words = f": {stability['label']}"
    if stability.get("why"):
        words += f", {stability['why']}"
    elif stability["mark"] == "no detectable difference" and stability.get("trials_needed"):
        words += f", {stability['trials_needed']} trials would detect a difference this size"
    return words


def summary(results: dict[str, Any]) -> list[str]:
    """The sentences of every tested pair, significant ones first, then a line saying what the tests were."""
    tests = list(results["tests"])
    significant = [t for t in tests if t.get("p_holm") is not None and t["p_holm"] < ALPHA]
    rest = [t for t in tests if t not in significant]
    metric = results.get("metric")
    lines = [sentence(t, metric) for t in significant + rest]
    if tests:
        lines.append(f"{len(significant)} of {len(tests)} pair{'s' if len(tests) != 1 else ''} differ at "
                     f"Holm-adjusted p < {ALPHA} (two-sided Wilcoxon signed-rank on paired trials; intervals: "
                     f"paired bootstrap of the mean difference).")
    return lines


def warnings(results: dict[str, Any]) -> list[str]:
    """Under-training, too few trials, intervals and p-values that disagree, variants missing trials."""
    found = []
    check = results.get("training") or {}
    if check.get("runs") and check["best_at_last"] * 2 > check["runs"]:
        more = f" (more than {check['epochs']}, e.g. --epochs {2 * check['epochs']})" if check.get("epochs") else ""
        found.append(f"under-trained: the best validation epoch was the last epoch in {check['best_at_last']} of "
                     f"{check['runs']} runs, so most models were still improving when training stopped; train "
                     f"with more epochs{more}.")
    n = results["trials"]
    if 0 < n < MIN_TRIALS:
        found.append(f"only {n} trial{'s' if n != 1 else ''}: bootstrap intervals over so few trials are too "
                     f"narrow, and the smallest two-sided Wilcoxon p possible with {n} trials is "
                     f"2/2^{n} = {min_exact_p(n):.3g}; run at least {MIN_TRIALS} trials.")
    disagree = []
    for t in results["tests"]:
        if t.get("p") is None or t.get("ci_low") is None or t.get("ci_high") is None:
            continue
        excludes = t["ci_low"] > 0 or t["ci_high"] < 0
        if excludes != (t["p"] < ALPHA):
            ci = f"{t['ci_low']:+.3f} to {t['ci_high']:+.3f}"
            disagree.append(f"{t['a']} vs {t['b']}: the 95% bootstrap interval ({ci}) "
                            f"{'excludes' if excludes else 'includes'} zero but p = {_p(t['p'])} "
                            f"(Holm {_p(t['p_holm'])}): the two disagree, so read this difference as uncertain.")
    if disagree and 0 < n and min_exact_p(n) >= ALPHA:  # every pair disagrees by construction: say it once
        found.append(f"{len(disagree)} pair{'s' if len(disagree) != 1 else ''} have a 95% bootstrap interval that "
                     f"excludes zero, but with {n} trials no p can fall below {ALPHA}: those intervals are not "
                     f"evidence of a difference.")
    else:
        found += disagree
    for v in results["variants"]:
        done = v.get("test_map", {}).get("n")
        if done is not None and 0 < done < n:
            found.append(f"{v['variant']} finished {done} of {n} trials (the others failed or did not run); "
                         f"its tests use only the trials both variants finished.")
    return found


def checks_passed(results: dict[str, Any]) -> str:
    """What :func:`warnings` checked, said when none of them fired."""
    training = "the best epoch came before the last in most runs" if (results.get("training") or {}).get("runs") \
        else "no run's last epoch is known (no epochs.csv or --epochs), so training length was not checked"
    return (f"{training}, there were at least {MIN_TRIALS} trials, every interval agrees with its test, every "
            "variant finished every trial")


def _p(p: float | None) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n/a"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"

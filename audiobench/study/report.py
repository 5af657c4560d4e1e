"""``audiobench report RUN_DIR``: ``report.md``, its figures, exported tables and ``results.json`` from a
comparison's saved results.

Reads only what the trial runner wrote under ``runs/<id>/`` (``trials.csv``, ``per_class.csv``,
``config.json``, optional ``epochs.csv``, ``class_durations.csv``, ``attention/*.npz`` and the runs'
``trials/*/metrics.json``; the contract is in ``docs/compare.md``), so a report can be re-rendered any time
without training anything. The header's facts come from :mod:`~audiobench.study.provenance`, the sentences
and warnings from :mod:`~audiobench.study.findings`, the CSV/LaTeX files from :mod:`~audiobench.study.exports`,
the paper's values from :mod:`~audiobench.study.paper`.

>>> render_report(Path("audiobench-data/runs/demo"))      # doctest: +SKIP
PosixPath('audiobench-data/runs/demo/report.md')
"""
from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audiobench import __version__
from audiobench.core.errors import AudiobenchError, InputFormatError
from audiobench.core.layout import json_safe, write_atomic
from audiobench.data.cliplist import plain
from audiobench.models.variants import fig4_pair
from audiobench.study import compute, exports, findings, paper, stability, stats
from audiobench.study.figures import (Drawn, load_attention, plot_class_gain, plot_clip_variants, plot_map_per_variant,
                                      plot_psd_roc, plot_validation_curves)
from audiobench.study.provenance import header_lines, study_facts
from audiobench.training.options import DEFAULT_METRIC, EVENT_METRIC_COLUMNS, LOWER_IS_BETTER, METRIC_COLUMNS

PER_CLASS_COLUMNS = ("trial", "variant", "class_index", "mid", "name", "ap")
DURATION_COLUMNS = ("class_index", "mid", "name", "mean_duration", "n_events")
EPOCH_COLUMNS = ("trial", "variant", "epoch", "val_map")
PSD_ROC_COLUMNS = ("trial", "variant", "efpr", "tpr")
NAME_COLUMNS = {"mid", "name"}  # cells of users' text, written neutralised (see data.cliplist.neutral)
_REQUIRED_TRIALS = ("trial", "variant", "test_map")
_TESTED = {"map": "mAPs", "auc": "macro AUCs", "dprime": "d′s", "psds1": "PSDS1s", "psds2": "PSDS2s",
           "segment_f1": "segment F1s", "segment_er": "segment error rates",
           "event_f1": "event F1s"}  # what the tests compare, as the text says
_PACKAGES = ("numpy", "scipy", "pandas", "scikit-learn", "matplotlib", "torch")


@dataclass(frozen=True)
class Run:
    """A run folder's saved results, checked; ``per_class``/``durations`` None when the file is absent."""

    dir: Path
    config: dict[str, Any]
    variants: tuple[str, ...]
    baseline: str
    trials: pd.DataFrame
    per_class: pd.DataFrame | None
    durations: pd.DataFrame | None
    epochs: pd.DataFrame | None
    attention: tuple[Path, ...]
    notes: tuple[str, ...]
    psd_roc: pd.DataFrame | None = None  # psd_roc.csv: each trial's PSD-ROC (studies with strong test labels)


def render_report(run_dir: Path, *, seed: int = stats.SEED, paper_table: str | None = None) -> Path:
    """Write ``report.md``, the figures, the exported tables and ``results.json`` into ``run_dir``.

    ``paper_table``: the paper's table to print beside the study's numbers (:mod:`audiobench.study.paper`;
    ``"none"``: no paper column); default: what ``config.json`` says, else what the dataset and init say.
    Returns the report's path.
    """
    run = read_run(Path(run_dir))
    if paper_table is not None:
        run = replace(run, config={**run.config, "paper_table": paper_table})
    results = summarise(run, seed=seed)
    results["figures"] = draw_figures(run, results)
    results["exports"] = write_exports(run.dir, json_safe(results))
    results = json_safe(results)  # report.md is rendered from exactly what results.json holds
    write_atomic(run.dir / "results.json", json.dumps(results, indent=2) + "\n")
    path = run.dir / "report.md"
    write_atomic(path, markdown(results))
    return path


def read_run(run_dir: Path) -> Run:
    """Load and check a run folder; errors name the file and say what is wrong."""
    if not run_dir.is_dir():
        raise AudiobenchError(f"no run folder {run_dir} (run `audiobench compare` first)")
    config = _read_config(run_dir / "config.json")
    trials = _read_csv(run_dir / "trials.csv", _REQUIRED_TRIALS)
    if trials.empty:
        raise AudiobenchError(f"{run_dir / 'trials.csv'} has no finished trial yet: nothing to report")
    counts = trials.groupby(["trial", "variant"], sort=False).size()
    if (counts > 1).any():
        (trial, variant), times = next((key, n) for key, n in counts.items() if n > 1)
        raise InputFormatError(f"{run_dir / 'trials.csv'}: trial {trial} of {variant} appears {times} times "
                               f"(one row per finished (trial, variant))")
    trials = trials.astype({"variant": str}).sort_values(["trial", "variant"], kind="stable")
    notes: list[str] = []
    variants = [str(v) for v in config.get("variants") or []]
    extra = [v for v in dict.fromkeys(trials["variant"]) if v not in variants]
    if extra and variants:
        notes.append(f"trials.csv has variant(s) not in config.json: {', '.join(extra)} (appended)")
    variants += extra
    baseline = str(config.get("baseline") or variants[0])
    if "baseline" not in config:
        notes.append(f"config.json names no baseline: the first variant, {baseline}, is used")
    if baseline not in variants:
        raise AudiobenchError(f"{run_dir / 'config.json'}: baseline {baseline!r} is not among the variants "
                              f"({', '.join(variants)})")
    for v in variants:
        if v not in set(trials["variant"]):
            notes.append(f"{v} has no finished trial")
    per_class = _read_optional(run_dir / "per_class.csv", PER_CLASS_COLUMNS, notes, "no per-class APs")
    durations = _read_optional(run_dir / "class_durations.csv", DURATION_COLUMNS[:4], notes,
                               "no class durations (Fig. 4 needs strong training labels)")
    epochs = _read_optional(run_dir / "epochs.csv", EPOCH_COLUMNS, notes, "no validation curves")
    attention = tuple(sorted((run_dir / "attention").glob("*.npz")))
    roc = _read_csv(run_dir / "psd_roc.csv", PSD_ROC_COLUMNS) if (run_dir / "psd_roc.csv").exists() else None
    return Run(run_dir, config, tuple(variants), baseline, trials, per_class, durations, epochs, attention,
               tuple(notes), roc)


def summarise(run: Run, *, seed: int = stats.SEED) -> dict[str, Any]:
    """Everything ``results.json`` holds except the figures: summaries, tests, per-class APs, provenance."""
    pairs = run.config.get("pairs", "all")
    metric = run.config.get("metric", DEFAULT_METRIC)
    rows = stats.compare_variants(run.trials, baseline=run.baseline, pairs=pairs, variants=run.variants, seed=seed,
                                  column=METRIC_COLUMNS[metric])
    labels = run.config.get("labels_used") or {}
    variants = []
    for v in run.variants:
        mine = run.trials[run.trials["variant"] == v]
        variants.append({
            "variant": v, "labels_used": labels.get(v, ""), "baseline": v == run.baseline,
            "test_map": asdict(stats.describe(mine["test_map"])),
            **{f"{col}_mean": _mean(mine, col) for col in ("val_map", "best_epoch", "seconds")},
            **{col: asdict(stats.describe(mine[col])) for col in ("test_auc", "test_dprime") if col in mine},
            **{col: asdict(stats.describe(mine[col].dropna())) for col in EVENT_METRIC_COLUMNS.values()
               if col in mine and mine[col].notna().any()},
        })
    per_class, never_positive, class_notes = _per_class(run)
    tests = [asdict(r) for r in rows]
    stable = stability.study_stability(run.dir, run.trials, rows, column=METRIC_COLUMNS[metric],
                                       alpha=findings.ALPHA, seed=seed)
    for t, s in zip(tests, stable):
        t.update(findings.win_counts(run.trials, t["a"], t["b"], METRIC_COLUMNS[metric],
                                     lower_is_better=metric in LOWER_IS_BETTER))
        t["stability"] = asdict(s)
    table = paper.table_for(run.config)
    planned = (run.config.get("train") or {}).get("epochs")
    return {
        "dataset": run.config.get("dataset", ""),
        "header": {**study_facts(run.dir, run.config, run.config.get("fingerprints")),
                   **({"eval_on": run.config["eval_on"]} if run.config.get("eval_on") else {})},
        "training": findings.training_check(run.trials, run.epochs, planned),
        "paper": {"table": table, "title": paper.TITLES[table], "citation": paper.CITATION,
                  "values": paper.TABLES[table]} if table else None,
        "baseline": run.baseline,
        "trials": int(run.trials["trial"].nunique()),
        "trials_planned": run.config.get("trials"),
        "variants": variants,
        "pairs": pairs,
        "metric": metric,
        "fingerprints": run.config.get("fingerprints"),
        "eval_on": run.config.get("eval_on"),
        "tests": tests,
        "events": _events(run, seed=seed),
        "compute": compute.study_compute(run.dir, run.variants),
        "statistics": {
            "test": f"two-sided Wilcoxon signed-rank on paired test {_TESTED[metric]} (scipy.stats.wilcoxon)",
            "exact_max_n": stats.EXACT_MAX_N, "zero_method": stats.ZERO_METHOD,
            "approximation": "normal, tie-corrected variance, continuity correction",
            "multiple_comparisons": f"Holm across the {sum(r.p is not None for r in rows)} pair(s) tested "
                                    f"(pairs: {pairs})",
            "effect_size": "matched-pairs rank-biserial r = (W+ - W-) / (W+ + W-)",
            "interval": {"method": stats.BOOTSTRAP_METHOD, "paired": True, "confidence": stats.CONFIDENCE,
                         "resamples": stats.BOOTSTRAP_RESAMPLES, "seed": seed},
            "difference": "b - a",
            "stability": stability.describe_method(alpha=findings.ALPHA),
        },
        "per_class": per_class,
        "never_positive": never_positive,
        "notes": list(run.notes) + class_notes,
        "config": run.config,
        "versions": _versions(),
        "machine": {"platform": platform.platform(), "machine": platform.machine(),
                    "python": platform.python_version(), "cpu_count": os.cpu_count()},
        "generated": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
    }


def draw_figures(run: Run, results: dict[str, Any]) -> list[dict[str, Any]]:
    """Draw every figure the inputs allow; a figure that cannot be drawn gets a note instead of a file."""
    for old in [run.dir / "map_per_variant.png", run.dir / "validation_curves.png", run.dir / "ap_gain_per_class.png",
                run.dir / "ap_gain_vs_duration.png", *run.dir.glob("attention_*.png")]:
        old.unlink(missing_ok=True)  # a re-render never leaves a stale figure behind
    significant = [(t["a"], t["b"], t["mark"]) for t in results["tests"] if t["mark"]]
    metric = run.config.get("metric") or "map"
    chance = results["header"].get("chance") if metric == "map" else None
    figures = [_figure("test mAP per variant, chance level dashed, Holm-significant pairs bracketed",
                       plot_map_per_variant(run.trials, run.variants, run.dir / "map_per_variant.png", chance=chance,
                                            brackets=significant, column=findings.metric_column(metric),
                                            label=f"test {findings.METRIC_NAMES.get(metric, metric)}"))]
    if run.epochs is not None and not run.epochs.empty:
        figures.append(_figure("validation mAP per epoch", plot_validation_curves(
            run.epochs, run.variants, run.dir / "validation_curves.png")))
    variant, over, note = _fig4_pair(run)
    title = f"class-wise AP gain of {variant} over {over} with 95% intervals (Fig. 4)"
    if note:
        figures.append(_figure(title, None, note))
    else:
        assert run.per_class is not None
        gain = stats.class_gains(run.per_class, variant, over)
        if run.durations is not None:
            gain = gain.merge(run.durations[["class_index", "mean_duration"]], on="class_index", how="left")
        how = sorted(set(gain["interval"]) - {""}) if len(gain) else []
        interval = {"trials": "paired bootstrap over trials", "clips": "bootstrap over test clips"}
        if not len(gain):
            figures.append(_figure(title, None, "no class has the APs of both variants"))
        else:
            drawn = plot_class_gain(gain, variant=variant, over=over, path=run.dir / "ap_gain_per_class.png",
                                    interval="; ".join(interval[h] for h in how))
            if len(drawn.data["labels"]) < drawn.data["classes"]:
                shown, total = len(drawn.data["labels"]) // 2, drawn.data["classes"]
                title += f": the {shown} largest and {shown} smallest of {total} classes"
            figures.append(_figure(title, drawn))
    (run.dir / "psd_roc.png").unlink(missing_ok=True)
    if run.psd_roc is not None and not run.psd_roc.empty:
        figures.append(_figure("PSD-ROC per variant (PSDS1 scenario, segment scores; one line per trial)",
                               plot_psd_roc(run.psd_roc, run.variants, run.dir / "psd_roc.png")))
    figures += _attention_figures(run)
    return figures


def _attention_figures(run: Run) -> list[dict[str, Any]]:
    """Fig. 5: one figure per example clip, its variants side by side (the trial runner saves trial 0's)."""
    if not run.attention:
        return [_figure("attention (Fig. 5)", None, "no attention/ folder: no example clips saved")]
    figures, clips = [], {}
    for npz in run.attention:
        try:
            clip = load_attention(npz)
        except (ValueError, OSError) as exc:  # a bad file costs its panel, not the report
            figures.append(_figure(f"attention {npz.stem} (Fig. 5)", None, f"skipped: {exc}"))
            continue
        clips.setdefault(clip.clip_id, []).append(clip)
    order = {v: i for i, v in enumerate(run.variants)}
    for clip_id, views in clips.items():
        views.sort(key=lambda c: order.get(c.variant, len(order)))
        if len({(v.attention.shape, v.strong.shape) for v in views}) > 1:
            figures.append(_figure(f"attention of {clip_id} (Fig. 5)", None,
                                   "skipped: its variants' files hold arrays of different shapes"))
            continue
        name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in clip_id)
        figures.append(_figure(f"attention of {clip_id}, {', '.join(v.variant for v in views)}, trial "
                               f"{views[0].trial} (Fig. 5)",
                               plot_clip_variants(views, run.dir / f"attention_{name}.png", trial=views[0].trial)))
    return figures


def write_exports(run_dir: Path, results: dict[str, Any]) -> list[str]:
    """``table.csv``/``table.tex`` (the variant table) and ``pairwise.csv``/``pairwise.tex``; their names."""
    header, rows, align = variant_cells(results)
    files = exports.write_table(exports.variant_frame(results), header, rows, align, run_dir / "table")
    header, rows, align = exports.pairwise_cells(results)
    return files + exports.write_table(exports.pairwise_frame(results), header, rows, align, run_dir / "pairwise")


def markdown(results: dict[str, Any]) -> str:
    """``report.md`` from the content of ``results.json``: header, summary, warnings, tables, notes, figures."""
    n, planned = results["trials"], results.get("trials_planned")
    facts = dict(results.get("header") or {})
    for key in ("fingerprints", "eval_on"):  # the study's own record wins over what the runs say
        if results.get(key):
            facts[key] = results[key]
    unit = findings.METRIC_NAMES.get(results.get("metric") or "map", "mAP")
    lines = [f"# Comparison report: {results['dataset'] or 'unnamed dataset'}", "",
             f"{n} trial{'s' if n != 1 else ''}" + (f" of {planned} planned" if planned and planned != n else "")
             + f"; baseline `{results['baseline']}`; generated {results['generated']}.", "",
             "## Study", "", *header_lines(facts), "",
             "## Summary", "", *[f"- {line}" for line in findings.summary(results)], ""]
    warned = findings.warnings(results) + [w for w in [(results.get("compute") or {}).get("warning")] if w]
    lines += ["## Warnings", ""] + ([f"- {w}" for w in warned] or ["- none: " + findings.checks_passed(results)])
    lines += ["", f"## Test {unit} per variant", "", variant_table(results), "",
              "Marks on the Holm-adjusted p: `*` p < 0.05, `**` p < 0.01, `***` p < 0.001."]
    if (results.get("events") or {}).get("metrics"):
        lines += ["", "## Event-level metrics per variant", "", event_table(results), "", event_note(results)]
    if results.get("paper"):
        lines += ["", f"Paper: {results['paper']['title']} of {results['paper']['citation']}, test mAP in percent "
                      f"(mean ± std over 20 trials), as printed."]
    lines += ["", "## Pairwise tests", "",
              f"Two-sided Wilcoxon signed-rank test on the paired test {unit}s; difference b − a with a paired "
              f"{results['statistics']['interval']['method']} bootstrap 95% interval; "
              f"{results['statistics']['multiple_comparisons']}; r is the matched-pairs rank-biserial "
              f"correlation (positive: b higher).", "", pairwise_table(results), ""]
    if any(t.get("stability") for t in results["tests"]):
        lines += ["## Stability of each verdict", "",
                  "Difference b − a with a hierarchical bootstrap 95% interval (trials resampled, and test clips "
                  "within each); P(b > a): the fraction of paired trials b won, Wilson 95% interval; MDE: the "
                  f"smallest difference these trials detect with 80% power at α {findings.ALPHA:g}; trials needed: "
                  "to detect the observed difference so; fragile: one trial less flips the verdict, or the "
                  "interval disagrees with the Holm p.", "", stability_table(results), ""]
    notes = list(results["notes"]) + [f"{t['a']} vs {t['b']}: {t['note']}" for t in results["tests"] if t["note"]]
    if results.get("never_positive"):
        names = ", ".join(c["name"] or c["mid"] for c in results["never_positive"])
        notes.append(f"classes never positive in the test split (no AP, not averaged in): {names}")
    if notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    if results.get("exports"):
        lines += ["## Exports", "", "The tables for a paper: " + ", ".join(f"[{f}]({f})" for f in results["exports"])
                  + " (CSV: the numbers; `.tex`: a booktabs `tabular`, needs `\\usepackage{booktabs}`).", ""]
    if results["per_class"]:
        lines += ["<details><summary>Mean test AP per class over trials</summary>", "",
                  per_class_table(results), "", "</details>", ""]
    if results.get("compute"):
        lines += compute.lines(results["compute"])
    lines += ["## Figures", ""]
    for fig in results.get("figures", []):
        lines += [f"![{fig['title']}]({fig['file']})", ""] if fig["file"] else [f"- {fig['title']}: {fig['note']}", ""]
    return "\n".join(lines)


def variant_cells(results: dict[str, Any]) -> tuple[list[str], list[list[str]], str]:
    """The paper-shaped table's header, cells and alignment (Markdown and LaTeX print the same cells)."""
    base = results["baseline"]
    against = {t["b"] if t["a"] == base else t["a"]: t for t in results["tests"] if base in (t["a"], t["b"])}
    extra = [(key, name) for key, name in (("test_auc", "test AUC"), ("test_dprime", "test d′"))
             if any(metric_summary(v, key)[0] is not None for v in results["variants"])]
    paper_values = (results.get("paper") or {}).get("values")
    header = ["variant", "labels used", "test mAP (mean ± std)", "median", "trials", "val mAP",
              f"p vs {base} (Holm)"] + [f"{name} (mean ± std)" for _, name in extra]
    header += ["paper mAP (%)"] if paper_values else []
    rows = []
    for v in results["variants"]:
        s, name = v["test_map"], v["variant"]
        t = against.get(name)
        p = "baseline" if name == base else "n/a" if t is None or t["p_holm"] is None else \
            f"{fmt_p(t['p_holm'])} {t['mark']}".rstrip()
        row = [name, v["labels_used"] or "–", fmt_mean_std(s["mean"], s["std"]), _num(s["median"]), str(s["n"]),
               _num(v["val_map_mean"]), p]
        row += [fmt_mean_std(*metric_summary(v, key)) for key, _ in extra]
        row += [paper.fmt_paper(paper_values.get(name))] if paper_values else []
        rows.append(row)
    return header, rows, "ll" + "r" * 4 + "l" + "r" * (len(header) - 7)


def event_table(results: dict[str, Any]) -> str:
    """Each variant's event-level metrics over trials (mean ± std), beside the mAP table."""
    shown = [(m, c) for m, c in EVENT_METRIC_COLUMNS.items() if m in results["events"]["metrics"]]
    names = [findings.METRIC_NAMES[m] + (" ↓" if m in LOWER_IS_BETTER else "") for m, _ in shown]
    tests = {(m, t["b"]): t for m, rows in (results["events"].get("tests") or {}).items() for t in rows}

    def cell(v: dict[str, Any], m: str, c: str) -> str:
        t = tests.get((m, v["variant"]))
        p = "" if t is None or t["p_holm"] is None else f" (p {fmt_p(t['p_holm'])}{t['mark']})"
        return fmt_mean_std(*metric_summary(v, c)) + p

    rows = [[v["variant"], *(cell(v, m, c) for m, c in shown),
             str(max((v.get(c) or {}).get("n", 0) for _, c in shown))] for v in results["variants"]]
    return exports.markdown_table(["variant", *names, "trials"], rows, "l" + "r" * (len(shown) + 1))


def event_note(results: dict[str, Any]) -> str:
    """Where the event metrics come from, and which split chose the post-processing."""
    chosen = results["events"]["chosen_on"]
    where = " and ".join(f"the {s} split" + (" (the validation split has no strong labels)" if s == "train" else "")
                         for s in chosen) or "an unrecorded split"
    return ("From each run's test-events/ files (segment scores Xa): PSDS by sed_scores_eval on the score tables, "
            "segment F1 and ER (1 s segments, micro) and event F1 (200 ms collar) by sed_eval on the detections. "
            f"Median filter and thresholds were chosen on {where}, never on the test split. ↓: lower is better. "
            f"In brackets: the Holm-adjusted p of the Wilcoxon test against {results['baseline']} on that metric.")


def _events(run: Run, *, seed: int = stats.SEED) -> dict[str, Any]:
    """Which event metrics the trials recorded, where their post-processing was chosen, and each metric's
    paired tests against the baseline (Wilcoxon, Holm over the variants, as for the study's own metric)."""
    metrics = [m for m, c in EVENT_METRIC_COLUMNS.items() if c in run.trials and run.trials[c].notna().any()]
    chosen = run.trials["events_chosen_on"].dropna() if "events_chosen_on" in run.trials else pd.Series([], dtype=str)
    tests = {}
    for m in metrics:
        column = EVENT_METRIC_COLUMNS[m]
        scored = run.trials.dropna(subset=[column])
        rows = stats.compare_variants(scored, baseline=run.baseline, pairs="baseline", seed=seed, column=column,
                                      variants=[v for v in run.variants if (scored["variant"] == v).any()])
        tests[m] = [{"a": r.a, "b": r.b, "n": r.n, "mean_diff": r.mean_diff, "p": r.p, "p_holm": r.p_holm,
                     "mark": r.mark} for r in rows]
    return {"metrics": metrics, "chosen_on": sorted(set(map(str, chosen))),
            "lower_is_better": sorted(LOWER_IS_BETTER), "tests": tests}


def metric_summary(variant: dict[str, Any], key: str) -> tuple[float | None, float | None]:
    """A variant's mean and std of ``key`` (``test_auc``...), as ``{key: {mean, std}}`` or ``key_mean``/``key_std``."""
    value = variant.get(key)
    if isinstance(value, dict):
        return value.get("mean"), value.get("std")
    return variant.get(f"{key}_mean"), variant.get(f"{key}_std")


def variant_table(results: dict[str, Any]) -> str:
    """The paper-shaped table: variant, labels used, mAP mean ± std, median, trials, val mAP, p vs baseline,
    then the other metrics the study recorded and the paper's value, when it reproduces a published table."""
    return exports.markdown_table(*variant_cells(results))


def pairwise_table(results: dict[str, Any]) -> str:
    """One row per pair: a, b, n, mean diff [95% CI], W, p, method, Holm p (with marks), r."""
    rows = ["| a | b | n | mean diff b − a [95% CI] | W | p | method | Holm p | r |",
            "| --- | --- | ---: | --- | ---: | ---: | --- | --- | ---: |"]
    for t in results["tests"]:
        ci = "" if t["ci_low"] is None else f" [{t['ci_low']:+.4f}, {t['ci_high']:+.4f}]"
        diff = "n/a" if t["mean_diff"] is None or math.isnan(t["mean_diff"]) else f"{t['mean_diff']:+.4f}"
        holm_p = "n/a" if t["p_holm"] is None else f"{fmt_p(t['p_holm'])} {t['mark']}".rstrip()
        rows.append(f"| {t['a']} | {t['b']} | {t['n']} | {diff}{ci} | {_num(t['w'], 1)} | "
                    f"{'n/a' if t['p'] is None else fmt_p(t['p'])} | {t['method'] or 'none'} | {holm_p} | "
                    f"{'n/a' if t['rank_biserial'] is None else format(t['rank_biserial'], '+.2f')} |")
    return "\n".join(rows)


def stability_table(results: dict[str, Any]) -> str:
    """One row per pair: difference [hierarchical 95% CI], P(b > a) [95% CI], MDE, trials needed, the mark."""
    rows = ["| a | b | mean diff b − a [95% CI] | resampled | P(b > a) [95% CI] | MDE | trials needed | stability |",
            "| --- | --- | --- | --- | --- | ---: | ---: | --- |"]
    for t in results["tests"]:
        s = t.get("stability")
        if not s:
            continue
        diff = "n/a" if s["diff"] is None or math.isnan(s["diff"]) else f"{s['diff']:+.4f}"
        ci = "" if s["diff_low"] is None else f" [{s['diff_low']:+.4f}, {s['diff_high']:+.4f}]"
        better = "n/a" if s["p_better"] is None else \
            f"{s['p_better']:.2f} [{s['p_better_low']:.2f}, {s['p_better_high']:.2f}]"
        mark = s["label"] + (f": {s['why']}" if s["why"] else "")
        rows.append(f"| {t['a']} | {t['b']} | {diff}{ci} | {s['interval']} | {better} | {_num(s['mde'])} | "
                    f"{'n/a' if s['trials_needed'] is None else s['trials_needed']} | {mark} |")
    return "\n".join(rows)


def per_class_table(results: dict[str, Any]) -> str:
    """Mean AP per class (rows) and variant (columns)."""
    names = [v["variant"] for v in results["variants"]]
    rows = ["| class | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    for c in results["per_class"]:
        rows.append(f"| {c['name']} | " + " | ".join(_num(c["mean_ap"].get(v)) for v in names) + " |")
    return "\n".join(rows)


def fmt_mean_std(mean: float | None, std: float | None) -> str:
    """``0.612 ± 0.015``; the std is ``–`` with one trial."""
    if mean is None or math.isnan(mean):
        return "n/a"
    return f"{mean:.3f} ± " + ("–" if std is None or math.isnan(std) else f"{std:.3f}")


def fmt_p(p: float) -> str:
    """Four decimals, or scientific notation below 0.0001."""
    return f"{p:.1e}" if p < 1e-4 else f"{p:.4f}"


def _num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _fig4_pair(run: Run) -> tuple[str, str, str]:
    """Fig. 4's (variant, over, why-not): config ``fig4``, else the variants' own choice
    (:func:`audiobench.models.variants.fig4_pair`), else the first other variant over the baseline."""
    chosen = run.config.get("fig4") or {}
    others = [v for v in run.variants if v != run.baseline]
    default = fig4_pair(run.variants, run.baseline) or (others[0] if others else "", run.baseline)
    if "variant" in chosen:  # a variant named without `over`: over the baseline
        default = (str(chosen["variant"]), run.baseline)
    variant, over = str(chosen.get("variant", default[0])), str(chosen.get("over", default[1]))
    if run.per_class is None:
        return variant, over, "skipped: no per_class.csv"
    if not variant or variant == over:
        return variant, over, "skipped: needs two different variants"
    missing = [v for v in (variant, over) if v not in set(run.per_class["variant"])]
    if missing:
        return variant, over, f"skipped: no per-class AP for {', '.join(missing)}"
    return variant, over, ""


def _per_class(run: Run) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None, list[str]]:
    """Mean test AP per class and variant over trials, and the classes never positive in the test split.

    The never-positive classes come from ``config["classes"]`` (every class of the dataset) minus the classes
    with an AP; without that list only rows of ``per_class.csv`` with an empty AP can be named.
    """
    if run.per_class is None:
        return [], None, []
    listed = run.per_class.drop_duplicates("class_index").set_index("class_index")[["mid", "name"]]
    scored = run.per_class.dropna(subset=["ap"])
    means = scored.groupby(["class_index", "variant"])["ap"].mean().unstack("variant")
    rows = [{"class_index": int(c), "mid": str(listed.loc[c, "mid"]), "name": str(listed.loc[c, "name"]),
             "mean_ap": {v: float(means.loc[c, v]) for v in run.variants
                         if v in means and not math.isnan(means.loc[c, v])}}
            for c in sorted(means.index)]
    with_ap = set(means.index)
    classes = run.config.get("classes")
    if classes:
        return rows, [{"class_index": i, "mid": str(c.get("mid", "")), "name": str(c.get("name", ""))}
                      for i, c in enumerate(classes) if i not in with_ap], []
    never = [{"class_index": int(c), "mid": str(listed.loc[c, "mid"]), "name": str(listed.loc[c, "name"])}
             for c in sorted(set(listed.index) - with_ap)]
    if never:
        return rows, never, []
    return rows, None, ["config.json lists no classes: the classes never positive in the test split cannot be "
                        "listed"]


def _read_config(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise AudiobenchError(f"no {path} (the trial runner writes it; run `audiobench compare` first)")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputFormatError(f"{path} line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(config, dict):
        raise InputFormatError(f"{path}: expected a JSON object, got {type(config).__name__}")
    if config.get("pairs", "all") not in stats.PAIRS:
        raise InputFormatError(f"{path}: pairs must be one of {', '.join(stats.PAIRS)}, not {config['pairs']!r}")
    if config.get("metric", DEFAULT_METRIC) not in METRIC_COLUMNS:
        raise InputFormatError(f"{path}: metric must be one of {', '.join(METRIC_COLUMNS)}, not {config['metric']!r}")
    return config


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    if not path.exists():
        raise AudiobenchError(f"no {path} (the trial runner writes it; run `audiobench compare` first)")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputFormatError(f"{path}: cannot be read as CSV ({exc})") from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise InputFormatError(f"{path}: missing column(s) {', '.join(missing)} (has {', '.join(table.columns)})")
    for column in NAME_COLUMNS.intersection(table.columns):  # written neutralised: class names are users' text
        table[column] = [plain(v) if isinstance(v, str) else v for v in table[column]]
    return table


def _read_optional(path: Path, required: tuple[str, ...], notes: list[str], why: str) -> pd.DataFrame | None:
    if path.exists():
        return _read_csv(path, required)
    notes.append(f"no {path.name}: {why}")
    return None


def _figure(title: str, drawn: Drawn | Path | None, note: str = "") -> dict[str, Any]:
    path = drawn.path if isinstance(drawn, Drawn) else drawn
    return {"title": title, "file": path.name if path else None, "note": note}


def _mean(table: pd.DataFrame, column: str) -> float | None:
    return float(table[column].mean()) if column in table and table[column].notna().any() else None


def _versions() -> dict[str, str | None]:
    """Installed versions, read from package metadata (importing torch only to print its version is slow)."""
    found: dict[str, str | None] = {"audiobench": __version__}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


